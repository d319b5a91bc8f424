"""C-FIND SCU to confirm what a peer holds (PS3.4 C.4.1; Study Root, IMAGE level).

Used after a C-STORE to check every instance arrived: one query per study returns the SOP Instance
UIDs the peer has. Only UIDs are asked for and kept (no patient attributes).
"""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset

from radguard.dimse.errors import AssociationFailed
from radguard.dimse.status import meaning

__all__ = ["FIND_MODEL", "instances_in_study"]

FIND_MODEL = "1.2.840.10008.5.1.4.1.2.2.1"
"""Study Root Query/Retrieve Information Model - FIND (PS3.4 C.6.2)."""


def instances_in_study(assoc: Any, study_uid: str, series_uid: str | None = None) -> set[str]:
    """SOP Instance UIDs the peer holds for ``study_uid`` (optionally one series).

    Raises
    ------
    AssociationFailed
        The query failed (status) or the association went away.
    """
    if not any(cx.abstract_syntax == FIND_MODEL for cx in assoc.accepted_contexts):
        raise AssociationFailed("the peer does not accept C-FIND (Study Root) from this AE, so "
                                "arrival cannot be confirmed", subject=study_uid,
                                remedy="allow queries for the calling AE, or check the PACS by hand")
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID = study_uid
    query.SeriesInstanceUID = series_uid or ""
    query.SOPInstanceUID = ""
    found: set[str] = set()
    for status, identifier in assoc.send_c_find(query, FIND_MODEL):
        if not status:
            raise AssociationFailed("C-FIND got no response (association aborted: the peer may "
                                    "not allow queries from this calling AE title)",
                                    subject=study_uid,
                                    remedy="allow C-FIND for the calling AE on the PACS (Orthanc: "
                                    "DicomAlwaysAllowFind or a DicomModalities entry)")
        m = meaning(int(status.Status))
        if m.category == "pending" and identifier is not None:
            uid = identifier.get("SOPInstanceUID")
            if uid:
                found.add(str(uid))
        elif not m.ok:
            raise AssociationFailed(f"C-FIND refused: {m}", subject=study_uid,
                                    remedy="give the calling AE query rights on the PACS")
    return found
