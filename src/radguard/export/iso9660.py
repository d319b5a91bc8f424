"""RadGuard's own streaming ISO 9660 writer (ECMA-119 2nd edition, interchange level 1, + Joliet).

Why not pycdlib for writing: pycdlib keeps the whole hierarchy as objects, walks it twice (ISO
9660 and Joliet) and copies every file's bytes into the image once more. Here the image file is
built in place, in three steps:

1. :func:`create_image` makes the file (0600, exclusive) with :data:`HEAD_SECTORS` zero sectors:
   the System Area (sectors 0-15, ECMA-119 6.2.1) and the volume descriptor set (16-18);
2. the file data goes **after** them, in any order: any process that has the image open calls
   :func:`reserve` (an ``flock``-ed ``ftruncate`` that extends the file by whole sectors and returns
   the extent) and then ``os.pwrite`` s the bytes there, so a worker writes each envelope straight
   into the image, once;
3. :func:`finish_image` appends the path tables and directories of both hierarchies after the data
   and writes the Primary (ECMA-119 8.4) and Joliet Supplementary (8.5, UCS-2 level 3 escape
   ``%/E``) volume descriptors and the terminator (8.3) into the head.

ECMA-119 does not order extents: descriptors point to path tables (6.9), path tables and
directory records (9.1) to directories and files wherever they are. Directory records never cross
a sector (6.8.1.1) and are sorted by identifier (9.3); path tables are ordered by level, parent
number, identifier (6.9.1).

Names are checked here, not trusted: level 1 (6.8.2.1, PS3.12 F.1.2.1, PS3.10 8.5): components of
1-8 d-characters (``A-Z 0-9 _``) with an optional extension of 1-3, at most 8 directory levels
including the root. A name without an extension is written ``NAME.;1`` (PS3.12 F.1.2.1); Joliet
names are the plain names (no version suffix), so Windows and Linux show ``IM000001``. No Rock
Ridge: no POSIX owners or modes on the disc.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["HEAD_SECTORS", "MAX_FILE", "SECTOR", "Directories", "ExtentWriter", "IsoFile",
           "create_image", "finish_image", "reserve", "sectors", "volume_label"]

SECTOR = 2048
HEAD_SECTORS = 19  # system area 0-15, PVD 16, Joliet SVD 17, terminator 18
MAX_LEVELS = 8  # ECMA-119 6.8.2.1: root is level 1
MAX_FILE = 1 << 32  # 9.1.4: a 32-bit data length (level 1 has one extent per file)
_NAME = re.compile(r"[A-Z0-9_]{1,8}")
_FILE = re.compile(r"[A-Z0-9_]{1,8}(\.[A-Z0-9_]{1,3})?")
_D_LABEL = re.compile(r"[^A-Z0-9_]")


@dataclass(frozen=True, slots=True)
class IsoFile:
    """A file already in the image: relative file ID, first sector, length in bytes."""

    rel: str
    extent: int
    size: int


@dataclass
class _Dir:
    name: str  # "" for the root
    parent: _Dir | None
    dirs: dict[str, _Dir] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # file IDs, resolved when written
    number: int = 0  # path table directory number (1 = root)
    extent: list[int] = field(default_factory=lambda: [0, 0])  # ISO 9660, Joliet: first sector
    size: list[int] = field(default_factory=lambda: [0, 0])  # ISO 9660, Joliet: whole sectors
    sorted: list[list[tuple[bytes, _Dir | str]] | None] = field(
        default_factory=lambda: [None, None])

    @property
    def level(self) -> int:
        return 1 if self.parent is None else self.parent.level + 1


def sectors(n: int) -> int:
    """Whole sectors that ``n`` bytes take."""
    return -(-n // SECTOR)


def create_image(path: str, *, exclusive: bool = True) -> int:
    """Create the image file (0600) with its head sectors and return a read-write descriptor."""
    flags = os.O_RDWR | os.O_CREAT | (os.O_EXCL if exclusive else 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    os.ftruncate(fd, HEAD_SECTORS * SECTOR)
    return fd


def reserve(fd: int, length: int) -> int:
    """Extend the image by the whole sectors ``length`` bytes need; return the byte offset of the
    reserved extent. Safe across processes (each with its own descriptor): ``flock`` serialises
    the size read and the extension."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        end = os.fstat(fd).st_size
        os.ftruncate(fd, end + max(1, sectors(length)) * SECTOR)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
    return end


