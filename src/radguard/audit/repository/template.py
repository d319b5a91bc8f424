"""Template cache: messages that differ from an already checked one only in values the schema
does not constrain get that message's verdict without being parsed again.

A sender writes the same few message shapes over and over (PS3.15 A.5.3: one per event kind);
what changes from message to message are user ids, patient ids, UIDs and the time. Parsing,
RELAX NG validation and field extraction cost ~50 µs of CPU per message; this module replaces
them, for messages whose bytes are *provably* parsed and validated like a checked message, with
two C-level splits and a dictionary look-up. Anything else takes the full path of
:func:`.parse.parse_msg`, which stays the reference.

How a message is cut (:func:`_split`). After an optional XML declaration (one of
:data:`_DECLS`, kept whole), the MSG is split at every ``>TEXT<`` whose TEXT has none of
``< > & "`` (*text slots*), then every remaining segment at ``"`` (odd pieces: *attribute
slots*). The key is the declaration and the segments without the slot contents; two messages
with the same key and the same slot counts are the same bytes except inside the slots.

When a template is made (:func:`_learn`, from a message the full path found VALID, seen for the
second time). The message is rebuilt with a unique probe string in every slot and parsed by the
hardened parser; the template is kept only if every probe is, in that tree, exactly the whole
value of one attribute or the whole text (or tail) of one element, and the probe tree with the
original slot contents put back equals the message's own tree (tags, attributes, texts, tails in
document order), and the message has no comment, PI, CDATA or DOCTYPE. Each slot is then:

- *free*: an attribute whose every definition in the PS3.15 schema is ``text`` or the built-in
  ``string``/``token`` datatype without parameters (any string conforms), or the text of an
  element whose every definition holds only such a pattern, and not read by
  :func:`.parse._raw_fields` other than by copying it whole (:data:`.parse.BRANCHING_ATTRIBUTES`);
- *checked*: EventDateTime (``xsd:dateTime``) and ParticipantObjectQuery text
  (``xsd:base64Binary``), both verified in the schema file at load time;
- *fixed*: anything else (codes, enumerations, booleans, whitespace between elements...).

Why a hit is equivalent (:meth:`_Group.fields`). A message M' with a template's key, the same
fixed slot contents, and free/checked slot contents that are valid UTF-8 without control
characters, U+FFFE/U+FFFF, ``<`` or ``&`` (attribute slots: none of TAB, LF, CR either, which
attribute-value normalisation would change) is the template message M with other characters
inside attribute values and character data. XML 1.0 reads such characters literally (sections
2.4, 3.3.3), so M' is well-formed and its tree is M's tree with those values replaced. RELAX NG
validation depends on attribute values and texts only through datatype tests: for a free slot
every test the schema can apply accepts any string, and a checked slot's content is tested with
the same libxml2 datatype (:func:`.slots.checked_ok`); so M' is valid
exactly as M is. Its fields are :func:`.parse._raw_fields` of that tree, which copies the free
values it reads and branches only on fixed ones: the template records where each probe landed
and substitutes M''s contents there (verified on M itself when the template is made), then
:func:`.parse._finish` runs as on the full path. The test suite checks the equality on every
sample message and on hostile variants of the slot contents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from lxml import etree

import radguard.audit.repository.parse as _parse
from radguard.audit.repository.slots import checked_ok, schema_slots

__all__ = ["clear", "parse_msg_cached"]

#: Messages above this size always take the full path (the cache is for the common small ones).
MAX_CACHED = 16 * 1024
_MAX_GROUPS = 512
_MAX_VARIANTS = 64
_MAX_SEEN = 8192

_DECLS = frozenset(
    f"<?xml version={q}1.0{q}{enc}?>".encode()
    for q in ("'", '"')
    for enc in ("", *(f" encoding={q}{e}{q}" for e in ("UTF-8", "utf-8"))))
_TEXT = re.compile(rb'>([^<>&"]+)<')
_BAD_ATTR = re.compile(rb"[\x00-\x1f<&]|\xef\xbf[\xbe\xbf]")
_BAD_TEXT = re.compile(rb"[\x00-\x08\x0b-\x1f<&]|\xef\xbf[\xbe\xbf]")
_FREE, _FIXED, _DATETIME, _BASE64 = 0, 1, 2, 3
_PROBE_MARK = "\u2063"  # INVISIBLE SEPARATOR: a valid XML character, never expected in audit XML
# -- cutting a message ----------------------------------------------------------------------------


def _split(msg: bytes) -> tuple[bytes, list[bytes], list[bytes]] | None:
    """``(key, attribute slots, text slots)`` of ``msg`` (see the module docstring), or ``None``
    when it starts with an XML declaration that is not one of :data:`_DECLS`."""
    decl = b""
    if msg[:5] == b"<?xml":
        end = msg.find(b"?>") + 2
        decl = msg[:end]
        if decl not in _DECLS:
            return None
        msg = msg[end:]
    parts = _TEXT.split(msg)
    key = [decl]
    attrs: list[bytes] = []
    for segment in parts[0::2]:
        pieces = segment.split(b'"')
        key.append(b'"'.join(pieces[0::2]))
        attrs += pieces[1::2]
    return b"\x00".join(key), attrs, parts[1::2]


def _join(msg: bytes, attrs: list[bytes], texts: list[bytes]) -> bytes:
    """The inverse of :func:`_split` with other slot contents."""
    decl = b""
    if msg[:5] == b"<?xml":
        end = msg.find(b"?>") + 2
        decl, msg = msg[:end], msg[end:]
    parts = _TEXT.split(msg)
    out = [decl]
    a = 0
    for i, segment in enumerate(parts[0::2]):
        pieces = segment.split(b'"')
        for j in range(1, len(pieces), 2):
            pieces[j] = attrs[a]
            a += 1
        out.append(b'"'.join(pieces))
        if i < len(texts):
            out.append(b">" + texts[i] + b"<")
    return b"".join(out)


# -- templates ------------------------------------------------------------------------------------


def _getter(indexes: list[int]) -> Callable[[list[bytes]], tuple[bytes, ...]]:
    """``itemgetter`` that always returns a tuple."""
    if not indexes:
        return lambda values: ()
    if len(indexes) == 1:
        i = indexes[0]
        return lambda values: (values[i],)
    return itemgetter(*indexes)


class _Variant:
    """Where the copied values go in :func:`.parse._raw_fields`' result, for one set of fixed
    slot contents: ``build`` makes that result from the decoded used slots followed by
    ``constants`` (generated from indexes only: no message content is ever compiled)."""

    __slots__ = ("build", "constants", "used")

    def __init__(self, used: Callable[[list[bytes]], tuple[bytes, ...]],
                 shape: tuple[tuple[str, Any], ...], constants: list[object]) -> None:
        self.used = used
        self.constants = constants
        items = []
        for kind, where in shape:
            if kind == "i":
                items.append(f"e[{int(where)}]")
            else:
                items.append("[" + ", ".join(f"e[{int(i)}]" for i in where) + "]")
        code = f"lambda e: ({', '.join(items)},)"
        self.build: Callable[[list[object]], tuple[object, ...]] = eval(code)  # noqa: S307

    def raw(self, values: list[bytes]) -> tuple[object, ...] | None:
        used = self.used(values)
        ext: list[object] = self.constants
        if used:
            try:  # slot contents hold no '"': one decode, one split
                ext = [*b'"'.join(used).decode("utf-8").split('"'), *ext]
            except UnicodeDecodeError:
                return None
        return self.build(ext)


class _Group:
    """The templates of one key: slot kinds (the same for every variant, they follow from the
    structure) and the variants by fixed slot contents."""

    __slots__ = ("b64", "datetimes", "fixed", "free_attrs", "free_text", "kinds", "nattrs",
                 "ntexts", "variants")

    def __init__(self, kinds: list[int], nattrs: int, ntexts: int) -> None:
        self.kinds = tuple(kinds)
        self.nattrs, self.ntexts = nattrs, ntexts
        idx = range(len(kinds))
        self.fixed = _getter([i for i in idx if kinds[i] == _FIXED])
        self.free_attrs = _getter([i for i in idx if i < nattrs and kinds[i] != _FIXED])
        self.free_text = _getter([i for i in idx if i >= nattrs and kinds[i] != _FIXED])
        self.datetimes = _getter([i for i in idx if kinds[i] == _DATETIME])
        self.b64 = _getter([i for i in idx if kinds[i] == _BASE64])
        self.variants: dict[tuple[bytes, ...], _Variant] = {}

    def fields(self, attrs: list[bytes], texts: list[bytes]) -> tuple[object, ...] | None:
        """The fields of a message with this key, or ``None`` when it must take the full path."""
        if len(attrs) != self.nattrs or len(texts) != self.ntexts:
            return None
        values = attrs + texts
        variant = self.variants.get(self.fixed(values))
        if variant is None:
            return None
        free_attrs, free_text = b'"'.join(self.free_attrs(values)), b'"'.join(self.free_text(values))
        if _BAD_ATTR.search(free_attrs) or _BAD_TEXT.search(free_text):
            return None
        try:  # well-formed UTF-8 (no surrogates, no overlong forms), as XML requires
            free_attrs.decode("utf-8")
            free_text.decode("utf-8")
        except UnicodeDecodeError:
            return None
        datetimes, b64 = self.datetimes(values), self.b64(values)
        if (datetimes or b64) and not checked_ok(datetimes, b64):
            return None
        raw = variant.raw(values)
        return None if raw is None else _parse._finish(raw)


_GROUPS: dict[bytes, _Group] = {}
_SEEN: set[int] = set()
_LEARN_COST = 8
_BUDGET_MAX = 256
_BUDGET = [_BUDGET_MAX]


def clear() -> None:
    """Forget every template (tests)."""
    _GROUPS.clear()
    _SEEN.clear()
    _BUDGET[0] = _BUDGET_MAX


def _probe(i: int) -> str:
    return f"{_PROBE_MARK}{i}{_PROBE_MARK}"


def _items(root: etree._Element) -> list[tuple[Any, ...]]:
    return [(el.tag, tuple(el.items()), el.text, el.tail, len(el)) for el in root.iter()]


def _learn(key: bytes, msg: bytes, attrs: list[bytes], texts: list[bytes]) -> None:
    """Make a template from ``msg``, which the full path found VALID (see the module
    docstring); keep nothing if any condition fails."""
    body = msg[msg.find(b"?>") + 2:] if msg[:5] == b"<?xml" else msg
    if b"<!" in body or b"<?" in body or _PROBE_MARK.encode() in msg:
        return
    free_attrs, free_text, checked_attrs, checked_text = schema_slots()
    if not free_attrs:
        return
    n = len(attrs) + len(texts)
    probes = [_probe(i).encode() for i in range(n)]
    try:
        probed = etree.fromstring(_join(msg, probes[:len(attrs)], probes[len(attrs):]),
                                  parser=_parse._reused_parser())
        original = _parse._parse(msg)
    except Exception:  # any failure: no template, the full path stays
        return
    try:
        back = {_probe(i): v.decode("utf-8") for i, v in enumerate(attrs + texts)}
    except UnicodeDecodeError:
        return
    where: dict[int, tuple[Any, str, Any]] = {}  # slot -> (element, "attr"/"text"/"tail", name)
    for el in probed.iter():
        for name, value in el.items():
            if value in back:
                where[int(value.strip(_PROBE_MARK))] = (el.tag, "attr", name)
        if el.text is not None and el.text in back:
            # the whole text of an element without children, or else only kept as it is
            where[int(el.text.strip(_PROBE_MARK))] = (el.tag, "text" if len(el) == 0 else
                                                      "other", "")
        if el.tail is not None and el.tail in back:
            where[int(el.tail.strip(_PROBE_MARK))] = (el.tag, "other", "")
    if len(where) != n:
        return
    for i in range(n):  # attribute slots must be attributes, text slots texts
        if (where[i][1] == "attr") != (i < len(attrs)):
            return
    restored = [(tag, tuple((k, back.get(v, v)) for k, v in items),
                 None if text is None else back.get(text, text),
                 None if tail is None else back.get(tail, tail), size)
                for tag, items, text, tail, size in _items(probed)]
    if restored != _items(original):
        return
    kinds: list[int] = []
    for i in range(n):
        tag, part, name = where[i]
        if part == "attr":
            kinds.append(_DATETIME if name in checked_attrs else
                         _FREE if name in free_attrs and name not in _parse.BRANCHING_ATTRIBUTES
                         else _FIXED)
        elif part == "text":
            kinds.append(_BASE64 if tag in checked_text else
                         _FREE if tag in free_text and tag not in _parse.BRANCHING_TEXT
                         else _FIXED)
        else:
            kinds.append(_FIXED)
    # the program: probes only where the message may differ, fixed contents as they are
    values = attrs + texts
    mixed = [values[i] if kinds[i] == _FIXED else probes[i] for i in range(n)]
    try:
        partly = etree.fromstring(_join(msg, mixed[:len(attrs)], mixed[len(attrs):]),
                                  parser=_parse._reused_parser())
    except etree.XMLSyntaxError:
        return
    variant = _variant(partly, original, kinds, values)
    if variant is None:
        return
    group = _GROUPS.get(key)
    if group is None:
        if len(_GROUPS) >= _MAX_GROUPS:
            _GROUPS.clear()
        group = _GROUPS[key] = _Group(kinds, len(attrs), len(texts))
    elif group.kinds != tuple(kinds) or group.nattrs != len(attrs):
        return
    if len(group.variants) < _MAX_VARIANTS:
        group.variants[group.fixed(attrs + texts)] = variant


def _variant(probed: etree._Element, original: etree._Element, kinds: list[int],
             values: list[bytes]) -> _Variant | None:
    """The substitution program of :class:`_Variant`, checked on the template message."""
    raw_probe = _parse._raw_fields(probed)
    used: list[int] = []
    constants: list[object] = []

    def ref(value: object) -> tuple[str, Any]:
        if isinstance(value, str) and _PROBE_MARK in value:
            slot = int(value.strip(_PROBE_MARK)) if value.count(_PROBE_MARK) == 2 else -1
            if slot < 0 or value != _probe(slot) or kinds[slot] == _FIXED:
                raise ValueError(value)
            if slot not in used:
                used.append(slot)
            return "i", used.index(slot)
        return "c", value

    try:
        shape: list[tuple[str, Any]] = []
        for value in raw_probe:
            if isinstance(value, list):
                refs = [ref(v) for v in value]
                shape.append(("l", refs))
            else:
                shape.append(ref(value))
    except ValueError:
        return None
    # constants go after the used slots in the look-up list
    final: list[tuple[str, Any]] = []

    def index(kind: str, where: Any) -> int:
        if kind == "i":
            return int(where)
        constants.append(where)
        return len(used) + len(constants) - 1

    for kind, where in shape:
        if kind == "l":
            final.append(("l", tuple(index(k, w) for k, w in where)))
        else:
            final.append(("i", index(kind, where)))
    variant = _Variant(_getter(used), tuple(final), constants)
    if variant.raw(values) != _parse._raw_fields(original):
        return None
    return variant


def parse_msg_cached(msg: bytes) -> tuple[_parse.Validity, str | None, tuple[object, ...]]:
    """:func:`.parse.parse_msg` (same result, see the module docstring), from a template when
    ``msg`` matches one.

    Bounded against hostile traffic: shapes seen once are remembered by hash only, at most
    :data:`_MAX_GROUPS` templates of messages up to :data:`MAX_CACHED` octets are kept, and
    making a template (three parses) is paid from a budget that the full path refills by one
    eighth of a template per message, so a stream of ever-new shapes costs at most ~40 % more
    than the full path alone."""
    if len(msg) > MAX_CACHED:
        return _parse.parse_msg(msg)
    cut = _split(msg)
    if cut is None:
        return _parse.parse_msg(msg)
    key, attrs, texts = cut
    group = _GROUPS.get(key)
    if group is not None:
        fields = group.fields(attrs, texts)
        if fields is not None:
            return _parse.Validity.VALID, None, fields
    result = _parse.parse_msg(msg)
    _BUDGET[0] = min(_BUDGET[0] + 1, _BUDGET_MAX)
    if result[0] is _parse.Validity.VALID and result[1] is None and _BUDGET[0] >= _LEARN_COST:
        if group is None:
            mark = hash(key)
            if mark not in _SEEN:
                if len(_SEEN) >= _MAX_SEEN:
                    _SEEN.clear()
                _SEEN.add(mark)
                return result
        _BUDGET[0] -= _LEARN_COST
        _learn(key, msg, attrs, texts)
    return result
