"""Destinations of an import: a named profile from the config, or a URL written out.

- ``dimse://AET@host:port`` with ``?tls=1&ca=PATH&cert=PATH&key=PATH&calling=AET&verify_host=0``
  and ``&timeout=SECONDS`` (TLS per PS3.15 B.12, client certificate, AE titles); ``&commit=1``
  (with ``commit_aet``, ``commit_host``, ``commit_port``, ``commit_timeout``, ``commit_batch``)
  asks for Storage Commitment (PS3.4 Annex J) after the send;
- ``https://host:port/dicom-web`` (STOW-RS/QIDO-RS, PS3.18); ``http://`` only for loopback hosts;
  basic authentication from ``username``/``password`` or a bearer ``token`` in the profile (or the
  ``RADGUARD_DEST_PASSWORD`` / ``RADGUARD_DEST_TOKEN`` environment variables), never in the URL.

A profile is a table ``[destinations.NAME]`` with ``url`` and the same keys as the query.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from radguard.config import Settings
from radguard.dimse import CommitSettings, Peer, TlsOptions
from radguard.importer.errors import DestinationInvalid

__all__ = ["Destination", "WebDestination", "parse_destination"]


@dataclass(frozen=True, slots=True)
class WebDestination:
    """A DICOMweb service root with optional credentials (never printed)."""

    base_url: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    ca: str | None = None

    @property
    def label(self) -> str:
        return self.base_url

    def __repr__(self) -> str:
        return f"WebDestination({self.base_url!r})"


Destination = Peer | WebDestination


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _commit_settings(opts: Mapping[str, str], peer: Peer, text: str) -> CommitSettings:
    """``commit=1`` options: ``commit_aet`` (default the calling AE title), ``commit_host`` (the
    address RadGuard listens on for the report; required unless the peer is on loopback),
    ``commit_port`` (default 11113), ``commit_timeout`` (seconds, default 30), ``commit_batch``."""
    host = opts.get("commit_host") or ("127.0.0.1" if _loopback(peer.host) else "")
    if not host:
        raise DestinationInvalid("commit=1 needs commit_host: the address of this station that "
                                 "the PACS can reach", subject=text,
                                 remedy="add &commit_host=ADDRESS&commit_port=PORT and register "
                                 "that AE title, host and port on the PACS")
    if peer.tls is not None:
        raise DestinationInvalid("storage commitment reports would arrive without TLS",
                                 subject=text, remedy="leave commit=1 off with tls=1 "
                                 "(confirmation then uses C-FIND over TLS)")
    try:
        return CommitSettings(opts.get("commit_aet", peer.calling_aet), host,
                              int(opts.get("commit_port", "11113")),
                              float(opts.get("commit_timeout", "30")),
                              int(opts.get("commit_batch", "500")))
    except ValueError as exc:
        raise DestinationInvalid(f"bad storage commitment option: {exc}", subject=text,
                                 remedy="commit_port and commit_batch are integers, "
                                 "commit_timeout is seconds") from exc


def parse_destination(text: str, settings: Settings | None = None,
                      environ: Mapping[str, str] | None = None) -> Destination:
    """Parse ``--to``: a profile name from ``[destinations]`` or a ``dimse://``/``https://`` URL.

    Raises
    ------
    DestinationInvalid
        Unknown profile, unknown scheme, missing parts, credentials in the URL, plain HTTP to a
        host that is not loopback.
    """
    env = os.environ if environ is None else environ
    profile: Mapping[str, Any] = {}
    if "://" not in text:
        profiles = settings.section("destinations") if settings else {}
        if text not in profiles or not isinstance(profiles[text], Mapping):
            raise DestinationInvalid(f"no destination profile named {text!r}", subject=text,
                                     remedy="write the destination out (dimse://AET@host:port or "
                                     "https://host/dicom-web) or add [destinations."
                                     f"{text}] to the config file")
        profile = profiles[text]
        text = str(profile.get("url", ""))
    parts = urlsplit(text)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    opts = {**{k: str(v) for k, v in profile.items() if k != "url"}, **query}
    if parts.scheme == "dimse":
        if not parts.username or not parts.hostname or not parts.port:
            raise DestinationInvalid("a DIMSE destination reads dimse://AET@host:port",
                                     subject=text, remedy="add the called AE title and the port")
        tls = None
        if opts.get("tls", "0") in ("1", "true", "yes"):
            tls = TlsOptions(ca=opts.get("ca"), cert=opts.get("cert"), key=opts.get("key"),
                             check_hostname=opts.get("verify_host", "1") not in ("0", "false"))
        peer = Peer(parts.hostname, parts.port, unquote(parts.username),
                    opts.get("calling", "RADGUARD"), tls)
        if "timeout" in opts:
            seconds = float(opts["timeout"])
            peer = Peer(peer.host, peer.port, peer.called_aet, peer.calling_aet, tls,
                        {"acse": seconds, "dimse": seconds, "network": seconds})
        if opts.get("commit", "0") in ("1", "true", "yes"):
            peer = replace(peer, commit=_commit_settings(opts, peer, text))
        return peer
    if parts.scheme in ("https", "http"):
        if parts.username or parts.password:
            raise DestinationInvalid("credentials do not belong in the URL", subject=parts.hostname,
                                     remedy="put username/password or token in the destination "
                                     "profile or the RADGUARD_DEST_* environment variables")
        if parts.scheme == "http" and not _loopback(parts.hostname or ""):
            raise DestinationInvalid("plain http:// is allowed only for loopback", subject=text,
                                     remedy="use https://")
        base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        return WebDestination(base, opts.get("username"),
                              opts.get("password") or env.get("RADGUARD_DEST_PASSWORD"),
                              opts.get("token") or env.get("RADGUARD_DEST_TOKEN"), opts.get("ca"))
    raise DestinationInvalid(f"unknown destination scheme {parts.scheme!r}", subject=text,
                             remedy="use dimse://, https:// or a profile name")