class ExtentWriter:
    """``write(data)`` as ``os.pwrite`` at increasing offsets of ``fd`` (a reserved extent)."""

    def __init__(self, fd: int, pos: int):
        self.fd, self.pos = fd, pos

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(self.fd, view, self.pos)
            self.pos += n
            view = view[n:]


def _both16(v: int) -> bytes:
    return struct.pack("<H", v) + struct.pack(">H", v)


def _both32(v: int) -> bytes:
    return struct.pack("<I", v) + struct.pack(">I", v)


def _iso_id(name: str, is_dir: bool) -> bytes:
    if is_dir:
        return name.encode("ascii")
    return (name if "." in name else name + ".").encode("ascii") + b";1"


def _sort_key(name: str) -> tuple[str, str]:
    """ECMA-119 9.3: by name then extension, shorter ones padded with spaces (0x20)."""
    base, _, ext = name.partition(".")
    return base.ljust(8), ext.ljust(3)


_REC = struct.Struct("<BBI4sI4s7sB2s4sB")
_VOLUME_SEQ = _both16(1)


def _record(ident: bytes, extent: int, size: int, is_dir: bool, stamp: bytes) -> bytes:
    """A Directory Record (ECMA-119 9.1): both-byte-order extent and size, one volume."""
    pad = b"\x00" if len(ident) % 2 == 0 else b""
    return _REC.pack(33 + len(ident) + len(pad), 0, extent, extent.to_bytes(4, "big"), size,
                     size.to_bytes(4, "big"), stamp, 2 if is_dir else 0, b"\x00\x00",
                     _VOLUME_SEQ, len(ident)) + ident + pad


def _pack(records: Sequence[bytes]) -> bytes:
    """Records laid out so that none crosses a sector (6.8.1.1), zero-filled to whole sectors."""
    joined = b"".join(records)
    if len(joined) <= SECTOR:  # most directories: one sector
        return joined + bytes(SECTOR - len(joined))
    out = bytearray()
    for rec in records:
        room = SECTOR - len(out) % SECTOR
        if len(rec) > room:
            out += bytes(room)
        out += rec
    out += bytes(sectors(len(out)) * SECTOR - len(out))
    return bytes(out)


def _packed_size(lengths: Sequence[int]) -> int:
    """What :func:`_pack` makes of records of these lengths, in bytes."""
    used = 0
    for n in lengths:
        if n > SECTOR - used % SECTOR:
            used += SECTOR - used % SECTOR
        used += n
    return sectors(used) * SECTOR


def _children(d: _Dir, joliet: bool) -> list[tuple[bytes, _Dir | str]]:
    """The records of ``d`` after ``.`` and ``..``, sorted (ECMA-119 9.3); computed once."""
    j = int(joliet)
    if d.sorted[j] is None:
        if joliet:
            items: list[tuple[bytes, _Dir | str]] = [
                (n.encode("utf-16-be"), c) for n, c in d.dirs.items()]
            items += [(f.rsplit("/", 1)[-1].encode("utf-16-be"), f) for f in d.files]
            d.sorted[j] = sorted(items, key=lambda x: x[0])
        else:
            named: list[tuple[tuple[str, str], bytes, _Dir | str]] = [
                (_sort_key(n), _iso_id(n, True), c) for n, c in d.dirs.items()]
            for f in d.files:
                n = f.rsplit("/", 1)[-1]
                named.append((_sort_key(n), _iso_id(n, False), f))
            d.sorted[j] = [(ident, c) for _k, ident, c in sorted(named, key=lambda x: x[0])]
    out = d.sorted[j]
    assert out is not None
    return out


def _directory(d: _Dir, j: int, stamp: bytes, files: dict[str, IsoFile]) -> bytes:
    parent = d.parent or d
    recs = [_record(b"\x00", d.extent[j], d.size[j], True, stamp),
            _record(b"\x01", parent.extent[j], parent.size[j], True, stamp)]
    for ident, c in _children(d, bool(j)):
        if isinstance(c, _Dir):
            recs.append(_record(ident, c.extent[j], c.size[j], True, stamp))
        else:
            f = files[c]
            recs.append(_record(ident, f.extent, f.size, False, stamp))
    return _pack(recs)


