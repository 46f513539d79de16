-- A price ticker: Coinbase's public spot-price endpoint, polled every 5 seconds.
--
-- Shows: a nested JSON object read into a STRUCT column, the amount arriving as a JSON
-- string (TEXT) and cast in the query, emit_behavior = 'changed' so that an unchanged
-- price adds no row, and arroyo-lite's retention extension keeping the last hour only.
CREATE TABLE btc_usd (
    data STRUCT<base TEXT, currency TEXT, amount TEXT>
) WITH (
    connector = 'polling_http',
    endpoint = 'https://api.coinbase.com/v2/prices/BTC-USD/spot',
    format = 'json',
    emit_behavior = 'changed',
    poll_interval_ms = 5000,
    'retention.max_age' = interval '1' hour
);

-- Every price change, newest first (_timestamp is when the poll's answer arrived).
SELECT _timestamp AS seen_at, CAST(data.amount AS DOUBLE) AS price
FROM btc_usd
ORDER BY seen_at DESC;
