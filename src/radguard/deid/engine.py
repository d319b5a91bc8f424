"""The attribute pass: Table E.1-1 applied to a data set and every sequence item, at any depth.

Each element is looked up once (:class:`radguard.deid.actions.Plan`); elements that keep their value
are never decoded (pydicom writes them back raw). Attributes the table does not list are handled by
rule (PS3.15 E.1.1, ``rules.json``): private elements are removed unless Retain Safe Private keeps a
safe one (E.3.10); overlays by Clean Graphics (E.3.3); any other PN gets a keyed pseudonym; dates are
kept (Full Dates), shifted (Modified Dates) or replaced by a dummy; free text (ST, LT, UT) is removed,
or cleaned under Clean Descriptors; instance UIDs not in the registry are replaced.

A sequence is walked in one of three modes: ``normal``; ``dummy`` when the table says D for the
sequence (its items keep their structure and codes, their texts, names and dates become dummies); and
``clean`` when an option says C (texts are cleaned by :class:`~radguard.deid.scrub.Scrubber`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydicom.datadict import dictionary_description, dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radguard.deid.actions import Plan, UnlistedRules, dummy_value, resolve_compound
from radguard.deid.options import DeidOptions, Option
from radguard.deid.pseudonym import Pseudonymizer
from radguard.deid.report import Change
from radguard.deid.scrub import Scrubber
from radguard.deid.tables import safe_private

__all__ = ["Context", "process_dataset"]

PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
ISSUER_OF_PATIENT_ID = 0x00100021


@dataclass
class Context:
    """State of one data set's pass (mutable, private to one call)."""

    options: DeidOptions
    plan: Plan
    rules: UnlistedRules
    pseudo: Pseudonymizer
    scrubber: Scrubber
    sop_class: str
    date_offset: int | None
    patient_id: str
    issuer: str
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    originals: Dataset | None = None

    @property
    def full_dates(self) -> bool:
        return self.options.has(Option.RETAIN_FULL_DATES)

    @property
    def modified_dates(self) -> bool:
        return self.options.has(Option.RETAIN_MODIFIED_DATES)


_TAG_TEXT: dict[int, str] = {}


def _tag_text(tag: int) -> str:
    """``(gggg,eeee)``; one shared string per tag (the reports of a batch pickle each once)."""
    text = _TAG_TEXT.get(tag)
    if text is None:
        text = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if len(_TAG_TEXT) < 65536:
            _TAG_TEXT[tag] = text
    return text


def _vr_of(tag: int, elem: DataElement | RawDataElement) -> str:
    if elem.VR and elem.VR != "UN":
        return str(elem.VR).split(" or ")[0]
    try:
        return str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        return "UN"


def _by_option(reason: str) -> bool:
    """A K worth reporting: an option kept what the Basic Profile would have changed."""
    return reason.startswith("E.1-1 ") and "Basic" not in reason


@lru_cache(maxsize=8192)
def _name(tag: int) -> str:
    try:
        return str(dictionary_description(tag))
    except KeyError:
        return ""


