-- A Stripe-style cursor API: every charge created since the last successful poll, all pages.
--
--   export STRIPE_API_KEY=sk_test_...    (a restricted read-only key is enough)
--   python -m arroyo_lite.demo.api       (in another terminal: a local stand-in for Stripe)
--   arroyo-lite run sql_examples/stripe_charges.sql
--
-- Against the real API, replace http://127.0.0.1:8765/stripe with https://api.stripe.com.
--
-- Shows (arroyo-lite extensions): 'pagination.type' = 'cursor' as Stripe pages its lists:
-- the id of the last object of a page (data[-1].id) sent back as starting_after while
-- has_more is true; records.path picking the objects out of Stripe's list envelope;
-- query.* parameters, one of them a per-poll value: created[gte] = the start of the last
-- successful poll in epoch seconds ([[ last_success | epoch ]]), so each poll asks only
-- for new charges (kept in --state-dir, so a restart resumes from there); a bearer key from
-- {{ STRIPE_API_KEY }}; emit_behavior = 'dedup' on the charge id, because consecutive
-- windows share their boundary second.
CREATE TABLE charges (
    id TEXT PRIMARY KEY,
    amount BIGINT,
    currency TEXT,
    status TEXT,
    created BIGINT,
    description TEXT
) WITH (
    connector = 'polling_http',
    endpoint = 'http://127.0.0.1:8765/stripe/v1/charges',
    'query.limit' = '100',
    'query.created[gte]' = '[[ last_success | epoch ]]',
    'auth.type' = 'bearer',
    'auth.token' = '{{ STRIPE_API_KEY }}',
    'pagination.type' = 'cursor',
    'pagination.cursor_path' = 'data[-1].id',
    'pagination.cursor_param' = 'starting_after',
    'pagination.has_more_path' = 'has_more',
    'records.path' = '$.data',
    emit_behavior = 'dedup',
    format = 'json',
    poll_interval_ms = 5000
);

-- Revenue by currency and outcome, in major units.
SELECT currency, status, count(*) AS charges, sum(amount) / 100.0 AS total
FROM charges
GROUP BY currency, status
ORDER BY currency, status;
