"""Where the records are in one response body: framing, wrapper and record path.

:func:`locate_records` looks at a body the way the ``json`` decoder will read it and answers:
is it one JSON document or newline-delimited JSON (NDJSON: ``framing = 'newline'``)? Are the
records the document itself (an object, or the elements of a top-level array) or wrapped
inside it (``{"results": [...]}``, a GeoJSON ``FeatureCollection``'s ``features``)? It returns
the records as NDJSON bytes for the type inference (:mod:`arroyo_lite.infer.schema`), which
DuckDB does; only the top of the document is walked here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from arroyo_lite.errors import ArroyoLiteError

#: Keys that hold the records in common API envelopes (JSON:API, OData, Elasticsearch, REST
#: list endpoints, GeoJSON). A list of objects under one of these is taken as the records.
WRAPPER_KEYS = frozenset(
    {
        "data", "results", "items", "records", "rows", "entries", "features", "hits", "value",
        "objects", "elements", "events", "messages", "list", "content", "docs", "nodes",
    }
)  # fmt: skip
#: How deep a wrapper is searched for (``{"hits": {"hits": [...]}}`` is depth 2).
MAX_WRAPPER_DEPTH = 3


class InferError(ArroyoLiteError):
    """The sample cannot give a schema (not JSON, no records); the hint says what to use."""


@dataclass(frozen=True, slots=True)
class Records:
    """The records of one body, ready for type inference.

    ``ndjson`` holds one record (a JSON object) per line. ``framing`` is ``'newline'`` when the
    body itself is NDJSON, else ``None``. ``path`` is the chain of keys leading from the
    document to the array of records (``()`` when the records are at the top), ``top_keys``
    the keys of the top-level object (``()`` for an array or NDJSON).
    """

    ndjson: bytes
    count: int
    framing: str | None
    path: tuple[str, ...]
    top_keys: tuple[str, ...]
    #: Every key of the records, in first-seen order (empty keys left out: no column has
    #: an empty name).
    keys: tuple[str, ...] = ()
    #: Some record had a field with an empty key (left out of ``ndjson``).
    empty_key: bool = False

    @property
    def wrapped(self) -> bool:
        return bool(self.path)


def locate_records(body: bytes) -> Records:
    """Find the records in ``body``. Raises :class:`InferError` when the body is empty, not
    JSON (neither one document nor one document per line), or holds no JSON object."""
    text = body.removeprefix(b"\xef\xbb\xbf").strip()
    if not text:
        raise InferError("the response body is empty: there is nothing to infer a schema from")
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _ndjson(text)
    if isinstance(document, list):
        return _from_list(document, path=(), top_keys=())
    if not isinstance(document, dict):
        raise InferError(
            f"the response body is a single JSON {type(document).__name__}, not an object "
            "or an array of objects",
            hint="read it with format = 'json' and 'json.unstructured' = 'true' (a `value "
            "JSON` column), or format = 'raw_string'",
        )
    top_keys = tuple(document)
    found = _find_wrapped(document, (), 1)
    if found is None:
        return _records([document], None, (), top_keys)
    path, records = found
    return _from_list(records, path=path, top_keys=top_keys)


def _ndjson(text: bytes) -> Records:
    lines = [line for line in text.split(b"\n") if line.strip()]
    objects = []
    for number, line in enumerate(lines, 1):
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise InferError(
                f"the response body is not JSON: {e.msg} (line {number}, neither one JSON "
                "document nor one per line)",
                hint="for text, use format = 'raw_string' (one `value TEXT` column)",
            ) from None
        if isinstance(value, dict):
            objects.append(value)
    if not objects:
        raise InferError("the newline-delimited body holds no JSON object")
    return _records(objects, "newline", (), ())


def _from_list(items: list[Any], *, path: tuple[str, ...], top_keys: tuple[str, ...]) -> Records:
    objects = [item for item in items if isinstance(item, dict)]
    if not objects:
        where = f"'{'.'.join(path)}'" if path else "the top-level array"
        what = "is empty" if not items else "holds no JSON object"
        raise InferError(
            f"{where} {what}: there is no record to infer columns from",
            hint="try again when the API returns data, or read the body with "
            "'json.unstructured' = 'true'",
        )
    return _records(objects, None, path, top_keys)


def _records(
    objects: list[dict[str, Any]],
    framing: str | None,
    path: tuple[str, ...],
    top_keys: tuple[str, ...],
) -> Records:
    keys = dict.fromkeys(key for item in objects for key in item)
    empty = "" in keys
    if empty:
        # DuckDB cannot make a column of an empty key (nor can SQL): leave that field out.
        objects = [{k: v for k, v in item.items() if k} for item in objects]
        del keys[""]
    if not keys:
        raise InferError(
            "the records have no field that can be a column: there is nothing to declare",
            hint="read the body with 'json.unstructured' = 'true' (a `value JSON` column)",
        )
    ndjson = b"\n".join(map(orjson.dumps, objects))
    return Records(ndjson, len(objects), framing, path, top_keys, tuple(keys), empty)


def _find_wrapped(
    node: dict[str, Any], path: tuple[str, ...], depth: int
) -> tuple[tuple[str, ...], list[Any]] | None:
    """The array of records inside ``node``, if it looks like an envelope around one.

    An envelope is a GeoJSON FeatureCollection, or an object with a list of objects under a
    :data:`WRAPPER_KEYS` key (searched down to :data:`MAX_WRAPPER_DEPTH`), or an object whose
    only non-scalar value is a list of objects (``{"count": 3, "next": null, "page": [...]}``).
    An object with other nested values is a record in itself (a weather reading with a list
    of alerts is one row).
    """
    if node.get("type") == "FeatureCollection" and isinstance(node.get("features"), list):
        return (*path, "features"), node["features"]
    lists = {k: v for k, v in node.items() if isinstance(v, list) and _has_object(v)}
    for key, value in lists.items():
        if key.lower() in WRAPPER_KEYS:
            return (*path, key), value
    nested = [v for v in node.values() if isinstance(v, dict | list)]
    if len(lists) == 1 and len(nested) == 1:
        key = next(iter(lists))
        return (*path, key), lists[key]
    if depth < MAX_WRAPPER_DEPTH:
        for key, value in node.items():
            if isinstance(value, dict) and key.lower() in WRAPPER_KEYS | {"response", "result"}:
                found = _find_wrapped(value, (*path, key), depth + 1)
                if found is not None:
                    return found
    return None


def _has_object(items: list[Any]) -> bool:
    return any(isinstance(item, dict) for item in items)
