"""Route modules: health and metrics, the context endpoint, admin ingest jobs."""
