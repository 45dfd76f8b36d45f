"""The query API (FastAPI) through which analysts read the log store."""
