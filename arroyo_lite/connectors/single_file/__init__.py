"""The ``single_file`` connector: :mod:`.connector` validates, :mod:`.operator` reads and writes."""
