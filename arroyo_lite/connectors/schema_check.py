"""Check a connector's typed option values against its JSON Schema.

Connectors first pull their options with Arroyo's typing rules
(:mod:`arroyo_lite.connectors.options`), then hand the typed values here (an ``OptionSet``
does both, with the schema derived from its declaration). jsonschema finds enum, range and
required-key violations; this module turns each into Arroyo's wording (``invalid value for
'method'``), positioned at the option's value, with the accepted values as a hint, and
reports every one of them through :meth:`OptionReader.report` (raised in strict mode,
collected otherwise).

jsonschema itself (~70 ms to import) is loaded only when a value is wrong: valid values,
the common case, are recognised by :func:`satisfies`, which decides the JSON Schema
keywords option schemas use, exactly as jsonschema's Draft 2020-12 validator does, and
answers "not sure" for any other assertion keyword (jsonschema then decides).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from numbers import Number
from typing import TYPE_CHECKING, Any, cast

from arroyo_lite.connectors.options import OptionReader, OptionValue
from arroyo_lite.errors import SqlError, did_you_mean

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

#: Keywords that assert nothing (Draft 2020-12 treats ``format`` as an annotation unless a
#: format checker is given, and none is); ``x-...`` keys are ours and assert nothing either.
_ANNOTATIONS = frozenset({
    "$schema", "$id", "$comment", "title", "description", "default", "examples",
    "deprecated", "readOnly", "writeOnly", "format",
})  # fmt: skip
_BOUNDS = {
    "minimum": lambda v, b: v >= b,
    "maximum": lambda v, b: v <= b,
    "exclusiveMinimum": lambda v, b: v > b,
    "exclusiveMaximum": lambda v, b: v < b,
}


def _is_type(value: Any, name: str) -> bool:
    """jsonschema's Draft 2020-12 type checker (a bool is no number; 1.0 is an integer)."""
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if name == "array":
        return isinstance(value, list)
    if name == "object":
        return isinstance(value, dict)
    if isinstance(value, bool) or not isinstance(value, Number):
        return False
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return name == "number"


def _in_enum(value: Any, accepted: Iterable[Any]) -> bool | None:
    """Whether ``value`` equals a member as jsonschema compares them (``True`` is not ``1``);
    ``None`` when a container is involved (left to jsonschema)."""
    for member in accepted:
        if isinstance(member, list | dict) or isinstance(value, list | dict):
            return None
        if isinstance(member, str) or isinstance(value, str):
            same = member == value
        elif isinstance(member, bool) or isinstance(value, bool):
            same = isinstance(member, bool) and isinstance(value, bool) and member == value
        else:
            same = member == value
        if same:
            return True
    return False


def satisfies(schema: Mapping[str, Any], value: Any) -> bool:
    """``True`` when ``value`` is certainly valid against ``schema``; ``False`` when it is
    not, or when ``schema`` uses an assertion this check does not decide (then only
    jsonschema can tell). Decided: ``type``, ``enum``, ``const``, the four bounds,
    ``required``, ``properties``, ``patternProperties``, ``additionalProperties``, ``items``."""
    for keyword, expected in schema.items():
        if keyword in _ANNOTATIONS or keyword.startswith("x-"):
            continue
        if keyword == "type":
            names = [expected] if isinstance(expected, str) else list(expected)
            if not any(_is_type(value, n) for n in names):
                return False
        elif keyword == "enum":
            if not _in_enum(value, expected):
                return False
        elif keyword == "const":
            if not _in_enum(value, [expected]):
                return False
        elif keyword in _BOUNDS:
            if _is_type(value, "number") and not _BOUNDS[keyword](value, expected):
                return False
        elif keyword == "required":
            if isinstance(value, dict) and any(k not in value for k in expected):
                return False
        elif keyword == "items":
            if isinstance(value, list) and not (
                isinstance(expected, Mapping) and all(satisfies(expected, v) for v in value)
            ):
                return False
        elif keyword in ("properties", "patternProperties", "additionalProperties"):
            if isinstance(value, dict) and not _object_satisfies(schema, value):
                return False
        else:
            return False
    return True


