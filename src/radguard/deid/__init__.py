"""De-identification conforming to DICOM PS3.15 Annex E (Basic Profile and every E.3 option).

Public API::

    from radguard.deid import DeidOptions, deidentify_dataset, deidentify_file, verify_file

    options = DeidOptions.from_names(["tcia", "retain-uids"], key=project_key_bytes)
    changes = deidentify_dataset(ds_copy, options)          # in place, returns DeidChanges
    report = deidentify_file(src, dst, options)             # bounded read, atomic write
    findings = verify_file(dst, original=src)               # residual identifiers

Module map (imports go down the list): ``tables`` (versioned data) -> ``options`` -> ``actions``
(Table E.1-1 compiled per options, compound actions by IOD Type) -> ``pseudonym`` (keyed UIDs, names,
date offsets) -> ``scrub`` (cleaning free text) -> ``engine`` (the attribute pass at any depth) ->
``pixels``/``ocr`` (Clean Pixel Data) -> ``marks`` (what a de-identifier writes) -> ``encrypt``
(Encrypted Attributes Sequence) -> ``dataset`` -> ``files`` -> ``verify`` -> ``batch`` (folders,
workers, audit).
"""

from __future__ import annotations

from radguard.deid.batch import audit_run, deidentify_tree, project_key, verify_tree
from radguard.deid.dataset import deidentify_dataset
from radguard.deid.encrypt import decrypt_attributes
from radguard.deid.errors import (
    DeidError,
    DeidKeyError,
    DeidOptionError,
    DeidTableError,
    EncryptionError,
    MappingFileError,
)
from radguard.deid.files import deidentify_file
from radguard.deid.options import DeidOptions, Option, load_mapping
from radguard.deid.report import Change, DeidChanges, DeidRunReport, FileDeidReport, FileStatus
from radguard.deid.tables import presets, table_versions
from radguard.deid.verify import verify_file

__all__ = [
    "Change",
    "DeidChanges",
    "DeidError",
    "DeidKeyError",
    "DeidOptionError",
    "DeidOptions",
    "DeidRunReport",
    "DeidTableError",
    "EncryptionError",
    "FileDeidReport",
    "FileStatus",
    "MappingFileError",
    "Option",
    "audit_run",
    "decrypt_attributes",
    "deidentify_dataset",
    "deidentify_file",
    "deidentify_tree",
    "load_mapping",
    "presets",
    "project_key",
    "table_versions",
    "verify_file",
    "verify_tree",
]
