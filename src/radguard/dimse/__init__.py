"""dimse: DICOM associations through pynetdicom (PS3.7, PS3.8) with TLS per PS3.15 B.12.

Shared by the importer and, read-only, by the assessment subsystem: :func:`open_association`
(TCP_NODELAY, RadGuard's implementation UID, TLS; used for storage commitment) and
:func:`meaning` (status table).

The importer's bulk path uses :class:`radguard.dimse.scu.Association` (a synchronous requestor for
C-STORE and C-FIND, PDUs from :mod:`radguard.dimse.pdu`) and :func:`radguard.dimse.confirm.
held_instances` (many instances per C-FIND); pynetdicom remains the implementation for the rest.
"""

from __future__ import annotations

from radguard.dimse.association import MAX_CONTEXTS, CommitSettings, Peer, open_association, set_nodelay
from radguard.dimse.errors import AssociationFailed, DimseError, TlsConfigError
from radguard.dimse.status import StatusMeaning, meaning, table_version
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
    "client_context",
    "meaning",
    "open_association",
    "set_nodelay",
    "table_version",
]