def _object_satisfies(schema: Mapping[str, Any], value: Mapping[str, Any]) -> bool:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    patterns: Mapping[str, Any] = schema.get("patternProperties") or {}
    additional = schema.get("additionalProperties", True)
    for key, item in value.items():
        applied = [properties[key]] if key in properties else []
        applied += [sub for pattern, sub in patterns.items() if re.search(pattern, key)]
        if not applied:
            if additional is False:
                return False
            if isinstance(additional, Mapping):
                applied = [additional]
        for sub in applied:
            if sub is False or (isinstance(sub, Mapping) and not satisfies(sub, item)):
                return False
    return True


def _quote_list(values: list[Any]) -> str:
    shown = [f"'{v}'" if isinstance(v, str) else str(v) for v in values]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def _did_you_mean(value: Any, accepted: list[Any]) -> str:
    """``"did you mean 'X'? "`` for a string close to (or differing in case from) one
    accepted string value; ``""`` otherwise."""
    if not isinstance(value, str):
        return ""
    hint = did_you_mean(value, [a for a in accepted if isinstance(a, str)])
    return f"{hint} " if hint else ""


def _one(
    error: ValidationError,
    values: Mapping[str, Any],
    where: Mapping[str, OptionValue],
    reader: OptionReader,
) -> SqlError | None:
    key = str(error.path[0]) if error.path else None
    if error.validator == "required" or key is None:
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        if reader.is_invalid(missing):
            return None  # given, with a bad value that is reported already
        return reader.missing(missing, f"add {missing} = ... to the WITH clause")
    value = values.get(key)
    shown = f"'{value}'" if isinstance(value, str) else str(value)
    option = where.get(key)
    if error.validator == "enum":
        accepted = list(cast(Iterable[Any], error.validator_value))
        return reader.error(
            f"invalid value for '{key}': {shown}",
            option,
            hint=_did_you_mean(value, accepted)
            + f"expected {_quote_list(accepted)} (case-sensitive)",
        )
    bounds = {
        "minimum": "at least",
        "exclusiveMinimum": "greater than",
        "maximum": "at most",
        "exclusiveMaximum": "less than",
    }
    if error.validator in bounds:
        return reader.error(
            f"invalid value for '{key}': {shown} (must be {bounds[str(error.validator)]} "
            f"{error.validator_value})",
            option,
        )
    return reader.error(f"invalid value for '{key}': {error.message}", option)


def check_options(
    schema: Mapping[str, Any],
    values: Mapping[str, Any],
    where: Mapping[str, OptionValue],
    reader: OptionReader,
) -> list[str]:
    """Validate ``values`` (typed, ``None`` entries dropped) against ``schema``.

    ``where`` maps keys to the options they came from, for positions. Reports every
    problem (one per key, in key order of the schema) as a positioned :class:`SqlError`
    through ``reader.report`` and returns the keys found bad. (In strict mode the first
    problem is raised.) ``None`` values are keys absent or already reported bad.
    """
    present = {k: v for k, v in values.items() if v is not None}
    if satisfies(schema, present):
        return []
    from jsonschema import Draft202012Validator  # (only for values that are wrong)

    validator = Draft202012Validator(dict(schema))
    order = {key: i for i, key in enumerate(schema.get("properties", {}))}
    errors = sorted(
        validator.iter_errors(present),
        key=lambda e: order.get(str(e.path[0]) if e.path else "", -1),
    )
    bad: list[str] = []
    for error in errors:
        key = str(error.path[0]) if error.path else ""
        if key in bad and key:
            continue  # one problem per key
        problem = _one(error, present, where, reader)
        if problem is not None:
            if key:
                bad.append(key)
            reader.report(problem, key or None)
    return bad
