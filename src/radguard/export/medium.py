"""Where a medium lives: a folder (USB stick, mounted disc) or an ISO 9660 image.

Images are *written* by RadGuard's own streaming writer (:mod:`radguard.export.iso9660`: ISO 9660
level 1 + Joliet, no Rock Ridge) and *read* here with pycdlib.

Reading (``media open``) never follows a link out of a folder and resolves only validated file IDs
(:func:`radguard.export.manifest.check_file_id`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from radguard.errors import MediumUnreadable
from radguard.export.errors import MissingFile

if TYPE_CHECKING:  # imported when an image is opened: ``media export`` does not need it
    import pycdlib

__all__ = ["FolderMedium", "IsoMedium", "Medium", "open_medium", "read_all"]


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
        import pycdlib

        self.iso: pycdlib.PyCdlib = pycdlib.PyCdlib()
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


def read_all(medium: Medium, rel: str, limit: int) -> bytes:
    """A small file's bytes (manifest, signature), refused above ``limit``."""
    if medium.size(rel) > limit:
        raise MediumUnreadable(f"{rel} is larger than {limit} bytes", subject=rel)
    with medium.open(rel) as fh:
        return fh.read(limit + 1)


