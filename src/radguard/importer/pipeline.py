"""The send pipeline of an import: parallel lanes, results journalled by the calling thread.

Each lane (one DIMSE association, or the one DICOMweb client) takes the next ``chunk`` members,
reads them, re-checks their hash on the bytes it is about to send, prepares them (reconciliation) and
sends them; the calling thread receives every lane's results in completion order and hands them to
``on_done`` (which journals them), so the journal has a single writer. At most ``lanes x chunk``
instances are in flight: that bounds what a killed import sends again on resume.

The first error of any lane (a package member changed, the destination went away) stops all lanes
after their current chunk; results that did arrive are still handed to ``on_done`` (nothing that was
sent is forgotten), then the error is raised in the calling thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from radguard.dimse.status import StatusMeaning
from radguard.importer.interface import Outgoing, Sender

__all__ = ["Done", "run_lanes"]

Done = tuple[Outgoing, tuple[str, ...], StatusMeaning]
"""One sent instance: what was sent, the reconciliation changes, the destination's status."""

E = TypeVar("E")


def _one_chunk(sender: Sender, lane: int, batch: Sequence[E],
               load: Callable[[E], tuple[Outgoing, tuple[str, ...]]]) -> list[Done]:
    loaded = [load(entry) for entry in batch]
    statuses = sender.send([out for out, _ in loaded], lane)
    return [(out, changes, status) for (out, changes), status in zip(loaded, statuses, strict=True)]


def run_lanes(sender: Sender, entries: Sequence[E],
              load: Callable[[E], tuple[Outgoing, tuple[str, ...]]], chunk: int,
              on_done: Callable[[list[Done]], None]) -> None:
    """Send ``entries`` over ``sender.lanes`` lanes; see the module docstring.

    Raises
    ------
    Exception
        The first error raised by ``load`` or ``sender.send`` in any lane.
    """
    starts = list(range(0, len(entries), max(1, chunk)))
    if sender.lanes <= 1 or len(starts) <= 1:
        for start in starts:
            on_done(_one_chunk(sender, 0, entries[start:start + chunk], load))
        return
    pending = iter(starts)
    lock = threading.Lock()
    stop = threading.Event()
    results: queue.SimpleQueue[tuple[str, list[Done] | BaseException | None]] = \
        queue.SimpleQueue()

    def lane_worker(lane: int) -> None:
        try:
            while not stop.is_set():
                with lock:
                    start = next(pending, None)
                if start is None:
                    break
                results.put(("ok", _one_chunk(sender, lane, entries[start:start + chunk], load)))
        except BaseException as exc:  # handed to the calling thread, which raises it
            stop.set()
            results.put(("error", exc))
        finally:
            results.put(("end", None))

    threads = [threading.Thread(target=lane_worker, args=(k,), name=f"radguard-lane-{k}",
                                daemon=True) for k in range(sender.lanes)]
    for t in threads:
        t.start()
    error: BaseException | None = None
    ended = 0
    try:
        while ended < len(threads):
            kind, payload = results.get()
            if kind == "ok" and isinstance(payload, list):
                on_done(payload)
            elif kind == "error" and isinstance(payload, BaseException):
                error = error or payload
            elif kind == "end":
                ended += 1
    finally:
        stop.set()
    for t in threads:
        t.join()
    if error is not None:
        raise error
