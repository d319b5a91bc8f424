"""Benchmark: import one custody package into Orthanc with RadGuard and with DCMTK storescu.

Side by side in one run (issue 3): the same sanitised package of >= 2,000 real files (replicated
from pydicom's test files and pydicom-data with new UIDs by ``bench/_corpus.py``) is sent into a
fresh Orthanc (the same configuration for both tools, its own storage, ``TCP_NODELAY=1`` in its
environment) by

- ``storescu -R -nh +sd PACKAGE/files`` (DCMTK, ``TCP_NODELAY=1``), and
- RadGuard ``import_package`` (signature and every hash verified before anything is sent, journal,
  C-STORE with TCP_NODELAY, C-FIND confirmation, audit), timed in-process; the CLI's wall time
  (including Python start-up) is reported too.

Two packages, because storescu cannot send every file of the mixed one (it gets Explicit VR Little
Endian for a compressed file's SOP class and cannot convert JPEG / JPEG 2000 / deflated files):

- ``mixed``: the issue's package, every transfer syntax of the corpus;
- ``plain``: only files in Implicit or Explicit VR Little Endian (from a larger corpus of the same
  sources), which both tools can deliver in full, so "files per second" compares equal work.

Arrival is counted by Orthanc's REST ``/statistics`` (instances and stored bytes). Printed per tool:
seconds, package files/s and MB/s, arrived instances/s and MB/s; the ratios (RadGuard / storescu)
by package files/s and by arrived instances/s; the 1-minute load average before each run (the
machine is shared). ``--rounds N`` repeats everything N times with fresh Orthancs, alternating the
order of the tools; the sanitised packages are kept in ``bench/out`` and reused.

    uv run python bench/import.py --rounds 3          # both packages
    uv run python bench/import.py --quick             # small packages (smoke test)
    uv run python bench/import.py --packages plain --no-cli
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _corpus import build_corpus  # noqa: E402
from tests.support.peers import start_orthanc  # noqa: E402

OUT = ROOT / "bench" / "out"
PLAIN_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")  # Implicit / Explicit VR LE
ORTHANC = {"DicomAlwaysAllowFind": True}
"""Overrides of tests/support/peers.py's Orthanc configuration, the SAME for both tools (C-FIND is
what RadGuard confirms with; storescu does not use it). Everything else is Orthanc's default:
SQLite index beside the storage, StorageCompression off, SyncStorageArea on (its default)."""


def _stats(orthanc: Any) -> tuple[int, int]:
    s = orthanc.rest("/statistics")
    return int(s["CountInstances"]), int(s["TotalUncompressedSize"])


def _sanitised(cached: Path, corpus_root: Path) -> tuple[Path, float]:
    """The package in ``cached/package`` (built once from ``corpus_root``) and its build time."""
    from radguard.config import load_settings
    from radguard.media.engines import EngineConfig
    from radguard.media.sanitize import SanitizeOptions, sanitize_medium
    from radguard.media.scan import ScanOptions

    package = cached / "package"
    if (package / "manifest.sig").exists():
        return package, 0.0
    shutil.rmtree(cached, ignore_errors=True)
    env0 = {**os.environ, "RADGUARD_HOME": str(cached / "home"), "RADGUARD_STATION": "bench"}
    t0 = time.perf_counter()
    san = sanitize_medium(load_settings(environ=env0), str(corpus_root), package,
                          SanitizeOptions(scan=ScanOptions(workers=2,
                                                           engines=EngineConfig(yara=False))))
    secs = time.perf_counter() - t0
    print(f"sanitised {corpus_root.name} in {secs:.1f} s; {san.counts['excluded']} left out",
          flush=True)
    return package, secs


def _plain_corpus(n_big: int, mb_big: int, want: int) -> Path:
    """Hard links to the first ``want`` little-endian uncompressed files of a corpus of ``n_big``."""
    from pydicom.filereader import read_file_meta_info

    big = build_corpus(OUT / f"corpus-import-{n_big}", n_big, mb_big * 1024 * 1024,
                       progress=lambda m: print(m, flush=True))
    root = OUT / f"corpus-import-plain-{want}"
    if (root / "done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "files").mkdir(parents=True)
    picked = 0
    for src in big.files():
        if picked >= want:
            break
        if str(read_file_meta_info(src).get("TransferSyntaxUID", "")) in PLAIN_SYNTAXES:
            os.link(src, root / "files" / f"p{picked:06d}.dcm")
            picked += 1
    (root / "done").write_text(f"{picked}\n")  # beside files/, not scanned as a medium file
    return root


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--files", type=int, default=2100, help="mixed corpus size (package >= 2,000)")
    ap.add_argument("--mb", type=int, default=315, help="mixed corpus size target (MB)")
    ap.add_argument("--plain-files", type=int, default=2200,
                    help="little-endian files picked for the plain package")
    ap.add_argument("--associations", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--packages", default="mixed,plain")
    ap.add_argument("--no-cli", action="store_true", help="skip the CLI wall-time run")
    args = ap.parse_args()
    n, mb, n_plain = (200, 30, 200) if args.quick else (args.files, args.mb, args.plain_files)
    OUT.mkdir(parents=True, exist_ok=True)
    packages: dict[str, Path] = {}
    build: dict[str, float] = {}
    for kind in args.packages.split(","):
        if kind == "mixed":
            corpus = build_corpus(OUT / f"corpus-import-{n}", n, mb * 1024 * 1024,
                                  progress=lambda m: print(m, flush=True))
            packages[kind], build[kind] = _sanitised(OUT / f"import-package-{n}", Path(corpus.root))
        elif kind == "plain":
            root = _plain_corpus(int(n_plain * 1.6), int(n_plain * 0.24), n_plain)
            packages[kind], build[kind] = _sanitised(OUT / f"import-package-plain-{n_plain}",
                                                     root / "files")
        else:
            raise SystemExit(f"unknown package kind {kind!r} (mixed, plain)")
    sizes = {k: [f.stat().st_size for f in (p / "files").iterdir()] for k, p in packages.items()}
    for k, s in sizes.items():
        warn = "" if len(s) >= 2000 or args.quick else "  (fewer than 2,000: raise --files)"
        print(f"package {k}: {len(s)} files, {sum(s) / 1e6:.1f} MB{warn}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="rg-bench-import-", dir=OUT))
    runs: list[dict[str, Any]] = []
    for rnd in range(args.rounds):
        for kind, package in packages.items():
            res = _round(rnd, work / f"round{rnd}-{kind}", package, args)
            res = _table(kind, res, len(sizes[kind]), sum(sizes[kind]))
            runs.append({"round": rnd, "package": kind, "tools": res})
    summary = _summary(runs)
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    (OUT / "import-results.json").write_text(json.dumps(
        {"packages": {k: {"files": len(s), "bytes": sum(s)} for k, s in sizes.items()},
         "sanitise_seconds": build, "associations": args.associations,
         "orthanc_overrides": ORTHANC, "rounds": runs, "summary": summary,
         "loadavg": os.getloadavg()}, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _table(kind: str, res: dict[str, dict[str, float]], nfiles: int,
           total_bytes: int) -> dict[str, dict[str, float]]:
    print(f"\n[{kind}] {'tool':<13}{'s':>7}{'files/s':>9}{'MB/s':>7}{'arrived':>9}{'inst/s':>8}"
          f"{'MB/s':>7}{'cpu':>6}{'peer':>6}  load")
    for name, r in res.items():
        r["files_per_s"] = nfiles / r["seconds"]
        r["mb_per_s"] = total_bytes / 1e6 / r["seconds"]
        r["arrived_per_s"] = r["arrived"] / r["seconds"]
        r["arrived_mb_per_s"] = r["arrived_bytes"] / 1e6 / r["seconds"]
        print(f"[{kind}] {name:<13}{r['seconds']:>7.2f}{r['files_per_s']:>9.1f}"
              f"{r['mb_per_s']:>7.1f}{int(r['arrived']):>9}{r['arrived_per_s']:>8.1f}"
              f"{r['arrived_mb_per_s']:>7.1f}{r['client_cpu']:>6.2f}{r['orthanc_cpu']:>6.2f}"
              f"  {r['load1']:.2f}")
    s, g = res["storescu"], res["radguard"]
    print(f"[{kind}] ratio by package files/s {g['files_per_s'] / s['files_per_s']:.2f}x, by "
          f"arrived instances/s {g['arrived_per_s'] / s['arrived_per_s']:.2f}x; RadGuard "
          + ", ".join(f"{k[2:]} {v:.2f} s" for k, v in g.items() if k.startswith("t_"))
          + f", rest {g['seconds'] - sum(v for k, v in g.items() if k.startswith('t_')):.2f} s"
          " (set-up, report, audit, job record)", flush=True)
    return res


def _summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for kind in dict.fromkeys(r["package"] for r in runs):
        mine = [r["tools"] for r in runs if r["package"] == kind]
        files = [t["radguard"]["files_per_s"] / t["storescu"]["files_per_s"] for t in mine]
        arrived = [t["radguard"]["arrived_per_s"] / t["storescu"]["arrived_per_s"] for t in mine]
        out[kind] = {"median_ratio_files": statistics.median(files),
                     "median_ratio_arrived": statistics.median(arrived)}
        print(f"\n[{kind}] ratio RadGuard/storescu per round by package files/s: "
              f"{', '.join(f'{x:.2f}x' for x in files)} (median {statistics.median(files):.2f}x); "
              f"by arrived instances/s: {', '.join(f'{x:.2f}x' for x in arrived)} "
              f"(median {statistics.median(arrived):.2f}x); target >= 0.9x")
    return out


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a running process (/proc/PID/stat fields 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    """CPU seconds of this process and its waited-for children (storescu, the CLI)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _orthanc_run(folder: Path, fn: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """Time ``fn(orthanc)`` into a fresh Orthanc; also the CPU the client and Orthanc used."""
    orthanc = start_orthanc(folder, overrides=ORTHANC)
    try:
        load1 = os.getloadavg()[0]
        peer0, own0 = _cpu_of(orthanc.proc.pid), _own_cpu()
        t0 = time.perf_counter()
        extra = fn(orthanc)
        secs = time.perf_counter() - t0
        own = _own_cpu() - own0
        arrived, stored = _stats(orthanc)
        return {"seconds": secs, "arrived": arrived, "arrived_bytes": stored, "load1": load1,
                "client_cpu": own, "orthanc_cpu": _cpu_of(orthanc.proc.pid) - peer0, **extra}
    finally:
        orthanc.stop()


def _round(rnd: int, work: Path, package: Path, args: argparse.Namespace) -> dict[str, Any]:
    from radguard.config import load_settings
    from radguard.importer import ImportOptions, import_package

    work.mkdir(parents=True)
    env = {**os.environ, "RADGUARD_HOME": str(work / "home"), "RADGUARD_STATION": "bench"}
    shutil.copytree(package.parent / "home" / "keys", work / "home" / "keys")
    settings = load_settings(environ=env)
    results: dict[str, Any] = {}

    def storescu(orthanc: Any) -> dict[str, Any]:  # TCP_NODELAY as for every DCMTK peer
        proc = subprocess.run(["/usr/bin/storescu", "-R", "-nh", "-aec", orthanc.aet,
                               "127.0.0.1", str(orthanc.dicom_port), "+sd",
                               str(package / "files")],
                              env={**os.environ, "TCP_NODELAY": "1"}, capture_output=True,
                              text=True)
        return {"exit": proc.returncode}

    def radguard(orthanc: Any) -> dict[str, Any]:  # verify, journal, C-STORE, C-FIND, audit
        to = f"dimse://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
        report = import_package(settings, package, to,
                                ImportOptions(keep_ids=True, associations=args.associations))
        return {"confirmed": report.counts["confirmed"],
                **{f"t_{k}": v for k, v in report.timings.items()}}

    def cli(orthanc: Any) -> dict[str, Any]:  # a fresh home: includes Python start-up
        to = f"dimse://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
        shutil.copytree(work / "home" / "keys", work / "home-cli" / "keys")
        proc = subprocess.run([sys.executable, "-c", "from radguard.cli import main; main()",
                               "media", "import", str(package), "--to", to, "--keep-ids",
                               "--associations", str(args.associations),
                               "--format", "json", "-o", str(work / "cli-report.json")],
                              env={**env, "RADGUARD_HOME": str(work / "home-cli")},
                              capture_output=True, text=True)
        return {"exit": proc.returncode}

    # alternate the order between rounds, so a drift of the machine's load favours neither tool
    order = [("storescu", storescu), ("radguard", radguard)]
    for name, fn in (order if rnd % 2 == 0 else order[::-1]):
        results[name] = _orthanc_run(work / f"orthanc-{name}", fn)
    if not args.no_cli:
        results["radguard-cli"] = _orthanc_run(work / "orthanc-cli", cli)
    return results


if __name__ == "__main__":
    raise SystemExit(main())
