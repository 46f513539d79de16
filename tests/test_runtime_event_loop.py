"""Which event loop the runtime runs on: uvloop's when installed, unless told otherwise."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from arroyo_lite.runtime.loop import LOOP_ENV, Runtime, new_event_loop

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


def _loop_module(loop: asyncio.AbstractEventLoop) -> str:
    try:
        return type(loop).__module__.split(".")[0]
    finally:
        loop.close()


def test_asyncio_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOOP_ENV, "asyncio")
    assert _loop_module(new_event_loop()) == "asyncio"


def test_uvloop_when_installed_else_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LOOP_ENV, raising=False)
    assert _loop_module(new_event_loop()) == ("uvloop" if HAS_UVLOOP else "asyncio")


def test_runtime_runs_on_the_chosen_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LOOP_ENV, raising=False)
    runtime = Runtime()
    try:

        async def which() -> str:
            return type(asyncio.get_running_loop()).__module__.split(".")[0]

        assert runtime.call(which()) == ("uvloop" if HAS_UVLOOP else "asyncio")
    finally:
        runtime.close()
