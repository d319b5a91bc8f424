"""Benchmark of ``radguard assess`` (issue 6): 200 DICOM endpoints on loopback.

Mix: pynetdicom SCPs in 4 processes (160), DCMTK storescp (10), silent sockets (15) and refusing
ports (15). Measures

1. discovery: ``radguard assess --only dicom.fingerprint`` against nmap ``--script +dicom-ping``
   (``+`` forces the script on ports nmap does not know as DICOM; ``-sV`` off, ``-p`` lists the
   ports; peers-measured.md), same per-endpoint politeness (one connection at a time per endpoint)
   and the same 5 s per-operation timeout (``--script-timeout 5s`` for nmap);
2. the full (non-intrusive) assessment of all 200.

Prints both, and the ratio. Run: ``uv run python bench/assess.py`` (needs nmap: apt-get install nmap).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIMEOUT = 5
WORKERS = 64
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


def main() -> int:
    if not shutil.which("nmap"):
        print("nmap missing: apt-get install -y nmap", file=sys.stderr)
        return 2
    ports = free_ports(200)
    pyn = ports[:N_PYNETDICOM]
    scp = ports[N_PYNETDICOM:N_PYNETDICOM + N_STORESCP]
    silent = ports[N_PYNETDICOM + N_STORESCP:N_PYNETDICOM + N_STORESCP + N_SILENT]
    procs: list[subprocess.Popen[bytes]] = []
    env = dict(os.environ, TCP_NODELAY="1")
    work = Path(tempfile.mkdtemp(prefix="rg-bench-assess-"))
    try:
        chunk = N_PYNETDICOM // N_PROCS
        for i in range(N_PROCS):
            procs.append(subprocess.Popen(
                [sys.executable, str(HERE / "assess_peers.py"), "pynetdicom",
                 *map(str, pyn[i * chunk:(i + 1) * chunk])], stdout=subprocess.DEVNULL, env=env))
        procs.append(subprocess.Popen([sys.executable, str(HERE / "assess_peers.py"), "silent",
                                       *map(str, silent)], stdout=subprocess.DEVNULL))
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

        def run_rg(*extra: str) -> tuple[float, dict]:
            t0 = time.monotonic()
            out = subprocess.run([radguard, "assess", f"@{targets}", "--format", "json",
                                  "--timeout", str(TIMEOUT), "--workers", str(WORKERS), *extra],
                                 capture_output=True, text=True, env=renv, check=False)
            dt = time.monotonic() - t0
            return dt, json.loads(out.stdout)

        rg_disc_t, disc = run_rg("--only", "dicom.fingerprint", "--no-record")
        rg_found = sum(1 for n in disc["nodes"]
                       if n["fingerprint"].get("association") in ("accept", "reject"))

        t0 = time.monotonic()
        nmap = subprocess.run(
            ["nmap", "-Pn", "-n", "-sT", "-p", ",".join(map(str, ports)), "--script",
             "+dicom-ping", "--script-timeout", f"{TIMEOUT}s", "-oX", "-", "127.0.0.1"],
            capture_output=True, text=True, check=False)
        nmap_t = time.monotonic() - t0
        nmap_found = len(re.findall(r'<elem key="dicom">DICOM Service Provider discovered', nmap.stdout))

        full_t, full = run_rg()
        findings = sum(len(n["findings"]) for n in full["nodes"])
        reachable = sum(n["reachable"] for n in full["nodes"])
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"endpoints: 200 ({N_PYNETDICOM} pynetdicom in {N_PROCS} processes, {N_STORESCP} "
          f"storescp, {N_SILENT} silent, {N_REFUSING} refusing); timeout {TIMEOUT} s, "
          f"radguard --workers {WORKERS}")
    print(f"discovery  radguard --only dicom.fingerprint: {rg_disc_t:6.2f} s, "
          f"{rg_found} DICOM services identified")
    print(f"discovery  nmap --script +dicom-ping:          {nmap_t:6.2f} s, "
          f"{nmap_found} DICOM services identified")
    print(f"ratio nmap/radguard (discovery): {nmap_t / rg_disc_t:.2f}x")
    print(f"full assessment (non-intrusive, recorded, audited): {full_t:6.2f} s, "
          f"{reachable} reachable, {findings} findings")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
