"""Connector options declared once: the fields of the connector's frozen options dataclass.

A connector writes its options as a frozen dataclass whose fields are made with
:func:`option`. Each field carries an :class:`OptionSpec` (the WITH key, its type, default,
description, constraints, and whether it is an arroyo-lite *extension* or Arroyo's own).
:class:`OptionSet` reads those fields and derives everything else from them:

* the pulls: :meth:`OptionSet.pull` reads each key with Arroyo's typed puller for its kind,
  in declaration order (Arroyo's ``from_options`` order: declare Arroyo's keys first);
* the JSON Schema (:meth:`OptionSet.json_schema`, Arroyo's ``table.json`` plus the extensions,
  marked ``x-extension``) and the check of the typed values against it
  (:meth:`OptionSet.check`);
* the defaults (the dataclass defaults, shown in the schema when they are JSON values);
* the ``arroyo-lite connectors`` listing (it prints the derived schema);
* the typed options object itself (:meth:`OptionSet.build`).

Adding an option is one field in the dataclass (plus its use, and its README line).
The members of a key family such as ``pagination.*`` are made by an :func:`option_group`:
each key is spelt by its field's name (``pagination_limit`` is ``pagination.limit``) and the
family's extension mark is written once.

A *family* (``family=True``, e.g. ``query``) is one field for every key ``query.<name>``:
its value is the ``(name, text)`` pairs in the order written, and the schema describes the
family as a ``patternProperties`` entry (each member a string).

Extensions used: :meth:`OptionSet.extensions_used` returns, for an :class:`OptionReader` the
set has pulled from, each extension key the table set and where it is written
(:class:`ExtensionUse`); :func:`extensions_in` does the same for a validated
:class:`~arroyo_lite.config.TableConfig` (from its ``option_positions``) against any schema
marking extensions with ``x-extension``: the connector's (``Connector.extensions_used``) and
the generic options' (``arroyo_lite.sql.generic_options.GENERIC_OPTIONS_SCHEMA``, e.g.
``retention.max_rows``). A strict ``validate --arroyo`` lists both.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arroyo_lite.connectors.options import OptionReader, OptionValue
from arroyo_lite.connectors.schema_check import check_options
from arroyo_lite.errors import SourcePosition

if TYPE_CHECKING:
    from arroyo_lite.config import TableConfig

#: A value check run right after the pull: ``(message, hint)`` of the problem, or ``None``.
ValueCheck = Callable[[Any], "tuple[str, str | None] | None"]


class OptionKind(enum.Enum):
    """An option's Arroyo type: which puller reads it and its JSON Schema ``type``."""

    STRING = ("string", "pull_opt_str", "")
    INTEGER = ("integer", "pull_opt_i64", 0)
    UNSIGNED = ("integer", "pull_opt_u64", 0)
    NUMBER = ("number", "pull_opt_f64", 0.0)
    BOOLEAN = ("boolean", "pull_opt_bool", False)
    #: An interval (``interval '7' day`` or ``'7 days'``), held as seconds.
    DURATION = ("number", "pull_opt_duration", 0.0)
    #: Arroyo's indexed list of strings (``'key.0'``, ``'key.1'``, ...).
    STRING_LIST = ("array", "pull_opt_str_list", ())
    #: A size such as ``'128mb'`` or ``1024``: bytes.
    DATA_SIZE = ("integer", "pull_opt_data_size_bytes", 0)
    #: An array of column names: ``[a, b]`` (or ``['a', 'b']``).
    FIELD_LIST = ("array", "pull_opt_field_list", ())

    def __init__(self, json_type: str, puller: str, placeholder: object) -> None:
        self.json_type = json_type
        self.puller = puller
        #: What a required option holds when it is missing and validation goes on.
        self.placeholder = placeholder


