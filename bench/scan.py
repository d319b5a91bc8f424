"""Media-scan benchmark (issue 2): ``radguard media scan`` side by side with its peers.

Builds (or reuses) a corpus of real public DICOM files with unique UIDs (:mod:`_corpus`; default
20,000 files, about 3 GB, in ``bench/out/corpus-scan``), then times, in one run over the same files:

==============  ==================================================================================
radguard        ``.venv/bin/radguard media scan CORPUS --format json --no-record -o ...`` (the
                installed entry point; ``uv run --no-sync radguard`` if there is none)
                (default options: bounded reader, every check, YARA on; workers = one per core)
dcmdump         DCMTK ``dcmdump +sd +r -q CORPUS`` (one process over the tree, output to /dev/null)
dciodvfy        dicom3tools ``dciodvfy FILE``, one process per file, on a random sample (default
                500 files); files/s is extrapolated to the corpus
pydicom         ``pydicom.dcmread(path)`` of every file (stop_before_pixels=False, defer_size=None:
                every value, pixel data included, is read), one process with its own timer
dicomlock       PyPI ``dicomlock DIR`` (own venv ``bench/.peers-scan``), run on a folder of
                symbolic links to the corpus files, because it writes its report into DIR
sha256-1p/2p    the read limit: SHA-256 of every byte of every file, in 1 and in 2 processes
==============  ==================================================================================

Each tool runs with a cold page cache (``echo 3 > /proc/sys/vm/drop_caches`` before it; needs
root) and/or a warm one (every file read once before the first tool). Peak memory is measured two
ways: the sum of the RSS of the process tree, polled every 50 ms with psutil (counts pages shared
by forked workers more than once, so it is an upper bound), and the largest single process
(``ru_maxrss`` from ``wait4``).

Usage (from the repository root)::

    uv run python bench/scan.py                 # full size: 20,000 files, ~3 GB, cold + warm
    uv run python bench/scan.py --files 2000    # a tenth of the size (corpus-scan-2000)
    uv run python bench/scan.py --quick         # CI smoke: 200 files, seconds
    # on a shared machine: warm cache, tools round-robin, this checkout against an earlier one
    git archive COMMIT src | tar -x -C /tmp/rg-base
    flock /tmp/bench.lock .venv/bin/python bench/scan.py --cache warm --interleave --repeat 3 \
        --tools sha256-1p,dcmdump,radguard,radguard-baseline --baseline-src /tmp/rg-base/src

Results: a table on stdout and ``bench/out/scan-results.json`` (or ``--json PATH``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
PEERS = BENCH / ".peers-scan"
sys.path.insert(0, str(BENCH))

from _corpus import CorpusInfo, build_corpus  # noqa: E402

BYTES_PER_FILE = 150_000  # 20,000 files -> 3 GB
TOOLS = ("sha256-1p", "sha256-2p", "dcmdump", "radguard", "pydicom", "dicomlock", "dciodvfy")
EXTRA_TOOLS = ("radguard-baseline",)  # only when named in --tools (needs --baseline-src)


@dataclass
class Result:
    """One timed run of one tool over the corpus (or over a sample, then ``sample`` > 0)."""

    tool: str
    cache: str
    files: int
    bytes: int
    seconds: float
    rss_tree_mb: float
    pss_tree_mb: float
    rss_max_proc_mb: float
    exit_code: int | None
    sample: int = 0
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "files_per_s": round(self.files_per_s, 1),
                "mb_per_s": round(self.mb_per_s, 1)}


# ---------------------------------------------------------------- measuring a child process

class _TreePoller(threading.Thread):
    """Poll a process and all its descendants; keeps the peak sums of RSS and of PSS (bytes).

    PSS divides each page shared by N processes by N (forked workers share the parent's pages),
    so the PSS sum is the memory the tree really holds; the RSS sum counts shared pages N times.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak_rss, self.peak_pss = pid, interval, 0, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop_event.is_set():
            rss = pss = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                procs = []
            for p in procs:
                try:
                    info = p.memory_full_info()
                    rss += info.rss
                    pss += getattr(info, "pss", info.rss)
                except psutil.Error:
                    pass
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@dataclass(frozen=True)
class Run:
    """What one measured child run took: wall time, exit code and peak memory (bytes)."""

    wall: float
    rc: int
    rss_tree: int  # peak of the RSS sum over the process tree (psutil polling)
    pss_tree: int  # peak of the PSS sum over the process tree (psutil polling)
    rss_max_proc: int  # largest single process (GNU time %M, i.e. ru_maxrss)
    cpu: float = 0.0  # user + system CPU seconds of the process tree (GNU time %U + %S)


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None, stdout: Any = None,
                 stderr: Any = None, poll: bool = True) -> Run:
    """Run ``cmd`` under ``/usr/bin/time`` (so that ``ru_maxrss`` is not inflated by the fork of
    this fat Python process) and, when ``poll``, with psutil polling of its process tree."""
    fd, tfile = tempfile.mkstemp(prefix="bench-time-", dir=OUT)
    os.close(fd)
    t0 = time.perf_counter()
    wrapper = ["/usr/bin/time", "-q", "-f", "%U %S %M", "-o", tfile] \
        if Path("/usr/bin/time").exists() \
        else []  # Debian package "time"; without it only the psutil numbers are measured
    proc = subprocess.Popen([*wrapper, *cmd], env=env,
                            cwd=REPO, stdin=subprocess.DEVNULL,
                            stdout=stdout if stdout is not None else subprocess.DEVNULL,
                            stderr=stderr if stderr is not None else subprocess.DEVNULL)
    poller = _TreePoller(proc.pid) if poll else None
    if poller:
        poller.start()
    rc = proc.wait()
    wall = time.perf_counter() - t0
    if poller:
        poller.stop()
    lines = Path(tfile).read_text().split()
    os.unlink(tfile)
    max_proc = int(lines[-1]) * 1024 if lines and lines[-1].isdigit() else 0
    try:  # CPU of the tree: GNU time reports the children the command waited for
        cpu = float(lines[-3]) + float(lines[-2])
    except (IndexError, ValueError):
        cpu = 0.0
    return Run(wall, rc, poller.peak_rss if poller else max_proc,
               poller.peak_pss if poller else max_proc, max_proc, cpu)


