"""Fingerprint tiers and depths (``sop-tiers.json``): which presentation contexts each
association of the fingerprint proposes (PS3.8 9.3.2.2: at most 128 per association).

- ``minimal``: the base association proposes ``minimal_contexts`` (Verification) only;
- ``compact`` (default): the base association proposes tier 0, the discovery tier;
- ``full``: the base association, then one association per inventory tier.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from radguard.assess.pdu import Context
from radguard.assess.tables import load

__all__ = ["DEPTHS", "Depth", "base_contexts", "tier_contexts", "tier_count", "tiers_for"]

Depth = Literal["minimal", "compact", "full"]
DEPTHS: tuple[Depth, ...] = ("minimal", "compact", "full")


@cache
def tier_contexts(index: int) -> tuple[Context, ...]:
    """Presentation contexts of fingerprint tier ``index`` (at most 128, PS3.8 9.3.2.2).

    Each SOP class is proposed with the table's default transfer syntaxes; a tier marked
    ``transfer_syntax_probe`` starts with one context per transfer syntax for CT Image Storage,
    so that the answer names each syntax the node accepts (PS3.8 9.3.3.2: one per context).
    """
    table = load("sop-tiers.json")
    default = tuple(table["default_transfer_syntaxes"])
    tier = table["tiers"][index]
    items: list[tuple[str, tuple[str, ...]]] = []
    if tier.get("transfer_syntax_probe"):
        probe = table["transfer_syntax_probe"]
        items += [(probe["sop_class"], (ts["uid"],)) for ts in probe["syntaxes"]]
    items += [(c["uid"], default) for c in tier["sop_classes"]]
    if len(items) > table["max_contexts"]:
        raise ValueError(f"tier {index} has {len(items)} contexts")
    return tuple(Context(2 * n + 1, uid, ts) for n, (uid, ts) in enumerate(items))


@cache
def _minimal_contexts() -> tuple[Context, ...]:
    table = load("sop-tiers.json")
    default = tuple(table["default_transfer_syntaxes"])
    return tuple(Context(2 * n + 1, c["uid"], default)
                 for n, c in enumerate(table["minimal_contexts"]))


def base_contexts(depth: Depth) -> tuple[Context, ...]:
    """Presentation contexts of the base association at ``depth``: the discovery tier (tier 0),
    or at ``minimal`` only the table's ``minimal_contexts`` (Verification)."""
    if depth not in DEPTHS:
        raise ValueError(f"unknown fingerprint depth {depth!r}: use {' or '.join(DEPTHS)}")
    return _minimal_contexts() if depth == "minimal" else tier_contexts(0)


def tier_count() -> int:
    """Number of tiers in ``sop-tiers.json`` (tier 0 is the base association's)."""
    return len(load("sop-tiers.json")["tiers"])


def tiers_for(depth: Depth) -> tuple[int, ...]:
    """Indexes of the tiers probed at ``depth`` (``minimal``: none; ``compact``: tier 0 only;
    ``full``: all)."""
    if depth not in DEPTHS:
        raise ValueError(f"unknown fingerprint depth {depth!r}: use {' or '.join(DEPTHS)}")
    if depth == "minimal":
        return ()
    tiers = load("sop-tiers.json")["tiers"]
    return tuple(i for i, t in enumerate(tiers) if depth == "full" or t["depth"] == "compact")
