"""Shared pytest configuration. Fixtures live next to the tests that use them, or in tests/support."""
