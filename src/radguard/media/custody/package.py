"""Reading and writing custody packages: a folder, or the same members in one POSIX tar file.

Members (names are fixed; nothing from the medium names a member, so no path can escape)::

    manifest.json     canonical JSON (:mod:`radguard.media.custody.manifest`)
    manifest.sig      JSON: {"algorithm": "Ed25519", "key_id": ..., "signature": base64}
    files/000001.dcm  the rebuilt files

:class:`PackageWriter` builds the package in ``OUT.partial`` and renames it into place only when the
signature is written, so a half-written package never has the final name. Readers never follow
links, accept only regular files and the names above, and bound the size they read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
import threading
from pathlib import Path
from typing import Protocol

from radguard.keys.fsio import fsync_dir
from radguard.media.custody.errors import PackageProblem, PackageRefusedDetail, PackageWriteError

__all__ = ["MANIFEST", "SIGNATURE", "PackageReader", "PackageWriter", "member_name", "open_package"]

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
MAX_MEMBERS = 1_000_000
MAX_MEMBER_SIZE = 8 * 1024**3


def member_name(index: int) -> str:
    """Name of the ``index``-th rebuilt file (1-based)."""
    return f"files/{index:06d}.dcm"


class PackageWriter:
    """Writes a package folder (or tar file when ``archive``) at ``out``; see the module docstring.

    Raises
    ------
    PackageWriteError
        ``out`` exists already or cannot be written.
    """

    def __init__(self, out: Path, *, archive: bool = False):
        self.out = out
        self.archive = archive
        if out.exists():
            raise PackageWriteError("the package target exists already", subject=str(out),
                                    remedy="choose a new --out path; packages are never overwritten")
        self.tmp = out.parent / f"{out.name}.partial"
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        try:
            (self.tmp / "files").mkdir(parents=True)
        except OSError as exc:
            raise PackageWriteError(f"cannot create the package: {exc.strerror}",
                                    subject=str(out), remedy="check the target folder") from exc

    def add(self, name: str, data: bytes) -> None:
        path = self.tmp / name
        with open(path, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    def finish(self, manifest: bytes, signature: bytes) -> Path:
        """Write manifest and signature, then move the package into place."""
        try:
            self.add(MANIFEST, manifest)
            self.add(SIGNATURE, signature)
            fsync_dir(self.tmp / "files")
            fsync_dir(self.tmp)
            if self.archive:
                part = self.out.parent / f"{self.out.name}.tar.partial"
                with tarfile.open(part, "w", format=tarfile.PAX_FORMAT) as tar:
                    for name in (MANIFEST, SIGNATURE):
                        tar.add(self.tmp / name, arcname=name, recursive=False)
                    for f in sorted((self.tmp / "files").iterdir()):
                        tar.add(f, arcname=f"files/{f.name}", recursive=False)
                with open(part, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.rename(part, self.out)
                shutil.rmtree(self.tmp)
            else:
                os.rename(self.tmp, self.out)
            fsync_dir(self.out.parent)
        except OSError as exc:
            raise PackageWriteError(f"cannot finish the package: {exc.strerror}",
                                    subject=str(self.out),
                                    remedy="check free space on the target") from exc
        return self.out

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(self.tmp)


class PackageReader(Protocol):
    """What verification and import need of a package."""

    path: Path

    def names(self) -> list[str]: ...

    def size(self, name: str) -> int: ...

    def read(self, name: str) -> bytes: ...

    def close(self) -> None: ...


def _refuse(path: Path, name: str, cause: str, detail: str) -> PackageRefusedDetail:
    return PackageRefusedDetail(f"{name}: {detail}", subject=str(path),
                                problems=(PackageProblem(name, cause, detail),),
                                remedy="get a fresh package from the media station")


class FolderPackage:
    """A package folder; members are checked with ``lstat`` (links and devices are refused)."""

    def __init__(self, path: Path):
        self.path = path
        self._sizes: dict[str, int] = {}
        odd: list[PackageProblem] = []
        for rel, base in (("", path), ("files/", path / "files")):
            if not base.is_dir():
                continue
            for entry in os.scandir(base):
                name = rel + entry.name
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode) and name == "files":
                    continue
                if not stat.S_ISREG(st.st_mode):
                    odd.append(PackageProblem(name, "unexpected-file",
                                              "not a regular file (link, folder or device)"))
                    continue
                self._sizes[name] = st.st_size
                if len(self._sizes) > MAX_MEMBERS:
                    raise _refuse(path, name, "unreadable", "too many members")
        self.odd = tuple(odd)

    def names(self) -> list[str]:
        return sorted(self._sizes)

    def size(self, name: str) -> int:
        return self._sizes[name]

    def read(self, name: str) -> bytes:
        """The member's bytes, at most ``MAX_MEMBER_SIZE + 1`` (one more than allowed, so a
        member that is too large, or grew since it was listed, shows as a size mismatch).

        Reads into one buffer of the size ``fstat`` reports (+ 1), not a buffer of the bound: no
        8 GiB request to the allocator per member."""
        fd = os.open(os.path.join(self.path, name), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            want = min(os.fstat(fd).st_size, MAX_MEMBER_SIZE) + 1
            parts: list[bytes] = []
            got = 0
            while got < want and (chunk := os.read(fd, want - got)):
                parts.append(chunk)
                got += len(chunk)
            return parts[0] if len(parts) == 1 else b"".join(parts)
        finally:
            os.close(fd)

    def close(self) -> None:
        return None


class TarPackage:
    """A package in one tar file; only regular members with unique, fixed-form names are used."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.tar = tarfile.open(path, "r:")  # noqa: SIM115 - closed by close()
        except (OSError, tarfile.TarError) as exc:
            raise _refuse(path, path.name, "unreadable", f"not a readable tar file: {exc}") from exc
        self.members: dict[str, tarfile.TarInfo] = {}
        odd: list[PackageProblem] = []
        for count, m in enumerate(self.tar):
            if count > MAX_MEMBERS:
                raise _refuse(path, m.name, "unreadable", "too many members")
            if m.isdir() and m.name.rstrip("/") == "files":
                continue
            if not m.isreg() or m.name in self.members:
                odd.append(PackageProblem(m.name, "unexpected-file",
                                          "not a regular file, or listed twice"))
                continue
            self.members[m.name] = m
        self.odd = tuple(odd)
        self._lock = threading.Lock()  # one tar file object: reads from several threads take turns

    def names(self) -> list[str]:
        return sorted(self.members)

    def size(self, name: str) -> int:
        return int(self.members[name].size)

    def read(self, name: str) -> bytes:
        with self._lock:
            fh = self.tar.extractfile(self.members[name])
            if fh is None:
                raise _refuse(self.path, name, "unreadable", "member cannot be read")
            with fh:
                return fh.read(MAX_MEMBER_SIZE + 1)

    def close(self) -> None:
        self.tar.close()


def open_package(path: Path) -> FolderPackage | TarPackage:
    """Open a package folder or tar file.

    Raises
    ------
    PackageRefusedDetail
        The path is neither a folder nor a readable tar file.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _refuse(path, path.name, "unreadable", f"cannot open: {exc.strerror}") from exc
    if stat.S_ISDIR(st.st_mode):
        return FolderPackage(path)
    return TarPackage(path)
