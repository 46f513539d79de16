-- A file that runs the same here and on an Arroyo cluster (README: "From laptop to cluster").
--
--   export SHOP_TOKEN=...   (here for run/test; on the cluster, in its API server's and
--                            workers' environment: deploy sends {{ SHOP_TOKEN }} as written)
--
-- Shows: only options Arroyo knows (validate --arroyo passes), a secret header that the
-- cluster substitutes from its own environment, NDJSON answers (framing = 'newline'; Arroyo
-- counts a top-level JSON array as bad data), and the event time taken from the payload.
CREATE TABLE orders (
    id TEXT NOT NULL,
    status TEXT,
    total DOUBLE,
    placed_at TIMESTAMP NOT NULL,
    WATERMARK FOR placed_at AS placed_at - INTERVAL '10' SECOND
) WITH (
    connector = 'polling_http',
    endpoint = 'https://shop.example.com/api/orders?format=ndjson',
    headers = 'Authorization: Bearer {{ SHOP_TOKEN }}',
    format = 'json',
    framing = 'newline',
    emit_behavior = 'changed',
    bad_data = 'drop',
    poll_interval_ms = 5000
);

SELECT status, count(*) AS orders, sum(total) AS revenue
FROM orders
GROUP BY status;
