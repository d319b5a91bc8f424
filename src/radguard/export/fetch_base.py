"""Shared pieces of fetching studies from PACS for an export: errors, limits and the staging sink.

A fetch writes what a PACS sends into a private staging folder (see :mod:`radguard.export.fetch`)
through a :class:`Sink`, which names the files itself (``000001.dcm``..., never a name the PACS
chose), creates each one ``0600`` with ``O_EXCL``, and stops the transfer as soon as the configured
total size or instance count is crossed (:class:`FetchLimits`; config table ``[fetch]`` with
``max_bytes``, ``max_instances``, ``timeout``).

::

    ExportError
     └── FetchFailed            a study could not be fetched from a PACS (nothing is exported)
          ├── StudyNotFound     the PACS does not hold the study
          ├── SourceUnavailable unreachable, association refused/aborted, HTTP error, time-out
          ├── FetchIncomplete   the PACS sent fewer instances than it holds (partial C-GET / WADO)
          ├── FetchRefused      an instance failed the checks (bounded reader, wrong study)
          └── FetchTooLarge     the study crosses ``max_bytes`` or ``max_instances``
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from radguard.config import Settings
from radguard.export.errors import ExportError

__all__ = [
    "FetchFailed",
    "FetchIncomplete",
    "FetchLimits",
    "FetchRefused",
    "FetchTooLarge",
    "Sink",
    "SourceUnavailable",
    "StudyNotFound",
]


class FetchFailed(ExportError):
    """A study could not be fetched from a PACS; the export writes nothing."""


class StudyNotFound(FetchFailed):
    """The PACS answered that it holds no instance of the study."""


class SourceUnavailable(FetchFailed):
    """The PACS could not be reached, refused or aborted the association, answered an HTTP error,
    or did not finish within the time-out."""


class FetchIncomplete(FetchFailed):
    """The PACS sent fewer instances than it reported (failed C-STORE sub-operations, a cut
    multipart stream, instances listed by C-FIND/QIDO-RS that never came)."""


class FetchRefused(FetchFailed):
    """A fetched instance is not a sound PS3.10 file, or belongs to another study."""


class FetchTooLarge(FetchFailed):
    """The fetch crossed ``max_bytes`` or ``max_instances`` of the ``[fetch]`` table."""


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """Bounds of one fetch (all studies of one export together).

    ``max_bytes`` of fetched files (default 8 GiB, about two DVDs), ``max_instances`` (default
    100,000), ``timeout`` seconds for the whole fetch (default 3,600) and ``connect_timeout``
    seconds to reach the PACS and for each answer (default 30).
    """

    max_bytes: int = 8 * 1024**3
    max_instances: int = 100_000
    timeout: float = 3600.0
    connect_timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchLimits:
        """Read the ``[fetch]`` table of the config file (missing keys keep the defaults)."""
        table: Mapping[str, Any] = settings.section("fetch")
        base = cls()
        try:
            return cls(int(table.get("max_bytes", base.max_bytes)),
                       int(table.get("max_instances", base.max_instances)),
                       float(table.get("timeout", base.timeout)),
                       float(table.get("connect_timeout", base.connect_timeout)))
        except (TypeError, ValueError) as exc:
            raise FetchFailed(f"bad [fetch] setting: {exc}", subject="config file",
                              remedy="max_bytes and max_instances are integers, timeout and "
                              "connect_timeout are seconds") from exc


class Sink:
    """Writes fetched instances into ``folder`` under names of its own, within ``limits``.

    ``source`` (the PACS label) and ``study`` name the transfer in errors. Not thread-safe: one
    transfer at a time.
    """

    def __init__(self, folder: Path, limits: FetchLimits, source: str):
        self.folder = folder
        self.limits = limits
        self.source = source
        self.study = ""
        self.count = 0
        self.bytes = 0
        self.paths: list[Path] = []

    def too_large(self, what: str) -> FetchTooLarge:
        return FetchTooLarge(f"the fetch from {self.source} exceeds {what}",
                             subject=f"study {self.study}",
                             remedy="export fewer studies at once, or raise max_bytes / "
                             "max_instances in the [fetch] table of the config file")

    def open(self) -> BinaryIO:
        """A new, empty file (``0600``, never an existing one) for the next instance."""
        if self.count >= self.limits.max_instances:
            raise self.too_large(f"max_instances = {self.limits.max_instances}")
        self.count += 1
        path = self.folder / f"{self.count:06d}.dcm"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o600)
        self.paths.append(path)
        return os.fdopen(fd, "wb")

    def account(self, size: int) -> None:
        """Count ``size`` more bytes; raise :class:`FetchTooLarge` past ``max_bytes``."""
        self.bytes += size
        if self.bytes > self.limits.max_bytes:
            raise self.too_large(f"max_bytes = {self.limits.max_bytes:,}")

    def put(self, data: bytes) -> Path:
        """Store one whole instance."""
        self.account(len(data))
        with self.open() as f:
            f.write(data)
        return self.paths[-1]