@dataclass(frozen=True, slots=True)
class Alias:
    """An older name of an option, still accepted (an arroyo-lite extension: a cluster only
    knows the current name). Read with its own ``kind``; ``convert`` turns its value into
    the option's (same units otherwise)."""

    key: str
    kind: OptionKind
    convert: Callable[[Any], Any] | None = None


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One WITH option, declared once.

    ``default`` is the value when the key is absent (``None``: stays unset); it appears in
    the schema (and the listing) when it is a JSON scalar. ``extension`` marks an
    arroyo-lite option an Arroyo cluster does not know. ``enum``, ``exclusive_minimum``,
    ``minimum`` and ``format`` are JSON Schema constraints; ``check`` an extra check of the
    pulled value, run at once (so its problem is reported in pull order).
    """

    key: str
    kind: OptionKind
    description: str
    default: Any = None
    required: bool = False
    extension: bool = False
    enum: tuple[Any, ...] | None = None
    exclusive_minimum: float | None = None
    minimum: float | None = None
    format: str | None = None
    examples: tuple[str, ...] = ()
    check: ValueCheck | None = None
    #: Values of ``enum`` that are arroyo-lite's (the option itself is Arroyo's).
    extension_values: tuple[Any, ...] = ()
    family: bool = False
    aliases: tuple[Alias, ...] = ()

    @property
    def pattern(self) -> str:
        """A family's ``patternProperties`` key: every ``key.<name>``."""
        return "^" + self.key.replace(".", "\\.") + "\\..+$"

    def members(self, keys: Any) -> list[str]:
        """The keys among ``keys`` that belong to this family, in their order."""
        prefix = self.key + "."
        return [k for k in keys if k.startswith(prefix) and len(k) > len(prefix)]

    def json_schema(self) -> dict[str, Any]:
        """This option's JSON Schema property."""
        prop: dict[str, Any] = {"type": self.kind.json_type}
        if self.kind in (OptionKind.STRING_LIST, OptionKind.FIELD_LIST):
            prop["items"] = {"type": "string"}
        if self.format is not None:
            prop["format"] = self.format
        if self.enum is not None:
            prop["enum"] = list(self.enum)
        if isinstance(self.default, str | int | float | bool):
            prop["default"] = self.default
        if self.exclusive_minimum is not None:
            prop["exclusiveMinimum"] = self.exclusive_minimum
        if self.minimum is not None:
            prop["minimum"] = self.minimum
        prop["description"] = self.description
        if self.examples:
            prop["examples"] = list(self.examples)
        if self.extension:
            prop["x-extension"] = True
        if self.extension_values:
            prop["x-extension-values"] = list(self.extension_values)
        return prop

    def alias_schemas(self) -> dict[str, dict[str, Any]]:
        """The schema properties of this option's older names (deprecated extensions)."""
        return {
            alias.key: {
                "type": alias.kind.json_type,
                "description": f"Older name of '{self.key}' (deprecated; write '{self.key}').",
                "deprecated": True,
                "x-extension": True,
                "x-renamed-to": self.key,
            }
            for alias in self.aliases
        }


def option(
    kind: OptionKind,
    description: str,
    *,
    key: str | None = None,
    default: Any = None,
    default_factory: Callable[[], Any] | None = None,
    required: bool = False,
    extension: bool = False,
    enum: tuple[Any, ...] | None = None,
    exclusive_minimum: float | None = None,
    minimum: float | None = None,
    format: str | None = None,  # noqa: A002 (JSON Schema's own name)
    examples: tuple[str, ...] = (),
    check: ValueCheck | None = None,
    extension_values: tuple[Any, ...] = (),
    family: bool = False,
    aliases: tuple[Alias, ...] = (),
    group: str | None = None,
) -> Any:
    """A dataclass field declaring one option (``key`` defaults to the field's name, or in a
    ``group`` to the dotted key its name spells: see :func:`option_group`).

    A required option's field has no default; an optional one defaults to ``default`` (or
    ``default_factory()``, e.g. for a value the connector converts, such as split headers).
    """
    spec = {
        "key": key, "kind": kind, "description": description, "default": default,
        "required": required, "extension": extension, "enum": enum,
        "exclusive_minimum": exclusive_minimum, "minimum": minimum, "format": format,
        "examples": examples, "check": check, "extension_values": extension_values,
        "family": family, "aliases": aliases,
    }  # fmt: skip
    metadata = {"option": spec, "group": group}
    if required:
        return dataclasses.field(metadata=metadata)
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def option_group(prefix: str, *, extension: bool = False) -> Callable[..., Any]:
    """A maker of the options ``<prefix>.<name>`` (``pagination.limit``), declared as fields
    named ``<prefix>_<name>`` (``pagination_limit``): the key is derived from the field's
    name, and ``extension`` marks every member. A member takes :func:`option`'s arguments
    (an explicit ``key`` still wins, for a key its field's name cannot spell)."""

    def member(kind: OptionKind, description: str, **settings: Any) -> Any:
        return option(kind, description, group=prefix, extension=extension, **settings)

    return member


