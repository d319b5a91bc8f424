"""Scope of an assessment: targets, known peers and credentials, parsed from what the user names.

Scope is explicit (DESIGN invariant 4): only the endpoints parsed here are ever contacted. A target is

- ``host:port`` or ``host:port/AET`` (IPv6 as ``[::1]:104/AET``): a DIMSE endpoint; TLS is detected;
- ``dicom://host:port/AET`` (plaintext only) or ``dicom+tls://host:port/AET`` (TLS only);
- ``http://`` or ``https://`` URL: Orthanc REST base and/or DICOMweb root (a path containing
  ``dicom-web`` is the DICOMweb root; a bare base also tries ``BASE/dicom-web``);
- ``@FILE`` or an existing file: one target per line, ``#`` comments;
- ``store:`` (every ``dicom-node`` asset of the store) or ``store:NAME``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from radguard.assess.errors import CredentialsError, TargetError

__all__ = ["Credentials", "KnownPeer", "Target", "load_credentials", "parse_known_peer",
           "parse_target", "parse_targets"]

_AET_MAX = 16


@dataclass(frozen=True, slots=True)
class Target:
    """One endpoint in scope. ``kind`` is ``dicom`` or ``http``."""

    kind: str
    host: str
    port: int
    aet: str | None = None
    tls: bool | None = None
    """``True`` TLS only, ``False`` plaintext only, ``None`` detect."""
    url: str | None = None

    @property
    def name(self) -> str:
        """Stable text form, also the asset name in the store."""
        if self.kind == "http":
            return self.url or f"http://{self.host}:{self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = {True: "dicom+tls://", False: "dicom://", None: ""}[self.tls]
        return f"{scheme}{host}:{self.port}" + (f"/{self.aet}" if self.aet else "")

    @property
    def base_url(self) -> str:
        parts = urlsplit(self.url or "")
        return f"{parts.scheme}://{parts.netloc}"


def _check_aet(aet: str, text: str) -> str:
    if not aet or len(aet) > _AET_MAX or any(not (0x20 <= ord(c) < 0x7F) or c == "\\" for c in aet):
        raise TargetError(f"invalid AE title {aet!r}", subject=text,
                          remedy="an AE title is 1-16 printable ASCII characters, no backslash")
    return aet


def _host_port(text: str, netloc: str, default_port: int | None) -> tuple[str, int]:
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = netloc.rpartition(":") if ":" in netloc else (netloc, "", "")
    if not port_text:
        if default_port is None:
            raise TargetError("no port given", subject=text,
                              remedy="write host:port or host:port/AET (e.g. pacs.local:104/PACS)")
        return host, default_port
    try:
        port = int(port_text)
    except ValueError:
        raise TargetError(f"port {port_text!r} is not a number", subject=text,
                          remedy="write host:port or host:port/AET") from None
    if not host or not 0 < port < 65536:
        raise TargetError("host or port out of range", subject=text,
                          remedy="write host:port with a port from 1 to 65535")
    return host, port


def parse_target(text: str) -> Target:
    """Parse one target (see the module docstring).

    Raises
    ------
    TargetError
        The text is not a valid target.
    """
    text = text.strip()
    lower = text.lower()
    if lower.startswith(("http://", "https://")):
        parts = urlsplit(text)
        host, port = _host_port(text, parts.netloc, 443 if parts.scheme == "https" else 80)
        return Target("http", host, port, url=text.rstrip("/"))
    tls: bool | None = None
    for prefix, value in (("dicom+tls://", True), ("dicom://", False)):
        if lower.startswith(prefix):
            tls, text = value, text[len(prefix):]
            break
    netloc, _, aet = text.partition("/")
    host, port = _host_port(text, netloc, None)
    return Target("dicom", host, port, aet=_check_aet(aet, text) if aet else None, tls=tls)


def parse_targets(items: Iterable[str], *, store_names: Sequence[str] = ()) -> list[Target]:
    """Expand files (``@FILE`` or existing paths) and parse every target, without duplicates.

    ``store_names`` are the asset names the caller read from the store for ``store:`` items.
    """
    out: list[Target] = []
    seen: set[str] = set()

    def add(t: Target) -> None:
        if t.name not in seen:
            seen.add(t.name)
            out.append(t)

    for item in items:
        if item.startswith("store:"):
            for name in store_names:
                add(parse_target(name))
            continue
        path = Path(item[1:]) if item.startswith("@") else Path(item)
        if item.startswith("@") or (path.is_file() and "://" not in item):
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise TargetError(f"cannot read the target file: {exc.strerror}", subject=str(path),
                                  remedy="give a readable file with one target per line") from exc
            for n, line in enumerate(lines, 1):
                line = line.split("#", 1)[0].strip()
                if line:
                    try:
                        add(parse_target(line))
                    except TargetError as exc:
                        raise TargetError(exc.message, subject=f"{path}:{n}: {line}",
                                          remedy=exc.remedy) from None
            continue
        add(parse_target(item))
    if not out:
        raise TargetError("no targets in scope", remedy="name at least one host:port[/AET] or URL")
    return out


@dataclass(frozen=True, slots=True)
class KnownPeer:
    """A peer the node is meant to trust: its AE title and its real host."""

    aet: str
    host: str


def parse_known_peer(text: str) -> KnownPeer:
    """Parse ``AET@host``."""
    aet, sep, host = text.partition("@")
    if not sep or not host:
        raise TargetError("a known peer reads AET@host", subject=text,
                          remedy="e.g. --known-peer CT01@10.1.2.3")
    return KnownPeer(_check_aet(aet, text), host)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the user allowed RadGuard to use. Secrets never appear in ``repr`` or reports."""

    http_user: str | None = None
    http_password: str | None = field(default=None, repr=False)
    http_try: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    tls_cert: str | None = None
    tls_key: str | None = None

    @property
    def http_auth(self) -> tuple[str, str] | None:
        if self.http_user is None or self.http_password is None:
            return None
        return self.http_user, self.http_password


def load_credentials(path: Path | None) -> Credentials:
    """Read a TOML credentials file::

        [http]                    # known account for authenticated REST calls (clean-up)
        user = "admin"
        password = "..."
        try = [["orthanc", "orthanc"]]   # tried by orthanc.default-credentials, nothing else is
        [tls]                     # client certificate for mutual TLS
        cert = "client.crt"
        key = "client.key"

    Raises
    ------
    CredentialsError
        Missing, unreadable or malformed file.
    """
    if path is None:
        return Credentials()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CredentialsError(f"cannot read: {exc.strerror}", subject=str(path),
                               remedy="give a readable TOML file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CredentialsError(f"not valid TOML: {exc}", subject=str(path),
                               remedy="see docs/assess.md for the credentials file format") from exc
    http = data.get("http", {})
    tls = data.get("tls", {})
    try:
        tries = tuple((str(u), str(p)) for u, p in http.get("try", []))
    except (TypeError, ValueError):
        raise CredentialsError("http.try must be a list of [user, password] pairs",
                               subject=str(path), remedy='write try = [["user", "password"]]') from None
    base = path.parent
    cert = tls.get("cert")
    key = tls.get("key")
    return Credentials(
        http_user=http.get("user"), http_password=http.get("password"), http_try=tries,
        tls_cert=str(base / cert) if cert else None, tls_key=str(base / key) if key else None,
    )
