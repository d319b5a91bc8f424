"""Receiving C-GET sub-operations (PS3.4 C.4.3.3): each C-STORE data set, unchanged, behind File
Meta Information of RadGuard's own (PS3.10 7.1), into the staging :class:`Sink`.

UIDs of the request are checked (digits and dots, at most 64) before they go into the File Meta
Information; a sub-operation that cannot be stored is answered with a failure status, never with
success. The bytes received on the association are counted per PDU so that an instance larger
than the whole budget stops the association before the sub-operation completes.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID

from radguard.dicomio.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from radguard.export.fetch_base import FetchFailed, FetchLimits, Sink

__all__ = ["Receiver", "valid_uid"]

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def valid_uid(value: Any) -> str:
    """``value`` as a UID string, or "" when it is not a syntactically valid UID."""
    text = str(value or "")
    return text if len(text) <= 64 and _UID.match(text) else ""


class Receiver:
    """EVT_C_STORE / EVT_DATA_RECV handlers of one C-GET (run in pynetdicom's thread).

    ``got`` maps each stored SOP Instance UID to its staging file name; ``error`` is the first
    failure (bound crossed, staging not writable), which the caller raises after aborting."""

    def __init__(self, sink: Sink, limits: FetchLimits, calling_aet: str):
        self.sink = sink
        self.limits = limits
        self.aet = calling_aet
        self.received = sink.bytes  # bytes of earlier studies count against the same bound
        self.error: FetchFailed | None = None
        self.got: dict[str, str] = {}

    @staticmethod
    def _abort(assoc: Any) -> None:
        """Abort from another thread: an abort inside pynetdicom's handler thread would wait for
        the DIMSE time-out. Used only when the bytes received cross the bound by 16 MiB (one
        instance larger than the whole budget: the per-instance check never got to run)."""
        threading.Thread(target=assoc.abort, daemon=True).start()

    def on_data(self, event: Any) -> None:
        self.received += len(event.data)
        if self.received > self.limits.max_bytes + 16 * 1024**2 and self.error is None:
            self.error = self.sink.too_large(f"max_bytes = {self.limits.max_bytes:,}")
            self._abort(event.assoc)

    def on_store(self, event: Any) -> int:
        if self.error is not None:
            return 0xA700
        try:
            req = event.request
            sop, cls = valid_uid(req.AffectedSOPInstanceUID), valid_uid(req.AffectedSOPClassUID)
            if not sop or not cls:
                return 0xA900  # data set does not match SOP class
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = UID(cls)
            meta.MediaStorageSOPInstanceUID = UID(sop)
            meta.TransferSyntaxUID = UID(str(event.context.transfer_syntax))
            meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
            meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
            meta.SourceApplicationEntityTitle = self.aet
            head = DicomBytesIO()
            head.write(b"\x00" * 128 + b"DICM")
            write_file_meta_info(head, meta, enforce_standard=True)
            path = self.sink.put(head.getvalue() + event.encoded_dataset(include_meta=False))
            self.got[sop] = path.name
            return 0x0000
        except FetchFailed as exc:  # refused here; the C-GET loop aborts at the next response
            self.error = exc
            return 0xA700
        except OSError as exc:
            self.error = FetchFailed(f"cannot write a fetched instance to the staging folder: "
                                     f"{exc.strerror}", subject=f"study {self.sink.study}",
                                     remedy="free space in the RadGuard home (fetch-staging)")
            return 0xA700
        except Exception:  # a handler error must never pass as success
            return 0xC211
