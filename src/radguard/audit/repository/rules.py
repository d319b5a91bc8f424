"""Detection rules as data: loading the YAML pack and compiling each rule's ``match``.

A rule file (``radguard/data/audit/rules/builtin.yaml`` is the built-in, versioned pack) holds
``pack``, ``version`` and ``rules``; each rule has ``id``, ``severity``, ``description``,
``controls`` (``FRAMEWORK:CONTROL``), ``remedy``, a ``kind`` (see :mod:`.detect`: ``event``,
``threshold``, ``distinct``, ``silence``), ``group_by`` (``requestor``, ``user``, ``node``,
``source``, ``patient``, ``destination``, ``global``) and kind parameters (``window`` seconds,
``threshold``, ``count``, ``cooldown``). ``match`` is a mapping of conditions, all of which must
hold; a list means "any of":

==========================  =================================================================
``event_id``                EventID code (CID 400), e.g. ``"110104"``
``type_code``               any EventTypeCode (CID 401), e.g. ``"110133"``
``outcome``                 list of EventOutcomeIndicator values, or ``failure`` (4, 8, 12)
``action``                  EventActionCode letters
``description_contains``    case-insensitive substrings of EventOutcomeDescription
``media_destination``       a participant has role 110154 Destination Media
``destination_unknown``     a role 110152 destination is not in the inventory (``known``)
``honeytoken``              a patient or study is in ``patients`` / ``studies``
``outside_hours``           EventDateTime is outside ``{days, start, end, tz}``
``validity``                the record's validity (``valid``, ``invalid``, ``not-xml``...)
``any``                     a list of nested ``match`` mappings, one of which must hold
==========================  =================================================================

A parameter written ``"@name"`` is looked up in the run-time context (the ``[audit]`` section of
the config file, plus the inventory of the store) and falls back to the rule's own ``name`` key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time as dtime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from radguard.audit.repository.errors import RuleError
from radguard.audit.repository.parse import ParsedMessage
from radguard.findings import ControlRef, Severity

__all__ = ["BUILTIN", "Context", "Matcher", "Rule", "RulePack", "builtin_pack", "load_pack"]

BUILTIN = "data/audit/rules/builtin.yaml"
KINDS = frozenset({"event", "threshold", "distinct", "silence"})
GROUPS = frozenset({"requestor", "user", "node", "source", "patient", "destination", "global"})
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FAILURE = (4, 8, 12)

Matcher = Callable[[ParsedMessage, "Context", "Rule"], bool]


@dataclass(frozen=True, slots=True)
class Context:
    """Run-time values rules refer to with ``@name``; ``inventory`` holds lower-cased names, AE
    titles and addresses of the store's assets."""

    params: Mapping[str, Any] = field(default_factory=dict)
    inventory: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Rule:
    """One detection rule; ``params`` holds every key of the YAML mapping."""

    id: str
    version: str
    severity: Severity
    description: str
    remedy: str
    controls: tuple[ControlRef, ...]
    kind: str
    group_by: str
    params: Mapping[str, Any]
    matcher: Matcher

    def param(self, name: str, context: Context, default: Any = None) -> Any:
        """``params[name]``, resolving an ``"@ref"`` against ``context`` (then ``params[ref]``)."""
        value = self.params.get(name, default)
        if isinstance(value, str) and value.startswith("@"):
            ref = value[1:]
            return context.params.get(ref, self.params.get(ref, default))
        return value

    def matches(self, message: ParsedMessage, context: Context) -> bool:
        return self.matcher(message, context, self)

    def describe(self) -> dict[str, Any]:
        """JSON-safe summary for ``radguard audit rules list``."""
        keys = ("window", "threshold", "count", "cooldown")
        return {"id": self.id, "version": self.version, "severity": self.severity.label,
                "kind": self.kind, "group_by": self.group_by, "description": self.description,
                "controls": [str(c) for c in self.controls],
                **{k: self.params[k] for k in keys if k in self.params}}


@dataclass(frozen=True, slots=True)
class RulePack:
    """A loaded rule file: its name, version and rules in file order."""

    name: str
    version: str
    rules: tuple[Rule, ...]

    def get(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise RuleError(f"no rule {rule_id!r} in rule pack {self.name} {self.version}",
                        subject=rule_id, remedy="list the rules with 'radguard audit rules list'")


# -- conditions ----------------------------------------------------------------------------------


def _strs(rule_id: str, key: str, value: Any) -> frozenset[str]:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str | int) for v in items):
        raise RuleError(f"match.{key} must be a string or a list of strings", subject=rule_id)
    return frozenset(str(v) for v in items)


