"""The ``stdout`` sink connector: :mod:`.connector` validates, :mod:`.operator` writes."""
