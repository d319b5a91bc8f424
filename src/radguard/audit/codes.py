"""Coded values of PS3.15 A.5 audit messages, loaded from the versioned data file
``radguard/data/audit/dcm-codes.json`` (PS3.16 CID 400-405, scheme DCM; RFC 3881 object ID types).

The table is data, not code: add a code by editing the JSON and bumping its ``version``. Reports
that use these codes can print :data:`VERSION`. Look-ups raise :class:`KeyError` naming the table
and code; the named constants below are the codes RadGuard's builders use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

from radguard.audit.message import CodedValue

__all__ = [
    "VERSION",
    "CodeTables",
    "event_id",
    "event_type",
    "load",
    "media_type",
    "object_id_type",
    "role_id",
]

_DATA = "data/audit/dcm-codes.json"


@dataclass(frozen=True, slots=True)
class CodeTables:
    """The parsed code file: ``version`` and, per table, ``{(scheme, code): CodedValue}``."""

    version: str
    tables: Mapping[str, Mapping[tuple[str, str], CodedValue]]

    def get(self, table: str, code: str, scheme: str = "DCM") -> CodedValue:
        """The coded value ``code`` of ``scheme`` in ``table``; ``KeyError`` if unknown."""
        try:
            return self.tables[table][(scheme, code)]
        except KeyError:
            raise KeyError(f"no code {scheme}:{code} in audit code table {table!r}") from None


@cache
def load() -> CodeTables:
    """Load (once) and return the packaged code tables."""
    raw = json.loads(resources.files("radguard").joinpath(_DATA).read_text(encoding="utf-8"))
    tables = {
        name: MappingProxyType(
            {
                (r["scheme"], r["code"]): CodedValue(r["code"], r["scheme"], r["display"])
                for r in rows
            }
        )
        for name, rows in raw["tables"].items()
    }
    return CodeTables(version=str(raw["version"]), tables=MappingProxyType(tables))


def event_id(code: str) -> CodedValue:
    """EventID (CID 400), e.g. ``event_id("110107")`` is Import."""
    return load().get("EventID", code)


def event_type(code: str) -> CodedValue:
    """EventTypeCode (CID 401), e.g. ``event_type("110120")`` is Application Start."""
    return load().get("EventTypeCode", code)


def role_id(code: str) -> CodedValue:
    """RoleIDCode (CID 402), e.g. ``role_id("110155")`` is Source Media."""
    return load().get("RoleIDCode", code)


def object_id_type(code: str, scheme: str = "DCM") -> CodedValue:
    """ParticipantObjectIDTypeCode: DCM 110180-110182 (CID 404) or ``scheme="RFC-3881"``."""
    return load().get("ParticipantObjectIDTypeCode", code, scheme)


def media_type(code: str) -> CodedValue:
    """MediaType (CID 405), e.g. ``media_type("110032")`` is CD."""
    return load().get("MediaType", code)


VERSION: str = load().version

# Named constants, resolved from the data file at import.
APPLICATION_ACTIVITY = event_id("110100")
AUDIT_LOG_USED = event_id("110101")
INSTANCES_ACCESSED = event_id("110103")
INSTANCES_TRANSFERRED = event_id("110104")
STUDY_DELETED = event_id("110105")
EXPORT = event_id("110106")
IMPORT = event_id("110107")
NETWORK_ENTRY = event_id("110108")
QUERY = event_id("110112")
SECURITY_ALERT = event_id("110113")
USER_AUTHENTICATION = event_id("110114")

APPLICATION_START = event_type("110120")
APPLICATION_STOP = event_type("110121")
LOGIN = event_type("110122")
LOGOUT = event_type("110123")
ATTACH = event_type("110124")
DETACH = event_type("110125")

ROLE_APPLICATION = role_id("110150")
ROLE_APPLICATION_LAUNCHER = role_id("110151")
ROLE_DESTINATION = role_id("110152")
ROLE_SOURCE = role_id("110153")
ROLE_DESTINATION_MEDIA = role_id("110154")
ROLE_SOURCE_MEDIA = role_id("110155")

STUDY_INSTANCE_UID = object_id_type("110180")
SOP_CLASS_UID = object_id_type("110181")
NODE_ID = object_id_type("110182")
PATIENT_NUMBER = object_id_type("2", "RFC-3881")
URI = object_id_type("12", "RFC-3881")
