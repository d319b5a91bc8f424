"""``radguard assess TARGET...``: authorised security assessment of DICOM and DICOMweb services.

Only Typer and the CLI helpers are imported when the module loads (every ``radguard`` command
imports it to register ``assess``); the assessment library, Rich tables, the formats and the
store are imported inside the command, when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radguard.cli.common import (
    EXIT_ERROR,
    EXIT_FINDINGS,
    EXIT_OK,
    err_console,
    fail,
    get_settings,
    out_console,
    progress_bar,
    write_output,
)

__all__ = ["assess", "register"]

_STYLE = {"info": "dim", "low": "cyan", "medium": "yellow", "high": "bold red",
          "critical": "bold white on red"}
_FORMATS = ("text", "json", "sarif", "html")


def _summary(report: object) -> None:
    from rich.table import Table

    from radguard.assess.report import AssessReport

    assert isinstance(report, AssessReport)
    s = report.summary()
    out_console.print(f"[bold]Assessment[/]: {s['reachable']}/{s['nodes']} nodes reachable, "
                      f"{s['findings']} findings, worst [{_STYLE[s['worst']]}]{s['worst']}[/]",
                      highlight=False)
    table = Table("node", "reachable", "fingerprint", "findings", "changes")
    for n in report.nodes:
        fp = n.fingerprint
        label = ", ".join(x for x in (fp.get("implementation_version") or fp.get("server") or "",
                                      ",".join(fp.get("roles", []))) if x)
        counts = ", ".join(f"{f.check_id} [{_STYLE[f.severity.label]}]{f.severity.label}[/]"
                           for f in n.findings if f.severity.label != "info") or "-"
        ch = n.changes
        change = (f"+{len(ch.new)} -{len(ch.fixed)} ={len(ch.unchanged)}"
                  if ch and ch.previous_scan_id else "first run")
        table.add_row(n.target, "yes" if n.reachable else f"no ({n.reason})", label, counts,
                      change)
    out_console.print(table)
    for n in report.nodes:
        for f in n.findings:
            if f.severity.label == "info":
                continue
            out_console.print(f"[{_STYLE[f.severity.label]}]{f.severity.label.upper():8}[/] "
                              f"{n.target} {f.check_id}: {f.message}", highlight=False)
            out_console.print(f"         remedy: {f.remedy}", style="dim", highlight=False)


def assess(
    ctx: typer.Context,
    targets: Annotated[list[str] | None, typer.Argument(
        help="host:port[/AET], dicom+tls://host:port/AET, http(s) URL, @FILE, or store: (stored "
        "nodes).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be sent; contact "
                                          "nothing.")] = False,
    intrusive: Annotated[bool, typer.Option("--intrusive", help="Also run intrusive checks "
                                            "(C-STORE of a test object, C-GET/C-MOVE).")] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only this check id "
                                                   "(repeatable; see --list-checks).")] = None,
    known_peer: Annotated[list[str] | None, typer.Option("--known-peer", help="AET@host of a peer "
                                                         "the node trusts (spoofing test).")] = None,
    credentials: Annotated[Path | None, typer.Option("--credentials", help="TOML file: [http] "
                                                     "user/password/try, [tls] cert/key.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text | json | sarif | html")] = "text",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report here "
                                                "(atomically).")] = None,
    rate: Annotated[float, typer.Option(help="Connections per second per device.")] = 10.0,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer of a node "
                                           "(association, TLS handshake, DIMSE or HTTP "
                                           "response).")] = 30.0,
    connect_timeout: Annotated[float, typer.Option(
        "--connect-timeout", help="Seconds for each TCP connection.")] = 5.0,
    budget: Annotated[float, typer.Option(help="Seconds per device in all.")] = 120.0,
    per_host: Annotated[bool, typer.Option("--per-host", help="Treat each host (not each port) "
                                           "as one device.")] = False,
    move_port: Annotated[int, typer.Option("--move-port", help="Port of RadGuard's own C-MOVE "
                                           "destination (0: any free port).")] = 0,
    workers: Annotated[int, typer.Option(help="Devices assessed in parallel (each device still "
                                         "gets one connection at a time).")] = 256,
    no_record: Annotated[bool, typer.Option("--no-record", help="Do not save results in the "
                                            "store.")] = False,
    list_checks: Annotated[bool, typer.Option("--list-checks", help="List the checks and "
                                              "exit.")] = False,
    fingerprint_depth: Annotated[str, typer.Option(
        "--fingerprint-depth", help="compact: one association per node (services and common "
        "storage classes); minimal: one association proposing Verification only (no roles); "
        "full: also the inventory tiers (every SOP class, transfer syntaxes).")] = "compact",
) -> None:
    """Assess DICOM (DIMSE, TLS) and DICOMweb/Orthanc services, in explicit scope only.

    Exit status: 0 no finding above info, 1 findings, 2 could not run (bad arguments, or no
    target reachable).
    """
    import json

    from radguard.assess import (
        all_checks,
        load_credentials,
        load_salt,
        parse_known_peer,
        parse_targets,
        run_job,
        select,
    )
    from radguard.assess import dry_run as plan
    from radguard.assess.politeness import Politeness
    from radguard.assess.probe import DEPTHS, ProbeOptions
    from radguard.errors import RadGuardError

    if list_checks:
        rows = [c.describe() for c in sorted(all_checks().values(), key=lambda c: c.id)]
        if fmt == "json":
            write_output(json.dumps(rows, indent=2) + "\n", output)
        else:
            from rich.table import Table

            table = Table("id", "severity", "target", "intrusive", "description")
            for r in rows:
                table.add_row(r["id"], r["severity"], r["target"],
                              "yes" if r["intrusive"] else "", r["description"])
            out_console.print(table)
        raise typer.Exit(EXIT_OK)
    if fmt not in _FORMATS:
        fail(f"unknown format {fmt!r}: use {', '.join(_FORMATS)}")
    if not targets:
        fail("no target given: name host:port or host:port/AET, a URL, @FILE or store: (see --help)")
    depth = next((d for d in DEPTHS if d == fingerprint_depth), None)
    if depth is None:
        fail(f"unknown fingerprint depth {fingerprint_depth!r}: use {' or '.join(DEPTHS)}")
    settings = get_settings(ctx)
    try:
        store_names: list[str] = []
        if any(t.startswith("store:") for t in targets):
            store_names = _store_targets(settings, [t for t in targets if t.startswith("store:")])
        scope = parse_targets(targets, store_names=store_names)
        checks = select(only or [], intrusive=intrusive)
        peers = tuple(parse_known_peer(p) for p in known_peer or [])
        creds = load_credentials(credentials)
    except ValueError as exc:
        fail(str(exc))
    except RadGuardError as exc:
        fail(exc)
    if only and not checks:
        fail("the checks named with --only are intrusive: add --intrusive")
    if dry_run:
        steps = plan(scope, checks, fingerprint_depth=depth)
        if fmt == "json":
            write_output(json.dumps({"dry_run": True, "targets": steps}, indent=2) + "\n", output)
        else:
            lines = []
            for step in steps:
                lines.append(f"{step['target']} ({step['kind']}):")
                lines.extend(f"  {s}" for s in step["sends"])
            write_output("\n".join(lines) + "\n", output)
        raise typer.Exit(EXIT_OK)
    options = ProbeOptions(intrusive=intrusive, credentials=creds, known_peers=peers,
                           salt=load_salt(settings.home_path), move_port=move_port,
                           fingerprint_depth=depth)
    if timeout <= 0 or connect_timeout <= 0:
        fail("--timeout and --connect-timeout must be positive (seconds)")
    policy = Politeness(rate=rate, timeout=timeout, connect_timeout=connect_timeout,
                        budget=budget, per_host=per_host)
    try:
        with progress_bar("assessing") as update:
            report = run_job(settings, scope, checks, options, policy, workers=workers,
                             progress=update, keep=not no_record)
    except RadGuardError as exc:
        fail(exc)
    if fmt == "text" and output is None:
        _summary(report)
    else:
        from radguard.formats import HtmlFormat, SarifFormat, get_format

        rules = {c["id"]: c for c in report.checks}
        renderer = (HtmlFormat(template="assess.html.j2") if fmt == "html"
                    else SarifFormat(rules=rules) if fmt == "sarif" else get_format(fmt))
        write_output(renderer.render(report), output)
        if output is not None:
            err_console.print(f"report written to {output}", highlight=False)
    _silent_hint(report, timeout)
    if not any(n.reachable for n in report.nodes):
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(EXIT_FINDINGS if report.worst.label != "info" else EXIT_OK)


def _silent_hint(report: object, timeout: float) -> None:
    """Name the nodes that connected but gave no answer in time (stderr, every format): they
    were not assessed, which is not a verdict on them."""
    from radguard.assess.report import AssessReport

    assert isinstance(report, AssessReport)
    silent = [n.target for n in report.nodes if n.reason.startswith("silent")]
    if not silent:
        return
    shown = ", ".join(silent[:10]) + (f" and {len(silent) - 10} more" if len(silent) > 10 else "")
    err_console.print(
        f"{len(silent)} node(s) accepted the connection but gave no answer within {timeout:g} s "
        f"and were not assessed: {shown}. A busy single-association acceptor or a slow reverse "
        f"DNS lookup on the node can delay its answer; re-run those targets with a longer "
        f"--timeout.", highlight=False, soft_wrap=True)


def _store_targets(settings: object, items: list[str]) -> list[str]:
    from radguard.assess.jobs import ASSET_KIND
    from radguard.config import Settings
    from radguard.store import Store
    from radguard.store.repo import list_assets

    assert isinstance(settings, Settings)
    store = Store.open(settings.db_url)
    try:
        names = [a.name for a in list_assets(store, ASSET_KIND)]
    finally:
        store.close()
    wanted = {i[len("store:"):] for i in items} - {""}
    return [n for n in names if not wanted or n in wanted]


def register(app: typer.Typer, media_app: typer.Typer) -> None:
    """Add ``radguard assess`` to the root command."""
    app.command("assess")(assess)
