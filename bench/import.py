"""Benchmark: import one custody package into Orthanc with RadGuard and with DCMTK storescu.

Side by side in one run (issue 3): the same sanitised package of >= 2,000 real files (replicated
from pydicom's test files and pydicom-data with new UIDs by ``bench/_corpus.py``) is sent into a
fresh Orthanc (same configuration, its own storage, ``TCP_NODELAY=1`` in its environment) by

- ``storescu -R -nh +sd PACKAGE/files`` (DCMTK, ``TCP_NODELAY=1``), and
- RadGuard ``import_package`` (signature and hash verification, hash re-check at send time,
  journal, C-STORE with TCP_NODELAY, C-FIND confirmation, audit), timed in-process; the CLI's wall
  time (including Python start-up) is reported too.

Arrival is counted by Orthanc's REST ``/statistics``. Prints instances/s, MB/s, the ratio and the
load averages (the machine is shared). ``--rounds N`` repeats storescu and RadGuard back to back N
times, each into fresh Orthancs; the sanitised package is kept in ``bench/out`` and reused.

    uv run python bench/import.py                     # 2,000 files
    uv run python bench/import.py --quick             # 200 files (smoke test)
    uv run python bench/import.py --associations 1    # one association
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _corpus import build_corpus  # noqa: E402
from tests.support.peers import start_orthanc  # noqa: E402

OUT = ROOT / "bench" / "out"


def _count(orthanc) -> int:
    return int(orthanc.rest("/statistics")["CountInstances"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--mb", type=int, default=300, help="corpus size target (MB)")
    ap.add_argument("--associations", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--no-cli", action="store_true", help="skip the CLI wall-time run")
    args = ap.parse_args()
    n = 200 if args.quick else args.files
    mb = 30 if args.quick else args.mb
    OUT.mkdir(parents=True, exist_ok=True)
    corpus = build_corpus(OUT / f"corpus-import-{n}", n, mb * 1024 * 1024,
                          progress=lambda m: print(m, flush=True))
    from radguard.config import load_settings
    from radguard.importer import ImportOptions, import_package
    from radguard.media.engines import EngineConfig
    from radguard.media.sanitize import SanitizeOptions, sanitize_medium
    from radguard.media.scan import ScanOptions

    work = Path(tempfile.mkdtemp(prefix="rg-bench-import-", dir=OUT))
    cached = OUT / f"import-package-{n}"  # package + the signing station's keys, reused
    package = cached / "package"
    t_san = 0.0
    if not (package / "manifest.sig").exists():
        shutil.rmtree(cached, ignore_errors=True)
        env0 = {**os.environ, "RADGUARD_HOME": str(cached / "home"), "RADGUARD_STATION": "bench"}
        t0 = time.perf_counter()
        san = sanitize_medium(load_settings(environ=env0), str(corpus.root), package,
                              SanitizeOptions(scan=ScanOptions(workers=2,
                                                               engines=EngineConfig(yara=False))))
        t_san = time.perf_counter() - t0
        print(f"sanitised in {t_san:.1f} s; {san.counts['excluded']} left out", flush=True)
    files = sorted((package / "files").iterdir())
    total_bytes = sum(f.stat().st_size for f in files)
    print(f"package: {len(files)} files, {total_bytes / 1e6:.1f} MB", flush=True)
    runs: list[dict[str, dict[str, float]]] = []
    for rnd in range(args.rounds):
        runs.append(_round(rnd, work / f"round{rnd}", cached, package, args, load_settings,
                           ImportOptions, import_package))
        _table(runs[-1], len(files), total_bytes)
    ratios = [r["storescu"]["seconds"] / r["radguard"]["seconds"] for r in runs]
    best = {t: min(r[t]["seconds"] for r in runs) for t in ("storescu", "radguard")}
    print(f"\nratio RadGuard/storescu (throughput) per round: "
          f"{', '.join(f'{x:.2f}x' for x in ratios)}; median {statistics.median(ratios):.2f}x; "
          f"best times {best['storescu']:.2f} s vs {best['radguard']:.2f} s = "
          f"{best['storescu'] / best['radguard']:.2f}x (target >= 0.9x)")
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    (OUT / "import-results.json").write_text(json.dumps(
        {"files": len(files), "bytes": total_bytes, "sanitise_seconds": t_san,
         "associations": args.associations, "rounds": runs, "ratios": ratios,
         "loadavg": os.getloadavg()}, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _table(results: dict[str, dict[str, float]], nfiles: int, total_bytes: int) -> None:
    print(f"\n{'tool':<14}{'seconds':>9}{'inst/s':>9}{'MB/s':>8}{'arrived':>9}  load before")
    for name, r in results.items():
        r["instances_per_s"] = nfiles / r["seconds"]
        r["mb_per_s"] = total_bytes / 1e6 / r["seconds"]
        print(f"{name:<14}{r['seconds']:>9.2f}{r['instances_per_s']:>9.1f}{r['mb_per_s']:>8.1f}"
              f"{int(r['arrived']):>9}  {r['load1']:.2f}")
    print(f"ratio {results['storescu']['seconds'] / results['radguard']['seconds']:.2f}x; RadGuard "
          + ", ".join(f"{k[2:]} {v:.2f} s" for k, v in results["radguard"].items()
                      if k.startswith("t_")), flush=True)


def _round(rnd: int, work: Path, cached: Path, package: Path, args: argparse.Namespace,
           load_settings, ImportOptions, import_package) -> dict[str, dict[str, float]]:
    work.mkdir(parents=True)
    env = {**os.environ, "RADGUARD_HOME": str(work / "home"), "RADGUARD_STATION": "bench"}
    shutil.copytree(cached / "home" / "keys", work / "home" / "keys")
    settings = load_settings(environ=env)
    results: dict[str, dict[str, float]] = {}

    def run_storescu() -> None:  # DCMTK storescu, TCP_NODELAY as for every DCMTK peer
        peer_env = {**os.environ, "TCP_NODELAY": "1"}
        orthanc = start_orthanc(work / "orthanc-storescu")
        try:
            load1 = os.getloadavg()[0]
            t0 = time.perf_counter()
            proc = subprocess.run(["/usr/bin/storescu", "-R", "-nh", "-aec", orthanc.aet,
                                   "127.0.0.1", str(orthanc.dicom_port), "+sd",
                                   str(package / "files")],
                                  env=peer_env, capture_output=True, text=True)
            secs = time.perf_counter() - t0
            results["storescu"] = {"seconds": secs, "arrived": _count(orthanc),
                                   "exit": proc.returncode, "load1": load1}
        finally:
            orthanc.stop()

    def run_radguard() -> None:  # in-process: verify, journal, C-STORE, C-FIND confirm, audit
        orthanc = start_orthanc(work / "orthanc-radguard",
                                overrides={"DicomAlwaysAllowFind": True})
        try:
            to = f"dimse://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
            load1 = os.getloadavg()[0]
            t0 = time.perf_counter()
            report = import_package(settings, package, to,
                                    ImportOptions(keep_ids=True, associations=args.associations))
            secs = time.perf_counter() - t0
            results["radguard"] = {"seconds": secs, "arrived": _count(orthanc),
                                   "confirmed": report.counts["confirmed"], "load1": load1,
                                   **{f"t_{k}": v for k, v in report.timings.items()}}
        finally:
            orthanc.stop()

    # alternate the order between rounds, so a drift of the machine's load favours neither tool
    for step in ((run_storescu, run_radguard) if rnd % 2 == 0 else (run_radguard, run_storescu)):
        step()
    if args.no_cli:
        return results
    # RadGuard CLI wall time, into a third fresh Orthanc (includes Python start-up)
    orthanc = start_orthanc(work / "orthanc-cli", overrides={"DicomAlwaysAllowFind": True})
    try:
        to = f"dimse://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
        cli_env = {**env, "RADGUARD_HOME": str(work / "home-cli")}
        shutil.copytree(work / "home" / "keys", work / "home-cli" / "keys")
        load1 = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", "from radguard.cli import main; main()",
                               "media", "import", str(package), "--to", to, "--keep-ids",
                               "--associations", str(args.associations),
                               "--format", "json", "-o", str(work / "cli-report.json")],
                              env=cli_env, capture_output=True, text=True)
        secs = time.perf_counter() - t0
        results["radguard-cli"] = {"seconds": secs, "arrived": _count(orthanc),
                                   "exit": proc.returncode, "load1": load1}
    finally:
        orthanc.stop()

    return results


if __name__ == "__main__":
    raise SystemExit(main())
