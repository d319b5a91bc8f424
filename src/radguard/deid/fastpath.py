"""The byte-level de-identifier: same decisions as :mod:`.engine`, without parsing the whole file.

:func:`deidentify_bytes` takes a file that passed the bounded reader, lists its element spans
(:mod:`radguard.dicomio.elements`) and applies Table E.1-1 (PS3.15 E.1.1, E.3) element by element
with the engine's own rules (the compiled :class:`~radguard.deid.actions.Plan`, the rules for
unlisted attributes, compound actions by IOD Type, keyed pseudonyms, the text cleaner, the private
block decisions). The output is written by copying the byte spans of the elements it keeps (pixel
data included, as raw bytes) and encoding only what changes, with pydicom's own element writer
(``pydicom.filewriter.write_data_element``) so that changed values are encoded exactly as the
pydicom path encodes them. Group lengths are dropped (PS3.5 7.2); a sequence whose content changed
is written again with undefined lengths (PS3.5 7.5.2); unchanged sequences are copied as they are.
Values are decoded (pydicom's ``convert_raw_data_element``, with the data set's character set) only
for the elements whose action needs them.

What it does not handle raises :class:`Fallback` with a reason, and the caller runs the pydicom path
(:mod:`.files` records which path served each file): Deflated and raw (no File Meta) files,
anything the bounded walk had a problem with, the options that need decoded pixels or the originals
(Clean Pixel Data, Clean Recognizable Visual Features, an Encrypted Attributes Sequence), a sequence
stored as Explicit VR ``UN`` that must be walked, a character set inside a sequence item, an existing
De-identification Method Code Sequence. Any other public attribute stored as Explicit VR ``UN`` is
read in its dictionary VR (PS3.5 6.2.2: a UN value keeps the encoding of its VR) and, when it
changes, written with that VR, as the pydicom path does. ``tests/deid/test_fastpath.py`` proves, on
every pydicom test file and several option sets, that both paths give the same data set.
"""

from __future__ import annotations

import contextlib
import re
import struct
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.tag import BaseTag

from radguard.deid.actions import condition_tags, dummy_value, resolve_compound, unlisted_rules
from radguard.deid.engine import (
    PATIENT_ID,
    PATIENT_NAME,
    Context,
    _by_option,
    _clean,
    _name,
    _tag_text,
    _unlisted,
    _values,
    new_element,
    private_decisions,
)
from radguard.deid.marks import ORIGINAL_ATTRIBUTES_SEQUENCE, write_marks
from radguard.deid.options import DeidOptions, Option
from radguard.deid.report import Change, DeidChanges
from radguard.deid.scrub import Scrubber, identifier_tokens
from radguard.dicomio.elements import UNDEFINED, Element, ElementError, data_set, file_meta
from radguard.dicomio.result import WalkResult

__all__ = ["Fallback", "FastOutput", "deidentify_bytes", "option_fallback"]

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
SPECIFIC_CHARACTER_SET = 0x00080005
METHOD_CODE_SEQUENCE = 0x00120064
SOP_CLASS_UID = 0x00080016
SOP_INSTANCE_UID = 0x00080018
STUDY_UID = 0x0020000D
HARMLESS_PROBLEMS = frozenset({"meta-group-length-mismatch", "meta-no-group-length",
                               "group-length-mismatch"})
"""Walk problems that do not change how the data set reads (group lengths are dropped anyway)."""
_PLAIN_VRS = frozenset(("AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI",
                        "UR", "UT"))
"""String VRs whose new values :meth:`_Pass.encode_values` writes itself (not DS/IS: pydicom
reformats numbers)."""
_PLAIN_CHARSETS = ("iso8859", "ISO_IR 6", "ISO_IR 100", "ISO_IR 192", "")
_UI_BYTES = re.compile(rb"[0-9.\\]*[\x00 ]*")
_NEEDS_PYDICOM = (Option.CLEAN_PIXEL_DATA, Option.CLEAN_VISUAL_FEATURES)
_DELIMS = {little: tuple(struct.pack(f"{'<' if little else '>'}HHI", 0xFFFE, elem, length)
                         for elem, length in ((0xE000, UNDEFINED), (0xE00D, 0), (0xE0DD, 0)))
           for little in (True, False)}
"""Item (undefined length), Item Delimitation and Sequence Delimitation, per byte order."""

Piece = bytes | memoryview


