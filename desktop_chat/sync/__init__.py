"""The durable outbox (local SQLite) and the delivery state machine."""
