"""Fingerprint tiers against real pynetdicom SCPs on loopback: the default (``compact``) depth is
ONE association whose discovery tier is enough to infer the role; ``full`` adds the inventory tiers
(the rest of the SOP classes and the transfer-syntax probe), one association each."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pynetdicom import AE

from radguard.assess import ProbeOptions, parse_targets, run_assessment, select
from radguard.assess.politeness import Politeness
from radguard.assess.probe import base_contexts, tier_contexts, tier_count, tiers_for
from radguard.assess.runner import dry_run
from radguard.assess.tables import load

OPHTHALMIC_TOMOGRAPHY = "1.2.840.10008.5.1.4.1.1.77.1.5.4"
"""Ophthalmic Tomography Image Storage: in an inventory tier, not in the discovery tier."""
BIG_ENDIAN = "1.2.840.10008.1.2.2"


def _discovery_classes() -> list[str]:
    return [c["uid"] for c in load("sop-tiers.json")["tiers"][0]["sop_classes"]]


def _scp(classes: list[str]) -> tuple[Any, int]:
    """A pynetdicom acceptor that supports exactly ``classes`` (pynetdicom's default transfer
    syntaxes: implicit, explicit little endian, deflated, explicit big endian)."""
    ae = AE(ae_title="TIERSCP")
    ae.require_called_aet = True
    for uid in classes:
        ae.add_supported_context(uid)
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[])
    return server, server.server_address[1]


@pytest.fixture(scope="module")
def discovery_only() -> Iterator[int]:
    """Given a peer that accepts only the discovery tier's SOP classes."""
    server, port = _scp(_discovery_classes())
    yield port
    server.shutdown()


@pytest.fixture(scope="module")
def with_inventory_class() -> Iterator[int]:
    """Given a peer that accepts Verification, CT and one class found only in an inventory tier."""
    server, port = _scp(["1.2.840.10008.1.1", "1.2.840.10008.5.1.4.1.1.2",
                         OPHTHALMIC_TOMOGRAPHY])
    yield port
    server.shutdown()


def _fingerprint(port: int, depth: str, aet: str = "TIERSCP") -> tuple[dict[str, Any], int]:
    options = ProbeOptions(salt=b"test-salt", fingerprint_depth=depth)  # type: ignore[arg-type]
    r = run_assessment(parse_targets([f"127.0.0.1:{port}/{aet}"]),
                       select(["dicom.fingerprint"], intrusive=False), options,
                       Politeness(rate=100.0, timeout=3.0, budget=60.0))
    n = r.nodes[0]
    assert n.checks == {"dicom.fingerprint": "ran"}
    assert r.options["fingerprint_depth"] == depth
    return n.fingerprint, n.connections


def test_compact_is_one_association_that_infers_every_role(discovery_only: int) -> None:
    # When fingerprinted at the default depth
    fp, connections = _fingerprint(discovery_only, "compact")
    # Then exactly one association was made, and it named every service and role
    assert connections == 1
    assert fp["depth"] == "compact" and fp["tiers_probed"] == 1
    assert fp["association"] == "accept" and fp["implementation_class_uid"]
    assert len(fp["sop_classes"]) == len(_discovery_classes())
    assert set(fp["roles"]) == {"archive", "query-retrieve", "worklist", "mpps", "print",
                                "storage-commitment", "storage"}
    # only the proposed default transfer syntaxes can come back at this depth
    assert set(fp["transfer_syntaxes"]) <= set(load("sop-tiers.json")["default_transfer_syntaxes"])


def test_full_adds_the_inventory_tiers_and_the_transfer_syntax_probe(discovery_only: int) -> None:
    fp, connections = _fingerprint(discovery_only, "full")
    # Then one association per tier, the same SOP classes (the peer has no other) ...
    assert connections == tier_count() == len(tiers_for("full"))
    assert fp["depth"] == "full" and fp["tiers_probed"] == tier_count()
    assert len(fp["sop_classes"]) == len(_discovery_classes())
    # ... and the transfer-syntax probe found a syntax the compact tier never proposes
    assert BIG_ENDIAN in fp["transfer_syntaxes"]


