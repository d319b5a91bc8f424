"""Value Representations (PS3.5 6.2) and the transfer syntaxes the reader knows (PS3.5 A, PS3.6 A)."""

from __future__ import annotations

from functools import lru_cache

__all__ = [
    "LONG_LENGTH_VRS",
    "TEXT_VRS",
    "VALID_VRS",
    "TransferSyntax",
    "implicit_vr",
    "transfer_syntax",
]

VALID_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR "
    b"US UT UV".split()
)
"""Every VR of PS3.5 Table 6.2-1, as the two bytes found in an Explicit VR element header."""

LONG_LENGTH_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
"""VRs with a 2-byte reserved field and a 4-byte length in Explicit VR (PS3.5 7.1.2)."""

TEXT_VRS = frozenset(b"AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split())


class TransferSyntax:
    """Encoding facts of one transfer syntax UID."""

    __slots__ = ("deflated", "encapsulated", "explicit", "known", "little", "uid")

    def __init__(
        self,
        uid: str,
        *,
        explicit: bool = True,
        little: bool = True,
        deflated: bool = False,
        encapsulated: bool = False,
        known: bool = True,
    ):
        self.uid = uid
        self.explicit = explicit
        self.little = little
        self.deflated = deflated
        self.encapsulated = encapsulated
        self.known = known

    def __repr__(self) -> str:
        return f"TransferSyntax({self.uid!r})"


_NATIVE = {
    "1.2.840.10008.1.2": TransferSyntax("1.2.840.10008.1.2", explicit=False),
    "1.2.840.10008.1.2.1": TransferSyntax("1.2.840.10008.1.2.1"),
    "1.2.840.10008.1.2.1.99": TransferSyntax("1.2.840.10008.1.2.1.99", deflated=True),
    "1.2.840.10008.1.2.2": TransferSyntax("1.2.840.10008.1.2.2", little=False),
}

# Encapsulated transfer syntaxes share the Explicit VR Little Endian encoding (PS3.5 A.4).
_ENCAPSULATED_PREFIXES = ("1.2.840.10008.1.2.4.", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.6.",
                          "1.2.840.10008.1.2.1.98", "1.2.840.10008.1.2.8.")


def transfer_syntax(uid: str) -> TransferSyntax:
    """Return the encoding of ``uid``; an unknown UID is read as Explicit VR Little Endian.

    An unknown UID is marked ``known=False`` so that callers can report it.
    """
    uid = uid.strip("\x00 ")
    ts = _NATIVE.get(uid)
    if ts is not None:
        return ts
    if uid.startswith(_ENCAPSULATED_PREFIXES):
        deflated = uid == "1.2.840.10008.1.2.8.1"  # JPIP Referenced Deflate
        return TransferSyntax(uid, encapsulated=not deflated, deflated=deflated)
    return TransferSyntax(uid, known=False)


@lru_cache(maxsize=8192)
def implicit_vr(tag: int) -> bytes:
    """VR of ``tag`` for Implicit VR data sets: from the data dictionary (PS3.6), ``UN`` if unknown.

    Group lengths are UL; private tags other than private creators are UN.
    """
    group, elem = tag >> 16, tag & 0xFFFF
    if elem == 0:
        return b"UL"
    if group & 1:
        return b"LO" if 0x0010 <= elem <= 0x00FF else b"UN"
    from pydicom.datadict import dictionary_VR

    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return b"UN"
    # Ambiguous entries such as "US or SS" or "OB or OW": the first is good enough for walking.
    return vr.split(" or ")[0][:2].encode("ascii")
