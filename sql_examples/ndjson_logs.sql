-- An NDJSON stream: an HTTP log endpoint that answers one JSON object per line, such as
-- Vector's or Fluent Bit's HTTP output, or your own service's /logs?format=ndjson.
--
-- Shows: framing = 'newline' (each line is one message, so one row), a cap on line length
-- (framing.newline.max_length; longer lines are cut), millisecond timestamps, a virtual
-- column computed from the physical ones, and bad_data = 'drop' for lines that are not JSON.
CREATE TABLE access_log (
    ts TIMESTAMP(3) NOT NULL,
    method TEXT,
    path TEXT,
    status INT,
    duration_ms DOUBLE,
    is_error BOOLEAN GENERATED ALWAYS AS (status >= 500) STORED,
    WATERMARK FOR ts
) WITH (
    connector = 'polling_http',
    endpoint = 'http://127.0.0.1:8686/logs?format=ndjson',
    format = 'json',
    framing = 'newline',
    'framing.newline.max_length' = 65536,
    bad_data = 'drop',
    poll_interval_ms = 2000
);

SELECT path, count(*) AS requests, avg(duration_ms) AS avg_ms
FROM access_log
WHERE NOT is_error
GROUP BY path;
