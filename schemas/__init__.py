"""The authtrail contract: event models, the event catalogue, topic names, settings and
the ClickHouse schema. Everything else imports this package; it imports none of them."""
