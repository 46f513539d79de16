"""DuckDB's aggregate names are read from its catalog only for a query that calls a function
sqlglot does not know (the scan costs more than the rest of ``Session()``; ``run``'s first
row of a plain SELECT must not wait for it), and such a query is still an aggregate."""

from __future__ import annotations

from arroyo_lite import Session


def test_plain_select_does_not_read_the_catalog_and_an_unknown_aggregate_still_aggregates():
    with Session() as session:
        session.execute(
            "CREATE TABLE t WITH (connector = 'impulse', event_rate = 1000, message_count = 3);"
        )
        names = session.engine._aggregates
        plain = session.stream("SELECT counter FROM t")
        try:
            assert plain.incremental
            assert names._names is None  # not read for a query without unknown functions
        finally:
            plain.close()
        # fsum and histogram are DuckDB aggregates sqlglot parses as anonymous functions.
        for sql in ("SELECT fsum(counter) AS s FROM t", "SELECT histogram(counter) FROM t"):
            stream = session.stream(sql)
            try:
                assert not stream.incremental, sql
            finally:
                stream.close()
        assert names._names is not None and "fsum" in names._names
        # A scalar function sqlglot does not know is not an aggregate.
        scalar = session.stream("SELECT hamming('ab', 'ab') AS h, counter FROM t")
        try:
            assert scalar.incremental
        finally:
            scalar.close()
