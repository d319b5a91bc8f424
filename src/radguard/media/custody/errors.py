"""Refusals of custody packages (subclasses of :class:`radguard.errors.PackageRefused`).

Every refusal names the package and, where one is at fault, the file and the cause; ``cause`` is a
stable code (``unsigned``, ``unknown-key``, ``bad-signature``, ``manifest-invalid``, ``incomplete``,
``altered``, ``unexpected-file``, ``unreadable``) used in reports and audit messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from radguard.errors import MediaError, PackageRefused

__all__ = ["ManifestInvalid", "PackageProblem", "PackageRefusedDetail", "PackageWriteError"]


class ManifestInvalid(PackageRefused):
    """The manifest cannot be parsed or does not follow the schema."""

    cause = "manifest-invalid"


@dataclass(frozen=True, slots=True)
class PackageProblem:
    """One reason a package is refused: the member at fault, a stable cause code, details."""

    name: str
    cause: str
    detail: str

    def __str__(self) -> str:
        return f"{self.name}: {self.cause} ({self.detail})"


class PackageRefusedDetail(PackageRefused):
    """A package failed verification; ``problems`` lists every member at fault."""

    def __init__(self, message: str, *, subject: str, problems: tuple[PackageProblem, ...],
                 remedy: str | None = None):
        super().__init__(message, subject=subject, remedy=remedy)
        self.problems = problems

    @property
    def causes(self) -> frozenset[str]:
        return frozenset(p.cause for p in self.problems)


class PackageWriteError(MediaError):
    """A package cannot be written (target exists, disk full, permissions)."""
