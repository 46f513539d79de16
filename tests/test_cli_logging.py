"""ARROYO_LITE_LOG: the CLI's log level (arroyo_lite.terminal.logs.configure_logging)."""

from __future__ import annotations

import io
import logging

import pytest

from arroyo_lite.terminal.logs import LOG_ENV, configure_logging

# configure_logging changes process-wide loggers: put them back for the other tests.
pytestmark = pytest.mark.usefixtures("restore_loggers")


def test_an_unknown_level_is_reported_and_the_default_used() -> None:
    stream = io.StringIO()
    configure_logging(stream, {LOG_ENV: "verbose"})
    assert logging.getLogger("arroyo_lite").level == logging.WARNING
    assert stream.getvalue() == (
        "warning: ARROYO_LITE_LOG=verbose is not a log level (debug, info, warning, error); "
        "using warning\n"
    )


def test_a_known_level_is_used_silently() -> None:
    stream = io.StringIO()
    configure_logging(stream, {LOG_ENV: "info"})
    assert logging.getLogger("arroyo_lite").level == logging.INFO
    assert logging.getLogger("arroyo_lite.polling_http").level == logging.INFO
    assert stream.getvalue() == ""
