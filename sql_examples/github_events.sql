-- A GitHub endpoint: public events of a repository, with a token from the environment.
--
--   export GITHUB_TOKEN=ghp_...    (validate checks it is set; its value is never printed)
--
-- Shows: {{ GITHUB_TOKEN }} substituted into headers (only headers are substituted, as in
-- Arroyo), several headers in one comma-separated string, a JSON array body whose elements
-- become rows (an arroyo-lite extension; Arroyo treats a top-level array as bad data), and
-- the event time taken from the payload with WATERMARK FOR.
CREATE TABLE arroyo_events (
    id TEXT,
    type TEXT,
    actor STRUCT<login TEXT>,
    created_at TIMESTAMP NOT NULL,
    WATERMARK FOR created_at AS created_at - INTERVAL '1' MINUTE
) WITH (
    connector = 'polling_http',
    endpoint = 'https://api.github.com/repos/ArroyoSystems/arroyo/events?per_page=30',
    headers = 'Authorization: Bearer {{ GITHUB_TOKEN }},Accept: application/vnd.github+json,User-Agent: arroyo-lite',
    format = 'json',
    emit_behavior = 'changed',
    poll_interval_ms = 60000
);

SELECT type, count(*) AS events
FROM arroyo_events
GROUP BY type
ORDER BY events DESC;
