"""Fixtures of the assessment tests: certificates, Orthanc peers, and a helper that assesses."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from radguard.assess import (
    Credentials,
    KnownPeer,
    Politeness,
    ProbeOptions,
    parse_targets,
    run_assessment,
    select,
)
from radguard.assess.report import AssessReport, NodeResult
from tests.assess.certs import TestPki
from tests.support.peers import OrthancPeer, start_orthanc

STRONG = "Zq8-strong-secret-not-default-7731"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def orthanc_default(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancPeer]:
    peer = start_orthanc(tmp_path_factory.mktemp("orthanc-default"))
    yield peer
    peer.stop()


@pytest.fixture(scope="session")
def orthanc_hardened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancPeer]:
    peer = start_orthanc(tmp_path_factory.mktemp("orthanc-hardened"), overrides={
        "DicomCheckCalledAet": True, "DicomAlwaysAllowEcho": False,
        "DicomAlwaysAllowStore": False, "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowGet": False, "DicomAlwaysAllowMove": False,
        "DicomModalities": {"CT01": ["CT01", "10.9.9.9", 104]}, "DicomCheckModalityHost": True,
        "AuthenticationEnabled": True, "RegisteredUsers": {"admin": STRONG},
        "ExecuteLuaEnabled": False})
    yield peer
    peer.stop()


@pytest.fixture(scope="session")
def orthanc_weak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancPeer]:
    """Remote access, weak credentials, DICOMweb, Lua, AE-only peer check, open find/get."""
    peer = start_orthanc(tmp_path_factory.mktemp("orthanc-weak"), overrides={
        "RemoteAccessAllowed": True, "AuthenticationEnabled": True,
        "RegisteredUsers": {"orthanc": "orthanc"}, "ExecuteLuaEnabled": True,
        "DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True,
        "DicomModalities": {"CT01": ["CT01", "10.9.9.9", 104]}, "DicomCheckModalityHost": False})
    from pydicom.data import get_testdata_file

    peer.rest("/instances", method="POST", auth=("orthanc", "orthanc"),
              body=Path(get_testdata_file("CT_small.dcm")).read_bytes())
    yield peer
    peer.stop()


def assess(targets: Sequence[str], only: Sequence[str] = (), *, intrusive: bool = False,
           credentials: Credentials | None = None, peers: Sequence[KnownPeer] = (),
           move_port: int = 0, timeout: float = 3.0) -> AssessReport:
    """Assess through the library (the CLI has its own tests)."""
    options = ProbeOptions(intrusive=intrusive, credentials=credentials or Credentials(),
                           known_peers=tuple(peers), salt=b"test-salt", move_port=move_port)
    return run_assessment(parse_targets(targets), select(only, intrusive=intrusive), options,
                          Politeness(rate=100.0, timeout=timeout, budget=60.0))


def node(report: AssessReport, needle: str | int) -> NodeResult:
    for n in report.nodes:
        if str(needle) in n.target:
            return n
    raise AssertionError(f"no node {needle} in {[n.target for n in report.nodes]}")


def ids(n: NodeResult) -> set[str]:
    return {f.check_id for f in n.findings}


def details(n: NodeResult, check_id: str) -> list[dict[str, Any]]:
    return [dict(f.evidence.details) for f in n.findings if f.check_id == check_id]
