-- An earthquake feed: the USGS GeoJSON summary of the last hour, refreshed every minute.
--
-- Shows: a GeoJSON FeatureCollection (one object per poll) read with an array of structs,
-- a view that turns each feature into a row with unnest, bad_data = 'drop' so one malformed
-- answer does not stop the table, and a cap on kept rows (retention.max_rows, an extension).
CREATE TABLE usgs_hour (
    metadata STRUCT<generated BIGINT, count INT, title TEXT>,
    features STRUCT<
        id TEXT,
        properties STRUCT<mag DOUBLE, place TEXT, time BIGINT, url TEXT>,
        geometry STRUCT<coordinates DOUBLE[]>
    >[]
) WITH (
    connector = 'polling_http',
    endpoint = 'https://earthquake.usgs.gov/earthquakes/feed/v1.0/summary/all_hour.geojson',
    format = 'json',
    emit_behavior = 'changed',
    bad_data = 'drop',
    poll_interval_ms = 60000,
    'retention.max_rows' = 10000
);

-- One row per earthquake in each answer.
CREATE VIEW quakes AS
SELECT unnest(features) AS quake, _timestamp AS fetched
FROM usgs_hour;

SELECT count(*) AS answers FROM usgs_hour;
