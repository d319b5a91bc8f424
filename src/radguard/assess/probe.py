"""Probe once, then check: everything RadGuard learns from a node, gathered lazily and cached.

A :class:`NodeProbe` (DIMSE endpoint) or :class:`WebProbe` (HTTP endpoint) is created per target;
checks ask it for observations, the first ask makes the connection (in a politeness turn) and every
later ask reuses the answer. So a node sees each association at most once per run, whatever the
number of checks reading it. The base association (unknown calling AE, a random called AE title
unless the target names one, the *discovery* tier of the fingerprint contexts) also decides the
transport: plaintext first, then TLS when the port did not speak DICOM in clear (or only TLS when
the target says ``dicom+tls://``).

Fingerprint depth (``sop-tiers.json``): ``compact`` (default) is the base association alone,
proposing the discovery tier; ``minimal`` is the base association proposing only Verification
(the probe load of nmap's ``dicom-ping``: no SOP-class inventory, no role); ``full`` adds the
inventory tiers (the rest of the SOP classes and the transfer-syntax probe), one association
each, only for a node that accepted the base association.

pynetdicom, pydicom and httpx are imported only when a DIMSE session or an HTTP request is made,
so discovery pays for none of them.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from radguard.assess.association import Attempt, attempt
from radguard.assess.channel import TlsConfig, client_context
from radguard.assess.memo import once
from radguard.assess.pdu import AssociateAnswer, Context, UserIdentity, random_aet
from radguard.assess.politeness import BudgetSpent, Device
from radguard.assess.targets import Credentials, KnownPeer, Target
from radguard.assess.tiers import (
    DEPTHS,
    Depth,
    base_contexts,
    tier_contexts,
    tier_count,
    tiers_for,
)
from radguard.assess.tlsprobe import TlsObservation, handshake_once, observe_tls

if TYPE_CHECKING:
    from radguard.assess.services import SessionResult
    from radguard.assess.web import HttpObservation

__all__ = ["DEPTHS", "Depth", "NodeProbe", "ProbeOptions", "WebProbe", "base_contexts",
           "tier_contexts", "tier_count", "tiers_for"]

_NOT_DICOM_CLEAR = ("garbage", "closed", "reset", "abort")
UNREACHABLE = ("refused", "timeout", "unreachable")


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """What the user allowed: intrusive checks, credentials, known peers, the salt for hashes."""

    intrusive: bool = False
    credentials: Credentials = field(default_factory=Credentials)
    known_peers: tuple[KnownPeer, ...] = ()
    salt: bytes = b""
    move_port: int = 0
    """Port of RadGuard's own C-MOVE destination (0: any free port)."""
    fingerprint_depth: Depth = "compact"
    """``compact``: the base association (discovery tier) only; ``minimal``: the base association
    with Verification only; ``full``: also the inventory tiers."""


