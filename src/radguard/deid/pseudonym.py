"""Keyed pseudonyms: UIDs, patient names and IDs, AE titles and per-patient date offsets.

All derive from HMAC-SHA256 under the project key with a domain label per kind of value, so that the
same input gives the same output in every batch and on every machine holding the key, and nobody
without the key can recompute or reverse them (PS3.15 E.1.1: "U" replacement "internally consistent
within a set of instances"; E.3.6 Modified Dates "by an offset per patient").

UIDs are ``2.25.<128-bit integer>`` (PS3.5 B.2): the first 16 bytes of the HMAC made a UUID of
version 8 (RFC 9562 "custom"), so the result is a well-formed UUID-derived UID of at most 44 chars.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import re
from collections.abc import Mapping

__all__ = ["Pseudonymizer"]

_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})")


class Pseudonymizer:
    """Keyed replacements for one run; cheap to build, memoises UIDs and patient IDs (they repeat
    across files)."""

    def __init__(self, key: bytes, *, mapping: Mapping[str, tuple[str, str]] | None = None,
                 max_shift_days: int = 365, prefix: str = "RG"):
        self._key = key
        self._mapping = mapping or {}
        self._max_shift = max_shift_days
        self._prefix = prefix
        self._uids: dict[str, str] = {}
        self._ids: dict[str, str] = {}

    def _mac(self, label: str, value: str) -> bytes:
        return hmac.digest(self._key, f"{label}\x00{value}".encode(), "sha256")

    def _code(self, label: str, value: str, length: int) -> str:
        return base64.b32encode(self._mac(label, value)).decode()[:length]

    def uid(self, original: str) -> str:
        """The replacement of a UID: ``2.25.`` + a UUIDv8 made from HMAC(key, uid)."""
        original = original.strip("\x00 ")
        cached = self._uids.get(original)
        if cached is None:
            raw = bytearray(self._mac("uid", original)[:16])
            raw[6] = (raw[6] & 0x0F) | 0x80  # version 8
            raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122/9562 variant
            cached = f"2.25.{int.from_bytes(raw, 'big')}"  # the UUID's integer (PS3.5 B.2)
            if len(self._uids) < 200_000:
                self._uids[original] = cached
        return cached

    def patient_id(self, original: str, issuer: str = "") -> str:
        """Mapped pseudonym, else ``RG`` + 14 base32 characters of HMAC(key, issuer, id)."""
        mapped = self._mapping.get(original.strip())
        if mapped is not None:
            return mapped[0]
        key = f"{issuer.strip()}\x00{original.strip()}"
        cached = self._ids.get(key)
        if cached is None:
            cached = self._prefix + self._code("pid", key, 14)
            if len(self._ids) < 200_000:
                self._ids[key] = cached
        return cached

    def patient_name(self, original_id: str, issuer: str = "") -> str:
        """Mapped name, else ``PSEUDO^<code>`` with the same code as :meth:`patient_id`."""
        mapped = self._mapping.get(original_id.strip())
        if mapped is not None:
            return mapped[1]
        return "PSEUDO^" + self.patient_id(original_id, issuer)

    def person(self, original: str) -> str:
        """A consistent pseudonym for any other person name (operator, physician...)."""
        return "PERSON^" + self._code("pn", original.strip().upper(), 10)

    def short(self, label: str, original: str, length: int = 16) -> str:
        """A consistent token for short identifiers (AE titles, station names), ``length`` chars."""
        return self._code(label, original.strip(), length)

    def date_offset(self, patient_key: str) -> int:
        """Days to add to every date of this patient: in [-max_shift_days, -1], never 0."""
        n = int.from_bytes(self._mac("date", patient_key.strip())[:8], "big")
        return -(1 + n % self._max_shift)

    def shift_date(self, value: str, days: int) -> str | None:
        """Shift a DA (``YYYYMMDD``) or the date part of a DT by ``days``; ``None`` if unparseable."""
        m = _DATE.match(value.strip())
        if m is None:
            return None
        try:
            day = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            shifted = day + dt.timedelta(days=days)
        except (ValueError, OverflowError):
            return None
        return shifted.strftime("%Y%m%d") + value.strip()[8:]
