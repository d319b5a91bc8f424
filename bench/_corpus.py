"""Benchmark corpora replicated from real public DICOM files (shared by the ``bench/*.py`` scripts).

Sources are pydicom's own test files and the ``pydicom-data`` package (import name ``data_store``),
both installed with RadGuard's dev dependencies. Every source is read with ``pydicom.dcmread``
(without ``force``) and written once to memory; files pydicom cannot read or write are skipped.

A corpus of ``n`` files is a deterministic function of ``(n, target_bytes, seed)``:

- each readable source is used at least once (when ``n`` allows), then sources are drawn with a
  weight ``size ** beta``; ``beta`` is chosen by bisection so the corpus totals about
  ``target_bytes`` (a positive ``beta`` means the larger files are replicated more often);
- the order is shuffled with ``random.Random(seed)``;
- file ``i`` gets its own Study, Series and SOP Instance UIDs (and Media Storage SOP Instance UID),
  derived from ``(seed, i)`` with :func:`pydicom.uid.generate_uid` entropy sources, so two runs with
  the same arguments produce byte-identical files;
- files are written as ``DIR/dNNN/fNNNNNN.dcm`` (``per_dir`` files per folder).

A manifest ``DIR.manifest.json`` is written last, beside the folder (not in it, so that the tools
timed see only DICOM files); :func:`build_corpus` reuses a folder whose manifest
matches the request and whose files are all present with the recorded total size.

Usage from another benchmark::

    from _corpus import build_corpus
    info = build_corpus(Path("bench/out/corpus-x"), n=2000, target_bytes=300_000_000, seed=1)
    for path in info.files(): ...
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["CorpusInfo", "Source", "build_corpus", "manifest_path", "plan_counts",
           "readable_sources"]

FORMAT = 1


@dataclass(frozen=True)
class Source:
    """One real public DICOM file that pydicom reads and writes."""

    path: str
    size: int
    origin: str  # "pydicom" or "pydicom-data"


@dataclass(frozen=True)
class CorpusInfo:
    """What :func:`build_corpus` made (or found): the folder, its file count and total bytes."""

    root: str
    n: int
    total_bytes: int
    seed: int
    target_bytes: int
    beta: float
    sources_used: int
    sources_skipped: int
    reused: bool

    def files(self) -> list[Path]:
        """Every corpus file, in index order."""
        return [Path(self.root) / _rel(i, _per_dir(self)) for i in range(self.n)]


def manifest_path(root: Path) -> Path:
    """Where the manifest of the corpus in ``root`` lives (beside the folder)."""
    return root.with_name(root.name + ".manifest.json")


def _per_dir(info: CorpusInfo) -> int:
    manifest = json.loads(manifest_path(Path(info.root)).read_text())
    return int(manifest["per_dir"])


def _rel(i: int, per_dir: int) -> str:
    return f"d{i // per_dir:03d}/f{i:06d}.dcm"


def _candidate_paths() -> Iterator[tuple[Path, str]]:
    import data_store  # pydicom-data
    import pydicom

    base = Path(pydicom.__file__).parent / "data"
    for p in sorted(base.rglob("*")):
        if p.is_file() and p.suffix not in (".py", ".pyc", ".json", ".txt", ".gz", ".bz2"):
            yield p, "pydicom"
    for p in sorted(Path(data_store.__file__).parent.rglob("*")):
        if p.is_file() and p.suffix not in (".py", ".pyc", ".json", ".txt"):
            yield p, "pydicom-data"


def readable_sources() -> tuple[list[Source], int]:
    """Sources pydicom reads (no ``force``) and writes back; returns (sources, skipped count)."""
    import warnings

    import pydicom

    out: list[Source] = []
    skipped = 0
    seen: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path, origin in _candidate_paths():
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                continue  # the same bytes shipped twice
            seen.add(digest)
            try:
                ds = pydicom.dcmread(io.BytesIO(data))
                if "SOPInstanceUID" not in ds:
                    raise ValueError("no SOP Instance UID")
                ds.save_as(io.BytesIO(), enforce_file_format=False)
            except Exception:  # any failure: pydicom cannot round-trip it, so it is skipped
                skipped += 1
                continue
            out.append(Source(str(path), len(data), origin))
    return out, skipped


def _largest_remainder(weights: list[float], n: int, floor: int) -> list[int]:
    rest = n - floor * len(weights)
    total = sum(weights)
    exact = [rest * w / total for w in weights]
    counts = [floor + int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda k: exact[k] - int(exact[k]), reverse=True)
    for k in order[: n - sum(counts)]:
        counts[k] += 1
    return counts


def plan_counts(sizes: list[int], n: int, target_bytes: int) -> tuple[list[int], float]:
    """How many copies of each source so that ``n`` files total about ``target_bytes``.

    Returns (counts, beta). Each source appears at least once when ``n >= len(sizes)``.
    """
    floor = 1 if n >= len(sizes) else 0

    def total(beta: float) -> int:
        counts = _largest_remainder([s**beta for s in sizes], n, floor)
        return sum(c * s for c, s in zip(counts, sizes, strict=True))

    lo, hi = -3.0, 3.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if total(mid) < target_bytes:
            lo = mid
        else:
            hi = mid
    beta = (lo + hi) / 2
    return _largest_remainder([s**beta for s in sizes], n, floor), beta


def _uid(seed: int, i: int, what: str) -> Any:
    """A UID derived only from (seed, index, purpose): the corpus is reproducible."""
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[f"radguard-bench/{seed}/{i}/{what}"])


_CACHE: dict[str, object] = {}


def _write_range(args: tuple[str, list[tuple[int, str]], int, int]) -> int:
    """Worker: write corpus files ``(index, source path)``; returns bytes written."""
    import warnings

    import pydicom

    root, items, seed, per_dir = args
    written = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, src in items:
            ds = _CACHE.get(src)
            if ds is None:
                ds = _CACHE[src] = pydicom.dcmread(src)
            assert isinstance(ds, pydicom.Dataset)
            sop = _uid(seed, i, "sop")
            ds.StudyInstanceUID = _uid(seed, i, "study")
            ds.SeriesInstanceUID = _uid(seed, i, "series")
            ds.SOPInstanceUID = sop
            if getattr(ds, "file_meta", None) is not None and "MediaStorageSOPInstanceUID" in \
                    ds.file_meta:
                ds.file_meta.MediaStorageSOPInstanceUID = sop
            dest = Path(root) / _rel(i, per_dir)
            buf = io.BytesIO()
            ds.save_as(buf, enforce_file_format=False)
            dest.write_bytes(buf.getvalue())
            written += buf.tell()
    return written


def _matches(root: Path, request: dict[str, object]) -> CorpusInfo | None:
    try:
        manifest = json.loads(manifest_path(root).read_text())
    except (OSError, ValueError):
        return None
    if any(manifest.get(k) != v for k, v in request.items()):
        return None
    per_dir = int(manifest["per_dir"])
    total = 0
    for i in range(int(manifest["n"])):
        try:
            total += (root / _rel(i, per_dir)).stat().st_size
        except OSError:
            return None
    if total != manifest["total_bytes"]:
        return None
    fields = {k: manifest[k] for k in CorpusInfo.__dataclass_fields__ if k in manifest}
    return CorpusInfo(**{**fields, "root": str(root), "reused": True})


def build_corpus(root: Path, n: int, target_bytes: int, seed: int = 20240601, *,
                 per_dir: int = 500, workers: int = 2,
                 progress: Callable[[str], None] | None = None) -> CorpusInfo:
    """Make (or reuse) a corpus of ``n`` DICOM files totalling about ``target_bytes`` in ``root``.

    The folder is emptied of earlier corpus files when the request changed. Deterministic given
    ``(n, target_bytes, seed, per_dir)`` and the installed pydicom / pydicom-data versions.
    """
    import data_store
    import pydicom

    request: dict[str, object] = {
        "format": FORMAT, "n": n, "target_bytes": target_bytes, "seed": seed, "per_dir": per_dir,
        "pydicom": pydicom.__version__,
        "pydicom_data": getattr(data_store, "__version__", "?"),
    }
    found = _matches(root, request)
    if found is not None:
        if progress:
            progress(f"reusing corpus {root} ({found.n} files, {found.total_bytes / 1e9:.2f} GB)")
        return found
    sources, skipped = readable_sources()
    counts, beta = plan_counts([s.size for s in sources], n, target_bytes)
    order = [s.path for s, c in zip(sources, counts, strict=True) for _ in range(c)]
    random.Random(seed).shuffle(order)
    if progress:
        progress(f"building corpus {root}: {n} files from {len(sources)} sources "
                 f"({skipped} skipped), beta={beta:.3f}")
    manifest_path(root).unlink(missing_ok=True)
    for d in range(0, n, per_dir):
        (root / _rel(d, per_dir)).parent.mkdir(parents=True, exist_ok=True)
    indexed = list(enumerate(order))
    chunk = max(1, min(500, n // (workers * 4) or 1))
    jobs = [(str(root), indexed[k:k + chunk], seed, per_dir) for k in range(0, n, chunk)]
    total = 0
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for done, written in enumerate(pool.imap_unordered(_write_range, jobs), 1):
                total += written
                if progress and done % max(1, len(jobs) // 10) == 0:
                    progress(f"  {done}/{len(jobs)} chunks, {total / 1e9:.2f} GB")
    else:
        total = sum(_write_range(j) for j in jobs)
    # stale files of an earlier, larger corpus would be scanned too: remove them
    wanted = {_rel(i, per_dir) for i in range(n)}
    for p in root.glob("d*/f*.dcm"):
        if str(p.relative_to(root)) not in wanted:
            p.unlink()
    info = CorpusInfo(root=str(root), n=n, total_bytes=total, seed=seed,
                      target_bytes=target_bytes, beta=beta, sources_used=len(sources),
                      sources_skipped=skipped, reused=False)
    manifest = {**request, **asdict(info)}
    manifest.pop("reused")
    manifest.pop("root")
    tmp = manifest_path(root).with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, manifest_path(root))
    return info
