-- arroyo-lite quickstart: live SQL tables over the embedded demo API.
--
--   arroyo-lite demo
--       starts the demo API on 127.0.0.1:8765 and runs this file;
--   python -m arroyo_lite.demo.api --port 8765   (in another terminal), then
--   arroyo-lite repl sql_examples/quickstart.sql
--       the same tables, queried interactively.
--
-- The endpoints name a fixed port because Arroyo does not substitute {{ VARS }} in 'endpoint'.
-- If 8765 is taken, `arroyo-lite demo` picks a free port and rewrites 127.0.0.1:8765 below.

-- Prices of five symbols, moving on every request. The API answers NDJSON (one JSON object
-- per line), and newline framing turns each line into one row: five rows per poll.
CREATE TABLE prices (
    symbol TEXT NOT NULL,
    price DOUBLE,
    volume BIGINT,
    ts TIMESTAMP
) WITH (
    connector = 'polling_http',
    endpoint = 'http://127.0.0.1:8765/prices?format=ndjson',
    format = 'json',
    framing = 'newline',
    poll_interval_ms = '500'
);

-- One headline that changes only every few polls. With emit_behavior = 'changed', a poll whose
-- body is byte-identical to the last one adds nothing, so each story arrives once.
CREATE TABLE news (
    id BIGINT,
    headline TEXT,
    source TEXT
) WITH (
    connector = 'polling_http',
    endpoint = 'http://127.0.0.1:8765/news',
    format = 'json',
    emit_behavior = 'changed',
    poll_interval_ms = 500
);

-- City temperatures from a flaky station: every third request fails with 503 and Retry-After.
-- Failed polls are counted and retried; this table and the others keep going.
CREATE TABLE weather (
    city TEXT,
    temperature_c DOUBLE,
    observed TIMESTAMP
) WITH (
    connector = 'polling_http',
    endpoint = 'http://127.0.0.1:8765/weather',
    format = 'json',
    framing = 'newline',
    poll_interval_ms = 1000
);

-- An aggregate: re-printed whenever new prices change it.
SELECT symbol,
       count(*) AS ticks,
       round(avg(price), 2) AS avg_price,
       min(price) AS low,
       max(price) AS high
FROM prices
GROUP BY symbol
ORDER BY symbol;

-- A plain query: each new headline is printed once, as it arrives.
SELECT id, headline, _timestamp AS received FROM news;

-- A filter: only warm readings (each printed once).
SELECT city, temperature_c, observed FROM weather WHERE temperature_c > 20;
