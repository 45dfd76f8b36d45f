"""How long to wait before trying again: one policy for every retry loop (the ingest
worker's store and broker writes, a connector's deliveries, Splunk's acknowledgment poll).

Exponential, capped, with "full jitter" (a uniform draw below the exponential ceiling), so
many retriers that failed together do not come back together; a platform's Retry-After,
when given, is honoured instead (still capped)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """``initial_s`` doubles per attempt up to ``max_s``; ``jitter`` draws below it."""

    initial_s: float
    max_s: float
    jitter: bool = True

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
        if retry_after is not None:
            return min(self.max_s, max(0.0, retry_after))
        ceiling = min(self.max_s, self.initial_s * 2 ** min(attempt, 32))
        return random.uniform(0, ceiling) if self.jitter else ceiling
