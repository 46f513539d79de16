-- Server-Sent Events: live edits of Wikimedia wikis, counted per wiki.
--
-- Against the demo API (`python -m arroyo_lite.demo.api --port 8765`, or `arroyo-lite demo`);
-- the real stream is endpoint = 'https://stream.wikimedia.org/v2/stream/recentchange', which
-- speaks the same protocol: each change is an `event: message` whose data is one JSON object.
-- The source remembers the last event id; with --state-dir a restart resumes after it
-- (the server receives it as Last-Event-ID), so no change is counted twice.
CREATE TABLE recent_changes (
    type TEXT,
    title TEXT,
    wiki TEXT,
    server_name TEXT,
    bot BOOLEAN,
    namespace INT
) WITH (
    connector = 'sse',
    endpoint = 'http://127.0.0.1:8765/v2/stream/recentchange',
    events = 'message',
    format = 'json'
);

-- Changes and edits by bots per wiki since the table started.
SELECT wiki,
       count(*) AS changes,
       sum(CASE WHEN bot THEN 1 ELSE 0 END) AS by_bots,
       sum(CASE WHEN type = 'new' THEN 1 ELSE 0 END) AS new_pages
FROM recent_changes
GROUP BY wiki
ORDER BY changes DESC, wiki;
