"""One header check for every HTTP connector (connectors/http_options.check_headers).

The same bad ``headers`` give the same problems, in the same words, whichever connector the
table uses; only polling_http adds its per-poll ``[[ name ]]`` syntax to the values.
"""

from __future__ import annotations

import pytest

from arroyo_lite.errors import ValidationErrors
from arroyo_lite.sql import compile_sql

TABLES = {
    "polling_http": "connector = 'polling_http', endpoint = 'http://127.0.0.1:1/x'",
    "webhook": "connector = 'webhook', endpoint = 'http://127.0.0.1:1/x'",
    "sse": "connector = 'sse', endpoint = 'http://127.0.0.1:1/x'",
    "websocket": "connector = 'websocket', endpoint = 'ws://127.0.0.1:1/x'",
}


def problems(connector: str, headers: str, env: dict[str, str] | None = None) -> list[str]:
    sink = connector == "webhook"
    sql = (
        f"CREATE TABLE t (a TEXT) WITH ({TABLES[connector]}, format = 'json', "
        f"headers = '{headers}');\n"
        + ("INSERT INTO t SELECT 'x';\n" if sink else "")
    )
    try:
        compile_sql(sql, env=env or {})
    except ValidationErrors as e:
        return [err.message for err in e.errors]
    return []


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("no colon here", "Invalid format for headers"),
        ("Bad Name: x", "invalid header name 'Bad Name'"),
        ("X-Key: {{ UNSET_VAR }}", "Environment variable UNSET_VAR not found"),
    ],
)
def test_every_http_connector_reports_the_same_header_problem(headers, expected):
    found = {name: problems(name, headers) for name in TABLES}
    for name, messages in found.items():
        assert any(expected in m for m in messages), (name, messages)
    wordings = {tuple(m for m in messages if expected in m) for messages in found.values()}
    assert len(wordings) == 1, found


def test_a_control_character_from_the_environment_is_reported_without_its_value():
    env = {"TOKEN": "abc\ndef"}
    for name in TABLES:
        messages = problems(name, "Authorization: {{ TOKEN }}", env)
        assert messages == ["invalid header value for 'Authorization' (from TOKEN): contains a "
                            "line break"], (name, messages)  # fmt: skip


def test_only_polling_http_reads_per_poll_values_in_headers():
    assert any("invalid value for 'headers' (X-Since)" in m
               for m in problems("polling_http", "X-Since: [[ nwo ]]"))  # fmt: skip
    for name in ("webhook", "sse", "websocket"):
        assert problems(name, "X-Since: [[ nwo ]]") == [], name  # sent as written
    assert problems("polling_http", "X-Since: [[ now ]]") == []
