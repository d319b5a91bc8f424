"""dimse: DICOM associations through pynetdicom (PS3.7, PS3.8) with TLS per PS3.15 B.12.

Shared by the importer and, read-only, by the assessment subsystem: :func:`open_association`
(TCP_NODELAY, RadGuard's implementation UID, TLS), :func:`send_encoded` (C-STORE of verified
bytes), :func:`instances_in_study` (C-FIND confirmation), :func:`meaning` (status table).

The importer's bulk path uses :class:`radguard.dimse.scu.Association` (a synchronous requestor for
C-STORE and C-FIND, PDUs from :mod:`radguard.dimse.pdu`) and :func:`radguard.dimse.confirm.
held_instances` (many instances per C-FIND); pynetdicom remains the implementation for the rest.
"""

from __future__ import annotations

from radguard.dimse.association import MAX_CONTEXTS, CommitSettings, Peer, open_association, set_nodelay
from radguard.dimse.errors import AssociationFailed, DimseError, TlsConfigError
from radguard.dimse.find import instances_in_study
from radguard.dimse.status import StatusMeaning, meaning, table_version
from radguard.dimse.store import accepted_context, send_encoded
from radguard.dimse.tls import BCP195_TLS12_CIPHERS, TlsOptions, client_context

__all__ = [
    "BCP195_TLS12_CIPHERS",
    "MAX_CONTEXTS",
    "AssociationFailed",
    "CommitSettings",
    "DimseError",
    "Peer",
    "StatusMeaning",
    "TlsConfigError",
    "TlsOptions",
    "accepted_context",
    "client_context",
    "instances_in_study",
    "meaning",
    "open_association",
    "send_encoded",
    "set_nodelay",
    "table_version",
]
