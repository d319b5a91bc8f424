"""The detection engine: rules evaluated as records arrive, with windowed counts per subject.

Each rule kind is one small evaluator class, registered in :data:`EVALUATORS`:

- ``event``: every matching record raises an alert per subject (optional ``cooldown`` seconds);
- ``threshold``: more than ``threshold`` matching records for one subject within ``window``;
- ``distinct``: more than ``threshold`` distinct ``count`` values (patients, studies...) for one
  subject within ``window``;
- ``silence``: a subject (usually an audit source) that was seen has sent nothing for ``window``
  seconds, checked by :meth:`Detector.tick`.

Windows run on the message's EventDateTime (arrival time when absent), so a replayed file
(``radguard audit rules test``) gives the same alerts as live traffic did. After a counting rule
fires for a subject it stays quiet for that subject for one window (no alert storms). State is
bounded: at most :data:`MAX_SUBJECTS` subjects per rule (least recently seen dropped) and
:data:`MAX_EVENTS` window entries per subject.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from radguard.audit.repository.parse import ParsedMessage
from radguard.audit.repository.rules import (
    Context,
    Rule,
    RulePack,
    _strs,
    honeytokens,
    unknown_destinations,
)
from radguard.findings import ControlRef, Evidence, Finding, Severity

__all__ = ["EVALUATORS", "MAX_EVENTS", "MAX_SUBJECTS", "Alert", "Detector"]

MAX_SUBJECTS = 50_000
MAX_EVENTS = 20_000
_MAX_IDS = 100
_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)


def _before(when: datetime, span: timedelta) -> datetime:
    """``when - span``, or the calendar's first instant when that is before year 1 (a valid
    EventDateTime can be that early)."""
    try:
        return when - span
    except OverflowError:
        return _FIRST


def _after(when: datetime, span: timedelta) -> datetime:
    """``when + span``, or the calendar's last instant when that is after year 9999."""
    try:
        return when + span
    except OverflowError:
        return _LAST


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert: which rule, when (event time), about whom, and the records that triggered it."""

    rule_id: str
    rule_version: str
    severity: Severity
    time: datetime
    subject_kind: str
    subject: str
    record_ids: tuple[int, ...]
    message: str
    remedy: str
    controls: tuple[ControlRef, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "rule_version": self.rule_version,
                "severity": self.severity.label, "time": self.time.isoformat(),
                "subject": {"kind": self.subject_kind, "value": self.subject},
                "record_ids": list(self.record_ids), "message": self.message}

    def to_finding(self) -> Finding:
        """The alert as a :class:`Finding`; a patient subject is left out of it (no PHI)."""
        shown = None if self.subject_kind == "patient" else self.subject
        return Finding(
            check_id=self.rule_id, severity=self.severity, message=self.message,
            evidence=Evidence(details={"rule_version": self.rule_version,
                                       "subject_kind": self.subject_kind,
                                       "time": self.time.isoformat(),
                                       "record_ids": list(self.record_ids[:20])}),
            controls=self.controls, remedy=self.remedy, asset=shown)


def subjects(rule: Rule, msg: ParsedMessage, ctx: Context) -> tuple[str, ...]:
    """The subjects a record counts for under ``rule.group_by``."""
    group = rule.group_by
    if group == "requestor":
        return msg.requestors or msg.users[:1]
    if group == "user":
        return msg.users
    if group == "node":
        nodes = tuple(n for n in msg.requestor_nodes if n)
        return nodes or ((msg.source_id or msg.hostname or msg.peer),)
    if group == "source":
        return ((msg.source_id or msg.hostname or msg.peer),)
    if group == "patient":
        return msg.patients
    if group == "destination":
        return unknown_destinations(msg, ctx, rule) or msg.destinations
    return ("*",)


class Evaluator:
    """State and logic of one rule; subclasses implement :meth:`observe`."""

    kind: ClassVar[str] = ""

    def __init__(self, rule: Rule, ctx: Context) -> None:
        self.rule = rule
        self.ctx = ctx
        self.window = timedelta(seconds=float(rule.param("window", ctx, 0) or 0))
        self.threshold = int(rule.param("threshold", ctx, 0) or 0)
        self.state: OrderedDict[str, Any] = OrderedDict()
        self.quiet_until: dict[str, datetime] = {}

    def _slot(self, key: str, factory: type) -> Any:
        slot = self.state.get(key)
        if slot is None:
            slot = self.state[key] = factory()
            if len(self.state) > MAX_SUBJECTS:
                old, _ = self.state.popitem(last=False)
                self.quiet_until.pop(old, None)
        else:
            self.state.move_to_end(key)
        return slot

    def _quiet(self, key: str, when: datetime) -> bool:
        until = self.quiet_until.get(key)
        return until is not None and when < until

    def _alert(self, key: str, when: datetime, ids: Iterable[int], text: str) -> Alert:
        self.quiet_until[key] = _after(when, self.window)
        r = self.rule
        return Alert(r.id, r.version, r.severity, when, r.group_by, key,
                     tuple(dict.fromkeys(ids))[-_MAX_IDS:], f"{r.description} {text}".strip(),
                     r.remedy, r.controls)

    def observe(self, msg: ParsedMessage, record_id: int) -> list[Alert]:
        raise NotImplementedError

    def tick(self, now: datetime) -> list[Alert]:
        return []


class EventEvaluator(Evaluator):
    kind = "event"

    def __init__(self, rule: Rule, ctx: Context) -> None:
        super().__init__(rule, ctx)
        self.window = timedelta(seconds=float(rule.param("cooldown", ctx, 0) or 0))

    def observe(self, msg: ParsedMessage, record_id: int) -> list[Alert]:
        out = []
        detail = ""
        if self.rule.params.get("match", {}).get("honeytoken"):
            detail = f"({len(honeytokens(msg, self.ctx, self.rule))} decoy object(s))"
        for key in subjects(self.rule, msg, self.ctx) or ("(unknown)",):
            if not self._quiet(key, msg.time):
                out.append(self._alert(key, msg.time, [record_id],
                                       f"Subject: {self.rule.group_by} {key}. {detail}"))
        return out


class ThresholdEvaluator(Evaluator):
    kind = "threshold"

    def observe(self, msg: ParsedMessage, record_id: int) -> list[Alert]:
        out = []
        for key in subjects(self.rule, msg, self.ctx):
            events: deque[tuple[datetime, int]] = self._slot(key, deque)
            events.append((msg.time, record_id))
            newest = max(msg.time, events[-1][0])
            while events and (events[0][0] <= _before(newest, self.window) or len(events) > MAX_EVENTS):
                events.popleft()
            if len(events) > self.threshold and not self._quiet(key, msg.time):
                out.append(self._alert(key, msg.time, (i for _, i in events),
                                       f"{len(events)} events in {self.window} by "
                                       f"{self.rule.group_by} {key} (threshold "
                                       f"{self.threshold})."))
        return out


class _Distinct:
    __slots__ = ("counts", "events")

    def __init__(self) -> None:
        self.events: deque[tuple[datetime, int, str]] = deque()
        self.counts: Counter[str] = Counter()


class DistinctEvaluator(Evaluator):
    kind = "distinct"

    def observe(self, msg: ParsedMessage, record_id: int) -> list[Alert]:
        what = str(self.rule.params["count"])
        values = {"patient": msg.patients, "study": msg.studies, "user": msg.users,
                  "node": msg.nodes}[what]
        if not values:
            return []
        out = []
        for key in subjects(self.rule, msg, self.ctx):
            slot: _Distinct = self._slot(key, _Distinct)
            for value in values:
                slot.events.append((msg.time, record_id, value))
                slot.counts[value] += 1
            edge = _before(msg.time, self.window)
            while slot.events and (slot.events[0][0] <= edge or len(slot.events) > MAX_EVENTS):
                _, _, gone = slot.events.popleft()
                slot.counts[gone] -= 1
                if not slot.counts[gone]:
                    del slot.counts[gone]
            if len(slot.counts) > self.threshold and not self._quiet(key, msg.time):
                out.append(self._alert(key, msg.time, (i for _, i, _ in slot.events),
                                       f"{len(slot.counts)} distinct {what}s in {self.window} "
                                       f"by {self.rule.group_by} {key} (threshold "
                                       f"{self.threshold})."))
        return out


class SilenceEvaluator(Evaluator):
    kind = "silence"

    def observe(self, msg: ParsedMessage, record_id: int) -> list[Alert]:
        for key in subjects(self.rule, msg, self.ctx):
            last = self.state.get(key)
            if last is None or msg.time >= last[0]:
                self._slot(key, tuple)
                self.state[key] = (msg.time, record_id)
                self.quiet_until.pop(key, None)
        return []

    def tick(self, now: datetime) -> list[Alert]:
        out = []
        for key, (last, record_id) in list(self.state.items()):
            if now - last > self.window and key not in self.quiet_until:
                alert = self._alert(key, now, [record_id],
                                    f"Source {key} last sent at {last.isoformat()}.")
                self.quiet_until[key] = datetime.max.replace(tzinfo=now.tzinfo)
                out.append(alert)
        return out


EVALUATORS: dict[str, type[Evaluator]] = {
    e.kind: e for e in (EventEvaluator, ThresholdEvaluator, DistinctEvaluator, SilenceEvaluator)
}
"""Rule kind -> evaluator class (the one registry of kinds)."""


def required_event_ids(rule_id: str, spec: Any) -> frozenset[str] | None:
    """The EventIDs a record must have to match a rule's ``match`` mapping, ``None`` when any
    may: the ``event_id`` condition (conditions are all required), else the union over the
    branches of ``any`` when every branch has one."""
    if not isinstance(spec, Mapping):
        return None
    if "event_id" in spec:
        return _strs(rule_id, "event_id", spec["event_id"])
    branches = spec.get("any")
    if isinstance(branches, list) and branches:
        needs = [required_event_ids(rule_id, b) for b in branches]
        if all(n is not None for n in needs):
            return frozenset().union(*(n for n in needs if n is not None))
    return None


class Detector:
    """Evaluates a rule pack (or some of its rules) over a stream of records."""

    def __init__(self, pack: RulePack, ctx: Context | None = None,
                 only: Iterable[str] | None = None, disabled: Iterable[str] = ()) -> None:
        self.pack = pack
        self.ctx = ctx or Context()
        wanted = set(only) if only is not None else None
        off = set(disabled)
        self.evaluators = [EVALUATORS[r.kind](r, self.ctx) for r in pack.rules
                           if (wanted is None or r.id in wanted) and r.id not in off]
        self.latest: datetime | None = None
        self._needs = [required_event_ids(ev.rule.id, ev.rule.params.get("match", {}))
                       for ev in self.evaluators]
        self._by_event: dict[str | None, list[Evaluator]] = {}

    def _for_event(self, event_id: str | None) -> list[Evaluator]:
        """The evaluators a record with ``event_id`` can concern, in pack order: a rule whose
        ``match`` requires other EventIDs cannot match it (its matcher would say no)."""
        found = self._by_event.get(event_id)
        if found is None:
            found = [ev for ev, needs in zip(self.evaluators, self._needs, strict=True)
                     if needs is None or event_id in needs]
            if len(self._by_event) < 4096:
                self._by_event[event_id] = found
        return found

    def observe(self, msg: ParsedMessage, record_id: int) -> list[Alert]:
        """Feed one stored record; return the alerts it raises. Unreadable records are skipped
        (they carry no fields) except by rules matching on ``validity``."""
        self.latest = msg.time if self.latest is None else max(self.latest, msg.time)
        out: list[Alert] = []
        for ev in self._for_event(msg.event_id):
            if ev.kind == "silence":
                if msg.source_id or msg.validity.readable:
                    ev.observe(msg, record_id)
            elif ev.rule.matches(msg, self.ctx):
                out.extend(ev.observe(msg, record_id))
        return out

    def tick(self, now: datetime) -> list[Alert]:
        """Time-driven rules (silence) at ``now``."""
        out: list[Alert] = []
        for ev in self.evaluators:
            out.extend(ev.tick(now))
        return out
