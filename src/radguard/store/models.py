"""The store's tables, as SQLAlchemy 2 typed declarative models.

The same models serve SQLite (default) and PostgreSQL. JSON columns use :data:`JSONType`
(``JSON`` on SQLite, ``JSONB`` on PostgreSQL); timestamps use :class:`UTCDateTime`, which
accepts only tz-aware values and always returns tz-aware UTC, whatever the backend stores.

Any change here needs a new migration in ``migrations/versions``; ``tests/store`` fails when the
models and the migrations disagree. Callers outside ``radguard.store`` should prefer the
functions of :mod:`radguard.store.repo`, which return frozen values and never leak a session.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeEngine

__all__ = [
    "NAMING_CONVENTION",
    "Asset",
    "Base",
    "FindingRecord",
    "JSONType",
    "Job",
    "Scan",
    "ScanItem",
    "UTCDateTime",
    "utcnow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names are derived, so migrations name them the same way on every backend."""

JSONType: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")
"""JSON that works on SQLite (text) and PostgreSQL (``jsonb``)."""


def utcnow() -> datetime:
    """The current time, tz-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back tz-aware UTC.

    SQLite has no time-zone type, so values are stored there as naive UTC text; PostgreSQL stores
    ``timestamp with time zone``. A naive ``datetime`` is refused (``ValueError``): its zone is
    unknown, and guessing would corrupt the order of events.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; use a tz-aware UTC value")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every RadGuard table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Scan(Base):
    """One run of a subsystem over one subject: a media scan, an assessment, a de-identification,
    an import or an export.

    ``kind`` is a dotted name (``media.scan``, ``assess``, ``deid``, ``import``, ``export``);
    ``subject`` is what was worked on (a path, a mount point, a target); ``verdict`` is the overall
    verdict label where the kind has one (:class:`radguard.findings.Verdict`); ``summary`` holds
    small JSON-safe counters, never PHI.
    """

    __tablename__ = "scans"
    __table_args__ = (Index(None, "kind", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(32))
    verdict: Mapped[str | None] = mapped_column(String(32), nullable=True)
    operator: Mapped[str] = mapped_column(String(255))
    station: Mapped[str] = mapped_column(String(255))
    summary: Mapped[dict[str, Any]] = mapped_column(JSONType)
    radguard_version: Mapped[str] = mapped_column(String(64))

    items: Mapped[list[ScanItem]] = relationship(
        back_populates="scan", cascade="all, delete-orphan", passive_deletes=True
    )


class ScanItem(Base):
    """The result for one file (media scan, de-identification) or one node (assessment)."""

    __tablename__ = "scan_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scan_id: Mapped[int] = mapped_column(
        ForeignKey("scans.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    verdict: Mapped[str | None] = mapped_column(String(32), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)

    scan: Mapped[Scan] = relationship(back_populates="items")


class FindingRecord(Base):
    """A stored :class:`radguard.findings.Finding`, attached to a scan, an item and/or an asset.

    ``fingerprint`` is a stable hash of the check id, the asset, the path and the evidence details
    (see :func:`radguard.store.repo.fingerprint`): the same problem seen by two runs has the same
    fingerprint, which is how later runs tell new findings from fixed ones. ``asset`` is the asset
    label the finding itself carried (``Finding.asset``); ``asset_id`` links to the inventory.
    """

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scan_id: Mapped[int | None] = mapped_column(
        ForeignKey("scans.id", ondelete="CASCADE"), nullable=True, index=True
    )
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("scan_items.id", ondelete="CASCADE"), nullable=True, index=True
    )
    asset_id: Mapped[int | None] = mapped_column(
        ForeignKey("assets.id", ondelete="SET NULL"), nullable=True, index=True
    )
    check_id: Mapped[str] = mapped_column(String(128))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    offset: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType)
    controls: Mapped[list[str]] = mapped_column(JSONType)
    remedy: Mapped[str] = mapped_column(Text)
    asset: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)


class Asset(Base):
    """An inventory asset: a DICOM node, a medium, a device. ``(kind, name)`` is unique."""

    __tablename__ = "assets"
    __table_args__ = (UniqueConstraint("kind", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    address: Mapped[str | None] = mapped_column(String(255), nullable=True)
    ae_title: Mapped[str | None] = mapped_column(String(16), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)


class Job(Base):
    """Journal entry of a resumable job (an import, a bulk de-identification...).

    ``key`` identifies the job across restarts (e.g. the hash of a custody package), so a job that
    is started again finds its own ``progress`` and carries on instead of repeating work.
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255), unique=True)
    state: Mapped[str] = mapped_column(String(32))
    progress: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
