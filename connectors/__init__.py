"""Stream: connector consumers that forward normalized events to each destination
platform, one consumer group per destination."""
