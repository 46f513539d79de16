"""``{{ VAR }}`` environment substitution (Arroyo's VarStr) and masking of the values it inserts.

Arroyo substitutes only ``format: var-str`` fields (for polling_http: ``headers``), with the
pattern ``\\{\\{\\s*(\\w+)\\s*}}``. A missing variable is the error
``Environment variable NAME not found``. Every value inserted is a secret: :class:`Secrets`
remembers them, and :meth:`Secrets.mask` replaces them before any text is printed or logged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

VAR_PATTERN = re.compile(r"\{\{\s*(\w+)\s*}}")
MASK = "****"


class MissingVariableError(KeyError):
    """A ``{{ NAME }}`` names an unset environment variable."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"Environment variable {self.name} not found"


def variables(template: str) -> list[str]:
    """Names referenced by ``template``, in order of first appearance."""
    seen: dict[str, None] = {}
    for match in VAR_PATTERN.finditer(template):
        seen.setdefault(match.group(1), None)
    return list(seen)


@dataclass(frozen=True)
class Secrets:
    """The set of secret values substituted so far; masks them in any text."""

    values: frozenset[str] = field(default_factory=frozenset)

    def __repr__(self) -> str:
        # Never the values themselves: a repr ends up in tracebacks, logs and test output.
        return f"Secrets(<{len(self.values)} value(s) hidden>)"

    def mask(self, text: str) -> str:
        # Longest first, so a secret that contains another is masked whole.
        for value in sorted(self.values, key=len, reverse=True):
            if value:
                text = text.replace(value, MASK)
        return text

    def __or__(self, other: Secrets) -> Secrets:
        return Secrets(self.values | other.values)

    @classmethod
    def of(cls, values: Iterable[str]) -> Secrets:
        return cls(frozenset(v for v in values if v))


def substitute(template: str, env: Mapping[str, str]) -> tuple[str, Secrets]:
    """Replace every ``{{ NAME }}`` with ``env[NAME]``.

    Returns the substituted text and the secrets it now contains. Raises
    :class:`MissingVariableError` for the first unset name.
    """
    inserted: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise MissingVariableError(name)
        inserted.add(env[name])
        return env[name]

    return VAR_PATTERN.sub(replace, template), Secrets.of(inserted)
