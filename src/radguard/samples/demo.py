"""Build the demo "outside CD": real public DICOM files in an IHE PDI layout plus crafted hostile files.

Real files come from pydicom's bundled test files and, when installed, ``pydicom-data``; only files
the bounded reader walks cleanly are taken, deduplicated by SOP Instance UID, and laid out with a
DICOMDIR by pydicom's ``FileSet``. Hostile files come from :mod:`radguard.samples.hostile`.

Run: ``python -m radguard.samples.demo OUT_FOLDER [--iso IMAGE]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from radguard.dicomio import open_path, walk
from radguard.samples.hostile import HOSTILE, _pe_stub

__all__ = ["build_demo_medium", "real_sample_files"]

_SKIP_VERDICT_CODES = frozenset({"group-length-mismatch", "duplicate-tag-identical",
                                 "item-length-overrun", "meta-no-group-length"})


def real_sample_files(limit: int = 60) -> list[Path]:
    """Real public DICOM files that walk cleanly with a zero preamble, one per SOP Instance UID."""
    import pydicom

    roots = [Path(pydicom.__file__).parent / "data" / "test_files"]
    try:
        import data_store  # pydicom-data

        roots.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    chosen: list[Path] = []
    seen: set[str] = set()
    for root in roots:
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.stat().st_size > 8 * 1024 * 1024:
                continue
            src = open_path(path)
            try:
                res = walk(src)
            finally:
                src.close()
            if not (res.is_dicom and res.has_meta and res.completed) or res.trailing_length:
                continue
            if res.preamble is None or any(res.preamble):
                continue
            if res.problem_codes - _SKIP_VERDICT_CODES:
                continue
            uid = res.value(0x00080018) or ""
            if not uid or uid in seen or res.meta.get(0x00020002) == "1.2.840.10008.1.3.10":
                continue
            seen.add(uid)
            chosen.append(path)
            if len(chosen) >= limit:
                return chosen
    return chosen


def build_demo_medium(out: Path, *, limit: int = 60) -> Path:
    """Write the demo medium into ``out`` (must not exist or be empty); returns ``out``."""
    from pydicom.fileset import FileSet

    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose an empty folder")
    fs = FileSet()
    added = 0
    for path in real_sample_files(limit):
        try:
            fs.add(str(path))
            added += 1
        except (ValueError, KeyError, AttributeError):
            continue  # pydicom cannot index some files (no Patient ID...): leave them out
    fs.write(str(out))
    extra = out / "EXTRA"
    extra.mkdir()
    for name, (builder, _, _) in HOSTILE.items():
        if name in ("deflate_bomb.dcm", "element_bomb.dcm"):
            continue  # keep the demo small and quick; the tests cover them
        (extra / name).write_bytes(builder())
    (out / "AUTORUN.INF").write_text("[autorun]\nopen=VIEWER.EXE\n", encoding="ascii")
    (out / "VIEWER.EXE").write_bytes(_pe_stub() + bytes(256))
    (out / "INDEX.HTM").write_text("<html><body><h1>Images</h1><script>alert('x')</script>"
                                   "</body></html>", encoding="ascii")
    (out / "README.TXT").write_text(f"Demo outside CD built by RadGuard: {added} real public DICOM "
                                    "files plus crafted hostile files.\n", encoding="ascii")
    return out


def build_iso(folder: Path, image: Path) -> Path:
    """Pack ``folder`` into an ISO 9660 image with Rock Ridge names (pycdlib).

    ISO 9660 names are generated (``D0000001``, ``F0000002``); the real names are in Rock Ridge.
    """
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, rock_ridge="1.09", vol_ident="RADGUARD_DEMO")
    dirs: dict[Path, str] = {Path("."): ""}
    for counter, path in enumerate(sorted(folder.rglob("*")), start=1):
        rel = path.relative_to(folder)
        parent = dirs[rel.parent]
        if path.is_dir():
            iso_path = f"{parent}/D{counter:07d}"
            iso.add_directory(iso_path, rr_name=path.name)
            dirs[rel] = iso_path
        else:
            iso.add_file(str(path), f"{parent}/F{counter:07d}.;1", rr_name=path.name)
    image.parent.mkdir(parents=True, exist_ok=True)
    iso.write(str(image))
    iso.close()
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--iso", type=Path, help="also write an ISO 9660 image of the medium")
    parser.add_argument("--limit", type=int, default=60)
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        print(f"{args.out} exists and is not empty; remove it first", file=sys.stderr)
        return 2
    build_demo_medium(args.out, limit=args.limit)
    if args.iso:
        build_iso(args.out, args.iso)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
