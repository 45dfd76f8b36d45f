"""ClickHouse I/O: the log store's client and migrations."""
