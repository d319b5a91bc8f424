"""Benchmark of ``radguard assess`` (issue 6): 200 DICOM endpoints on loopback.

Mix: pynetdicom SCPs in 4 processes (160), DCMTK storescp (10), silent sockets (15) and refusing
ports (15). Both tools run back to back in the same process, alternating, ``--repeat`` times.

Politeness is per-device load: one connection at a time per endpoint (both tools), the probes sent
per endpoint (nmap ``dicom-ping``: one A-ASSOCIATE-RQ with 1 presentation context, no release;
RadGuard: one A-ASSOCIATE-RQ, contexts by ``--fingerprint-depth``, then A-RELEASE) and the work
they cost the device, which the bench measures: the CPU time the peer processes spent during each
run ("peer CPU"). It does not require the same timeout, so two comparisons are printed:

1. primary: each tool at its documented defaults. nmap ``-Pn -n -sT -p PORTS --script
   +dicom-ping`` (``+`` forces the script on ports nmap does not know as DICOM; NSE sockets wait
   30 s); ``radguard assess @targets --only dicom.fingerprint`` (answer timeout 30 s, connect 5 s,
   256 devices at a time, ``compact`` fingerprint);
2. secondary: the same with an equal explicit wait of ``--timeout`` seconds: nmap
   ``--script-timeout T`` (the whole script), RadGuard ``--timeout T``;
3. equal probe load: nmap at its defaults against RadGuard at ``--fingerprint-depth minimal``
   (one association proposing Verification only, like ``dicom-ping``; RadGuard still releases it
   and does no port scan first).

After every run the bench waits until the peers hold no association any more (see
:func:`settle`: nmap's connect scan leaves each pynetdicom acceptor waiting about 30 s for an
association request), so that no run pays for the previous one. Then, for reference: RadGuard
``--fingerprint-depth full`` (up to 3 associations), and the full non-intrusive assessment of
all 200 (recorded in the store, audited). It also prints the fixed cost of one RadGuard CLI run
(one refused port), each run's CPU and the load average (the machine is shared).

Run: ``flock /tmp/bench.lock uv run python bench/assess.py [--timeout 5] [--repeat 2]
[--no-silent] [--skip-full]`` (needs nmap: apt-get install nmap). ``--no-silent`` leaves the 15
silent sockets out (185 endpoints), to see the tools' speed where no wait bounds the run.
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


PEER_PIDS: list[int] = []


def peer_cpu() -> float:
    """CPU seconds spent so far by the peer processes (the devices' work)."""
    total = 0
    for pid in PEER_PIDS:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def peer_threads() -> int:
    """Threads of the peer processes (a pynetdicom acceptor runs one per open association)."""
    total = 0
    for pid in PEER_PIDS:
        try:
            total += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
    return total


def settle(baseline: int, limit: float = 45.0) -> float:
    """Wait until the peers hold no association any more (thread count back to ``baseline``).

    nmap's connect scan (-sT) opens and closes every port before its scripts run; each
    pynetdicom acceptor then waits for an A-ASSOCIATE-RQ until its ARTIM timer expires (about
    30 s) and tears down with a burst of CPU. Without this wait, that burst lands in whichever run
    comes next. Returns the seconds waited."""
    t0 = time.monotonic()
    while peer_threads() > baseline and time.monotonic() - t0 < limit:
        time.sleep(0.5)
    return time.monotonic() - t0


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds of the child, CPU seconds of the peers, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    peers = peer_cpu()
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, peer_cpu() - peers, out.stdout


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


Row = tuple[str, float, float, float, str, str]
"""(label, wall s, CPU s, peer CPU s, result, load average before)."""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=5.0, help="the equal wait of comparison 2")
    ap.add_argument("--repeat", type=int, default=2)
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
    rows: list[Row] = []
    pairs: dict[str, list[tuple[float, float]]] = {"defaults": [], "equal wait": [],
                                                   "equal probe load": []}
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
        PEER_PIDS.extend(p.pid for p in procs)
        for p in pyn + scp + silent:
            wait(p)
        time.sleep(1.0)
        baseline = peer_threads()
        idle0 = peer_cpu()
        time.sleep(3.0)
        idle_rate = (peer_cpu() - idle0) / 3.0
        targets = work / "targets.txt"
        targets.write_text("".join(f"127.0.0.1:{p}\n" for p in ports))
        home = work / "home"
        radguard = str(Path(sys.executable).parent / "radguard")
        renv = dict(os.environ, RADGUARD_HOME=str(home))
        rg_base = [radguard, "assess", f"@{targets}", "--format", "json"]
        discovery = ["--only", "dicom.fingerprint", "--no-record"]

        def run_rg(label: str, *extra: str) -> tuple[float, dict[str, Any]]:
            la = load()
            wall, cpu, pcpu, out = timed([*rg_base, *extra], renv)
            doc: dict[str, Any] = json.loads(out)
            found = sum(1 for n in doc["nodes"]
                        if n["fingerprint"].get("association") in ("accept", "reject"))
            conns = [n["connections"] for n in doc["nodes"]]
            quiet = sum(1 for n in doc["nodes"] if n["reason"].startswith("silent"))
            waited = settle(baseline)
            rows.append((label, wall, cpu, pcpu,
                         f"{found} DICOM services identified, {quiet} silent; {sum(conns)} "
                         f"connections, at most {max(conns)} per endpoint; peers settled in "
                         f"{waited:.0f} s", la))
            return wall, doc

        def run_nmap(label: str, *extra: str) -> float:
            la = load()
            wall, cpu, pcpu, out = timed(["nmap", "-Pn", "-n", "-sT", "-p",
                                          ",".join(map(str, ports)), "--script", "+dicom-ping",
                                          *extra, "-oX", "-", "127.0.0.1"])
            found = len(re.findall(r'<elem key="dicom">DICOM Service Provider discovered', out))
            waited = settle(baseline)
            rows.append((label, wall, cpu, pcpu, f"{found} DICOM services identified; peers "
                         f"settled in {waited:.0f} s", la))
            return wall

        # fixed cost of one CLI run (nothing to wait for: a refused port)
        refused = free_ports(1)[0]
        la = load()
        wall, cpu, pcpu, _ = timed([radguard, "assess", f"127.0.0.1:{refused}", *discovery,
                                    "--format", "json"], renv)
        rows.append(("radguard start-up (one refused port)", wall, cpu, pcpu, "", la))
        for _ in range(args.repeat):
            nm = run_nmap("1 defaults: nmap dicom-ping (NSE socket wait 30 s)")
            rg, _doc = run_rg("1 defaults: radguard --only dicom.fingerprint (compact)",
                              *discovery)
            pairs["defaults"].append((nm, rg))
            rg, _doc = run_rg("3 equal load: radguard --fingerprint-depth minimal", *discovery,
                              "--fingerprint-depth", "minimal")
            pairs["equal probe load"].append((nm, rg))
            nm = run_nmap(f"2 equal wait: nmap --script-timeout {timeout}s",
                          "--script-timeout", f"{timeout}s")
            rg, _doc = run_rg(f"2 equal wait: radguard --timeout {timeout} (compact)",
                              *discovery, "--timeout", timeout)
            pairs["equal wait"].append((nm, rg))
        run_rg("reference: radguard --fingerprint-depth full", *discovery,
               "--fingerprint-depth", "full")
        if not args.skip_full:
            wall, doc = run_rg("full non-intrusive assessment (recorded, audited)")
            findings = sum(len(n["findings"]) for n in doc["nodes"])
            reachable = sum(n["reachable"] for n in doc["nodes"])
            label, wall, cpu, pcpu, _, la = rows[-1]
            rows[-1] = (label, wall, cpu, pcpu, f"{reachable} reachable, {findings} findings", la)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"endpoints: {len(ports)} ({N_PYNETDICOM} pynetdicom in {N_PROCS} processes, "
          f"{N_STORESCP} storescp, {n_silent} silent, {N_REFUSING} refusing); "
          f"{os.cpu_count()} CPUs; peer CPU = CPU time of the peer processes during the run "
          f"(idle, they spend {idle_rate:.3f} CPU s per s)")
    print(f"{'run':62} {'wall s':>7} {'cpu s':>6} {'peer s':>6}  result  [load avg 1/5/15]")
    for label, wall, cpu, pcpu, result, la in rows:
        print(f"{label:62} {wall:7.2f} {cpu:6.2f} {pcpu:6.2f}  {result}  [{la}]")
    for name, got in pairs.items():
        ratios = ", ".join(f"{a / b:.2f}x" for a, b in got)
        print(f"ratio nmap/radguard, {name}: {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