def _path_id(d: _Dir, j: int) -> bytes:
    return (d.name.encode("utf-16-be") if j else d.name.encode("ascii")) or b"\x00"


def _path_table(dirs: Sequence[_Dir], j: int, big: bool) -> bytes:
    """Path Table (ECMA-119 9.4), type L (little-endian) or M (big-endian)."""
    fmt = ">IH" if big else "<IH"
    out = bytearray()
    for d in dirs:
        ident = _path_id(d, j)
        parent = d.parent.number if d.parent else 1
        out += bytes((len(ident), 0)) + struct.pack(fmt, d.extent[j], parent) + ident
        out += b"\x00" * (len(ident) % 2)
    return bytes(out)


def _tree(rels: Sequence[str]) -> list[_Dir]:
    """Directories in path table order (6.9.1), numbered from 1."""
    root = _Dir("", None)
    seen: set[str] = set()
    for rel in rels:
        parts = rel.split("/")
        if (len(parts) > MAX_LEVELS or not all(_NAME.fullmatch(p) for p in parts[:-1])
                or not _FILE.fullmatch(parts[-1])):
            raise ValueError(f"not an ISO 9660 level 1 file ID: {rel!r}")
        d = root
        for p in parts[:-1]:
            d = d.dirs.setdefault(p, _Dir(p, d))
        if (parts[-1] in d.dirs or rel in seen
                or any("/".join(parts[:i]) in seen for i in range(1, len(parts)))):
            raise ValueError(f"file ID given twice or also a directory: {rel!r}")
        seen.add(rel)
        d.files.append(rel)
    order, level = [root], [root]
    while level:
        nxt: list[_Dir] = []
        for d in level:  # parents already in number order
            nxt += [d.dirs[k] for k in sorted(d.dirs, key=_sort_key)]
        order += nxt
        level = nxt
    for i, d in enumerate(order, 1):
        d.number = i
    return order


def _stamp7(t: datetime) -> bytes:
    """Recording date and time (ECMA-119 9.1.5), UTC."""
    return bytes((t.year - 1900, t.month, t.day, t.hour, t.minute, t.second, 0))


def _stamp17(t: datetime | None) -> bytes:
    """Volume date and time (ECMA-119 8.4.26.1); ``None``: not specified."""
    if t is None:
        return b"0" * 16 + b"\x00"
    return t.strftime("%Y%m%d%H%M%S").encode("ascii") + b"00\x00"


