"""Shared pytest configuration. Fixtures live beside their tests or in tests/support."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.http_app import make_app


@pytest.fixture
async def server(aiohttp_server: Any) -> Any:
    """The test HTTP app (tests/support/http_app.py) on 127.0.0.1, on this test's loop.

    Test modules that need the app on its own thread (sync tests) define their own.
    """
    return await aiohttp_server(make_app())


@pytest.fixture
def restore_loggers() -> Iterator[None]:
    """Put the process-wide loggers back after a test that runs a CLI command in-process
    (``configure_logging`` sets handlers, levels and ``propagate = False`` on them, which
    would hide later tests' records from ``caplog``)."""
    root, polling = logging.getLogger("arroyo_lite"), logging.getLogger("arroyo_lite.polling_http")
    handlers, level, propagate, polling_level = (
        root.handlers[:],
        root.level,
        root.propagate,
        polling.level,
    )
    yield
    root.handlers[:] = handlers
    root.propagate = propagate
    root.setLevel(level)  # setLevel, not .level =: it also clears the enabled-for caches
    polling.setLevel(polling_level)
