"""Where alerts go: findings and alert rows in the store, a log file, and optional notifiers.

:meth:`AlertSink.publish` stores each alert as a :class:`~radguard.findings.Finding` (so the
dashboard and compliance reports see it) and as an ``audit_alerts`` row that keeps the subject and
the triggering record ids, appends one JSON line per alert to the log file (fsynced), and hands
the alert to the notifiers. Notifiers run on a background thread with a bounded queue, so a slow
or unreachable SIEM never stalls the repository; alerts that do not fit are counted and logged.

Notifiers (configured by the user, never by a sender):

- a syslog forwarder (``udp://``, ``tcp://``, ``tls://host:port``): an RFC 5424 message with
  MSGID ``RADGUARD-ALERT`` and the alert as JSON;
- a webhook: HTTP(S) POST of the alert as JSON to an address on the local network. The host must
  be a literal private, loopback or link-local address or a name that resolves only to such
  addresses; anything else is refused when the sink is built.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import queue
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from radguard.audit.repository.detect import Alert
from radguard.audit.repository.errors import RepositoryError
from radguard.audit.repository.records import add_counters
from radguard.audit.syslog import SyslogSender, SyslogUnavailable
from radguard.store import Store, add_findings
from radguard.store.models import utcnow
from radguard.store.models_audit import AuditAlert

__all__ = ["AlertSink", "check_local_url"]

log = logging.getLogger(__name__)
_QUEUE = 1000


def check_local_url(url: str) -> str:
    """Return ``url`` if its host is on the local network; raise :class:`RepositoryError` if not.

    Local means loopback, private (RFC 1918 / ULA) or link-local, for a literal address and for
    every address a name resolves to.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RepositoryError("webhook URL must be http(s)://host[:port]/path", subject=url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise RepositoryError(f"webhook host does not resolve: {exc}", subject=url) from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not (address.is_private or address.is_loopback or address.is_link_local):
            raise RepositoryError(
                f"webhook address {address} is not on the local network", subject=url,
                remedy="alerts may contain user names; send them only to a local collector")
    return url


class AlertSink:
    """Publishes alerts (see the module docstring)."""

    def __init__(self, store: Store | None, log_file: Path | None = None,
                 forward_url: str | None = None, webhook: str | None = None,
                 forward_ca: str | None = None) -> None:
        self.store = store
        self.log_file = log_file
        self.forwarder = (SyslogSender.from_url(forward_url, ca=forward_ca,
                                                app_name="radguard-alerts")
                          if forward_url else None)
        if self.forwarder is not None:
            self.forwarder.msgid = "RADGUARD-ALERT"
        self.webhook = check_local_url(webhook) if webhook else None
        self.lost = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(_QUEUE)
        self._thread: threading.Thread | None = None
        if self.forwarder is not None or self.webhook is not None:
            self._thread = threading.Thread(target=self._notify_loop, name="audit-alerts",
                                            daemon=True)
            self._thread.start()

    def publish(self, alerts: Sequence[Alert]) -> list[int]:
        """Store, log and notify ``alerts``; return their ``audit_alerts`` ids."""
        if not alerts:
            return []
        ids: list[int] = []
        if self.store is not None:
            finding_ids = add_findings(self.store, [a.to_finding() for a in alerts])
            now = utcnow()
            with self.store.session() as session:
                rows = [AuditAlert(rule_id=a.rule_id, rule_version=a.rule_version,
                                   severity=a.severity.label, fired_at=now, event_time=a.time,
                                   subject_kind=a.subject_kind, subject=a.subject[:255],
                                   message=a.message, record_ids=list(a.record_ids),
                                   finding_id=fid)
                        for a, fid in zip(alerts, finding_ids, strict=True)]
                session.add_all(rows)
                session.flush()
                ids = [r.id for r in rows]
                add_counters(session, {("alerts", "alerted"): len(alerts)})
        if self.log_file is not None:
            self._append_log(alerts, ids)
        if self._thread is not None:
            numbered: list[int | None] = list(ids) or [None] * len(alerts)
            for alert, aid in zip(alerts, numbered, strict=True):
                try:
                    self._queue.put_nowait({"id": aid, **alert.to_dict()})
                except queue.Full:
                    self.lost += 1
                    log.warning("alert notifier queue full; alert %s not forwarded", alert.rule_id)
        return ids

    def _append_log(self, alerts: Sequence[Alert], ids: Sequence[int]) -> None:
        assert self.log_file is not None
        numbered: list[int | None] = list(ids) or [None] * len(alerts)
        lines = "".join(json.dumps({"id": i, **a.to_dict()}, sort_keys=True) + "\n"
                        for a, i in zip(alerts, numbered, strict=True))
        try:
            self.log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, lines.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            log.error("cannot append to the alert log %s: %s", self.log_file, exc.strerror)

    def _notify_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            body = json.dumps(item, sort_keys=True).encode("utf-8")
            if self.forwarder is not None:
                try:
                    self.forwarder.send(body)
                except SyslogUnavailable as exc:
                    log.warning("alert forwarder %s: %s", self.forwarder.url, exc.message)
            if self.webhook is not None:
                try:
                    httpx.post(self.webhook, content=body, timeout=5.0,
                               headers={"content-type": "application/json"})
                except httpx.HTTPError as exc:
                    log.warning("alert webhook failed: %s", type(exc).__name__)

    def close(self, timeout: float = 5.0) -> None:
        """Let the notifier thread send what is queued, then stop it."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
