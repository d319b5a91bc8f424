"""Benchmark: RadGuard de-identification (Basic Profile) against the tools people use today.

    uv run python bench/deid.py [--files 2000] [--target-mb 300] [--tools radguard,dicognito,...]
    uv run python bench/deid.py --quick      # 60 files, smoke test

1. Corpus: ``bench/_corpus.py`` (shared by the benchmarks): pydicom's and pydicom-data's real files
   that pydicom reads and writes, replicated with their own Study/Series/SOP Instance UIDs into
   ``bench/out/deid-corpus/dNNN/fNNNNNN.dcm`` until there are ``--files`` of them.
2. Peers, each in its own virtual environment ``bench/.peers-deid-<tool>`` created here with uv
   (never in RadGuard's dependencies): dicognito (``python -m dicognito``), pydicom ``deid`` with its default
   recipe (``replace_identifiers``), KitwareMedical ``dicom-anonymizer`` (its CLI).
3. Each tool de-identifies the same corpus into its own folder, timed as a whole command (wall
   clock, interpreter start included; and the user and system CPU time of all its processes, which
   moves less than the wall clock on a shared machine), with the 1-minute load average just
   before; before each run the previous output is removed and the file systems synced (``sync``,
   by this harness), so every tool starts from the same disk state. RadGuard runs
   ``radguard deid IN --out OUT --workers 2``. ``--repeat N`` times every
   tool N times, alternating; the fastest run of each counts and every run is listed.
4. After all the timings (so that its load is in none of them), RadGuard's verifier
   (``radguard.deid.verify_file``, two processes) checks every output of each tool's last run
   against its original (paired by relative path, else by a hash of the pixel data, else by file
   name) and the findings are counted per check.

Results go to stdout as a Markdown table and to ``bench/out/deid-results.json``; the numbers of a
run are copied by hand into ``bench/results/deid.md``.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pydicom

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPUS = HERE / "out" / "deid-corpus"
OUTPUTS = HERE / "out" / "deid"
PEERS = {
    "dicognito": ["dicognito"],
    "pydicom-deid": ["deid"],
    "dicom-anonymizer": ["dicom-anonymizer"],
}
DEID_SCRIPT = """
import sys
from pathlib import Path
from deid.dicom import get_files, replace_identifiers
src, out = sys.argv[1], sys.argv[2]
files = list(get_files(src))
replace_identifiers(dicom_files=files, output_folder=out, overwrite=True, save=True)
"""


def build(count: int, target_bytes: int) -> list[Path]:
    sys.path.insert(0, str(HERE))
    from _corpus import build_corpus

    info = build_corpus(CORPUS, n=count, target_bytes=target_bytes, seed=20240601)
    return info.files()


def ensure_peer(name: str) -> Path:
    """Create ``bench/.peers-<name>`` with uv and install the peer there; returns its python."""
    venv = HERE / f".peers-deid-{name}"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(["uv", "pip", "install", "-q", "--python", str(python), *PEERS[name]],
                       check=True)
    return python


def _env() -> dict[str, str]:
    """The tools' environment: byte-code caching on (a shell may disable it; then every run would
    spend seconds compiling), RadGuard's home under bench/out."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["RADGUARD_HOME"] = str(OUTPUTS.parent / "deid-home")
    return env


def warm(name: str) -> None:
    """Compile the tool's code once before timing (all tools alike)."""
    python = Path(sys.executable) if name == "radguard" else ensure_peer(name)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
    targets = [site] + ([str(ROOT / "src")] if name == "radguard" else [])
    subprocess.run([str(python), "-m", "compileall", "-q", "-j", "2", *targets], env=_env(),
                   capture_output=True, check=False)


