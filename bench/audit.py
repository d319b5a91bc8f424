"""Benchmark of the audit record repository (issue 7).

1. Ingest: `radguard audit serve --tcp` (a real subprocess, detection on, SQLite) receives
   realistic PS3.15 A.5.3 messages over TCP with RFC 6587 octet counting from a paced load
   generator on loopback, at increasing rates (default 5k, 10k, 20k, 30k msg/s, 15 s each = 60 s).
   Printed per rate: messages sent, stored, sustained stored msg/s, p99 ingest latency (send ->
   committed, by polling the store's newest id every 20 ms; one connection keeps order) and lost
   (sent - stored after draining; must be 0).
2. Reference ceiling: the same load into rsyslogd (imtcp -> omfile, its own config/work dir).
3. Search: 2,000,000 records generated straight into SQLite through the repository's writer
   (hash chain and search terms included), then 200 random searches of each kind through
   `radguard.audit.repository.search` (limit 100, decoded views): p50/p95 latency.

    uv run python bench/audit.py                 # full run (~10 min)
    uv run python bench/audit.py --quick         # smoke test (seconds)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "audit"
sys.path.insert(0, str(ROOT / "src"))

from radguard.audit import builders  # noqa: E402
from radguard.audit.repository import RecordWriter, SearchQuery, search  # noqa: E402
from radguard.audit.repository.parse import ParsedMessage, Validity  # noqa: E402
from radguard.audit.syslog import frame, octet_counted  # noqa: E402
from radguard.store import Store  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(port)


def corpus(n: int = 2000, seed: int = 7) -> list[bytes]:
    """Realistic framed messages: a mix of A.5.3 types, 300 users, 20,000 patients."""
    rnd = random.Random(seed)
    out = []
    for _i in range(n):
        user, pid = f"user{rnd.randrange(300)}", f"PID{rnd.randrange(20000):06d}"
        study = f"1.2.826.0.1.3680043.8.498.{rnd.randrange(10**9)}"
        kind = rnd.random()
        if kind < 0.5:
            m = builders.instances_accessed(user=user, station=f"ws{rnd.randrange(40)}",
                                            patient_ids=[pid], study_uids=[study])
        elif kind < 0.75:
            m = builders.instances_transferred(station="PACS1", source="PACS1",
                                               destination=f"WS{rnd.randrange(40)}",
                                               patient_ids=[pid], study_uids=[study], user=user)
        elif kind < 0.9:
            m = builders.query(station="PACS1", source=f"WS{rnd.randrange(40)}",
                               destination="PACS1", sop_class_uid="1.2.840.10008.5.1.4.1.2.2.1",
                               query_bytes=f"PatientID={pid}".encode(), user=user)
        else:
            m = builders.user_authentication("login", user=user, station="ws1",
                                             outcome=rnd.choice([0, 0, 0, 8]))
        out.append(octet_counted(frame(m.to_xml(), hostname="pacs1")))
    return out


def send_paced(port: int, frames: list[bytes], rate: int, seconds: float,
               sent_log: list[tuple[float, int]]) -> int:
    """Send at ``rate`` msg/s for ``seconds`` on one connection; log (time, cumulative sent)."""
    sock = socket.create_connection(("127.0.0.1", port))
    chunk = max(1, rate // 200)  # 5 ms slices
    start = time.monotonic()
    sent, i = 0, 0
    while True:
        now = time.monotonic()
        if now - start >= seconds:
            break
        due = int((now - start) * rate)
        if sent >= due:
            time.sleep(0.002)
            continue
        n = min(chunk, due - sent)
        data = b"".join(frames[(i + k) % len(frames)] for k in range(n))
        i += n
        sock.sendall(data)  # blocks under back-pressure: the achieved rate is what is sent
        sent += n
        sent_log.append((time.time(), sent))
    sock.close()
    return sent


def poll_count(count_fn, stop: threading.Event, log: list[tuple[float, int]]) -> None:
    while not stop.is_set():
        with contextlib.suppress(sqlite3.Error):
            log.append((time.time(), count_fn()))
        time.sleep(0.02)


def latencies(sent_log: list[tuple[float, int]], stored_log: list[tuple[float, int]],
              base: int) -> list[float]:
    """Per send slice: time until the store's count covered it."""
    out, j = [], 0
    stored_log = sorted(stored_log)
    for t_sent, cumulative in sent_log:
        target = base + cumulative
        while j < len(stored_log) and (stored_log[j][1] < target or stored_log[j][0] < t_sent):
            j += 1
        if j >= len(stored_log):
            break
        out.append(stored_log[j][0] - t_sent)
    return out


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 2 else float("nan")


