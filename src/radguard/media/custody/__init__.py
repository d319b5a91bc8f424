"""custody: signed packages that carry sanitised files across the air gap.

The offline media station writes a package (:class:`PackageWriter`) with a canonical JSON manifest
(:class:`Manifest`) signed by its Ed25519 key (:func:`sign_manifest`); the networked side checks it with
:func:`verify_package` against its trust store before anything is sent.
"""

from __future__ import annotations

from radguard.media.custody.errors import (
    ManifestInvalid,
    PackageProblem,
    PackageRefusedDetail,
    PackageWriteError,
)
from radguard.media.custody.manifest import (
    SCHEMA,
    Excluded,
    Manifest,
    ManifestFile,
    canonical_json,
    parse_manifest,
)
from radguard.media.custody.package import PackageWriter, member_name, open_package
from radguard.media.custody.signing import check_signature, sign_manifest
from radguard.media.custody.verify import VerifiedPackage, check_member, verify_package

__all__ = [
    "SCHEMA",
    "Excluded",
    "Manifest",
    "ManifestFile",
    "ManifestInvalid",
    "PackageProblem",
    "PackageRefusedDetail",
    "PackageWriteError",
    "PackageWriter",
    "VerifiedPackage",
    "canonical_json",
    "check_member",
    "check_signature",
    "member_name",
    "open_package",
    "parse_manifest",
    "sign_manifest",
    "verify_package",
]
