"""A third-party connector plugin used by the registry tests (installed into a tmp dir)."""
