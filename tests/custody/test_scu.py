"""The synchronous requestor (radguard.dimse.scu) against DCMTK storescp (plain, small PDUs, TLS),
Orthanc (C-STORE, batched C-FIND confirmation) and scripted peers that reject or abort."""

from __future__ import annotations

import copy
import os
import socket
import struct
import threading
from collections.abc import Iterator

import pydicom
import pytest
from pydicom.filereader import read_file_meta_info
from pydicom.uid import generate_uid

from radguard.dimse import AssociationFailed, Peer, TlsOptions, open_association
from radguard.dimse.confirm import held_instances, plan_queries
from radguard.dimse.find import FIND_MODEL
from radguard.dimse.pdu import command, parse_associate_ac, parse_command
from radguard.dimse.scu import Association
from tests.custody.conftest import real_file
from tests.custody.pki import make_pki
from tests.support.peers import free_port, require, running, start_orthanc, start_storescp

FILES = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "rtdose.dcm"]
EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"


def _parts(name: str) -> tuple[str, str, str, bytes]:
    """(SOP class, SOP instance, transfer syntax, encoded data set) of a real file."""
    path = real_file(name)
    meta = read_file_meta_info(path)
    start = 132 + 12 + int(meta.FileMetaInformationGroupLength)
    return (str(meta.MediaStorageSOPClassUID), str(meta.MediaStorageSOPInstanceUID),
            str(meta.TransferSyntaxUID), path.read_bytes()[start:])


def _contexts(parts: list[tuple[str, str, str, bytes]]) -> list[tuple[str, list[str]]]:
    return [(sop, [ts]) for sop, _, ts, _ in parts] + [(FIND_MODEL, [EXPLICIT, IMPLICIT])]


def test_storescp_receives_the_exact_bytes_in_small_pdus(tmp_path, monkeypatch):
    """Given storescp with 4 KiB PDUs writing bit-preserving, when four real files of different
    transfer syntaxes are stored, then each arrives with exactly the data set bytes sent."""
    monkeypatch.setenv("PATH", f"/usr/bin:{os.environ['PATH']}")
    require("storescp")
    parts = [_parts(n) for n in FILES]
    with running(start_storescp(tmp_path / "rx", extra=["+B", "+xa", "-pdu", "4096"])) as scp:
        assoc = Association.open(Peer("127.0.0.1", scp.port, scp.aet), _contexts(parts))
        assert assoc.max_send == 4096
        for sop_class, sop, ts, data in parts:
            status = assoc.store(sop_class, sop, ts, data)
            assert status.code == 0x0000, status
        refused = assoc.store("1.2.840.10008.5.1.4.1.1.7", generate_uid(), EXPLICIT, b"")
        assert refused.code == 0x0122  # no context for it: refused without sending
        assoc.release()
        assert not assoc.established
    received = [p.read_bytes() for p in sorted((tmp_path / "rx").iterdir())]
    assert len(received) == len(parts)
    for _, _, _, data in parts:
        assert sum(r.endswith(data) for r in received) == 1


def test_tls_bcp195_needs_the_client_certificate(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"/usr/bin:{os.environ['PATH']}")
    require("storescp")
    pki = make_pki(tmp_path / "pki")
    extra = ["+tls", str(pki["server_key"]), str(pki["server_cert"]), "+cf", str(pki["ca"]),
             "--profile-bcp195", "--require-peer-cert", "+B"]
    sop_class, sop, ts, data = _parts("CT_small.dcm")
    with running(start_storescp(tmp_path / "rx", extra=extra)) as scp:
        anonymous = Peer("127.0.0.1", scp.port, scp.aet, tls=TlsOptions(ca=str(pki["ca"])),
                         timeouts={"acse": 5.0, "dimse": 5.0, "network": 5.0})
        with pytest.raises(AssociationFailed):
            a = Association.open(anonymous, [(sop_class, [ts])])
            a.store(sop_class, sop, ts, data)  # TLS 1.3 may report the refusal only here
        tls = TlsOptions(ca=str(pki["ca"]), cert=str(pki["client_cert"]),
                         key=str(pki["client_key"]))
        assoc = Association.open(Peer("127.0.0.1", scp.port, scp.aet, tls=tls),
                                 [(sop_class, [ts])])
        assert assoc.store(sop_class, sop, ts, data).ok
        assoc.release()
    received = sorted((tmp_path / "rx").iterdir())
    assert len(received) == 1 and received[0].read_bytes().endswith(data)


def _instances(study_sizes: list[int]) -> Iterator[tuple[str, str, bytes]]:
    """(study UID, SOP instance UID, data set bytes) of CT_small copies in new studies."""
    base = pydicom.dcmread(real_file("CT_small.dcm"))
    for size in study_sizes:
        study = generate_uid()
        for _ in range(size):
            ds = copy.deepcopy(base)
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (
                study, generate_uid(), generate_uid())
            fp = pydicom.filebase.DicomBytesIO()
            fp.is_little_endian, fp.is_implicit_VR = True, False
            pydicom.filewriter.write_dataset(fp, ds)
            yield study, str(ds.SOPInstanceUID), fp.getvalue()


