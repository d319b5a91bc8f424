"""Media as RadGuard reads them: a folder (or mount point), an ISO 9660 image, or a single file.

A medium lists its entries without following links and opens regular files read-only; it never
writes to the medium (DESIGN.md invariant 1). ISO images are read directly with pycdlib, Rock Ridge or
Joliet names preferred, without mounting.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from radguard.dicomio.source import ByteSource, StreamSource, open_path
from radguard.errors import MediumUnreadable

__all__ = ["Entry", "FolderMedium", "IsoMedium", "Medium", "MediumSpec", "open_medium"]

EntryKind = Literal["file", "symlink", "special", "unreadable"]
MAX_DIR_DEPTH = 64
MAX_ENTRIES = 2_000_000


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of a medium: ``rel`` is the POSIX path relative to the medium root."""

    rel: str
    kind: EntryKind
    size: int = 0
    nlink: int = 1
    target: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class MediumSpec:
    """How to reopen a medium in a worker process."""

    kind: Literal["folder", "iso", "file"]
    path: str


class Medium(Protocol):
    """What the scanner needs of a medium."""

    spec: MediumSpec

    def entries(self) -> Iterator[Entry]: ...

    def open(self, rel: str) -> ByteSource: ...

    def local_path(self, rel: str) -> str | None: ...

    def close(self) -> None: ...


def display_path(rel: str) -> str:
    """``rel`` as reportable text. A name that is not valid UTF-8 reaches Python with its bad bytes
    as lone surrogates (PEP 383), which neither the store nor JSON can hold as text: those bytes
    become ``\\xNN`` escapes. Files are still opened by their real name (``rel``)."""
    if rel.isascii() or not any("\udc80" <= ch <= "\udcff" for ch in rel):
        return rel
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _rel_text(parts: list[str]) -> str:
    return "/".join(parts)


class FolderMedium:
    """A folder or mount point, walked with ``lstat`` (links are reported, never followed)."""

    def __init__(self, path: Path, *, single: bool = False):
        self.root = path
        self._root_text = str(path)
        self.single = single
        self.spec = MediumSpec("file" if single else "folder", str(path))

    def entries(self) -> Iterator[Entry]:
        if self.single:
            st = os.lstat(self.root)
            yield Entry(self.root.name, "file", st.st_size, st.st_nlink)
            return
        count = 0
        stack: list[tuple[str, list[str]]] = [(str(self.root), [])]
        while stack:
            dirpath, parts = stack.pop()
            try:
                with os.scandir(dirpath) as it:
                    items = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                yield Entry(_rel_text(parts) or ".", "unreadable", note=exc.strerror or str(exc))
                continue
            prefix = _rel_text(parts) + "/" if parts else ""
            for item in items:
                count += 1
                if count > MAX_ENTRIES:
                    yield Entry(_rel_text(parts), "unreadable", note=f"more than {MAX_ENTRIES} "
                                "entries; the rest was not listed")
                    return
                rel = prefix + item.name
                try:
                    st = item.stat(follow_symlinks=False)
                except OSError as exc:
                    yield Entry(rel, "unreadable", note=exc.strerror or str(exc))
                    continue
                kind = stat.S_IFMT(st.st_mode)
                if kind == stat.S_IFREG:  # most entries: tested first
                    yield Entry(rel, "file", st.st_size, st.st_nlink)
                elif kind == stat.S_IFLNK:
                    try:
                        target = os.readlink(item.path)
                    except OSError:
                        target = "?"
                    yield Entry(rel, "symlink", target=target)
                elif kind == stat.S_IFDIR:
                    rel_parts = [*parts, item.name]
                    if len(rel_parts) >= MAX_DIR_DEPTH:
                        yield Entry(rel, "unreadable", note=f"folders nested deeper than "
                                    f"{MAX_DIR_DEPTH} levels were not listed")
                        continue
                    stack.append((item.path, rel_parts))
                else:
                    yield Entry(rel, "special", note=_special_kind(st.st_mode))

    def open(self, rel: str) -> ByteSource:
        # ``rel`` comes from entries(): names joined by "/", never "" or ".." (os.path.join is
        # the same join as Path.joinpath here, without building a Path per file)
        return open_path(self.root if self.single else os.path.join(self._root_text, rel))

    def local_path(self, rel: str) -> str | None:
        return str(self.root if self.single else self.root.joinpath(*rel.split("/")))

    def close(self) -> None:
        return None


