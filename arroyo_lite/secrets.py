"""``{{ VAR }}`` environment substitution (Arroyo's VarStr) and masking of the values it inserts.

Arroyo substitutes only ``format: var-str`` fields (for polling_http: ``headers``), with the
pattern ``\\{\\{\\s*(\\w+)\\s*}}``. A missing variable is the error
``Environment variable NAME not found``. Every value inserted is a secret: :class:`Secrets`
remembers them, and :meth:`Secrets.mask` replaces them before any text is printed or logged.
The password of a URL's userinfo (``http://user:pass@host/``) is a secret too
(:func:`url_password`; :func:`redact_url` for showing such a URL).

Text is masked *before* it is cut (:meth:`Secrets.mask_and_cut`), and a text that was cut
(it ends in ``...``) loses any tail that is the start of a secret, so no prefix of a secret
survives a cut either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

VAR_PATTERN = re.compile(r"\{\{\s*(\w+)\s*}}")
MASK = "****"
#: What marks a cut text (as :func:`arroyo_lite.formats.result.bounded` cuts).
ELLIPSIS = "..."
#: ``scheme://user:password@``: the password part of a URL's userinfo.
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]*:)(?P<password>[^/?#@\s]*)@")


def url_password(url: str) -> str | None:
    """The password in ``url``'s userinfo, if it has one (a secret)."""
    match = _USERINFO.search(url)
    return (match.group("password") or None) if match else None


def redact_url(url: str) -> str:
    """``url`` with the password of its userinfo shown as ``****``."""
    return _USERINFO.sub(lambda m: m.group("head") + MASK + "@", url)


def redact_url_in_place(text: str) -> str:
    """``text`` with every URL userinfo password replaced by as many ``*``: for source
    excerpts, where a caret under a later token must keep its column."""
    return _USERINFO.sub(lambda m: m.group("head") + "*" * len(m.group("password")) + "@", text)


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
        """``text`` with every secret replaced by ``****``; if ``text`` was cut (ends in
        ``...``), a tail before the ellipsis that starts a secret goes too."""
        # Longest first, so a secret that contains another is masked whole.
        for value in sorted(self.values, key=len, reverse=True):
            if value:
                text = text.replace(value, MASK)
        if text.endswith(ELLIPSIS):
            text = self._drop_partial(text[: -len(ELLIPSIS)]) + ELLIPSIS
        return text

    def mask_and_cut(self, text: str, limit: int | None, *, cut_before: bool = False) -> str:
        """``text`` masked, then cut to ``limit`` characters (ending in ``...``; ``None``: no
        cut).

        ``cut_before``: ``text`` is itself the head of something longer, so its end may
        hold the start of a secret: that tail is dropped as well.
        """
        text = self.mask(text)
        if cut_before:
            text = self._drop_partial(text)
        if limit is not None and len(text) > limit:
            text = self._drop_partial(text[: limit - len(ELLIPSIS)]) + ELLIPSIS
        return text

    def _drop_partial(self, text: str) -> str:
        """``text`` without its longest tail that is a (proper) prefix of a secret."""
        for value in self.values:
            for size in range(min(len(value) - 1, len(text)), 0, -1):
                if text.endswith(value[:size]):
                    text = text[:-size]
                    break
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