_MARKS: dict[tuple[Any, ...], tuple[tuple[Change, ...], dict[int, bytes]]] = {}
"""The marks of :func:`write_marks` encoded once per (options, table, encoding): the same for every
file of a run (the pass has removed any earlier ones; files that keep one take the pydicom path)."""


_CHARSETS: dict[tuple[bytes, bool, bool], tuple[Any, Any]] = {}
"""Specific Character Set element bytes -> (value, Python encodings) as pydicom decodes them."""
_APPLIED: dict[frozenset[str], tuple[str, ...]] = {}
_MEMO_LIMIT = 50_000
"""Bound of each memo below (distinct tags come from untrusted files)."""
_DECISIONS: dict[frozenset[str], dict[tuple[int, str, str], tuple[str, str, str]]] = {}
"""Per option set: (tag, VR, sequence mode) -> (action, reason, name), see :meth:`_Pass.decide`."""
_JOINED: dict[tuple[str, str], str] = {}


def _joined(reason: str, why: str) -> str:
    """``reason: why``, one shared string per pair (the reports of a batch pickle each once)."""
    text = _JOINED.get((reason, why))
    if text is None:
        text = f"{reason}: {why}"
        if len(_JOINED) < _MEMO_LIMIT:
            _JOINED[(reason, why)] = text
    return text


_COPY = ("K", "", "")
"""The decision of an element copied as it is, unreported (:meth:`_Pass.decide`)."""
_CONSTANT: dict[tuple[Any, ...], bytes] = {}
"""Encoded elements whose new value is the same in every file (:meth:`_Pass.encode_constant`)."""
_CHANGES: dict[tuple[str, str, str, str], Change] = {}
_COMPOUND: dict[tuple[str, int, str, bool, frozenset[int]], tuple[str, str]] = {}
_UN_VRS: dict[int, str] = {}


def _change(path: str, name: str, action: str, reason: str) -> Change:
    """One shared (immutable) :class:`Change` per distinct record: the same few hundred recur in
    every file, and a batch's reports then pickle each of them once."""
    key = (path, name, action, reason)
    change = _CHANGES.get(key)
    if change is None:
        change = Change(path, name, action, reason)
        if len(_CHANGES) < _MEMO_LIMIT:
            _CHANGES[key] = change
    return change


def _compound(action: str, tag: int, sop_class: str, nested: bool,
              present: frozenset[int]) -> tuple[str, str]:
    """:func:`resolve_compound`, memoised on what it reads: the action, the tag, the SOP Class,
    the nesting and which of the tags its conditions name are present."""
    conds = condition_tags(tag)
    key = (action, tag, sop_class, nested, conds & present if conds else conds)
    got = _COMPOUND.get(key)
    if got is None:
        got = resolve_compound(action, tag, sop_class=sop_class, nested=nested, ds=present)
        if len(_COMPOUND) < _MEMO_LIMIT:
            _COMPOUND[key] = got
    return got


class Fallback(Exception):
    """This file needs the pydicom path; ``str(exc)`` says why (it goes into the file's report)."""


@dataclass(frozen=True, slots=True)
class FastOutput:
    """The de-identified file as byte pieces (write them in order), and what was done."""

    pieces: tuple[Piece, ...]
    changes: DeidChanges
    sop_instance_uid: str


def option_fallback(options: DeidOptions) -> str | None:
    """Why no file of a run with these options can take the fast path, or ``None``."""
    for option in _NEEDS_PYDICOM:
        if options.has(option):
            return f"option {option.value} needs decoded pixel data"
    if options.recipient_cert:
        return "an Encrypted Attributes Sequence needs the original data set"
    return None


def _dictionary_vr(tag: int) -> str:
    vr = _UN_VRS.get(tag)
    if vr is None:
        try:
            vr = str(dictionary_VR(tag)).split(" or ")[0]
        except KeyError:
            vr = "UN"
        if len(_UN_VRS) < _MEMO_LIMIT:
            _UN_VRS[tag] = vr
    return vr


