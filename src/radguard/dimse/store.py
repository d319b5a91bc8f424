"""C-STORE SCU of already-encoded data sets (PS3.7 9.1.1, PS3.4 Annex B).

:func:`send_encoded` sends bytes that were verified against a signed manifest exactly as they are:
no decode, no re-encode, so what reaches the PACS is what was hashed. It builds the C-STORE request
like :meth:`pynetdicom.association.Association.send_c_store` does for a file path (pynetdicom 3.0),
from bytes held in memory instead of a path that could change between check and send.
"""

from __future__ import annotations

import io
import time
from typing import Any

from pynetdicom.dimse_primitives import C_STORE

from radguard.dimse.errors import AssociationFailed
from radguard.dimse.status import StatusMeaning, meaning

__all__ = ["accepted_context", "send_encoded"]


def accepted_context(assoc: Any, sop_class: str, transfer_syntax: str) -> Any | None:
    """The accepted presentation context for (SOP class, transfer syntax), or ``None``."""
    for cx in assoc.accepted_contexts:
        if cx.abstract_syntax == sop_class and cx.transfer_syntax[0] == transfer_syntax:
            return cx
    return None


def send_encoded(assoc: Any, sop_class: str, sop_instance: str, transfer_syntax: str,
                 dataset: bytes, msg_id: int = 1) -> StatusMeaning:
    """Send one C-STORE with ``dataset`` (the encoded data set, no File Meta) and return the status.

    A peer that does not accept the context gives status 0x0122 (SOP class not supported) without
    anything being sent.

    Raises
    ------
    AssociationFailed
        The association was aborted or the peer did not answer within the DIMSE timeout.
    """
    cx = accepted_context(assoc, sop_class, transfer_syntax)
    if cx is None:
        return StatusMeaning(0x0122, "failure", "Refused: the peer did not accept this SOP class "
                             "and transfer syntax (presentation context)")
    if not assoc.is_established:
        raise AssociationFailed("association no longer established", subject=str(assoc))
    req = C_STORE()
    req.MessageID = msg_id
    req.Priority = 2
    req.AffectedSOPClassUID = sop_class
    req.AffectedSOPInstanceUID = sop_instance
    req.DataSet = io.BytesIO(dataset)
    assoc._reactor_checkpoint.clear()  # as send_c_store: pause the reactor while we wait
    try:
        while not assoc._is_paused:
            time.sleep(0.0001)
        assoc.dimse.send_msg(req, cx.context_id)
        _, rsp = assoc.dimse.get_msg(block=True)
    finally:
        assoc._reactor_checkpoint.set()
    if rsp is None:
        assoc.abort()
        raise AssociationFailed("no C-STORE response within the DIMSE timeout; association "
                                "aborted", subject=sop_instance,
                                remedy="run the import again: it resumes where it stopped")
    status = getattr(rsp, "Status", None)
    if status is None:
        raise AssociationFailed("C-STORE response without a status", subject=sop_instance)
    return meaning(int(status))
