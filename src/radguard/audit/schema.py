"""Validation of audit messages against the PS3.15 2023b A.5.1.1 schema.

The schema is shipped as RELAX NG XML (``radguard/data/audit/audit-message-2023b.rng``), generated
from the standard's compact syntax by ``scripts/gen_audit_rng.sh`` (Debian ``trang``), and checked
with lxml's RELAX NG validator. Input goes through the hardened parser of :mod:`._xml` first.
"""

from __future__ import annotations

import threading
from functools import cache
from importlib import resources

from lxml import etree

from radguard.audit._xml import parse
from radguard.errors import AuditSchemaError

__all__ = ["SCHEMA_FILE", "is_valid", "schema_errors", "validate"]

SCHEMA_FILE = "data/audit/audit-message-2023b.rng"
_MAX_REPORTED = 5
# One compiled validator; its error log is per instance, so validation is serialised.
_LOCK = threading.Lock()


@cache
def _relaxng() -> etree.RelaxNG:
    data = resources.files("radguard").joinpath(SCHEMA_FILE).read_bytes()
    return etree.RelaxNG(etree.fromstring(data, parser=etree.XMLParser(no_network=True)))


def is_valid(xml: bytes) -> tuple[bool, list[str]]:
    """Check ``xml`` against PS3.15 A.5.1; return ``(ok, errors)``, errors as ``line:col: message``.

    Input that is not well-formed or is refused by the hardened parser is reported the same way.
    """
    try:
        root = parse(xml)
    except AuditSchemaError as exc:
        return False, [exc.message]
    with _LOCK:
        schema = _relaxng()
        if schema.validate(root):
            return True, []
        return False, [f"{e.line}:{e.column}: {e.message}" for e in schema.error_log]


def schema_errors(root: etree._Element) -> list[str]:
    """Errors of an already parsed (with :func:`._xml.parse`) message against PS3.15 A.5.1.

    Empty when it conforms. Lets a caller that parsed once (the audit repository) validate
    without parsing again.
    """
    with _LOCK:
        schema = _relaxng()
        if schema.validate(root):
            return []
        return [f"{e.line}:{e.column}: {e.message}" for e in schema.error_log]


def validate(xml: bytes) -> None:
    """Raise unless ``xml`` conforms to the PS3.15 A.5.1 audit message schema.

    Raises
    ------
    AuditSchemaError
        With the validator's first errors in the message.
    """
    ok, errors = is_valid(xml)
    if not ok:
        shown = "; ".join(errors[:_MAX_REPORTED])
        more = f" (+{len(errors) - _MAX_REPORTED} more)" if len(errors) > _MAX_REPORTED else ""
        raise AuditSchemaError(
            f"audit message does not conform to PS3.15 A.5.1: {shown}{more}",
            remedy="this is a bug in the code that built the message; report it with the XML",
        )
