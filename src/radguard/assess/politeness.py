"""Per-device politeness: one connection at a time, a rate, a time budget (network.md, "safe").

A *device* is one endpoint (host and port) by default, or one host with ``per_host=True``. Every
connection RadGuard opens to a device (TCP, TLS handshake, association, HTTP request) takes a turn:
turns are serialised by a lock, spaced by ``1/rate`` seconds from the end of the previous one, and
refused once the device's time budget is spent (:class:`BudgetSpent`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["BudgetSpent", "Device", "Politeness"]


class BudgetSpent(Exception):
    """The device's time budget is spent; remaining probes are skipped and reported."""


@dataclass(frozen=True, slots=True)
class Politeness:
    """``rate``: connections per second per device; ``timeout``: seconds per operation;
    ``budget``: seconds per device in all; ``per_host``: a host is one device."""

    rate: float = 10.0
    timeout: float = 5.0
    budget: float = 120.0
    per_host: bool = False


class Device:
    """Turn-taking for one device."""

    def __init__(self, key: str, policy: Politeness) -> None:
        self.key = key
        self.interval = 1.0 / policy.rate if policy.rate > 0 else 0.0
        self.deadline = time.monotonic() + policy.budget
        self.connections = 0
        self._lock = threading.Lock()
        self._last_end = 0.0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the device for one connection; raise :class:`BudgetSpent` when out of time."""
        with self._lock:
            wait = self._last_end + self.interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if time.monotonic() > self.deadline:
                raise BudgetSpent(f"time budget of device {self.key} spent")
            try:
                yield
            finally:
                self.connections += 1
                self._last_end = time.monotonic()
