"""The ``sse`` source (Server-Sent Events): :mod:`.connector` validates, :mod:`.operator` runs,
:mod:`.parser` reads the event stream, :mod:`.probe` is ``arroyo-lite test``'s trial."""
