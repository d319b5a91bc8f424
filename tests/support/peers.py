"""Real peers for tests, started on loopback ports the tests pick.

Orthanc (Debian ``orthanc``, ``orthanc-dicomweb``) and DCMTK (``storescp``, ``dcmqrscp``) run as child
processes with their own configuration and storage in a temporary folder. Nothing here contacts any
address other than 127.0.0.1. ``TCP_NODELAY=1`` is set for DCMTK-based peers (peers-measured.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
LOOPBACK = "127.0.0.1"


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a peer process, then kill it if it does not exit within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something listens on ``127.0.0.1:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"peer exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {LOOPBACK}:{port} after {timeout} s")


SYSTEM_PATH = "/usr/bin:/usr/sbin:/bin:/sbin"


def require(binary: str) -> str:
    """Path of the system's ``binary`` (Debian's, not a same-named Python entry point such as
    pynetdicom's ``storescp`` in the virtual environment), or skip the test with the reason."""
    path = shutil.which(binary, path=SYSTEM_PATH) or shutil.which(binary) or (
        binary if os.path.exists(binary) else None)
    if path is None:
        pytest.skip(f"{binary} not installed (make test installs the Debian packages)")
    return path


def peer_env() -> dict[str, str]:
    env = dict(os.environ)
    env["TCP_NODELAY"] = "1"
    return env


@dataclass
class OrthancPeer:
    """A running Orthanc: DICOM on ``dicom_port``, REST/DICOMweb on ``http_port``."""

    proc: subprocess.Popen[bytes]
    dicom_port: int
    http_port: int
    aet: str
    folder: Path
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def rest(self, path: str, *, method: str = "GET", auth: tuple[str, str] | None = None,
             body: bytes | None = None) -> Any:
        """Ask Orthanc's REST API (ground truth for what really arrived)."""
        import httpx

        r = httpx.request(method, self.url + path, auth=auth, content=body, timeout=30)
        r.raise_for_status()
        return r.json() if r.content else None

    def stop(self) -> None:
        stop_process(self.proc)


def start_orthanc(folder: Path, *, aet: str = "ORTHANC", dicomweb: bool = True,
                  overrides: Mapping[str, Any] | None = None) -> OrthancPeer:
    """Start Orthanc with a config in ``folder``; default: open, no auth, loopback only.

    ``overrides`` are merged into the JSON configuration (e.g. ``{"AuthenticationEnabled": True,
    "RegisteredUsers": {...}}`` or ``{"DicomCheckCalledAet": True}``).
    """
    require(ORTHANC)
    folder.mkdir(parents=True, exist_ok=True)
    dicom_port, http_port = free_port(), free_port()
    config: dict[str, Any] = {
        "Name": "radguard-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "DicomAet": aet,
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": True,
        "UnknownSopClassAccepted": True,
        "StorageCompression": False,
        "HttpsCACertificates": "",
        "DicomModalities": {},
        "Plugins": [DICOMWEB_PLUGIN] if dicomweb and os.path.exists(DICOMWEB_PLUGIN) else [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "ConcurrentJobs": 2,
        "LimitFindResults": 0,
    }
    config.update(overrides or {})
    cfg = folder / "orthanc.json"
    cfg.write_text(json.dumps(config, indent=2))
    log = open(folder / "orthanc.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([ORTHANC, str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                            env=peer_env())
    peer = OrthancPeer(proc, dicom_port, http_port, aet, folder, config)
    try:
        wait_port(http_port, proc=proc)
        wait_port(dicom_port, proc=proc)
    except Exception:
        peer.stop()
        raise
    return peer


@dataclass
class DcmtkPeer:
    proc: subprocess.Popen[bytes]
    port: int
    aet: str
    folder: Path

    def stop(self) -> None:
        stop_process(self.proc)


def start_storescp(folder: Path, *, aet: str = "STORESCP", extra: Sequence[str] = (),
                   port: int | None = None) -> DcmtkPeer:
    """Start DCMTK ``storescp`` writing into ``folder`` (``extra`` e.g. TLS options)."""
    binary = require("storescp")
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = open(folder.parent / f"storescp-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([binary, "-aet", aet, "-od", str(folder), "--promiscuous", *extra,
                             str(port)], stdout=log, stderr=subprocess.STDOUT, env=peer_env())
    peer = DcmtkPeer(proc, port, aet, folder)
    try:
        wait_port(port, proc=proc)
    except Exception:
        peer.stop()
        raise
    return peer


@contextlib.contextmanager
def running(peer: OrthancPeer | DcmtkPeer) -> Iterator[Any]:
    try:
        yield peer
    finally:
        peer.stop()
