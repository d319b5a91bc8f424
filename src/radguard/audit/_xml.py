"""Safe parsing of untrusted audit XML, shared by :mod:`.message` and :mod:`.schema`.

Audit messages arrive from other nodes (the audit repository receives them by syslog), so the
parser is hardened: no DTD loading, no entity substitution, no network access, no "huge tree" mode,
a bound on the input size, and any document carrying a DOCTYPE is refused outright, which stops both
external entities (XXE) and entity-expansion bombs ("billion laughs"). PS3.15 A.5.1 messages never
need a DTD.
"""

from __future__ import annotations

from lxml import etree

from radguard.errors import AuditSchemaError

__all__ = ["MAX_MESSAGE_BYTES", "parse"]

#: Largest audit message accepted (bytes). RFC 5425 receivers must take 32 KiB; messages listing
#: many instances are larger, so the bound is generous but finite.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> etree._Element:
    """Parse ``data`` as one XML document and return its root element.

    Raises
    ------
    AuditSchemaError
        The input is too large, not well-formed, or declares a DOCTYPE (refused: entity attacks).
    """
    if len(data) > max_bytes:
        raise AuditSchemaError(
            f"audit message of {len(data)} bytes exceeds the {max_bytes}-byte limit",
            remedy="split the event into several messages",
        )
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:
        # UTF-16/32 would hide a DOCTYPE from the byte check below; PS3.15 A.6 sends UTF-8.
        raise AuditSchemaError(
            "audit message is not in an ASCII-compatible encoding (PS3.15 A.6 expects UTF-8)"
        )
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        # Checked before parsing so that libxml2 never sees the internal subset at all.
        raise AuditSchemaError(
            "audit message declares a DOCTYPE or ENTITY; refused (PS3.15 A.5.1 needs no DTD)",
            remedy="the sender is misconfigured or hostile; inspect it",
        )
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise AuditSchemaError(f"audit message is not well-formed XML: {exc}") from exc
    tree = root.getroottree()
    docinfo = tree.docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise AuditSchemaError("audit message declares a DOCTYPE; refused")
    return root
