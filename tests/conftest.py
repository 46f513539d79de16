"""Shared pytest configuration. Fixtures live beside their tests or in tests/support."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.http_app import make_app


@pytest.fixture
async def server(aiohttp_server: Any) -> Any:
    """The test HTTP app (tests/support/http_app.py) on 127.0.0.1, on this test's loop.

    Test modules that need the app on its own thread (sync tests) define their own.
    """
    return await aiohttp_server(make_app())
