"""HTTP observations of a DICOMweb (PS3.18) / Orthanc REST endpoint, through httpx.

Every request takes a politeness turn. Nothing here sends data that changes state: QIDO-RS asks for
``/studies?limit=1`` and keeps only the status; WADO-RS asks for the metadata of a random, non-existent
study (a 404 proves the service answers without credentials, a 401/403 that it does not); STOW-RS is
sent an empty multipart body; ``/tools/execute-script`` is sent an empty Lua script. Response bodies
are read only from ``/system`` (Orthanc's version) and never kept otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from radguard.assess.pdu import IMPLEMENTATION_VERSION

__all__ = ["HttpObservation", "WebProber", "orthanc_delete_instance"]

PROBE_ORIGIN = "https://radguard-probe.invalid"
_MAX_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class HttpObservation:
    """One request's outcome: status (``None``: no answer) and the headers that matter."""

    status: int | None
    error: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None


Turn = Callable[[], contextlib.AbstractContextManager[None]]


class WebProber:
    """Requests to one HTTP target, each in its own politeness turn."""

    def __init__(self, turn: Turn, timeout: float, connect_timeout: float | None = None) -> None:
        self._turn = turn
        limits = httpx.Timeout(timeout, connect=timeout if connect_timeout is None
                               else connect_timeout)
        self._client = httpx.Client(timeout=limits, verify=False, follow_redirects=False,  # noqa: S501 - probes must see any server
                                    headers={"User-Agent": f"RadGuard/{IMPLEMENTATION_VERSION}"})

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, url: str, *, auth: tuple[str, str] | None = None,
                headers: dict[str, str] | None = None, content: bytes | None = None,
                want_json: bool = False) -> HttpObservation:
        with self._turn():
            try:
                with self._client.stream(method, url, auth=auth, headers=headers,
                                         content=content) as rsp:
                    body = b""
                    if want_json:
                        for chunk in rsp.iter_bytes():
                            body += chunk
                            if len(body) > _MAX_BODY:
                                break
                    keep = {k.lower(): v for k, v in rsp.headers.items()
                            if k.lower() in ("server", "access-control-allow-origin",
                                             "access-control-allow-credentials",
                                             "www-authenticate", "content-type")}
                    data = None
                    if want_json and rsp.status_code == 200:
                        import json

                        with contextlib.suppress(ValueError, UnicodeDecodeError):
                            data = json.loads(body)
                    return HttpObservation(rsp.status_code, headers=keep, json=data)
            except httpx.TimeoutException:
                return HttpObservation(None, error="timeout")
            except httpx.ConnectError as exc:
                return HttpObservation(None, error=f"connect: {exc}")
            except httpx.HTTPError as exc:
                return HttpObservation(None, error=f"{type(exc).__name__}: {exc}")


def orthanc_delete_instance(prober: WebProber, base: str, auth: tuple[str, str] | None,
                            sop_instance_uid: str) -> bool:
    """Delete one instance by SOP Instance UID through Orthanc's REST API; ``True`` if gone."""
    found = prober.request("POST", f"{base}/tools/lookup", auth=auth,
                           content=sop_instance_uid.encode("ascii"), want_json=True)
    if found.status != 200 or not isinstance(found.json, list):
        return False
    ids = [x.get("ID") for x in found.json if isinstance(x, dict) and x.get("Type") == "Instance"]
    ok = bool(ids)
    for oid in ids:
        gone = prober.request("DELETE", f"{base}/instances/{oid}", auth=auth)
        ok = ok and gone.status == 200
    return ok
