"""The Arroyo SQL dialect for sqlglot: every piece of Arroyo-specific syntax lives here.

Arroyo parses SQL with a Postgres-like sqlparser fork. sqlglot's RisingWave dialect already
covers most of it (``WATERMARK FOR col [AS expr]``, ``STRUCT<...>``, ``T[]``, ``INT UNSIGNED``,
``WITH (key = value, ...)``, ``CREATE TEMPORARY TABLE``). This module adds the rest:

- ``name TYPE METADATA FROM 'key'`` -> :class:`MetadataColumnConstraint`;
- ``window`` is an ordinary identifier (Arroyo queries name their window column so) and
  ``session(...)`` an ordinary function (a window), not keywords;
- ``FLOAT`` is Float32 (Postgres would make it a double);
- ``GENERATED ALWAYS AS (expr)`` with or without ``STORED`` -> sqlglot's
  ``ComputedColumnConstraint`` (``persisted`` tells whether STORED was written), where sqlglot
  would otherwise read the STORED-less form as an identity column;
- every parsed type keeps the text it was written as (``meta["written"]``): sqlglot reads
  ``INTEGER UNSIGNED`` as ``INT UNSIGNED`` and ``TIMESTAMP WITHOUT TIME ZONE`` as
  ``TIMESTAMP``, which Arroyo's parser tells apart (see :mod:`arroyo_lite.sql.types`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlglot import exp
from sqlglot.dialects.risingwave import RisingWave
from sqlglot.generators.risingwave import RisingWaveGenerator
from sqlglot.parsers.risingwave import RisingWaveParser
from sqlglot.tokenizer_core import TokenType


class MetadataColumnConstraint(exp.Expression, exp.ColumnConstraintKind):
    """``METADATA FROM 'key'``: the connector supplies the column's value (``this`` = key)."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True}


class ArroyoParser(RisingWaveParser):
    """RisingWave's parser plus Arroyo's column constraints."""

    CONSTRAINT_PARSERS = {
        **RisingWaveParser.CONSTRAINT_PARSERS,
        "GENERATED": lambda self: self._parse_arroyo_generated(),
        "METADATA": lambda self: self._parse_metadata_from(),
    }

    def _parse_types(
        self,
        check_func: bool = False,
        schema: bool = False,
        allow_identifiers: bool = True,
        with_collation: bool = False,
    ) -> exp.Expr | None:
        start = self._index
        parsed = super()._parse_types(check_func, schema, allow_identifiers, with_collation)
        if isinstance(parsed, exp.DataType) and self._index > start and self.sql:
            first, last = self._tokens[start], self._tokens[self._index - 1]
            parsed.meta["written"] = self.sql[first.start : last.end + 1]
            parsed.meta["written_at"] = first.start
        return parsed

    def _parse_arroyo_generated(self) -> exp.Expr:
        index = self._index
        if self._match_text_seq("ALWAYS", "AS") and self._match(TokenType.L_PAREN, advance=False):
            expression = self._parse_wrapped(self._parse_assignment)
            stored = self._match_text_seq("STORED")
            return self.expression(
                exp.ComputedColumnConstraint(this=expression, persisted=bool(stored))
            )
        # Not Arroyo's virtual-column form: let sqlglot parse identity columns as usual.
        self._retreat(index)
        return self._parse_generated_as_identity()

    def _parse_metadata_from(self) -> exp.Expr:
        if not self._match(TokenType.FROM):
            self.raise_error("Expected FROM 'key' after METADATA")
        key = self._parse_string()
        if key is None:
            self.raise_error("Expected a single-quoted metadata key after METADATA FROM")
        return self.expression(MetadataColumnConstraint(this=key))


def _metadata_sql(generator: Any, expression: MetadataColumnConstraint) -> str:
    return f"METADATA FROM {generator.sql(expression, 'this')}"


class ArroyoGenerator(RisingWaveGenerator):
    """Renders Arroyo SQL text (used to keep virtual-column and watermark expressions)."""

    TRANSFORMS = {
        **RisingWaveGenerator.TRANSFORMS,
        MetadataColumnConstraint: _metadata_sql,
    }


class Arroyo(RisingWave):
    """sqlglot dialect for Arroyo SQL (``read="arroyo"`` after this module is imported)."""

    class Tokenizer(RisingWave.Tokenizer):
        KEYWORDS = {
            **{
                k: v
                for k, v in RisingWave.Tokenizer.KEYWORDS.items()
                if k not in ("WINDOW", "SESSION")
            },
            # Arroyo (like DataFusion) reads FLOAT as 32-bit, where Postgres reads a double.
            "FLOAT": TokenType.FLOAT,
        }

    Parser = ArroyoParser
    Generator = ArroyoGenerator
