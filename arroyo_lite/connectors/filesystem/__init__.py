"""The ``filesystem`` sink connector on a local path: :mod:`.connector` validates,
:mod:`.layout` names files and partitions, :mod:`.files` writes a file in its format,
:mod:`.operator` rolls, commits and recovers."""
