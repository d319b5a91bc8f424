"""File signatures ("magic") and content patterns, loaded from the versioned data table.

The table lives in ``radguard/data/media/signatures.json``; reports print its version.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = ["Signature", "SignatureTable", "load_table"]


@dataclass(frozen=True, slots=True)
class Signature:
    """One magic: ``class_`` is executable, script, shortcut, archive, pdf, ole or tiff."""

    name: str
    magic: bytes
    class_: str
    check_pe: bool = False


@dataclass(frozen=True, slots=True)
class SignatureTable:
    """The loaded table and helpers over it."""

    version: str
    signatures: tuple[Signature, ...]
    dangerous_extensions: dict[str, frozenset[str]]
    html_extensions: frozenset[str]
    html_patterns: re.Pattern[bytes]
    pdf_patterns: re.Pattern[bytes]
    by_first_byte: dict[int, tuple[Signature, ...]]

    def identify(self, head: bytes, full: bytes | None = None) -> Signature | None:
        """The signature ``head`` starts with, or ``None``.

        ``MZ`` counts as a PE executable only when ``PE\\0\\0`` is at the offset held at 0x3C
        (checked when ``full`` holds enough bytes), or as a DOS executable when it cannot be checked.
        """
        if not head:
            return None
        for sig in self.by_first_byte.get(head[0], ()):
            if head.startswith(sig.magic):
                if sig.check_pe and not _pe_header(full if full is not None else head):
                    continue
                return sig
        return None

    def extension_class(self, name: str) -> str | None:
        lower = name.lower()
        dot = lower.rfind(".")
        if dot < 0:
            return None
        ext = lower[dot:]
        for cls, exts in self.dangerous_extensions.items():
            if ext in exts:
                return cls
        return None

    def is_html_name(self, name: str) -> bool:
        lower = name.lower()
        return any(lower.endswith(ext) for ext in self.html_extensions)


def _pe_header(data: bytes) -> bool:
    """A real MZ executable: e_lfanew at 0x3C pointing at ``PE\\0\\0`` or, if out of reach, a DOS stub."""
    if len(data) < 0x40:
        return len(data) >= 2  # too short to check: treat MZ as executable (fail safe)
    (lfanew,) = struct.unpack_from("<I", data, 0x3C)
    if lfanew + 4 <= len(data):
        return data[lfanew : lfanew + 4] == b"PE\x00\x00"
    return True  # header beyond what we hold: fail safe


@lru_cache(maxsize=1)
def _pdf_name(name: str) -> bytes:
    """A regex for the PDF name ``name`` (``/JavaScript``) that also matches it written with
    ``#xx`` hex escapes, which PDF 1.2 and later allow for any character of a name (ISO 32000-1
    7.3.5): ``/J#61vaScript`` is ``/JavaScript`` to every PDF reader."""
    out = [re.escape(name[:1].encode())]
    for ch in name[1:]:
        code = ord(ch)
        hexes = sorted({f"{code:02x}", f"{code:02X}", f"{code >> 4:X}{code & 15:x}",
                        f"{code >> 4:x}{code & 15:X}"})
        alts = [re.escape(ch.encode())] + [b"#" + h.encode() for h in hexes]
        out.append(b"(?:" + b"|".join(alts) + b")")
    return b"".join(out)


@lru_cache(maxsize=1)
def load_table() -> SignatureTable:
    """Load the shipped signature table (cached)."""
    raw: dict[str, Any] = json.loads(
        resources.files("radguard.data.media").joinpath("signatures.json").read_text("utf-8")
    )
    sigs = tuple(
        Signature(s["name"], bytes.fromhex(s["hex"]), s["class"], bool(s.get("check_pe", False)))
        for s in raw["signatures"]
    )
    ext = {k: frozenset(v) for k, v in raw["dangerous_extensions"].items()}
    html = re.compile(b"|".join(re.escape(p.encode()) for p in raw["html_script_patterns"]),
                      re.IGNORECASE)
    pdf = re.compile(rb"(?:" + b"|".join(_pdf_name(p) for p in raw["pdf_script_patterns"])
                     + rb")(?![A-Za-z]|#[0-9A-Fa-f]{2})")
    first: dict[int, list[Signature]] = {}
    for sig in sigs:
        first.setdefault(sig.magic[0], []).append(sig)
    return SignatureTable(raw["version"], sigs, ext, frozenset(raw["html_extensions"]), html, pdf,
                          {k: tuple(v) for k, v in first.items()})