def run_ingest(target: str, rates: list[int], seconds: float, frames: list[bytes],
               count_fn, port: int) -> list[dict[str, object]]:
    rows = []
    for rate in rates:
        base = count_fn()
        sent_log: list[tuple[float, int]] = []
        stored_log: list[tuple[float, int]] = []
        stop = threading.Event()
        poller = threading.Thread(target=poll_count, args=(count_fn, stop, stored_log))
        poller.start()
        t0 = time.time()
        sent = send_paced(port, frames, rate, seconds, sent_log)
        t_sent = time.time() - t0
        deadline = time.time() + 120
        while count_fn() - base < sent and time.time() < deadline:
            time.sleep(0.05)
        t_done = time.time() - t0
        stop.set()
        poller.join()
        stored = count_fn() - base
        lat = latencies(sent_log, stored_log, base)
        row = {"target": target, "rate": rate, "sent": sent, "stored": stored,
               "lost": sent - stored, "send_s": round(t_sent, 2), "drain_s": round(t_done, 2),
               "stored_per_s": round(stored / t_done), "sent_per_s": round(sent / t_sent),
               "p50_ms": round(p(lat, 50) * 1000, 1), "p99_ms": round(p(lat, 99) * 1000, 1),
               "load": os.getloadavg()[0]}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _batch_args(batch: int | None) -> list[str]:
    return [] if batch is None else ["--batch-size", str(batch)]


def bench_radguard(rates: list[int], seconds: float, frames: list[bytes],
                   workers: int = 2, batch: int | None = None) -> list[dict]:
    home = Path(tempfile.mkdtemp(prefix="rg-audit-bench-", dir=OUT))
    port = free_port()
    env = {**os.environ, "RADGUARD_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-c", "from radguard.cli import main; main()",
                             "audit", "serve", "--tcp",
                             f"127.0.0.1:{port}", *_batch_args(batch),
                             "--parse-workers", str(workers)], env=env,
                            stderr=(home / "serve.err").open("wb"), cwd=ROOT)
    try:
        wait_port(port)
        db = sqlite3.connect(f"file:{home / 'radguard.db'}?mode=ro", uri=True,
                             check_same_thread=False)
        count = lambda: db.execute("SELECT coalesce(max(id), 0) FROM audit_records").fetchone()[0]  # noqa: E731
        return run_ingest("radguard", rates, seconds, frames, count, port)
    finally:
        proc.terminate()
        proc.wait(120)