def _text(value: str, size: int, joliet: bool) -> bytes:
    if joliet:
        raw = value.encode("utf-16-be")[: size - size % 2]
        return raw + " ".encode("utf-16-be") * ((size - len(raw)) // 2) + b"\x00" * (size % 2)
    return value.encode("ascii")[:size].ljust(size, b" ")


def _descriptor(joliet: bool, label: str, space: int, table_size: int, l_table: int,
                m_table: int, root: _Dir, t: datetime) -> bytes:
    """Primary (8.4) or Joliet Supplementary (8.5) Volume Descriptor."""
    j = int(joliet)
    root_rec = _record(b"\x00", root.extent[j], root.size[j], True, _stamp7(t))
    out = (bytes((2 if joliet else 1,)) + b"CD001\x01\x00" + _text("", 32, joliet)
           + _text(label, 32, joliet) + bytes(8) + _both32(space)
           + (b"%/E".ljust(32, b"\x00") if joliet else bytes(32))
           + _both16(1) + _both16(1) + _both16(SECTOR) + _both32(table_size)
           + struct.pack("<II", l_table, 0) + struct.pack(">II", m_table, 0) + root_rec
           + _text("", 128, joliet) * 3 + _text("RADGUARD", 128, joliet)
           + _text("", 37, joliet) * 3
           + _stamp17(t) * 2 + _stamp17(None) + _stamp17(t) + b"\x01\x00")
    return out.ljust(SECTOR, b"\x00")


def volume_label(label: str) -> str:
    """A Volume Identifier of d-characters (8.4.6; PS3.12 F.3.2: the File-set ID)."""
    return _D_LABEL.sub("_", label.upper())[:32]


def _check(files: Sequence[IsoFile], end: int, area: tuple[int, int] | None = None) -> None:
    """Every extent inside the data area (after the head, before byte ``end``), none overlapping
    another or the directory ``area`` (first sector, end sector)."""
    for f in files:
        if f.size >= MAX_FILE:
            raise ValueError(f"{f.rel!r} is larger than one ISO 9660 extent (4 GiB)")
        if f.extent < HEAD_SECTORS or (f.extent + sectors(f.size)) * SECTOR > end:
            raise ValueError(f"extent of {f.rel!r} is outside the image's data area")
    used = sorted((f.extent, f.extent + sectors(f.size), f.rel) for f in files if f.size)
    if area is not None:
        used = sorted([*used, (area[0], area[1], "(directories)")])
    for (_s1, end1, rel1), (start2, _e2, rel2) in itertools.pairwise(used):
        if start2 < end1:  # workers write at reserved extents: a clash would corrupt a file
            raise ValueError(f"extents of {rel1!r} and {rel2!r} overlap")


class Directories:
    """Both hierarchies (ISO 9660 and Joliet) of an image, planned from the file IDs alone.

    A directory's size depends only on the names in it (9.1: a record's length is that of its
    identifier), so :meth:`plan` can reserve the path tables and every directory before the
    files' extents are all known. That lets an export plan and write the directories below the
    root and the path tables (:meth:`write_below_root`, thousands of directories) in another
    process while the files of the root (DICOMDIR, README.TXT, manifest) are still being made;
    :meth:`finish` then writes the two root directories and the volume descriptors.
    """

    def __init__(self, rels: Sequence[str], dirs: list[_Dir], tables: list[tuple[int, int, int]],
                 area: tuple[int, int], when: datetime, *, tables_written: bool = False):
        self.rels, self.dirs, self.tables, self.area, self.when = rels, dirs, tables, area, when
        self.tables_written = tables_written

    @classmethod
    def plan(cls, fd: int, rels: Sequence[str], when: datetime | None = None) -> Directories:
        """Check the file IDs ``rels`` and reserve the path tables and directories of both
        hierarchies at the end of the image.

        Raises
        ------
        ValueError
            A file ID outside level 1, deeper than 8 levels, or given twice.
        """
        t = (when or datetime.now(UTC)).astimezone(UTC)
        dirs = _tree(rels)
        sizes = []
        for j in (0, 1):
            size = sum(8 + n + n % 2 for n in (len(_path_id(d, j)) for d in dirs))
            sizes.append(size)
            for d in dirs:  # a record's length does not depend on extents
                d.size[j] = _packed_size([34, 34] + [33 + len(ident) + 1 - len(ident) % 2
                                                     for ident, _c in _children(d, bool(j))])
        total = (sum(2 * sectors(n) for n in sizes)
                 + sum(sectors(d.size[j]) for j in (0, 1) for d in dirs))
        block = first = reserve(fd, total * SECTOR) // SECTOR
        tables: list[tuple[int, int, int]] = []  # per hierarchy: (size, L sector, M sector)
        for n in sizes:
            tables.append((n, block, block + sectors(n)))
            block += 2 * sectors(n)
        for j in (0, 1):
            for d in dirs:
                d.extent[j] = block
                block += sectors(d.size[j])
        return cls(list(rels), dirs, tables, (first, block), t)

    def write_subtrees(self, fd: int, files: Sequence[IsoFile]) -> None:
        """Write every directory but the two roots (needs the extents of the files below them)."""
        by_rel = {f.rel: f for f in files}
        stamp = _stamp7(self.when)
        for j in (0, 1):
            if len(self.dirs) > 1:
                data = b"".join(_directory(d, j, stamp, by_rel) for d in self.dirs[1:])
                os.pwrite(fd, data, self.dirs[1].extent[j] * SECTOR)

    def _write_tables(self, fd: int) -> None:
        for j in (0, 1):
            _size, l_at, m_at = self.tables[j]
            for big, at in ((False, l_at), (True, m_at)):
                os.pwrite(fd, _path_table(self.dirs, j, big), at * SECTOR)
        self.tables_written = True

    def write_below_root(self, fd: int, files: Sequence[IsoFile]) -> Directories:
        """Write the directories below the roots and the path tables; return what
        :meth:`finish` still needs (the roots and their entries only: small enough to hand to
        another process)."""
        self.write_subtrees(fd, files)
        self._write_tables(fd)
        return self.root_only()

    def root_only(self) -> Directories:
        """The two roots with their entries only, after :meth:`write_below_root`."""
        root = self.dirs[0]
        flat = {id(c): _Dir(c.name, None, extent=list(c.extent), size=list(c.size))
                for c in root.dirs.values()}
        top = _Dir("", None, dirs={n: flat[id(c)] for n, c in root.dirs.items()},
                   files=list(root.files), number=1, extent=list(root.extent),
                   size=list(root.size))
        top.sorted = [[(ident, flat[id(c)] if isinstance(c, _Dir) else c)
                       for ident, c in _children(root, bool(j))] for j in (0, 1)]
        return Directories(self.rels, [top], self.tables, self.area, self.when,
                           tables_written=True)

    def to_json(self) -> bytes:
        """:meth:`root_only` as JSON (handed from the process that wrote the directories)."""
        top = self.root_only().dirs[0]

        def entry(ident: bytes, c: _Dir | str) -> list[Any]:
            return [ident.hex(), c] if isinstance(c, str) else [ident.hex(), c.extent, c.size]

        return json.dumps({
            "rels": list(self.rels), "tables": self.tables, "area": self.area,
            "when": self.when.isoformat(), "extent": top.extent, "size": top.size,
            "children": [[entry(i, c) for i, c in _children(top, bool(j))] for j in (0, 1)],
        }).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Directories:
        d = json.loads(data)
        top = _Dir("", None, number=1, extent=list(d["extent"]), size=list(d["size"]))
        top.sorted = [[(bytes.fromhex(e[0]), e[1] if len(e) == 2 else
                        _Dir("", None, extent=list(e[1]), size=list(e[2]))) for e in kids]
                      for kids in d["children"]]
        return cls(d["rels"], [top], [tuple(t) for t in d["tables"]],
                   tuple(d["area"]), datetime.fromisoformat(d["when"]),
                   tables_written=True)

    def finish(self, fd: int, files: Sequence[IsoFile], label: str) -> int:
        """Check ``files`` (exactly the planned file IDs, extents inside the data and apart),
        write the roots, the path tables and the volume descriptors; return the image size. The
        caller fsyncs and renames.

        Raises
        ------
        ValueError
            A file missing or not planned, an extent outside the data area, or two extents that
            overlap (each other or the directories).
        """
        end = os.fstat(fd).st_size
        _check(files, end, self.area)
        if sorted(f.rel for f in files) != sorted(self.rels):
            raise ValueError("the files differ from the planned file IDs")
        by_rel = {f.rel: f for f in files}
        stamp = _stamp7(self.when)
        root = self.dirs[0]
        for j in (0, 1):
            os.pwrite(fd, _directory(root, j, stamp, by_rel), root.extent[j] * SECTOR)
        if not self.tables_written:
            self._write_tables(fd)
        space = sectors(end)
        os.ftruncate(fd, space * SECTOR)
        label = volume_label(label)
        head = b"".join(_descriptor(bool(j), label, space, self.tables[j][0], self.tables[j][1],
                                    self.tables[j][2], root, self.when) for j in (0, 1))
        head += (b"\xffCD001\x01").ljust(SECTOR, b"\x00")
        os.pwrite(fd, head, 16 * SECTOR)
        return space * SECTOR


def finish_image(fd: int, files: Sequence[IsoFile], label: str,
                 when: datetime | None = None) -> int:
    """Append both hierarchies for ``files`` (already in the image) and write the volume
    descriptors; return the image size. The caller fsyncs and renames.

    Raises
    ------
    ValueError
        A file ID outside level 1, deeper than 8 levels, given twice, an extent outside the
        data area, or two files whose extents overlap.
    """
    _check(files, os.fstat(fd).st_size)
    dirs = Directories.plan(fd, [f.rel for f in files], when)
    dirs.write_subtrees(fd, files)
    return dirs.finish(fd, files, label)
