"""Fetch a study by WADO-RS (PS3.18 10.4 Retrieve Transaction, Study resource).

``GET {base}/studies/{uid}`` with ``Accept: multipart/related; type="application/dicom";
transfer-syntax=*`` (PS3.18 8.7.3.5: ``*`` asks for the transfer syntax the origin server holds,
so nothing is transcoded). The response body is streamed and split by :class:`MultipartSplitter`
(RFC 2046 5.1): each part's bytes go straight to the staging :class:`Sink`, so memory stays bounded
by the chunk size whatever the study's size, and the transfer stops as soon as a limit is crossed.
A body that ends without the close delimiter is a partial retrieval.

Before retrieving, QIDO-RS ``{base}/studies/{uid}/instances`` (PS3.18 10.6) lists the SOP
Instance UIDs the server holds: an empty answer is "study not found", and after the transfer
every listed instance must have arrived. A server that does not answer QIDO-RS (HTTP 4xx/5xx other
than 404) is retrieved without that cross-check. TLS and authentication are the profile's
(:class:`radguard.importer.destination.WebDestination`: CA bundle, basic or bearer).
"""

from __future__ import annotations

import re
import time
from typing import Any, BinaryIO

import httpx

from radguard.export.fetch_base import (
    FetchIncomplete,
    FetchLimits,
    Sink,
    SourceUnavailable,
    StudyNotFound,
)
from radguard.importer.destination import WebDestination

__all__ = ["MultipartSplitter", "fetch_study_web", "web_client"]

ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
MAX_HEADER_BYTES = 16 * 1024
"""Part headers longer than this are refused (a few short lines are expected)."""
_BOUNDARY = re.compile(r'boundary\s*=\s*(?:"([^"]{1,200})"|([^\s;]{1,200}))', re.IGNORECASE)


