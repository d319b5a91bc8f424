"""Confirmation while sending: ask the destination about sent instances while the rest go out.

The final confirmation of an import asks about every sent instance after the last C-STORE; on a PACS
that reads each matching file to answer a C-FIND, that is seconds at the end of a large import.
:class:`Confirmer` runs those queries earlier, in its own thread on its own channel (a separate
association), in groups of :data:`GROUP` instances, while the lanes keep sending. It is an
optimisation only: an instance becomes "confirmed" solely because the destination listed it; any
failure here just leaves the instance to the final check, which also reports what is missing.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping, Sequence

__all__ = ["GROUP", "Confirmer"]

GROUP = 100
"""Instances per background confirmation (one C-FIND with a list of UIDs)."""

Held = Callable[[Mapping[str, Sequence[str]]], set[str]]


class Confirmer:
    """Background confirmation; :meth:`submit` sent instances, :meth:`take` confirmed names."""

    def __init__(self, held: Held, group: int = GROUP):
        self._held = held
        self._group = group
        self._pending: list[tuple[str, str, str]] = []
        self._inbox: queue.SimpleQueue[list[tuple[str, str, str]] | None] = queue.SimpleQueue()
        self._done: list[str] = []
        self._lock = threading.Lock()
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="radguard-confirm", daemon=True)
        self._thread.start()

    def submit(self, items: list[tuple[str, str, str]]) -> None:
        """(member name, study UID, SOP Instance UID) of instances the destination accepted."""
        self._pending.extend(items)
        while len(self._pending) >= self._group and not self._failed:
            self._inbox.put(self._pending[:self._group])
            del self._pending[:self._group]

    def take(self) -> list[str]:
        """Names confirmed since the last call."""
        with self._lock:
            out, self._done = self._done, []
        return out

    def finish(self) -> list[str]:
        """Stop after the queries already queued; the names confirmed since the last take."""
        self._inbox.put(None)
        self._thread.join()
        return self.take()

    def _run(self) -> None:
        while (group := self._inbox.get()) is not None:
            if self._failed:
                continue
            wanted: dict[str, list[str]] = {}
            for _, study, sop in group:
                wanted.setdefault(study, []).append(sop)
            try:
                held = self._held(wanted)
            except Exception:  # the final check asks again and reports the failure
                self._failed = True
                continue
            with self._lock:
                self._done.extend(name for name, _, sop in group if sop in held)
