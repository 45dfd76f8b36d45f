"""authtrail's command line and process wiring (the composition root)."""
