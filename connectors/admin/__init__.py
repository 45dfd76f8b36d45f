"""What the API and the CLI do to destinations beyond their settings: status, replay, dead
letters (list, redrive), and a sample event sent now."""
