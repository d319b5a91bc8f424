"""Burned-in text detection with Tesseract (Debian ``tesseract-ocr``), for Clean Pixel Data (E.3.1).

A frame is rendered to an 8-bit grey PNG (scaled up for small screens, where scanners write text a few
pixels high), given to ``tesseract IMAGE stdout --psm 11 tsv`` (sparse text: find as much text as
possible in no particular order) in a subprocess with a time limit and one thread, and the word boxes
with enough confidence are returned in frame coordinates. Nothing leaves the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

__all__ = ["Box", "OcrUnavailable", "detect_text", "render_gray", "tesseract_path"]

MIN_CONFIDENCE = 40.0
MIN_CHARS = 2


class OcrUnavailable(Exception):
    """Tesseract is missing, failed or ran out of time; the message says which."""


@dataclass(frozen=True, slots=True)
class Box:
    """A region ``[x, x+width) x [y, y+height)`` of a frame."""

    x: int
    y: int
    width: int
    height: int

    def grow(self, margin: int, cols: int, rows: int) -> Box:
        x0, y0 = max(0, self.x - margin), max(0, self.y - margin)
        x1 = min(cols, self.x + self.width + margin)
        y1 = min(rows, self.y + self.height + margin)
        return Box(x0, y0, x1 - x0, y1 - y0)


def tesseract_path() -> str | None:
    return shutil.which("tesseract")


def render_gray(frame: NDArray[np.generic]) -> NDArray[np.uint8]:
    """Any frame (grey or colour, any bit depth) -> 8-bit grey, full range."""
    data = frame.astype(np.float64)
    if data.ndim == 3:
        data = data[..., :3].mean(axis=2)
    lo, hi = float(data.min()), float(data.max())
    if hi <= lo:
        return np.zeros(data.shape, dtype=np.uint8)
    return ((data - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def detect_text(frame: NDArray[np.generic], *, timeout: float = 20.0) -> list[Box]:
    """Word boxes Tesseract finds in ``frame``; raises :class:`OcrUnavailable` when it cannot run."""
    binary = tesseract_path()
    if binary is None:
        raise OcrUnavailable("tesseract is not installed (Debian package tesseract-ocr)")
    gray = render_gray(frame)
    rows, cols = gray.shape
    scale = 2 if max(rows, cols) < 1200 else 1
    image = Image.fromarray(gray)
    if scale != 1:
        image = image.resize((cols * scale, rows * scale), Image.Resampling.BICUBIC)
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    with tempfile.TemporaryDirectory(prefix="radguard-ocr-") as tmp:
        png = os.path.join(tmp, "frame.png")
        image.save(png)
        try:
            proc = subprocess.run([binary, png, "stdout", "--psm", "11", "tsv"],
                                  capture_output=True, timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired as exc:
            raise OcrUnavailable(f"tesseract took longer than {timeout:g} s") from exc
        except OSError as exc:
            raise OcrUnavailable(f"tesseract could not run: {exc.strerror}") from exc
    if proc.returncode != 0:
        raise OcrUnavailable(f"tesseract failed (exit {proc.returncode})")
    return _parse_tsv(proc.stdout.decode("utf-8", "replace"), scale)


def _parse_tsv(text: str, scale: int) -> list[Box]:
    boxes: list[Box] = []
    for line in text.splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) < 12:
            continue
        try:
            conf = float(parts[10])
            left, top, width, height = (int(v) for v in parts[6:10])
        except ValueError:
            continue
        word = parts[11].strip()
        if conf < MIN_CONFIDENCE or sum(ch.isalnum() for ch in word) < MIN_CHARS:
            continue
        boxes.append(Box(left // scale, top // scale, -(-width // scale), -(-height // scale)))
    return boxes
