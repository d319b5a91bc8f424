"""The parse stage of ``radguard audit serve``: received messages -> :class:`.records.Prepared`.

Runs in worker processes (``--parse-workers``, default 2) so that the XML work of one batch runs
on another core while the main process receives, stores and evaluates the previous ones. The
unit of work is a chunk of whole socket reads (:class:`.receivers.Received`, at least
:data:`CHUNK` messages when traffic allows), never one message, so the inter-process cost is
paid once per chunk: reads travel as lists of bytes and come back as :class:`.records.Prepared`
values. Each worker does
everything that does not depend on a message's place in the hash chain: RFC 5424 header, hardened
XML parse, full RELAX NG validation (PS3.15 A.5.1.1), field extraction, the stored row, the
id-independent part of the hash input, and the search terms.

The way back is :func:`prepare_wire`: one ``marshal`` blob per chunk holding, per message, only
what the main process does not have already — not the raw bytes (it sent them), not the arrival
time, transport and peer (shared by the read) — as plain strings, numbers and tuples (EventDateTime
as integer microseconds since the epoch, exact). :func:`from_wire` rebuilds the very
:class:`.records.Prepared` values :func:`prepare_batch` returns (tested). Pickling those named
tuples with their datetimes and enum cost ~3x more CPU, half of it in the (serial) main process.
"""

from __future__ import annotations

import marshal
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from radguard.audit.repository.parse import ParsedMessage, Validity, parse_message
from radguard.audit.repository.receivers import Received
from radguard.audit.repository.records import Prepared, prepare

__all__ = ["CHUNK", "from_wire", "prepare_batch", "prepare_each", "prepare_wire", "warm"]

#: Messages per task sent to a parse worker (at least; reads are never split).
CHUNK = 500


def prepare_batch(items: Sequence[Received]) -> list[Prepared]:
    """Parse and prepare the messages of received reads, in order (never raises for bad
    input)."""
    out: list[Prepared] = []
    add = out.append
    for messages, transport, peer, received, truncated in items:
        when = datetime.fromtimestamp(received, UTC)  # one per read: its messages share it
        if truncated is None:
            for data in messages:
                add(prepare(parse_message(data, transport=transport, peer=peer,
                                          received_at=when)))
        else:
            for i, data in enumerate(messages):
                add(prepare(parse_message(data, transport=transport, peer=peer,
                                          received_at=when, truncated_from=truncated.get(i))))
    return out


def prepare_each(items: Sequence[Received]) -> list[Prepared]:
    """:func:`prepare_batch` one message at a time, for the writer when a parse worker failed on
    the chunk: a message whose parsing raises (a defect, not bad input) is stored raw as
    ``refused`` with the exception's type as the reason, so it is kept, not lost, and the other
    messages of the chunk are stored as usual."""
    out: list[Prepared] = []
    for messages, transport, peer, received, truncated in items:
        when = datetime.fromtimestamp(received, UTC)
        for i, data in enumerate(messages):
            cut = truncated.get(i) if truncated is not None else None
            try:
                parsed = parse_message(data, transport=transport, peer=peer, received_at=when,
                                       truncated_from=cut)
                out.append(prepare(parsed))
            except Exception as exc:  # the message is kept whatever failed
                out.append(prepare(ParsedMessage(
                    data, when, transport, peer, Validity.REFUSED,
                    f"internal error while parsing ({type(exc).__name__}); kept raw")))
    return out


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_VALIDITY = {str(v): v for v in Validity}
_new = tuple.__new__


def prepare_wire(items: Sequence[Received]) -> bytes:
    """:func:`prepare_batch` in the compact form sent back to the main process (see the module
    docstring); runs in the parse workers."""
    out: list[tuple[Any, ...]] = []
    add = out.append
    for p in prepare_batch(items):
        m = p.msg
        when = m.event_time
        # row without raw; the uncut header values and reason; event time; the other fields
        add((p.row[:-1], p.tail, m[5:9], None if when is None else (when - _EPOCH) // _MICRO,
             m[10:]))
    return marshal.dumps(out)


def from_wire(items: Sequence[Received], blob: bytes) -> list[Prepared]:
    """The :class:`.records.Prepared` values of ``items`` from :func:`prepare_wire`'s blob."""
    # our own worker process wrote it (the pool already trusts it with pickle, which is wider)
    decoded = marshal.loads(blob)  # noqa: S302
    out: list[Prepared] = []
    add = out.append
    k = 0
    for messages, transport, peer, received, _ in items:
        when = datetime.fromtimestamp(received, UTC)
        for raw in messages:
            row, tail, head, micros, rest = decoded[k]
            k += 1
            event_time = None if micros is None else _EPOCH + micros * _MICRO
            msg = _new(ParsedMessage, (raw, when, transport, peer, _VALIDITY[row[11]], *head,
                                       event_time, *rest))
            add(_new(Prepared, ((*row, raw), tail, msg)))
    if k != len(decoded):
        raise ValueError(f"parse worker returned {len(decoded)} results for {k} messages")
    return out


def warm() -> None:
    """Worker initializer: compile the schema once, before the first message; then move
    everything loaded so far (modules, schema) out of the garbage collector's generations
    (``gc.freeze``): a worker's collections then walk only its own short-lived objects, and
    happen every 50,000 allocations instead of 700."""
    import gc

    from radguard.audit.repository.slots import schema_slots
    from radguard.audit.schema import _relaxng

    _relaxng()
    schema_slots()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, *gc.get_threshold()[1:])  # a dedicated process: rarer collections
