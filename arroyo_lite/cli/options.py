"""Click options more than one command declares the same way.

:func:`seconds_option` is every ``SECONDS`` option (``--timeout``, ``--poll-interval``,
``--wait``): a number of seconds, more than zero unless the option gives zero a meaning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def seconds_option(
    name: str,
    *,
    default: float | None,
    help: str,  # noqa: A002 (click's own name)
    zero: bool = False,
    show_default: bool = False,
) -> Callable[[F], F]:
    """An option ``name`` of a number of seconds (metavar ``SECONDS``): more than zero, or
    at least zero when ``zero`` (the help then says what 0 means)."""
    return click.option(
        name,
        metavar="SECONDS",
        type=click.FloatRange(min=0, min_open=not zero),
        default=default,
        show_default=show_default,
        help=help,
    )
