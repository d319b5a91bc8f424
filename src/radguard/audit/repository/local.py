"""RadGuard's own emitter writing straight into a local repository store.

With ``local_repository = true`` in the ``[audit]`` section, :class:`radguard.audit.AuditEmitter`
hands every message it emits to a :class:`LocalRepository` as well: the XML is framed as the
RFC 5424 message a syslog sender would have sent and appended to the store's chain as transport
``local``, source ``local``. A running ``radguard audit serve`` on the same store picks such
records up by id and evaluates its rules on them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from radguard.audit.repository.parse import parse_message
from radguard.audit.repository.records import RecordWriter
from radguard.audit.syslog import frame
from radguard.store import Store

__all__ = ["LocalRepository"]


class LocalRepository:
    """Appends emitted audit XML to the repository in the store at ``db_url``."""

    def __init__(self, db_url: str, station: str) -> None:
        self.db_url = db_url
        self.station = station
        self._store: Store | None = None

    def append(self, xml: bytes) -> int:
        """Store one message; return its record id. Raises ``StoreError``."""
        if self._store is None:
            self._store = Store.open(self.db_url)
        raw = frame(xml, hostname=self.station)
        parsed = parse_message(raw, transport="local", peer="local",
                               received_at=datetime.now(UTC))
        return RecordWriter(self._store).append(
            [parsed], {("local", "received"): 1})[0]

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
