"""``radguard audit ...``: the audit record repository (PS3.15 A.5, IHE ATNA).

serve (receive, store, detect), search, verify (hash chain), alerts, stats, rules list/test.
Exit codes: 0 ok; 1 findings (verify: chain broken; rules test: the rule fired); 2 error.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from radguard.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    err_console,
    fail,
    get_settings,
    out_console,
    write_output,
)
from radguard.errors import RadGuardError

if TYPE_CHECKING:
    from radguard.audit.repository import RepositoryService
    from radguard.config import Settings
    from radguard.store import Store

# The repository, the store (SQLAlchemy), lxml, YAML and Rich tables are imported inside the
# commands that need them: ``radguard --help`` and every other command start without them.

__all__ = ["app", "register"]

app = typer.Typer(help="Audit record repository: receive, store, search and watch DICOM audit "
                  "messages (PS3.15 A.5, IHE ATNA).", no_args_is_help=True)
rules_app = typer.Typer(help="Detection rules: list them, replay a file through one.",
                        no_args_is_help=True)
app.add_typer(rules_app, name="rules")

_FORMATS = ("table", "json", "jsonl")


def register(root: typer.Typer, media_app: typer.Typer) -> None:
    """Add ``radguard audit ...`` to the root CLI."""
    root.add_typer(app, name="audit")


def _dump(rows: list[dict[str, Any]], fmt: str, output: Path | None) -> None:
    if fmt == "jsonl":
        write_output("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), output)
    else:
        write_output(json.dumps(rows, indent=2, sort_keys=True) + "\n", output)


def _when(text: str | None) -> datetime | None:
    """ISO 8601 (zone-less = UTC) or a relative age such as ``90m``, ``24h``, ``7d``."""
    if text is None:
        return None
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"bad time {text!r}: use ISO 8601 (2025-11-30T08:00) or an age like 24h or 7d")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _open(settings: Settings) -> Store:
    from radguard.store import Store

    try:
        return Store.open(settings.db_url)
    except RadGuardError as exc:
        fail(exc)


def _audit_log_used(settings: Settings, store: Store, what: str) -> None:
    """Reading the audit trail is itself audited (PS3.15 A.5.3.2 Audit Log Used)."""
    from radguard.audit import AuditEmitter, builders

    try:
        AuditEmitter.from_settings(settings).emit(builders.audit_log_used(
            user=settings.operator_name, station=settings.station_name,
            log_uri=f"{store.url}#audit_records", site=settings.site or None,
            description=what))
    except RadGuardError as exc:
        err_console.print(f"[yellow]warning:[/] could not audit this access: {exc.message}")


# -- serve ---------------------------------------------------------------------------------------


@app.command("serve")
def serve(
    ctx: typer.Context,
    udp: Annotated[str | None, typer.Option(help="UDP (RFC 5426) listen address HOST:PORT.")] = None,
    tcp: Annotated[str | None, typer.Option(help="TCP (RFC 6587) listen address HOST:PORT.")] = None,
    tls: Annotated[str | None, typer.Option(help="TLS (RFC 5425) listen address HOST:PORT.")] = None,
    cert: Annotated[Path | None, typer.Option(help="Server certificate (PEM) for --tls.")] = None,
    key: Annotated[Path | None, typer.Option(help="Server private key (PEM) for --tls.")] = None,
    client_ca: Annotated[Path | None, typer.Option(
        "--client-ca", help="Require client certificates issued by this CA (PEM).")] = None,
    rules: Annotated[Path | None, typer.Option(help="Rule file replacing the built-in pack.")] = None,
    no_detect: Annotated[bool, typer.Option("--no-detect", help="Store only; no rules.")] = False,
    parse_workers: Annotated[int, typer.Option(help="Processes parsing and validating XML, in "
                                               "chunks of whole reads, ~500 messages "
                                               "(0: a thread).")] = 2,
    batch_size: Annotated[int, typer.Option(help="Messages per transaction (at most).")] = 20000,
    queue_size: Annotated[int, typer.Option(help="Messages queued before TCP/TLS readers "
                                            "wait (back-pressure).")] = 50_000,
    max_message: Annotated[int, typer.Option(help="Largest message kept whole (octets).")
                           ] = 4 * 1024 * 1024,
    max_connections: Annotated[int, typer.Option(help="Open TCP/TLS connections per listener; "
                                                 "more are closed at once (bounds memory).")
                               ] = 512,
) -> None:
    """Receive audit messages until interrupted (Ctrl-C / SIGTERM), then drain and exit.

    Without --udp/--tcp/--tls, the [audit] section of the config is used, else UDP and TCP on
    127.0.0.1:5514 (ports below 1024 need root; 6514 is the TLS default).
    """
    import asyncio

    from radguard.audit.repository import DEFAULT_PORTS, Detector, RepositoryService, ServeConfig
    from radguard.audit.repository import setup as repo_setup
    from radguard.audit.repository.receivers import parse_hostport
    from radguard.store import Store

    settings = get_settings(ctx)
    section = repo_setup.audit_section(settings)
    given = {"udp": udp, "tcp": tcp, "tls": tls}
    if not any(given.values()):
        given = {k: section.get(k) for k in given}
    if not any(given.values()):
        given = {"udp": f"127.0.0.1:{DEFAULT_PORTS['udp']}",
                 "tcp": f"127.0.0.1:{DEFAULT_PORTS['tcp']}", "tls": None}
    cert = cert or (Path(section["cert"]) if section.get("cert") else None)
    key = key or (Path(section["key"]) if section.get("key") else None)
    client_ca = client_ca or (Path(section["client_ca"]) if section.get("client_ca") else None)
    if given["tls"] and not (cert and key):
        fail("--tls needs --cert and --key (PEM files)")
    try:
        addresses = {k: parse_hostport(v) if v else None for k, v in given.items()}
        store = Store.open(settings.db_url)
        config = ServeConfig(udp=addresses["udp"], tcp=addresses["tcp"], tls=addresses["tls"],
                             cert=cert, key=key, client_ca=client_ca,
                             station=settings.station_name, parse_workers=parse_workers,
                             batch_size=batch_size, queue_size=queue_size,
                             max_message=max_message, max_connections=max_connections)
        detector = None if no_detect else Detector(
            repo_setup.rule_pack(settings, rules), repo_setup.context(settings, store),
            disabled=section.get("disabled_rules", ()))
        sink = repo_setup.alert_sink(settings, store)
        service = RepositoryService(store, config, detector, sink)
        asyncio.run(_serve(service, settings))
    except RadGuardError as exc:
        fail(exc)
    err_console.print(f"stopped: {service.stored} message(s) stored, {service.alerted} alert(s)",
                      highlight=False)


async def _serve(service: RepositoryService, settings: Settings) -> None:
    import asyncio
    import signal

    from radguard.audit import AuditEmitter, builders

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    listeners = await service.start()
    emitter = AuditEmitter.from_settings(settings)
    station = settings.station_name
    await loop.run_in_executor(None, emitter.emit, builders.application_activity(
        "start", station=station, site=settings.site or None, application="radguard-audit",
        launcher=settings.operator_name))
    for listener in listeners:
        err_console.print(f"listening on {listener.transport}://{listener.host}:{listener.port}",
                          highlight=False)
    await service.run(stop)
    emitter.emit(builders.application_activity(
        "stop", station=station, site=settings.site or None, application="radguard-audit",
        launcher=settings.operator_name))


# -- search --------------------------------------------------------------------------------------


def _outcomes(values: list[str]) -> tuple[int, ...]:
    out: list[int] = []
    for v in values:
        if v == "failure":
            out += [4, 8, 12]
        elif v in ("0", "4", "8", "12"):
            out.append(int(v))
        elif v == "success":
            out.append(0)
        else:
            fail(f"bad outcome {v!r}: use 0, 4, 8, 12, success or failure")
    return tuple(out)


@app.command("search")
def search_cmd(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601, or an age: 24h, 7d).")
                     ] = None,
    until: Annotated[str | None, typer.Option(help="Before this time.")] = None,
    on: Annotated[str, typer.Option(help="Time the range applies to: received | event.")
                  ] = "received",
    event_id: Annotated[list[str] | None, typer.Option("--event-id", help="EventID code, e.g. "
                                                       "110104 (repeatable).")] = None,
    event_type: Annotated[list[str] | None, typer.Option("--event-type", help="EventTypeCode, "
                                                         "e.g. 110122.")] = None,
    user: Annotated[list[str] | None, typer.Option(help="Participant UserID.")] = None,
    node: Annotated[list[str] | None, typer.Option(help="Network access point or audit source."
                                                   )] = None,
    patient: Annotated[list[str] | None, typer.Option(help="Patient ID.")] = None,
    study: Annotated[list[str] | None, typer.Option(help="Study Instance UID.")] = None,
    outcome: Annotated[list[str] | None, typer.Option(help="0, 4, 8, 12, success, failure.")
                       ] = None,
    validity: Annotated[list[str] | None, typer.Option(help="valid, rfc3881, invalid, not-xml, "
                                                       "refused, truncated.")] = None,
    limit: Annotated[int, typer.Option(help="Most records returned (newest first).")] = 100,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | json | jsonl")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
) -> None:
    """Search stored audit records, newest first. Every search is itself audited."""
    if fmt not in _FORMATS:
        fail(f"unknown format {fmt!r}: use table, json or jsonl")
    if on not in ("received", "event"):
        fail("--on must be received or event")
    from rich.table import Table

    from radguard.audit.repository import SearchQuery, search

    settings = get_settings(ctx)
    query = SearchQuery(since=_when(since), until=_when(until), on=on,
                        event_ids=tuple(event_id or ()), event_types=tuple(event_type or ()),
                        users=tuple(user or ()), nodes=tuple(node or ()),
                        patients=tuple(patient or ()), studies=tuple(study or ()),
                        outcomes=_outcomes(outcome or []), validity=tuple(validity or ()),
                        limit=limit)
    with _open(settings) as store:
        try:
            found = search(store, query)
        except RadGuardError as exc:
            fail(exc)
        _audit_log_used(settings, store, f"audit search returned {len(found)} record(s)")
    if fmt != "table":
        _dump([r.to_dict() for r in found], fmt, output)
        return
    table = Table("id", "received", "source", "event", "types", "outcome", "users", "validity")
    for r in found:
        d = r.to_dict()
        users = ", ".join(p["user_id"] or "" for p in d["participants"])
        types = ", ".join((t or {}).get("code") or "" for t in d["event_type_codes"])
        table.add_row(str(r.id), r.received_at.strftime("%Y-%m-%d %H:%M:%S"),
                      r.source_id or r.hostname or r.peer, r.event_id or "", types,
                      "" if r.outcome is None else str(r.outcome), users[:60], r.validity)
    out_console.print(table)


# -- verify, alerts, stats -----------------------------------------------------------------------


@app.command("verify")
def verify_cmd(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text | json")] = "text",
    anchor: Annotated[str | None, typer.Option("--anchor", help="ID:HASH of a head noted "
                                               "earlier (printed by audit verify): it must still "
                                               "be in the chain, so removed newest records are "
                                               "found.")] = None,
) -> None:
    """Prove the hash chain of stored records; name the first broken record (exit 1)."""
    from radguard.audit.repository import verify

    settings = get_settings(ctx)
    pinned: tuple[int, str] | None = None
    if anchor is not None:
        rid, _, digest = anchor.partition(":")
        if not rid.isdigit() or len(digest) < 16:
            fail(f"--anchor must be ID:HASH as printed by 'audit verify', not {anchor!r}")
        pinned = (int(rid), digest.strip().lower())
    with _open(settings) as store:
        try:
            report = verify(store, anchor=pinned)
        except RadGuardError as exc:
            fail(exc)
        _audit_log_used(settings, store, "audit verify")
    if fmt == "json":
        write_output(json.dumps({"ok": report.ok, "checked": report.checked,
                                 "head": report.head, "first_broken": report.first_broken,
                                 "problem": report.problem, "head_id": report.head_id},
                                indent=2) + "\n", None)
    elif report.ok:
        out_console.print(f"chain intact: {report.checked} record(s); head {report.head}",
                          highlight=False)
        if report.checked:
            out_console.print(f"note this anchor outside the database: --anchor "
                              f"{report.head_id}:{report.head}", highlight=False, style="dim")
    else:
        out_console.print(f"[bold red]chain broken[/] at record {report.first_broken}: "
                          f"{report.problem} ({report.checked} record(s) before it verified)",
                          highlight=False)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FINDINGS)


@app.command("alerts")
def alerts_cmd(
    ctx: typer.Context,
    rule: Annotated[str | None, typer.Option(help="Only this rule id.")] = None,
    since: Annotated[str | None, typer.Option(help="Fired since (ISO 8601 or 24h, 7d).")] = None,
    limit: Annotated[int, typer.Option(help="Most alerts (newest first).")] = 100,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | json | jsonl")] = "table",
) -> None:
    """Alerts raised by the detection rules, newest first."""
    from rich.table import Table

    from radguard.audit.repository import list_alerts

    settings = get_settings(ctx)
    with _open(settings) as store:
        found = list_alerts(store, rule_id=rule, since=_when(since), limit=limit)
    if fmt != "table":
        _dump([a.to_dict() for a in found], fmt, None)
        return
    table = Table("id", "time", "severity", "rule", "subject", "records")
    for a in found:
        ids = ", ".join(map(str, a.record_ids[:8])) + (" ..." if len(a.record_ids) > 8 else "")
        table.add_row(str(a.id), a.time.strftime("%Y-%m-%d %H:%M:%S"), a.severity, a.rule_id,
                      f"{a.subject_kind} {a.subject}", ids)
    out_console.print(table)


@app.command("stats")
def stats_cmd(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | json")] = "table",
) -> None:
    """Counts received, stored, invalid, dropped and alerted, in total and per source."""
    from rich.table import Table

    from radguard.audit.repository import read_stats

    with _open(get_settings(ctx)) as store:
        stats = read_stats(store)
    if fmt == "json":
        write_output(json.dumps(stats.to_dict(), indent=2, sort_keys=True) + "\n", None)
        return
    table = Table("source", "received", "stored", "invalid", "dropped", "alerted")
    for source, c in [*stats.sources.items(), ("TOTAL", stats.total)]:
        table.add_row(source, *(str(c.get(k, 0)) for k in
                                ("received", "stored", "invalid", "dropped", "alerted")))
    out_console.print(table)


# -- rules ---------------------------------------------------------------------------------------


@rules_app.command("list")
def rules_list(
    ctx: typer.Context,
    rules: Annotated[Path | None, typer.Option(help="Rule file (default: built-in pack).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | json")] = "table",
) -> None:
    """List the detection rules (id, severity, kind, description, controls)."""
    from rich.table import Table

    from radguard.audit.repository import setup as repo_setup

    try:
        pack = repo_setup.rule_pack(get_settings(ctx), rules)
    except RadGuardError as exc:
        fail(exc)
    rows = [r.describe() for r in pack.rules]
    if fmt == "json":
        write_output(json.dumps({"pack": pack.name, "version": pack.version, "rules": rows},
                                indent=2) + "\n", None)
        return
    out_console.print(f"rule pack {pack.name} version {pack.version}", highlight=False)
    table = Table("id", "severity", "kind", "group by", "description")
    for r in rows:
        table.add_row(r["id"], r["severity"], r["kind"], r["group_by"], r["description"])
    out_console.print(table)


@rules_app.command("test")
def rules_test(
    ctx: typer.Context,
    rule: Annotated[str, typer.Argument(help="Rule id, e.g. audit.auth-failure-burst.")],
    file: Annotated[Path, typer.Argument(help="Audit messages: one per line, octet-counted "
                                         "(LEN SP MSG), or one XML document.")],
    rules: Annotated[Path | None, typer.Option(help="Rule file (default: built-in pack).")] = None,
    inventory: Annotated[bool, typer.Option(help="Use the store's inventory for destination "
                                            "rules.")] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | json")] = "table",
) -> None:
    """Replay FILE through RULE; exit 1 if it fires, 0 if it stays quiet. Stores nothing."""
    from radguard.audit.repository import Detector
    from radguard.audit.repository import setup as repo_setup
    from radguard.audit.repository.replay import parse_all, replay, split_messages
    from radguard.store import Store

    settings = get_settings(ctx)
    try:
        pack = repo_setup.rule_pack(settings, rules)
        pack.get(rule)
        store = Store.open(settings.db_url) if inventory else None
        try:
            context = repo_setup.context(settings, store)
        finally:
            if store is not None:
                store.close()
        messages = parse_all(split_messages(file.read_bytes()))
        alerts = replay(Detector(pack, context, only=[rule]), messages)
    except OSError as exc:
        fail(f"{file}: cannot read: {exc.strerror}")
    except RadGuardError as exc:
        fail(exc)
    if fmt == "json":
        write_output(json.dumps({"rule": rule, "messages": len(messages),
                                 "alerts": [a.to_dict() for a in alerts]}, indent=2) + "\n",
                     None)
    else:
        out_console.print(f"{len(messages)} message(s) replayed through {rule}: "
                          f"{len(alerts)} alert(s)", highlight=False)
        for a in alerts:
            out_console.print(f"  {a.time.isoformat()} {a.severity.label} {a.subject_kind} "
                              f"{a.subject}: records {list(a.record_ids)[:10]}", highlight=False)
    raise typer.Exit(EXIT_FINDINGS if alerts else EXIT_OK)
