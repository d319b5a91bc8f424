"""What the PS3.15 schema leaves free, and the datatype tests of checked values, for the template
cache of :mod:`.template` (see its docstring for how both are used).

:func:`schema_slots` reads the RELAX NG schema file itself: an attribute (or element text) is
*free* when every one of its definitions is ``text`` or the built-in ``string``/``token`` datatype
without parameters, so RELAX NG accepts any string there (RELAX NG 6.2.8-6.2.9; the built-in
library's ``string`` and ``token`` allow every string). :func:`checked_ok` tests
``xsd:dateTime`` and ``xsd:base64Binary`` values as the schema's validator does: by libxml2's
RELAX NG validator itself, on a one-element document, unless the value is in a plain form every
conforming XSD validator accepts.
"""

from __future__ import annotations

import re
import threading
from functools import cache
from importlib import resources

from lxml import etree

from radguard.audit.schema import SCHEMA_FILE

__all__ = ["checked_ok", "libxml2_ok", "schema_slots"]

#: Strings every conforming XSD validator accepts (XML Schema Part 2, 3.2.7 dateTime: year
#: 1000-9999, days that exist in that month in every year (February 29 is left to libxml2),
#: hour 00-23, minute and second 00-59, offset up to 13:59; 3.2.16 base64Binary: canonical
#: groups of four, padding bits zero). Others are tested by libxml2 itself (:func:`checked_ok`);
#: test_template checks both agree.
_SURE_DATETIME = re.compile(
    rb"[1-9][0-9]{3}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
    rb"|(?:0[13578]|1[02])-31)T(?:[01][0-9]|2[0-3])"
    rb":[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,12})?(?:Z|[+-](?:0[0-9]|1[0-3]):[0-5][0-9])?")
_SURE_BASE64 = re.compile(
    rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=|[A-Za-z0-9+/][AQgw]==)?")
_RNG = "{http://relaxng.org/ns/structure/1.0}"
_XSD = "http://www.w3.org/2001/XMLSchema-datatypes"
_CHECKED_ATTRS = {"EventDateTime": "dateTime"}
_CHECKED_TEXT = {"ParticipantObjectQuery": "base64Binary"}

_CHECK_SCHEMA = (
    b'<element name="c" xmlns="http://relaxng.org/ns/structure/1.0" '
    b'datatypeLibrary="http://www.w3.org/2001/XMLSchema-datatypes"><zeroOrMore><choice>'
    b'<element name="v"><attribute name="a"><data type="dateTime"/></attribute></element>'
    b'<element name="q"><data type="base64Binary"/></element>'
    b"</choice></zeroOrMore></element>")


# -- what the schema leaves free ------------------------------------------------------------------


def _library(node: etree._Element) -> str:
    at: etree._Element | None = node
    while at is not None:
        lib = at.get("datatypeLibrary")
        if lib is not None:
            return str(lib)
        at = at.getparent()
    return ""


def _kind(pattern: etree._Element) -> str | None:
    """``"free"`` for ``text`` or a built-in string/token datatype without parameters, the XSD
    type name for an XSD ``data`` without parameters, ``None`` for anything else."""
    if pattern.tag == _RNG + "text":
        return "free"
    if pattern.tag != _RNG + "data" or len(pattern):
        return None
    lib, kind = _library(pattern), pattern.get("type")
    if lib == "" and kind in ("string", "token"):
        return "free"
    return kind if lib == _XSD else None


@cache
def schema_slots() -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    """From the schema file: attribute names and element names (text) that any string satisfies
    in every definition, and the checked attribute and element names whose every definition is
    their XSD type of :data:`_CHECKED_ATTRS` / :data:`_CHECKED_TEXT`. All empty (no cache) when
    the schema uses a construct this analysis does not cover."""
    data = resources.files("radguard").joinpath(SCHEMA_FILE).read_bytes()
    root = etree.fromstring(data, parser=etree.XMLParser(no_network=True, resolve_entities=False,
                                                         remove_comments=True))
    none: frozenset[str] = frozenset()
    nothing = (none, none, none, none)
    if any(root.iter(_RNG + "anyName", _RNG + "nsName", _RNG + "name", _RNG + "include",
                     _RNG + "externalRef")):
        return nothing
    attrs: dict[str, set[str | None]] = {}
    texts: dict[str, set[str | None]] = {}
    for node in root.iter(_RNG + "attribute", _RNG + "element"):
        name = node.get("name")
        if name is None:
            return nothing
        children = [c for c in node if isinstance(c.tag, str)]
        if node.tag == _RNG + "attribute":
            attrs.setdefault(name, set()).add(
                "free" if not children else _kind(children[0]) if len(children) == 1 else None)
        else:
            texts.setdefault(name, set()).add(_kind(children[0]) if len(children) == 1 else None)
    free_attrs = frozenset(n for n, kinds in attrs.items() if kinds == {"free"})
    free_text = frozenset(n for n, kinds in texts.items() if kinds == {"free"})
    checked_attrs = frozenset(n for n, t in _CHECKED_ATTRS.items() if attrs.get(n) == {t})
    checked_text = frozenset(n for n, t in _CHECKED_TEXT.items() if texts.get(n) == {t})
    return free_attrs, free_text, checked_attrs, checked_text


# -- checked values -------------------------------------------------------------------------------

_CHECK_LOCK = threading.Lock()
# hardened like radguard.audit._xml; used under _CHECK_LOCK only
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                          load_dtd=False, remove_comments=True, remove_pis=True)


@cache
def _checker() -> etree.RelaxNG:
    return etree.RelaxNG(etree.fromstring(_CHECK_SCHEMA,
                                          parser=etree.XMLParser(no_network=True)))


def checked_ok(datetimes: tuple[bytes, ...], base64: tuple[bytes, ...]) -> bool:
    """Whether every value passes its XSD datatype as libxml2's RELAX NG validator tests it
    (values already free of markup characters)."""
    sure_dt, sure_b64 = _SURE_DATETIME.fullmatch, _SURE_BASE64.fullmatch
    if all(map(sure_dt, datetimes)) and all(map(sure_b64, base64)):
        return True
    return libxml2_ok(datetimes, base64)


def libxml2_ok(datetimes: tuple[bytes, ...], base64: tuple[bytes, ...]) -> bool:
    """:func:`checked_ok` by libxml2: a one-element document of the values, validated."""
    doc = b"".join((b"<c>", *(b'<v a="' + v + b'"/>' for v in datetimes),
                    *(b"<q>" + v + b"</q>" for v in base64), b"</c>"))
    with _CHECK_LOCK:
        try:
            root = etree.fromstring(doc, parser=_PARSER)
        except etree.XMLSyntaxError:
            return False
        return bool(_checker().validate(root))