class _Pass:
    """One file's pass: the buffer, its encoding, the engine context and the top-level tags."""

    def __init__(self, buf: bytes, explicit: bool, ctx: Context, charset: Any,
                 encodings: list[str], little: bool = True):
        self.buf = buf
        self.little = little
        self.order = "<" if little else ">"
        self.mv = memoryview(buf)
        self.explicit = explicit
        self.ctx = ctx
        self.charset = charset
        self.encodings = encodings
        self.top_new: dict[int, str | None] = {}
        self.plain = charset in _PLAIN_CHARSETS
        self.charset_key = str(charset)
        self.decisions = _DECISIONS.setdefault(ctx.options.options, {})

    # -- values ---------------------------------------------------------------------------------
    def uids(self, el: Element) -> list[str]:
        """The values of a UI element (as pydicom's ``convert_UI`` gives them, for plain UIDs)."""
        data = self.buf[el.value:el.end]
        if _UI_BYTES.fullmatch(data) is None:
            return [str(v) for v in _values(self.decode(el).value)]
        text = data.decode("ascii").rstrip("\x00 ")
        return text.split("\\") if text else []

    def decode(self, el: Element) -> DataElement:
        return _decode(self.buf, el, self.explicit, self.encodings, self.little)

    def encode_values(self, tag: int, vr: str, values: list[Any]) -> bytes:
        """Bytes of the element :func:`new_element` would make, as pydicom writes it: plain ASCII
        strings under the default character sets are encoded here (PS3.5 6.2: values joined by
        backslash, padded to even length with a space, NUL for UI); anything else by pydicom."""
        if self.plain and vr in _PLAIN_VRS and all(type(v) is str for v in values):
            text = "\\".join(values)
            if text.isascii() and len(text) < 0xFFFE:
                data = text.encode("ascii")
                if len(data) & 1:
                    data += b"\x00" if vr == "UI" else b" "
                group, elem = tag >> 16, tag & 0xFFFF
                order = self.order
                if not self.explicit:
                    return struct.pack(f"{order}HHI", group, elem, len(data)) + data
                if vr in ("UC", "UR", "UT"):
                    return struct.pack(f"{order}HH2sHI", group, elem, vr.encode(), 0,
                                       len(data)) + data
                return struct.pack(f"{order}HH2sH", group, elem, vr.encode(), len(data)) + data
        return self.encode(new_element(tag, vr, values))

    def encode_constant(self, tag: int, vr: str, action: str, reason: str, name: str, path: str,
                        nested: bool) -> tuple[Piece, bool]:
        """:meth:`apply` for a value that is the same in every file: empty (Z) or the VR's dummy
        (D), encoded once per (tag, VR, action, encoding) and shared."""
        key = (tag, vr, action, self.explicit, self.little, self.charset_key)
        data = _CONSTANT.get(key)
        if data is None:
            data = self.encode_values(tag, vr, [] if action == "Z" else [dummy_value(vr)])
            if len(_CONSTANT) < _MEMO_LIMIT:
                _CONSTANT[key] = data
        if not nested:
            self.top_new[tag] = "" if action == "Z" else str(dummy_value(vr)).strip()
        self.ctx.changes.append(_change(path + _tag_text(tag), name, action, reason))
        return data, True

    def encode(self, elem: DataElement) -> bytes:
        fp = DicomBytesIO()
        fp.is_little_endian = self.little
        fp.is_implicit_VR = not self.explicit
        write_data_element(fp, elem, self.charset)
        return fp.getvalue()

    def _header(self, tag: int, vr: str) -> bytes:
        if self.explicit:
            return struct.pack(f"{self.order}HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode(), 0,
                               UNDEFINED)
        return struct.pack(f"{self.order}HHI", tag >> 16, tag & 0xFFFF, UNDEFINED)

    # -- data sets ------------------------------------------------------------------------------
    def decide(self, tag: int, vr: str, mode: str) -> tuple[str, str, str]:
        """(action, reason, name) of a public attribute from the table, or by rule when the table
        does not list it (name empty); memoised per option set (it depends on nothing else).
        :data:`_COPY` when the element is kept as it is without a word in the report."""
        rule = self.ctx.plan.rule(tag)
        if rule is None:
            action, reason = _unlisted(tag, vr, self.ctx, mode)
            decision = (action, reason, "")
        else:
            decision = (rule.action, rule.reason, rule.name)
        if decision[0] == "K" and vr != "SQ" and not decision[1]:
            decision = _COPY
        if len(self.decisions) < _MEMO_LIMIT:
            self.decisions[(tag, vr, mode)] = decision
        return decision

    def run(self, elements: Seq[Element], path: str, nested: bool,
            mode: str) -> tuple[list[tuple[int, Piece]], bool]:
        """Mirror of :func:`radguard.deid.engine.process_dataset`: output pieces and whether any
        element changed."""
        ctx = self.ctx
        mv, decisions = self.mv, self.decisions
        out: list[tuple[int, Piece]] = []
        append = out.append
        changed = False
        private: list[Element] = []
        present: frozenset[int] | None = None
        for el in elements:
            tag, vr, header, _, _, end, _, _ = el
            group = tag >> 16
            if group & 1:
                private.append(el)
                continue
            if vr == "UN":  # PS3.5 6.2.2: the value reads as its dictionary VR (implicit LE)
                vr = _dictionary_vr(tag)
            if tag & 0xFFFF == 0 and group != 0x0002:
                changed = True
                continue
            if nested and tag == SPECIFIC_CHARACTER_SET:
                raise Fallback("a character set inside a sequence item")
            decision = decisions.get((tag, vr, mode))
            if decision is None:
                decision = self.decide(tag, vr, mode)
            if decision is _COPY:
                append((tag, mv[header:end]))  # pydicom too writes a kept UN back as UN
                continue
            action, reason, name = decision
            if "/" in action:
                if present is None:
                    present = frozenset(e.tag for e in elements)
                action, why = _compound(action, tag, ctx.sop_class, nested, present)
                reason = _joined(reason, why)
            if action == "K" and vr != "SQ" and not reason:
                append((tag, mv[header:end]))
                continue
            if not name:
                name = _name(tag)
            piece, did = self.apply(el, vr, action, reason, name, path, nested, mode)
            changed = changed or did
            if piece is not None:
                append((tag, piece))
        if private:
            creators: dict[tuple[int, int], str] = {}
            for el in private:
                if 0x0010 <= el.tag & 0xFFFF <= 0x00FF:
                    try:
                        creators[(el.tag >> 16, el.tag & 0xFF)] = str(self.decode(el).value or "")
                    except Exception:  # an undecodable creator keeps nothing of its block
                        creators[(el.tag >> 16, el.tag & 0xFF)] = ""
            keep = private_decisions([el.tag for el in private], creators, ctx, path)
            for el in private:
                if el.tag in keep:
                    out.append((el.tag, mv[el.header:el.end]))
                else:
                    changed = True
            out.sort(key=lambda pair: pair[0])
        return out, changed

    def apply(self, el: Element, vr: str, action: str, reason: str, name: str, path: str,
              nested: bool, mode: str) -> tuple[Piece | None, bool]:
        """Mirror of the engine's ``_apply``: the element's new bytes, its raw span when kept, or
        ``None`` when removed; and whether it changed."""
        ctx, tag = self.ctx, el.tag
        raw = self.mv[el.header:el.end]
        record = True
        changed = False
        piece: Piece | None = raw
        new: list[Any] | None = None
        if action == "X":
            piece, changed = None, True
        elif vr == "SQ" and action in ("K", "U*", "D", "C"):
            if el.items is None or el.implicit_items:
                raise Fallback("a sequence the element walker cannot follow")
            piece, changed = self.sequence(el, path, {"D": "dummy", "C": "clean"}.get(action, mode))
            record = action != "K" or _by_option(reason)
        elif action == "K":
            record = _by_option(reason)
        elif vr == "SQ":
            if action != "Z":
                raise Fallback(f"action {action} on a sequence")
            new = []
        elif action == "Z":
            if not nested and tag == PATIENT_ID:
                new = [ctx.pseudo.patient_id(ctx.patient_id, ctx.issuer)]
                reason += ": keyed pseudonym (a dummy value, as Z allows)"
            elif not nested and tag == PATIENT_NAME:
                new = [ctx.pseudo.patient_name(ctx.patient_id, ctx.issuer)]
                reason += ": keyed pseudonym (a dummy value, as Z allows)"
            else:
                return self.encode_constant(tag, vr, action, reason, name, path, nested)
        elif action == "D":
            if vr == "PN":
                new = [ctx.pseudo.person(str(v)) for v in
                       _values(self.decode(el).value)] or [dummy_value(vr)]
            elif vr == "UI":
                new = [ctx.pseudo.uid(v) for v in self.uids(el)]
            else:
                return self.encode_constant(tag, vr, action, reason, name, path, nested)
        elif action in ("U", "U?"):
            values = self.uids(el) if vr == "UI" else [str(v) for v in
                                                       _values(self.decode(el).value)]
            if action == "U?" and all(v.startswith(ctx.rules.registry_prefix) for v in values):
                return raw, False
            new = [ctx.pseudo.uid(v) for v in values] if vr == "UI" else [dummy_value(vr)]
            action = "U"
        elif action == "C":
            cleaned = _clean(self.decode(el), vr, ctx, nested)
            if cleaned is None:
                record = False
            else:
                new = cleaned
        if new is not None:
            piece, changed = self.encode_values(tag, vr, new), True
        if not nested and changed:
            self.top_new[tag] = None if new is None else str(new[0] if len(new) == 1 else
                                                            (new or "")).strip()
        if record:
            ctx.changes.append(_change(path + _tag_text(tag), name, action, reason))
        return piece, changed

    def sequence(self, el: Element, path: str, mode: str) -> tuple[Piece, bool]:
        """Items walked in ``mode``; the raw span when nothing inside changed, else re-encoded."""
        assert el.items is not None
        bodies: list[list[tuple[int, Piece]]] = []
        changed = False
        for i, item in enumerate(el.items):
            body, item_changed = self.run(item.elements, f"{path}{_tag_text(el.tag)}[{i}].",
                                          True, mode)
            bodies.append(body)
            changed = changed or item_changed
        if not changed:
            return self.mv[el.header:el.end], False
        item_start, item_delim, seq_delim = _DELIMS[self.little]
        parts: list[Piece] = [self._header(el.tag, "SQ")]
        for body in bodies:
            parts.append(item_start)
            parts.extend(piece for _, piece in body)
            parts.append(item_delim)
        parts.append(seq_delim)
        return b"".join(parts), True


