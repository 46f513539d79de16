"""The ``filesystem`` connector: a sink writing JSON or Parquet files under a local path.

Validation follows Arroyo: ``type`` and ``path`` are required, ``type = 'source'`` is not
available here (arroyo-lite only writes files), ``format`` must be set and be ``json`` or
``parquet``, a ``partitioning.fields`` entry must be a column (Arroyo's words: ``Unable to
get field named "x"``). Beyond Arroyo, a non-local ``path`` is an error at validation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arroyo_lite.config import TIMESTAMP_COLUMN, Format, TableConfig
from arroyo_lite.connectors.base import Connector, SinkOperator, SourceContext
from arroyo_lite.connectors.filesystem.options import OPTIONS, FilesystemOptions, local_path
from arroyo_lite.connectors.options import require_format

if TYPE_CHECKING:
    from arroyo_lite.connectors.options import OptionReader

#: The formats a filesystem sink writes (Arroyo's: json, parquet).
WRITABLE = (Format.JSON, Format.PARQUET)


class FilesystemConnector(Connector):
    name = "filesystem"
    description = "Write to a filesystem (like S3)"
    source = False
    sink = True
    option_set = OPTIONS
    sink_formats = frozenset({Format.PARQUET.value})

    def parse_options(self, options: OptionReader, table: TableConfig) -> FilesystemOptions:
        pulled = OPTIONS.pull(options)
        OPTIONS.check(pulled, options)
        if pulled.values["type"] is None and options.is_invalid("type"):
            # A source table (or an unknown type): its other options are not worth listing
            # as unknown (consumed unread).
            for key in options.remaining():
                options.pull(key)
        path = pulled.values["path"]
        if path is not None and local_path(path) is None:
            options.report(
                options.error(
                    f"invalid path '{path}': arroyo-lite writes to local paths only",
                    pulled.where.get("path"),
                    hint="write a directory such as '/data/out' or 'file:///data/out'",
                ),
                "path",
            )
        fields = tuple(pulled.values["partitioning.fields"] or ())
        declared = {c.name for c in table.columns}
        for field in fields:
            if declared and field not in declared:
                options.report(
                    options.error(
                        f'Unable to get field named "{field}". Valid fields: ['
                        + ", ".join(f'"{n}"' for n in [c.name for c in table.columns]
                                    + [TIMESTAMP_COLUMN])
                        + "]",
                        pulled.where.get("partitioning.fields"),
                        hint="partition by columns of the table",
                    ),
                    "partitioning.fields",
                )
        require_format(
            options, table, "filesystem sink requires a format, such as json or parquet",
            hint="add format = 'parquet' (or 'json') to the WITH clause",
        )  # fmt: skip
        if table.format is not None and table.format.format not in WRITABLE:
            options.report(
                options.error(
                    f"Unsupported format: {table.format.format.value}",
                    options.consumed("format") or options.get("format"),
                    hint="a filesystem sink writes format = 'json' or 'parquet'",
                ),
                "format",
            )
        storage = pulled.values["storage"] or ()
        result: FilesystemOptions = OPTIONS.build(
            pulled, partition_fields=fields, storage=tuple(storage)
        )
        return result

    def make_sink(self, config: TableConfig, context: SourceContext) -> SinkOperator:
        # Imported lazily: validating SQL must not pull in the writers.
        from arroyo_lite.connectors.filesystem.operator import FilesystemSink

        return FilesystemSink(config, context)
