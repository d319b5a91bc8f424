"""``radguard deid INPUT --out OUTPUT``, ``radguard deid verify OUTPUT``, ``radguard deid options``.

De-identification per DICOM PS3.15 Annex E (see docs/deid.md). Exit status: 0 every file
de-identified (verify: nothing found), 1 some file incomplete, refused or failed (verify: residual
identifiers found), 2 could not run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

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

__all__ = ["app", "register"]

COMPACT_JSON_FILES = 200
"""Above this many files the JSON report is written without indentation."""


class _RunByDefault(TyperGroup):
    """``radguard deid INPUT ...`` runs ``deid run INPUT ...``; sub-command names still dispatch."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_RunByDefault, no_args_is_help=True,
                  help="De-identify DICOM files (PS3.15 Annex E, every option) and verify the result.")

_FLAG = "E.3 option"


@app.command("run")
def run(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="Input file or folder (never modified).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file or folder (mirrors INPUT).")],
    option: Annotated[list[str] | None, typer.Option("--option", "-O", help="Option id or preset "
                                                     "(repeatable); see 'radguard deid options'.")] = None,
    preset: Annotated[str | None, typer.Option("--preset", help="Preset: basic, tcia, research, "
                                               "teaching, ai-vendor.")] = None,
    clean_pixel_data: Annotated[bool, typer.Option(help=_FLAG + " E.3.1")] = False,
    clean_recognizable_visual_features: Annotated[bool, typer.Option(help=_FLAG + " E.3.2")] = False,
    clean_graphics: Annotated[bool, typer.Option(help=_FLAG + " E.3.3")] = False,
    clean_structured_content: Annotated[bool, typer.Option(help=_FLAG + " E.3.4")] = False,
    clean_descriptors: Annotated[bool, typer.Option(help=_FLAG + " E.3.5")] = False,
    retain_full_dates: Annotated[bool, typer.Option(help=_FLAG + " E.3.6 (Full Dates)")] = False,
    retain_modified_dates: Annotated[bool, typer.Option(help=_FLAG + " E.3.6 (Modified Dates)")
                                     ] = False,
    retain_patient_characteristics: Annotated[bool, typer.Option(help=_FLAG + " E.3.7")] = False,
    retain_device_identity: Annotated[bool, typer.Option(help=_FLAG + " E.3.8")] = False,
    retain_uids: Annotated[bool, typer.Option(help=_FLAG + " E.3.9")] = False,
    retain_safe_private: Annotated[bool, typer.Option(help=_FLAG + " E.3.10")] = False,
    retain_institution_identity: Annotated[bool, typer.Option(help=_FLAG + " E.3.11")] = False,
    key_file: Annotated[Path | None, typer.Option(help="Project key file (default: "
                                                  "<home>/keys/deid-project.key, created once).")
                        ] = None,
    mapping: Annotated[Path | None, typer.Option(help="CSV PatientID,PseudonymID[,PseudonymName].")
                       ] = None,
    max_shift_days: Annotated[int, typer.Option(help="Modified Dates: offsets in [-N, -1] days.")
                              ] = 365,
    recipient_cert: Annotated[Path | None, typer.Option(help="Keep replaced values in an Encrypted "
                                                        "Attributes Sequence to this certificate.")
                              ] = None,
    pixel_rules: Annotated[Path | None, typer.Option(help="Extra pixel-cleaning rule file (JSON).")
                           ] = None,
    no_ocr: Annotated[bool, typer.Option("--no-ocr", help="No Tesseract text detection.")] = False,
    rename: Annotated[bool, typer.Option(help="Name outputs <SOP Instance UID>.dcm.")] = False,
    resume: Annotated[bool, typer.Option(help="Skip files whose output already exists.")] = False,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: one per core).")
                       ] = None,
    media_id: Annotated[str | None, typer.Option(help="OUTPUT is removable media with this label: "
                                                 "also audit a Data Export.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text | json | html")] = "text",
    report: Annotated[Path | None, typer.Option("--report", help="Write the report here.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List every change.")] = False,
) -> None:
    """De-identify INPUT into OUTPUT: the Basic Profile plus the options chosen."""
    from radguard.deid import DeidOptions, audit_run, deidentify_tree, load_mapping, project_key
    from radguard.dicomio import ReadLimits
    from radguard.errors import RadGuardError

    settings = get_settings(ctx)
    if fmt not in ("text", "json", "html"):
        fail(f"unknown format {fmt!r}: use text, json or html")
    flags = {"clean-pixel-data": clean_pixel_data, "clean-graphics": clean_graphics,
             "clean-recognizable-visual-features": clean_recognizable_visual_features,
             "clean-structured-content": clean_structured_content,
             "clean-descriptors": clean_descriptors, "retain-long-full-dates": retain_full_dates,
             "retain-long-modified-dates": retain_modified_dates,
             "retain-patient-characteristics": retain_patient_characteristics,
             "retain-device-identity": retain_device_identity, "retain-uids": retain_uids,
             "retain-safe-private": retain_safe_private,
             "retain-institution-identity": retain_institution_identity}
    names = [*([preset] if preset else []), *(option or []), *(k for k, v in flags.items() if v)]
    try:
        options = DeidOptions.from_names(
            names, key=project_key(settings, key_file),
            mapping=load_mapping(mapping) if mapping else {}, max_shift_days=max_shift_days,
            recipient_cert=recipient_cert.read_bytes() if recipient_cert else None,
            pixel_rules_file=str(pixel_rules.resolve()) if pixel_rules else None,
            ocr=not no_ocr, rename=rename)
        with progress_bar(f"de-identifying {source.name or source}") as update:
            result = deidentify_tree(source, out, options, workers=workers or settings.worker_count,
                                     limits=ReadLimits.from_settings(settings), progress=update,
                                     resume=resume, json=fmt != "html" and (
                                         fmt == "json" or report is not None))
        from dataclasses import replace

        result = replace(result, audit=audit_run(result, settings, media_id=media_id))
    except RadGuardError as exc:
        fail(exc)
    except OSError as exc:
        fail(f"{exc.filename or source}: {exc.strerror}")
    _render_run(result, fmt, report, verbose)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FINDINGS)


