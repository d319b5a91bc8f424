"""Fetch a study by DIMSE: C-FIND to list it, C-GET to retrieve it (PS3.4 Annex C, PS3.7 9.1.3).

Why C-GET and not C-MOVE: C-GET brings the instances back as C-STORE sub-operations **on the same
association** RadGuard opened (PS3.4 C.4.3), so

- no port listens on the station (a C-MOVE destination is an SCP anyone who knows its AE title can
  send to), and no firewall opening or host/port registration on the PACS is needed;
- with ``tls=1`` the images travel inside the TLS session RadGuard verified (PS3.15 B.12); a C-MOVE
  would arrive on a second association the PACS opens, which needs a server certificate on the
  station and its own TLS set-up;
- a sub-operation cannot come from anyone but the PACS asked.

The price is that each SOP class needs a presentation context with SCP/SCU Role Selection
(PS3.7 D.3.3.4) proposed up front; RadGuard learns the classes first:

1. association 1 (Study Root FIND): SERIES level for the study, then IMAGE level per series
   (hierarchical queries, PS3.4 C.4.1.3.1) give the SOP Instance and Class UIDs the PACS holds;
   none is "study not found";
2. association 2 (Study Root GET + one context per SOP class and transfer syntax, SCP role, table
   ``radguard/data/export/fetch-transfer-syntaxes.json``): a C-GET at STUDY level. Each C-STORE
   sub-operation's data set is written, unchanged, behind File Meta Information of RadGuard's own
   (PS3.10 7.1) into the staging :class:`Sink`; the bytes received on the association are counted
   per PDU and the association is aborted as soon as ``max_bytes`` is crossed or the time-out
   passes. Failed sub-operations, a failure status, or a listed instance that never came make the
   fetch :class:`FetchIncomplete`.

The PACS must let RadGuard's calling AE title retrieve (Orthanc: ``DicomModalities`` entry with
``AllowGet``, or ``DicomAlwaysAllowGet``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

from pydicom.dataset import Dataset

from radguard.dicomio.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from radguard.dimse import MAX_CONTEXTS, Peer, client_context, meaning, set_nodelay
from radguard.dimse.errors import TlsConfigError
from radguard.dimse.find import FIND_MODEL
from radguard.export.fetch_base import (
    FetchFailed,
    FetchIncomplete,
    FetchLimits,
    FetchTooLarge,
    Sink,
    SourceUnavailable,
    StudyNotFound,
)
from radguard.export.fetch_receiver import Receiver, valid_uid

__all__ = ["GET_MODEL", "fetch_study_dimse", "list_study", "transfer_syntaxes"]

GET_MODEL = "1.2.840.10008.5.1.4.1.2.2.3"
"""Study Root Query/Retrieve Information Model - GET (PS3.4 C.6.2.1.1)."""
UNCOMPRESSED = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]


@cache
def transfer_syntaxes() -> tuple[str, ...]:
    """Transfer syntaxes proposed for the sub-operations, most wanted first (data table)."""
    text = resources.files("radguard.data.export").joinpath("fetch-transfer-syntaxes.json")
    return tuple(uid for uid, _ in json.loads(text.read_text("utf-8"))["transfer_syntaxes"])


def _open(peer: Peer, limits: FetchLimits, contexts: list[Any], roles: list[Any],
          handlers: list[Any], study: str) -> Any:
    from pynetdicom import AE, evt

    ae = AE(ae_title=peer.calling_aet)
    ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    ae.acse_timeout = min(peer.timeouts["acse"], limits.connect_timeout)
    ae.dimse_timeout = max(peer.timeouts["dimse"], limits.connect_timeout)
    ae.network_timeout = max(peer.timeouts["network"], limits.connect_timeout)
    ae.requested_contexts = contexts
    label = f"PACS {peer.label}"
    connected = threading.Event()

    def opened(event: Any) -> None:
        connected.set()
        set_nodelay(event)

    try:
        tls_args = (client_context(peer.tls), peer.host) if peer.tls is not None else None
        assoc = ae.associate(peer.host, peer.port, ae_title=peer.called_aet, tls_args=tls_args,
                             ext_neg=roles or None,
                             evt_handlers=[(evt.EVT_CONN_OPEN, opened), *handlers])
    except TlsConfigError as exc:
        raise SourceUnavailable(f"{label}: {exc.message}", subject=f"study {study}",
                                remedy=exc.remedy) from exc
    except (OSError, ValueError) as exc:
        raise SourceUnavailable(f"cannot connect to {label}: {exc}", subject=f"study {study}",
                                remedy="check host, port and TLS settings of the profile and "
                                "that the PACS is up") from exc
    if not assoc.is_established:
        if not connected.is_set():
            raise SourceUnavailable(f"cannot connect to {label} (refused, unreachable or no "
                                    f"answer within {limits.connect_timeout:g} s)",
                                    subject=f"study {study}", remedy="check host and port of "
                                    "the profile and that the PACS is up")
        if assoc.is_rejected:
            why = "rejected the association"
            remedy = (f"register the calling AE title {peer.calling_aet!r} on the PACS and check "
                      f"the called AE title {peer.called_aet!r}")
        elif assoc.is_aborted:
            why = "aborted the association (TLS handshake or the PACS's policy)"
            remedy = "check tls=1, the CA and client certificate of the profile"
        else:
            why = "did not answer (unreachable or not DICOM)"
            remedy = "check host and port of the profile and that the PACS is up"
        raise SourceUnavailable(f"{label} {why}", subject=f"study {study}", remedy=remedy)
    return assoc


def _find(assoc: Any, query: Dataset, peer: Peer, study: str) -> Iterator[Dataset]:
    for status, ident in assoc.send_c_find(query, FIND_MODEL):
        code = int(status.get("Status", 0xC000)) if status else -1
        if code in (0xFF00, 0xFF01) and ident is not None:
            yield ident
        elif code == -1:
            raise SourceUnavailable(f"PACS {peer.label} ended the association during C-FIND",
                                    subject=f"study {study}", remedy="retry; check the PACS log")
        elif code != 0:
            raise SourceUnavailable(f"PACS {peer.label} refused the C-FIND: {code:#06x} "
                                    f"{meaning(code).text}", subject=f"study {study}",
                                    remedy="give RadGuard's AE title query rights on the PACS")


def list_study(peer: Peer, study: str, limits: FetchLimits) -> dict[str, str]:
    """SOP Instance UID -> SOP Class UID of every instance the PACS lists for ``study``.

    Raises
    ------
    StudyNotFound
        The PACS lists no instance.
    SourceUnavailable
        Unreachable, rejected, or C-FIND refused.
    FetchTooLarge
        More instances than ``max_instances``.
    """
    from pynetdicom.presentation import build_context

    assoc = _open(peer, limits, [build_context(FIND_MODEL, UNCOMPRESSED)], [], [], study)
    found: dict[str, str] = {}
    try:
        if not any(c.abstract_syntax == FIND_MODEL for c in assoc.accepted_contexts):
            raise SourceUnavailable(f"PACS {peer.label} does not accept Study Root C-FIND",
                                    subject=f"study {study}", remedy="use a DICOMweb profile, or "
                                    "allow queries for RadGuard's AE title on the PACS")
        q = Dataset()
        q.QueryRetrieveLevel = "SERIES"
        q.StudyInstanceUID = study
        q.SeriesInstanceUID = ""
        series = sorted({u for ident in _find(assoc, q, peer, study)
                         if (u := valid_uid(ident.get("SeriesInstanceUID")))})
        for uid in series:
            q = Dataset()
            q.QueryRetrieveLevel = "IMAGE"
            q.StudyInstanceUID = study
            q.SeriesInstanceUID = uid
            q.SOPInstanceUID = ""
            q.SOPClassUID = ""
            for ident in _find(assoc, q, peer, study):
                sop, cls = valid_uid(ident.get("SOPInstanceUID")), valid_uid(ident.get("SOPClassUID"))
                if sop and cls:
                    found[sop] = cls
                if len(found) > limits.max_instances:
                    raise FetchTooLarge(f"PACS {peer.label} lists more than max_instances = "
                                        f"{limits.max_instances} instances",
                                        subject=f"study {study}", remedy="raise max_instances "
                                        "in the [fetch] table of the config file")
    finally:
        if assoc.is_established:
            if sys.exc_info()[0] is None:
                assoc.release()
            else:
                assoc.abort()
    if not found:
        raise StudyNotFound(f"PACS {peer.label} holds no study with this Study Instance UID",
                            subject=f"study {study}",
                            remedy="check the UID (copy it from the PACS viewer) and the profile")
    return found


def plan_contexts(classes: set[str]) -> tuple[list[Any], list[Any]]:
    """Presentation contexts (GET + per class and transfer syntax) and SCP role items."""
    from pynetdicom import build_role
    from pynetdicom.presentation import build_context

    room = MAX_CONTEXTS - 1
    if len(classes) > room:
        raise FetchFailed(f"the study has {len(classes)} SOP classes; one association carries "
                          f"at most {room}", remedy="fetch it by DICOMweb instead")
    syntaxes = transfer_syntaxes()[:max(1, room // max(1, len(classes)))]
    contexts = [build_context(GET_MODEL, UNCOMPRESSED)]
    roles = []
    for cls in sorted(classes):
        contexts.extend(build_context(cls, [ts]) for ts in syntaxes)
        roles.append(build_role(cls, scp_role=True))
    return contexts, roles


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """pynetdicom logs connection and protocol errors itself; they are RadGuard's to report,
    once, naming the PACS and the remedy."""
    logger = logging.getLogger("pynetdicom")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def fetch_study_dimse(peer: Peer, study: str, sink: Sink, limits: FetchLimits,
                      seconds_left: float) -> dict[str, str]:
    """Retrieve ``study`` into ``sink`` by C-GET; return the C-FIND listing (SOP -> class).

    Raises a :class:`FetchFailed` subclass naming the PACS and the study on any failure.
    """
    with _quiet():
        return _fetch(peer, study, sink, limits, seconds_left)


def _fetch(peer: Peer, study: str, sink: Sink, limits: FetchLimits,
           seconds_left: float) -> dict[str, str]:
    from pynetdicom import evt

    sink.study = study
    listed = list_study(peer, study, limits)
    contexts, roles = plan_contexts(set(listed.values()))
    receiver = Receiver(sink, limits, peer.calling_aet)
    handlers = [(evt.EVT_C_STORE, receiver.on_store),
                (evt.EVT_DATA_RECV, receiver.on_data)]
    assoc = _open(peer, limits, contexts, roles, handlers, study)
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        assoc.abort()

    timer = threading.Timer(max(1.0, seconds_left), expire)
    timer.daemon = True
    timer.start()
    final: Dataset | None = None
    try:
        if not any(c.abstract_syntax == GET_MODEL for c in assoc.accepted_contexts):
            raise SourceUnavailable(f"PACS {peer.label} does not accept Study Root C-GET",
                                    subject=f"study {study}", remedy="use a DICOMweb profile, or "
                                    "enable C-GET for RadGuard's AE title on the PACS")
        q = Dataset()
        q.QueryRetrieveLevel = "STUDY"
        q.StudyInstanceUID = study
        for status, _ in assoc.send_c_get(q, GET_MODEL):
            if status and "Status" in status:
                final = status
            if receiver.error is not None:
                break
    finally:
        timer.cancel()
        if assoc.is_established:
            if receiver.error is None and sys.exc_info()[0] is None:
                assoc.release()
            else:  # stop the transfer now (bound crossed, Ctrl-C, error)
                assoc.abort()
    _judge(peer, study, listed, receiver, final, timed_out.is_set())
    return listed


def _judge(peer: Peer, study: str, listed: dict[str, str], receiver: Receiver,
           final: Dataset | None, timed_out: bool) -> None:
    where = f"PACS {peer.label}"
    if receiver.error is not None:
        raise receiver.error
    if timed_out:
        raise SourceUnavailable(f"{where}: the C-GET did not finish within the time-out",
                                subject=f"study {study}", remedy="raise timeout in the [fetch] "
                                "table of the config file, or export fewer studies at once")
    code = int(final.get("Status", 0xC000)) if final is not None else -1
    if code == -1 or code in (0xFF00, 0xFF01):
        raise SourceUnavailable(
            f"{where} ended the association before the C-GET finished, after "
            f"{len(receiver.got)} of {len(listed)} instances (a PACS that does not allow C-GET "
            f"for the calling AE title {peer.calling_aet!r} does this)", subject=f"study {study}",
            remedy=f"allow C-GET for {peer.calling_aet!r} on the PACS (Orthanc: AllowGet in "
            "DicomModalities), check the PACS log, or use the PACS's DICOMweb profile")
    failed = int(final.get("NumberOfFailedSuboperations", 0) or 0) if final is not None else 0
    missing = sorted(set(listed) - set(receiver.got))
    if code != 0 or failed or missing:
        status = meaning(code)
        raise FetchIncomplete(
            f"{where} sent {len(receiver.got)} of {len(listed)} instances (C-GET status "
            f"{code:#06x} {status.text}; {failed} failed sub-operation(s))",
            subject=f"study {study}",
            remedy="check that the PACS lets RadGuard's AE title retrieve (C-GET) and that it "
            "can send these SOP classes and transfer syntaxes; see the PACS log, then retry")
