-- A weather feed: current conditions in Berlin from Open-Meteo (no API key needed).
--
-- Shows: query parameters in the endpoint, a STRUCT for the "current" object, a slow poll
-- (the model updates every 15 minutes) with emit_behavior = 'changed', and an explicit
-- request timeout (timeout_ms, an arroyo-lite extension; Arroyo always uses 5 s).
CREATE TABLE berlin_weather (
    latitude DOUBLE,
    longitude DOUBLE,
    current STRUCT<time TEXT, temperature_2m DOUBLE, wind_speed_10m DOUBLE>
) WITH (
    connector = 'polling_http',
    endpoint = 'https://api.open-meteo.com/v1/forecast?latitude=52.52&longitude=13.41&current=temperature_2m,wind_speed_10m',
    format = 'json',
    emit_behavior = 'changed',
    poll_interval_ms = 60000,
    timeout_ms = 10000
);

SELECT current.time AS observed, current.temperature_2m AS celsius,
       current.wind_speed_10m AS wind_kmh
FROM berlin_weather;
