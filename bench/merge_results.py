"""Write bench/RESULTS.md: the summary (bench/results/SUMMARY.md) then every area's measured results.

Usage: ``uv run python bench/merge_results.py``. Each area's numbers live in bench/results/<area>.md,
written by the engineer who ran bench/<area>.py; this only concatenates them in a fixed order.
"""

from __future__ import annotations

from pathlib import Path

ORDER = ["scan", "import", "deid", "export", "assess", "audit"]


def main() -> None:
    here = Path(__file__).parent
    results = here / "results"
    parts = [(results / "SUMMARY.md").read_text(encoding="utf-8").rstrip() + "\n"]
    names = ORDER + sorted(p.stem for p in results.glob("*.md")
                           if p.stem not in ORDER and p.stem != "SUMMARY")
    for name in names:
        path = results / f"{name}.md"
        if path.exists():
            text = path.read_text(encoding="utf-8").rstrip()
            # Demote headings one level so each area sits under the summary.
            lines = [("#" + line) if line.startswith("#") else line for line in text.splitlines()]
            parts.append("\n".join(lines) + "\n")
    (here / "RESULTS.md").write_text("\n\n".join(parts), encoding="utf-8")


if __name__ == "__main__":
    main()
