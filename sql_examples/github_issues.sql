-- A GitHub list API polled the way GitHub asks clients to: every page, conditionally, within
-- the rate limit, with a token.
--
--   export GITHUB_TOKEN=ghp_...          (validate checks it is set; it is never printed)
--   python -m arroyo_lite.demo.api       (in another terminal: a local stand-in for GitHub)
--   arroyo-lite run sql_examples/github_issues.sql --progress
--
-- Against the real API, replace http://127.0.0.1:8765/github with https://api.github.com.
--
-- Shows (all arroyo-lite extensions of polling_http): 'auth.type' = 'bearer' with the token
-- from {{ GITHUB_TOKEN }} (sent on every page, masked everywhere); 'pagination.type' =
-- 'header_link' following GitHub's Link: <...>; rel="next" headers, so one poll reads every
-- page of the list; conditional requests (on by default): the next poll sends If-None-Match
-- with the last ETag and a 304 is an unchanged poll (GitHub does not count it against the
-- budget); X-RateLimit-Remaining / X-RateLimit-Reset read from every answer, so a spent
-- budget is waited out until its reset (state 'rate_limited' in \status) instead of failing;
-- 'rate_limit.requests_per_second' spacing the requests to the host; emit_behavior = 'dedup'
-- with the issue id as PRIMARY KEY, so an issue is emitted when it is new or has changed.
CREATE TABLE issues (
    id BIGINT PRIMARY KEY,
    number BIGINT,
    title TEXT,
    state TEXT,
    "user" STRUCT<login TEXT>,
    comments BIGINT,
    created_at TIMESTAMP,
    page INT METADATA FROM 'page'
) WITH (
    connector = 'polling_http',
    endpoint = 'http://127.0.0.1:8765/github/repos/ArroyoSystems/arroyo/issues?state=open&per_page=20',
    headers = 'Accept: application/vnd.github+json,X-GitHub-Api-Version: 2022-11-28',
    'auth.type' = 'bearer',
    'auth.token' = '{{ GITHUB_TOKEN }}',
    'pagination.type' = 'header_link',
    'pagination.max_pages' = 50,
    'rate_limit.requests_per_second' = 10,
    emit_behavior = 'dedup',
    format = 'json',
    poll_interval_ms = 10000
);

-- Open issues per author, busiest first.
SELECT "user".login AS author, count(*) AS issues, max(number) AS latest
FROM issues
GROUP BY "user".login
ORDER BY issues DESC, author;
