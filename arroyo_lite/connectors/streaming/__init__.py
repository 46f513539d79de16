"""What the push sources (``sse``, ``websocket``) share: batching, reconnect delays, headers."""
