"""Run a function over many items on a local process pool, in batches, with bounded memory.

The same job code runs inline (``workers == 1``, also used in tests) or on a pool of processes that
each call ``initializer`` once (to reopen a medium, compile rules...). At most ``4 x workers`` batches
are in flight, so memory stays flat however many items there are.

A distributed executor (Dask) is the scale path named in DESIGN.md; it is not built yet.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from itertools import islice
from typing import Any, TypeVar

__all__ = ["run_batched"]

T = TypeVar("T")
R = TypeVar("R")

_WORKER_STATE: dict[str, Any] = {}


def _init(initializer: Callable[..., Any], args: tuple[Any, ...]) -> None:
    _WORKER_STATE["state"] = initializer(*args)


def _run_batch(fn: Callable[[Any, T], R], batch: Sequence[T]) -> list[R]:
    state = _WORKER_STATE["state"]
    return [fn(state, item) for item in batch]


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def run_batched(
    fn: Callable[[Any, T], R],
    items: Iterable[T],
    *,
    initializer: Callable[..., Any],
    initargs: tuple[Any, ...] = (),
    workers: int = 1,
    batch_size: int = 16,
) -> Iterator[R]:
    """Yield ``fn(state, item)`` for every item, in completion order.

    ``state`` is what ``initializer(*initargs)`` returned in the process running the item.
    Exceptions raised by ``fn`` propagate to the caller (job code must turn bad input into results).
    """
    if workers <= 1:
        state = initializer(*initargs)
        for item in items:
            yield fn(state, item)
        return
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init,
                             initargs=(initializer, initargs)) as pool:
        pending: set[Future[list[R]]] = set()
        source = _batches(items, batch_size)
        exhausted = False
        while True:
            while not exhausted and len(pending) < workers * 4:
                batch = next(source, None)
                if batch is None:
                    exhausted = True
                    break
                pending.add(pool.submit(_run_batch, fn, batch))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield from fut.result()
