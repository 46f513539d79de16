"""Check a connector's typed option values against its JSON Schema.

Connectors first pull their options with Arroyo's typing rules
(:mod:`arroyo_lite.connectors.options`), then hand the typed values here (an ``OptionSet``
does both, with the schema derived from its declaration). jsonschema finds enum, range and
required-key violations; this module turns each into Arroyo's wording (``invalid value for
'method'``), positioned at the option's value, with the accepted values as a hint, and
reports every one of them through :meth:`OptionReader.report` (raised in strict mode,
collected otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from arroyo_lite.connectors.options import OptionReader, OptionValue
from arroyo_lite.errors import SqlError, did_you_mean


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
