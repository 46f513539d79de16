"""The embedded demo: a small HTTP API (:mod:`arroyo_lite.demo.api`) and the quickstart SQL.

``quickstart.sql`` (shipped as package data) defines tables over the demo API at
:data:`DEFAULT_PORT`; ``arroyo-lite demo`` starts the API and runs it. The file
``sql_examples/quickstart.sql`` in the repository is an identical copy, for reading.
"""

from __future__ import annotations

from importlib import resources

#: The port ``quickstart.sql`` points at; ``demo`` rewrites it when the port is taken.
DEFAULT_PORT = 8765
#: The host every endpoint in ``quickstart.sql`` uses.
DEFAULT_HOST = "127.0.0.1"


def quickstart_sql() -> str:
    """The text of the packaged ``quickstart.sql``."""
    return resources.files(__package__).joinpath("quickstart.sql").read_text(encoding="utf-8")


def retarget(sql: str, port: int, *, from_port: int = DEFAULT_PORT) -> str:
    """Point every ``127.0.0.1:<from_port>`` in ``sql`` at ``port`` instead.

    Only the exact host:port text is replaced, so nothing else in the file changes.
    """
    if port == from_port:
        return sql
    return sql.replace(f"{DEFAULT_HOST}:{from_port}", f"{DEFAULT_HOST}:{port}")
