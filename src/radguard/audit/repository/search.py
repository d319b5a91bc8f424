"""Searching stored audit records, and the decoded view of one record.

:func:`search` filters by arrival (or event) time range, EventID, EventTypeCode, user, node,
patient id, study UID, outcome, validity and source, newest first, and returns
:class:`RecordView` values. Multi-valued keys (users, nodes, patients, studies, type codes) are
looked up in ``audit_terms``; the rest are indexed columns of ``audit_records``.

A view decodes the stored raw message again (through the hardened parser) to list the
participants and participant objects; a ParticipantObjectQuery is shown base64-decoded
(PS3.15 A.5.3.10: the query is base64 in the message) and ParticipantObjectDetail values too.
Records that are not readable XML show their validity, reason and the first octets only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lxml import etree
from sqlalchemy import Select, select, text

from radguard.audit._xml import parse as parse_xml
from radguard.audit.repository.header import parse_header
from radguard.audit.repository.parse import _rfc3881_to_dicom
from radguard.errors import AuditSchemaError
from radguard.store import Store
from radguard.store.models_audit import (
    FAILED_CONDITION,
    NOT_VALID_CONDITION,
    AuditRecord,
    AuditTerm,
)

__all__ = ["RecordView", "SearchQuery", "decode_query", "search", "view_of"]

_PREVIEW = 200


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Filters of :func:`search`; ``None``/empty means "any". Times are tz-aware.

    ``on`` chooses the time the range applies to: ``received`` (arrival, always known) or
    ``event`` (EventDateTime).
    """

    since: datetime | None = None
    until: datetime | None = None
    on: str = "received"
    event_ids: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    patients: tuple[str, ...] = ()
    studies: tuple[str, ...] = ()
    outcomes: tuple[int, ...] = ()
    validity: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()
    after_id: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class RecordView:
    """One stored record as shown by ``radguard audit search``."""

    id: int
    received_at: datetime
    transport: str
    peer: str
    hostname: str | None
    source_id: str | None
    event_time: datetime | None
    event_id: str | None
    action: str | None
    outcome: int | None
    validity: str
    reason: str | None
    hash: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``audit search --format json`` (see docs/audit.md)."""
        return {
            "id": self.id, "received_at": self.received_at.isoformat(),
            "source": {"transport": self.transport, "peer": self.peer,
                       "hostname": self.hostname, "audit_source_id": self.source_id},
            "event_time": self.event_time.isoformat() if self.event_time else None,
            "event_id": self.detail.get("event_id") or (
                {"code": self.event_id} if self.event_id else None),
            "event_type_codes": self.detail.get("event_type_codes", []),
            "action": self.action, "outcome": self.outcome,
            "outcome_description": self.detail.get("outcome_description"),
            "participants": self.detail.get("participants", []),
            "participant_objects": self.detail.get("participant_objects", []),
            "validity": self.validity, "reason": self.reason, "hash": self.hash,
            **({"raw_preview": self.detail["raw_preview"]} if "raw_preview" in self.detail
               else {}),
        }


def decode_query(text: str | None) -> str | None:
    """Base64 of a ParticipantObjectQuery/Detail value, decoded for reading (UTF-8; other
    octets shown as ``\\xNN``)."""
    if text is None:
        return None
    try:
        data = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return f"(not base64) {text[:_PREVIEW]}"
    return data.decode("utf-8", "backslashreplace")


def _coded(elem: etree._Element | None) -> dict[str, str | None] | None:
    if elem is None:
        return None
    return {"code": elem.get("csd-code"), "scheme": elem.get("codeSystemName"),
            "display": elem.get("displayName") or elem.get("originalText")}


def _detail(raw: bytes, validity: str) -> dict[str, Any]:
    header = parse_header(raw)
    msg = raw[header.msg_offset:]
    if validity not in ("valid", "rfc3881", "invalid"):
        return {"raw_preview": raw[:_PREVIEW].decode("utf-8", "backslashreplace")}
    try:
        root = parse_xml(msg)
    except AuditSchemaError:
        return {"raw_preview": raw[:_PREVIEW].decode("utf-8", "backslashreplace")}
    _rfc3881_to_dicom(root)
    event = root.find("EventIdentification")
    out: dict[str, Any] = {}
    if event is not None:
        out["event_id"] = _coded(event.find("EventID"))
        out["event_type_codes"] = [_coded(e) for e in event.iterfind("EventTypeCode")]
        desc = event.find("EventOutcomeDescription")
        out["outcome_description"] = desc.text if desc is not None else None
    out["participants"] = [
        {"user_id": p.get("UserID"), "alternative_user_id": p.get("AlternativeUserID"),
         "user_name": p.get("UserName"),
         "requestor": (p.get("UserIsRequestor") or "").strip() in ("true", "1"),
         "network_access_point": p.get("NetworkAccessPointID"),
         "roles": [_coded(r) for r in p.iterfind("RoleIDCode")],
         "media_type": _coded(p.find("MediaIdentifier/MediaType"))}
        for p in root.iterfind("ActiveParticipant")]
    objects = []
    for o in root.iterfind("ParticipantObjectIdentification"):
        name = o.find("ParticipantObjectName")
        query = o.find("ParticipantObjectQuery")
        objects.append({
            "id": o.get("ParticipantObjectID"), "type_code": o.get("ParticipantObjectTypeCode"),
            "role": o.get("ParticipantObjectTypeCodeRole"),
            "life_cycle": o.get("ParticipantObjectDataLifeCycle"),
            "id_type": _coded(o.find("ParticipantObjectIDTypeCode")),
            "name": name.text if name is not None else None,
            "query": decode_query(query.text or "") if query is not None else None,
            "details": {d.get("type") or "": decode_query(d.get("value"))
                        for d in o.iterfind("ParticipantObjectDetail")},
            "studies": [s.get("UID") for s in o.iterfind(
                "ParticipantObjectDescription/ParticipantObjectContainsStudy/StudyIDs")],
        })
    out["participant_objects"] = objects
    return out


def view_of(row: Any) -> RecordView:
    """A :class:`RecordView` of an ``audit_records`` row (ORM object or row mapping)."""
    return RecordView(
        id=row.id, received_at=row.received_at, transport=row.transport, peer=row.peer,
        hostname=row.hostname, source_id=row.source_id, event_time=row.event_time,
        event_id=row.event_id, action=row.action, outcome=row.outcome, validity=row.validity,
        reason=row.reason, hash=row.hash, detail=_detail(row.raw, row.validity))


def _terms(query: Select[Any], kind: str, values: Sequence[str]) -> Select[Any]:
    if not values:
        return query
    sub = select(AuditTerm.record_id).where(AuditTerm.kind == kind,
                                             AuditTerm.value.in_(list(values)))
    return query.where(AuditRecord.id.in_(sub))


def build(q: SearchQuery) -> Select[Any]:
    """The SELECT for ``q`` (newest first, ``q.limit`` rows)."""
    stmt: Select[Any] = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(q.limit)
    column = AuditRecord.event_time if q.on == "event" else AuditRecord.received_at
    if q.since is not None:
        stmt = stmt.where(column >= q.since)
    if q.until is not None:
        stmt = stmt.where(column < q.until)
    if q.after_id is not None:
        stmt = stmt.where(AuditRecord.id < q.after_id)
    # With a time range, the time index is the selective one: wrapping the low-cardinality
    # columns in a no-op expression keeps SQLite's planner from walking their index instead.
    ranged = q.since is not None or q.until is not None
    event_col: Any = AuditRecord.event_id.concat("") if ranged else AuditRecord.event_id
    outcome_col: Any = (AuditRecord.outcome + 0) if ranged else AuditRecord.outcome
    if q.event_ids:
        stmt = stmt.where(event_col.in_(list(q.event_ids)))
    if q.outcomes:
        stmt = stmt.where(outcome_col.in_(list(q.outcomes)))
        if not ranged and 0 not in q.outcomes:
            # the partial index on rare outcomes is usable only when the query states its
            # condition verbatim (SQLite's rule for partial indexes)
            stmt = stmt.where(text(f"audit_records.{FAILED_CONDITION}"))
    if q.validity:
        stmt = stmt.where(AuditRecord.validity.in_(list(q.validity)))
        if "valid" not in q.validity:
            stmt = stmt.where(text(f"audit_records.{NOT_VALID_CONDITION}"))
    if q.peers:
        stmt = stmt.where(AuditRecord.peer.in_(list(q.peers)))
    for kind, values in (("type", q.event_types), ("user", q.users), ("node", q.nodes),
                         ("patient", q.patients), ("study", q.studies)):
        stmt = _terms(stmt, kind, values)
    return stmt


def search(store: Store, q: SearchQuery) -> list[RecordView]:
    """Records matching every filter of ``q``, newest first (at most ``q.limit``)."""
    with store.read_session() as session:
        return [view_of(r) for r in session.scalars(build(q))]


def get_records(store: Store, ids: Sequence[int]) -> list[RecordView]:
    """The records with the given ids, in id order."""
    with store.read_session() as session:
        rows = session.scalars(select(AuditRecord).where(AuditRecord.id.in_(list(ids)))
                               .order_by(AuditRecord.id))
        return [view_of(r) for r in rows]
