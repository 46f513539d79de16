"""The ``websocket`` source: :mod:`.connector` validates, :mod:`.operator` runs, :mod:`.probe`
is ``arroyo-lite test``'s trial."""
