"""Running operators: the event-loop thread, its supervisor, the live-table store, persistence."""
