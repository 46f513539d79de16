-- An earthquake feed: the USGS GeoJSON summary of the last hour, refreshed every minute.
--
-- Shows: records.path (an extension) picking the GeoJSON features out of each answer, one row
-- per quake; emit_behavior = 'dedup' (an extension) with the quake id as PRIMARY KEY, so the
-- overlapping hour windows yield each quake once, and once more when USGS revises it (a new
-- magnitude); HTTP metadata columns (extensions) saying which poll brought a row; and
-- bad_data = 'drop' so one malformed answer does not stop the table.
CREATE TABLE quakes (
    id TEXT PRIMARY KEY,
    properties STRUCT<mag DOUBLE, place TEXT, time BIGINT, updated BIGINT, url TEXT>,
    geometry STRUCT<coordinates DOUBLE[]>,
    poll BIGINT METADATA FROM 'poll',
    fetched_from TEXT METADATA FROM 'url'
) WITH (
    connector = 'polling_http',
    endpoint = 'https://earthquake.usgs.gov/earthquakes/feed/v1.0/summary/all_hour.geojson',
    format = 'json',
    'records.path' = '$.features[*]',
    emit_behavior = 'dedup',
    'dedup.max_keys' = 100000,
    bad_data = 'drop',
    poll_interval_ms = 60000
);

-- The latest version of each quake, strongest first.
CREATE VIEW latest AS
SELECT id, properties.mag AS mag, properties.place AS place, poll
FROM quakes
QUALIFY row_number() OVER (PARTITION BY id ORDER BY _timestamp DESC) = 1;

SELECT * FROM latest ORDER BY mag DESC LIMIT 10;