def drop_caches() -> bool:
    """Drop the page cache (root only); False when the kernel refuses."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def warm(files: list[Path]) -> float:
    """Read every file once so that it sits in the page cache; returns seconds."""
    t0 = time.perf_counter()
    for p in files:
        with p.open("rb") as fh:
            while fh.read(1 << 20):
                pass
    return time.perf_counter() - t0


# ---------------------------------------------------------------- in-process workers (subprocess)

def _hash_one(path: str) -> int:
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return n


def _worker_hash(list_file: str, procs: int) -> dict[str, Any]:
    paths = Path(list_file).read_text().splitlines()
    t0 = time.perf_counter()
    if procs <= 1:
        total = sum(_hash_one(p) for p in paths)
    else:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(procs) as pool:
            total = sum(pool.imap_unordered(_hash_one, paths, chunksize=64))
    return {"seconds": time.perf_counter() - t0, "files": len(paths), "bytes": total, "errors": 0}


def _worker_pydicom(list_file: str) -> dict[str, Any]:
    import warnings

    import pydicom

    paths = Path(list_file).read_text().splitlines()
    errors = total = 0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p in paths:
            try:
                pydicom.dcmread(p, stop_before_pixels=False, defer_size=None)
            except Exception:  # a failure is counted, as any peer's
                errors += 1
            total += os.path.getsize(p)
    return {"seconds": time.perf_counter() - t0, "files": len(paths), "bytes": total,
            "errors": errors, "pydicom": pydicom.__version__}


# ---------------------------------------------------------------- the tools

@dataclass
class Ctx:
    info: CorpusInfo
    files: list[Path]
    list_file: Path
    total_bytes: int
    cache: str
    args: argparse.Namespace


def _self_timed(ctx: Ctx, tool: str, worker_args: list[str]) -> Result:
    out = OUT / f"scan-{tool}.json"
    cmd = [sys.executable, str(BENCH / "scan.py"), *worker_args, str(ctx.list_file)]
    with out.open("w") as fh:
        run = run_measured(cmd, stdout=fh)
    data = json.loads(out.read_text()) if run.rc == 0 else {}
    res = _result(tool, ctx, run, files=data.get("files", 0), size=data.get("bytes", 0),
                  seconds=data.get("seconds", run.wall))
    res.extra = {"wall_with_startup": round(run.wall, 3), **data}
    res.notes.append("own timer inside the process (interpreter start excluded)")
    if data.get("errors"):
        res.notes.append(f"{data['errors']} files raised")
    return res


def _result(tool: str, ctx: Ctx, run: Run, *, files: int | None = None, size: int | None = None,
            seconds: float | None = None) -> Result:
    res = Result(tool, ctx.cache, ctx.info.n if files is None else files,
                 ctx.total_bytes if size is None else size,
                 run.wall if seconds is None else seconds, run.rss_tree / 1e6,
                 run.pss_tree / 1e6, run.rss_max_proc / 1e6, run.rc)
    if run.cpu:
        res.extra["cpu_s"] = round(run.cpu, 2)
    return res


def tool_sha256_1p(ctx: Ctx) -> Result:
    return _self_timed(ctx, "sha256-1p", ["_worker", "hash", "1"])


def tool_sha256_2p(ctx: Ctx) -> Result:
    return _self_timed(ctx, "sha256-2p", ["_worker", "hash", "2"])


def tool_pydicom(ctx: Ctx) -> Result:
    res = _self_timed(ctx, "pydicom", ["_worker", "pydicom", "0"])
    res.notes.append("dcmread(stop_before_pixels=False, defer_size=None), 1 process")
    return res


def tool_dcmdump(ctx: Ctx) -> Result:
    err = OUT / "scan-dcmdump.err"
    with err.open("w") as fh:
        run = run_measured(["dcmdump", "+sd", "+r", "-q", ctx.info.root], stderr=fh)
    res = _result("dcmdump", ctx, run)
    if run.rc:
        res.notes.append(f"exit {run.rc} (dcmdump's count of files it could not read, mod 256)")
    return res


def _radguard_exe() -> list[str]:
    """The installed ``radguard`` entry point of the project's environment (what a user runs),
    not ``uv run``, whose environment check adds about 0.1 s to every run; ``uv run`` only when
    the environment has no entry point."""
    exe = Path(sys.prefix) / "bin" / "radguard"
    return [str(exe)] if exe.exists() else ["uv", "run", "--no-sync", "radguard"]


def tool_radguard(ctx: Ctx) -> Result:
    return _radguard(ctx, "radguard", None)


def compile_bytecode(src: Path) -> None:
    """Write the bytecode of the RadGuard sources that will be timed, as an installation has it.

    With ``PYTHONDONTWRITEBYTECODE=1`` (set on the shared development machine) Python never
    rewrites a stale ``.pyc``: every module edited since its bytecode was written would be
    compiled again at each start of the timed command (tens of milliseconds of start-up that no
    installed copy pays).
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(src / "radguard")],
                   check=False, stdout=subprocess.DEVNULL)