def _decode(buf: bytes, el: Element, explicit: bool, encodings: list[str],
            little: bool = True) -> DataElement:
    """The element's value as pydicom decodes it in a data set with these encodings."""
    raw = RawDataElement(BaseTag(el.tag), el.vr if explicit else None, el.length,
                         buf[el.value:el.end], el.value, not explicit, little)
    return convert_raw_data_element(raw, encoding=encodings)


def _mini_dataset(buf: bytes, top: Seq[Element], explicit: bool, encodings: list[str],
                  keywords: Seq[str], little: bool = True) -> Dataset:
    """The few top-level attributes read before the pass (identity, character set, the tokens of
    the text cleaner), decoded as the pydicom path decodes them; undecodable ones are left out."""
    wanted = {tag_for_keyword(k) for k in keywords} - {None}
    mini = Dataset()
    for el in top:
        if el.tag in wanted and el.items is None:
            with contextlib.suppress(Exception):  # undecodable: absent, as on the pydicom path
                mini.add(_decode(buf, el, explicit, encodings, little))
    return mini


_IDENTITY = {0x00100020: "LO", 0x00100021: "LO", 0x0020000D: "UI", 0x00080016: "UI",
             0x00080018: "UI", 0x00100010: "PN"}
"""The identity attributes read before the pass (PatientID, IssuerOfPatientID, Study, SOP Class
and SOP Instance UIDs, PatientName) and their dictionary VRs (PS3.6)."""
_KEYWORD_TAG = {"PatientID": 0x00100020, "IssuerOfPatientID": 0x00100021,
                "StudyInstanceUID": 0x0020000D, "SOPClassUID": 0x00080016,
                "SOPInstanceUID": 0x00080018, "PatientName": 0x00100010}
