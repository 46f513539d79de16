"""The ``polling_http`` source: :mod:`.connector` validates the options, ``operator`` polls."""