def tool_radguard_baseline(ctx: Ctx) -> Result:
    """The same command with another checkout's ``src`` first on ``PYTHONPATH``
    (``--baseline-src``): an earlier version timed in the same run, under the same load."""
    return _radguard(ctx, "radguard-baseline", ctx.args.baseline_src)


def _radguard(ctx: Ctx, tool: str, src: Path | None) -> Result:
    report = OUT / f"scan-{tool}-report.json"
    env = {**os.environ, "RADGUARD_HOME": str(OUT / "radguard-home")}
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [env.get("PYTHONPATH")])])
    cmd = [*_radguard_exe(), "media", "scan", ctx.info.root, "--format", "json", "--no-record",
           "-o", str(report)]
    if ctx.args.workers:
        cmd += ["--workers", str(ctx.args.workers)]
    err = OUT / f"scan-{tool}.err"
    report.unlink(missing_ok=True)
    with err.open("w") as fh:
        run = run_measured(cmd, env=env, stderr=fh)
    res = _result(tool, ctx, run)
    if src is not None:
        res.notes.append(f"PYTHONPATH={src}")
    if run.rc in (0, 1) and report.exists():
        medium = json.loads(report.read_text())["medium"]
        res.extra.update({"verdict": medium["verdict"], "counts": medium["counts"]})
        res.notes.append("verdicts: " + ", ".join(
            f"{medium['counts'][k]} {k}" for k in ("clean", "suspicious", "dangerous")))
        if medium["counts"]["files"] != ctx.info.n:
            res.notes.append(f"scanned {medium['counts']['files']} files, not {ctx.info.n}")
    else:
        res.notes.append(f"FAILED, exit {run.rc}: see {err}")
    res.notes.append(f"{cmd[0]}: wall time includes interpreter start-up and writing the JSON "
                     "report")
    return res


