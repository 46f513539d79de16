"""What the session and ``arroyo-lite test`` ask a connector: its secrets and its probe.

The defaults on :class:`Connector` serve plugins written before these methods existed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from arroyo_lite.connectors.base import Connector
from arroyo_lite.connectors.probing import ProbeSkipped
from arroyo_lite.connectors.registry import get_connector
from arroyo_lite.sql import compile_sql
from tests.plugins.arroyo_like import SseLike

SQL = """CREATE TABLE t (v TEXT) WITH (
  connector = 'polling_http', endpoint = 'http://127.0.0.1:9/x', format = 'json',
  headers = 'Authorization: Bearer {{ TOKEN }}, X-Key: {{ KEY }}, X-Plain: plain'
);"""
ENV = {"TOKEN": "tok,en:1", "KEY": "k3y", "OTHER": "not-used"}


def test_polling_http_secrets_are_the_header_variables_it_uses() -> None:
    [table] = compile_sql(SQL, env=ENV).tables
    secrets = get_connector("polling_http").secrets(table, ENV)
    assert sorted(secrets.values) == ["k3y", "tok,en:1"]
    assert secrets.mask("a tok,en:1 b k3y c not-used") == "a **** b **** c not-used"


@dataclass(frozen=True)
class _LegacyOptions:
    headers: tuple[tuple[str, str], ...]


class _Legacy(Connector):
    """A plugin written against the old API: no option_set, no secrets(), no probe()."""

    name = "legacy"
    description = "old-style plugin"

    def parse_options(self, options: object, table: object) -> _LegacyOptions:
        return _LegacyOptions(headers=())


def test_defaults_for_plugins_written_before_the_contract_grew() -> None:
    [table] = compile_sql(SQL, env=ENV).tables
    legacy = replace(table, connector="legacy", connector_options=_LegacyOptions(
        headers=(("Authorization", "Bearer {{ TOKEN }}"),)
    ))  # fmt: skip
    # The session always masked 'headers' variables: a plugin keeps that without a schema.
    assert _Legacy().secrets(legacy, ENV).values == frozenset({"tok,en:1"})
    skipped = asyncio.run(_Legacy().probe(legacy, ENV))
    assert skipped == ProbeSkipped("'arroyo-lite test' has no probe for 'legacy' tables")
    assert isinstance(asyncio.run(SseLike().probe(legacy, ENV)), ProbeSkipped)


def test_impulse_has_nothing_to_probe() -> None:
    [table] = compile_sql("CREATE TABLE i WITH (connector = 'impulse', event_rate = 1);").tables
    result = asyncio.run(get_connector("impulse").probe(table, {}))
    assert isinstance(result, ProbeSkipped) and "generates its rows locally" in result.reason
    assert get_connector("impulse").secrets(table, ENV).values == frozenset()
