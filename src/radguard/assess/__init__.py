"""Authorised security assessment of DICOM (DIMSE) and DICOMweb/Orthanc services.

Scope is explicit (:mod:`~radguard.assess.targets`); each node is probed once
(:mod:`~radguard.assess.probe`) with per-device politeness (:mod:`~radguard.assess.politeness`);
checks are small classes in one registry (:mod:`~radguard.assess.checks`); TLS is graded against
PS3.15 B.12/B.13 (:mod:`~radguard.assess.tlsgrade`) from versioned tables in
``radguard/data/assess``. :func:`run_job` audits, assesses and records; :func:`run_assessment`
only assesses. The library never prints.
"""

from __future__ import annotations

from radguard.assess.checks import REGISTRY, Check, NotRun, all_checks, select
from radguard.assess.errors import CredentialsError, TargetError
from radguard.assess.jobs import load_salt, run_job
from radguard.assess.politeness import Politeness
from radguard.assess.probe import ProbeOptions
from radguard.assess.report import AssessReport, Changes, NodeResult
from radguard.assess.runner import dry_run, run_assessment
from radguard.assess.targets import (
    Credentials,
    KnownPeer,
    Target,
    load_credentials,
    parse_known_peer,
    parse_target,
    parse_targets,
)

__all__ = [
    "REGISTRY",
    "AssessReport",
    "Changes",
    "Check",
    "Credentials",
    "CredentialsError",
    "KnownPeer",
    "NodeResult",
    "NotRun",
    "Politeness",
    "ProbeOptions",
    "Target",
    "TargetError",
    "all_checks",
    "dry_run",
    "load_credentials",
    "load_salt",
    "parse_known_peer",
    "parse_target",
    "parse_targets",
    "run_assessment",
    "run_job",
    "select",
]
