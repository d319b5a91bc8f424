"""Opening associations with pynetdicom: presentation contexts, TLS, TCP_NODELAY (PS3.8 7.1).

pynetdicom 3.0 never sets TCP_NODELAY; with Nagle's algorithm on, every DIMSE message waits for a
delayed ACK (~40 ms; peers-measured.md). :func:`open_association` sets it from the
``EVT_CONN_OPEN`` handler, before the A-ASSOCIATE-RQ is sent. A rejected or aborted association is
raised as :class:`AssociationFailed` naming the peer and the reason.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from radguard.dicomio.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from radguard.dimse.errors import AssociationFailed
from radguard.dimse.tls import TlsOptions, client_context

__all__ = ["MAX_CONTEXTS", "CommitSettings", "Peer", "open_association", "set_nodelay"]

MAX_CONTEXTS = 128
"""At most 128 presentation contexts per association (PS3.8 9.3.2.2: odd ids 1..255)."""


@dataclass(frozen=True, slots=True)
class CommitSettings:
    """Storage Commitment Push Model (PS3.4 Annex J) as SCU: where RadGuard listens for the
    N-EVENT-REPORT that the peer sends on a new association (the peer must know ``ae_title`` at
    ``host``:``port``), how long it waits, and how many instances go in one transaction."""

    ae_title: str = "RADGUARD"
    host: str = "127.0.0.1"
    port: int = 11113
    timeout: float = 30.0
    batch: int = 500


@dataclass(frozen=True, slots=True)
class Peer:
    """A DICOM application entity to connect to."""

    host: str
    port: int
    called_aet: str
    calling_aet: str = "RADGUARD"
    tls: TlsOptions | None = None
    timeouts: dict[str, float] = field(default_factory=lambda: {"acse": 30.0, "dimse": 60.0,
                                                                 "network": 60.0})
    commit: CommitSettings | None = None  # ask for storage commitment after the send


    @property
    def label(self) -> str:
        return f"{self.called_aet}@{self.host}:{self.port}{' (TLS)' if self.tls else ''}"


def set_nodelay(event: Any) -> None:
    """``EVT_CONN_OPEN`` handler: switch Nagle's algorithm off on the association's socket."""
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # not a TCP socket: nothing to tune
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def open_association(peer: Peer, contexts: Iterable[tuple[str, Iterable[str]]]) -> Any:
    """Open an association proposing ``contexts`` = (abstract syntax, transfer syntaxes) pairs.

    Returns the established :class:`pynetdicom.association.Association`.

    Raises
    ------
    AssociationFailed
        Rejected, aborted, unreachable, TLS handshake failed, or too many contexts.
    TlsConfigError
        The TLS files cannot be loaded.
    """
    from pynetdicom import AE, evt  # here: importing pynetdicom costs ~0.3 s at start-up
    from pynetdicom.presentation import build_context

    built = [build_context(abstract, list(syntaxes)) for abstract, syntaxes in contexts]
    if len(built) > MAX_CONTEXTS:
        raise AssociationFailed(f"{len(built)} presentation contexts; at most {MAX_CONTEXTS}",
                                subject=peer.label, remedy="split the transfer")
    ae = AE(ae_title=peer.calling_aet)
    ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    ae.acse_timeout = peer.timeouts["acse"]
    ae.dimse_timeout = peer.timeouts["dimse"]
    ae.network_timeout = peer.timeouts["network"]
    ae.requested_contexts = built
    tls_args = None
    if peer.tls is not None:
        tls_args = (client_context(peer.tls), peer.host)
    try:
        assoc = ae.associate(peer.host, peer.port, ae_title=peer.called_aet, tls_args=tls_args,
                             evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay)])
    except (OSError, ValueError) as exc:
        raise AssociationFailed(f"cannot connect: {exc}", subject=peer.label,
                                remedy="check host, port and TLS settings") from exc
    if not assoc.is_established:
        if assoc.is_rejected:
            why = "association rejected (check the called and calling AE titles)"
        elif assoc.is_aborted:
            why = "association aborted (TLS handshake or peer policy)"
        else:
            why = "no association (peer unreachable or not DICOM)"
        raise AssociationFailed(why, subject=peer.label,
                                remedy="check that the peer knows this AE title and is up")
    return assoc
