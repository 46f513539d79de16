-- A raw-text metrics endpoint: a Prometheus node_exporter, read line by line.
--
-- Shows: format = 'raw_string' (one TEXT column named value holds each message), newline
-- framing so each exposition line is a row, and a plain text filter on the lines. The same
-- DDL as Arroyo's prometheus.sql test query, without its parse_prom UDF.
CREATE TABLE node_metrics (
    value TEXT
) WITH (
    connector = 'polling_http',
    endpoint = 'http://localhost:9100/metrics',
    format = 'raw_string',
    framing = 'newline',
    poll_interval_ms = '10000'
);

SELECT value, _timestamp AS scraped
FROM node_metrics
WHERE value LIKE 'node_load1 %';
