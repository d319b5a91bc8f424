"""What every CLI command shares: settings from the context, consoles, output and error handling.

The CLI is the only code that prints (DESIGN.md); it stays thin: parse, call the library, render.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from radguard.config import Settings, load_settings
from radguard.errors import RadGuardError
from radguard.formats.base import printable

__all__ = ["EXIT_ERROR", "EXIT_FINDINGS", "EXIT_OK", "SafeConsole", "err_console", "fail", "get_settings",
           "path_inside", "printable", "progress_bar", "refuse_inside_medium", "safe",
           "write_output"]

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


def path_inside(candidate: Path, folder: Path) -> bool:
    """Whether ``candidate`` (resolved, links followed) is the folder ``folder`` or lies inside it;
    used to refuse writing reports or packages into a medium, which is never written to."""
    try:
        root = folder.resolve()
        target = candidate.resolve()
    except OSError:
        return False
    return root.is_dir() and (target == root or root in target.parents)


def refuse_inside_medium(candidate: Path | None, medium: Path, what: str) -> None:
    """Exit 2 with a clear error when ``candidate`` lies inside the medium folder ``medium``."""
    if candidate is not None and path_inside(candidate, medium):
        fail(RadGuardError(f"the {what} would be written inside the medium ({candidate})",
                           subject=str(medium),
                           remedy=f"write the {what} outside the medium: RadGuard never writes to "
                                  "a medium, so that what it judged stays exactly what arrived"))


def safe(value: object) -> str:
    """An untrusted value to interpolate into Rich markup: control characters escaped
    (:func:`printable`) and ``[`` escaped so the value cannot open or close a style."""
    return escape(printable(value))


class SafeConsole(Console):
    """A Rich console that never lets data drive the terminal or crash the command.

    Every string printed or put in a table passes :meth:`render_str`: control characters are escaped,
    and text whose markup does not parse (an untrusted value with ``[/]`` that a caller forgot to
    pass through :func:`safe`) is printed literally instead of raising ``MarkupError``.
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:
        text = printable(text, keep_newlines=True)
        try:
            return super().render_str(text, **kwargs)
        except MarkupError:
            kwargs["markup"] = False
            return super().render_str(text, **kwargs)


err_console = SafeConsole(stderr=True)
out_console = SafeConsole()

T = TypeVar("T")


def get_settings(ctx: typer.Context) -> Settings:
    """The settings resolved by the root callback (config file, environment, global options)."""
    obj = ctx.find_root().obj
    if isinstance(obj, Settings):
        return obj
    return load_settings()


def fail(exc: RadGuardError | str, code: int = EXIT_ERROR) -> NoReturn:
    """Print an operator-readable error (what, to what, what next) and exit."""
    if isinstance(exc, RadGuardError):
        subject = safe(exc.subject) + ": " if exc.subject else ""
        err_console.print(f"[bold red]error:[/] {subject}{safe(exc.message)}", highlight=False,
                          markup=True)
        if exc.remedy:
            err_console.print(f"[bold]what to do:[/] {safe(exc.remedy)}", highlight=False)
    else:
        err_console.print(f"[bold red]error:[/] {safe(exc)}", highlight=False)
    raise typer.Exit(code)


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; turn RadGuard errors into a clean exit 2."""
    try:
        return fn()
    except RadGuardError as exc:
        fail(exc)


@contextlib.contextmanager
def progress_bar(description: str, *, enabled: bool | None = None
                 ) -> Iterator[Callable[[int, int, str], None]]:
    """A Rich progress bar on stderr when it is a terminal; a no-op callback otherwise."""
    show = err_console.is_terminal if enabled is None else enabled
    if not show:
        yield lambda done, total, item: None
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), TextColumn("{task.fields[item]}", style="dim"),
                  console=err_console, transient=True) as progress:
        task = progress.add_task(description, total=None, item="")

        def update(done: int, total: int, item: str) -> None:
            progress.update(task, completed=done, total=total, item=item[-50:])

        yield update


def write_output(text: str | Iterable[str], output: Path | None) -> None:
    """Write ``text`` (a string or pieces of one) to ``output`` atomically (temp file, fsync,
    rename), or to stdout."""
    pieces = [text] if isinstance(text, str) else text
    if output is None:
        for piece in pieces:
            sys.stdout.write(piece)
        sys.stdout.flush()
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for piece in pieces:
                fh.write(piece)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, output)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def json_default(value: Any) -> Any:
    return str(value)
