-- An API protected by OAuth2 client credentials (RFC 6749 section 4.4): the table fetches its
-- own access token, keeps it until shortly before it expires, and refreshes it.
--
--   export ORDERS_CLIENT_ID=demo-client ORDERS_CLIENT_SECRET=demo-client-secret
--   python -m arroyo_lite.demo.api       (in another terminal: token endpoint + orders API)
--   arroyo-lite test sql_examples/oauth_orders.sql     (shows the token request, masked)
--   arroyo-lite run sql_examples/oauth_orders.sql
--
-- Shows (arroyo-lite extensions): 'auth.type' = 'oauth2_client_credentials': a form POST to
-- auth.token_url with grant_type=client_credentials and the scope, the client authenticated
-- with HTTP Basic ('auth.client_auth' = 'basic', RFC 6749 client_secret_basic; 'body' sends
-- client_id/client_secret in the form instead); the bearer token cached for expires_in
-- (less 30 s), shared by every table with the same credentials, fetched again after one 401;
-- a failing token endpoint reported as 'auth failed: token endpoint: ...', not as a failure
-- of the orders API. The client secret and the tokens are never shown, logged or saved.
CREATE TABLE orders (
    id BIGINT PRIMARY KEY,
    customer TEXT,
    total DOUBLE,
    created BIGINT
) WITH (
    connector = 'polling_http',
    endpoint = 'http://127.0.0.1:8765/oauth/api/orders',
    'auth.type' = 'oauth2_client_credentials',
    'auth.token_url' = 'http://127.0.0.1:8765/oauth/token',
    'auth.client_id' = '{{ ORDERS_CLIENT_ID }}',
    'auth.client_secret' = '{{ ORDERS_CLIENT_SECRET }}',
    'auth.scope' = 'orders:read',
    'auth.client_auth' = 'basic',
    emit_behavior = 'dedup',
    format = 'json',
    poll_interval_ms = 2000
);

-- Sales per customer so far.
SELECT customer, count(*) AS orders, round(sum(total), 2) AS revenue
FROM orders
GROUP BY customer
ORDER BY revenue DESC;
