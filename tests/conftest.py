"""Shared pytest configuration. Fixtures live beside their tests or in tests/support."""
