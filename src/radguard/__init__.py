"""RadGuard: cybersecurity for medical-imaging departments.

Quarantine scanning of outside media, encrypted export media, de-identification, assessment of DICOM
services, and an audit record repository, after NEMA/MITA CSP 1-2015 and DICOM PS3.15.
"""

from __future__ import annotations

from radguard.errors import RadGuardError
from radguard.findings import ControlRef, Evidence, Finding, Severity, Verdict

__version__ = "0.1.0"

__all__ = [
    "ControlRef",
    "Evidence",
    "Finding",
    "RadGuardError",
    "Severity",
    "Verdict",
    "__version__",
]
