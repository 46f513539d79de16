"""What the commands that talk to an Arroyo cluster share: ``--api``, ``--timeout``, the API
key from ``ARROYO_API_KEY``, and running one client call with a one-line error on failure."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import click

from arroyo_lite.cli.options import seconds_option
from arroyo_lite.cluster.client import DEFAULT_TIMEOUT, ArroyoClient
from arroyo_lite.cluster.contract import DEFAULT_API
from arroyo_lite.cluster.deploy import DEFAULT_EVERY
from arroyo_lite.errors import ClusterError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: Environment variable holding the API key of a cluster in ``static-api-key`` auth mode.
API_KEY_VARIABLE = "ARROYO_API_KEY"


def api_options(fn: F) -> F:
    """``--api URL`` (or ``ARROYO_API``) and ``--timeout SECONDS``."""
    fn = seconds_option(
        "--timeout",
        default=DEFAULT_TIMEOUT,
        show_default=True,
        help="Seconds to wait for each answer of the API.",
    )(fn)
    fn = click.option(
        "--api",
        metavar="URL",
        envvar="ARROYO_API",
        default=DEFAULT_API,
        show_default=True,
        help="Arroyo's API server (its /api/v1 routes); also read from ARROYO_API. "
        f"The key of a cluster with an API key is read from {API_KEY_VARIABLE}.",
    )(fn)
    return fn


def poll_interval_option(fn: F) -> F:
    """``--poll-interval SECONDS``: how often a command asks for a job's state."""
    return seconds_option(
        "--poll-interval",
        default=DEFAULT_EVERY,
        show_default=True,
        help="Seconds between two requests for the job's state.",
    )(fn)


def api_key() -> str | None:
    return os.environ.get(API_KEY_VARIABLE) or None


def fail(error: ClusterError) -> NoReturn:
    """Print ``error: MESSAGE; HINT`` (one line) on stderr and exit 1."""
    text = f"error: {error.message}" + (f"; {error.hint}" if error.hint else "")
    click.echo(" ".join(text.split("\n")), err=True)
    raise SystemExit(1)


def with_client(api: str, timeout: float, call: Callable[[ArroyoClient], Awaitable[T]]) -> T:
    """Run ``call`` with a client for ``api``; a :class:`ClusterError` ends the command."""

    async def run() -> T:
        async with ArroyoClient(api, timeout=timeout, api_key=api_key()) as client:
            return await call(client)

    try:
        return asyncio.run(run())
    except ClusterError as e:
        fail(e)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        raise SystemExit(130) from None
