"""The connector runtime: one consumer per destination (``worker``), delivery with retries
(``delivery``), request pacing (``throttle``), dead letters, metrics, and the
``supervisor`` that follows the destinations topic and runs a worker for each."""