_PRINTABLE = re.compile(rb"[\x20-\x5B\x5D-\x7E]*[\x00 ]*")
"""Printable ASCII without a backslash (one value), then padding: decoded the same under every
character set of :data:`_PLAIN_CHARSETS`."""
_DEFAULT_ENCODINGS: list[str] = []


def _identity(buf: bytes, by_tag: dict[int, Element], explicit: bool, encodings: list[str],
              plain: bool, little: bool = True) -> dict[str, str]:
    """The identity attributes as ``str(value).strip()`` of pydicom's decoded value (PS3.5 6.2:
    trailing NUL and spaces are padding), read directly from the bytes when the value is one
    printable ASCII value in its dictionary VR; pydicom decodes anything else. Undecodable values
    are absent, as on the pydicom path."""
    out: dict[str, str] = {}
    for keyword, tag in _KEYWORD_TAG.items():
        el = by_tag.get(tag)
        if el is None or el.items is not None:
            continue
        data = buf[el.value:el.end]
        if el.vr == _IDENTITY[el.tag] and (plain or el.vr == "UI") and \
                _PRINTABLE.fullmatch(data) is not None:
            out[keyword] = data.decode("ascii").rstrip("\x00 ").strip()
            continue
        with contextlib.suppress(Exception):  # undecodable: absent, as on the pydicom path
            out[keyword] = str(_decode(buf, el, explicit, encodings, little).value or
                               "").strip()
    return out


