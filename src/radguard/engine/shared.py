"""Run a function over a list on forked worker processes that share the list instead of receiving it.

:func:`run_shared` is :func:`radguard.engine.run_batched` for the case where the items already sit
in a list in the parent: the workers are forked *after* the list exists, so each one inherits it
(copy-on-write) and the parent only sends index ranges ``(start, end)``. Results come back as one
pickled list per range on a pipe per worker. There is no executor thread, no per-item pickling of
the inputs and no future per batch, so the parent stays nearly idle and the cores go to the work
(the media scan's parent process had become the bottleneck with ``ProcessPoolExecutor``).

Memory stays flat: at most ``depth`` ranges are in flight per worker. Exceptions raised by ``fn``
or by ``initializer`` in a worker are raised again in the parent; a worker that dies is an error.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import traceback
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from radguard.errors import RadGuardError

__all__ = ["WorkerDied", "run_shared"]

T = TypeVar("T")
R = TypeVar("R")

_STOP = None


class WorkerDied(RadGuardError):
    """A worker process ended without answering (killed, out of memory, crashed)."""


def _serve(conn: Connection, fn: Callable[[Any, T], R], items: Sequence[T],
           initializer: Callable[..., Any], initargs: tuple[Any, ...]) -> None:
    """Worker loop: answer each ``(start, end)`` (a range of the inherited ``items``) or
    ``(start, [item, ...])`` (items sent with the range, see :mod:`radguard.engine.stream`) with
    ``(start, True, results)``."""
    try:
        state = initializer(*initargs)
        while (job := conn.recv()) is not _STOP:
            start, end = job
            if isinstance(end, int):
                conn.send((start, True, [fn(state, items[i]) for i in range(start, end)]))
            else:
                conn.send((start, True, [fn(state, item) for item in end]))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        return
    except BaseException as exc:  # reported to the parent, which raises it
        try:
            conn.send((-1, False, exc))
        except Exception:  # the exception does not pickle: send its text
            conn.send((-1, False, RuntimeError(traceback.format_exc())))
    finally:
        conn.close()


def run_shared(
    fn: Callable[[Any, T], R],
    items: Sequence[T],
    *,
    initializer: Callable[..., Any],
    initargs: tuple[Any, ...] = (),
    workers: int = 1,
    batch_size: int = 32,
    depth: int = 2,
) -> Iterator[R]:
    """Yield ``fn(state, item)`` for every item, in completion order (per range).

    ``state`` is what ``initializer(*initargs)`` returned in the process running the item. With
    ``workers <= 1`` everything runs inline (same results, used in tests). ``items``, ``fn``,
    ``initializer`` and ``initargs`` reach the workers by ``fork``, never pickled; only the
    results are.

    Raises
    ------
    Exception
        Whatever ``fn`` or ``initializer`` raised in a worker.
    WorkerDied
        A worker process ended without answering.
    """
    if workers <= 1 or len(items) <= batch_size:
        state = initializer(*initargs)
        for item in items:
            yield fn(state, item)
        return
    procs: list[Any] = []
    conns: list[Connection] = []
    finished = False
    try:
        _start(workers, (fn, items, initializer, initargs), conns, procs)
        yield from _drive(conns, procs, len(items), batch_size, depth)
        finished = True
    finally:
        _shutdown(conns, procs, graceful=finished)


def _start(workers: int, serve_args: tuple[Any, Any, Any, Any], conns: list[Connection],
           procs: list[Any]) -> None:
    """Fork ``workers`` processes running :func:`_serve` with ``(fn, items, initializer,
    initargs)``; append each one's connection and process as it starts (so that the caller's
    :func:`_shutdown` stops those already started if a later one cannot be)."""
    ctx = multiprocessing.get_context("fork")
    for _ in range(workers):
        parent, child = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=_serve, args=(child, *serve_args), daemon=True)
        proc.start()
        child.close()
        procs.append(proc)
        conns.append(parent)


def _drive(conns: list[Connection], procs: list[Any], total: int, batch_size: int,
           depth: int) -> Iterator[Any]:
    """Hand out ranges, collect answers; keep ``depth`` ranges queued at every worker.

    Ranges are ``batch_size`` items long until the last ``2 * depth * workers`` full ranges'
    worth; from there each is about ``1 / (2 * depth * workers)`` of what remains, down to an
    eighth of ``batch_size`` (guided scheduling), so that the workers finish within a few small
    ranges of each other instead of one idling while the other works through its queued full
    ranges.
    """
    next_start = 0
    busy = [0] * len(conns)
    index = {id(c): i for i, c in enumerate(conns)}
    shares = 2 * depth * len(conns)
    smallest = max(1, batch_size // 8)

    def feed(i: int) -> None:
        nonlocal next_start
        while busy[i] < depth and next_start < total:
            size = min(batch_size, max(smallest, -(-(total - next_start) // shares)))
            end = min(total, next_start + size)
            try:
                conns[i].send((next_start, end))
            except OSError:  # the worker is gone: raise what it reported, if anything
                _answer(conns[i], procs[i])
                raise _died(procs[i]) from None
            next_start = end
            busy[i] += 1

    for i in range(len(conns)):
        feed(i)
    while any(busy):
        for conn in wait([c for i, c in enumerate(conns) if busy[i]]):
            assert isinstance(conn, Connection)
            i = index[id(conn)]
            payload = _answer(conn, procs[i])
            busy[i] -= 1
            feed(i)
            yield from payload


def _answer(conn: Connection, proc: Any) -> list[Any]:
    """The next answer of a worker; raises the worker's exception, or :class:`WorkerDied`."""
    try:
        _start, ok, payload = conn.recv()
    except (EOFError, OSError) as exc:
        raise _died(proc) from exc
    if not ok:
        raise payload
    return payload  # type: ignore[no-any-return]


def _died(proc: Any) -> WorkerDied:
    proc.join(1)
    return WorkerDied(f"worker process {proc.pid} ended without answering "
                      f"(exit code {proc.exitcode})")


def _shutdown(conns: list[Connection], procs: list[Any], *, graceful: bool) -> None:
    """Stop the workers: politely after the last answer, at once after an error or an early stop
    (they may still be working on queued ranges nobody will read)."""
    for conn in conns:
        with contextlib.suppress(OSError, ValueError):
            conn.send(_STOP)
    for proc in procs:
        if not graceful:
            proc.terminate()
        proc.join(5)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
    for conn in conns:
        conn.close()
