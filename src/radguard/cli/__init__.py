"""The ``radguard`` command line (Typer + Rich). Subcommand groups live one per module."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from radguard import __version__
from radguard.cli import media
from radguard.cli.common import fail
from radguard.config import load_settings
from radguard.errors import RadGuardError

__all__ = ["app", "main"]

app = typer.Typer(
    name="radguard",
    help="RadGuard: cybersecurity for medical-imaging departments (MITA CSP 1-2015, DICOM PS3.15).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts quote DICOM syntax such as host:port[/AET]: no markup
)
app.add_typer(media.app, name="media")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"radguard {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", envvar="RADGUARD_CONFIG",
                                                help="Config file (TOML).")] = None,
    home: Annotated[Path | None, typer.Option("--home", help="Data directory (default "
                                              "$RADGUARD_HOME or ~/.local/share/radguard).")] = None,
    database_url: Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL "
                                                     "of the store.")] = None,
    operator: Annotated[str | None, typer.Option("--operator", help="Operator name for audit "
                                                 "and custody records.")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug | info | warning")] = "warning",
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Global options; every setting can also come from RADGUARD_* variables or the config file."""
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.WARNING),
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        ctx.obj = load_settings(config, home=str(home) if home else None,
                                database_url=database_url, operator=operator)
    except RadGuardError as exc:
        fail(exc)


OPTIONAL_MODULES = (
    "radguard.cli.custody",  # media sanitize / media import, quarantine, keys (issue: import path)
    "radguard.cli.export",  # media export / media open (encrypted PDI media)
    "radguard.cli.deid",  # deid, deid verify
    "radguard.cli.assess",  # assess
    "radguard.cli.audit",  # audit serve / search / verify / alerts / stats / rules
)
"""CLI modules of the subsystems; each defines ``register(app, media_app)``."""


def _register_optional() -> None:
    import importlib

    for module in OPTIONAL_MODULES:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        mod.register(app, media.app)


_register_optional()


def main() -> None:
    """Console-script entry point.

    After the command has returned, a process that has nothing left running (no thread but the
    main one) runs the exit handlers (``atexit``: logging, multiprocessing, temporary folders),
    flushes its standard streams and ends with ``os._exit``: the interpreter would otherwise spend
    0.1-0.15 s freeing every object of a 20,000-file report one by one before exiting, and nothing
    of that teardown is observable. With another thread still alive the normal exit path runs.
    """
    code: int | str | None
    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int | str) else 0
    if threading.active_count() > 1 or isinstance(code, str):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed pipe (e.g. `radguard ... | head`): nothing to flush
            code = code or 1
    os._exit(code or 0)
