"""Fixtures of the audit repository tests: a store, a live repository on loopback, messages.

The repository runs in-process on its own thread and event loop (the real listeners, queue,
parser and writer; parse in a thread to keep start-up fast). Senders are real clients: util-linux
``logger``, ``rsyslogd`` and plain sockets.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.audit.audit_peers import Pki, pki  # noqa: F401  (fixture re-export)

from radguard.audit.repository import (
    AlertSink,
    Detector,
    RepositoryService,
    ServeConfig,
    builtin_pack,
)
from radguard.audit.repository.rules import Context
from radguard.store import Store

__all__ = ["LiveRepository", "pki"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'store' / 'radguard.db'}") as opened:
        yield opened


@dataclass
class LiveRepository:
    service: RepositoryService
    loop: asyncio.AbstractEventLoop
    stop: asyncio.Event
    thread: threading.Thread
    store: Store
    alert_log: Path

    def port(self, transport: str) -> int:
        return next(x.port for x in self.service.listeners if x.transport == transport)

    def wait_stored(self, n: int, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.service.stored >= n:
                return self.service.stored
            time.sleep(0.05)
        return self.service.stored

    def shutdown(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop.set)
            self.thread.join(30)


@pytest.fixture
def live_repo(store: Store, tmp_path: Path) -> Iterator[Callable[..., LiveRepository]]:
    started: list[LiveRepository] = []

    def start(*, tls: tuple[Path, Path, Path | None] | None = None, queue_size: int = 1000,
              context: Context | None = None, **config: Any) -> LiveRepository:
        cert, key, client_ca = tls if tls else (None, None, None)
        cfg = ServeConfig(udp=("127.0.0.1", 0), tcp=("127.0.0.1", 0),
                          tls=("127.0.0.1", 0) if tls else None, cert=cert, key=key,
                          client_ca=client_ca, queue_size=queue_size,
                          station="test-repository", **{"parse_workers": 0, **config})
        alert_log = tmp_path / "alerts.log"
        service = RepositoryService(store, cfg, Detector(builtin_pack(), context),
                                    AlertSink(store, alert_log))
        ready = threading.Event()
        holder: dict[str, Any] = {}

        def run() -> None:
            loop = asyncio.new_event_loop()
            holder["loop"] = loop
            stop = asyncio.Event()
            holder["stop"] = stop

            async def main() -> None:
                await service.start()
                ready.set()
                await service.run(stop)

            try:
                loop.run_until_complete(main())
            except BaseException as exc:  # surfaced to the test below
                holder["error"] = exc
                ready.set()
            finally:
                loop.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        assert ready.wait(30), "repository did not start"
        if "error" in holder:
            raise holder["error"]
        repo = LiveRepository(service, holder["loop"], holder["stop"], thread, store, alert_log)
        started.append(repo)
        return repo

    yield start
    for repo in started:
        repo.shutdown()


T0 = datetime(2025, 11, 28, 10, 0, tzinfo=UTC)  # a Friday, 10:00 UTC: working hours


@pytest.fixture
def t0() -> datetime:
    return T0


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
