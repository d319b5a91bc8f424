"""DIMSE checks (PS3.7, PS3.8): AE title enforcement, spoofing, open query/retrieve/store, user
identity over plaintext, fingerprint. Each reads a :class:`~radguard.assess.probe.NodeProbe`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from radguard.assess.checks import Check, NotRun, register
from radguard.assess.fingerprint import fingerprint
from radguard.assess.probe import NodeProbe, tier_contexts, tiers_for
from radguard.findings import Finding, Severity

if TYPE_CHECKING:
    from radguard.assess.services import SessionResult

__all__: list[str] = []

_OK = (0x0000,)
_PENDING = (0xFF00, 0xFF01)
_SUBOPS_DONE = (0x0000, 0xB000)


def _need_dicom(probe: NodeProbe) -> None:
    if not probe.speaks_dicom:
        raise NotRun(f"no DICOM answer ({probe.base.answer.kind}: {probe.base.answer.reason})")


def _session(probe: NodeProbe) -> SessionResult:
    _need_dicom(probe)
    s = probe.session
    if s is None:
        raise NotRun("called AE title unknown and random ones refused: add /AET to the target")
    return s


@register
class CalledAetNotEnforced(Check):
    id = "dicom.called-aet-not-enforced"
    severity = Severity.MEDIUM
    description = "A random called AE title is accepted (promiscuous acceptor)."
    remedy = ("Configure the node to accept only its own AE title (Orthanc: DicomCheckCalledAet "
              "true; other products: enable called AE title checking).")
    sends = ("A-ASSOCIATE-RQ with a random called AE title (Verification only), then A-RELEASE",)

    def run(self, probe: NodeProbe) -> list[Finding]:
        _need_dicom(probe)
        a = probe.random_called
        if a.accepted:
            return [self.finding(f"association accepted for random called AE title "
                                 f"{probe._random_called!r}", asset=probe.target.name,
                                 called_ae="random")]
        return []


@register
class CallingAetNotEnforced(Check):
    id = "dicom.calling-aet-not-enforced"
    severity = Severity.HIGH
    description = ("An unknown calling AE title is served: C-ECHO (echo), C-FIND (query) or "
                   "C-GET/C-MOVE (retrieve), each reported separately.")
    remedy = ("Register the peers allowed to connect and refuse the others (Orthanc: "
              "DicomAlwaysAllowEcho/Find/Get/Move false with DicomModalities; DCMTK dcmqrscp: "
              "list peers in AETable instead of ANY).")
    sends = ("A-ASSOCIATE-RQ from a random calling AE title", "C-ECHO-RQ",
             "C-FIND-RQ (STUDY level, only Study Instance UID asked; cancelled at the 1st match)",
             "C-GET-RQ for a random, non-existent Study Instance UID (moves no data)")

    def run(self, probe: NodeProbe) -> list[Finding]:
        s = _session(probe)
        asset = probe.target.name
        out: list[Finding] = []
        if s.echo in _OK:
            out.append(self.finding("C-ECHO answered for an unknown calling AE title",
                                    asset=asset, severity=Severity.LOW, service="echo",
                                    status=s.echo))
        if s.find_status in (*_OK, *_PENDING):
            out.append(self.finding("C-FIND accepted from an unknown calling AE title",
                                    asset=asset, service="query", model=s.find_model,
                                    status=s.find_status))
        retrieve: dict[str, Any] = {}
        if s.getprobe_status in _SUBOPS_DONE:
            retrieve["get_probe_status"] = s.getprobe_status
        if s.get_status in _SUBOPS_DONE and s.get_received:
            retrieve["get_received"] = s.get_received
        if s.move_status in _SUBOPS_DONE and s.move_received:
            retrieve["move_received"] = s.move_received
        if retrieve:
            out.append(self.finding("C-GET/C-MOVE accepted from an unknown calling AE title",
                                    asset=asset, service="retrieve", **retrieve))
        return out


@register
class CallingAetSpoofable(Check):
    id = "dicom.calling-aet-spoofable"
    severity = Severity.HIGH
    description = ("A known peer's AE title is accepted from an address that is not that "
                   "peer's: only the AE title is checked, not the host.")
    remedy = ("Tie each registered AE title to its host (Orthanc: DicomCheckModalityHost true; "
              "most PACS: 'check host'), and prefer mutual TLS.")
    sends = ("for each --known-peer / stored peer: A-ASSOCIATE-RQ with its AE title from this "
             "station, C-ECHO-RQ, C-FIND-RQ (cancelled at the 1st match)",)

    def run(self, probe: NodeProbe) -> list[Finding]:
        _need_dicom(probe)
        peers = [p for p in probe.options.known_peers if p.host != probe.base.local_address]
        if not peers:
            raise NotRun("no known peer with an address other than this station's "
                         "(use --known-peer AET@host)")
        out: list[Finding] = []
        for peer in peers:
            s = probe.spoof(peer)
            if s is None or s.association != "accept":
                continue
            served = [name for name, status in (("echo", s.echo), ("query", s.find_status))
                      if status in (*_OK, *_PENDING)]
            if served:
                out.append(self.finding(
                    f"AE title {peer.aet} (registered at {peer.host}) accepted from "
                    f"{probe.base.local_address}: {', '.join(served)} served",
                    asset=probe.target.name, peer_aet=peer.aet, peer_host=peer.host,
                    from_address=probe.base.local_address, served=served))
        return out


@register
class QueryOpen(Check):
    id = "dicom.query-open"
    severity = Severity.HIGH
    description = ("An unknown caller's C-FIND returns matches: patient data can be listed. "
                   "Proven at the first match; only a count and a salted hash are kept.")
    remedy = ("Refuse C-FIND from unregistered AE titles and hosts; limit query results; "
              "require TLS with client certificates for query clients.")
    sends = ("C-FIND-RQ, STUDY level, Study Root (then Patient Root), only Study Instance UID "
             "asked; C-CANCEL-RQ at the first match",)

    def run(self, probe: NodeProbe) -> list[Finding]:
        s = _session(probe)
        if s.find_matches:
            return [self.finding(f"C-FIND from an unknown caller returned matches "
                                 f"({s.find_model}); stopped at the first",
                                 asset=probe.target.name, matches_seen=s.find_matches,
                                 model=s.find_model, salted_hash=s.find_hash)]
        return []


@register
class RetrieveOpen(Check):
    id = "dicom.retrieve-open"
    severity = Severity.CRITICAL
    intrusive = True
    description = ("C-MOVE to an unregistered destination, or C-GET, delivers instances to an "
                   "unknown caller (exfiltration path). Proven against a destination RadGuard "
                   "listens on itself; nothing received is kept.")
    remedy = ("Allow C-MOVE only to registered destinations and C-GET only to registered, "
              "authenticated peers (Orthanc: DicomAlwaysAllowGet/Move false).")
    sends = ("C-GET-RQ of RadGuard's own test object (or the first matched study)",
             "C-MOVE-RQ of the same to a random AE title RadGuard listens on")

    def run(self, probe: NodeProbe) -> list[Finding]:
        s = _session(probe)
        out = []
        if s.get_received:
            out.append(self.finding(f"C-GET delivered {s.get_received} instance(s) to an unknown "
                                    "caller (dropped on arrival)", asset=probe.target.name,
                                    service="C-GET", received=s.get_received))
        if s.move_received:
            out.append(self.finding(f"C-MOVE to an unregistered destination delivered "
                                    f"{s.move_received} instance(s) (dropped on arrival)",
                                    asset=probe.target.name, service="C-MOVE",
                                    received=s.move_received))
        return out


@register
class StoreOpen(Check):
    id = "dicom.store-open"
    severity = Severity.HIGH
    intrusive = True
    description = ("An unknown caller may C-STORE (data injection). Proven with a clearly "
                   "labelled, harmless test object that RadGuard deletes where it can.")
    remedy = ("Accept C-STORE only from registered modalities and hosts (Orthanc: "
              "DicomAlwaysAllowStore false with DicomModalities).")
    sends = ("C-STORE-RQ of an 8x8 Secondary Capture labelled 'RADGUARD SECURITY ASSESSMENT "
             "TEST OBJECT - SAFE TO DELETE'", "Orthanc REST DELETE of it when reachable")

    def run(self, probe: NodeProbe) -> list[Finding]:
        s = _session(probe)
        if s.store_status not in (0x0000, 0xB000, 0xB007, 0xB006):
            return []
        cleanup = probe.cleanup(s.store_uids)
        uid = s.store_uids.get("instance", "")
        return [self.finding(f"C-STORE accepted from an unknown caller; test object {uid} "
                             f"{cleanup}", asset=probe.target.name, status=s.store_status,
                             cleaned=cleanup.startswith("deleted"))]


@register
class IdentityPlaintext(Check):
    id = "dicom.identity-plaintext"
    severity = Severity.HIGH
    description = ("User identity negotiation (PS3.7 D.3.3.7) with a passcode is used over a "
                   "plaintext association (acknowledged, verified or required): passcodes travel "
                   "in clear.")
    remedy = "Require TLS for associations that carry user identity; refuse it on plaintext ports."
    sends = ("plaintext A-ASSOCIATE-RQ with User Identity (type 2, dummy user 'radguard-probe' and "
             "a random passcode, positive response requested)",)

    def run(self, probe: NodeProbe) -> list[Finding]:
        _need_dicom(probe)
        if probe.transport != "plain":
            raise NotRun("TLS endpoint: identity is not sent in clear")
        a = probe.identity
        if a is None:
            return []
        answered = a.accepted and a.answer.identity_response is not None
        checks_it = probe.base.accepted and a.answer.kind == "reject"
        needs_it = a.accepted and not probe.base.accepted
        if not (answered or checks_it or needs_it):
            return []
        how = ("acknowledged the identity (server response 0x59)" if answered else
               "evaluated the passcode (refused RadGuard's random one)" if checks_it else
               "accepted the association only with an identity")
        return [self.finding(f"user identity negotiation over plaintext: the node {how}; "
                             "users' passcodes reach it in clear", asset=probe.target.name,
                             identity_type=2, behaviour="answered" if answered else
                             "verified" if checks_it else "required")]


@register
class Fingerprint(Check):
    id = "dicom.fingerprint"
    severity = Severity.INFO
    description = ("Implementation class UID and version name, accepted SOP classes and transfer "
                   "syntaxes (probed in tiers of at most 128 contexts; one association by "
                   "default, the full inventory with --fingerprint-depth full; Verification only "
                   "with --fingerprint-depth minimal), inferred role.")
    remedy = "Keep the inventory (AE titles, software versions) current; compare with the MDS2 form."
    sends = (f"A-ASSOCIATE-RQ of the discovery tier ({len(tier_contexts(0))} presentation "
             "contexts: services and common storage classes), then A-RELEASE; this is the base "
             "association, shared by every check",
             "with --fingerprint-depth full, for a node that accepted it: one A-ASSOCIATE-RQ per "
             "inventory tier (<=128 contexts each), then A-RELEASE")

    @classmethod
    def plan(cls, fingerprint_depth: str) -> tuple[str, ...]:
        if fingerprint_depth == "minimal":
            return ("A-ASSOCIATE-RQ with 1 presentation context (Verification), then A-RELEASE; "
                    "this is the base association, shared by every check",)
        if fingerprint_depth == "full":
            extra = len(tiers_for("full")) - 1
            return (cls.sends[0], f"for a node that accepted it: {extra} more A-ASSOCIATE-RQ "
                    "(inventory tiers of <=128 presentation contexts each), each then A-RELEASE")
        return cls.sends[:1]

    def run(self, probe: NodeProbe) -> list[Finding]:
        _need_dicom(probe)
        fp = fingerprint(probe)
        brief = {k: fp[k] for k in ("implementation_class_uid", "implementation_version",
                                    "transport", "roles", "association")}
        brief["depth"] = fp["depth"]
        brief["sop_classes_accepted"] = len(fp["sop_classes"])
        brief["transfer_syntaxes_accepted"] = len(fp["transfer_syntaxes"])
        version = fp["implementation_version"] or "no version name"
        roles = (", ".join(fp["roles"]) or "unknown") if fp["roles_inferred"] else \
            "not probed (fingerprint depth minimal)"
        return [self.finding(f"DICOM {fp['transport']} node: {version}, roles {roles}",
                             asset=probe.target.name, **brief)]