def hours(spec: Mapping[str, Any]) -> tuple[frozenset[int], dtime, dtime, ZoneInfo | None]:
    """Parse a working-hours mapping ``{days, start, end, tz}`` (tz ``local`` = system zone)."""
    days = frozenset(_DAYS.index(str(d).lower()[:3]) for d in spec.get("days", _DAYS[:5]))
    start = dtime.fromisoformat(str(spec.get("start", "07:00")))
    end = dtime.fromisoformat(str(spec.get("end", "19:00")))
    tz_name = str(spec.get("tz", "local"))
    return days, start, end, None if tz_name == "local" else ZoneInfo(tz_name)


def _outside_hours(msg: ParsedMessage, ctx: Context, rule: Rule, ref: Any) -> bool:
    spec = ref
    if isinstance(ref, str) and ref.startswith("@"):
        spec = ctx.params.get(ref[1:], rule.params.get(ref[1:]))
    if not isinstance(spec, Mapping):
        return False
    days, start, end, zone = hours(spec)
    try:
        when = msg.time.astimezone(zone) if zone else msg.time.astimezone()
    except OverflowError:  # an event time at the calendar's edge: judged in UTC
        when = msg.time
    return when.weekday() not in days or not (start <= when.time() < end)


def _as_set(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(str(v) for v in value or ())


_RESOLVED: dict[tuple[int, int, str], tuple[Rule, Context, frozenset[str]]] = {}


def _resolved(rule: Rule, ctx: Context, name: str) -> frozenset[str]:
    """``rule.param(name)`` as a set, resolved once per (rule, context) instead of per message
    (both are immutable; the entry keeps them alive so their ids stay theirs)."""
    key = (id(rule), id(ctx), name)
    hit = _RESOLVED.get(key)
    if hit is None or hit[0] is not rule or hit[1] is not ctx:
        if len(_RESOLVED) > 256:
            _RESOLVED.clear()
        values = _as_set(rule.param(name, ctx, ()))
        if name == "known":
            values = ctx.inventory | {k.lower() for k in values}
        hit = _RESOLVED[key] = (rule, ctx, values)
    return hit[2]


def unknown_destinations(msg: ParsedMessage, ctx: Context, rule: Rule) -> tuple[str, ...]:
    """Destinations of ``msg`` matching nothing in the inventory or the rule's ``known`` list."""
    known = _resolved(rule, ctx, "known")
    dests = [d for d in msg.destinations if d]
    if not dests or any(d.lower() in known for d in dests):
        return ()
    return tuple(dests)


def honeytokens(msg: ParsedMessage, ctx: Context, rule: Rule) -> tuple[str, ...]:
    """Patients and studies of ``msg`` that are honeytokens."""
    patients = _resolved(rule, ctx, "patients")
    studies = _resolved(rule, ctx, "studies")
    if not (patients or studies):
        return ()
    return tuple(p for p in msg.patients if p in patients) + tuple(
        s for s in msg.studies if s in studies)


def _condition(rule_id: str, key: str, value: Any) -> Matcher:
    """Compile one condition of a ``match`` mapping."""
    if key == "event_id":
        ids = _strs(rule_id, key, value)
        return (lambda m, c, r: m.event_id in ids)
    elif key == "type_code":
        codes = _strs(rule_id, key, value)
        return (lambda m, c, r: not codes.isdisjoint(m.type_codes))
    elif key == "outcome":
        wanted = frozenset(_FAILURE if value == "failure" else (int(v) for v in value))
        return (lambda m, c, r: m.outcome in wanted)
    elif key == "action":
        acts = _strs(rule_id, key, value)
        return (lambda m, c, r: m.action in acts)
    elif key == "validity":
        vals = _strs(rule_id, key, value)
        return (lambda m, c, r: str(m.validity) in vals)
    elif key == "description_contains":
        words = tuple(w.lower() for w in _strs(rule_id, key, value))
        return (lambda m, c, r: any(w in (m.description or "").lower() for w in words))
    elif key == "media_destination":
        media = bool(value)
        return (lambda m, c, r: m.media_destination is media)
    elif key == "destination_unknown":
        return (lambda m, c, r: bool(unknown_destinations(m, c, r)))
    elif key == "honeytoken":
        return (lambda m, c, r: bool(honeytokens(m, c, r)))
    elif key == "outside_hours":
        ref = value
        return (lambda m, c, r: _outside_hours(m, c, r, ref))
    elif key == "any":
        if not isinstance(value, list) or not value:
            raise RuleError("match.any must be a non-empty list", subject=rule_id)
        subs = [_compile(rule_id, v) for v in value]
        if len(subs) == 2:
            first, second = subs
            return (lambda m, c, r: first(m, c, r) or second(m, c, r))
        return (lambda m, c, r: any(t(m, c, r) for t in subs))
    else:
        raise RuleError(f"unknown match condition {key!r}", subject=rule_id,
                        remedy="see docs/audit.md for the conditions rules may use")


def _compile(rule_id: str, spec: Any) -> Matcher:
    if not isinstance(spec, Mapping):
        raise RuleError("match must be a mapping of conditions", subject=rule_id)
    tests = [_condition(rule_id, key, value) for key, value in spec.items()]
    return _all(tests)


def _all(tests: list[Matcher]) -> Matcher:
    """All of ``tests``, in order, short-circuiting (one or two without a generator: this runs
    for every rule on every received message)."""
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda m, c, r: a(m, c, r) and b(m, c, r)
    return lambda m, c, r: all(t(m, c, r) for t in tests)


def _rule(raw: Any, version: str) -> Rule:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
        raise RuleError("every rule needs an 'id'", subject=str(raw)[:80])
    rid = raw["id"]
    try:
        kind = str(raw["kind"])
        if kind not in KINDS:
            raise RuleError(f"unknown rule kind {kind!r}", subject=rid,
                            remedy=f"use one of {sorted(KINDS)}")
        group = str(raw.get("group_by", "global"))
        if group not in GROUPS:
            raise RuleError(f"unknown group_by {group!r}", subject=rid,
                            remedy=f"use one of {sorted(GROUPS)}")
        if kind in ("threshold", "distinct", "silence") and int(raw["window"]) <= 0:
            raise RuleError("window must be a positive number of seconds", subject=rid)
        if kind in ("threshold", "distinct"):
            int(raw["threshold"])
        if kind == "distinct" and raw.get("count") not in ("patient", "study", "user", "node"):
            raise RuleError("a distinct rule needs count: patient | study | user | node",
                            subject=rid)
        if isinstance(raw.get("working_hours"), Mapping):
            hours(raw["working_hours"])
        return Rule(
            id=rid, version=str(raw.get("version", version)),
            severity=Severity.parse(str(raw["severity"])),
            description=str(raw["description"]), remedy=str(raw.get("remedy", "")),
            controls=tuple(ControlRef.parse(str(c)) for c in raw.get("controls", ())),
            kind=kind, group_by=group, params=dict(raw),
            matcher=_compile(rid, raw.get("match", {})),
        )
    except (KeyError, TypeError, ValueError, ZoneInfoNotFoundError) as exc:
        raise RuleError(f"rule is malformed: {exc!r}", subject=rid,
                        remedy="compare it with the built-in pack (docs/audit.md)") from exc


def parse_pack(text: str, origin: str) -> RulePack:
    """Build a :class:`RulePack` from YAML ``text``; ``origin`` names it in errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"rule file is not valid YAML: {exc}", subject=origin) from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list):
        raise RuleError("rule file needs a 'rules' list", subject=origin)
    version = str(data.get("version", "0"))
    rules = tuple(_rule(r, version) for r in data["rules"])
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise RuleError("rule ids must be unique in a pack", subject=origin)
    return RulePack(str(data.get("pack", origin)), version, rules)


def load_pack(path: Path) -> RulePack:
    """Load a rule file. Raises :class:`RuleError` naming the file and the rule."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"cannot read rule file: {exc.strerror}", subject=str(path)) from exc
    return parse_pack(text, str(path))


@cache
def builtin_pack() -> RulePack:
    """The built-in, versioned rule pack shipped with RadGuard."""
    text = resources.files("radguard").joinpath(BUILTIN).read_text(encoding="utf-8")
    return parse_pack(text, BUILTIN)
