-- Open incidents: an updating table kept in step with a paged list (PagerDuty-style).
--
--   python -m arroyo_lite.demo.api --port 8765      (in another terminal), then
--   arroyo-lite run sql_examples/open_incidents.sql
--
-- Shows: emit_behavior = 'snapshot' (an extension): every poll reads the whole list (all
-- its pages: pagination.type = 'offset', stopping where the body says "more": false) and the
-- table holds one row per incident id (the PRIMARY KEY), the latest version of it. An
-- incident acknowledged changes its row; one resolved leaves the list and is deleted from
-- the table. Queries over the table are updating queries: they see inserts, updates and
-- deletes, and a snapshot query shows only the incidents open now.
CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    incident_number BIGINT,
    title TEXT,
    status TEXT,
    urgency TEXT,
    service STRUCT<id TEXT, summary TEXT>,
    created_at TIMESTAMP,
    updated_at TIMESTAMP
) WITH (
    connector = 'polling_http',
    endpoint = 'http://127.0.0.1:8765/incidents',
    format = 'json',
    'records.path' = '$.incidents[*]',
    'pagination.type' = 'offset',
    'pagination.limit' = 5,
    'pagination.records_path' = '$.incidents',
    'pagination.has_more_path' = '$.more',
    emit_behavior = 'snapshot',
    poll_interval_ms = 1000
);

-- What is open on each service, by urgency (updated as incidents come and go).
SELECT service.summary AS service, urgency, count(*) AS open
FROM incidents
GROUP BY service.summary, urgency;
