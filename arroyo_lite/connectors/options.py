"""WITH-clause options and Arroyo's typed pullers (``ConnectorOptions`` in Arroyo).

:class:`OptionReader` holds the ``key = value`` pairs of one ``CREATE TABLE``. Each ``pull_*``
method *consumes* its key (so leftovers can be reported), applies Arroyo's acceptance rule
for that type, and reports a positioned :class:`~arroyo_lite.errors.SqlError` with Arroyo's
wording. A duplicate key keeps the last value, as Arroyo's HashMap does. Every key a puller
asks for is remembered, so :meth:`OptionReader.check_leftovers` can suggest the closest known
key for a typo.

Two modes (Arroyo itself stops at the first problem):

* strict (the default): a problem raises its :class:`SqlError` at once;
* collecting (``collect=True``, what the table builder uses): a problem is recorded in
  :attr:`OptionReader.errors`, and an optional puller given a bad value returns ``None`` as
  if the key were absent, so validation goes on and every problem of a table is reported.
  The key is remembered as invalid (:meth:`OptionReader.is_invalid`), so checks depending on
  it ("required option not set", a sub-option of a bad parent) can stay quiet.

Required pullers (``pull_str``, ``pull_f64``, ...) have no value to return for an absent or
bad key: they raise in both modes (in collecting mode the error is also recorded; recording
the same error object again keeps one copy).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sqlglot import exp

from arroyo_lite.errors import SourcePosition, SqlError, closest

if TYPE_CHECKING:
    from arroyo_lite.config import TableConfig

_T = TypeVar("_T")


class MissingOptionError(SqlError):
    """A required option is absent. ``key`` names it: when a leftover key is a close
    misspelling of it, the leftover report (with its did-you-mean) replaces this error."""

    def __init__(
        self,
        message: str,
        *,
        key: str,
        position: SourcePosition | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, position=position, hint=hint)
        self.key = key


def require_format(options: OptionReader, table: TableConfig, message: str, hint: str) -> None:
    """Report ``message`` (the connector's words: Arroyo's where it has them) as the missing
    ``format`` of a table that sets none, at the WITH clause.

    Quiet when a bad ``format`` was reported already. A misspelled ``format`` key is
    reported as unknown with a did-you-mean, and this error is then dropped (see
    :class:`MissingOptionError`)."""
    if table.format is None and not options.is_invalid("format"):
        options.report(
            MissingOptionError(
                message, key="format", position=options.clause_position, hint=hint
            )
        )


@dataclass(frozen=True, slots=True)
class OptionValue:
    """One ``key = value`` pair: the parsed value expression, its text and positions."""

    key: str
    value: exp.Expr
    text: str
    key_position: SourcePosition | None = None
    value_position: SourcePosition | None = None


class OptionReader:
    """Typed, consuming access to the WITH options of one table."""

    def __init__(
        self,
        options: Iterable[OptionValue] = (),
        *,
        clause_position: SourcePosition | None = None,
        env: Mapping[str, str] | None = None,
        collect: bool = False,
    ) -> None:
        self._options: dict[str, OptionValue] = {}
        for option in options:
            # Arroyo collects options into a HashMap: a repeated key keeps its last value.
            self._options.pop(option.key, None)
            self._options[option.key] = option
        self._known: set[str] = set()
        #: Keys pulled so far -> their options (see :meth:`consumed`).
        self._consumed: dict[str, OptionValue] = {}
        #: Where the WITH clause (or the statement) starts; used for missing options.
        self.clause_position = clause_position
        #: Environment to check ``{{ VAR }}`` references against (values are never stored).
        self.env: Mapping[str, str] = env if env is not None else {}
        #: Collecting mode: problems are recorded in :attr:`errors` instead of raised.
        self.collect = collect
        self._errors: list[SqlError] = []
        #: Keys given with a bad value -> the first error reported for them.
        self._invalid: dict[str, SqlError] = {}

    # -- inspection ----------------------------------------------------------------------

    def __contains__(self, key: str) -> bool:
        return key in self._options

    def __len__(self) -> int:
        return len(self._options)

    def remaining(self) -> list[str]:
        """Keys not consumed yet, in the order written."""
        return list(self._options)

    def get(self, key: str) -> OptionValue | None:
        """Look at an option without consuming it."""
        return self._options.get(key)

    def position(self, key: str) -> SourcePosition | None:
        """Where ``key``'s value is (or the clause, if the key is absent)."""
        option = self._options.get(key)
        if option is not None and option.value_position is not None:
            return option.value_position
        return self.clause_position

    def consumed(self, key: str) -> OptionValue | None:
        """The option ``key`` if a puller has consumed it (to find what a table used)."""
        return self._consumed.get(key)

    def consumed_keys(self) -> list[str]:
        """Every key a puller has consumed, in the order pulled."""
        return list(self._consumed)

    def know(self, *keys: str) -> None:
        """Declare keys as valid here (for did-you-mean hints), without consuming anything."""
        self._known.update(keys)

    def error(self, message: str, option: OptionValue | None, hint: str | None = None) -> SqlError:
        """A :class:`SqlError` pointing at ``option``'s value (or at the WITH clause)."""
        position = self.clause_position
        if option is not None:
            position = option.value_position or option.key_position or position
        return SqlError(message, position=position, hint=hint)

    # -- problems ------------------------------------------------------------------------

    @property
    def errors(self) -> list[SqlError]:
        """Problems recorded so far (collecting mode), in the order found."""
        return list(self._errors)

    def is_invalid(self, key: str) -> bool:
        """Whether ``key`` was given with a value that was reported as bad."""
        return key in self._invalid

    def report(self, error: SqlError, key: str | None = None) -> None:
        """A problem: raised in strict mode, recorded in collecting mode.

        ``key``, when the problem is a bad value of that option, is remembered as invalid.
        """
        if key is not None:
            self._invalid.setdefault(key, error)
        if not self.collect:
            raise error
        if not any(e is error for e in self._errors):
            self._errors.append(error)

    def require(self, key: str, hint: str) -> None:
        """Report ``required option 'k' not set`` unless ``key`` was given with a bad value
        (that problem is reported already)."""
        if key not in self._invalid:
            self.report(self.missing(key, hint))

    def missing(self, key: str, hint: str) -> MissingOptionError:
        """``required option 'k' not set``, pointing at a likely misspelling if one was given."""
        close = closest(key, self.remaining())
        if close is not None:
            option = self._options[close]
            return MissingOptionError(
                f"required option '{key}' not set",
                key=key,
                position=option.key_position or self.clause_position,
                hint=f"did you mean '{key}' instead of '{close}'?",
            )
        return MissingOptionError(
            f"required option '{key}' not set", key=key, position=self.clause_position, hint=hint
        )

    def _required(self, key: str, value: _T | None, hint: str) -> _T:
        """``value``, or raise (in collecting mode: record and raise) why there is none."""
        if value is not None:
            return value
        bad = self._invalid.get(key)
        if bad is not None:
            raise bad  # the puller has reported (recorded) the bad value already
        error = self.missing(key, hint)
        self.report(error)
        raise error

    def _bad(self, error: SqlError, key: str) -> None:
        """Report a bad value of ``key``; in collecting mode the puller then returns None."""
        self.report(error, key)

    # -- pullers -------------------------------------------------------------------------

    def pull(self, key: str) -> OptionValue | None:
        """Consume ``key`` and return it raw (``None`` if absent)."""
        self._known.add(key)
        option = self._options.pop(key, None)
        if option is not None:
            self._consumed[key] = option
        return option

    def pull_opt_str(self, key: str) -> str | None:
        """A single-quoted string; anything else is Arroyo's "single-quoted string" error."""
        option = self.pull(key)
        if option is None:
            return None
        return self._as_str(option)

    def pull_opt_str_list(self, key: str) -> list[str] | None:
        """Arroyo's indexed list: ``'key.0'``, ``'key.1'``, ... (single-quoted strings), up to
        the first missing index; ``None`` when there is no ``key.0``. A later index after a
        gap is left over (an unknown option, with the next index as its did-you-mean)."""
        values: list[str] = []
        index = 0
        while (indexed := f"{key}.{index}") in self._options:
            text = self.pull_opt_str(indexed)
            if text is not None:
                values.append(text)
            index += 1
        self.know(*(f"{key}.{i}" for i in range(index + 1)))
        return values if index else None

    def pull_str(self, key: str) -> str:
        """A required single-quoted string: ``required option 'k' not set`` when absent."""
        return self._required(key, self.pull_opt_str(key), f"add {key} = '...' to the WITH clause")

    def pull_opt_str_with_option(self, key: str) -> tuple[str, OptionValue] | None:
        """Like :meth:`pull_opt_str`, also returning the option (for positioned follow-ups)."""
        option = self.pull(key)
        if option is None:
            return None
        text = self._as_str(option)
        return None if text is None else (text, option)

    def pull_opt_bool(self, key: str) -> bool | None:
        """``true``/``false``, or exactly ``'true'``, ``'yes'``, ``'false'``, ``'no'``."""
        option = self.pull(key)
        if option is None:
            return None
        value = option.value
        if isinstance(value, exp.Boolean):
            return bool(value.this)
        if isinstance(value, exp.Literal) and value.is_string:
            text = value.this
            if text in ("true", "yes"):
                return True
            if text in ("false", "no"):
                return False
            shown = f"'{text}'"
        else:
            shown = option.text
        self._bad(
            self.error(
                f"expected with option '{key}' to be a boolean, but it was `{shown}`",
                option,
                hint="use true or false",
            ),
            key,
        )
        return None

    def pull_opt_i64(self, key: str) -> int | None:
        """A number literal or a string that parses as a signed 64-bit integer."""
        return self._pull_int(key, signed=True)

    def pull_opt_u64(self, key: str) -> int | None:
        """A number literal or a string that parses as an unsigned 64-bit integer."""
        return self._pull_int(key, signed=False)

    def pull_opt_f64(self, key: str) -> float | None:
        """A number literal or a string that parses as a double."""
        option = self.pull(key)
        if option is None:
            return None
        text = self._number_text(option)
        if text is not None and _FLOAT.fullmatch(text.strip()):
            return float(text)
        self._bad(
            self.error(
                f"expected with option '{key}' to be a double, but it was `{_shown(option)}`",
                option,
                hint=f"write a number, bare or quoted: {key} = 2.5 or {key} = '2.5'",
            ),
            key,
        )
        return None

    def pull_f64(self, key: str) -> float:
        """A required double: ``required option 'k' not set`` when absent."""
        return self._required(
            key, self.pull_opt_f64(key), f"add {key} = <number> to the WITH clause"
        )

    def pull_i64(self, key: str) -> int:
        """A required signed integer."""
        return self._required(
            key, self.pull_opt_i64(key), f"add {key} = <integer> to the WITH clause"
        )

    def pull_u64(self, key: str) -> int:
        """A required unsigned integer."""
        return self._required(
            key, self.pull_opt_u64(key), f"add {key} = <integer> to the WITH clause"
        )

    def pull_opt_data_size_bytes(self, key: str) -> int | None:
        """A size such as ``'64mb'`` or ``'1024'``: digits, then b, k/kb, m/mb, g/gb, t, p or e
        (powers of 1024, case-insensitive), as Arroyo's ``pull_opt_data_size_bytes``."""
        option = self.pull(key)
        if option is None:
            return None
        text = _shown(option)
        match = _DATA_SIZE.fullmatch(text)
        unit = match.group(2).lower() if match else ""
        if match is None or unit not in _SIZE_UNITS:
            self._bad(
                self.error(
                    f"invalid data size for '{key}': '{text}'",
                    option,
                    hint="write a number with an optional unit: '512kb', '64mb', '1gb'",
                ),
                key,
            )
            return None
        return int(match.group(1)) * _SIZE_UNITS[unit]

    def pull_opt_duration(self, key: str) -> float | None:
        """An interval (``interval '5' second``) or a deprecated string (``'5 seconds'``).

        Returns seconds. Months/years and negative durations are rejected, as in Arroyo.
        """
        option = self.pull(key)
        if option is None:
            return None
        value = option.value
        if isinstance(value, exp.Interval):
            amount = value.this.name if value.this is not None else ""
            unit = value.unit.name if value.unit is not None else ""
            text = f"{amount} {unit}".strip()
        elif isinstance(value, exp.Literal) and value.is_string:
            text = value.this
        else:
            self._bad(
                self.error(
                    f"expected an interval for '{key}', but found `{option.text}`",
                    option,
                    hint="write an interval such as interval '10' minute",
                ),
                key,
            )
            return None
        try:
            return parse_duration(text)
        except ValueError as e:
            self._bad(
                self.error(
                    f"invalid duration for '{key}': {e}",
                    option,
                    hint="write an interval such as interval '10' minute or '10 minutes'",
                ),
                key,
            )
            return None

    def pull_opt_field_list(self, key: str) -> list[str] | None:
        """An array of column names, ``[a, b]`` (identifiers or single-quoted strings), as
        Arroyo's ``pull_opt_array`` read by ``partitioning.fields``."""
        option = self.pull(key)
        if option is None:
            return None
        value = option.value
        if not isinstance(value, exp.Array):
            self._bad(
                self.error(
                    f"expected an array for '{key}', but found `{option.text}`",
                    option,
                    hint=f"write the column names in brackets: '{key}' = [a, b]",
                ),
                key,
            )
            return None
        names: list[str] = []
        for item in value.expressions:
            if isinstance(item, exp.Column) and not item.table:
                names.append(str(item.name))
            elif isinstance(item, exp.Literal) and item.is_string:
                names.append(str(item.this))
            else:
                self._bad(
                    self.error(
                        f"invalid expression in `{key}`: {item.sql()}; expected a column "
                        "identifier",
                        option,
                    ),
                    key,
                )
                return None
        return names

    def pull_opt_field(self, key: str) -> str | None:
        """A bare identifier naming a column, or a deprecated single-quoted string."""
        option = self.pull(key)
        if option is None:
            return None
        value = option.value
        if isinstance(value, exp.Column) and not value.table:
            return str(value.name)
        if isinstance(value, exp.Literal) and value.is_string:
            return str(value.this)
        self._bad(
            self.error(
                f"expected with option '{key}' to be a field, but it was `{option.text}`",
                option,
            ),
            key,
        )
        return None

    # -- leftovers -----------------------------------------------------------------------

    def check_leftovers(self, extra_known: Iterable[str] = ()) -> None:
        """Report Arroyo's ``unknown options provided in WITH clause`` for unconsumed keys.

        Positioned at the first leftover key; the hint suggests close known keys. In
        collecting mode, a recorded "required option not set" whose key a leftover
        misspells is dropped: this one error, with its did-you-mean, says it all.
        """
        if not self._options:
            return
        leftovers = list(self._options.values())
        names = ", ".join(f"'{o.key}'" for o in leftovers)
        known = sorted(self._known | set(extra_known))
        hints = []
        for option in leftovers:
            hint = _leftover_hint(option.key, known)
            if hint:
                hints.append(hint)
        keys = [o.key for o in leftovers]
        self._errors = [
            e for e in self._errors
            if not (isinstance(e, MissingOptionError)
                    and closest(e.key, keys) is not None)
        ]  # fmt: skip
        first = leftovers[0]
        self.report(
            SqlError(
                f"unknown options provided in WITH clause: {names}",
                position=first.key_position or first.value_position or self.clause_position,
                hint=" ".join(hints) or None,
            )
        )

    # -- helpers -------------------------------------------------------------------------

    def _as_str(self, option: OptionValue) -> str | None:
        value = option.value
        if isinstance(value, exp.Literal) and value.is_string:
            return str(value.this)
        hint = None
        if isinstance(value, exp.Column) and value.this is not None and value.this.quoted:
            hint = "strings must be single-quoted; double quotes make an identifier"
        self._bad(
            self.error(
                f"expected with option '{option.key}' to be a single-quoted string, "
                f"but it was `{option.text}`",
                option,
                hint=hint or f"write {option.key} = '...'",
            ),
            option.key,
        )
        return None

    @staticmethod
    def _number_text(option: OptionValue) -> str | None:
        value = option.value
        if isinstance(value, exp.Literal):
            return str(value.this)
        return None

    def _pull_int(self, key: str, *, signed: bool) -> int | None:
        option = self.pull(key)
        if option is None:
            return None
        text = self._number_text(option)
        lo, hi = (-(2**63), 2**63 - 1) if signed else (0, 2**64 - 1)
        if text is not None and _INT.fullmatch(text):
            number = int(text)
            if lo <= number <= hi:
                return number
        kind = "an integer" if signed else "an unsigned integer"
        self._bad(
            self.error(
                f"expected with option '{key}' to be {kind}, but it was `{_shown(option)}`",
                option,
                hint="negative numbers must be quoted, e.g. '-1'"
                if signed and isinstance(option.value, exp.Neg)
                else f"write a whole number{'' if signed else ' (0 or more)'}, bare or quoted: "
                f"{key} = 10 or {key} = '10'",
            ),
            key,
        )
        return None


