"""The ``blackhole`` sink connector: Arroyo's no-op sink that swallows all data."""
