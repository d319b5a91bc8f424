"""Senders: DIMSE C-STORE (+ C-FIND confirmation) and DICOMweb STOW-RS (+ QIDO-RS confirmation).

:class:`DimseSender` sends over ``lanes`` associations in parallel (:mod:`radguard.dimse.scu`: one
blocking socket per association, TCP_NODELAY, TLS per PS3.15 B.12), each proposing exactly the
(SOP class, transfer syntax) pairs of the package plus Study Root FIND. Extra associations the peer
refuses are not an error: the sender goes on with those it got (a PACS may limit associations per
AE). Confirmation asks many instances per C-FIND (:func:`radguard.dimse.confirm.held_instances`).
:class:`WebSender` POSTs ``multipart/related; type="application/dicom"`` batches to
``{base}/studies`` (PS3.18 10.5) and reads the per-instance result from the response's Referenced
SOP Sequence (0008,1199) and Failed SOP Sequence (0008,1198) with Failure Reason (0008,1197);
QIDO-RS ``{base}/studies/{uid}/instances`` (PS3.18 10.6) lists what the server holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from radguard.dimse import AssociationFailed, Peer, StatusMeaning, meaning
from radguard.dimse.confirm import held_instances
from radguard.dimse.find import FIND_MODEL
from radguard.dimse.scu import Association
from radguard.importer.destination import WebDestination
from radguard.importer.errors import DestinationUnavailable
from radguard.importer.interface import Outgoing

__all__ = ["DimseSender", "WebSender"]

UNCOMPRESSED = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
MAX_LANES = 8


class DimseSender:
    """C-STORE over up to ``lanes`` associations; see the module docstring. Lane ``k`` is used by
    one thread at a time."""

    def __init__(self, peer: Peer, pairs: Iterable[tuple[str, str]], lanes: int = 2):
        self.peer = peer
        self.label = f"dimse://{peer.called_aet}@{peer.host}:{peer.port}"
        contexts: list[tuple[str, list[str]]] = [(sop, [ts]) for sop, ts in sorted(set(pairs))]
        contexts.append((FIND_MODEL, list(UNCOMPRESSED)))
        self.contexts = contexts
        self.assocs: list[Association | None] = [None] * max(1, min(lanes, MAX_LANES))
        self.side: Association | None = None  # confirmation while sending (its own thread)

    @property
    def lanes(self) -> int:
        return len(self.assocs)

    def open(self) -> None:
        """Open the first association (its failure is the destination's failure) and as many of
        the others as the peer grants; lanes it refuses are dropped."""
        self._lane(0)
        for k in range(1, self.lanes):
            try:
                self._lane(k)
            except DestinationUnavailable:
                self.assocs = self.assocs[:k]
                break

    def _lane(self, k: int) -> Association:
        assoc = self.assocs[k]
        if assoc is None or not assoc.established:
            try:
                assoc = Association.open(self.peer, self.contexts)
            except AssociationFailed as exc:
                raise DestinationUnavailable(exc.message, subject=exc.subject,
                                             remedy=exc.remedy) from exc
            self.assocs[k] = assoc
        return assoc

    def send(self, batch: list[Outgoing], lane: int = 0) -> list[StatusMeaning]:
        """C-STORE each instance on ``lane``; an association lost mid-way is reopened once per
        instance (the instance is sent again: a PACS stores one SOP Instance UID once)."""
        results = []
        for item in batch:
            for attempt in (0, 1):
                try:
                    results.append(self._lane(lane).store(item.sop_class_uid,
                                                          item.sop_instance_uid,
                                                          item.transfer_syntax, item.dataset))
                    break
                except AssociationFailed as exc:
                    self.assocs[lane] = None
                    if attempt:
                        raise DestinationUnavailable(
                            f"{exc.message} while sending", subject=self.label,
                            remedy="run the import again when the PACS is back; it sends only "
                            "what is not confirmed") from exc
        return results

    def held(self, wanted: Mapping[str, Sequence[str]]) -> set[str]:
        """Which SOP Instance UIDs of ``wanted`` (study -> UIDs) the peer holds (C-FIND)."""
        for attempt in (0, 1):
            try:
                return held_instances(self._lane(0), wanted)
            except AssociationFailed as exc:
                self.assocs[0] = None
                if attempt or "C-FIND" in exc.message:
                    raise DestinationUnavailable(exc.message, subject=self.label,
                                                 remedy=exc.remedy) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def side_held(self, wanted: Mapping[str, Sequence[str]]) -> set[str]:
        """:meth:`held` on a separate association, for the background confirmer's thread.

        Raises
        ------
        AssociationFailed
            The association could not be opened or failed (the caller gives up on it).
        """
        if self.side is None or not self.side.established:
            self.side = Association.open(self.peer, self.contexts)
        return held_instances(self.side, wanted)

    def close(self) -> None:
        if self.side is not None:
            self.side.release()
            self.side = None
        for k, assoc in enumerate(self.assocs):
            if assoc is not None:
                assoc.release()
            self.assocs[k] = None


def _sop_uids(items: Any, tag: str) -> list[tuple[str, int | None]]:
    out = []
    for item in items if isinstance(items, list) else []:
        uid = (item.get("00081155", {}).get("Value") or [None])[0]
        reason = (item.get("00081197", {}).get("Value") or [None])[0] if tag == "failed" else None
        if uid:
            out.append((str(uid), None if reason is None else int(reason)))
    return out


class WebSender:
    """STOW-RS / QIDO-RS client; see the module docstring."""

    lanes = 1

    def __init__(self, dest: WebDestination, timeout: float = 120.0):
        self.dest = dest
        self.label = dest.base_url
        auth: Any = None
        headers = {"Accept": "application/dicom+json"}
        if dest.token:
            headers["Authorization"] = f"Bearer {dest.token}"
        elif dest.username:
            auth = httpx.BasicAuth(dest.username, dest.password or "")
        self.client = httpx.Client(base_url=dest.base_url, auth=auth, headers=headers,
                                   verify=dest.ca or True, timeout=timeout)

    def open(self) -> None:
        return None

    def send(self, batch: list[Outgoing], lane: int = 0) -> list[StatusMeaning]:
        boundary = uuid.uuid4().hex
        parts = []
        for item in batch:
            parts.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
            parts.append(item.part10)
            parts.append(b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        ctype = f'multipart/related; type="application/dicom"; boundary={boundary}'
        try:
            r = self.client.post("/studies", content=b"".join(parts),
                                 headers={"Content-Type": ctype})
        except httpx.HTTPError as exc:
            raise DestinationUnavailable(f"STOW-RS request failed: {exc}", subject=self.label,
                                         remedy="run the import again when the server is back"
                                         ) from exc
        if r.status_code in (401, 403):
            raise DestinationUnavailable(f"STOW-RS refused with HTTP {r.status_code}",
                                         subject=self.label, remedy="check the credentials")
        try:
            body = r.json() if r.content else {}
        except ValueError:
            body = {}
        body = body[0] if isinstance(body, list) and body else body
        ok = {u for u, _ in _sop_uids(body.get("00081199", {}).get("Value"), "ok")} \
            if isinstance(body, dict) else set()
        failed = dict(_sop_uids(body.get("00081198", {}).get("Value"), "failed")) \
            if isinstance(body, dict) else {}
        results = []
        for item in batch:
            if item.sop_instance_uid in failed:
                results.append(meaning(failed[item.sop_instance_uid] or 0x0110))
            elif item.sop_instance_uid in ok or (r.is_success and not body):
                results.append(meaning(0x0000))
            else:
                results.append(StatusMeaning(0x0110, "failure",
                                             f"STOW-RS HTTP {r.status_code}: not stored"))
        return results

    def held(self, wanted: Mapping[str, Sequence[str]]) -> set[str]:
        """Which SOP Instance UIDs of ``wanted`` (study -> UIDs) the server holds (QIDO-RS)."""
        held: set[str] = set()
        for study, sops in sorted(wanted.items()):
            held |= self._study(study) & set(sops)
        return held

    def _study(self, study_uid: str) -> set[str]:
        try:
            r = self.client.get(f"/studies/{study_uid}/instances",
                                params={"includefield": "00080018"})
        except httpx.HTTPError as exc:
            raise DestinationUnavailable(f"QIDO-RS request failed: {exc}", subject=self.label,
                                         remedy="check the server") from exc
        if r.status_code in (204, 404) or not r.content:
            return set()
        if not r.is_success:
            raise DestinationUnavailable(f"QIDO-RS answered HTTP {r.status_code}",
                                         subject=self.label, remedy="check query rights")
        found = set()
        for item in r.json():
            uid = (item.get("00080018", {}).get("Value") or [None])[0]
            if uid:
                found.add(str(uid))
        return found

    def close(self) -> None:
        self.client.close()
