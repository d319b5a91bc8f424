"""The bounded queue between the listeners and the parse stage, counted in messages.

Listeners hand over one :class:`.receivers.Received` per socket read (tens to hundreds of
messages), so an ``asyncio.Queue`` bounded in *items* would bound nothing useful. A
:class:`Backlog` holds reads in arrival order and counts the messages in them:

- :meth:`put` waits while ``limit`` messages or more are queued (TCP/TLS back-pressure: the
  reader stops reading its socket), then queues the whole read; so the backlog holds at most
  ``limit`` messages plus one read per connection;
- :meth:`offer` queues only if below the limit (UDP: the caller counts a refusal as dropped);
- :meth:`force` queues regardless (messages already acknowledged, handed over on shutdown);
- :meth:`close` marks the end: :meth:`get` returns ``None`` once everything before it is out.

Single event loop, no threads: the consumer is the batcher of :mod:`.service`.
"""

from __future__ import annotations

import asyncio
from collections import deque

from radguard.audit.repository.receivers import Received

__all__ = ["Backlog"]


class Backlog:
    """FIFO of received reads bounded by the number of messages they hold."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.size = 0  #: messages queued
        self._items: deque[Received] = deque()
        self._closed = False
        self._room = asyncio.Event()
        self._room.set()
        self._ready = asyncio.Event()

    def _append(self, item: Received) -> None:
        self._items.append(item)
        self.size += len(item.messages)
        self._ready.set()
        if self.size >= self.limit:
            self._room.clear()

    async def put(self, item: Received) -> None:
        """Queue ``item``, first waiting while the backlog is full."""
        while self.size >= self.limit:
            self._room.clear()
            await self._room.wait()
        self._append(item)

    def offer(self, item: Received) -> bool:
        """Queue ``item`` if the backlog is not full; return whether it was queued."""
        if self.size >= self.limit:
            return False
        self._append(item)
        return True

    def force(self, item: Received) -> None:
        """Queue ``item`` even when full (bounded by the caller: one read per connection)."""
        self._append(item)

    @property
    def finished(self) -> bool:
        """Closed and empty."""
        return self._closed and not self._items

    def close(self) -> None:
        """No more items: :meth:`get` returns ``None`` after the queued ones."""
        self._closed = True
        self._ready.set()

    def get_nowait(self) -> Received | None:
        """The oldest read, or ``None`` when none is queued right now."""
        if not self._items:
            return None
        item = self._items.popleft()
        self.size -= len(item.messages)
        if self.size < self.limit:
            self._room.set()
        if not self._items and not self._closed:
            self._ready.clear()
        return item

    async def get(self) -> Received | None:
        """The oldest read, waiting for one; ``None`` once closed and empty."""
        while not self._items:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self.get_nowait()

    async def wait(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for a read (or the end); return whether one is
        there."""
        if self._items or self._closed:
            return True
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return bool(self._items) or self._closed
