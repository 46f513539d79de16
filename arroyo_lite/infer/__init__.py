"""A schema from a sample: one response body -> a ready ``CREATE TABLE`` (``arroyo-lite infer``).

``sample`` finds the records (framing, wrapper, record path), ``schema`` infers their column
types with DuckDB and maps them to Arroyo's, ``ddl`` writes the statement.
"""
