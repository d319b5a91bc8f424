"""Early write-out of an ISO image while the workers are still filling it (Linux).

The image is made durable by one ``fsync`` before it gets its name (:func:`radguard.export.image.
publish`). Left alone, the kernel writes none of the ~300 MB of a typical export before that fsync
(the dirty-page thresholds are far higher), so the export ends with the disk busy and both cores
idle. :class:`Writeback` moves that I/O into the time the workers encrypt: a thread of the
**parent** process (idle while the workers run) asks the kernel to start writing the pages dirtied
so far (``sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)``: initiate, do not wait) each time
another :data:`STEP` bytes of envelopes are reported done. The final fsync stays (it is what
guarantees durability) and then only waits for the tail.

Doing this in the workers (after each envelope) was measured worse: the file system's block
allocation then ran in the workers and cost them 0.2-0.4 s CPU. Here it runs in a thread that
releases the GIL in the system call. Where ``sync_file_range`` does not exist (not Linux), this
does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

__all__ = ["STEP", "Writeback"]

STEP = 32 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2


def _libc_call() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


class Writeback:
    """Start the write-out of ``fd``'s dirty pages every :data:`STEP` bytes reported by
    :meth:`done`; :meth:`close` stops the thread (errors are ignored: the final fsync reports
    any I/O error, it is the durability point)."""

    def __init__(self, fd: int, step: int = STEP):
        self.fd, self.step, self.pending = fd, step, 0
        self._call = _libc_call()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None  # started on the first report, i.e.
        # after the workers were forked (a fork never copies a running thread's locks)

    def _run(self) -> None:
        assert self._call is not None
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop:
                return
            self._call(self.fd, 0, 0, _SYNC_FILE_RANGE_WRITE)

    def done(self, nbytes: int) -> None:
        """``nbytes`` more bytes of the image were written."""
        self.pending += nbytes
        if self.pending >= self.step and self._call is not None:
            self.pending = 0
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="radguard-writeback",
                                                daemon=True)
                self._thread.start()
            self._wake.set()

    def close(self) -> None:
        if self._thread is not None:
            self._stop = True
            self._wake.set()
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Writeback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
