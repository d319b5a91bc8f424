"""Run a function over items that are still being produced, on forked workers started at once.

:func:`run_streamed` is :func:`radguard.engine.run_shared` for a producer that takes a while of
its own, such as the listing of a large medium (about 0.1 s of ``lstat`` for 20,000 files, which
``run_shared`` must finish before it forks). Here the workers are forked first and the parent
produces the items between answers: each range is sent with its items (pickled; send small,
plain values; ranges are cut to :data:`MAX_QUEUED_BYTES`), and the workers start on the first
range while the parent produces the rest.
Once the producer is exhausted, ranges shrink towards the end as in ``run_shared`` (guided
scheduling). Results, errors, worker deaths and shutdown are those of ``run_shared``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from typing import Any, TypeVar

from radguard.engine.shared import _answer, _died, _shutdown, _start

__all__ = ["MAX_QUEUED_BYTES", "run_streamed"]

MAX_QUEUED_BYTES = 16 * 1024
"""Largest range (pickled) sent to a worker that is still busy with another one. The parent never
waits in ``send`` for a busy worker: that worker may itself be waiting to send its results, which
the parent reads only between sends (a deadlock seen with 64 paths of 3.5 KB each). A queued range
this small always fits in the socket's buffer; a bigger one (a single very long item) is sent only
to a worker that is idle, i.e. reading."""

T = TypeVar("T")
R = TypeVar("R")


def run_streamed(
    fn: Callable[[Any, T], R],
    items: Iterable[T],
    *,
    initializer: Callable[..., Any],
    initargs: tuple[Any, ...] = (),
    workers: int = 2,
    batch_size: int = 64,
    depth: int = 2,
) -> Iterator[R]:
    """Yield ``fn(state, item)`` for every item of ``items``, in completion order (per range).

    ``items`` is consumed in this process, between the workers' answers; ``fn``,
    ``initializer`` and ``initargs`` reach the workers by ``fork`` (never pickled), the items
    and the results are pickled. ``workers`` must be at least 2 (use ``run_shared`` otherwise).

    Raises
    ------
    Exception
        Whatever ``items``' iterator raised here, or ``fn`` or ``initializer`` in a worker.
    WorkerDied
        A worker process ended without answering.
    """
    procs: list[Any] = []
    conns: list[Connection] = []
    finished = False
    try:
        _start(max(2, workers), (fn, (), initializer, initargs), conns, procs)
        yield from _drive(conns, procs, iter(items), batch_size, depth)
        finished = True
    finally:
        _shutdown(conns, procs, graceful=finished)


def _drive(conns: list[Connection], procs: list[Any], source: Iterator[Any], batch_size: int,
           depth: int) -> Iterator[Any]:
    """Produce items a range at a time, hand out ranges, collect answers as they come."""
    produced: list[Any] = []
    next_start = 0
    exhausted = False
    busy = [0] * len(conns)
    index = {id(c): i for i, c in enumerate(conns)}
    shares = 2 * depth * len(conns)
    smallest = max(1, batch_size // 8)

    def feed(i: int) -> None:
        nonlocal next_start
        while busy[i] < depth:
            remaining = len(produced) - next_start
            if not exhausted:
                if remaining < batch_size:
                    return  # a short range only once the producer is done
                size = batch_size
            elif remaining <= 0:
                return
            else:
                size = min(batch_size, max(smallest, -(-remaining // shares)))
            job = ForkingPickler.dumps((next_start, produced[next_start:next_start + size]))
            while len(job) > MAX_QUEUED_BYTES and size > 1:  # long items (paths of a hostile
                size = max(1, size // 2)  # medium): fewer of them per range
                job = ForkingPickler.dumps((next_start, produced[next_start:next_start + size]))
            if len(job) > MAX_QUEUED_BYTES and busy[i]:
                return  # one item alone too big to queue: sent once the worker waits for it
            try:
                conns[i].send_bytes(job)
            except OSError:  # the worker is gone: raise what it reported, if anything
                _answer(conns[i], procs[i])
                raise _died(procs[i]) from None
            next_start += size
            busy[i] += 1

    def collect(timeout: float | None) -> Iterator[Any]:
        for conn in wait([c for i, c in enumerate(conns) if busy[i]], timeout):
            assert isinstance(conn, Connection)
            i = index[id(conn)]
            payload = _answer(conn, procs[i])
            busy[i] -= 1
            feed(i)
            yield from payload

    while not exhausted:
        chunk = [item for _, item in zip(range(batch_size), source, strict=False)]
        produced.extend(chunk)
        if len(chunk) < batch_size:
            exhausted = True
        for i in range(len(conns)):
            feed(i)
        if any(busy):
            yield from collect(0)
    while any(busy):
        yield from collect(None)
