"""engine.run_shared: the scan's process pool (workers share the item list by fork)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from radguard.engine import WorkerDied, run_shared


def _init(offset: int) -> dict[str, int]:
    return {"offset": offset, "pid": os.getpid()}


def _square(state: dict[str, int], item: int) -> tuple[int, int, int]:
    return item, item * item + state["offset"], state["pid"]


def test_every_item_once_with_the_workers_state() -> None:
    items = list(range(1000))
    out = list(run_shared(_square, items, initializer=_init, initargs=(7,), workers=2,
                          batch_size=16))
    assert sorted(r[:2] for r in out) == [(i, i * i + 7) for i in items]
    pids = {r[2] for r in out}
    assert os.getpid() not in pids and len(pids) == 2  # both workers, not the parent
    assert multiprocessing.active_children() == []


def test_inline_when_one_worker() -> None:
    out = list(run_shared(_square, [1, 2, 3], initializer=_init, initargs=(0,), workers=1))
    assert out == [(1, 1, os.getpid()), (2, 4, os.getpid()), (3, 9, os.getpid())]


def _boom(state: object, item: int) -> int:
    if item == 300:
        raise ValueError(f"bad item {item}")
    return item


def test_exception_in_a_worker_is_raised_in_the_parent() -> None:
    with pytest.raises(ValueError, match="bad item 300"):
        list(run_shared(_boom, list(range(1000)), initializer=_init, initargs=(0,), workers=2))
    assert multiprocessing.active_children() == []


def _bad_init() -> None:
    raise RuntimeError("cannot open the medium")


def test_exception_in_the_initializer_is_raised() -> None:
    with pytest.raises(RuntimeError, match="cannot open the medium"):
        list(run_shared(_boom, list(range(100)), initializer=_bad_init, workers=2))


def _die(state: object, item: int) -> int:
    if item == 50:
        os._exit(3)
    return item


def test_a_dead_worker_is_an_error() -> None:
    with pytest.raises(WorkerDied, match="exit code"):
        list(run_shared(_die, list(range(200)), initializer=_init, initargs=(0,), workers=2,
                        batch_size=8))
    assert multiprocessing.active_children() == []


def test_stopping_early_stops_the_workers() -> None:
    gen = run_shared(_square, list(range(5000)), initializer=_init, initargs=(0,), workers=2,
                     batch_size=8)
    first = next(gen)
    gen.close()
    assert first[0] in range(5000)
    assert multiprocessing.active_children() == []


# engine.run_streamed: the same pool fed by a producer that is still running (a medium's listing)


def _produced(n: int, seen: list[int]) -> Iterator[int]:
    for i in range(n):
        seen.append(i)
        yield i


def test_streamed_every_item_once_while_produced() -> None:
    from radguard.engine.stream import run_streamed

    for n in (0, 1, 63, 64, 65, 1000):  # empty, shorter than a range, exact ranges, many
        seen: list[int] = []
        out = list(run_streamed(_square, _produced(n, seen), initializer=_init, initargs=(5,),
                                workers=2, batch_size=64))
        assert sorted(r[:2] for r in out) == [(i, i * i + 5) for i in range(n)]
        assert seen == list(range(n))
        if n >= 1000:
            assert len({r[2] for r in out}) == 2 and os.getpid() not in {r[2] for r in out}
        assert multiprocessing.active_children() == []


def _failing_producer() -> Iterator[int]:
    yield from range(300)
    raise OSError("listing failed")


def test_streamed_errors_stop_the_workers() -> None:
    from radguard.engine.stream import run_streamed

    with pytest.raises(ValueError, match="bad item 300"):
        list(run_streamed(_boom, iter(range(1000)), initializer=_init, initargs=(0,), workers=2,
                          batch_size=16))
    assert multiprocessing.active_children() == []
    with pytest.raises(OSError, match="listing failed"):
        list(run_streamed(_square, _failing_producer(), initializer=_init, initargs=(0,),
                          workers=2, batch_size=16))
    assert multiprocessing.active_children() == []
    with pytest.raises(WorkerDied, match="exit code"):
        list(run_streamed(_die, iter(range(200)), initializer=_init, initargs=(0,), workers=2,
                          batch_size=8))
    assert multiprocessing.active_children() == []


def _echo(state: object, item: str) -> str:
    return item


@pytest.mark.timeout(60)
def test_streamed_long_items_do_not_deadlock() -> None:
    # Ranges of long items (a hostile medium's deep paths) once made the parent block sending to a
    # worker that was itself blocked sending its results: both waited forever.
    from radguard.engine.stream import MAX_QUEUED_BYTES, run_streamed

    for length in (3_900, 2 * MAX_QUEUED_BYTES):  # many per range; one alone over the cap
        items = [f"{i:05d}" + "a" * length for i in range(600)]
        out = list(run_streamed(_echo, iter(items), initializer=_init, initargs=(0,), workers=2,
                                batch_size=64))
        assert sorted(out) == items
    assert multiprocessing.active_children() == []


@pytest.mark.timeout(120)
def test_scan_of_a_large_folder_under_very_long_paths_finishes(tmp_path: Path) -> None:
    from radguard.media import ScanOptions, scan_medium
    from radguard.media.scan import STREAM_FROM

    deep = tmp_path.joinpath(*(f"{i:02d}" + "d" * 248 for i in range(14)))  # ~3.5 KB relative
    deep.mkdir(parents=True)
    for i in range(STREAM_FROM + 80):
        (deep / f"{i:05d}").write_bytes(b"x")
    report = scan_medium(tmp_path, ScanOptions(workers=2))
    assert len(report.files) == STREAM_FROM + 80
    assert all(f.kind == "other" for f in report.files)


def test_a_scan_stopped_by_an_error_stops_its_workers_and_restores_the_collector(
        tmp_path: Path) -> None:
    import gc

    from radguard.media import ScanOptions, scan_medium

    for i in range(2_000):
        (tmp_path / f"{i:05d}").write_bytes(b"x")

    def progress(i: int, total: int, path: str) -> None:
        if i == 50:
            raise KeyboardInterrupt

    assert gc.isenabled()
    with pytest.raises(KeyboardInterrupt):
        scan_medium(tmp_path, ScanOptions(workers=2), progress=progress)
    assert gc.isenabled()
    assert multiprocessing.active_children() == []