def _values(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return list(value)
    return [value]


def new_element(tag: int, vr: str, values: list[Any]) -> DataElement:
    """The element written for a changed attribute (shared with :mod:`.fastpath`)."""
    value: Any = values[0] if len(values) == 1 else (values if values else None)
    if vr == "SQ":
        value = Sequence(values)
    return DataElement(tag, vr, value)


def _set(ds: Dataset, tag: int, vr: str, values: list[Any]) -> None:
    ds[tag] = new_element(tag, vr, values)


def _unlisted(tag: int, vr: str, ctx: Context, mode: str) -> tuple[str, str]:
    """Action and reason for a public attribute Table E.1-1 does not list."""
    rules = ctx.rules
    group = tag >> 16
    if 0x6000 <= group <= 0x601E:
        if ctx.options.has(Option.CLEAN_GRAPHICS):
            return ("C" if vr in rules.text_vrs else "K"), "overlay plane, Clean Graphics (E.3.3)"
        return "X", "overlay plane without Clean Graphics (E.3.3)"
    if vr == "PN":
        return "D", "unlisted person name: keyed pseudonym"
    if vr in rules.date_vrs:
        if ctx.full_dates:
            return "K", "unlisted date, Full Dates (E.3.6)"
        return ("C", "unlisted date, Modified Dates (E.3.6)") if ctx.modified_dates else (
            "D", "unlisted date: dummy")
    if vr in rules.free_text_vrs:
        if mode != "normal":
            return ("C" if mode == "clean" else "D"), f"free text in a sequence being {mode}ed"
        if ctx.options.has(Option.CLEAN_DESCRIPTORS):
            return "C", "unlisted free text, Clean Descriptors (E.3.5)"
        return "X", "unlisted free text"
    if vr == "UI":
        if tag in rules.class_uid_tags or ctx.options.has(Option.RETAIN_UIDS):
            return "K", ""
        return "U?", "unlisted UID not in the DICOM registry"
    if mode != "normal" and vr in rules.text_vrs and tag not in rules.code_tags:
        return ("C" if mode == "clean" else "D"), f"text in a sequence being {mode}ed"
    return "K", ""


def _clean(elem: DataElement, vr: str, ctx: Context, nested: bool) -> list[Any] | None:
    """Values for action C (PS3.15 E.1.1 "clean"); ``None`` keeps the element as it is."""
    values = _values(elem.value)
    if vr in ctx.rules.date_vrs:
        if ctx.full_dates:
            return None
        if ctx.modified_dates and ctx.date_offset is not None:
            shifted = [ctx.pseudo.shift_date(str(v), ctx.date_offset) for v in values]
            return [s if s is not None else dummy_value(vr) for s in shifted]
        return [dummy_value(vr)] if values else []
    if vr == "TM":
        return None if (ctx.full_dates or ctx.modified_dates) else [dummy_value(vr)]
    if vr == "PN":
        return [ctx.pseudo.person(str(v)) for v in values]
    if vr == "AE":
        return ["AE" + ctx.pseudo.short("ae", str(v), 14) for v in values]
    if vr == "UI":
        return [ctx.pseudo.uid(str(v)) for v in values]
    if vr in ctx.rules.text_vrs:
        return [ctx.scrubber.clean(str(v)) for v in values]
    return None


def _apply(ds: Dataset, tag: int, vr: str, action: str, reason: str, name: str, ctx: Context,
           path: str, nested: bool, mode: str) -> None:
    record = True
    if action == "X":
        del ds[tag]
    elif vr == "SQ" and action in ("K", "U*", "D", "C"):
        sub = {"D": "dummy", "C": "clean"}.get(action, mode)
        for i, item in enumerate(ds[tag].value):
            process_dataset(item, ctx, f"{path}{_tag_text(tag)}[{i}].", nested=True,
                            mode=sub)
        record = action != "K" or _by_option(reason)
    elif action == "K":
        record = _by_option(reason)
    elif action == "Z":
        if not nested and tag == PATIENT_ID:
            _set(ds, tag, vr, [ctx.pseudo.patient_id(ctx.patient_id, ctx.issuer)])
            reason += ": keyed pseudonym (a dummy value, as Z allows)"
        elif not nested and tag == PATIENT_NAME:
            _set(ds, tag, vr, [ctx.pseudo.patient_name(ctx.patient_id, ctx.issuer)])
            reason += ": keyed pseudonym (a dummy value, as Z allows)"
        else:
            _set(ds, tag, vr, [])
    elif action == "D":
        if vr == "PN":
            _set(ds, tag, vr, [ctx.pseudo.person(str(v)) for v in _values(ds[tag].value)]
                 or [dummy_value(vr)])
        elif vr == "UI":
            _set(ds, tag, vr, [ctx.pseudo.uid(str(v)) for v in _values(ds[tag].value)])
        else:
            _set(ds, tag, vr, [dummy_value(vr)])
    elif action in ("U", "U?"):
        values = [str(v) for v in _values(ds[tag].value)]
        if action == "U?" and all(v.startswith(ctx.rules.registry_prefix) for v in values):
            return
        if vr == "UI":
            _set(ds, tag, vr, [ctx.pseudo.uid(v) for v in values])
        else:
            _set(ds, tag, vr, [dummy_value(vr)])
        action = "U"
    elif action == "C":
        new = _clean(ds[tag], vr, ctx, nested)
        if new is None:
            record = False
        else:
            _set(ds, tag, vr, new)
    if record:
        ctx.changes.append(Change(path + _tag_text(tag), name, action, reason))


def private_decisions(tags: list[int], creators: dict[tuple[int, int], str], ctx: Context,
                      path: str) -> set[int]:
    """Which private elements stay (PS3.15 E.3.10, E.1.1): the safe ones of a known creator under
    Retain Safe Private, and the creators of their blocks; every other one goes. Records the changes
    in ``ctx``. ``creators`` maps (group, block byte) to the creator's text ("" when undecodable)."""
    keep_safe = ctx.options.has(Option.RETAIN_SAFE_PRIVATE)
    table = safe_private()
    kept: set[tuple[int, int]] = set()
    keep: set[int] = set()
    removed: dict[tuple[int, int], int] = {}
    for tag in tags:
        elem = tag & 0xFFFF
        if 0x0010 <= elem <= 0x00FF:
            continue
        block = (tag >> 16, elem >> 8)
        creator = creators.get(block, "")
        if keep_safe and creator and elem >= 0x1000 and table.is_safe(creator, tag):
            kept.add(block)
            keep.add(tag)
            ctx.changes.append(Change(path + _tag_text(tag), creator, "K",
                                      "E.1-1 retain-safe-private C: safe private (E.3.10-1)"))
            continue
        removed[block] = removed.get(block, 0) + 1
    for group, low in creators:
        if (group, low) in kept:
            keep.add((group << 16) | low)
        else:
            removed.setdefault((group, low), 0)
    for (group, low), count in sorted(removed.items()):
        name = creators.get((group, low), "")
        ctx.changes.append(Change(f"{path}({group:04X},{low:02X}xx)", name or "private",
                                  "X", f"E.1-1 Basic Profile X: private attributes ({count} "
                                       "elements and their creator)"))
    return keep


def _private(ds: Dataset, tags: list[int], ctx: Context, path: str) -> None:
    """Remove private elements, keeping safe ones under Retain Safe Private (E.3.10, E.1.1)."""
    creators: dict[tuple[int, int], str] = {}
    for tag in tags:
        if 0x0010 <= tag & 0xFFFF <= 0x00FF:
            try:
                creators[(tag >> 16, tag & 0xFF)] = str(ds[tag].value or "")
            except Exception:  # an undecodable creator keeps nothing of its block
                creators[(tag >> 16, tag & 0xFF)] = ""
    keep = private_decisions(tags, creators, ctx, path)
    for tag in tags:
        if tag not in keep:
            del ds[tag]


def process_dataset(ds: Dataset, ctx: Context, path: str = "", *, nested: bool = False,
                    mode: str = "normal") -> None:
    """Apply the plan to ``ds`` in place, recursing into sequences; record every change in ``ctx``."""
    private: list[int] = []
    for base_tag in list(ds.keys()):
        tag = int(base_tag)
        group = tag >> 16
        if group & 1:
            private.append(tag)
            continue
        raw = ds.get_item(tag)
        if raw is None:
            continue
        vr = _vr_of(tag, raw)
        if tag & 0xFFFF == 0 and group != 0x0002:
            del ds[tag]
            continue
        rule = ctx.plan.rule(tag)
        if rule is None:
            action, reason = _unlisted(tag, vr, ctx, mode)
            name = ""
        else:
            action, reason, name = rule.action, rule.reason, rule.name
            if "/" in action:
                action, why = resolve_compound(action, tag, sop_class=ctx.sop_class,
                                               nested=nested, ds=ds)
                reason = f"{reason}: {why}"
        if action == "K" and vr != "SQ" and not reason:
            continue
        if not name:
            name = _name(tag)
        if ctx.originals is not None and not nested:
            before, original = len(ctx.changes), copy.deepcopy(ds[tag])
            _apply(ds, tag, vr, action, reason, name, ctx, path, nested, mode)
            if len(ctx.changes) > before:
                ctx.originals[tag] = original
            continue
        _apply(ds, tag, vr, action, reason, name, ctx, path, nested, mode)
    if private:
        if ctx.originals is not None and not nested:
            for ptag in private:
                ctx.originals[ptag] = copy.deepcopy(ds[ptag])
        _private(ds, private, ctx, path)