class MultipartSplitter:
    """Streaming splitter of a ``multipart/related`` body (RFC 2046 5.1.1, RFC 2387).

    :meth:`feed` takes chunks in order; every part's body is written to a new file from
    ``sink.open()`` and counted with ``sink.account``; :meth:`finish` raises if the body ended
    before the close delimiter. Part headers are bounded (:data:`MAX_HEADER_BYTES`); a part whose
    Content-Type is not ``application/dicom`` is refused.
    """

    def __init__(self, boundary: bytes, sink: Sink, source: str):
        self.delim = b"\r\n--" + boundary
        self.sink = sink
        self.source = source
        self.buf = bytearray(b"\r\n")  # the first delimiter may stand at the very start
        self.state = "preamble"
        self.out: BinaryIO | None = None
        self.parts = 0

    def _fail(self, why: str) -> FetchIncomplete:
        return FetchIncomplete(f"the WADO-RS answer of {self.source} is malformed: {why}",
                               subject=f"study {self.sink.study}",
                               remedy="retry; if it persists, check the PACS's DICOMweb service")

    def feed(self, chunk: bytes) -> None:
        self.buf += chunk
        while True:
            if self.state in ("preamble", "body"):
                at = self.buf.find(self.delim)
                if at < 0:
                    keep = len(self.delim) - 1
                    if len(self.buf) > keep:
                        self._body(bytes(self.buf[:-keep]))
                        del self.buf[:-keep]
                    return
                self._body(bytes(self.buf[:at]))
                del self.buf[:at + len(self.delim)]
                self._close_part()
                self.state = "delimiter"
            elif self.state == "delimiter":
                end = self.buf.find(b"\r\n")
                if end < 0:
                    if len(self.buf) >= 2 and self.buf[:2] == b"--":
                        self.state = "done"
                        return
                    if len(self.buf) > MAX_HEADER_BYTES:
                        raise self._fail("delimiter line too long")
                    return
                line = bytes(self.buf[:end])
                del self.buf[:end + 2]
                if line.startswith(b"--"):
                    self.state = "done"
                    return
                if line.strip(b" \t"):
                    raise self._fail("garbage after a boundary")
                self.state = "headers"
            elif self.state == "headers":
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buf) > MAX_HEADER_BYTES:
                        raise self._fail("part headers too long")
                    return
                headers = bytes(self.buf[:end]).decode("latin-1").lower()
                del self.buf[:end + 4]
                ctype = re.search(r"^content-type:\s*([^;\r\n]*)", headers, re.MULTILINE)
                if ctype is None or ctype.group(1).strip() != "application/dicom":
                    raise self._fail("a part is not application/dicom")
                self.out = self.sink.open()
                self.parts += 1
                self.state = "body"
            else:  # done: the epilogue is ignored
                self.buf.clear()
                return

    def _body(self, data: bytes) -> None:
        if self.state != "body" or not data:
            return
        self.sink.account(len(data))
        assert self.out is not None
        self.out.write(data)

    def _close_part(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None

    def finish(self) -> None:
        """Raise :class:`FetchIncomplete` unless the close delimiter was seen."""
        self._close_part()
        if self.state != "done":
            raise self._fail("the body ended before its close delimiter (partial retrieval)")

    def abort(self) -> None:
        self._close_part()


def web_client(dest: WebDestination, limits: FetchLimits) -> httpx.Client:
    """An :class:`httpx.Client` with the profile's TLS trust and credentials (never logged)."""
    auth: Any = None
    headers: dict[str, str] = {}
    if dest.token:
        headers["Authorization"] = f"Bearer {dest.token}"
    elif dest.username:
        auth = httpx.BasicAuth(dest.username, dest.password or "")
    return httpx.Client(base_url=dest.base_url, auth=auth, headers=headers,
                        verify=dest.ca or True, follow_redirects=False,
                        timeout=httpx.Timeout(limits.connect_timeout))


def _unavailable(dest: WebDestination, study: str, why: str, remedy: str) -> SourceUnavailable:
    return SourceUnavailable(f"{dest.base_url}: {why}", subject=f"study {study}", remedy=remedy)


def _http_error(dest: WebDestination, study: str, what: str, code: int) -> SourceUnavailable:
    if code in (401, 403):
        return _unavailable(dest, study, f"{what} refused with HTTP {code}",
                            "check the username/password or token of the profile and the "
                            "user's rights on the PACS")
    return _unavailable(dest, study, f"{what} answered HTTP {code}",
                        "check the PACS's DICOMweb service and its log")


def listed_instances(client: httpx.Client, dest: WebDestination, study: str) -> set[str] | None:
    """SOP Instance UIDs the server lists for ``study`` (QIDO-RS); ``None`` if it does not
    answer QIDO-RS. Raises :class:`StudyNotFound` when it lists none."""
    try:
        r = client.get(f"/studies/{study}/instances", params={"includefield": "00080018"},
                       headers={"Accept": "application/dicom+json"})
    except httpx.HTTPError as exc:
        raise _unavailable(dest, study, f"cannot reach the server ({type(exc).__name__}: {exc})",
                           "check the URL, the network and the server's certificate") from exc
    if r.status_code in (204, 404) or (r.is_success and not r.content):
        raise StudyNotFound(f"{dest.base_url} holds no study with this Study Instance UID",
                            subject=f"study {study}",
                            remedy="check the UID (copy it from the PACS viewer) and the profile")
    if r.status_code in (401, 403):
        raise _http_error(dest, study, "QIDO-RS", r.status_code)
    if not r.is_success or len(r.content) > 64 * 1024**2:
        return None
    found: set[str] = set()
    try:
        items = r.json()
    except ValueError:
        return None
    for item in items if isinstance(items, list) else []:
        value = item.get("00080018", {}).get("Value") if isinstance(item, dict) else None
        if isinstance(value, list) and value and isinstance(value[0], str):
            found.add(value[0])
    return found


def fetch_study_web(client: httpx.Client, dest: WebDestination, study: str, sink: Sink,
                    deadline: float) -> set[str] | None:
    """Retrieve ``study`` into ``sink``; return the UIDs QIDO-RS listed (``None``: not asked).

    ``deadline`` is a :func:`time.monotonic` instant; the transfer stops there.
    """
    sink.study = study
    listed = listed_instances(client, dest, study)
    if listed is not None and sink.count + len(listed) > sink.limits.max_instances:
        raise sink.too_large(f"max_instances = {sink.limits.max_instances} (QIDO-RS lists "
                             f"{len(listed)} instances)")
    splitter: MultipartSplitter | None = None
    try:
        with client.stream("GET", f"/studies/{study}",
                           headers={"Accept": ACCEPT, "Accept-Encoding": "identity"}) as r:
            if r.status_code in (204, 404):
                raise StudyNotFound(f"{dest.base_url} holds no study with this Study Instance "
                                    "UID", subject=f"study {study}",
                                    remedy="check the UID and the profile")
            if not r.is_success:
                raise _http_error(dest, study, "WADO-RS", r.status_code)
            if r.headers.get("content-encoding", "identity").lower() != "identity":
                raise _unavailable(dest, study, "WADO-RS answered with a content encoding "
                                   "although identity was asked for", "check the server or the "
                                   "proxy in front of it")
            ctype = r.headers.get("content-type", "")
            m = _BOUNDARY.search(ctype)
            if not ctype.lower().startswith("multipart/related") or m is None:
                raise _unavailable(dest, study, f"WADO-RS answered {ctype[:80]!r}, not "
                                   "multipart/related", "check that the URL is the DICOMweb "
                                   "service root (e.g. https://pacs/dicom-web)")
            splitter = MultipartSplitter((m.group(1) or m.group(2)).encode("ascii", "replace"),
                                         sink, dest.base_url)
            for chunk in r.iter_raw(1024 * 1024):
                splitter.feed(chunk)
                if time.monotonic() > deadline:
                    raise _unavailable(dest, study, "the retrieval did not finish within the "
                                       "time-out", "raise timeout in the [fetch] table, or "
                                       "export fewer studies at once")
            splitter.finish()
    except httpx.HTTPError as exc:
        raise _unavailable(dest, study, f"the transfer failed ({type(exc).__name__}: {exc})",
                           "check the network and the server, then export again") from exc
    finally:
        if splitter is not None:
            splitter.abort()
    return listed
