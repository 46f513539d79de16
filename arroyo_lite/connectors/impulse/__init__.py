"""The ``impulse`` generator connector: :mod:`.connector` validates, ``operator`` runs."""