def _special_kind(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


class IsoMedium:
    """An ISO 9660 image read with pycdlib (Rock Ridge, then Joliet, then plain ISO 9660 names)."""

    def __init__(self, path: Path):
        import pycdlib

        self.spec = MediumSpec("iso", str(path))
        self.iso: Any = pycdlib.PyCdlib()
        try:
            self.iso.open(str(path))
        except Exception as exc:  # pycdlib raises its own and OSError/struct errors on bad images
            raise MediumUnreadable(f"not a readable ISO 9660 image: {exc}", subject=str(path),
                                   remedy="check the image file, or scan the mounted disc folder "
                                   "instead") from exc
        if self.iso.has_rock_ridge():
            self.key = "rr_path"
        elif self.iso.has_joliet():
            self.key = "joliet_path"
        else:
            self.key = "iso_path"

    def _name(self, rec: Any) -> str:
        if self.key == "rr_path":
            return str(rec.rock_ridge.name().decode("utf-8", "replace"))
        ident: bytes = rec.file_identifier()
        if self.key == "joliet_path":
            name = ident.decode("utf-16-be", "replace")
        else:
            name = ident.decode("ascii", "replace")
        return name.split(";")[0] if ";" in name else name

    def entries(self) -> Iterator[Entry]:
        stack: list[list[str]] = [[]]
        count = 0
        while stack:
            parts = stack.pop()
            path = "/" + "/".join(parts)
            try:
                children = list(self.iso.list_children(**{self.key: path}))
            except Exception as exc:
                yield Entry(_rel_text(parts) or ".", "unreadable", note=str(exc))
                continue
            rows = []
            for rec in children:
                if rec is None or rec.is_dot() or rec.is_dotdot():
                    continue
                rows.append((self._name(rec), rec))
            for name, rec in sorted(rows, key=lambda r: r[0]):
                count += 1
                if count > MAX_ENTRIES:
                    return
                rel_parts = [*parts, name]
                rel = _rel_text(rel_parts)
                rr = getattr(rec, "rock_ridge", None)
                if rr is not None and self.key == "rr_path" and rr.is_symlink():
                    yield Entry(rel, "symlink", target=rr.symlink_path().decode("utf-8", "replace"))
                elif rec.is_dir():
                    if len(rel_parts) < MAX_DIR_DEPTH:
                        stack.append(rel_parts)
                    else:
                        yield Entry(rel, "unreadable", note="folders nested too deep")
                else:
                    yield Entry(rel, "file", int(rec.get_data_length()))

    def open(self, rel: str) -> ByteSource:
        path = "/" + rel
        if self.key == "iso_path":
            path += ";1"
        rec = self.iso.get_record(**{self.key: path})
        size = int(rec.get_data_length())
        stream = self.iso.open_file_from_iso(**{self.key: path})
        stream.__enter__()  # PyCdlibIO sets up its window on the image in __enter__
        return StreamSource(stream, size)

    def local_path(self, rel: str) -> str | None:
        return None

    def close(self) -> None:
        self.iso.close()


def is_iso_image(path: Path) -> bool:
    """True when ``path`` carries an ISO 9660 volume descriptor (``CD001`` at byte 32769)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(32769)
            return fh.read(5) == b"CD001"
    except OSError:
        return False


def open_medium(path: str | os.PathLike[str]) -> Medium:
    """Open a folder, an ISO image or a single file as a medium.

    Raises
    ------
    MediumUnreadable
        The path does not exist or cannot be read.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise MediumUnreadable(f"cannot open: {exc.strerror}", subject=str(p),
                               remedy="check that the disc or stick is mounted and the path is "
                               "right") from exc
    if stat.S_ISDIR(st.st_mode):
        return FolderMedium(p)
    if stat.S_ISREG(st.st_mode) and is_iso_image(p):
        return IsoMedium(p)
    if stat.S_ISREG(st.st_mode):
        return FolderMedium(p, single=True)
    raise MediumUnreadable("not a folder, ISO image or regular file", subject=str(p),
                           remedy="give the mount point of the medium or an image file")


def reopen(spec: MediumSpec) -> Medium:
    """Reopen a medium from its spec (in a worker process)."""
    if spec.kind == "iso":
        return IsoMedium(Path(spec.path))
    return FolderMedium(Path(spec.path), single=spec.kind == "file")
