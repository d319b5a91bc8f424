"""Implicit VR lookup (PS3.5 7.1.3 / PS3.6): the same VRs as pydicom's data dictionary, without
importing the pydicom package in the process that walks (scan workers pay no 0.3 s import)."""

from __future__ import annotations

import random
import subprocess
import sys

from pydicom.datadict import DicomDictionary, RepeatersDictionary, dictionary_VR

from radguard.dicomio.vr import implicit_vr


def _pydicom_vr(tag: int) -> bytes:
    group, elem = tag >> 16, tag & 0xFFFF
    if elem == 0:
        return b"UL"
    if group & 1:
        return b"LO" if 0x0010 <= elem <= 0x00FF else b"UN"
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return b"UN"
    return vr.split(" or ")[0][:2].encode("ascii")


def test_every_dictionary_and_repeater_tag_gets_pydicoms_vr() -> None:
    tags = list(DicomDictionary)
    # a concrete tag for each repeating-group mask (60xx0010 -> 60020010 ...)
    tags += [int(mask.replace("x", "2"), 16) for mask in RepeatersDictionary]
    rng = random.Random(7)
    tags += [rng.getrandbits(32) for _ in range(20_000)]  # unknown, private, group lengths
    wrong = [f"{t:08X}" for t in tags if implicit_vr(t) != _pydicom_vr(t)]
    assert wrong == []
    assert implicit_vr(0x60020010) == b"US"  # Overlay Rows in a repeating group
    assert implicit_vr(0x00100010) == b"PN"
    assert implicit_vr(0x00291010) == b"UN" and implicit_vr(0x00290010) == b"LO"


def test_lookup_does_not_import_pydicom() -> None:
    code = ("import sys; from radguard.dicomio.vr import implicit_vr; "
            "assert implicit_vr(0x00100010) == b'PN'; "
            "print('pydicom' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