class NodeProbe:
    """Lazy, cached observations of one DIMSE endpoint."""

    def __init__(self, target: Target, device: Device, options: ProbeOptions,
                 timeout: float, connect_timeout: float | None = None) -> None:
        self.target = target
        self.device = device
        self.options = options
        self.timeout = timeout
        """Seconds to wait for each answer of the node (association, handshake, response)."""
        self.connect_timeout = timeout if connect_timeout is None else connect_timeout
        """Seconds for each TCP connection."""
        self.calling = random_aet("RG")
        self.skipped: list[str] = []
        self.rest: list[WebProbe] = []
        """HTTP probes of the same host (Orthanc REST), used to delete the store test object."""
        creds = options.credentials
        self.tls_config = TlsConfig(cert=creds.tls_cert, key=creds.tls_key)

    # -- raw association attempts --------------------------------------------------------------
    def _attempt(self, *, tls: bool, called: str, calling: str, contexts: Sequence[Context],
                 identity: UserIdentity | None = None,
                 tls_config: TlsConfig | None = None) -> Attempt:
        try:
            with self.device.turn():
                return attempt(self.target.host, self.target.port, called=called, calling=calling,
                               contexts=contexts, timeout=self.timeout,
                               tls=(tls_config or self.tls_config) if tls else None,
                               identity=identity, connect_timeout=self.connect_timeout)
        except BudgetSpent as exc:
            return Attempt(AssociateAnswer("budget", reason=str(exc)))

    @property
    def probe_called(self) -> str:
        """Called AE title used for the base probe: the target's, else a random one."""
        return self.target.aet or self._random_called

    @once
    def _random_called(self) -> str:
        return random_aet("RGX")

    @once
    def base(self) -> Attempt:
        """The base association: unknown calling AE, fingerprint tier 0 (Verification only at
        depth ``minimal``); it decides the transport.

        It is also the called-AE probe when the target names no AE title (the called AE title is
        then a random one), so a node without /AET sees one association for both."""
        contexts = base_contexts(self.options.fingerprint_depth)
        if self.target.tls is True:
            return self._attempt(tls=True, called=self.probe_called, calling=self.calling,
                                 contexts=contexts)
        clear = self._attempt(tls=False, called=self.probe_called, calling=self.calling,
                              contexts=contexts)
        if self.target.tls is False or clear.answer.kind not in _NOT_DICOM_CLEAR:
            return clear
        over_tls = self._attempt(tls=True, called=self.probe_called, calling=self.calling,
                                 contexts=contexts)
        hs = over_tls.handshake
        return over_tls if hs is not None and (hs.ok or hs.server_hello) else clear

    @property
    def reachable(self) -> bool:
        return self.base.answer.kind not in (*UNREACHABLE, "budget")

    @property
    def transport(self) -> str | None:
        """``tls``, ``plain`` or ``None`` (no DICOM service recognised)."""
        if self.base.handshake is not None:
            hs = self.base.handshake
            return "tls" if hs.ok or hs.server_hello else None
        return "plain" if self.base.answer.kind in ("accept", "reject") else None

    @property
    def speaks_dicom(self) -> bool:
        return self.base.answer.kind in ("accept", "reject")

    @once
    def random_called(self) -> Attempt:
        """Association with a random called AE title (Verification only)."""
        if not self.target.aet:
            return self.base
        return self._attempt(tls=self.transport == "tls", called=self._random_called,
                             calling=self.calling,
                             contexts=[Context(1, "1.2.840.10008.1.1", ("1.2.840.10008.1.2",))])

    @once
    def tiers(self) -> list[tuple[int, Attempt]]:
        """(tier index, attempt) of the fingerprint tiers beyond the base association, at the
        options' depth, only for a node that accepted the base association."""
        out: list[tuple[int, Attempt]] = []
        if not self.base.accepted:
            return out
        for index in tiers_for(self.options.fingerprint_depth):
            if index == 0:
                continue
            out.append((index, self._attempt(tls=self.transport == "tls",
                                             called=self.probe_called, calling=self.calling,
                                             contexts=tier_contexts(index))))
        return out

    @once
    def identity(self) -> Attempt | None:
        """Plaintext association offering user identity (username + passcode, PS3.7 D.3.3.7)."""
        if self.transport != "plain":
            return None
        ident = UserIdentity(2, b"radguard-probe", random_aet("PW").encode("ascii"))
        return self._attempt(tls=False, called=self.probe_called, calling=self.calling,
                             contexts=[Context(1, "1.2.840.10008.1.1", ("1.2.840.10008.1.2",))],
                             identity=ident)

    @once
    def tls(self) -> TlsObservation | None:
        """Versions, suites and certificate, for a TLS endpoint."""
        if self.transport != "tls":
            return None
        shake = handshake_once(self.target.host, self.target.port, self.timeout,
                               self.connect_timeout)

        def polite(cfg: TlsConfig) -> Any:
            with self.device.turn():
                return shake(cfg)

        try:
            return observe_tls(polite, self.tls_config)
        except BudgetSpent as exc:
            self.skipped.append(str(exc))
            return None

    @once
    def without_client_cert(self) -> Attempt | None:
        """Association over TLS with no client certificate (mutual authentication test)."""
        if self.transport != "tls":
            return None
        if not self.tls_config.cert:
            return self.base
        return self._attempt(tls=True, called=self.probe_called, calling=self.calling,
                             contexts=[Context(1, "1.2.840.10008.1.1", ("1.2.840.10008.1.2",))],
                             tls_config=TlsConfig(with_client_cert=False))

    # -- DIMSE sessions --------------------------------------------------------------------------
    @property
    def session_called(self) -> str | None:
        if self.target.aet:
            return self.target.aet
        return self._random_called if self.base.accepted else None

    def _session(self, calling: str, ops: tuple[str, ...]) -> SessionResult | None:
        from radguard.assess.services import dimse_session

        called = self.session_called
        if called is None or not self.speaks_dicom:
            return None
        ctx: ssl.SSLContext | None = client_context(self.tls_config) if self.transport == "tls" \
            else None
        try:
            with self.device.turn():
                return dimse_session(self.target.host, self.target.port, called=called,
                                     calling=calling, timeout=self.timeout,
                                     connect_timeout=self.connect_timeout, ops=ops,
                                     salt=self.options.salt, tls=ctx,
                                     move_bind=self.base.local_address or None,
                                     move_port=self.options.move_port)
        except BudgetSpent as exc:
            self.skipped.append(str(exc))
            return None

    @once
    def session(self) -> SessionResult | None:
        """Unknown caller: echo, find, a C-GET of a random study; plus store/get/move when
        intrusive checks are allowed."""
        ops: tuple[str, ...] = ("echo", "find", "getprobe")
        if self.options.intrusive:
            ops += ("store", "get", "move")
        return self._session(self.calling, ops)

    def cleanup(self, uids: dict[str, str]) -> str:
        """Delete the store test object through a reachable Orthanc REST API of the same host.

        Returns what happened, in words, for the finding (never raises).
        """
        from radguard.assess.testobject import PATIENT_ID
        from radguard.assess.web import orthanc_delete_instance

        instance = uids.get("instance", "")
        for web in self.rest:
            if not web.reachable or not web.is_orthanc:
                continue
            if web.system.status != 200 and web.auth is None:
                continue
            if orthanc_delete_instance(web.web, web.base, web.auth, instance):
                return f"deleted through {web.base}"
        return (f"left in place: remove SOP Instance UID {instance} (patient ID "
                f"{PATIENT_ID}) from the archive")

    def spoof(self, peer: KnownPeer) -> SessionResult | None:
        """A known peer's AE title from this station's address: echo and find."""
        cache: dict[str, SessionResult | None] = self.__dict__.setdefault("_spoof", {})
        if peer.aet not in cache:
            cache[peer.aet] = self._session(peer.aet, ("echo", "find"))
        return cache[peer.aet]