_INT = re.compile(r"[+-]?\d+")
_DATA_SIZE = re.compile(r"(\d+)([a-zA-Z]*)")
_SIZE_UNITS = {
    "": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "t": 1 << 40, "p": 1 << 50, "e": 1 << 60,
}  # fmt: skip
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|NaN|infinity)", re.I)


#: Sub-option prefixes and the parent setting without which Arroyo does not read them.
_PARENTS = (
    ("json.", "format = 'json'"),
    ("avro.", "format = 'avro'"),
    ("parquet.", "format = 'parquet'"),
    ("framing.newline.", "framing = 'newline'"),
)


def _leftover_hint(key: str, known: list[str]) -> str | None:
    """Why a leftover key is unknown: a sub-option whose parent is not set, ``type`` on a
    connector that has one role, or (the usual case) a typo of a known key."""
    if key in known:
        # Known, yet nobody pulled it: a sub-option of a parent that is not set.
        for prefix, parent in _PARENTS:
            if key.startswith(prefix):
                return f"'{key}' is only read with {parent}"
        return f"'{key}' does not apply to this table"
    if key == "type":
        return "'type' is only for connectors that are both source and sink; remove it"
    close = closest(key, known)
    return f"did you mean '{close}' instead of '{key}'?" if close is not None else None


