"""Value Representations (PS3.5 6.2) and the transfer syntaxes the reader knows (PS3.5 A, PS3.6 A)."""

from __future__ import annotations

import os
from collections.abc import Mapping
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


_Table = tuple[dict[int, str], tuple[tuple[int, int, str], ...]]


@lru_cache(maxsize=1)
def _dictionary() -> _Table:
    """PS3.6 tag -> VR, and the repeating-group masks (50xx, 60xx...), from pydicom's data.

    pydicom ships PS3.6 as a plain module of dict literals (``pydicom/_dicom_dict.py``). It is
    loaded on its own, without importing the ``pydicom`` package (numpy, pixel handlers: about
    0.3 s per process, paid by every scan worker that meets an Implicit VR file).
    """
    import importlib.util

    spec = importlib.util.find_spec("pydicom")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = os.path.join(folder, "_dicom_dict.py")
        part = importlib.util.spec_from_file_location("radguard_ps36_dictionary", path)
        if part is None or part.loader is None or not os.path.isfile(path):
            continue
        module = importlib.util.module_from_spec(part)
        part.loader.exec_module(module)
        return _tables(module.DicomDictionary, module.RepeatersDictionary)
    from pydicom._dicom_dict import DicomDictionary, RepeatersDictionary  # other layouts

    return _tables(DicomDictionary, RepeatersDictionary)


def _tables(main: Mapping[int, tuple[str, ...]], repeaters: Mapping[str, tuple[str, ...]]) -> _Table:
    def vr(entry: tuple[str, ...]) -> str:
        # Ambiguous entries such as "US or SS" or "OB or OW": the first is good enough for walking.
        return entry[0].split(" or ")[0][:2]

    # A mask such as "60xx0010" matches a tag whose non-x hex digits are equal (as pydicom does).
    masks = tuple((int(m.replace("x", "0"), 16), int("".join("F0"[c == "x"] for c in m), 16),
                   vr(entry)) for m, entry in repeaters.items())
    return {tag: vr(entry) for tag, entry in main.items()}, masks


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
    main, masks = _dictionary()
    vr = main.get(tag)
    if vr is None:
        vr = next((v for value, mask, v in masks if (tag ^ value) & mask == 0), "UN")
    return vr.encode("ascii")
