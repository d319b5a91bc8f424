"""Bounds on untrusted DICOM input (DESIGN.md invariant 3)."""

from __future__ import annotations

from dataclasses import dataclass

from radguard.config import Settings

__all__ = ["ReadLimits"]


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Limits the bounded reader enforces on one file.

    Crossing one is reported as a problem of code ``limit-exceeded`` naming the limit; it never
    raises out of :func:`radguard.dicomio.walk`.
    """

    max_file_size: int = 4 * 1024**3
    max_depth: int = 64
    max_elements: int = 1_000_000
    max_value_length: int = 2 * 1024**3
    max_inflated_size: int = 512 * 1024**2
    max_inflate_ratio: int = 200
    max_seconds: float = 30.0
    max_decoded_pixels_bytes: int = 8 * 1024**3
    """Largest plausible declared pixel matrix (Rows x Columns x Frames x Samples x Bits/8)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> ReadLimits:
        return cls(
            max_file_size=settings.max_file_size,
            max_depth=settings.max_depth,
            max_elements=settings.max_elements,
            max_value_length=settings.max_value_length,
            max_inflated_size=settings.max_inflated_size,
            max_inflate_ratio=settings.max_inflate_ratio,
            max_seconds=settings.max_seconds,
        )
