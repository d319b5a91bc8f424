"""DCMTK peers for the assessment tests, started by absolute path.

``tests/support/peers.start_storescp`` resolves ``storescp`` on PATH, which under ``uv run`` finds
pynetdicom's own ``storescp`` console script first; these helpers use the Debian binaries in
/usr/bin explicitly. Loopback only; ``TCP_NODELAY=1`` in the environment (peers-measured.md).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.peers import free_port, peer_env, stop_process, wait_port

DCMTK_BIN = Path("/usr/bin")


def dcmtk(name: str) -> str:
    path = DCMTK_BIN / name
    if not os.access(path, os.X_OK):
        pytest.skip(f"DCMTK {name} not installed (Debian package dcmtk)")
    return str(path)


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        stop_process(self.proc)


def start(binary: str, args: Sequence[str], folder: Path, *, port: int | None = None,
          cwd: Path | None = None) -> Proc:
    """Start ``binary args... port`` (port appended unless ``port`` is in ``args`` already)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = open(folder / f"{Path(binary).name}-{port}.log", "wb")  # noqa: SIM115
    argv = [dcmtk(binary), *args]
    if str(port) not in args:
        argv.append(str(port))
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=peer_env(),
                            cwd=str(cwd or folder))
    peer = Proc(proc, port)
    try:
        wait_port(port, proc=proc, timeout=15)
    except Exception:
        peer.stop()
        raise
    return peer


def storescp(folder: Path, *extra: str, aet: str = "STORESCP") -> Proc:
    """``storescp`` accepting any SOP class, storing into ``folder``/in."""
    (folder / "in").mkdir(parents=True, exist_ok=True)
    return start("storescp", ["-aet", aet, "-od", str(folder / "in"), "--promiscuous", *extra],
                 folder)


def tls_storescp(folder: Path, key: Path, cert: Path, profile: str, *extra: str) -> Proc:
    """``storescp +tls`` under ``profile`` (e.g. ``--profile-bcp195-nd``)."""
    return storescp(folder, "+tls", str(key), str(cert), profile, *extra)
