"""``radguard audit serve``: listeners -> bounded queue -> parse -> store (chained) -> detect.

The pipeline keeps what it acknowledged:

1. listeners (:mod:`.receivers`) put the messages of each socket read, de-framed in one pass,
   into a :class:`.backlog.Backlog` bounded in messages; TCP/TLS readers wait when it is full
   (back-pressure: they stop reading the socket, so the kernel's receive window closes), UDP
   counts what it cannot queue;
2. a batcher joins whole reads into chunks of about :data:`.pipeline.CHUNK` messages (waiting at
   most ``linger`` seconds for more) and hands each to one of ``parse_workers`` processes
   (``0``: a thread) without waiting for it: up to ``2 * parse_workers`` chunks plus a
   transaction's worth are in flight, so both cores parse while the main process receives and
   writes;
3. one writer thread takes the parsed chunks *in arrival order*, joins the ones already done up to
   ``batch_size`` messages and appends them in one transaction (:class:`.records.RecordWriter`,
   hash chain computed in a tight loop), then evaluates the detection rules on the stored records
   and publishes alerts.

Every stage is bounded (queue, chunks in flight, one transaction at a time), so memory stays
bounded under a burst and the sender is slowed instead of messages being dropped. On stop,
listeners stop accepting, open connections get ``drain_timeout`` seconds to finish (messages a
cancelled reader had already read are kept, :meth:`RepositoryService.keep`), and every queued
message is parsed and stored before :meth:`RepositoryService.run` returns. Records that other
processes appended meanwhile (RadGuard's own emitter writing straight into the store) are picked
up by id and evaluated too.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import socket
from collections import Counter
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from radguard.audit.message import (
    ActionCode,
    ActiveParticipant,
    AuditMessage,
    AuditSource,
    CodedValue,
    EventIdentification,
    Outcome,
)
from radguard.audit.repository.alerts import AlertSink
from radguard.audit.repository.backlog import Backlog
from radguard.audit.repository.detect import Alert, Detector
from radguard.audit.repository.framing import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_MESSAGE
from radguard.audit.repository.parse import parse_message
from radguard.audit.repository.pipeline import (
    CHUNK,
    from_wire,
    prepare_each,
    prepare_wire,
    warm,
)
from radguard.audit.repository.receivers import (
    Listener,
    Received,
    kernel_drops,
    make_tls_context,
    start_listener,
)
from radguard.audit.repository.records import Prepared, RecordWriter
from radguard.audit.syslog import frame
from radguard.store import Store
from radguard.store.models_audit import AuditRecord

__all__ = ["DEFAULT_PORTS", "RepositoryService", "ServeConfig"]

log = logging.getLogger(__name__)

_GC_THRESHOLD = 50_000  # gen-0 allocations between collections while serving (default 700)

#: Non-privileged defaults: 514 (syslog) needs root; 6514 (syslog-tls, RFC 5425) does not.
DEFAULT_PORTS = {"udp": 5514, "tcp": 5514, "tls": 6514}


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """What ``radguard audit serve`` listens on and how it batches."""

    udp: tuple[str, int] | None = None
    tcp: tuple[str, int] | None = None
    tls: tuple[str, int] | None = None
    cert: Path | None = None
    key: Path | None = None
    client_ca: Path | None = None
    station: str = "radguard"
    queue_size: int = 50_000
    batch_size: int = 20_000
    """Most messages per transaction. Only reached under a backlog (the writer joins chunks
    already parsed); larger transactions rewrite the search index's pages less often per
    message (-12% writer CPU at 20,000 vs 5,000, bench/results/audit.md)."""
    linger: float = 0.02
    parse_workers: int = 2
    max_message: int = DEFAULT_MAX_MESSAGE
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Open TCP/TLS connections per listener; more are closed at once (counted per peer)."""
    drain_timeout: float = 3.0
    tick: float = 1.0


def tls_failure_message(peer: str, reason: str, station: str) -> bytes:
    """A Security Alert (PS3.15 A.5.3.11, EventTypeCode 110126 Node Authentication, outcome
    minor failure) telling that ``peer`` failed the TLS handshake, framed as RFC 5424."""
    msg = AuditMessage(
        event=EventIdentification(
            event_id=_code("EventID", "110113"), action=ActionCode.EXECUTE,
            outcome=Outcome.MINOR_FAILURE, when=datetime.now(UTC),
            type_codes=(_code("EventTypeCode", "110126"),),
            outcome_description=f"TLS handshake failed: {reason}"),
        participants=(
            ActiveParticipant(user_id=peer, user_is_requestor=True,
                              network_access_point_id=peer, network_access_point_type=2),
            ActiveParticipant(user_id="radguard-audit-repository", user_is_requestor=False,
                              network_access_point_id=station, network_access_point_type=1)),
        source=AuditSource(source_id=station))
    return frame(msg.to_xml(), hostname=station, app_name="radguard-audit")


