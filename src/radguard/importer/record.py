"""The import's job record in the store, opened in the background while the instances are sent.

Opening the store can take a second (importing SQLAlchemy, connecting, checking or applying
migrations); nothing of the import depends on it until the end, so :class:`JobRecorder` opens it in
a thread once :meth:`JobRecorder.start` is called and :meth:`JobRecorder.save` writes the job record
(``media.import``) when the report is ready. An error of opening is raised by :meth:`save`, where it
would have been raised before.

The importer starts it when sending begins, not while the package is verified: verification is
CPU-bound (read + SHA-256 on every core) and on the critical path, while during the send the
process mostly waits for the destination. Measured (bench/results/import.md, 2,067 files): verify
0.54-0.73 s alone, 0.95-1.31 s with the store's imports running beside it. A refused package never
opens the store.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from radguard.importer.interface import ImportReport

if TYPE_CHECKING:
    from radguard.store import Store

__all__ = ["JobRecorder"]


class JobRecorder:
    """Opens ``db_url`` in a background thread after :meth:`start`; :meth:`save` once,
    :meth:`close` always."""

    def __init__(self, db_url: str):
        self._db_url = db_url
        self._store: Store | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the store in a background thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._open, args=(self._db_url,),
                                            name="radguard-store-open", daemon=True)
            self._thread.start()

    def _open(self, db_url: str) -> None:
        try:
            from radguard.store import Store

            self._store = Store.open(db_url)
        except BaseException as exc:  # re-raised by save() in the caller's thread
            self._error = exc

    def save(self, report: ImportReport) -> None:
        """Record the job (state complete/incomplete, counts, package)."""
        from radguard.store.repo import save_job

        self.start()
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._store is not None
        save_job(self._store, "media.import", f"import:{report.package_id}:{report.destination}",
                 state="complete" if report.complete else "incomplete",
                 progress={"counts": report.counts, "package": report.package})

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self._store is not None:
            self._store.close()
            self._store = None
