"""Run an assessment: group targets into devices, probe each once, run the checks, build the report.

Devices are worked on in parallel (``workers`` threads); inside a device everything is sequential,
so a device never sees two connections at once (:mod:`radguard.assess.politeness`). Node checks run
in the device's thread; site checks (``target = "site"``) run afterwards over the DIMSE endpoints of
each host. Nothing here prints; progress goes to the ``progress`` callback.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from radguard.assess.checks import Check, NotRun
from radguard.assess.fingerprint import fingerprint
from radguard.assess.politeness import Device, Politeness
from radguard.assess.probe import NodeProbe, ProbeOptions, WebProbe
from radguard.assess.report import AssessReport, NodeResult
from radguard.assess.tables import versions
from radguard.assess.targets import Target
from radguard.findings import Finding

__all__ = ["DEFAULT_WORKERS", "ProgressFn", "dry_run", "quiet_logger", "run_assessment"]

ProgressFn = Callable[[int, int, str], None]

DEFAULT_WORKERS = 256
"""Devices worked on at once. The work is waiting on the network, not CPU, and each device still
gets one connection at a time (:mod:`~radguard.assess.politeness`), so this bounds only
RadGuard's own threads and sockets: at most two sockets per device (an association and, for
C-MOVE, RadGuard's own listener), so 256 devices stay within half of the usual soft limit of 1024
open files. With fewer workers than devices, a silent device starts only when a worker frees up,
and its wait adds to the run (measured: 200 endpoints with 128 workers and the silent ones last
in the list, 7.5-9.5 s at --timeout 5 where the wait itself is 5 s)."""
Probe = NodeProbe | WebProbe


@dataclass
class _Work:
    probe: Probe
    findings: list[Finding]
    checks: dict[str, str]


@contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """Silence logger ``name`` for the block (pynetdicom logs every refused association as an
    ERROR line) without importing the library that owns it."""
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(old)


def _device_key(t: Target, policy: Politeness) -> str:
    return t.host if policy.per_host else f"{t.host}:{t.port}"


def _applies(check: type[Check], probe: Probe) -> bool:
    if isinstance(probe, NodeProbe):
        return check.target == "dicom"
    return check.target == "http"


def _run_node(work: _Work, checks: Sequence[type[Check]]) -> None:
    probe = work.probe
    for cls in checks:
        if not _applies(cls, probe):
            continue
        if not probe.reachable:
            work.checks[cls.id] = "not run: unreachable"
            continue
        try:
            work.findings.extend(cls().run(probe))
            work.checks[cls.id] = "ran"
        except NotRun as exc:
            work.checks[cls.id] = f"not run: {exc}"


def _node_fingerprint(probe: Probe, full: bool) -> dict[str, Any]:
    if isinstance(probe, WebProbe):
        fp: dict[str, Any] = {"http_status": probe.first.status,
                              "server": probe.first.headers.get("server")}
        if "is_orthanc" in probe.__dict__ or "system" in probe.__dict__:
            fp["orthanc"] = probe.is_orthanc
            data = probe.__dict__.get("system_authenticated", probe.system).json
            if isinstance(data, dict):
                fp["orthanc_version"] = data.get("Version")
                fp["dicom_aet"] = data.get("DicomAet")
        return fp
    if not probe.reachable or "base" not in probe.__dict__:
        return {}
    if full or "tiers" in probe.__dict__ or probe.options.fingerprint_depth != "full":
        return fingerprint(probe)  # minimal/compact: read from the base association, nothing sent
    answer = probe.base.answer
    return {"association": answer.kind, "reason": answer.reason,
            "transport": probe.transport or "unknown",
            "implementation_class_uid": answer.implementation_class_uid,
            "implementation_version": answer.implementation_version}


def _result(work: _Work, full_fp: bool) -> NodeResult:
    probe = work.probe
    t = probe.target
    if isinstance(probe, NodeProbe):
        answer = probe.base.answer
        reason = "" if answer.kind == "accept" else f"{answer.kind}: {answer.reason}".rstrip(": ")
        transport = probe.transport
        connections = probe.device.connections
    else:
        first = probe.first
        reason = "" if first.status is not None else first.error
        transport = "https" if (t.url or "").startswith("https") else "http"
        connections = 0
    return NodeResult(
        target=t.name, kind=t.kind, host=t.host, port=t.port, aet=t.aet,
        reachable=probe.reachable, reason=reason, transport=transport,
        fingerprint=_node_fingerprint(probe, full_fp), findings=tuple(work.findings),
        checks=dict(work.checks), connections=connections)


def run_assessment(targets: Sequence[Target], checks: Sequence[type[Check]],
                   options: ProbeOptions, policy: Politeness, *,
                   workers: int = DEFAULT_WORKERS,
                   progress: ProgressFn | None = None) -> AssessReport:
    """Assess ``targets`` with ``checks``; never raises for a node's behaviour.

    The fingerprint depth is the user's (``options.fingerprint_depth``) or ``full`` when a
    selected check declares that it needs the full inventory.
    """
    started = dt.datetime.now(dt.UTC)
    if any(c.fingerprint_depth == "full" for c in checks):
        options = replace(options, fingerprint_depth="full")
    devices: dict[str, Device] = {}
    works: list[_Work] = []
    for t in targets:
        key = _device_key(t, policy)
        device = devices.setdefault(key, Device(key, policy))
        probe: Probe = (
            NodeProbe(t, device, options, policy.timeout, policy.connect_timeout)
            if t.kind == "dicom" else
            WebProbe(t, device, options, policy.timeout, policy.connect_timeout))
        works.append(_Work(probe, [], {}))
    webs_by_host: dict[str, list[WebProbe]] = defaultdict(list)
    for w in works:
        if isinstance(w.probe, WebProbe):
            webs_by_host[w.probe.target.host].append(w.probe)
    for w in works:
        if isinstance(w.probe, NodeProbe):
            w.probe.rest = webs_by_host.get(w.probe.target.host, [])
    by_device: dict[str, list[_Work]] = defaultdict(list)
    for w in works:
        by_device[_device_key(w.probe.target, policy)].append(w)

    def run_device(items: list[_Work]) -> str:
        for item in items:
            _run_node(item, checks)
        return items[0].probe.target.name

    done = 0
    with quiet_logger("pynetdicom"):
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(by_device)))) as pool:
            futures = [pool.submit(run_device, items) for items in by_device.values()]
            for fut in as_completed(futures):
                name = fut.result()
                done += 1
                if progress:
                    progress(done, len(futures), name)
        site_checks = [c for c in checks if c.target == "site"]
        nodes_by_host: dict[str, list[_Work]] = defaultdict(list)
        for w in works:
            if isinstance(w.probe, NodeProbe):
                nodes_by_host[w.probe.target.host].append(w)
        for group in nodes_by_host.values():
            probes = [w.probe for w in group if isinstance(w.probe, NodeProbe)]
            for cls in site_checks:
                found = cls().run_site(probes)  # type: ignore[attr-defined]
                for w in group:
                    w.findings.extend(f for f in found if f.asset == w.probe.target.name)
                    w.checks[cls.id] = "ran" if w.probe.reachable else "not run: unreachable"
    for w in works:
        if isinstance(w.probe, WebProbe):
            w.probe.close()
    full = any(c.id == "dicom.fingerprint" for c in checks)
    nodes = tuple(_result(w, full) for w in works)
    finished = dt.datetime.now(dt.UTC)
    return AssessReport(
        started=started.isoformat(timespec="seconds"),
        finished=finished.isoformat(timespec="seconds"), nodes=nodes,
        options={"intrusive": options.intrusive, "checks": [c.id for c in checks],
                 "fingerprint_depth": options.fingerprint_depth,
                 "rate": policy.rate, "timeout": policy.timeout,
                 "connect_timeout": policy.connect_timeout, "budget": policy.budget,
                 "per_host": policy.per_host,
                 "known_peers": [f"{p.aet}@{p.host}" for p in options.known_peers]},
        tables=versions(), checks=tuple(c.describe() for c in checks))


def dry_run(targets: Sequence[Target], checks: Sequence[type[Check]], *,
            fingerprint_depth: str = "compact") -> list[dict[str, Any]]:
    """What would be sent to each target (nothing is contacted)."""
    if any(c.fingerprint_depth == "full" for c in checks):
        fingerprint_depth = "full"
    plan = []
    for t in targets:
        kinds = ("dicom", "site") if t.kind == "dicom" else ("http",)
        steps: list[str] = []
        for cls in checks:
            if cls.target in kinds:
                steps.extend(f"[{cls.id}] {s}" for s in cls.plan(fingerprint_depth))
        plan.append({"target": t.name, "kind": t.kind, "sends": steps})
    return plan
