"""``radguard media export`` and ``radguard media open``: encrypted IHE PDI media (PS3.15 D.1).

Passwords come from a hidden prompt or ``--password-file`` (first line), never from the command line.
A generated passphrase is offered at the prompt and shown only when the operator accepts it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from radguard.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    err_console,
    fail,
    get_settings,
    out_console,
    progress_bar,
    write_output,
)

# The export library, pydicom, cryptography, pycdlib, the audit emitter and Rich tables are imported
# inside the commands, so that 'radguard --help' and other commands do not pay for them.

__all__ = ["register"]


def _read_secret_file(path: Path) -> str:
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{path}: cannot read the password file ({exc}); it must be ASCII text")
    if not lines or not lines[0]:
        fail(f"{path}: the password file is empty (the first line is the password)")
    return lines[0]


def _prompt_new_password() -> str:
    from radguard.errors import RadGuardError
    from radguard.export import check_password, generate_passphrase
    from radguard.export.passwords import passphrase_bits

    if not sys.stdin.isatty():
        fail("no password: give --password-file FILE or --recipient CERT.pem (no terminal to ask)")
    if typer.confirm(f"Use a generated passphrase ({passphrase_bits():.0f} bits)?", default=True,
                     err=True):
        phrase = generate_passphrase()
        err_console.print(f"\nPassphrase: [bold]{phrase}[/]\nGive it to the recipient separately "
                          "(telephone, letter), never with the medium.\n", highlight=False)
        return phrase
    while True:
        first = typer.prompt("Password", hide_input=True, err=True)
        try:
            check_password(first)
        except RadGuardError as exc:
            err_console.print(f"[yellow]{exc.message}[/]; {exc.remedy}", highlight=False)
            continue
        if typer.prompt("Repeat", hide_input=True, err=True) == first:
            return str(first)
        err_console.print("[yellow]the passwords differ[/]")


def export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="New folder, or ISO image with --iso "
                                      "(split media get -1ofN suffixes).")],
    inputs: Annotated[list[Path] | None, typer.Argument(help="DICOM files or folders.")] = None,
    study: Annotated[list[str] | None, typer.Option(
        "--study", help="Study Instance UID to fetch from --from (WADO-RS or C-GET); "
        "repeatable.")] = None,
    source: Annotated[str | None, typer.Option(
        "--from", help="Destination profile (or URL) to fetch the --study UIDs from.")] = None,
    recipient: Annotated[list[Path] | None, typer.Option(
        "--recipient", help="Recipient X.509 certificate (PEM, RSA); repeatable.")] = None,
    password_file: Annotated[Path | None, typer.Option(
        "--password-file", help="File whose first line is the password.")] = None,
    ask_password: Annotated[bool, typer.Option(
        "--ask-password", help="Also protect with a password when --recipient is given.")] = False,
    iso: Annotated[bool, typer.Option("--iso", help="Write ISO 9660 + Joliet image(s).")] = False,
    media: Annotated[str, typer.Option("--media", help="cd | dvd | usb (capacity, split).")] = "usb",
    deid: Annotated[list[str] | None, typer.Option(
        "--deid", help="De-identify on the way: PS3.15 E options/presets (comma-separated or "
        "repeatable).")] = None,
    deid_key_file: Annotated[Path | None, typer.Option(
        "--deid-key-file", help="Key for consistent pseudonyms across exports.")] = None,
    no_encrypt: Annotated[bool, typer.Option(
        "--no-encrypt", help="Write an UNENCRYPTED medium (explicit choice).")] = False,
    no_index: Annotated[bool, typer.Option("--no-index", help="No INDEX.HTM.")] = False,
    transport: Annotated[str, typer.Option(
        "--key-transport", help="rsa-oaep (default) | rsa-pkcs1v15 (old readers).")] = "rsa-oaep",
    label: Annotated[str, typer.Option("--label", help="Volume label (no patient data).")] =
        "RADGUARD_EXPORT",
    fmt: Annotated[str, typer.Option("--format", "-f", help="text | json")] = "text",
) -> None:
    """Write studies to an encrypted IHE PDI medium (folder or ISO image).

    Every DICOM file and the DICOMDIR are CMS EnvelopedData with AES-256 (PS3.15 Annex D); a signed
    manifest holds their SHA-256 digests. Exit status: 0 all inputs exported, 1 some inputs were
    skipped (listed), 2 nothing written.
    """
    import json

    from rich.table import Table

    from radguard.audit import AuditEmitter
    from radguard.dicomio import ReadLimits
    from radguard.errors import RadGuardError
    from radguard.export import CertificateRecipient, ExportOptions, export_media

    settings = get_settings(ctx)
    if fmt not in ("text", "json"):
        fail(f"unknown format {fmt!r}: use text or json")
    if bool(study) != bool(source):
        fail("--study and --from go together: --study UID --from PROFILE")
    if not study and not inputs:
        fail("nothing to export: give DICOM files or folders, or --study UID --from PROFILE")
    if transport not in ("rsa-oaep", "rsa-pkcs1v15"):
        fail(f"unknown key transport {transport!r}: use rsa-oaep or rsa-pkcs1v15")
    try:
        certs = tuple(CertificateRecipient.from_pem(p.read_bytes(), str(p))
                      for p in (recipient or []))
    except OSError as exc:
        fail(f"cannot read a recipient certificate: {exc}")
    except RadGuardError as exc:
        fail(exc)
    password: str | None = None
    if password_file is not None:
        password = _read_secret_file(password_file)
    elif not no_encrypt and (not certs or ask_password):
        password = _prompt_new_password()
    deid_key = None
    if deid_key_file is not None:
        try:
            deid_key = deid_key_file.read_bytes().strip()
        except OSError as exc:
            fail(f"{deid_key_file}: cannot read the de-identification key ({exc.strerror})")
    names = tuple(n.strip() for item in (deid or []) for n in item.split(",") if n.strip())
    options = ExportOptions(
        certificates=certs, password=password, encrypt=not no_encrypt, iso=iso, media=media,
        deid=names, deid_key=deid_key, index_html=not no_index,
        transport="rsa-oaep" if transport == "rsa-oaep" else "rsa-pkcs1v15", label=label,
        limits=ReadLimits.from_settings(settings))
    try:
        with progress_bar("exporting") as update:
            if study and source:  # fetched from PACS into private staging (export/fetch.py)
                from radguard.export.fetch import export_fetched

                result = export_fetched(study, source, inputs or [], out, options, settings,
                                        emitter=AuditEmitter.from_settings(settings),
                                        progress=update)
            else:
                result = export_media(inputs or [], out, options, settings,
                                      emitter=AuditEmitter.from_settings(settings),
                                      progress=update)
    except RadGuardError as exc:
        fail(exc)
    if fmt == "json":
        write_output(json.dumps(result.to_dict(), indent=2) + "\n", None)
    else:
        state = "[green]encrypted[/]" if result.encrypted else "[bold red]NOT encrypted[/]"
        out_console.print(f"Exported {result.instances} file(s) of {result.studies} study(ies), "
                          f"{state}, on {len(result.media)} medium(s):", highlight=False)
        for m in result.media:
            out_console.print(f"  {m.path}  ({m.files} files, {m.bytes / 1e6:.1f} MB)",
                              highlight=False)
        out_console.print(f"Manifest signed by {result.signer_key_id}", style="dim")
        if result.skipped:
            table = Table("skipped input", "reason")
            for s in result.skipped[:200]:
                table.add_row(s.path, s.reason)
            out_console.print(table)
    raise typer.Exit(EXIT_FINDINGS if result.skipped else EXIT_OK)


def open_(
    ctx: typer.Context,
    medium: Annotated[Path, typer.Argument(help="Mount point, folder or ISO image.")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the plain PDI file-set.")],
    password_file: Annotated[Path | None, typer.Option(
        "--password-file", help="File whose first line is the password.")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="Recipient private key (PEM).")] = None,
    cert: Annotated[Path | None, typer.Option("--cert", help="Recipient certificate (PEM).")] =
        None,
    require_trusted: Annotated[bool, typer.Option(
        "--require-trusted", help="Refuse a medium whose signer this station does not trust.")] =
        False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text | json")] = "text",
) -> None:
    """Decrypt an export medium, verify every digest, write a plain PDI folder.

    Refuses to overwrite FOLDER; on a wrong password, a tampered or a missing file nothing is
    written. Exit status: 0 opened, 2 not opened.
    """
    import json

    from radguard.audit import AuditEmitter
    from radguard.errors import RadGuardError
    from radguard.export import OpenOptions, open_export

    settings = get_settings(ctx)
    password = _read_secret_file(password_file) if password_file is not None else None
    try:
        key_pem = key.read_bytes() if key is not None else None
        cert_pem = cert.read_bytes() if cert is not None else None
    except OSError as exc:
        fail(f"cannot read the key or certificate: {exc}")
    if password is None and key_pem is None and sys.stdin.isatty():
        password = str(typer.prompt("Password (empty if the medium is not encrypted)",
                                    hide_input=True, default="", show_default=False, err=True)
                       ) or None
    try:
        with progress_bar("opening") as update:
            result = open_export(medium, out, OpenOptions(password, key_pem, cert_pem,
                                                          require_trusted),
                                 settings, emitter=AuditEmitter.from_settings(settings),
                                 progress=update)
    except RadGuardError as exc:
        fail(exc)
    if fmt == "json":
        write_output(json.dumps(result.to_dict(), indent=2) + "\n", None)
        raise typer.Exit(EXIT_OK)
    out_console.print(f"Opened medium {result.medium_index} of {result.medium_count} into "
                      f"{result.path}: {result.files} files, {result.bytes / 1e6:.1f} MB, every "
                      "digest verified.", highlight=False)
    trust = {True: "trusted by this station", False: "NOT in this station's trust store "
             "(compare the fingerprint in README.TXT with the sender)", None: "no trust store"}
    out_console.print(f"Signer {result.signer_key_id}: {trust[result.signer_trusted]}",
                      highlight=False)
    for name in result.ignored:
        err_console.print(f"[yellow]not copied (not in the signed manifest):[/] {name}",
                          highlight=False)
    raise typer.Exit(EXIT_OK)


def register(app: typer.Typer, media_app: typer.Typer) -> None:
    """Add ``media export`` and ``media open`` to the ``media`` group."""
    media_app.command("export")(export)
    media_app.command("open")(open_)