def _relative(path: str, root: str) -> str:
    try:
        return str(Path(path).relative_to(root)) or Path(path).name
    except ValueError:
        return path


def _render_run(result: Any, fmt: str, report: Path | None, verbose: bool) -> None:
    from rich.table import Table

    from radguard.formats import get_format

    if fmt != "text" or report is not None:
        # Large runs: compact JSON (the C encoder; indenting takes the pure-Python one, seconds
        # for thousands of files), each file's part made by the workers (DeidRunReport.to_json).
        # Same document, without the whitespace.
        if fmt != "html" and len(result.files) > COMPACT_JSON_FILES:
            write_output(result.to_json() + "\n", report)
        else:
            options: dict[str, Any] = {"template": "deid.html.j2"} if fmt == "html" else {}
            write_output(get_format(fmt if fmt != "text" else "json", **options).render(result),
                         report)
        if report is not None:
            err_console.print(f"report written to {report}", highlight=False)
        if fmt != "text":
            return
    c = result.counts()
    out_console.print(f"[bold]De-identified[/] {result.input} -> {result.output}: {c['files']} files, "
                      f"{c['deidentified']} done, {c['incomplete']} incomplete, {c['refused']} "
                      f"refused, {c['failed']} failed in {result.seconds:.1f} s "
                      f"(options: {', '.join(result.options) or 'basic profile only'})",
                      highlight=False)
    table = Table("status", "file", "detail")
    for f in result.files:
        if f.status.value != "deidentified" or verbose:
            detail = f.message or "; ".join(f.changes.uncleaned if f.changes else ())
            table.add_row(f.status.value, _relative(f.source, result.input), detail)
            if verbose and f.changes:
                for ch in f.changes.changes:
                    table.add_row("", f"  {ch.path} {ch.name}", f"{ch.action}: {ch.reason}")
    if table.row_count:
        out_console.print(table)
    out_console.print(f"audit: {result.audit}", style="dim", highlight=False)


@app.command("verify")
def verify(
    output: Annotated[Path, typer.Argument(help="De-identified file or folder.")],
    original: Annotated[Path | None, typer.Option("--original", help="The input it came from "
                                                  "(file or folder, paired by relative path).")
                        ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text | json")] = "text",
    report: Annotated[Path | None, typer.Option("--report", help="Write the report here.")] = None,
) -> None:
    """Look for residual identifiers; exit 0 when nothing is found, 1 when something is."""
    from radguard.deid import verify_tree

    if not output.exists():
        fail(f"{output}: not found")
    with progress_bar("verifying") as update:
        results = verify_tree(output, original, progress=update)
    found = {path: fs for path, fs in results.items() if fs}
    if fmt == "json" or report is not None:
        data = {"output": str(output), "original": str(original) if original else None,
                "files": len(results), "files_with_findings": len(found),
                "results": {p: [f.to_dict() for f in fs] for p, fs in results.items()}}
        write_output(json.dumps(data, indent=2) + "\n", report)
    if fmt == "text":
        out_console.print(f"verified {len(results)} files: {len(found)} with residual identifiers",
                          highlight=False)
        for path, fs in found.items():
            for f in fs:
                where = f" @ byte {f.offset}" if f.offset is not None else ""
                out_console.print(f"  [{f.severity.label}] {path}: {f.check_id}: {f.message}{where}",
                                  highlight=False, markup=False)
    raise typer.Exit(EXIT_FINDINGS if found else EXIT_OK)


@app.command("options")
def list_options(fmt: Annotated[str, typer.Option("--format", "-f", help="text | json")] = "text",
                 ) -> None:
    """List the E.3 options (with their CID 7050 codes), the presets and the table versions."""
    from rich.table import Table

    from radguard.deid import Option, presets, table_versions
    from radguard.deid.tables import method_codes

    codes = method_codes()
    data: dict[str, Any] = {"options": {o.value: {"code": codes[o.value][0], "meaning": codes[o.value][1]}
                        for o in Option},
            "presets": presets(), "tables": table_versions()}
    if fmt == "json":
        write_output(json.dumps(data, indent=2) + "\n", None)
        return
    table = Table("option", "CID 7050", "meaning")
    for name, spec in data["options"].items():
        table.add_row(name, spec["code"], spec["meaning"])
    out_console.print(table)
    presets_table = Table("preset", "options", "description")
    for name, spec in data["presets"].items():
        presets_table.add_row(name, ", ".join(spec["options"]) or "-", spec["description"])
    out_console.print(presets_table)


def register(root: typer.Typer, media_app: typer.Typer) -> None:
    """Add the ``deid`` group to the root command (see radguard.cli.OPTIONAL_MODULES)."""
    root.add_typer(app, name="deid")

