"""Check a connector's typed option values against its JSON Schema (``table.json``).

Connectors first pull their options with Arroyo's typing rules (:mod:`arroyo_lite.sql.options`),
then hand the typed values here. jsonschema finds enum, range and required-key violations;
this module turns each into Arroyo's wording (``invalid value for 'method'``), positioned at
the option's value, with the accepted values as a hint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from arroyo_lite.errors import SqlError
from arroyo_lite.sql.options import OptionReader, OptionValue


def _quote_list(values: list[Any]) -> str:
    shown = [f"'{v}'" if isinstance(v, str) else str(v) for v in values]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def _one(
    error: ValidationError, values: Mapping[str, Any], where: Mapping[str, OptionValue],
    reader: OptionReader,
) -> SqlError:
    key = str(error.path[0]) if error.path else None
    if error.validator == "required" or key is None:
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return reader.missing(missing, f"add {missing} = ... to the WITH clause")
    value = values.get(key)
    shown = f"'{value}'" if isinstance(value, str) else str(value)
    option = where.get(key)
    if error.validator == "enum":
        return reader.error(
            f"invalid value for '{key}': {shown}",
            option,
            hint=f"expected {_quote_list(list(cast(Iterable[Any], error.validator_value)))} "
            "(case-sensitive)",
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
) -> None:
    """Validate ``values`` (typed, ``None`` entries dropped) against ``schema``.

    ``where`` maps keys to the options they came from, for positions. Raises the first
    problem (in key order of the schema) as a positioned :class:`SqlError`.
    """
    present = {k: v for k, v in values.items() if v is not None}
    validator = Draft202012Validator(dict(schema))
    order = {key: i for i, key in enumerate(schema.get("properties", {}))}
    errors = sorted(
        validator.iter_errors(present),
        key=lambda e: order.get(str(e.path[0]) if e.path else "", -1),
    )
    if errors:
        raise _one(errors[0], present, where, reader)