def run_tool(name: str, out: Path) -> tuple[float, float, float, int, str]:
    """Run one tool on the corpus; returns (wall seconds, user and system CPU seconds of all its
    processes, exit code, stderr tail). CPU time moves less than wall time on a shared machine."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    warm(name)
    # Same disk state for every tool: the previous run's output (another tool's, which may not
    # have flushed it) and its removal are written back before the clock starts, so no tool pays
    # for another's deferred write-back or freed blocks. The harness does this, never RadGuard.
    os.sync()
    time.sleep(1.0)
    env = _env()
    if name == "radguard":
        cmd = [sys.executable, "-c", "from radguard.cli import main; main()", "deid", str(CORPUS),
               "--out", str(out), "--workers", "2", "-f", "json", "--report",
               str(OUTPUTS / "radguard-report.json")]
    elif name == "dicognito":
        cmd = [str(ensure_peer(name)), "-m", "dicognito", "--output-directory", str(out), str(CORPUS)]
    elif name == "pydicom-deid":
        cmd = [str(ensure_peer(name)), "-c", DEID_SCRIPT, str(CORPUS), str(out)]
    else:  # its CLI does not recurse: one run per corpus folder, output folders made first
        binary = str(ensure_peer(name).parent / "dicom-anonymizer")
        folders = sorted(p for p in CORPUS.iterdir() if p.is_dir())
        script = " && ".join(f"mkdir -p {out / f.name} && {binary} {f} {out / f.name}"
                             for f in folders)
        cmd = ["sh", "-c", script]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=env,
                          check=False)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (seconds, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime,
            proc.returncode, proc.stderr[-500:])


def _pixel_key(path: Path) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
        raw = ds.get("PixelData")
        return hashlib.sha256(raw).hexdigest() if raw else None
    except Exception:
        return None


def pair_outputs(out: Path, originals: list[Path]) -> list[tuple[Path, Path | None]]:
    by_pixels: dict[str, Path] = {}
    by_name: dict[str, Path] = {}
    for orig in originals:
        by_name.setdefault(orig.name, orig)
    outputs = sorted(p for p in out.rglob("*") if p.is_file() and not p.name.endswith(".json"))
    if not all((CORPUS / p.relative_to(out)).exists() for p in outputs[:50]):
        for orig in originals[: len({o.name for o in originals}) * 2]:
            key = _pixel_key(orig)
            if key:
                by_pixels.setdefault(key, orig)
    pairs: list[tuple[Path, Path | None]] = []
    for path in outputs:
        same = CORPUS / path.relative_to(out)
        if same.exists():
            pairs.append((path, same))
            continue
        if path.name in by_name:
            pairs.append((path, by_name[path.name]))
            continue
        key = _pixel_key(path) if by_pixels else None
        pairs.append((path, by_pixels.get(key or "")))
    return pairs


def _verify_pair(pair: tuple[Path, Path | None]) -> list[tuple[str, str]]:
    from radguard.deid import verify_file

    return [(f.check_id, str(f.evidence.details.get("attribute")))
            for f in verify_file(*pair)]


def verify(out: Path, originals: list[Path]) -> dict[str, object]:
    """RadGuard's verifier on every output (two processes; run after all the timings)."""
    from concurrent.futures import ProcessPoolExecutor

    counts: collections.Counter[str] = collections.Counter()
    attributes: collections.Counter[str] = collections.Counter()
    files_with = unpaired = 0
    pairs = pair_outputs(out, originals)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        found = list(pool.map(_verify_pair, pairs, chunksize=50))
    for (_, orig), findings in zip(pairs, found, strict=True):
        unpaired += orig is None
        files_with += bool(findings)
        counts.update(check for check, _ in findings)
        attributes.update(attr for check, attr in findings
                          if check == "deid.residual-original-value")
    return {"outputs": len(pairs), "unpaired": unpaired, "files_with_findings": files_with,
            "findings": dict(counts), "residual_attributes": dict(attributes.most_common(12))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--target-mb", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="60 files, 10 MB: smoke test")
    parser.add_argument("--tools", default="radguard,dicognito,pydicom-deid,dicom-anonymizer")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time each tool this many times, alternating (the fastest run counts; "
                             "every run is listed)")
    parser.add_argument("--verify", default=None,
                        help="tools whose output the verifier checks (default: every tool timed); "
                             "e.g. --verify radguard keeps a locked run short")
    args = parser.parse_args()
    if args.quick:
        args.files, args.target_mb = 60, 10
    corpus = build(args.files, args.target_mb * 1_000_000)
    size = sum(p.stat().st_size for p in corpus)
    distinct = len({_pixel_key(p) for p in corpus[:400]})
    print(f"corpus: {len(corpus)} files ({distinct}+ distinct sources), {size / 1e6:.1f} MB; "
          f"{os.cpu_count()} cores", flush=True)
    OUTPUTS.mkdir(parents=True, exist_ok=True)
    tools = args.tools.split(",")
    runs: dict[str, list[dict[str, object]]] = {tool: [] for tool in tools}
    for _ in range(max(1, args.repeat)):  # all timings first: the verifier's load is not in them
        for tool in tools:
            load = os.getloadavg()[0]
            seconds, user, system, code, err = run_tool(tool, OUTPUTS / tool)
            produced = sum(1 for p in (OUTPUTS / tool).rglob("*") if p.is_file())
            print(f"{tool}: {seconds:.2f} s (CPU {user:.2f} s user + {system:.2f} s system), exit "
                  f"{code}, {produced} outputs (1-min load average before: {load:.2f})",
                  flush=True)
            runs[tool].append({"seconds": round(seconds, 2), "user": round(user, 2),
                               "system": round(system, 2), "exit": code, "outputs": produced,
                               "load_before": round(load, 2), "stderr_tail": err if code else ""})
    results: dict[str, dict[str, Any]] = {}
    checked = args.verify.split(",") if args.verify is not None else tools
    for tool in tools:
        best = min(runs[tool], key=lambda r: float(str(r["seconds"])))
        seconds = float(str(best["seconds"]))
        check: dict[str, Any] = verify(OUTPUTS / tool, corpus) if tool in checked else {
            "outputs": best["outputs"], "files_with_findings": "not verified", "findings": {}}
        results[tool] = {**best, "cpu_seconds": round(float(str(best["user"])) +
                                                      float(str(best["system"])), 2),
                         "files_per_second": round(len(corpus) / seconds, 1),
                         "runs": runs[tool], **check}
        print(f"  {tool} verifier: {check}", flush=True)
    base = results.get("dicognito", {}).get("files_per_second")
    lines = ["| tool | seconds | CPU s (user + system) | files/s | vs dicognito | load before | "
             "outputs | files with residual identifiers | findings by check |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for tool, r in results.items():
        ratio = f"{r['files_per_second'] / base:.2f}x" if base else "-"
        found = ", ".join(f"{k} {v}" for k, v in sorted(r["findings"].items())) or (
            "none" if tool in checked else "-")
        lines.append(f"| {tool} | {r['seconds']} | {r['cpu_seconds']} ({r['user']} + "
                     f"{r['system']}) | {r['files_per_second']} | {ratio} | {r['load_before']} | "
                     f"{r['outputs']} | {r['files_with_findings']} | {found} |")
    if args.repeat > 1:
        lines += ["", "| run | tool | seconds | user s | system s | load before |",
                  "|---:|---|---:|---:|---:|---:|"]
        lines += [f"| {i} | {tool} | {r['seconds']} | {r['user']} | {r['system']} | "
                  f"{r['load_before']} |" for tool in tools for i, r in enumerate(runs[tool], 1)]
    print("\n".join(lines))
    (OUTPUTS.parent / "deid-results.json").write_text(json.dumps(
        {"corpus_files": len(corpus), "distinct_files": distinct, "corpus_bytes": size,
         "cores": os.cpu_count(), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
