-- A pipeline over the demo API: poll prices, aggregate them live, and write the ticks out
-- as Parquet files (one directory per symbol) and the large trades to a webhook.
--
--   python -m arroyo_lite.demo.api --port 8765      (in another terminal), then
--   arroyo-lite run sql_examples/price_pipeline.sql
--
-- Shows: INSERT INTO sink tables running while the source polls; the filesystem sink's
-- partitioning and rolling (files appear in price_ticks/symbol=.../ every 10 seconds, each
-- completed under price_ticks/__in_progress, then renamed); a webhook sink POSTing one JSON
-- object per row (the demo API's /hooks receives them: GET it to see them). Sinks take
-- appended rows, so the aggregate is a live SELECT beside them.

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

-- Every tick, with its notional value, as Parquet files under ./price_ticks.
CREATE TABLE ticks (
    symbol TEXT,
    price DOUBLE,
    volume BIGINT,
    notional DOUBLE,
    ts TIMESTAMP
) WITH (
    connector = 'filesystem',
    type = 'sink',
    path = 'price_ticks',
    format = 'parquet',
    'partitioning.fields' = [symbol],
    'rolling_policy.interval' = interval '10 seconds'
);

-- Trades over 400 shares, one POST each.
CREATE TABLE big_trades WITH (
    connector = 'webhook',
    endpoint = 'http://127.0.0.1:8765/hooks',
    headers = 'Content-Type: application/json',
    format = 'json'
);

INSERT INTO ticks SELECT symbol, price, volume, price * volume, ts FROM prices;

INSERT INTO big_trades SELECT symbol, price, volume FROM prices WHERE volume > 400;

-- The live aggregate: per symbol, ticks seen, average price and total volume.
SELECT symbol, count(*) AS ticks, avg(price) AS avg_price, sum(volume) AS volume
FROM prices
GROUP BY symbol
ORDER BY symbol;
