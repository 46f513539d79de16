"""Install the test connector plugin into a directory, as pip would (a ``*.dist-info``)."""

from __future__ import annotations

import shutil
from pathlib import Path

PLUGIN_SOURCE = Path(__file__).parents[1] / "plugins" / "echo_plugin.py"


def install_plugin(target: Path, *, broken: bool = True) -> Path:
    """Copy the plugin module to ``target`` and write its dist-info with entry points.

    With ``broken``, a second entry point names an object that is not a Connector.
    """
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(PLUGIN_SOURCE, target / "h1_echo_plugin.py")
    info = target / "h1_echo_plugin-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: h1-echo-plugin\nVersion: 0.1\n", encoding="utf-8"
    )
    lines = ["[arroyo_lite.connectors]", "echo = h1_echo_plugin:EchoConnector"]
    if broken:
        lines.append("broken = h1_echo_plugin:NOT_A_CONNECTOR")
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target
