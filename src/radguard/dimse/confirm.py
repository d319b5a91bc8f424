"""Batched arrival confirmation by C-FIND: many instances per query (PS3.4 C.2.2.2.2, C.4.1).

After a bulk C-STORE the importer asks which of the sent SOP Instance UIDs the peer holds. One query
per instance (or per study, when every file of a package is its own study) costs one round trip each;
:func:`held_instances` asks for up to :data:`UIDS_PER_QUERY` instances at once with List of UID
Matching on SOP Instance UID (PS3.4 C.2.2.2.2.2) at IMAGE level of the Study Root model:

- instances of one study are asked with that Study Instance UID (hierarchical form);
- instances of studies with few members each are grouped, Study Instance UID left universal.

Only UIDs that come back are "held"; an answer never makes an instance confirmed that was not listed
by the peer. A peer that refuses a list query, or answers it with nothing, is asked again one study
at a time (the form every Study Root SCP supports), so a strict peer costs speed, not correctness.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydicom.dataset import Dataset

from radguard.dimse.errors import AssociationFailed
from radguard.dimse.find import FIND_MODEL
from radguard.dimse.ident import top_level_value, uid_text
from radguard.dimse.scu import Association

__all__ = ["UIDS_PER_QUERY", "held_instances", "plan_queries"]

SOP_INSTANCE_UID = 0x00080018

UIDS_PER_QUERY = 100
"""SOP Instance UIDs per query: 100 x 64 characters stays far below the 64 KiB value limit."""


def plan_queries(wanted: Mapping[str, Sequence[str]],
                 per_query: int = UIDS_PER_QUERY) -> list[tuple[str, list[str]]]:
    """Group ``wanted`` (study UID -> SOP Instance UIDs) into queries of at most ``per_query``
    UIDs: (study UID or "" for universal, SOP Instance UIDs). Studies with at least half a query of
    instances get their own queries; the small ones share."""
    out: list[tuple[str, list[str]]] = []
    shared: list[str] = []
    for study in sorted(wanted):
        sops = list(dict.fromkeys(wanted[study]))
        if len(sops) * 2 >= per_query:
            out.extend((study, sops[i:i + per_query]) for i in range(0, len(sops), per_query))
        else:
            shared.extend(sops)
    out.extend(("", shared[i:i + per_query]) for i in range(0, len(shared), per_query))
    return out


def _sop_instance_uid(assoc: Association, data: bytes, implicit: bool) -> str | None:
    """SOP Instance UID (0008,0018) of an identifier: read directly (:mod:`radguard.dimse.ident`,
    ~20x cheaper than decoding it), or, when that walk cannot tell, from pydicom's decoding."""
    try:
        raw = top_level_value(data, implicit, SOP_INSTANCE_UID)
        if raw is not None:
            return uid_text(raw) or None
    except ValueError:
        pass
    uid = assoc.decode(data, implicit).get("SOPInstanceUID")
    return str(uid) if uid else None


def _query(assoc: Association, study: str, sops: Sequence[str]) -> set[str] | None:
    """The listed UIDs the peer holds, or ``None`` when it refused the query (status)."""
    q = Dataset()
    q.QueryRetrieveLevel = "IMAGE"
    q.StudyInstanceUID = study
    q.SeriesInstanceUID = ""
    q.SOPInstanceUID = list(sops) if len(sops) > 1 else (sops[0] if sops else "")
    found: set[str] = set()
    implicit, responses = assoc.find_raw(FIND_MODEL, q)
    for status, data in responses:
        if status.category == "pending" and data is not None:
            uid = _sop_instance_uid(assoc, data, implicit)
            if uid:
                found.add(uid)
        elif not status.ok:
            return None
    return found & set(sops) if sops else found


def held_instances(assoc: Association, wanted: Mapping[str, Sequence[str]]) -> set[str]:
    """The SOP Instance UIDs of ``wanted`` (study UID -> SOP Instance UIDs) the peer holds.

    Raises
    ------
    AssociationFailed
        The association failed, or the peer refused even the one-study query.
    """
    study_of = {sop: study for study, sops in wanted.items() for sop in sops}
    held: set[str] = set()
    retry: set[str] = set()
    for study, sops in plan_queries(wanted):
        got = _query(assoc, study, sops)
        if not got:  # refused, or nothing: ask the plain one-study form before calling it missing
            retry.update(study_of[s] for s in sops)
        else:
            held |= got
    for study in sorted(retry):
        got = _query(assoc, study, [])
        if got is None:
            raise AssociationFailed("C-FIND refused by the peer", subject=study,
                                    remedy="give the calling AE query rights on the PACS")
        held |= got & set(wanted[study])
    return held
