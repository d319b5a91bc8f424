"""The fingerprint of a DIMSE node from its association answers (network.md "Where DICOM listens").

From the A-ASSOCIATE-AC: Implementation Class UID and Version Name (PS3.7 D.3.3.2/D.3.3.3); from the
presentation contexts accepted in each tier (PS3.8 9.3.3.2): the SOP classes and the transfer
syntaxes the node accepts; from those, its roles by the rules of ``sop-tiers.json``.

At depth ``compact`` the fingerprint is read from the base association alone (the ``discovery``
tier: the services that decide every role of the table, and the common storage classes); ``full``
adds the inventory tiers and the transfer-syntax probe; ``minimal`` proposes Verification only, so
it names the implementation and whether the node speaks DICOM, but infers no role
(``roles_inferred`` false: an empty ``roles`` then means "not asked", not "none"). ``depth`` and
``tiers_probed`` in the result say which it was, so a compact fingerprint is never mistaken for a
full inventory.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from radguard.assess.association import Attempt
from radguard.assess.pdu import Context
from radguard.assess.probe import NodeProbe, base_contexts, tier_contexts, tier_count
from radguard.assess.tables import load

__all__ = ["fingerprint", "infer_roles"]


@cache
def _names() -> dict[str, str]:
    table = load("sop-tiers.json")
    return {c["uid"]: c["name"] for t in table["tiers"] for c in t["sop_classes"]}


def _accepted(attempts: list[tuple[Sequence[Context], Attempt]]) -> tuple[set[str], set[str]]:
    """(SOP class UIDs, transfer syntax UIDs) accepted over the given (proposed contexts,
    attempt) pairs."""
    classes: set[str] = set()
    syntaxes: set[str] = set()
    for contexts, att in attempts:
        if not att.accepted:
            continue
        by_id = {c.id: c for c in contexts}
        for ctx_id, ts in att.answer.accepted:
            ctx = by_id.get(ctx_id)
            if ctx is None:
                continue
            classes.add(ctx.abstract_syntax)
            if ts:
                syntaxes.add(ts)
    return classes, syntaxes


@cache
def _storage() -> frozenset[str]:
    table = load("sop-tiers.json")
    return frozenset(c["uid"] for t in table["tiers"] for c in t["sop_classes"]
                     if c["name"].endswith("Storage"))


@cache
def _rules() -> tuple[tuple[str, frozenset[str], bool, bool], ...]:
    """(role, any_of, only, needs_storage) of each rule, in the table's order."""
    return tuple((r["role"], frozenset(r.get("any_of", [])), bool(r.get("only")),
                  bool(r.get("needs_storage"))) for r in load("sop-tiers.json")["roles"])


def infer_roles(classes: set[str]) -> list[str]:
    """Roles whose rules match the accepted SOP classes (``sop-tiers.json`` ``roles``)."""
    has_storage = not _storage().isdisjoint(classes)
    roles: list[str] = []
    for role, any_of, only, needs_storage in _rules():
        if only:
            if classes and classes <= any_of:
                roles.append(role)
            continue
        if any_of and any_of.isdisjoint(classes):
            continue
        if needs_storage and not has_storage:
            continue
        if not any_of and not needs_storage:
            continue
        roles.append(role)
    return roles


def fingerprint(probe: NodeProbe) -> dict[str, Any]:
    """A JSON-safe fingerprint of ``probe``'s node (runs the tier probes when needed)."""
    base = probe.base
    answer = base.answer
    depth = probe.options.fingerprint_depth
    attempts: list[tuple[Sequence[Context], Attempt]] = [
        (base_contexts(depth), base), *((tier_contexts(i), a) for i, a in probe.tiers)]
    classes, syntaxes = _accepted(attempts)
    names = _names()
    roles_inferred = depth != "minimal"
    tiers_probed = len(attempts) - (0 if roles_inferred else 1)
    return {
        "association": answer.kind,
        "reason": answer.reason,
        "transport": probe.transport or "unknown",
        "tls_version": base.handshake.version if base.handshake else None,
        "implementation_class_uid": answer.implementation_class_uid,
        "implementation_version": answer.implementation_version,
        "ae_title_well_formed": answer.ae_well_formed,
        "max_pdu_length": answer.max_length,
        "sop_classes": sorted(names.get(c, c) for c in classes),
        "transfer_syntaxes": sorted(syntaxes),
        "roles": infer_roles(classes) if roles_inferred else [],
        "roles_inferred": roles_inferred,
        "depth": depth,
        "tiers_probed": tiers_probed if base.accepted else 0,
        "tiers_available": tier_count(),
        "tables": {"sop-tiers.json": load("sop-tiers.json")["version"]},
    }
