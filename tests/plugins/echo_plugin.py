"""A tiny third-party connector, as a plugin author would write it.

``EchoConnector`` is a sink with one required option, ``path``, and a metadata field, to show
that plugins plug into the same validation as the built-ins. ``NOT_A_CONNECTOR`` is what a
broken plugin registers: the registry must reject it with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from arroyo_lite.connectors.base import Connector

if TYPE_CHECKING:
    from arroyo_lite.config import TableConfig
    from arroyo_lite.connectors.options import OptionReader


@dataclass(frozen=True)
class EchoOptions:
    path: str
    pretty: bool = False


class EchoConnector(Connector):
    name = "echo"
    description = "Write rows to a file (test plugin)"
    source = False
    sink = True
    schema_resource = None

    def parse_options(self, options: OptionReader, table: TableConfig) -> EchoOptions:
        path = options.pull_str("path")
        pretty = options.pull_opt_bool("pretty") or False
        return EchoOptions(path=path, pretty=pretty)


NOT_A_CONNECTOR = {"name": "broken"}