def test_full_finds_classes_the_compact_tier_does_not_propose(with_inventory_class: int) -> None:
    compact, c1 = _fingerprint(with_inventory_class, "compact")
    full, c2 = _fingerprint(with_inventory_class, "full")
    assert c1 == 1 and c2 == tier_count()
    assert "OphthalmicTomographyImageStorage" not in compact["sop_classes"]
    assert "OphthalmicTomographyImageStorage" in full["sop_classes"]
    assert compact["roles"] == full["roles"] == ["storage"]


def test_refused_association_probes_no_further_tier(discovery_only: int) -> None:
    # Given a called AE title the peer refuses, When fingerprinted in full, Then no tier follows
    fp, connections = _fingerprint(discovery_only, "full", aet="NOTTHEPEER")
    assert fp["association"] == "reject" and connections == 1 and fp["tiers_probed"] == 0


def test_discovery_tier_is_compact_and_holds_every_role_rule() -> None:
    table = load("sop-tiers.json")
    discovery = {c.abstract_syntax for c in tier_contexts(0)}
    assert len(tier_contexts(0)) <= 40 < sum(len(tier_contexts(i)) for i in range(tier_count()))
    for rule in table["roles"]:
        assert set(rule.get("any_of", [])) <= discovery, rule["role"]
    assert tiers_for("compact") == (0,)
    with pytest.raises(ValueError, match="fingerprint depth"):
        tiers_for("deep")  # type: ignore[arg-type]
    every = [c.abstract_syntax for i in range(tier_count()) for c in tier_contexts(i)]
    probe = table["transfer_syntax_probe"]["sop_class"]
    assert len([u for u in every if u != probe]) == len({u for u in every if u != probe})


def test_dry_run_plan_follows_the_depth() -> None:
    targets = parse_targets(["127.0.0.1:104/PACS"])
    checks = select(["dicom.fingerprint"], intrusive=False)
    compact = dry_run(targets, checks)[0]["sends"]
    full = dry_run(targets, checks, fingerprint_depth="full")[0]["sends"]
    assert len(compact) == 1 and "discovery tier" in compact[0]
    assert len(full) == 2 and f"{tier_count() - 1} more A-ASSOCIATE-RQ" in full[1]


def test_minimal_is_one_association_of_one_context_and_claims_no_role(
        discovery_only: int) -> None:
    # When fingerprinted at depth minimal (the probe load of nmap's dicom-ping)
    fp, connections = _fingerprint(discovery_only, "minimal")
    # Then one association proposing Verification alone identified the node and its software ...
    assert connections == 1 and tiers_for("minimal") == ()
    assert fp["association"] == "accept" and fp["implementation_class_uid"]
    assert fp["sop_classes"] == ["Verification"]
    # ... and no role is claimed from it (it would otherwise read "verification-only")
    assert fp["roles"] == [] and fp["roles_inferred"] is False
    assert fp["depth"] == "minimal" and fp["tiers_probed"] == 0
    assert [c.abstract_syntax for c in base_contexts("minimal")] == ["1.2.840.10008.1.1"]
    compact, _ = _fingerprint(discovery_only, "compact")
    assert compact["roles_inferred"] is True and compact["roles"]


def test_minimal_refused_called_aet_is_still_a_dicom_answer(discovery_only: int) -> None:
    fp, connections = _fingerprint(discovery_only, "minimal", aet="NOTTHEPEER")
    assert fp["association"] == "reject" and connections == 1


def test_dry_run_plan_at_minimal_is_one_context() -> None:
    targets = parse_targets(["127.0.0.1:104/PACS"])
    sends = dry_run(targets, select(["dicom.fingerprint"], intrusive=False),
                    fingerprint_depth="minimal")[0]["sends"]
    assert len(sends) == 1 and "1 presentation context (Verification)" in sends[0]
