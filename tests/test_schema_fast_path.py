"""The option check's fast path (``schema_check.satisfies``) agrees with jsonschema.

``satisfies`` lets ``validate`` skip importing jsonschema for valid options; it may only say
"valid" where jsonschema's Draft 2020-12 validator finds no error. Checked on every built-in
connector's schema with generated values, and on hand-picked corner cases of JSON Schema's
comparisons (``True`` is not ``1``, ``1.0`` is an integer, ``format`` asserts nothing).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from arroyo_lite.connectors.registry import BUILTINS, get_connector
from arroyo_lite.connectors.schema_check import satisfies

SCHEMAS = {name: get_connector(name).options_schema() for name in BUILTINS}


def jsonschema_valid(schema: dict[str, Any], value: Any) -> bool:
    return not list(Draft202012Validator(schema).iter_errors(value))


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-3, 3, allow_nan=False),
    st.sampled_from([0.0, 1.0, -1.5, 1e9]),
    st.text(max_size=4),
    st.sampled_from(["GET", "get", "json", "all", "snapshot", "basic", "newline", "x"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3))


def options_for(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects over the schema's own keys (and a stray key), with any values: mostly
    wrong ones, and the schema's enum members and defaults, so both verdicts occur."""
    keys = [*schema.get("properties", {}), "query.x", "stray"]
    known = [
        v
        for prop in schema.get("properties", {}).values()
        for v in [*prop.get("enum", []), prop.get("default")]
        if v is not None
    ]
    value = st.one_of(values, st.sampled_from(known)) if known else values
    return st.dictionaries(st.sampled_from(keys), value, max_size=4)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_fast_path_never_accepts_what_jsonschema_rejects(name, data):
    schema = SCHEMAS[name]
    value = data.draw(options_for(schema))
    if satisfies(schema, value):
        assert jsonschema_valid(schema, value), value


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_fast_path_accepts_the_defaults(name):
    # The common case (what validate meets) must stay on the fast path.
    schema = SCHEMAS[name]
    value = {
        key: prop["default"]
        for key, prop in schema.get("properties", {}).items()
        if "default" in prop
    }
    filler = {"string": "http://127.0.0.1/x", "number": 1, "integer": 1}
    for key in schema.get("required", []):
        value.setdefault(key, filler[schema["properties"][key]["type"]])
    assert jsonschema_valid(schema, value)
    assert satisfies(schema, value)


CASES: list[tuple[dict[str, Any], Any]] = [
    ({"type": "integer"}, 1.0),
    ({"type": "integer"}, 1.5),
    ({"type": "integer"}, True),
    ({"type": "number"}, False),
    ({"type": ["string", "null"]}, None),
    ({"type": "array"}, ("a",)),  # a tuple is no JSON array
    ({"type": "array", "items": {"type": "string"}}, ["a", 1]),
    ({"enum": [1, 2]}, True),
    ({"enum": [True]}, 1),
    ({"enum": ["a"]}, "a"),
    ({"enum": [[1]]}, [1]),  # (containers in an enum: not decided here)
    ({"const": 0}, False),
    ({"exclusiveMinimum": 0}, 0),
    ({"exclusiveMinimum": 0}, "0"),
    ({"minimum": 1}, True),
    ({"type": "string", "format": "uri"}, "not a uri"),
    ({"required": ["a"]}, {}),
    ({"patternProperties": {"^q\\.": {"type": "string"}}}, {"q.a": 1}),
    ({"patternProperties": {"^q\\.": {"type": "string"}}}, {"q.a": "b", "r": 1}),
    ({"properties": {"a": {}}, "additionalProperties": False}, {"b": 1}),
    ({"properties": {"a": False}}, {"a": 1}),
    ({"maxLength": 1}, "a"),  # (not decided here: jsonschema says)
    ({"x-extension": True, "type": "string"}, "a"),
]


@pytest.mark.parametrize(("schema", "value"), CASES)
def test_fast_path_corner_cases(schema, value):
    expected = jsonschema_valid(schema, value)
    decided = satisfies(schema, value)
    assert decided <= expected  # never "valid" when jsonschema says not
    undecided = "maxLength" in schema or schema.get("enum") == [[1]]
    assert decided == (expected and not undecided)  # exact on the keywords it decides
