"""A circuit breaker per upstream service (per gateway process).

closed → ``failure_threshold`` consecutive failures (connection errors, timeouts, 502/503/504) → open:
every request is refused at once with 503 and Retry-After for ``open_s`` → half-open: up to
``half_open_probes`` requests go through as probes; a probe's success closes the circuit, its failure
opens it again for another ``open_s``. Any success while closed resets the failure count.
"""

from __future__ import annotations

import math
import time
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitOpen(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__("circuit open")
        self.retry_after_s = retry_after_s


class CircuitBreaker:
    def __init__(self, name: str, *, failure_threshold: int = 5, open_s: float = 10.0, half_open_probes: int = 1):
        self.name = name
        self.failure_threshold = failure_threshold
        self.open_s = open_s
        self.half_open_probes = half_open_probes
        self.failures = 0
        self.opened_at = 0.0
        self.probes_in_flight = 0
        self._state: State = "closed"

    @property
    def state(self) -> State:
        if self._state == "open" and time.monotonic() - self.opened_at >= self.open_s:
            self._state = "half_open"
            self.probes_in_flight = 0
        return self._state

    def before_call(self) -> None:
        """Raise :class:`CircuitOpen` when the call must not be made; otherwise admit it."""
        state = self.state
        if state == "closed":
            return
        if state == "half_open" and self.probes_in_flight < self.half_open_probes:
            self.probes_in_flight += 1
            return
        remaining = self.open_s - (time.monotonic() - self.opened_at) if state == "open" else 1.0
        raise CircuitOpen(max(1, math.ceil(remaining)))

    def on_success(self) -> None:
        if self._state != "closed":
            self._state = "closed"
            self.probes_in_flight = 0
        self.failures = 0

    def on_failure(self) -> None:
        if self._state == "half_open":
            self._open()
            return
        self.failures += 1
        if self._state == "closed" and self.failures >= self.failure_threshold:
            self._open()

    def abandon(self) -> None:
        """A call ended without success or failure (the client went away): free a probe slot."""
        if self._state == "half_open" and self.probes_in_flight > 0:
            self.probes_in_flight -= 1

    def _open(self) -> None:
        self._state = "open"
        self.opened_at = time.monotonic()
        self.failures = 0
        self.probes_in_flight = 0
