"""RadGuard's persistence layer: SQLAlchemy 2 models, packaged Alembic migrations, and a small
repository API of plain values.

SQLite by default (``Settings.db_url``), any SQLAlchemy URL accepted; PostgreSQL runs the same
models and migrations. Typical use::

    from radguard.store import ItemIn, Store, record_scan

    with Store.open(settings.db_url) as store:
        scan_id = record_scan(store, "media.scan", "/media/cdrom", items=[ItemIn("IMG0001")])

Every error is a :class:`radguard.errors.StoreError` with the URL (password masked) and a remedy.
"""

from __future__ import annotations

from radguard.store.db import Store
from radguard.store.migrate import current_revision, head_revision, upgrade
from radguard.store.repo import (
    AssetOut,
    FindingDiff,
    ItemIn,
    ItemOut,
    JobOut,
    ScanOut,
    StoredFinding,
    add_findings,
    diff_findings,
    findings_for_asset,
    findings_for_scan,
    fingerprint,
    get_asset,
    get_job,
    get_scan,
    items_for_scan,
    list_assets,
    list_scans,
    record_scan,
    save_job,
    upsert_asset,
)

__all__ = [
    "AssetOut",
    "FindingDiff",
    "ItemIn",
    "ItemOut",
    "JobOut",
    "ScanOut",
    "Store",
    "StoredFinding",
    "add_findings",
    "current_revision",
    "diff_findings",
    "findings_for_asset",
    "findings_for_scan",
    "fingerprint",
    "get_asset",
    "get_job",
    "get_scan",
    "head_revision",
    "items_for_scan",
    "list_assets",
    "list_scans",
    "record_scan",
    "save_job",
    "upgrade",
    "upsert_asset",
]
