"""Does a table's schema fit the body at all? The check behind ``arroyo-lite test``'s warning.

A structured ``json`` table whose columns name no field of the records decodes every message
to a row of NULLs, which is not an error (missing keys are NULL): ``(id BIGINT)`` over
``{"results": [...]}`` "works". :func:`mismatch_warning` notices the two tell-tale signs on a
decoded sample (every row entirely NULL; most declared columns matching no field), names the
body's top-level keys, suggests the ``records.path`` of records wrapped in an object (found as
``infer`` finds them), and points at ``arroyo-lite infer``. Only ``test`` runs it, once per
probe: never on the polling path.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa

from arroyo_lite.config import Format, TableConfig

#: How many top-level keys the warning lists before "...".
MAX_KEYS = 12


def mismatch_warning(
    config: TableConfig, body: bytes, batch: pa.RecordBatch | None, *, infer_command: str
) -> str | None:
    """A warning when ``config``'s declared columns do not fit ``body``, else ``None``.

    ``batch`` is the body decoded with the table's schema; ``infer_command`` the
    ``arroyo-lite infer ...`` command line that would fetch the same response. Warns when at
    least one row was decoded and every physical column of every row is NULL, or when more
    than half of the declared columns match no top-level key of the records. Only for
    structured ``json``.
    """
    spec = config.format
    if spec is None or spec.format is not Format.JSON or spec.unstructured:
        return None
    declared = [c.name for c in config.physical_columns]
    if not declared or batch is None or batch.num_rows == 0:
        return None
    where, top_keys = _keys(body)
    record_keys = set(top_keys)
    all_null = all(batch.column(name).null_count == batch.num_rows for name in declared)
    unmatched = [name for name in declared if name not in record_keys]
    if all_null:
        problem = f"every decoded row is entirely NULL ({batch.num_rows} row(s))"
    elif len(unmatched) * 2 > len(declared):
        listed = ", ".join(unmatched)
        problem = f"{len(unmatched)} of {len(declared)} declared columns match no field ({listed})"
    else:
        return None
    shown = ", ".join(top_keys[:MAX_KEYS]) + (", ..." if len(top_keys) > MAX_KEYS else "")
    keys = f"{where} keys are: {shown}" if top_keys else "the body holds no JSON object"
    wrapped = " (wrapped inside the object?)" if where.startswith("the body") else ""
    return (
        f"{problem}; {keys}. The declared columns do not match the records{wrapped}: "
        f"{_record_path_hint(config, body)}`{infer_command}` prints a CREATE TABLE inferred "
        "from a response"
    )


def _record_path_hint(config: TableConfig, body: bytes) -> str:
    """``add 'records.path' = '$.results' ..., or `` when the body's records are wrapped in an
    object and the table sets no record path (a connector with that option); else ``""``."""
    from arroyo_lite.infer.ddl import record_path_text
    from arroyo_lite.infer.sample import InferError, locate_records

    options = config.connector_options
    if not hasattr(options, "records_path") or options.records_path is not None:
        return ""
    try:
        records = locate_records(body)
    except InferError:
        return ""
    if not records.wrapped:
        return ""
    path = record_path_text(records.path)
    return f"add 'records.path' = '{path}' (the records look like the array there), or "


def _keys(body: bytes) -> tuple[str, list[str]]:
    """The keys of the body's first JSON value (for an array: of its objects, in first-seen
    order), and what they are the keys of, for the message."""
    first: Any = None
    text = body.strip()
    try:
        first = orjson.loads(text)
    except orjson.JSONDecodeError:
        line = next((line for line in text.split(b"\n") if line.strip()), b"")
        try:
            first = orjson.loads(line)
        except orjson.JSONDecodeError:
            return "", []
    if isinstance(first, dict):
        return "the body's top-level", list(first)
    if isinstance(first, list):
        names: dict[str, None] = {}
        for item in first:
            if isinstance(item, dict):
                names.update(dict.fromkeys(item))
        return "the array's objects'", list(names)
    return "", []
