"""Where a medium lives: a folder (USB stick, mounted disc) or an ISO 9660 image.

Writing an image uses pycdlib: ISO 9660 interchange level 1 (8.3 names, what PS3.12 and IHE PDI
require, readable by every operating system) **plus Joliet** (level 3), so Windows and Linux show
the names without the ``;1`` version suffix. **Rock Ridge is off**: PDI readers do not need POSIX
modes or owners, and leaving it out keeps the sender's user and group ids off the disc. The volume
identifier is a neutral label (never a patient name).

Reading (``media open``) never follows a link out of a folder and resolves only validated file IDs
(:func:`radguard.export.manifest.check_file_id`).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol, cast

import pycdlib

from radguard.errors import MediumUnreadable
from radguard.export.errors import MissingFile

__all__ = ["FolderMedium", "IsoMedium", "Medium", "open_medium", "write_iso"]


class Medium(Protocol):
    """Read access to the files of a medium by relative file ID (``DICOM/PA000001/...``)."""

    def names(self) -> set[str]: ...

    def size(self, rel: str) -> int: ...

    @contextmanager
    def open(self, rel: str) -> Iterator[BinaryIO]: ...

    def close(self) -> None: ...


class FolderMedium:
    def __init__(self, root: Path):
        self.root = root

    def names(self) -> set[str]:
        out = set()
        for dirpath, dirs, files in os.walk(self.root, followlinks=False):
            rel = Path(dirpath).relative_to(self.root)
            for name in files:
                out.add((rel / name).as_posix())
            dirs.sort()
        return out

    def _path(self, rel: str) -> Path:
        return self.root.joinpath(*rel.split("/"))

    def size(self, rel: str) -> int:
        try:
            st = os.lstat(self._path(rel))
        except FileNotFoundError:
            raise MissingFile("the file is missing", subject=rel) from None
        if not stat.S_ISREG(st.st_mode):
            raise MissingFile("not a regular file (link or device)", subject=rel)
        return st.st_size

    @contextmanager
    def open(self, rel: str) -> Iterator[BinaryIO]:
        try:
            fd = os.open(self._path(rel), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise MissingFile("the file is missing", subject=rel) from None
        with os.fdopen(fd, "rb") as fh:
            yield fh

    def close(self) -> None:
        return None


def _iso_name(rel: str) -> str:
    parts = rel.split("/")
    last = parts[-1] if "." in parts[-1] else parts[-1] + "."
    return "/" + "/".join([*parts[:-1], last + ";1"])


class IsoMedium:
    """An ISO 9660 image read with pycdlib (plain ISO 9660 names, version suffix stripped)."""

    def __init__(self, path: Path):
        self.iso = pycdlib.PyCdlib()
        try:
            self.iso.open(str(path))
        except (pycdlib.pycdlibexception.PyCdlibException, OSError) as exc:
            raise MediumUnreadable(f"not a readable ISO 9660 image: {exc}", subject=str(path),
                                   remedy="check the image, or mount it and give the folder") from exc
        self._sizes: dict[str, int] = {}
        for dirpath, _dirs, files in self.iso.walk(iso_path="/"):
            for name in files:
                full = (dirpath.rstrip("/") + "/" + name).lstrip("/")
                rel = full.rsplit(";", 1)[0].rstrip(".")
                rec = self.iso.get_record(iso_path="/" + full)
                self._sizes[rel] = int(rec.get_data_length())

    def names(self) -> set[str]:
        return set(self._sizes)

    def size(self, rel: str) -> int:
        if rel not in self._sizes:
            raise MissingFile("the file is missing", subject=rel)
        return self._sizes[rel]

    @contextmanager
    def open(self, rel: str) -> Iterator[BinaryIO]:
        self.size(rel)
        with self.iso.open_file_from_iso(iso_path=_iso_name(rel)) as fh:
            yield fh

    def close(self) -> None:
        self.iso.close()


def open_medium(path: Path) -> Medium:
    """A folder or an ISO image (by content: an ISO has ``CD001`` at byte 32769)."""
    if path.is_dir():
        return FolderMedium(path)
    try:
        with open(path, "rb") as fh:
            fh.seek(32769)
            magic = fh.read(5)
    except OSError as exc:
        raise MediumUnreadable(f"cannot read the medium: {exc.strerror}", subject=str(path)) from exc
    if magic != b"CD001":
        raise MediumUnreadable("neither a folder nor an ISO 9660 image", subject=str(path),
                               remedy="give the mount point of the disc or stick, or an .iso file")
    return IsoMedium(path)


class _Window:
    """``length`` bytes of ``fp`` from ``offset``, as a file of their own (for pycdlib, which
    seeks to 0 and reads the length it was given)."""

    mode = "rb"

    def __init__(self, fp: BinaryIO, offset: int, length: int):
        self.fp, self.offset, self.length, self.pos = fp, offset, length, 0

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.length}[whence]
        self.pos = max(0, min(self.length, base + pos))
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        n = self.length - self.pos if n < 0 else min(n, self.length - self.pos)
        self.fp.seek(self.offset + self.pos)
        data = self.fp.read(n)
        self.pos += len(data)
        return data


Located = Path | tuple[Path, int, int]
"""A staged file: its own path, or (path, offset, length) of a part of a larger file."""

ISO_BLOCK = 1024 * 1024


def write_iso(stage: Path, names: Sequence[str], target: Path, label: str,
              local: Callable[[str], Located] | None = None) -> None:
    """Write an ISO 9660 + Joliet image of the files ``names``; ``local(rel)`` gives the staged
    file of each (default: ``stage/rel``)."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, joliet=3, vol_ident=label[:32])
    made: set[str] = set()
    with contextlib.ExitStack() as files:
        opened: dict[Path, BinaryIO] = {}
        for rel in sorted(names):
            parts = rel.split("/")
            for i in range(1, len(parts)):
                d = "/" + "/".join(parts[:i])
                if d not in made:
                    iso.add_directory(iso_path=d, joliet_path=d)
                    made.add(d)
            src = local(rel) if local is not None else stage.joinpath(*parts)
            if isinstance(src, tuple):
                path, offset, length = src
                if path not in opened:
                    opened[path] = files.enter_context(open(path, "rb"))
                window = cast(BinaryIO, _Window(opened[path], offset, length))
                iso.add_fp(window, length, iso_path=_iso_name(rel), joliet_path="/" + rel)
            else:
                iso.add_file(str(src), iso_path=_iso_name(rel), joliet_path="/" + rel)
        try:
            with open(target, "xb") as fh:
                iso.write_fp(fh, blocksize=ISO_BLOCK)
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            iso.close()


def read_all(medium: Medium, rel: str, limit: int) -> bytes:
    """A small file's bytes (manifest, signature), refused above ``limit``."""
    if medium.size(rel) > limit:
        raise MediumUnreadable(f"{rel} is larger than {limit} bytes", subject=rel)
    with medium.open(rel) as fh:
        return fh.read(limit + 1)