def _short(tag: int, vr: str, value: str) -> bytes:
    """One Explicit VR Little Endian element with a 2-byte length, as pydicom writes it (PS3.5
    7.1.2, 6.2: even length, UI padded with NUL, text with a space); pydicom for anything else."""
    data = value.encode("ascii") if value.isascii() and "\\" not in value else b""
    if data and len(data) < 0xFFFE and vr in ("UI", "SH"):
        if len(data) & 1:
            data += b"\x00" if vr == "UI" else b" "
        return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(data)) + data
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_data_element(fp, DataElement(tag, vr, value))
    return fp.getvalue()


_VERSION_NAME: list[bytes] = []
"""RadGuard's Implementation Class UID and Version Name elements, encoded once."""


def _meta(buf: bytes, meta_elements: Seq[Element], ts_uid: str, sop_class: str | None,
          sop_instance: str | None) -> bytes:
    """New File Meta Information (PS3.10 7.1): the original elements but the ones naming systems
    (``rules.json``), RadGuard's implementation, the new SOP Instance UID; group length computed."""
    from radguard.deid.files import file_meta_removals

    if not _VERSION_NAME:
        from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

        from radguard import __version__

        _VERSION_NAME.extend((_short(0x00020012, "UI", str(PYDICOM_IMPLEMENTATION_UID)),
                              _short(0x00020013, "SH", f"RADGUARD_{__version__}"[:16])))
    drop = {0x00020000, 0x00020012, 0x00020013, *file_meta_removals()}
    pieces: dict[int, bytes] = {el.tag: buf[el.header:el.end] for el in meta_elements
                                if el.tag not in drop}
    if 0x00020001 not in pieces:
        pieces[0x00020001] = struct.pack("<HH2sHI", 0x0002, 0x0001, b"OB", 0, 2) + b"\x00\x01"
    if sop_class is not None:
        pieces[0x00020002] = _short(0x00020002, "UI", sop_class)
    if sop_instance is not None:
        pieces[0x00020003] = _short(0x00020003, "UI", sop_instance)
    if 0x00020010 not in pieces:
        pieces[0x00020010] = _short(0x00020010, "UI", ts_uid)
    pieces[0x00020012], pieces[0x00020013] = _VERSION_NAME
    if 0x00020002 not in pieces or 0x00020003 not in pieces:
        raise Fallback("no SOP Class or SOP Instance UID for the File Meta Information")
    body = b"".join(pieces[t] for t in sorted(pieces))
    return struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, len(body)) + body


