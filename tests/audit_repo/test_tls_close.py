"""RFC 5425 senders that write their messages and close at once (no read, no close_notify) lose
nothing: the receiver sends no TLS 1.3 session tickets, so such a close is a FIN, not an RST that
would make the receiver drop what it had already read but not yet de-framed."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

from tests.audit.audit_peers import Pki
from tests.audit_repo.conftest import LiveRepository
from tests.audit_repo.messages import every_a53_message, one_line

from radguard.audit.repository import read_stats
from radguard.audit.syslog import octet_counted


def test_write_and_close_senders_lose_nothing(live_repo: Callable[..., LiveRepository],
                                              pki: Pki) -> None:
    repo = live_repo(tls=(pki.server_cert, pki.server_key, pki.ca))
    body = one_line(next(iter(every_a53_message().values())))
    frame = octet_counted(b"<85>1 - station radguard - DICOM+RFC3881 - " + body)
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    connections, per_connection = 60, 5
    for _ in range(connections):
        with socket.create_connection(("127.0.0.1", repo.port("tls")), timeout=30) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(frame * per_connection)
    expected = connections * per_connection
    assert repo.wait_stored(expected, timeout=90) == expected
    stats = read_stats(repo.store)
    assert stats.total.get("connection_errors", 0) == 0, stats.total
