"""The ingest pipeline: raw auth events from Kafka, validated, normalized and enriched into
the log store and ``auth-events.normalized``; what cannot be made valid goes to the DLQ."""
