"""The ``webhook`` sink connector: :mod:`.connector` validates, :mod:`.operator` POSTs."""