def _cpu_split(pid: int) -> tuple[float, float]:
    """User + system CPU of ``pid`` and of its children alive now (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: list[int] = []
    with contextlib.suppress(OSError):
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    out = [0.0, 0.0]
    for i, p_ in [(0, pid)] + [(1, c) for c in children]:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p_}/stat").read_text().rsplit(")", 1)[1].split()
            out[i] += (int(fields[11]) + int(fields[12])) / tick
    return out[0], out[1]


def bench_burst(n: int, frames: list[bytes], workers: int = 2,
                batch: int | None = None) -> dict[str, object]:
    """``n`` messages sent at once on one connection (as fast as back-pressure lets them in):
    wall time until all are stored, and CPU per message of the serve process + its workers."""
    home = Path(tempfile.mkdtemp(prefix="rg-audit-burst-", dir=OUT))
    port = free_port()
    env = {**os.environ, "RADGUARD_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-c", "from radguard.cli import main; main()",
                             "audit", "serve", "--tcp", f"127.0.0.1:{port}", *_batch_args(batch),
                             "--parse-workers", str(workers)], env=env,
                            stderr=(home / "serve.err").open("wb"), cwd=ROOT)
    try:
        wait_port(port)
        db = sqlite3.connect(f"file:{home / 'radguard.db'}?mode=ro", uri=True)
        count = lambda: db.execute("SELECT coalesce(max(id), 0) FROM audit_records").fetchone()[0]  # noqa: E731
        # warm-up: the parse workers are spawned by the first chunk; their start-up (imports,
        # schema compilation) is not per-message work, so it is kept out of the figures
        warm = len(frames)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"".join(frames))
        while count() < warm:
            time.sleep(0.02)
        time.sleep(1.0)
        base = count()
        data = b"".join(frames[i % len(frames)] for i in range(n))
        split0, t0 = _cpu_split(proc.pid), time.time()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(data)
        deadline = t0 + 600
        while count() - base < n and time.time() < deadline:
            time.sleep(0.02)
        wall = time.time() - t0
        split = [a - b for a, b in zip(_cpu_split(proc.pid), split0, strict=True)]
        cpu = sum(split)
        stored = count() - base
        row = {"target": "burst", "sent": n, "stored": stored, "lost": n - stored,
               "wall_s": round(wall, 2), "stored_per_s": round(stored / wall),
               "cpu_us_per_msg": round(cpu / max(1, stored) * 1e6, 1),
               "main_us_per_msg": round(split[0] / max(1, stored) * 1e6, 1),
               "workers_us_per_msg": round(split[1] / max(1, stored) * 1e6, 1),
               "load": os.getloadavg()[0]}
        print(json.dumps(row), flush=True)
        return row
    finally:
        proc.terminate()
        proc.wait(120)


def bench_rsyslog(rates: list[int], seconds: float, frames: list[bytes]) -> list[dict]:
    binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    if not os.path.exists(binary):
        return [{"target": "rsyslog", "error": "rsyslogd not installed"}]
    folder = Path(tempfile.mkdtemp(prefix="rsyslog-bench-", dir=OUT))
    port, out = free_port(), folder / "audit.log"
    (folder / "work").mkdir()
    (folder / "rsyslog.conf").write_text(
        f'global(workDirectory="{folder / "work"}" maxMessageSize="256k")\n'
        f'module(load="imtcp")\ninput(type="imtcp" port="{port}" address="127.0.0.1")\n'
        f'action(type="omfile" file="{out}" asyncWriting="on" ioBufferSize="256k" '
        'flushOnTXEnd="off")\n')
    proc = subprocess.Popen([binary, "-n", "-f", str(folder / "rsyslog.conf"), "-i",
                             str(folder / "pid")], stderr=subprocess.DEVNULL)
    lines = [0, 0]  # bytes scanned, lines

    def count() -> int:
        if not out.exists():
            return 0
        with out.open("rb") as fh:
            fh.seek(lines[0])
            data = fh.read()
        cut = data.rfind(b"\n") + 1
        lines[0] += cut
        lines[1] += data.count(b"\n", 0, cut)
        return lines[1]

    try:
        wait_port(port)
        return run_ingest("rsyslog", rates, seconds, frames, count, port)
    finally:
        proc.terminate()
        proc.wait(30)


def bench_search(n: int, queries: int) -> dict[str, object]:
    path = OUT / f"search-{n}.db"
    url = f"sqlite:///{path}"
    rnd = random.Random(11)
    users = [f"user{i}" for i in range(300)]
    nodes = [f"ws{i}" for i in range(40)] + ["PACS1"]
    template = corpus(50)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        with Store.open(f"sqlite:///{tmp}") as store:
            writer = RecordWriter(store)
            start = time.time()
            for base in range(0, n, 10_000):
                batch = []
                for i in range(base, min(n, base + 10_000)):
                    when = t0 + timedelta(seconds=i * 15)  # ~1 year of traffic
                    pid = f"PID{rnd.randrange(200_000):06d}"
                    user, node = rnd.choice(users), rnd.choice(nodes)
                    eid = rnd.choice(["110103", "110103", "110104", "110112", "110114"])
                    batch.append(ParsedMessage(
                        raw=template[i % len(template)], received_at=when, transport="tcp",
                        peer="10.0.0.5", validity=Validity.VALID, reason=None,
                        hostname="pacs1", app_name="radguard", msgid="DICOM+RFC3881",
                        event_time=when, source_id="PACS1", event_id=eid, action="R",
                        outcome=rnd.choice([0] * 9 + [8]), users=(user, "radguard"),
                        requestors=(user,), nodes=(node, "PACS1"), patients=(pid,),
                        studies=(f"1.2.826.0.1.3680043.8.498.{i}",),
                        type_codes=("110122",) if eid == "110114" else ()))
                writer.append(batch)
                if base % 200_000 == 0:
                    print(f"  generated {base + len(batch)} records "
                          f"({time.time() - start:.0f} s)", flush=True)
        tmp.rename(path)
    kinds = {
        "user": lambda: SearchQuery(users=(rnd.choice(users),)),
        "patient": lambda: SearchQuery(patients=(f"PID{rnd.randrange(200_000):06d}",)),
        "study": lambda: SearchQuery(studies=(f"1.2.826.0.1.3680043.8.498.{rnd.randrange(n)}",)),
        "event+day": lambda: _day(SearchQuery(event_ids=("110114",)), t0, rnd, n),
        "user+day": lambda: _day(SearchQuery(users=(rnd.choice(users),)), t0, rnd, n),
        "node+failure": lambda: SearchQuery(nodes=(rnd.choice(nodes),), outcomes=(4, 8, 12)),
    }
    results: dict[str, object] = {"records": n}
    all_times: list[float] = []
    with Store.open(url) as store:
        for name, make in kinds.items():
            times = []
            for _ in range(queries):
                q = make()
                start = time.perf_counter()
                search(store, q)
                times.append(time.perf_counter() - start)
            all_times += times
            results[name] = {"p50_ms": round(p(times, 50) * 1000, 1),
                             "p95_ms": round(p(times, 95) * 1000, 1)}
            print(f"  search {name}: {results[name]}", flush=True)
    results["all_p95_ms"] = round(p(all_times, 95) * 1000, 1)
    return results


def _day(q: SearchQuery, t0: datetime, rnd: random.Random, n: int) -> SearchQuery:
    day = t0 + timedelta(seconds=rnd.randrange(n * 15 - 86400))
    return SearchQuery(**{**{f: getattr(q, f) for f in q.__dataclass_fields__},
                          "since": day, "until": day + timedelta(days=1)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rates", default="5000,10000,20000,30000")
    ap.add_argument("--seconds", type=float, default=15.0, help="per rate")
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--parse-workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=None,
                    help="passed to audit serve (default: its own default)")
    ap.add_argument("--skip", default="", help="comma list of ingest,rsyslog,search")
    ap.add_argument("--burst", type=int, default=0,
                    help="only send this many messages at once and report CPU per message")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rates = [int(r) for r in args.rates.split(",")]
    if args.quick:
        rates, args.seconds, args.records, args.queries = [2000], 3.0, 20_000, 20
    skip = set(args.skip.split(","))
    frames = corpus()
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()}; message size "
          f"{statistics.mean(map(len, frames)):.0f} octets", flush=True)
    result: dict[str, object] = {"when": datetime.now(UTC).isoformat()}
    if args.burst:
        result["burst"] = bench_burst(args.burst, frames, args.parse_workers, args.batch_size)
        return
    if "ingest" not in skip:
        result["radguard"] = bench_radguard(rates, args.seconds, frames, args.parse_workers,
                                            args.batch_size)
    if "rsyslog" not in skip:
        result["rsyslog"] = bench_rsyslog(rates, args.seconds, frames)
    if "search" not in skip:
        result["search"] = bench_search(args.records, args.queries)
    (OUT / "results.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