def _ensure_dicomlock() -> tuple[Path | None, str]:
    exe = PEERS / "bin" / "dicomlock"
    if not exe.exists():
        try:
            subprocess.run(["uv", "venv", "-q", "--python", "3.11", str(PEERS)], check=True,
                           capture_output=True, cwd=REPO)
            subprocess.run(["uv", "pip", "install", "-q", "--python", str(PEERS), "dicomlock"],
                           check=True, capture_output=True, cwd=REPO)
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            return None, f"dicomlock did not install: {detail.decode(errors='replace')[-300:]}"
    probe = subprocess.run([str(PEERS / "bin" / "python"), "-c",
                            "import importlib.metadata as m; print(m.version('dicomlock'))"],
                           capture_output=True, text=True)
    return exe, f"dicomlock {probe.stdout.strip() or '?'}"


def _mirror(ctx: Ctx) -> Path:
    """A folder of symlinks to the corpus files (DicomLock writes its report into its target)."""
    view = OUT / f"{Path(ctx.info.root).name}-links"
    stamp = view / ".complete"
    if stamp.exists() and stamp.read_text() == f"{ctx.info.n}/{ctx.info.total_bytes}":
        (view / "dicomlock_report.json").unlink(missing_ok=True)
        return view
    shutil.rmtree(view, ignore_errors=True)
    for f in ctx.files:
        dest = view / f.parent.name / f.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(f.resolve())
    stamp.write_text(f"{ctx.info.n}/{ctx.info.total_bytes}")
    return view


def tool_dicomlock(ctx: Ctx) -> Result:
    exe, version = _ensure_dicomlock()
    if exe is None:
        return Result("dicomlock", ctx.cache, 0, 0, 0.0, 0.0, 0.0, 0.0, None, notes=[version])
    view = _mirror(ctx)
    log = OUT / "scan-dicomlock.out"
    with log.open("w") as fh:
        run = run_measured([str(exe), str(view)], stdout=fh, stderr=subprocess.STDOUT)
    res = _result("dicomlock", ctx, run)
    res.notes += [version, "scans *.dcm only (every corpus file is *.dcm); run on a folder of "
                  "symbolic links to the corpus files"]
    if run.rc != 0:
        res.notes.append(f"exit {run.rc}: see {log}")
    return res


