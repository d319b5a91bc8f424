"""media: quarantine scanning of outside media (and, later, sanitising, import and export)."""

from __future__ import annotations

from radguard.media.interface import FileReport, MediumReport
from radguard.media.scan import ScanOptions, scan_medium

__all__ = ["FileReport", "MediumReport", "ScanOptions", "scan_medium"]
