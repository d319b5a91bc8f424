"""The number of open TCP connections is bounded (each may hold a read and a partial message): past
the limit a connection is closed at once and counted; the ones within it deliver everything."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from tests.audit_repo.conftest import LiveRepository
from tests.audit_repo.messages import every_a53_message, one_line

from radguard.audit.repository import read_stats
from radguard.audit.syslog import octet_counted


def test_connections_past_the_limit_are_closed_and_counted(
        live_repo: Callable[..., LiveRepository]) -> None:
    repo = live_repo(max_connections=2)
    frame = octet_counted(b"<85>1 - station radguard - DICOM+RFC3881 - "
                          + one_line(next(iter(every_a53_message().values()))))
    held = [socket.create_connection(("127.0.0.1", repo.port("tcp")), timeout=10) for _ in range(2)]
    try:
        time.sleep(0.3)  # both accepted and registered
        extra = socket.create_connection(("127.0.0.1", repo.port("tcp")), timeout=10)
        extra.settimeout(10)
        assert extra.recv(1) == b""  # closed by the receiver without a byte read
        extra.close()
        for s in held:
            s.sendall(frame * 3)
    finally:
        for s in held:
            s.close()
    assert repo.wait_stored(6, timeout=60) == 6
    assert read_stats(repo.store).total.get("connections_refused") == 1
