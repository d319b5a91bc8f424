"""Shared steps of the export tests."""

from __future__ import annotations

from pathlib import Path

from radguard.config import Settings
from radguard.export import CertificateRecipient, ExportOptions, ExportResult, export_media
from tests.export.conftest import PASSWORD, Recipient, Sources


def export(sources: Sources, out: Path, settings: Settings, recipient: Recipient | None = None,
           **kw: object) -> ExportResult:
    certs = (CertificateRecipient.from_pem(recipient.cert.read_bytes()),) if recipient else ()
    kw.setdefault("password", PASSWORD)
    kw.setdefault("pbkdf2_iterations", 2048)
    options = ExportOptions(certificates=certs, **kw)  # type: ignore[arg-type]
    from radguard.audit import AuditEmitter

    return export_media([sources.folder], out, options, settings,
                        emitter=AuditEmitter.from_settings(settings))


def plain_files(root: Path) -> list[Path]:
    """Files of a medium folder that are not CMS envelopes."""
    return [p for p in root.rglob("*") if p.is_file() and p.read_bytes()[:1] != b"\x30"]