def deidentify_bytes(buf: bytes, walked: WalkResult, options: DeidOptions) -> FastOutput:
    """De-identify the PS3.10 file ``buf`` (walked by the bounded reader into ``walked``).

    Returns the output as byte pieces and the changes, exactly those of
    :func:`radguard.deid.deidentify_dataset` on the same file. Raises :class:`Fallback` (with the
    reason) when this file needs the pydicom path; never for any other reason about the input.
    """
    from radguard.deid.dataset import plan_for, pseudonymizer_for

    reason = option_fallback(options)
    if reason is not None:
        raise Fallback(reason)
    if not walked.has_meta:
        raise Fallback("no File Meta Information")
    ts_uid = (walked.transfer_syntax or "").strip("\x00 ")
    from radguard.dicomio.vr import transfer_syntax

    ts = transfer_syntax(ts_uid)
    if not ts.known or ts.deflated or not (ts.little or ts.explicit):
        raise Fallback(f"transfer syntax {ts_uid or 'missing'}")
    bad = sorted({p.code for p in walked.problems} - HARMLESS_PROBLEMS)
    if bad or not walked.completed or walked.trailing_offset is not None:
        raise Fallback(f"the bounded walk reported {', '.join(bad) or 'trailing data'}")
    try:
        meta_elements, start = file_meta(buf)
        top = data_set(buf, start, len(buf), explicit=ts.explicit, little=ts.little)
    except ElementError as exc:
        raise Fallback(f"element structure: {exc}") from exc

    plan = plan_for(options.options)
    pseudo = pseudonymizer_for(options)
    by_tag = {el.tag: el for el in top}  # unique: the walk reports duplicates (no fast path)
    charset_el = by_tag.get(SPECIFIC_CHARACTER_SET)
    if charset_el is not None:
        charset_key = (buf[charset_el.header:charset_el.end], ts.explicit, ts.little)
        cached = _CHARSETS.get(charset_key)
        if cached is None:
            charset_mini = _mini_dataset(buf, top, ts.explicit, [], ("SpecificCharacterSet",),
                                         ts.little)
            cached = (charset_mini.get("SpecificCharacterSet", "iso8859"),
                      charset_mini._character_set)
            if len(_CHARSETS) < 1024:
                _CHARSETS[charset_key] = cached
        charset: Any = cached[0]
        known = cached[1]
    else:
        charset = "iso8859"
        if not _DEFAULT_ENCODINGS:
            default = Dataset()._character_set
            _DEFAULT_ENCODINGS.extend([default] if isinstance(default, str) else default)
        known = _DEFAULT_ENCODINGS
    encodings = [known] if isinstance(known, str) else list(known)
    ident = _identity(buf, by_tag, ts.explicit, encodings, charset in _PLAIN_CHARSETS,
                      ts.little)
    if METHOD_CODE_SEQUENCE in by_tag:
        raise Fallback("an existing De-identification Method Code Sequence")
    patient_id, issuer = ident.get("PatientID", ""), ident.get("IssuerOfPatientID", "")
    study_uid, sop_class = ident.get("StudyInstanceUID", ""), ident.get("SOPClassUID", "")
    patient_key = f"{issuer}\x00{patient_id}" if patient_id else \
        f"name\x00{ident.get('PatientName', '')}"
    tokens: list[str] = []
    if options.options:
        tokens = identifier_tokens(_mini_dataset(buf, top, ts.explicit, encodings,
                                                 unlisted_rules().identifier_keywords, ts.little))
    ctx = Context(
        options=options, plan=plan, rules=unlisted_rules(), pseudo=pseudo,
        scrubber=Scrubber(tokens),
        sop_class=sop_class,
        date_offset=pseudo.date_offset(patient_key) if options.has(
            Option.RETAIN_MODIFIED_DATES) else None,
        patient_id=patient_id, issuer=issuer,
    )
    run = _Pass(buf, ts.explicit, ctx, charset, encodings, ts.little)
    body, _ = run.run(top, "", False, "normal")
    pieces = dict(body)
    if ORIGINAL_ATTRIBUTES_SEQUENCE in pieces:
        raise Fallback("an Original Attributes Sequence the options keep")
    applied = _APPLIED.get(options.options)
    if applied is None:
        applied = _APPLIED[options.options] = tuple(options.option_list)
    key = (applied, plan.version, ts.explicit, ts.little, str(charset))
    marks = _MARKS.get(key)
    if marks is None:
        marks_ds = Dataset()
        made = tuple(write_marks(marks_ds, applied, table_version=plan.version))
        marks = _MARKS[key] = (made, {int(elem.tag): run.encode(elem) for elem in marks_ds})
    ctx.changes.extend(marks[0])
    pieces.update(marks[1])

    def final(tag: int, keyword: str) -> str | None:
        if tag in run.top_new:
            return run.top_new[tag]
        return ident.get(keyword, "") if tag in pieces else None

    new_sop = final(SOP_INSTANCE_UID, "SOPInstanceUID")
    meta = _meta(buf, meta_elements, ts_uid, sop_class if SOP_CLASS_UID in pieces else None, new_sop)
    out: list[Piece] = [b"\x00" * 128, b"DICM", meta]
    out.extend(pieces[t] for t in sorted(pieces))
    changes = DeidChanges(
        changes=tuple(ctx.changes), applied=applied, notes=tuple(ctx.notes),
        original_patient_id=patient_id, original_study_uid=study_uid,
        new_patient_id=final(PATIENT_ID, "PatientID") or "",
        new_study_uid=final(STUDY_UID, "StudyInstanceUID") or "", sop_class_uid=sop_class,
    )
    return FastOutput(tuple(out), changes, new_sop or "")
