"""DIMSE operations of the assessment over one pynetdicom association (PS3.4, PS3.7 section 9).

:func:`dimse_session` opens ONE association as an unknown (or spoofed) caller and runs the asked
operations in order, each proving one thing without taking data away:

- ``echo``: C-ECHO status (PS3.7 9.1.5);
- ``find``: C-FIND at STUDY level (Study Root, then Patient Root), asking only for Study Instance UID;
  at the first match it sends C-CANCEL and keeps only the count and an HMAC-SHA256 of the UID under
  the installation's salt: never a name, ID or date (DESIGN invariant 4);
- ``store`` (intrusive): C-STORE of :func:`radguard.assess.testobject.build` (labelled test object);
- ``get`` (intrusive): C-GET of the test object (or the matched study), instances received are
  counted and dropped;
- ``move`` (intrusive): C-MOVE to a random AE title that RadGuard itself listens on
  (:class:`MoveListener`); what arrives is counted and dropped.

pynetdicom's logging is silenced by the caller (:func:`radguard.assess.runner.quiet_logger`);
``TCP_NODELAY`` is set as soon as each association's socket opens. This module (and so pynetdicom
and pydicom) is imported only when a session is made: discovery does not need it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt

from radguard.assess import testobject
from radguard.assess.pdu import random_aet

__all__ = ["MoveListener", "SessionResult", "dimse_session", "random_aet",
           "random_uid"]

VERIFICATION = "1.2.840.10008.1.1"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
PATIENT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
_MODEL_NAMES = {STUDY_FIND: "Study Root Q/R FIND", PATIENT_FIND: "Patient Root Q/R FIND"}
_FIND_MODELS = (STUDY_FIND, PATIENT_FIND)
_GET_STORAGE = ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.7",
                "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1",
                "1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.2.1",
                "1.2.840.10008.5.1.4.1.1.4.1")
"""CT, MR, SC, CR, DX, US, Enhanced CT, Enhanced MR Image Storage (PS3.4 B.5)."""
_TS = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")



def random_uid() -> str:
    """A UID under 2.25 (PS3.5 B.2) that exists nowhere: retrieving it moves no data."""
    return f"2.25.{int.from_bytes(secrets.token_bytes(15), 'big')}"


def _nodelay(event: Any) -> None:
    with contextlib.suppress(AttributeError, OSError):
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(frozen=True, slots=True)
class SessionResult:
    """Outcome of one DIMSE session; statuses are DIMSE status codes (``None``: not attempted)."""

    association: str
    reason: str = ""
    echo: int | None = None
    find_status: int | None = None
    find_model: str = ""
    find_matches: int = 0
    find_hash: str = ""
    store_status: int | None = None
    store_uids: dict[str, str] = field(default_factory=dict)
    getprobe_status: int | None = None
    get_status: int | None = None
    get_received: int = 0
    move_status: int | None = None
    move_received: int = 0
    errors: tuple[str, ...] = ()


class MoveListener:
    """A storage SCP RadGuard runs on itself as a C-MOVE destination; it keeps nothing."""

    def __init__(self, bind: str, timeout: float, port: int = 0) -> None:
        self.aet = random_aet("RGMV")
        self.received = 0
        ae = AE(ae_title=self.aet)
        ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = timeout
        for cls in _GET_STORAGE:
            ae.add_supported_context(cls, _TS)
        ae.require_called_aet = True
        server = ae.start_server((bind, port), block=False, evt_handlers=[
            (evt.EVT_C_STORE, self._on_store), (evt.EVT_CONN_OPEN, _nodelay)])
        assert server is not None
        self._server = server
        self.port = int(server.server_address[1])

    def _on_store(self, event: Any) -> int:
        self.received += 1  # the data set is never decoded nor written
        return 0x0000

    def close(self) -> None:
        self._server.shutdown()


def _status(ds: Dataset | None) -> int | None:
    return int(ds.Status) if ds is not None and "Status" in ds else None


def _salted(salt: bytes, value: str) -> str:
    return hmac.new(salt, value.encode("ascii", "replace"), hashlib.sha256).hexdigest()[:32]


def _find(assoc: Any, salt: bytes) -> tuple[int | None, str, int, str, str | None]:
    """(final status, model, matches, salted hash, study uid kept in memory only)."""
    for model in _FIND_MODELS:
        if not any(c.abstract_syntax == model and c.result == 0x00
                   for c in assoc.accepted_contexts):
            continue
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = ""
        if model == PATIENT_FIND:
            query.PatientID = ""  # required unique key above STUDY; hashed, never kept
        matches, digest, status, uid = 0, "", None, None
        cancelled = False
        for rsp, ident in assoc.send_c_find(query, model):
            status = _status(rsp)
            if status in (0xFF00, 0xFF01) and not cancelled:
                matches = 1
                uid = str(getattr(ident, "StudyInstanceUID", "") or "") if ident else ""
                digest = _salted(salt, uid)
                with contextlib.suppress(Exception):
                    assoc.send_c_cancel(1, query_model=model)
                cancelled = True
            if status is None or status not in (0xFF00, 0xFF01):
                break
        return status, _MODEL_NAMES[model], matches, digest, uid or None
    return None, "", 0, "", None


def _retrieve_query(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    return ds


def _retrieve(assoc: Any, study_uid: str, move_aet: str | None) -> int | None:
    """C-GET (``move_aet`` None) or C-MOVE of one study; the final status."""
    final = None
    if move_aet is None:
        responses = assoc.send_c_get(_retrieve_query(study_uid),
                                     STUDY_GET)
    else:
        responses = assoc.send_c_move(_retrieve_query(study_uid), move_aet,
                                      STUDY_MOVE)
    for rsp, _ in responses:
        final = _status(rsp) if rsp is not None else final
    return final


def dimse_session(host: str, port: int, *, called: str, calling: str, timeout: float,
                  ops: tuple[str, ...], salt: bytes, tls: ssl.SSLContext | None = None,
                  move_bind: str | None = None, move_port: int = 0,
                  connect_timeout: float | None = None) -> SessionResult:
    """Run ``ops`` (echo, find, store, get, move) in one association; see the module docstring.

    ``connect_timeout`` bounds the TCP connection (default ``timeout``); ``timeout`` the
    association answer and each DIMSE response."""
    ae = AE(ae_title=calling)
    ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = timeout
    ae.connection_timeout = timeout if connect_timeout is None else connect_timeout
    ae.add_requested_context(VERIFICATION, _TS)
    for model in (*_FIND_MODELS, STUDY_MOVE,
                  STUDY_GET):
        ae.add_requested_context(model, _TS)
    roles: list[Any] = []
    if "get" in ops or "store" in ops:
        for cls in _GET_STORAGE:
            ae.add_requested_context(cls, _TS)
            if "get" in ops:
                roles.append(build_role(cls, scu_role=True, scp_role=True))
    received = {"get": 0}

    def on_get_store(event: Any) -> int:
        received["get"] += 1  # dropped: nothing received is kept
        return 0x0000

    errors: list[str] = []
    handlers: list[Any] = [(evt.EVT_CONN_OPEN, _nodelay), (evt.EVT_C_STORE, on_get_store)]
    state: dict[str, Any] = {"assoc": None, "opened": 0}

    def live() -> Any:
        """The current association, re-opened when the peer dropped it after a refusal (some
        peers, e.g. Orthanc, abort on a refused C-FIND); at most one open at a time."""
        assoc = state["assoc"]
        if assoc is not None and assoc.is_established:
            return assoc
        if state["opened"] >= len(ops) + 1:
            return None
        state["opened"] += 1
        assoc = ae.associate(host, port, ae_title=called, ext_neg=roles or None,
                             tls_args=(tls, "") if tls is not None else None,
                             evt_handlers=handlers)
        state["assoc"] = assoc
        return assoc if assoc.is_established else None

    first = live()
    if first is None:
        assoc = state["assoc"]
        kind = "reject" if assoc is not None and assoc.is_rejected else \
            "abort" if assoc is not None and assoc.is_aborted else "failed"
        return SessionResult(kind, reason=kind)
    values: dict[str, Any] = {}
    uid: str | None = None
    def run_op(op: str, assoc: Any) -> int | None:
        nonlocal uid
        status: int | None = None
        if op == "echo":
            status = values["echo"] = _status(assoc.send_c_echo())
        elif op == "find":
            status, model, matches, digest, uid = _find(assoc, salt)
            values.update(find_status=status, find_model=model, find_matches=matches,
                          find_hash=digest)
        elif op == "getprobe":
            status = values["getprobe_status"] = _retrieve(assoc, random_uid(), None)
        elif op == "store":
            ds, uids = testobject.build()
            status = values["store_status"] = _status(assoc.send_c_store(ds))
            values["store_uids"] = uids
            if status == 0x0000:
                uid = uids["study"]
        elif op == "get" and uid:
            status = _retrieve(assoc, uid, None)
            values.update(get_status=status, get_received=received["get"])
        elif op == "move" and uid and move_bind:
            listener = MoveListener(move_bind, timeout, move_port)
            try:
                status = _retrieve(assoc, uid, listener.aet)
                values.update(move_status=status, move_received=listener.received)
            finally:
                listener.close()
        else:
            return 0
        return status

    try:
        for op in ops:
            for _try in range(2):  # the peer may drop the association just after a refusal
                assoc = live()
                if assoc is None:
                    errors.append(f"{op}: association could not be re-opened")
                    break
                try:
                    if run_op(op, assoc) is None and assoc.is_established:
                        assoc.abort()  # no status: the peer is dropping it; start afresh
                    break
                except RuntimeError as exc:
                    if _try:
                        errors.append(f"{op}: {exc}")
                except ValueError as exc:  # no accepted context for this operation
                    errors.append(f"{op}: {exc}")
                    break
    except (RuntimeError, ValueError, OSError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        assoc = state["assoc"]
        if assoc is not None and assoc.is_established:
            assoc.release()
    return SessionResult("accept", errors=tuple(errors), **values)
