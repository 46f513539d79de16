"""Connectors shaped like Arroyo's other connectors (kafka, sse, mqtt, ...), for tests only.

They validate the options Arroyo's versions read, so the reference DDL that uses them can be
checked end to end by the front end (columns, metadata, watermarks, formats). They never run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arroyo_lite.connectors.base import Connector
from arroyo_lite.connectors.registry import get_connector

if TYPE_CHECKING:
    from arroyo_lite.config import TableConfig
    from arroyo_lite.connectors.options import OptionReader


@dataclass(frozen=True)
class Pulled:
    values: dict[str, Any]


class _Like(Connector):
    strings: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    metadata: Mapping[str, str] = {}

    def metadata_fields(self) -> Mapping[str, str]:
        return self.metadata

    def parse_options(self, options: OptionReader, table: TableConfig) -> Pulled:
        values: dict[str, Any] = {k: options.pull_str(k) for k in self.strings}
        values.update({k: options.pull_opt_str(k) for k in self.optional})
        return Pulled(values)


class KafkaLike(_Like):
    name = "kafka"
    description = "kafka-shaped test connector"
    source = sink = True
    strings = ("bootstrap_servers", "topic")
    metadata = {"key": "TEXT", "topic": "TEXT", "partition": "INT", "offset_id": "BIGINT"}


class SseLike(_Like):
    name = "sse"
    description = "sse-shaped test connector"
    strings = ("endpoint",)
    optional = ("events", "headers")


class WebsocketLike(_Like):
    name = "websocket"
    description = "websocket-shaped test connector"
    strings = ("endpoint",)


class SingleFileLike(_Like):
    name = "single_file"
    description = "single_file-shaped test connector"
    source = sink = True
    strings = ("path",)


class MqttLike(_Like):
    name = "mqtt"
    description = "mqtt-shaped test connector"
    source = sink = True
    strings = ("url", "topic")
    metadata = {"topic": "TEXT"}


LIKE: dict[str, Connector] = {
    c.name: c for c in (KafkaLike(), SseLike(), WebsocketLike(), SingleFileLike(), MqttLike())
}


def lookup(name: str) -> Connector:
    """The registry, plus the Arroyo-shaped test connectors."""
    return LIKE[name] if name in LIKE else get_connector(name)
