"""The parse stage of ``radguard audit serve``: received messages -> :class:`.records.Prepared`.

Runs in worker processes (``--parse-workers``, default 2) so that the XML work of one batch runs
on another core while the main process receives, stores and evaluates the previous ones. The
unit of work is a chunk of messages (:data:`CHUNK`, e.g. 500), never one message, so the
inter-process cost is paid once per chunk: messages travel as plain tuples
(:class:`.receivers.Inbound` is a ``NamedTuple``) and come back as :class:`.records.Prepared`
tuples, not as dataclasses (whose pickling dominated the earlier pipeline). Each worker does
everything that does not depend on a message's place in the hash chain: RFC 5424 header, hardened
XML parse, full RELAX NG validation (PS3.15 A.5.1.1), field extraction, the stored row, the
id-independent part of the hash input, and the search terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from radguard.audit.repository.parse import parse_message
from radguard.audit.repository.receivers import Inbound
from radguard.audit.repository.records import Prepared, prepare

__all__ = ["CHUNK", "prepare_batch", "warm"]

#: Messages per task sent to a parse worker.
CHUNK = 500


def prepare_batch(items: Sequence[Inbound]) -> list[Prepared]:
    """Parse and prepare received messages, in order (never raises for bad input)."""
    out: list[Prepared] = []
    stamp = datetime.fromtimestamp
    for data, transport, peer, received, truncated_from in items:
        out.append(prepare(parse_message(data, transport=transport, peer=peer,
                                         received_at=stamp(received, UTC),
                                         truncated_from=truncated_from)))
    return out


def warm() -> None:
    """Worker initializer: compile the schema once, before the first message."""
    from radguard.audit.schema import _relaxng

    _relaxng()