def tool_dciodvfy(ctx: Ctx) -> Result:
    k = min(ctx.args.dciodvfy_sample, len(ctx.files))
    sample = random.Random(ctx.info.seed + 1).sample(ctx.files, k)
    if ctx.cache == "cold":
        drop_caches()
    aborts = failures = 0
    t0 = time.perf_counter()
    for f in sample:  # a plain loop (no /usr/bin/time wrapper) so the peer pays no extra fork
        rc = subprocess.run(["dciodvfy", str(f)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        aborts += rc < 0
        failures += rc > 0
    wall = time.perf_counter() - t0
    # memory, untimed, on the first 20 files of the sample
    max_rss = max(run_measured(["dciodvfy", str(f)], poll=False).rss_max_proc
                  for f in sample[:20])
    size = sum(f.stat().st_size for f in sample)
    mb = max_rss / 1e6
    res = Result("dciodvfy", ctx.cache, k, size, wall, mb, mb, mb, 0, sample=k)
    res.notes.append(f"random sample of {k} files, one process per file, rate extrapolated to "
                     f"the corpus (~{ctx.info.n / max(res.files_per_s, 1e-9):.0f} s for all)")
    res.notes.append(f"{aborts} aborted (signal), {failures} exited non-zero (errors found); "
                     "memory measured untimed on 20 of the files")
    res.extra = {"aborted": aborts, "nonzero": failures}
    return res


def run_once(tool: str, ctx: Ctx) -> Result:
    """One run of a tool, with the 1-minute load average before it (other work slows a tool)."""
    load = os.getloadavg()[0]
    res = RUNNERS[tool](ctx)
    res.extra["load_1min_before"] = round(load, 2)
    return res


def best_of(tool: str, ctx: Ctx, repeat: int) -> Result:
    """Run a tool ``repeat`` times (dropping the cache before each cold run); keep the fastest."""
    runs: list[Result] = []
    for k in range(max(1, repeat)):
        if ctx.cache == "cold" and k and tool != "dciodvfy":
            drop_caches()
        runs.append(run_once(tool, ctx))
    return fastest(runs)


def fastest(runs: list[Result]) -> Result:
    """The fastest of a tool's runs, with every run's time (and CPU seconds) in its notes."""
    best = min(runs, key=lambda r: r.seconds if r.seconds > 0 else float("inf"))
    if len(runs) > 1:
        best.notes.append(f"fastest of {len(runs)} runs: "
                          + ", ".join(f"{r.seconds:.2f}" for r in runs) + " s")
    best.notes.append(f"load average before the run: {best.extra['load_1min_before']}")
    cpus = [r.extra["cpu_s"] for r in runs if "cpu_s" in r.extra]
    if cpus:
        best.notes.append("CPU seconds (user+sys of the tree) per run: "
                          + ", ".join(f"{c:.2f}" for c in cpus))
    return best


def interleaved(tools: list[str], ctx: Ctx, repeat: int) -> list[Result]:
    """Warm cache: run the tools round-robin (``repeat`` rounds) so that each one meets the same
    changes of load on a shared machine, then keep each tool's fastest run."""
    runs: dict[str, list[Result]] = {t: [] for t in tools}
    for k in range(max(1, repeat)):
        for tool in tools:
            print(f"[warm] {tool} round {k + 1} ...", file=sys.stderr, flush=True)
            runs[tool].append(run_once(tool, ctx))
    return [fastest(runs[t]) for t in tools]


RUNNERS = {"sha256-1p": tool_sha256_1p, "sha256-2p": tool_sha256_2p, "dcmdump": tool_dcmdump,
           "radguard": tool_radguard, "radguard-baseline": tool_radguard_baseline,
           "pydicom": tool_pydicom, "dicomlock": tool_dicomlock, "dciodvfy": tool_dciodvfy}


# ---------------------------------------------------------------- report

def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    import psutil
    import pydicom

    def first_line(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    return {
        "nproc": os.cpu_count(), "cpu": cpu,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "os": first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "radguard": first_line(["uv", "run", "--no-sync", "radguard", "--version"]),
        "pydicom": pydicom.__version__,
        "dcmtk": first_line(["dpkg-query", "-W", "-f", "${Version}", "dcmtk"]),
        "dicom3tools": first_line(["dpkg-query", "-W", "-f", "${Version}", "dicom3tools"]),
        "filesystem": first_line(["sh", "-c", f"df -hT {OUT} | tail -1"]),
        "commit": first_line(["git", "-C", str(REPO), "rev-parse", "HEAD"]),
        "src_changes_uncommitted": first_line(["sh", "-c", f"git -C {REPO} status --porcelain "
                                               "src | wc -l"]),
    }


def targets(results: list[Result], cache: str) -> list[dict[str, Any]]:
    """The issue's targets, judged on one cache mode."""
    by = {r.tool: r for r in results if r.cache == cache and r.seconds > 0 and r.files}
    rg = by.get("radguard")
    if rg is None:
        return []
    out: list[dict[str, Any]] = []

    def add(name: str, ok: bool, detail: str) -> None:
        out.append({"cache": cache, "target": name, "pass": ok, "detail": detail})

    if "dcmdump" in by:
        r = rg.files_per_s / by["dcmdump"].files_per_s
        add("radguard >= dcmdump speed", r >= 1.0, f"{r:.2f}x dcmdump's files/s")
    if "dciodvfy" in by:
        r = rg.files_per_s / by["dciodvfy"].files_per_s
        add("radguard >= 10x dciodvfy", r >= 10.0, f"{r:.1f}x dciodvfy's files/s")
    for h in ("sha256-1p", "sha256-2p"):
        if h in by:
            r = rg.seconds / by[h].seconds
            add(f"radguard within 2x of read limit ({h})", r <= 2.0, f"takes {r:.1f}x as long")
    add("radguard peak memory < 300 MB (PSS sum of the process tree)", rg.pss_tree_mb < 300,
        f"PSS sum {rg.pss_tree_mb:.0f} MB; RSS sum {rg.rss_tree_mb:.0f} MB (shared pages counted "
        f"per process); largest process {rg.rss_max_proc_mb:.0f} MB")
    return out


def table(results: list[Result]) -> str:
    rg = {r.cache: r for r in results if r.tool == "radguard" and r.seconds > 0}
    head = (f"{'tool':<17} {'cache':<5} {'files':>6} {'GB':>6} {'seconds':>8} {'files/s':>8} "
            f"{'MB/s':>7} {'PSS sum':>8} {'RSS sum':>8} {'max proc':>8} {'RG/tool':>8}")
    lines = [head, "-" * len(head)]
    for r in results:
        ratio = ""
        if r.cache in rg and r.files_per_s > 0:
            ratio = f"{rg[r.cache].files_per_s / r.files_per_s:.2f}x"
        lines.append(f"{r.tool:<17} {r.cache:<5} {r.files:>6} {r.bytes / 1e9:>6.2f} "
                     f"{r.seconds:>8.2f} {r.files_per_s:>8.1f} {r.mb_per_s:>7.1f} "
                     f"{r.pss_tree_mb:>8.0f} {r.rss_tree_mb:>8.0f} {r.rss_max_proc_mb:>8.0f} "
                     f"{ratio:>8}")
        for note in r.notes:
            lines.append(f"{'':<24}- {note}")
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=20_000, help="corpus size in files (20000)")
    p.add_argument("--gb", type=float, default=None,
                   help="corpus size in GB (default 0.15 MB per file: 3 GB for 20,000)")
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--quick", action="store_true",
                   help="CI smoke: 200 files, 30 MB, dciodvfy sample 30, warm cache only")
    p.add_argument("--cache", choices=("cold", "warm", "both"), default="both",
                   help="page cache state per tool (cold needs root; falls back to warm)")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma list of {', '.join(TOOLS)}")
    p.add_argument("--repeat", type=int, default=1, help="runs per tool and cache mode; the "
                   "fastest is kept (the machine may be shared)")
    p.add_argument("--dciodvfy-sample", type=int, default=500)
    p.add_argument("--workers", type=int, default=0, help="radguard --workers (default: its own)")
    p.add_argument("--corpus", type=Path, default=None, help="corpus folder (default bench/out/"
                   "corpus-scan, or corpus-scan-N for other sizes)")
    p.add_argument("--interleave", action="store_true",
                   help="warm cache: run the tools round-robin, one run each per round, so that "
                   "all of them meet the same load (the machine may be shared)")
    p.add_argument("--baseline-src", type=Path, default=None,
                   help="the src/ folder of another RadGuard checkout (e.g. `git worktree add`): "
                   "tool radguard-baseline runs it with PYTHONPATH, in the same run")
    p.add_argument("--json", type=Path, default=OUT / "scan-results.json")
    args = p.parse_args(argv)
    if args.quick:
        args.files, args.gb, args.dciodvfy_sample, args.cache = 200, 0.03, 30, "warm"
    return args


def main(argv: list[str]) -> int:
    if argv[:1] == ["_worker"]:
        kind, procs, paths_file = argv[1], int(argv[2]), argv[3]
        data = _worker_hash(paths_file, procs) if kind == "hash" else _worker_pydicom(paths_file)
        print(json.dumps(data))
        return 0
    args = parse(argv)
    unknown = set(args.tools.split(",")) - set(TOOLS) - set(EXTRA_TOOLS)
    if unknown:
        print(f"unknown tools: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    default_name = "corpus-scan" if args.files == 20_000 and args.gb is None else \
        f"corpus-scan-{args.files}"
    root = args.corpus or OUT / default_name
    target = int((args.gb * 1e9) if args.gb else args.files * BYTES_PER_FILE)
    t0 = time.perf_counter()
    info = build_corpus(root, args.files, target, args.seed,
                        progress=lambda m: print(m, file=sys.stderr, flush=True))
    build_s = time.perf_counter() - t0
    files = info.files()
    list_file = OUT / f"{root.name}.list"
    list_file.write_text("".join(f"{f}\n" for f in files))
    modes = ["cold", "warm"] if args.cache == "both" else [args.cache]
    notes: list[str] = []
    if "cold" in modes and not drop_caches():
        notes.append("could not drop the page cache (needs root): every number is warm-cache")
        modes = ["warm"]
    results: list[Result] = []
    tools = args.tools.split(",")
    if "radguard" in tools:
        compile_bytecode(REPO / "src")
    if "radguard-baseline" in tools and args.baseline_src:
        compile_bytecode(args.baseline_src)
    for mode in modes:
        if mode == "warm":
            print(f"warming the page cache: {warm(files):.1f} s", file=sys.stderr, flush=True)
        if mode == "warm" and args.interleave:
            ctx = Ctx(info, files, list_file, info.total_bytes, mode, args)
            for res in interleaved(tools, ctx, args.repeat):
                print(f"[{mode}] {res.tool}: {res.seconds:.2f} s, {res.files_per_s:.1f} files/s, "
                      f"CPU {res.extra.get('cpu_s', 0):.2f} s", file=sys.stderr, flush=True)
                results.append(res)
            continue
        for tool in tools:
            if mode == "cold" and tool != "dciodvfy":
                drop_caches()
            print(f"[{mode}] {tool} ...", file=sys.stderr, flush=True)
            ctx = Ctx(info, files, list_file, info.total_bytes, mode, args)
            res = best_of(tool, ctx, args.repeat)
            print(f"[{mode}] {tool}: {res.seconds:.2f} s, {res.files_per_s:.1f} files/s, "
                  f"{res.mb_per_s:.1f} MB/s, PSS {res.pss_tree_mb:.0f} MB", file=sys.stderr,
                  flush=True)
            results.append(res)
    verdicts = [t for mode in modes for t in targets(results, mode)]
    print(table(results))
    print()
    for t in verdicts:
        print(f"{'PASS' if t['pass'] else 'FAIL'}  [{t['cache']}] {t['target']}: {t['detail']}")
    for note in notes:
        print(f"note: {note}")
    doc = {"corpus": {**asdict(info), "build_seconds": round(build_s, 1)},
           "machine": machine(), "modes": modes, "notes": notes,
           "results": [r.to_dict() for r in results], "targets": verdicts}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, args.json)
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
