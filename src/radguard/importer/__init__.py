"""importer: verified custody packages into PACS (DIMSE or DICOMweb), reconciled and journalled."""

from __future__ import annotations

from radguard.importer.destination import WebDestination, parse_destination
from radguard.importer.errors import (
    DestinationInvalid,
    DestinationUnavailable,
    ReconciliationNeeded,
)
from radguard.importer.interface import ImportOptions, ImportReport, InstanceResult
from radguard.importer.run import import_package

__all__ = [
    "DestinationInvalid",
    "DestinationUnavailable",
    "ImportOptions",
    "ImportReport",
    "InstanceResult",
    "ReconciliationNeeded",
    "WebDestination",
    "import_package",
    "parse_destination",
]
