-- An API queried by time window: each poll asks for the events between the start of the last
-- successful poll and now, the USGS FDSN event service's starttime/endtime parameters.
--
--   python -m arroyo_lite.demo.api       (in another terminal: a local stand-in for USGS)
--   arroyo-lite run sql_examples/quake_window.sql --state-dir quake-state
--
-- Against the real service, use https://earthquake.usgs.gov/fdsnws/event/1/query.
--
-- Shows (arroyo-lite extensions): per-poll values in query parameters, written [[ ... ]] so
-- they can never be mistaken for a {{ VAR }} secret: [[ last_success ]] (before the first
-- poll: one poll_interval_ms before now) and [[ now ]], both RFC 3339; the windows follow on
-- from each other, and with --state-dir the last success is kept, so after a restart the
-- first window starts where the previous run stopped (no quake missed, none twice but the
-- boundary, which dedup on the event id absorbs); records.path taking the GeoJSON features.
CREATE TABLE quakes (
    id TEXT PRIMARY KEY,
    properties STRUCT<mag DOUBLE, place TEXT, time BIGINT>,
    geometry STRUCT<coordinates DOUBLE[]>
) WITH (
    connector = 'polling_http',
    endpoint = 'http://127.0.0.1:8765/fdsnws/event/1/query?format=geojson&orderby=time-asc',
    'query.starttime' = '[[ last_success | rfc3339 ]]',
    'query.endtime' = '[[ now | rfc3339 ]]',
    'records.path' = '$.features[*]',
    emit_behavior = 'dedup',
    format = 'json',
    poll_interval_ms = 5000
);

-- Quakes per magnitude band as they arrive.
SELECT floor(properties.mag) AS magnitude, count(*) AS quakes
FROM quakes
GROUP BY magnitude
ORDER BY magnitude;
