"""``arroyo-lite connectors [NAME]``: list the registry and each connector's options.

Options come from each connector's JSON Schema: type, whether required or else the
default (``none`` when it stays unset), the description, and ``[extension]`` for options
arroyo-lite adds beyond Arroyo (``x-extension``).
Plain text, one option per line, so the output greps well.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from arroyo_lite.cli import main
from arroyo_lite.errors import ConnectorError

if TYPE_CHECKING:  # (the connectors are imported when listed, not for `connectors --help`)
    from arroyo_lite.connectors.base import Connector


def _role(connector: Connector) -> str:
    roles = [r for r, on in (("source", connector.source), ("sink", connector.sink)) if on]
    return "/".join(roles) or "none"


def option_lines(schema: dict[str, Any]) -> list[str]:
    """One line per option: ``name  type  required|default=…  [extension]  -- description``.

    An optional option without a schema default shows ``default=none`` (it stays unset).
    """
    required = set(schema.get("required") or [])
    lines = []
    props: dict[str, Any] = schema.get("properties") or {}
    for key, prop in props.items():
        kind = str(prop.get("type", "any"))
        if "enum" in prop:
            kind += " (" + " | ".join(str(v) for v in prop["enum"]) + ")"
        parts = [f"  {key}", kind]
        if key in required:
            parts.append("required")
        elif "default" in prop:
            parts.append(f"default={json.dumps(prop['default'])}")
        else:
            parts.append("default=none")  # optional, and unset unless given
        if prop.get("x-extension"):
            parts.append("[extension]")
        line = "  ".join(parts)
        if prop.get("description"):
            line += f"  -- {prop['description']}"
        lines.append(line)
    return lines


@main.command()
@click.argument("name", required=False)
def connectors(name: str | None) -> None:
    """List connectors (source/sink) and their WITH options, or show connector NAME.

    Options marked [extension] are arroyo-lite additions that an Arroyo cluster does not know.
    The options every connection table accepts (format, framing, bad_data, ...) follow.
    """
    from arroyo_lite.connectors.registry import all_connectors, get_connector, load_errors
    from arroyo_lite.sql.generic_options import GENERIC_OPTIONS_SCHEMA

    if name is not None:
        try:
            chosen = [get_connector(name)]
        except ConnectorError as e:
            click.echo(e.format(), err=True)
            raise SystemExit(1) from e
    else:
        chosen = list(all_connectors().values())
        for error in load_errors():
            click.echo(f"warning: {error.message}", err=True)
    for i, connector in enumerate(chosen):
        if i:
            click.echo("")
        click.echo(f"{connector.name}  ({_role(connector)})  {connector.description}")
        for line in option_lines(connector.options_schema()):
            click.echo(line)
    click.echo("")
    click.echo("generic options (every connection table)")
    for line in option_lines(GENERIC_OPTIONS_SCHEMA):
        click.echo(line)
