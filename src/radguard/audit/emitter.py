"""RadGuard's own audit trail: validate, journal locally, deliver by syslog, spool when down.

:meth:`AuditEmitter.emit` is the one call every subsystem makes for a security-relevant action
(DESIGN invariant 2). For each message it

1. serialises and validates it against PS3.15 A.5.1 (an invalid message is a bug: it raises
   :class:`AuditSchemaError` and nothing is recorded);
2. appends it to the local journal ``HOME/audit/journal/YYYY-MM.log`` under an exclusive lock and
   fsyncs it. A record is RFC 6587 octet counting plus a newline, ``LEN SP XML LF``, so the file is
   readable with ``less`` and a torn last record (crash mid-write) is detected on reading;
3. when a repository URL is configured, writes it to the spool ``HOME/audit/spool/`` (temp file,
   fsync, rename) and then delivers the whole spool, oldest first, deleting each file only after its
   delivery. A repository that is down leaves the messages in the spool for the next emit (or
   :meth:`AuditEmitter.flush`) and is logged as a warning; it never raises.

4. when a local repository is attached (``repository``; from the settings: ``local_repository =
   true`` in the ``[audit]`` section), appends it straight into the audit record repository in
   the store (:class:`radguard.audit.repository.LocalRepository`). A store that refuses is logged
   as a warning; the journal already holds the message.

Delivery is at-least-once: a crash between sending and deleting a spool file resends it later.
Locks use ``fcntl.flock`` (POSIX), so several RadGuard processes may share one home.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from radguard.audit.message import AuditMessage
from radguard.audit.schema import validate
from radguard.audit.syslog import SyslogSender, SyslogUnavailable
from radguard.errors import AuditError, RadGuardError

if TYPE_CHECKING:
    from radguard.config import Settings

__all__ = ["AuditEmitter", "read_journal"]

log = logging.getLogger(__name__)


class _RepositorySink(Protocol):
    """Where :meth:`AuditEmitter.emit` also writes when a local repository is attached."""

    def append(self, xml: bytes) -> int: ...

_SPOOL_SUFFIX = ".xml"


class AuditEmitter:
    """Emits RadGuard's audit messages (PS3.15 A.5) to a local journal and an audit repository.

    Parameters
    ----------
    home:
        RadGuard's data directory; the journal and spool live under ``home/audit/``.
    station, site:
        This station's name and the Audit Enterprise Site ID, for builders (:attr:`station`,
        :attr:`site`) and as the syslog HOSTNAME.
    syslog_url:
        ``udp://``, ``tcp://`` or ``tls://host:port`` of the audit repository, or ``None`` for the
        journal only.
    ca, cert, key:
        TLS options for a ``tls://`` repository (paths to PEM files).
    timeout:
        Seconds allowed to connect and send to the repository.
    repository:
        An object with ``append(xml: bytes)`` (a local audit record repository) that receives
        every emitted message too, or ``None``.

    Raises
    ------
    AuditError
        The URL is invalid or the TLS files cannot be loaded (at construction, not at emit).
    """

    def __init__(
        self,
        home: Path,
        station: str,
        site: str | None = None,
        syslog_url: str | None = None,
        *,
        ca: str | os.PathLike[str] | None = None,
        cert: str | os.PathLike[str] | None = None,
        key: str | os.PathLike[str] | None = None,
        app_name: str = "radguard",
        timeout: float = 5.0,
        repository: _RepositorySink | None = None,
    ) -> None:
        self.station = station
        self.repository = repository
        self.site = site
        self.journal_dir = Path(home) / "audit" / "journal"
        self.spool_dir = Path(home) / "audit" / "spool"
        self.sender: SyslogSender | None = None
        if syslog_url:
            self.sender = SyslogSender.from_url(
                syslog_url, ca=ca, cert=cert, key=key, hostname=station, app_name=app_name,
                timeout=timeout,
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditEmitter:
        """An emitter configured from ``home``, ``station``, ``site`` and the ``audit_syslog*``
        settings; with ``local_repository = true`` in ``[audit]`` it also writes straight into
        the audit record repository of the store (``database_url``)."""
        repository: _RepositorySink | None = None
        if settings.section("audit").get("local_repository"):
            from radguard.audit.repository.local import LocalRepository

            repository = LocalRepository(settings.db_url, settings.station_name)
        return cls(
            settings.home_path,
            settings.station_name,
            settings.site or None,
            settings.audit_syslog or None,
            ca=settings.audit_syslog_ca or None,
            cert=settings.audit_syslog_cert or None,
            key=settings.audit_syslog_key or None,
            repository=repository,
        )

    # -- emitting --------------------------------------------------------------------------------

    def emit(self, message: AuditMessage) -> None:
        """Validate, journal and (if configured) deliver ``message``; see the module docstring.

        Raises
        ------
        AuditSchemaError
            The message does not conform to PS3.15 A.5.1; nothing was recorded.
        AuditError
            The local journal or spool cannot be written (disk full, permissions).
        """
        self.emit_many([message])

    def emit_many(self, messages: Sequence[AuditMessage]) -> None:
        """Like :meth:`emit` for several messages, with one journal write and one fsync.

        All messages are validated before any is recorded: an invalid one records none.
        """
        xmls = [m.to_xml() for m in messages]
        for xml in xmls:
            validate(xml)
        if not xmls:
            return
        self._append_journal(*xmls)
        for xml in xmls:
            if self.repository is not None:
                try:
                    self.repository.append(xml)
                except RadGuardError as exc:
                    log.warning("local audit repository refused a message (%s); it is in the "
                                "journal", exc.message)
            if self.sender is not None:
                self._spool(xml)
        if self.sender is not None:
            self.flush()

    def flush(self) -> int:
        """Deliver spooled messages, oldest first; return how many are still pending.

        Never raises for an unreachable repository: it logs a warning and keeps the spool.
        """
        if self.sender is None:
            return len(self.pending())
        with _locked(self.spool_dir / ".lock"):
            pending = self.pending()
            for index, path in enumerate(pending):
                try:
                    self.sender.send(path.read_bytes())
                except SyslogUnavailable as exc:
                    left = len(pending) - index
                    log.warning("audit repository %s unavailable (%s); %d message(s) spooled in %s",
                                self.sender.url, exc.message, left, self.spool_dir)
                    return left
                path.unlink()
            return 0

    def pending(self) -> list[Path]:
        """Spooled messages awaiting delivery, oldest first."""
        if not self.spool_dir.is_dir():
            return []
        return sorted(p for p in self.spool_dir.iterdir() if p.suffix == _SPOOL_SUFFIX)

    # -- reading back ----------------------------------------------------------------------------

    def journal_records(self) -> Iterator[bytes]:
        """The journal's messages (XML bytes), oldest first. See :func:`read_journal`."""
        if not self.journal_dir.is_dir():
            return
        for path in sorted(self.journal_dir.glob("*.log")):
            yield from read_journal(path)

    # -- storage ---------------------------------------------------------------------------------

    def _append_journal(self, *xmls: bytes) -> None:
        path = self.journal_dir / f"{datetime.now(UTC):%Y-%m}.log"
        record = b"".join(str(len(xml)).encode("ascii") + b" " + xml + b"\n" for xml in xmls)
        try:
            created = _ensure_dir(self.journal_dir) or not path.exists()
            with _locked(self.journal_dir / ".lock"):
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    _write_all(fd, record)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            if created:
                _fsync_dir(self.journal_dir)
        except OSError as exc:
            raise AuditError(f"cannot append to the audit journal: {exc.strerror}",
                             subject=str(path),
                             remedy="free disk space or fix permissions of RADGUARD_HOME") from exc

    def _spool(self, xml: bytes) -> None:
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        final = self.spool_dir / (name + _SPOOL_SUFFIX)
        tmp = self.spool_dir / (name + ".tmp")
        try:
            _ensure_dir(self.spool_dir)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                _write_all(fd, xml)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
            _fsync_dir(self.spool_dir)
        except OSError as exc:
            raise AuditError(f"cannot spool an audit message: {exc.strerror}",
                             subject=str(self.spool_dir),
                             remedy="free disk space or fix permissions of RADGUARD_HOME") from exc


def read_journal(path: Path) -> Iterator[bytes]:
    """The XML messages of one journal file (records ``LEN SP XML LF``), in order.

    Raises
    ------
    AuditError
        A record is malformed; ``subject`` names the file and the byte offset. A torn record at
        the very end (a crash mid-append) is reported the same way, after the complete ones.
    """
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        space = data.find(b" ", offset, offset + 21)
        length = data[offset:space]
        if space < 0 or not length.isdigit():
            raise AuditError("malformed audit journal record", subject=f"{path}@{offset}")
        start = space + 1
        end = start + int(length)
        if end >= len(data) or data[end : end + 1] != b"\n":
            raise AuditError("truncated audit journal record", subject=f"{path}@{offset}")
        yield data[start:end]
        offset = end + 1


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    _ensure_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _ensure_dir(path: Path) -> bool:
    """Create ``path`` (mode 0700) if missing; return whether it was created."""
    if path.is_dir():
        return False
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
