"""``radguard media sanitize | import``, ``radguard quarantine ...``, ``radguard keys ...``.

Heavy modules (pydicom through the reader, the formats, Rich tables, the importer) are imported
inside the command functions, so ``radguard --help`` and other commands do not pay for them.

The custody path of outside media (issue 3): rebuild and sign on the offline station, verify and
import on the networked side. Exit status: 0 done, 1 done with findings (files left out, instances
refused or missing), 2 could not run (including a refused package).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from radguard.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    err_console,
    fail,
    get_settings,
    out_console,
    progress_bar,
    refuse_inside_medium,
    safe,
    write_output,
)
from radguard.errors import RadGuardError  # light; already loaded by radguard.cli.common

__all__ = ["register"]

quarantine_app = typer.Typer(help="Originals held from outside media: list, show, release, purge.",
                             no_args_is_help=True)
keys_app = typer.Typer(help="This station's signing key and the trusted keys of other stations.",
                       no_args_is_help=True)


def _render(report: Any, fmt: str, output: Path | None, template: str) -> None:
    from radguard.formats import HtmlFormat, get_format

    if fmt not in ("json", "html"):
        fail(f"unknown format {fmt!r}: use text, json or html")
    renderer = HtmlFormat(template=template) if fmt == "html" else get_format(fmt)
    write_output(renderer.render(report), output)
    if output is not None:
        err_console.print(f"report written to {output}", highlight=False)


def sanitize(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Medium: folder, mount point, ISO image or file.")],
    out: Annotated[Path, typer.Option("--out", help="Package to write (a new folder, or a .tar "
                                      "file with --archive).")],
    keep_private: Annotated[str, typer.Option("--keep-private", help="none | safe | all "
                                              "(safe = PS3.15 Table E.3.10-1).")] = "none",
    allow_suspicious: Annotated[bool, typer.Option("--allow-suspicious", help="Also package "
                                                   "suspicious files (needs --operator and "
                                                   "--reason).")] = False,
    operator: Annotated[str, typer.Option("--operator", help="Operator who authorises the "
                                          "override.")] = "",
    reason: Annotated[str, typer.Option("--reason", help="Why the override is needed.")] = "",
    archive: Annotated[bool, typer.Option("--archive", help="Write one tar file instead of a "
                                          "folder.")] = False,
    workers: Annotated[int | None, typer.Option(help="Scan worker processes.")] = None,
    no_yara: Annotated[bool, typer.Option("--no-yara", help="Do not run YARA rules.")] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text | json | html")] = "text",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Report file.")] = None,
) -> None:
    """Scan a medium and rebuild its importable files into a signed custody package.

    Dangerous files are never packaged; suspicious ones only with --allow-suspicious, --operator
    and --reason. Originals go to the quarantine store. Exit: 0 all files packaged, 1 some left
    out, 2 could not run.
    """
    from rich.table import Table

    from radguard.dicomio import ReadLimits
    from radguard.media.engines import EngineConfig
    from radguard.media.sanitize import SanitizeOptions, sanitize_medium
    from radguard.media.scan import ScanOptions

    settings = get_settings(ctx)
    if keep_private not in ("none", "safe", "all"):
        fail(f"--keep-private must be none, safe or all, not {keep_private!r}")
    refuse_inside_medium(out, path, "package")
    refuse_inside_medium(output, path, "report")
    scan = ScanOptions(limits=ReadLimits.from_settings(settings),
                       workers=workers or settings.worker_count,
                       engines=EngineConfig(yara=not no_yara,
                                            rules_dirs=(settings.rules_dir,) if settings.rules_dir
                                            else (), clamd_socket=settings.clamd_socket,
                                            clamscan=settings.clamscan))
    options = SanitizeOptions(keep_private=keep_private,  # type: ignore[arg-type]
                              allow_suspicious=allow_suspicious, override_operator=operator,
                              override_reason=reason, archive=archive, scan=scan)
    try:
        with progress_bar(f"sanitising {path.name or path}") as update:
            report = sanitize_medium(settings, str(path), out, options, update)
    except RadGuardError as exc:
        fail(exc)
    if fmt == "text" and output is None:
        c = report.counts
        out_console.print(f"[bold]Package[/] {report.package} ({report.package_id}): "
                          f"{c['packaged']} files rebuilt and signed by {report.key_id}; "
                          f"{c['excluded']} left out; {c['quarantined']} originals in quarantine "
                          f"(scan {report.scan.scan_id}, medium {report.scan.verdict.label})",
                          highlight=False)
        left = [f for f in report.files if f.disposition != "packaged"]
        if left:
            table = Table("file", "verdict", "reason", "quarantined")
            for f in left[:500]:
                table.add_row(safe(f.path), f.verdict, safe(f.reason), "yes" if f.quarantined else "no")
            out_console.print(table)
    else:
        _render(report, fmt, output, "import_sanitize.html.j2")
    raise typer.Exit(EXIT_OK if report.counts["excluded"] == 0 else EXIT_FINDINGS)


def import_package(
    ctx: typer.Context,
    package: Annotated[Path, typer.Argument(help="Custody package (folder or .tar).")],
    to: Annotated[str, typer.Option("--to", help="Destination profile name, dimse://AET@host:port"
                                    "[?tls=1&ca=..&cert=..&key=..&calling=AET] or "
                                    "https://host:port/dicom-web.")],
    patient_id: Annotated[str | None, typer.Option("--patient-id", help="Local Patient ID for "
                                                   "every instance.")] = None,
    issuer: Annotated[str | None, typer.Option("--issuer", help="Local Issuer of Patient ID.")
                      ] = None,
    rules: Annotated[Path | None, typer.Option("--rules", help="Reconciliation CSV: outside_"
                                               "patient_id,outside_issuer,local_patient_id,"
                                               "local_issuer.")] = None,
    keep_ids: Annotated[bool, typer.Option("--keep-ids", help="Import the outside identifiers "
                                           "unchanged (explicit choice).")] = False,
    new_uids: Annotated[bool, typer.Option("--new-uids", help="New Study/Series/SOP Instance "
                                           "UIDs (the same on every rerun).")] = False,
    associations: Annotated[int, typer.Option("--associations", min=1, max=8,
                                              help="DIMSE associations in parallel (the PACS "
                                              "may grant fewer).")] = 2,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text | json | html")] = "text",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Report file.")] = None,
) -> None:
    """Verify a custody package, reconcile patient identity, send it to PACS and confirm.

    Nothing is sent unless the signature and every hash verify. A rerun sends only what the
    destination has not confirmed. Exit: 0 every instance confirmed, 1 some refused or missing,
    2 refused package, unreachable destination or other error.
    """
    from rich.table import Table

    from radguard.importer import ImportOptions
    from radguard.importer import import_package as run_import
    from radguard.media.custody import PackageRefusedDetail

    settings = get_settings(ctx)
    options = ImportOptions(patient_id=patient_id, issuer=issuer,
                            rules=str(rules) if rules else None, keep_ids=keep_ids,
                            new_uids=new_uids, associations=associations)
    try:
        with progress_bar(f"importing {package.name}") as update:
            report = run_import(settings, package, to, options, update)
    except PackageRefusedDetail as exc:
        for p in exc.problems[:50]:
            err_console.print(f"  refused: {p}", highlight=False, markup=False)
        fail(exc)
    except RadGuardError as exc:
        fail(exc)
    if fmt == "text" and output is None:
        c = report.counts
        out_console.print(f"[bold]Import[/] {report.package_id} -> {report.destination}: "
                          f"{c['confirmed']}/{c['instances']} confirmed, {c['refused']} refused, "
                          f"{c['missing']} missing, {c['sent']} unconfirmed "
                          f"({report.sent_this_run} sent this run"
                          f"{', resumed' if report.resumed else ''})", highlight=False)
        for line in report.reconciliation:
            out_console.print(f"  reconciled: {line}", highlight=False, markup=False)
        if report.confirmation_error:
            out_console.print(f"  not confirmed: {report.confirmation_error}", highlight=False,
                              markup=False)
        bad = [i for i in report.instances if i.state != "confirmed"]
        if bad:
            table = Table("member", "SOP instance", "state", "status", "meaning")
            for i in bad[:500]:
                table.add_row(i.name, i.sop_instance_uid, i.state,
                              "" if i.status is None else f"0x{i.status:04X}", i.meaning)
            out_console.print(table)
    else:
        _render(report, fmt, output, "import_report.html.j2")
    raise typer.Exit(EXIT_OK if report.complete else EXIT_FINDINGS)


@quarantine_app.command("list")
def q_list(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="held | released")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text | json")] = "text",
) -> None:
    """List the originals held in quarantine."""
    from rich.table import Table

    from radguard.quarantine import QuarantineStore

    items = QuarantineStore(get_settings(ctx).home_path).items(state)
    if fmt == "json":
        write_output(json.dumps([i.to_dict() for i in items], indent=2) + "\n", None)
        return
    table = Table("sha256", "verdict", "state", "size", "first seen", "path (first sighting)")
    for i in items:
        table.add_row(i.sha256[:16], i.verdict, i.state, str(i.size), i.first_seen,
                      i.sightings[0].path if i.sightings else "")
    out_console.print(table)


@quarantine_app.command("show")
def q_show(ctx: typer.Context, ref: Annotated[str, typer.Argument(help="SHA-256 or prefix.")]
           ) -> None:
    """Show one original: every sighting with its reasons, and every release."""
    from radguard.quarantine import QuarantineStore

    try:
        item = QuarantineStore(get_settings(ctx).home_path).get(ref)
    except RadGuardError as exc:
        fail(exc)
    write_output(json.dumps(item.to_dict(), indent=2) + "\n", None)


@quarantine_app.command("release")
def q_release(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="SHA-256 or prefix.")],
    to: Annotated[Path, typer.Option("--to", help="Folder to copy the original into.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is released (audited).")],
    operator: Annotated[str, typer.Option("--operator", help="Who releases it.")] = "",
) -> None:
    """Copy an original out of quarantine (it stays held there); audited."""
    from radguard.quarantine import release

    settings = get_settings(ctx)
    try:
        done = release(settings, ref, to, operator=operator or settings.operator_name,
                       reason=reason)
    except RadGuardError as exc:
        fail(exc)
    out_console.print(f"released {done.item.sha256[:16]} to {done.path}", highlight=False)


@quarantine_app.command("purge")
def q_purge(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="SHA-256 or prefix.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is deleted (audited).")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm the deletion.")] = False,
    operator: Annotated[str, typer.Option("--operator", help="Who purges it.")] = "",
) -> None:
    """Delete an original from quarantine for good; needs --yes and a reason; audited."""
    from radguard.quarantine import purge

    if not yes:
        fail("purging deletes the original for good: add --yes to confirm")
    settings = get_settings(ctx)
    try:
        item = purge(settings, ref, operator=operator or settings.operator_name, reason=reason)
    except RadGuardError as exc:
        fail(exc)
    out_console.print(f"purged {item.sha256[:16]}", highlight=False)


@keys_app.command("show")
def k_show(ctx: typer.Context,
           fmt: Annotated[str, typer.Option("--format", "-f", help="text | json")] = "text"
           ) -> None:
    """Show this station's public key id (created on first use) and the trusted keys."""
    from rich.table import Table

    from radguard.keys import TrustStore, load_station_key

    settings = get_settings(ctx)
    try:
        own = load_station_key(settings.home_path, settings.station_name)
        keys = TrustStore(settings.home_path, settings.station_name).keys()
    except RadGuardError as exc:
        fail(exc)
    if fmt == "json":
        write_output(json.dumps({"station_key": own.key_id,
                                 "trusted": [k.to_dict() for k in keys]}, indent=2) + "\n", None)
        return
    out_console.print(f"station key {own.key_id} ({own.station})", highlight=False)
    out_console.print(own.public_text.strip(), highlight=False, soft_wrap=True)
    table = Table("key id", "station", "source", "added")
    for k in keys:
        table.add_row(k.key_id, k.station, k.source, k.added)
    out_console.print(table)