def _code(table: str, code: str) -> CodedValue:
    from radguard.audit.codes import load

    return load().get(table, code)


_Chunk = tuple[list[Received], "asyncio.Future[bytes]"]


class RepositoryService:
    """The running repository (implements :class:`.receivers.Inlet`)."""

    def __init__(self, store: Store, config: ServeConfig, detector: Detector | None = None,
                 alerts: AlertSink | None = None) -> None:
        self.store = store
        self.config = config
        self.detector = detector
        self.alerts = alerts or AlertSink(None)
        self.writer = RecordWriter(store)
        self.listeners: list[Listener] = []
        self.counts: Counter[tuple[str, str]] = Counter()
        self.stored = 0
        self.alerted = 0
        self._queue: Backlog | None = None
        self._seen_id = self._last_id()
        self._udp_drops: dict[int, int] = {}
        self._kept: list[Received] = []

    # -- Inlet -------------------------------------------------------------------------------

    async def put(self, item: Received) -> None:
        assert self._queue is not None
        await self._queue.put(item)

    def offer(self, item: Received) -> bool:
        assert self._queue is not None
        return self._queue.offer(item)

    def keep(self, item: Received) -> None:
        self._kept.append(item)

    def count(self, source: str, name: str, n: int = 1) -> None:
        self.counts[(source, name)] += n

    def tls_failure(self, peer: str, reason: str) -> None:
        self.count(peer, "tls_failures")
        raw = tls_failure_message(peer, reason, self.config.station)
        import time

        if not self.offer(Received([raw], "internal", peer, time.time())):
            self.count(peer, "dropped")

    # -- running -----------------------------------------------------------------------------

    async def start(self) -> list[Listener]:
        """Bind the configured listeners. Raises :class:`ReceiverError`."""
        self._queue = Backlog(self.config.queue_size)
        c = self.config
        tls_ctx = (make_tls_context(c.cert, c.key, c.client_ca)
                   if c.tls and c.cert and c.key else None)
        try:
            for transport, where in (("udp", c.udp), ("tcp", c.tcp), ("tls", c.tls)):
                if where is not None:
                    self.listeners.append(await start_listener(
                        transport, where[0], where[1], self, tls=tls_ctx,
                        max_message=c.max_message, max_connections=c.max_connections))
        except BaseException:
            for listener in self.listeners:
                listener.close()
            raise
        return self.listeners

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then drain and return (see the module docstring)."""
        if self._queue is None:
            await self.start()
        assert self._queue is not None
        workers = self.config.parse_workers
        # "spawn": a forked child could inherit a lock held by one of this process's threads.
        pool: Executor = (ProcessPoolExecutor(workers, initializer=warm,
                                              mp_context=multiprocessing.get_context("spawn"))
                          if workers > 0 else ThreadPoolExecutor(1))
        write_pool = ThreadPoolExecutor(1, thread_name_prefix="audit-writer")
        # Chunks in flight (parsing or parsed, not yet written): enough for the workers to
        # prepare a whole next transaction while the writer appends one, so that under a backlog
        # transactions reach ``batch_size`` (with only 2 per worker they stopped at ~2,500
        # messages). Bounded: at most ``batch_size`` + 2 chunks per worker messages.
        parsed: asyncio.Queue[_Chunk | None] = asyncio.Queue(
            2 * max(1, workers) + max(1, self.config.batch_size // CHUNK))
        batcher = asyncio.create_task(self._batches(pool, parsed))
        writer = asyncio.create_task(self._writes(write_pool, parsed))
        ticker = asyncio.create_task(self._ticks(write_pool))
        thresholds = gc.get_threshold()
        # Detection windows keep many long-lived tuples; with the default thresholds the
        # collector walks them again and again (~11% of this process's CPU under a burst).
        # Start-up objects are frozen out of the generations and young collections are rarer;
        # nothing here depends on cycles being collected promptly. Restored on return.
        gc.freeze()
        gc.set_threshold(_GC_THRESHOLD, *thresholds[1:])
        try:
            await stop.wait()
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            await self._shutdown()
            for item in self._kept:
                self._queue.force(item)
            self._kept.clear()
            self._queue.close()
            await batcher
            await writer
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(write_pool, self._write, [])
            pool.shutdown()
            write_pool.shutdown()
            self.alerts.close()

    async def _shutdown(self) -> None:
        for listener in self.listeners:
            listener.close()
        tasks = {t for listener in self.listeners for t in listener.connections}
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.config.drain_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _batches(
            self, pool: Executor,
            out: asyncio.Queue[_Chunk | None]) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        queue, size = self._queue, min(CHUNK, self.config.batch_size)
        while True:
            first = await queue.get()
            if first is None:
                break
            batch = [first]
            count = len(first.messages)
            deadline = loop.time() + self.config.linger
            while count < size:
                item = queue.get_nowait()
                if item is None:
                    remaining = deadline - loop.time()
                    if remaining <= 0 or not await queue.wait(remaining) or queue.finished:
                        break
                    continue
                batch.append(item)
                count += len(item.messages)
            # Not awaited here: the bounded ``out`` queue limits the chunks in flight.
            await out.put((batch, loop.run_in_executor(pool, prepare_wire, batch)))
        await out.put(None)

    async def _writes(self, pool: Executor, inp: asyncio.Queue[_Chunk | None]) -> None:
        size = self.config.batch_size
        finished = False
        while not finished:
            first = await inp.get()
            if first is None:
                break
            batch = await self._parsed(pool, first)
            # Join the chunks already parsed (in order) into one transaction.
            while len(batch) < size and not inp.empty():
                nxt = inp.get_nowait()
                if nxt is None:
                    finished = True
                    break
                ready = nxt[1].done()
                batch.extend(await self._parsed(pool, nxt))
                if not ready:
                    break
            await asyncio.get_running_loop().run_in_executor(pool, self._write, batch)

    async def _parsed(self, pool: Executor, chunk: _Chunk) -> list[Prepared]:
        """The parsed chunk; if its worker failed (crashed process, broken pool) the chunk is
        parsed again in the writer thread, one message at a time, so received messages are still
        stored (one that fails again is kept raw as ``refused``)."""
        items, future = chunk
        try:
            return from_wire(items, await future)
        except Exception:
            log.exception("audit repository: a parse worker failed on %d message(s); parsing "
                          "them in the writer", len(items))
            return await asyncio.get_running_loop().run_in_executor(pool, prepare_each, items)

    async def _ticks(self, pool: Executor) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.config.tick)
            self._poll_udp_drops()
            await loop.run_in_executor(pool, self._tick)

    # -- writer thread -----------------------------------------------------------------------

    def _write(self, batch: list[Prepared]) -> None:
        counts, self.counts = self.counts, Counter()
        try:
            ids = self.writer.append_prepared(batch, counts)
        except Exception:
            # Keep the counts for the next attempt; the batch itself cannot be retried safely
            # from here, so it is logged loudly (the store is unusable at this point).
            self.counts.update(counts)
            log.exception("audit repository: cannot store a batch of %d messages", len(batch))
            raise
        self.stored += len(ids)
        if ids and ids[0] > self._seen_id + 1:
            self._catch_up(ids[0] - 1)
        if ids:
            self._seen_id = ids[-1]
        if self.detector is not None:
            alerts: list[Alert] = []
            observe = self.detector.observe
            for prepared, rid in zip(batch, ids, strict=True):
                alerts.extend(observe(prepared.message(), rid))
            self._publish(alerts)

    def _publish(self, alerts: list[Alert]) -> None:
        if alerts:
            self.alerted += len(alerts)
            self.alerts.publish(alerts)

    def _tick(self) -> None:
        self._catch_up(None)
        if self.detector is not None:
            self._publish(self.detector.tick(datetime.now(UTC)))
        if self.counts:
            self._write([])

    def _last_id(self) -> int:
        with self.store.read_session() as session:
            return int(session.scalar(select(AuditRecord.id).order_by(
                AuditRecord.id.desc()).limit(1)) or 0)

    def _catch_up(self, upto: int | None) -> None:
        """Evaluate records other processes appended after the last one seen."""
        if self.detector is None:
            self._seen_id = max(self._seen_id, upto or self._last_id())
            return
        query = select(AuditRecord.id, AuditRecord.raw, AuditRecord.transport, AuditRecord.peer,
                       AuditRecord.received_at).where(AuditRecord.id > self._seen_id)
        if upto is not None:
            query = query.where(AuditRecord.id <= upto)
        with self.store.read_session() as session:
            rows = session.execute(query.order_by(AuditRecord.id).limit(10_000)).all()
        alerts: list[Alert] = []
        for rid, raw, transport, peer, received in rows:
            msg = parse_message(raw, transport=transport, peer=peer, received_at=received)
            alerts.extend(self.detector.observe(msg, rid))
            self._seen_id = rid
        self._publish(alerts)

    def _poll_udp_drops(self) -> None:
        for listener in self.listeners:
            if listener.transport != "udp":
                continue
            drops = kernel_drops(listener.port)
            if drops is None:
                continue
            before = self._udp_drops.get(listener.port, 0)
            if drops > before:
                self.count(f"udp:{listener.host}:{listener.port}", "dropped", drops - before)
            self._udp_drops[listener.port] = drops


def hostname() -> str:
    return socket.gethostname() or "radguard"