class WebProbe:
    """Lazy, cached observations of one HTTP endpoint (DICOMweb root and/or Orthanc REST)."""

    def __init__(self, target: Target, device: Device, options: ProbeOptions,
                 timeout: float, connect_timeout: float | None = None) -> None:
        from radguard.assess.web import WebProber

        self.target = target
        self.options = options
        self.web = WebProber(device.turn, timeout, connect_timeout)
        url = target.url or target.base_url
        self.base = target.base_url
        self.dicomweb = url if "dicom-web" in url else f"{url}/dicom-web"

    def close(self) -> None:
        self.web.close()

    @once
    def first(self) -> HttpObservation:
        """QIDO-RS ``/studies?limit=1`` without credentials, with an Origin header (CORS)."""
        return self.web.request("GET", f"{self.dicomweb}/studies?limit=1",
                                headers={"Origin": "https://radguard-probe.invalid",
                                         "Accept": "application/dicom+json"})

    @property
    def reachable(self) -> bool:
        return self.first.status is not None

    @once
    def wado(self) -> HttpObservation:
        return self.web.request("GET", f"{self.dicomweb}/studies/{_fake_uid()}/metadata")

    @once
    def stow(self) -> HttpObservation:
        boundary = "radguard-probe"
        return self.web.request(
            "POST", f"{self.dicomweb}/studies", content=f"--{boundary}--\r\n".encode(),
            headers={"Content-Type": f'multipart/related; type="application/dicom"; '
                                     f"boundary={boundary}"})

    @once
    def system(self) -> HttpObservation:
        """Orthanc ``/system`` without credentials."""
        return self.web.request("GET", f"{self.base}/system", want_json=True)

    @once
    def is_orthanc(self) -> bool:
        if isinstance(self.system.json, dict) and "DicomAet" in self.system.json:
            return True
        server = self.system.headers.get("server", "") + self.first.headers.get("server", "")
        realm = self.system.headers.get("www-authenticate", "")
        return "orthanc" in server.lower() or "orthanc" in realm.lower()

    @once
    def tried_credentials(self) -> tuple[str, HttpObservation] | None:
        """The first user-named credential pair that opens ``/system`` (user name, answer)."""
        if self.system.status not in (401, 403):
            return None
        for user, password in self.options.credentials.http_try:
            obs = self.web.request("GET", f"{self.base}/system", auth=(user, password),
                                   want_json=True)
            if obs.status == 200:
                return user, obs
        return None

    @property
    def auth(self) -> tuple[str, str] | None:
        """Best credentials to act with: none if open, the known account, a tried pair."""
        if self.system.status == 200:
            return None
        if self.options.credentials.http_auth:
            return self.options.credentials.http_auth
        found = self.tried_credentials
        if found is not None:
            for user, password in self.options.credentials.http_try:
                if user == found[0]:
                    return user, password
        return None

    @once
    def system_authenticated(self) -> HttpObservation:
        if self.system.status == 200:
            return self.system
        auth = self.auth
        if auth is None:
            return self.system
        return self.web.request("GET", f"{self.base}/system", auth=auth, want_json=True)

    @once
    def execute_script(self) -> HttpObservation:
        """POST of an empty Lua script to ``/tools/execute-script`` (runs nothing)."""
        return self.web.request("POST", f"{self.base}/tools/execute-script", auth=self.auth,
                                content=b"")


def _fake_uid() -> str:
    import secrets

    return f"2.25.{int.from_bytes(secrets.token_bytes(15), 'big')}"
