"""Per-device politeness: one connection at a time, a rate, a time budget (network.md, "safe").

A *device* is one endpoint (host and port) by default, or one host with ``per_host=True``. Every
connection RadGuard opens to a device (TCP, TLS handshake, association, HTTP request) takes a turn:
turns are serialised by a lock, spaced by ``1/rate`` seconds from the end of the previous one, and
refused once the device's time budget is spent (:class:`BudgetSpent`).

Timeouts (docs/assess.md "Timeouts"): ``connect_timeout`` bounds the TCP connection (a network
matter: on a LAN a SYN is answered in well under a millisecond, and 5 s covers two SYN
retransmissions); ``timeout`` bounds every wait for the node's *application* (A-ASSOCIATE answer,
TLS handshake, DIMSE response, HTTP answer). The latter is 30 s by default, the ACSE timeout of
DCMTK and pynetdicom: an acceptor's answer time is not network round-trip time (a DCMTK acceptor
looks up the caller's host name first, which waits out the resolver's timeout when DNS is broken;
a single-association acceptor leaves a second connection in the listen backlog until its current
association ends), so a shorter wait reports live DICOM nodes as silent.
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
    """``rate``: connections per second per device; ``timeout``: seconds to wait for each answer
    of the node (association, handshake, response); ``connect_timeout``: seconds for the TCP
    connection; ``budget``: seconds per device in all; ``per_host``: a host is one device."""

    rate: float = 10.0
    timeout: float = 30.0
    connect_timeout: float = 5.0
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