def _shown(option: OptionValue) -> str:
    value = option.value
    if isinstance(value, exp.Literal) and value.is_string:
        return str(value.this)
    return option.text


_UNIT_SECONDS = {
    "ns": 1e-9, "nanosecond": 1e-9, "nanoseconds": 1e-9,
    "us": 1e-6, "microsecond": 1e-6, "microseconds": 1e-6,
    "ms": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
}  # fmt: skip
_CALENDAR = {"month", "months", "mon", "mons", "year", "years", "y"}
_PART = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*")


def parse_duration(text: str) -> float:
    """Seconds in ``'10 minutes'``, ``'1 hour 30 minutes'``, ``'5' SECOND``-style text.

    Raises ``ValueError`` (with a message) for empty, negative, month/year or unknown units.
    """
    total, pos, seen = 0.0, 0, False
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"cannot parse '{text}' as an interval")
        amount, unit = float(match.group(1)), match.group(2).lower()
        if unit in _CALENDAR:
            raise ValueError("intervals in months or years are not supported")
        if unit not in _UNIT_SECONDS:
            raise ValueError(f"unknown interval unit '{match.group(2)}'")
        if amount < 0:
            raise ValueError("negative intervals are not supported")
        total += amount * _UNIT_SECONDS[unit]
        pos, seen = match.end(), True
    if not seen:
        raise ValueError(f"cannot parse '{text}' as an interval")
    return total