@keys_app.command("export")
def k_export(ctx: typer.Context,
             output: Annotated[Path | None, typer.Option("--output", "-o",
                                                         help="Write the public key here.")] = None
             ) -> None:
    """Print (or write) this station's public key for 'radguard keys trust' elsewhere."""
    from radguard.keys import load_station_key

    settings = get_settings(ctx)
    try:
        own = load_station_key(settings.home_path, settings.station_name)
    except RadGuardError as exc:
        fail(exc)
    write_output(own.public_text, output)


@keys_app.command("trust")
def k_trust(ctx: typer.Context,
            file: Annotated[Path, typer.Argument(help="Public key file of another station.")]
            ) -> None:
    """Trust another station's public key for imports (audited as a security configuration)."""
    from radguard.audit import AuditEmitter, builders
    from radguard.audit.message import Outcome
    from radguard.keys import TrustStore

    settings = get_settings(ctx)
    try:
        key = TrustStore(settings.home_path, settings.station_name).trust(file)
        AuditEmitter.from_settings(settings).emit(builders.security_alert(
            "110129", station=settings.station_name, subject=key.key_id,
            user=settings.operator_name, site=settings.site or None, outcome=Outcome.SUCCESS,
            details=[f"station: {key.station}"],
            description="custody signing key of another station trusted"))
    except RadGuardError as exc:
        fail(exc)
    out_console.print(f"trusted {key.key_id} ({key.station})", highlight=False)


def register(app: typer.Typer, media_app: typer.Typer) -> None:
    """Add the custody commands to the root app and the ``media`` group."""
    media_app.command("sanitize")(sanitize)
    media_app.command("import")(import_package)
    app.add_typer(quarantine_app, name="quarantine")
    app.add_typer(keys_app, name="keys")

