-- WebSocket: Bluesky posts from a Jetstream feed, and the hashtags trending in them.
--
-- Against the demo API (`python -m arroyo_lite.demo.api --port 8765`, or `arroyo-lite demo`);
-- the real feed is endpoint = 'wss://jetstream2.us-east.bsky.network/subscribe?requireHello=true',
-- which speaks the same protocol. With requireHello=true the server waits for a first
-- options_update message: subscription_messages.0 sends it on every (re)connect, and it
-- asks for posts only.
CREATE TABLE jetstream (
    did TEXT,
    time_us BIGINT,
    kind TEXT,
    commit JSON
) WITH (
    connector = 'websocket',
    endpoint = 'ws://127.0.0.1:8765/subscribe?requireHello=true',
    'subscription_messages.0' = '{"type": "options_update",
        "payload": {"wantedCollections": ["app.bsky.feed.post"]}}',
    format = 'json'
);

-- One row per hashtag of each post.
CREATE VIEW tags AS
SELECT extract_json_string(tag, '$') AS tag
FROM (SELECT unnest(extract_json(commit, '$.record.facets[*].features[*].tag')) AS tag
      FROM jetstream);

-- The most used hashtags so far.
SELECT tag, count(*) AS posts
FROM tags
GROUP BY tag
ORDER BY posts DESC, tag
LIMIT 5;