def _key_of(field_name: str, group: str | None) -> str:
    """The key a field declares when its option gives none (see :func:`option_group`)."""
    if group is None:
        return field_name
    stem = group.replace(".", "_") + "_"
    if not field_name.startswith(stem) or field_name == stem:
        raise TypeError(f"option field '{field_name}' of group '{group}' must be named {stem}*")
    return f"{group}.{field_name[len(stem) :]}"


@dataclass(frozen=True, slots=True)
class ExtensionUse:
    """An arroyo-lite extension option a table set, and where its key is written."""

    key: str
    position: SourcePosition | None


@dataclass(frozen=True, slots=True)
class Pulled:
    """The typed values :meth:`OptionSet.pull` read (by key; ``None``: absent or bad)."""

    values: dict[str, Any]
    #: The options the values came from, for positioned follow-up problems.
    where: dict[str, OptionValue]


class OptionSet:
    """The options of one connector, read from its options dataclass (see the module doc)."""

    def __init__(self, options_class: type[Any], *, title: str, description: str) -> None:
        self.options_class = options_class
        self.title = title
        self.description = description
        specs: list[OptionSpec] = []
        #: WITH key -> dataclass field name.
        self._field: dict[str, str] = {}
        for f in dataclasses.fields(options_class):
            declared = f.metadata.get("option")
            if declared is None:
                continue
            key = declared["key"] or _key_of(f.name, f.metadata.get("group"))
            spec = OptionSpec(**{**declared, "key": key})
            specs.append(spec)
            self._field[spec.key] = f.name
        self.specs: tuple[OptionSpec, ...] = tuple(specs)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(spec.key for spec in self.specs)

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of the options (Arroyo's ``table.json`` shape, extensions marked)."""
        schema: dict[str, Any] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.title,
            "description": self.description,
            "type": "object",
            "properties": {s.key: s.json_schema() for s in self.specs if not s.family},
            "required": [spec.key for spec in self.specs if spec.required],
        }
        for spec in self.specs:
            schema["properties"].update(spec.alias_schemas())
        families = {s.pattern: s.json_schema() for s in self.specs if s.family}
        if families:
            schema["patternProperties"] = families
        return schema

    def pull(self, reader: OptionReader) -> Pulled:
        """Pull every declared key with its kind's puller, in declaration order.

        Problems go through ``reader.report``; a bad value (or one failing its ``check``)
        counts as absent. Nothing is checked against the schema yet: see :meth:`check`.
        """
        where = {spec.key: o for spec in self.specs if (o := reader.get(spec.key)) is not None}
        values: dict[str, Any] = {}
        for spec in self.specs:
            if spec.family:
                pairs = []
                for key in spec.members(reader.remaining()):
                    if (member := reader.get(key)) is not None:
                        where[key] = member
                    text = reader.pull_opt_str(key)
                    if text is not None:
                        pairs.append((key[len(spec.key) + 1 :], text))
                values[spec.key] = tuple(pairs) if pairs else None
                continue
            value = getattr(reader, spec.kind.puller)(spec.key)
            for alias in spec.aliases:
                value = self._pull_alias(reader, spec, alias, value, where)
            if value is not None and spec.check is not None:
                problem = spec.check(value)
                if problem is not None:
                    message, hint = problem
                    reader.report(reader.error(message, where.get(spec.key), hint), spec.key)
                    value = None
            values[spec.key] = value
        return Pulled(values, where)

    @staticmethod
    def _pull_alias(
        reader: OptionReader, spec: OptionSpec, alias: Alias, value: Any,
        where: dict[str, OptionValue],
    ) -> Any:
        """The option's value read under its older name (when only that one is set)."""
        option = reader.get(alias.key)
        if option is None:
            return value
        if spec.key in where:
            reader.pull(alias.key)
            reader.report(
                reader.error(
                    f"'{alias.key}' is the older name of '{spec.key}': set only one of them",
                    option,
                    hint=f"remove '{alias.key}'",
                ),
                alias.key,
            )
            return value
        old = getattr(reader, alias.kind.puller)(alias.key)
        where[spec.key] = option
        if old is None or alias.convert is None:
            return old
        return alias.convert(old)

    def check(self, pulled: Pulled, reader: OptionReader) -> list[str]:
        """Check the pulled values against :meth:`json_schema` (also: required keys set);
        report each problem and return the keys found bad (see ``check_options``)."""
        families = {spec.key for spec in self.specs if spec.family}
        plain = {k: v for k, v in pulled.values.items() if k not in families}
        return check_options(self.json_schema(), plain, pulled.where, reader)

    def build(self, pulled: Pulled, **converted: Any) -> Any:
        """The frozen options object: pulled values, defaults for absent ones, placeholders
        for missing required ones (validation has reported them), ``converted`` overrides
        (by field name) for values the connector turned into another type."""
        kwargs: dict[str, Any] = {}
        for spec in self.specs:
            name = self._field[spec.key]
            value = pulled.values.get(spec.key)
            if value is not None:
                kwargs[name] = value
            elif spec.required:
                kwargs[name] = spec.kind.placeholder
        kwargs.update(converted)
        return self.options_class(**kwargs)

    def extensions_used(self, reader: OptionReader) -> tuple[ExtensionUse, ...]:
        """The extension options ``reader`` held (pulled or not), in declaration order."""
        used = []
        for spec in self.specs:
            for alias in spec.aliases:
                if (old := reader.consumed(alias.key)) is not None:
                    used.append(ExtensionUse(alias.key, old.key_position or old.value_position))
            if not spec.extension:
                continue
            keys = [spec.key]
            if spec.family:
                keys = spec.members([*reader.remaining(), *reader.consumed_keys()])
            for key in keys:
                option_value = reader.consumed(key) or reader.get(key)
                if option_value is not None:
                    used.append(
                        ExtensionUse(key, option_value.key_position or option_value.value_position)
                    )
        return tuple(used)


def extensions_in(config: TableConfig, schema: Mapping[str, Any]) -> tuple[ExtensionUse, ...]:
    """The extension options (``x-extension`` in the connector's ``schema``) a validated
    table set, with the positions of their keys (``TableConfig.option_positions``), and the
    Arroyo options set to an arroyo-lite value (``x-extension-values``), as ``key = 'value'``
    (options are read from ``config.connector_options``, attribute = key with ``_`` for ``.``).
    """
    props: Mapping[str, Any] = schema.get("properties") or {}
    used = []
    for key, prop in props.items():
        if key not in config.option_positions:
            continue
        if prop.get("x-extension"):
            used.append(ExtensionUse(key, config.option_positions.get(key)))
            continue
        value = getattr(config.connector_options, key.replace(".", "_"), None)
        if value in (prop.get("x-extension-values") or ()):
            used.append(ExtensionUse(f"{key} = '{value}'", config.option_positions.get(key)))
    for pattern, prop in (schema.get("patternProperties") or {}).items():
        if prop.get("x-extension"):
            used.extend(
                ExtensionUse(key, position)
                for key, position in config.option_positions.items()
                if re.match(pattern, key)
            )
    return tuple(used)
