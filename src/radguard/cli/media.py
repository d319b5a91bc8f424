"""``radguard media ...``: scan outside media on the offline station."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from radguard.cli.common import (
    EXIT_ERROR,
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
from radguard.errors import RadGuardError
from radguard.findings import Verdict

if TYPE_CHECKING:
    from radguard.media.interface import MediumReport

app = typer.Typer(help="Outside media: scan, sanitise and import (offline station to PACS); "
                  "encrypted PDI export and open.",
                  no_args_is_help=True)

_STYLE = {"clean": "green", "suspicious": "yellow", "dangerous": "bold red"}


def _summary(report: MediumReport, verbose: bool) -> None:
    c = report.counts
    v = report.verdict.label
    out_console.print(f"[bold]Medium[/] {safe(report.path)}: [{_STYLE[v]}]{v.upper()}[/]  "
                      f"({c['files']} files: {c['clean']} clean, {c['suspicious']} suspicious, "
                      f"{c['dangerous']} dangerous; scan {report.scan_id})", highlight=False)
    for name, status in report.engines.items():
        out_console.print(f"  engine {name}: {status}", highlight=False, style="dim")
    from radguard.findings import Severity
    from radguard.media.checks import check

    rows = [(f.verdict.label, f.path, x) for f in report.files for x in f.findings
            if verbose or check(x.check_id).verdict != Verdict.CLEAN]
    rows += [(check(x.check_id).verdict.label, x.evidence.path or "(medium)", x)
             for x in report.findings if verbose or x.severity > Severity.INFO]
    if rows:
        table = Table(show_lines=False)
        for col in ("verdict", "file", "check", "severity", "offset", "message"):
            table.add_column(col, overflow="fold")
        for verdict, path, x in rows[:500]:
            table.add_row(f"[{_STYLE.get(verdict, '')}]{verdict}[/]", safe(path), safe(x.check_id),
                          x.severity.label, "" if x.offset is None else str(x.offset), safe(x.message))
        out_console.print(table)
        if len(rows) > 500:
            out_console.print(f"... {len(rows) - 500} more rows; use --format json or html")


@app.command("scan")
def scan(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Folder, mount point, ISO 9660 image or single file.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="text | json | html")] = "text",
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="Write the report here (atomically).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: one per "
                                                "core).")] = None,
    rules: Annotated[list[Path] | None, typer.Option("--rules", help="Extra YARA rules folder "
                                                     "(repeatable).")] = None,
    no_yara: Annotated[bool, typer.Option("--no-yara", help="Do not run YARA rules.")] = False,
    clamd: Annotated[str | None, typer.Option(help="clamd UNIX socket.")] = None,
    clamscan: Annotated[str | None, typer.Option(help="clamscan binary.")] = None,
    clamav_db: Annotated[str | None, typer.Option("--clamav-db", help="ClamAV database file or "
                                                  "folder for clamscan (-d), e.g. the offline "
                                                  "station's copy.")] = None,
    yara_full: Annotated[bool, typer.Option("--yara-full", help="Run YARA over pixel data too "
                                            "(slower; by default YARA skips the pixel data of DICOM "
                                            "files that walked cleanly).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show findings of clean files "
                                          "too.")] = False,
    no_record: Annotated[bool, typer.Option("--no-record", help="Do not record the scan in the "
                                            "store.")] = False,
) -> None:
    """Judge every file of a medium: clean, suspicious or dangerous, and why.

    Never writes to PATH and never follows a link out of it. Exit status: 0 clean, 1 suspicious or
    dangerous, 2 could not scan.
    """
    from radguard.dicomio import ReadLimits
    from radguard.formats import get_format
    from radguard.media.engines import EngineConfig
    from radguard.media.jobs import run_scan
    from radguard.media.scan import ScanOptions

    settings = get_settings(ctx)
    if fmt not in ("text", "json", "html"):
        fail(f"unknown format {fmt!r}: use text, json or html")
    refuse_inside_medium(output, path, "report")
    rules_dirs = [str(r) for r in (rules or [])]
    if settings.rules_dir:
        rules_dirs.append(settings.rules_dir)
    options = ScanOptions(
        limits=ReadLimits.from_settings(settings),
        workers=workers if workers else settings.worker_count,
        engines=EngineConfig(yara=not no_yara, rules_dirs=tuple(rules_dirs),
                             clamd_socket=clamd or settings.clamd_socket,
                             clamscan=clamscan or settings.clamscan, clamav_db=clamav_db or "",
                             yara_full=yara_full),
    )
    try:
        with progress_bar(f"scanning {path.name or path}") as update:
            report = run_scan(settings, str(path), options, update, record=not no_record)
    except RadGuardError as exc:
        fail(exc)
    except OSError as exc:
        err_console.print(f"[bold red]error:[/] {safe(path)}: {safe(exc)}")
        raise typer.Exit(EXIT_ERROR) from exc
    if fmt == "text" and output is None and out_console.is_terminal:
        _summary(report, verbose)
    else:
        write_output(report.iter_json() if fmt == "json" else get_format(fmt).render(report),
                     output)
        if output is not None:
            err_console.print(f"report written to {output}", highlight=False)
    raise typer.Exit(EXIT_OK if report.verdict == Verdict.CLEAN else EXIT_FINDINGS)


@app.command("checks")
def list_checks(
    fmt: Annotated[str, typer.Option("--format", "-f", help="text | json")] = "text",
) -> None:
    """List the media checks (id, severity, verdict, description, controls)."""
    import json

    from radguard.media.checks import REGISTRY

    rows = [cls.describe() for cls in sorted(REGISTRY.values(), key=lambda c: c.id)]
    if fmt == "json":
        write_output(json.dumps(rows, indent=2) + "\n", None)
        return
    table = Table("id", "severity", "verdict", "description")
    for r in rows:
        table.add_row(r["id"], r["severity"], r["verdict"], r["description"])
    out_console.print(table)