def test_orthanc_holds_what_was_stored_and_batched_find_confirms_exactly_that(tmp_path):
    """Given one study of 60 instances and 5 one-instance studies stored into Orthanc, when
    held_instances asks for them plus an instance never sent, then exactly the stored ones are
    held (list queries per big study, shared queries for the small ones)."""
    sop_class = "1.2.840.10008.5.1.4.1.1.2"
    items = list(_instances([60, 1, 1, 1, 1, 1]))
    with running(start_orthanc(tmp_path / "o", dicomweb=False,
                               overrides={"DicomAlwaysAllowFind": True})) as orthanc:
        peer = Peer("127.0.0.1", orthanc.dicom_port, orthanc.aet)
        assoc = Association.open(peer, [(sop_class, [EXPLICIT]), (FIND_MODEL, [EXPLICIT])])
        assert assoc.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)  # Nagle off
        other = open_association(peer, [(FIND_MODEL, [EXPLICIT])])  # the pynetdicom path too
        assert other.dul.socket.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        other.release()
        for _, sop, data in items:
            assert assoc.store(sop_class, sop, EXPLICIT, data).ok
        wanted: dict[str, list[str]] = {}
        for study, sop, _ in items:
            wanted.setdefault(study, []).append(sop)
        ghost_study, ghost = generate_uid(), generate_uid()
        wanted[ghost_study] = [ghost]
        plan = plan_queries(wanted)
        assert [len(s) for st, s in plan if st] == [60] and [len(s) for st, s in plan if not st] \
            == [6]
        held = held_instances(assoc, wanted)
        # a list query that finds nothing is asked again in the one-study form: still nothing
        assert held_instances(assoc, {ghost_study: [ghost]}) == set()
        assoc.release()
        assert held == {sop for _, sop, _ in items}
        assert int(orthanc.rest("/statistics")["CountInstances"]) == 65


def test_nothing_listening_is_an_association_failure():
    with pytest.raises(AssociationFailed, match="cannot connect"):
        Association.open(Peer("127.0.0.1", free_port(), "NOBODY"), [(FIND_MODEL, [EXPLICIT])])


def _pdu(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBI", kind, 0, len(body)) + body


def _item(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(body)) + body


def _ac(ts: str) -> bytes:
    """An A-ASSOCIATE-AC accepting context 1 with ``ts``, Maximum Length 16384 (PS3.8 9.3.3)."""
    body = struct.pack(">HH", 1, 0) + b"PARROT".ljust(16) + b"RADGUARD".ljust(16) + bytes(32)
    body += _item(0x10, b"1.2.840.10008.3.1.1.1")
    body += _item(0x21, bytes([1, 0, 0, 0]) + _item(0x40, ts.encode()))
    body += _item(0x50, _item(0x51, struct.pack(">I", 16384)))
    return _pdu(0x02, body)


def _parrot(on_associate: bytes, after_message: bytes | None = None) -> int:
    """A scripted peer: answers the A-ASSOCIATE-RQ with ``on_associate``; then, if given, reads
    P-DATA-TF PDUs up to the last fragment of a data set and answers ``after_message``."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def read_pdu(conn: socket.socket) -> tuple[int, bytes]:
        head = conn.recv(6, socket.MSG_WAITALL)
        return head[0], conn.recv(struct.unpack(">I", head[2:6])[0], socket.MSG_WAITALL)

    def serve() -> None:
        conn, _ = srv.accept()
        with conn, srv:
            read_pdu(conn)
            conn.sendall(on_associate)
            if after_message is None:
                return
            while True:
                kind, body = read_pdu(conn)
                if kind == 0x04 and body[5] & 0x03 == 0x02:  # data PDV, last fragment
                    break
            conn.sendall(after_message)
            conn.recv(64)  # let the requestor read the abort before the socket closes

    threading.Thread(target=serve, daemon=True).start()
    return int(srv.getsockname()[1])


def test_a_rejecting_peer_and_an_aborting_peer_are_association_failures():
    rj = _pdu(0x03, bytes([0, 1, 1, 7]))  # rejected-permanent, service user, called AE unknown
    port = _parrot(rj)
    with pytest.raises(AssociationFailed, match="rejected"):
        Association.open(Peer("127.0.0.1", port, "PARROT"), [(FIND_MODEL, [EXPLICIT])])
    sop_class, sop, ts, data = _parts("CT_small.dcm")
    port = _parrot(_ac(ts), after_message=_pdu(0x07, bytes(4)))
    assoc = Association.open(Peer("127.0.0.1", port, "PARROT"), [(sop_class, [ts])])
    assert assoc.contexts == {(sop_class, ts): 1} and assoc.max_send == 16384
    with pytest.raises(AssociationFailed, match="A-ABORT"):
        assoc.store(sop_class, sop, ts, data)
    assert not assoc.established


def test_command_sets_round_trip_and_associate_ac_is_read():
    rq = command({0x0002: "1.2.840.10008.5.1.4.1.1.2", 0x0100: 0x0001, 0x0110: 7, 0x0700: 0,
                  0x0800: 0x0001, 0x1000: "1.2.3"})
    group_length = struct.unpack_from("<I", rq, 8)[0]
    assert group_length == len(rq) - 12  # (0000,0000) counts what follows it (PS3.7 E.1)
    back = parse_command(rq)
    assert back[0x0100] == 1 and back[0x0110] == 7 and back[0x1000] == "1.2.3"
    accepted = parse_associate_ac(_ac(EXPLICIT)[6:])
    assert accepted.contexts == {1: EXPLICIT} and accepted.max_send == 16384
    with pytest.raises(ValueError):
        parse_command(b"\x08\x00\x18\x00\x10\x00\x00\x00abc")  # not group 0000, truncated
