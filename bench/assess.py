"""Benchmark of ``radguard assess`` (issue 6): 200 DICOM endpoints on loopback.

Mix: pynetdicom SCPs in 4 processes (160), DCMTK storescp (10), silent sockets (15) and refusing
ports (15). Measures, with both tools run back to back in the same process, ``--repeat`` times:

1. discovery: ``radguard assess --only dicom.fingerprint`` (default depth ``compact``: ONE
   association per node) against nmap ``--script +dicom-ping`` (``+`` forces the script on ports
   nmap does not know as DICOM; ``-sV`` off, ``-p`` lists the ports; peers-measured.md), same
   per-endpoint politeness (one connection at a time per endpoint) and the SAME timeout for both:
   ``--timeout T`` for RadGuard (per operation: TCP connect, then the association answer) and
   ``--script-timeout T`` for nmap (the whole script; NSE sockets wait 30 s by default, longer
   than RadGuard's 5 s, so nmap is given RadGuard's default rather than its own);
2. discovery at ``--fingerprint-depth full`` (up to 3 associations per node), for reference;
3. the full (non-intrusive) assessment of all 200 (recorded in the store, audited).

It also prints the fixed cost of a RadGuard run (the CLI against one refused port: interpreter,
imports, settings, audit journal), the CPU time RadGuard's process used, and the load average
(the machine is shared).

Run: ``uv run python bench/assess.py [--timeout 5] [--repeat 2] [--workers 200] [--no-silent]``
(needs nmap: apt-get install nmap). ``--no-silent`` leaves the 15 silent sockets out (185
endpoints), to see the tools' speed where no timeout bounds the run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
N_PYNETDICOM, N_PROCS, N_STORESCP, N_SILENT, N_REFUSING = 160, 4, 10, 15, 15


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def wait(port: int, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(port)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stdout


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workers", type=int, default=200)
    ap.add_argument("--no-silent", action="store_true")
    ap.add_argument("--skip-full", action="store_true", help="skip the full assessment")
    args = ap.parse_args()
    if not shutil.which("nmap"):
        print("nmap missing: apt-get install -y nmap", file=sys.stderr)
        return 2
    n_silent = 0 if args.no_silent else N_SILENT
    ports = free_ports(N_PYNETDICOM + N_STORESCP + n_silent + N_REFUSING)
    pyn = ports[:N_PYNETDICOM]
    scp = ports[N_PYNETDICOM:N_PYNETDICOM + N_STORESCP]
    silent = ports[N_PYNETDICOM + N_STORESCP:N_PYNETDICOM + N_STORESCP + n_silent]
    procs: list[subprocess.Popen[bytes]] = []
    env = dict(os.environ, TCP_NODELAY="1")
    work = Path(tempfile.mkdtemp(prefix="rg-bench-assess-"))
    timeout = f"{args.timeout:g}"
    rows: list[tuple[str, float, float, str, str]] = []
    try:
        chunk = N_PYNETDICOM // N_PROCS
        for i in range(N_PROCS):
            procs.append(subprocess.Popen(
                [sys.executable, str(HERE / "assess_peers.py"), "pynetdicom",
                 *map(str, pyn[i * chunk:(i + 1) * chunk])], stdout=subprocess.DEVNULL, env=env))
        if silent:
            procs.append(subprocess.Popen([sys.executable, str(HERE / "assess_peers.py"),
                                           "silent", *map(str, silent)],
                                          stdout=subprocess.DEVNULL))
        for p in scp:
            (work / str(p)).mkdir()
            procs.append(subprocess.Popen(["/usr/bin/storescp", "--promiscuous", "-od",
                                           str(work / str(p)), str(p)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          env=env))
        for p in pyn + scp + silent:
            wait(p)
        targets = work / "targets.txt"
        targets.write_text("".join(f"127.0.0.1:{p}\n" for p in ports))
        home = work / "home"
        radguard = str(Path(sys.executable).parent / "radguard")
        renv = dict(os.environ, RADGUARD_HOME=str(home))
        rg_base = [radguard, "assess", f"@{targets}", "--format", "json", "--timeout", timeout,
                   "--workers", str(args.workers)]

        def run_rg(label: str, *extra: str) -> dict[str, Any]:
            la = load()
            wall, cpu, out = timed([*rg_base, *extra], renv)
            doc: dict[str, Any] = json.loads(out)
            found = sum(1 for n in doc["nodes"]
                        if n["fingerprint"].get("association") in ("accept", "reject"))
            conns = [n["connections"] for n in doc["nodes"]]
            rows.append((label, wall, cpu, f"{found} DICOM services identified; "
                         f"{sum(conns)} connections, at most {max(conns)} per endpoint", la))
            return doc

        def run_nmap() -> None:
            la = load()
            wall, cpu, out = timed(["nmap", "-Pn", "-n", "-sT", "-p", ",".join(map(str, ports)),
                                    "--script", "+dicom-ping", "--script-timeout",
                                    f"{timeout}s", "-oX", "-", "127.0.0.1"])
            found = len(re.findall(r'<elem key="dicom">DICOM Service Provider discovered', out))
            rows.append(("discovery: nmap --script +dicom-ping", wall, cpu,
                         f"{found} DICOM services identified", la))

        # fixed cost of one CLI run (nothing to wait for: a refused port)
        refused = free_ports(1)[0]
        la = load()
        wall, cpu, _ = timed([radguard, "assess", f"127.0.0.1:{refused}", "--only",
                              "dicom.fingerprint", "--no-record", "--format", "json"], renv)
        rows.append(("radguard start-up (one refused port)", wall, cpu, "", la))
        for _ in range(args.repeat):
            run_nmap()
            run_rg("discovery: radguard --only dicom.fingerprint (compact)",
                   "--only", "dicom.fingerprint", "--no-record")
        run_rg("discovery: radguard --only dicom.fingerprint --fingerprint-depth full",
               "--only", "dicom.fingerprint", "--no-record", "--fingerprint-depth", "full")
        if not args.skip_full:
            doc = run_rg("full non-intrusive assessment (recorded, audited)")
            findings = sum(len(n["findings"]) for n in doc["nodes"])
            reachable = sum(n["reachable"] for n in doc["nodes"])
            label, wall, cpu, _, la = rows[-1]
            rows[-1] = (label, wall, cpu, f"{reachable} reachable, {findings} findings", la)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"endpoints: {len(ports)} ({N_PYNETDICOM} pynetdicom in {N_PROCS} processes, "
          f"{N_STORESCP} storescp, {n_silent} silent, {N_REFUSING} refusing); timeout {timeout} s "
          f"for both tools; radguard --workers {args.workers}; {os.cpu_count()} CPUs")
    print(f"{'run':72} {'wall s':>7} {'cpu s':>6}  result  [load avg 1/5/15 before]")
    for label, wall, cpu, result, la in rows:
        print(f"{label:72} {wall:7.2f} {cpu:6.2f}  {result}  [{la}]")
    nm = [w for lab, w, *_ in rows if lab.startswith("discovery: nmap")]
    rg = [w for lab, w, *_ in rows if lab.endswith("(compact)")]
    for i, (a, b) in enumerate(zip(nm, rg, strict=True)):
        print(f"ratio nmap/radguard, discovery, pair {i + 1}: {a / b:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
