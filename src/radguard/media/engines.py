"""Optional scanning engines: YARA rules (yara-python) and ClamAV (clamd socket or clamscan).

An engine that is absent or fails is stated in the report (``engines`` and ``media.engine-unavailable``
findings), never hidden.
"""

from __future__ import annotations

import socket
import struct
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from radguard.dicomio.source import ByteSource, MemorySource
from radguard.findings import Finding
from radguard.media import checks

__all__ = ["EngineConfig", "Engines"]

YARA_WINDOW = 32 * 1024 * 1024
YARA_OVERLAP = 64 * 1024
YARA_TIMEOUT = 10
CLAMSCAN_TIMEOUT = 300


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Which engines to use: YARA rule folders (shipped rules always), ClamAV socket or binary."""

    yara: bool = True
    rules_dirs: tuple[str, ...] = ()
    clamd_socket: str = ""
    clamscan: str = ""
    clamav_db: str = ""
    """A ClamAV database file or folder for clamscan (``-d``); empty: clamscan's own default."""
    yara_full: bool = False
    """Also run YARA over pixel data of DICOM files that walked cleanly (slower)."""


@dataclass
class Engines:
    """Engines loaded once per worker process."""

    config: EngineConfig
    rules: Any = None
    status: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, config: EngineConfig) -> Engines:
        eng = cls(config)
        if config.yara:
            try:
                import yara
            except ImportError:
                eng.status["yara"] = "not installed (pip install 'radguard[yara]')"
            else:
                files: dict[str, str] = {}
                shipped = resources.files("radguard.data.yara")
                for item in shipped.iterdir():
                    if item.name.endswith((".yar", ".yara")):
                        files[f"radguard:{item.name}"] = str(item)
                for d in config.rules_dirs:
                    for p in sorted(Path(d).glob("**/*.yar*")):
                        files[f"local:{p.relative_to(d)}"] = str(p)
                try:
                    eng.rules = yara.compile(filepaths=files)
                    eng.status["yara"] = f"yara {yara.__version__}, {len(files)} rule files"
                except yara.Error as exc:
                    eng.status["yara"] = f"rules failed to compile: {exc}"
        else:
            eng.status["yara"] = "disabled"
        if config.clamd_socket:
            eng.status["clamav"] = f"clamd at {config.clamd_socket}"
        elif config.clamscan:
            eng.status["clamav"] = f"clamscan at {config.clamscan}" + (
                f", database {config.clamav_db}" if config.clamav_db else "")
        else:
            eng.status["clamav"] = "not configured: files were not checked by an antivirus"
        return eng

    def scan(self, rel: str, src: ByteSource, local_path: str | None,
             skip: tuple[int, int] | None = None) -> list[Finding]:
        """Run the configured engines on one file.

        ``skip`` is a byte range (start, end) YARA need not read: the pixel data of a DICOM file
        that walked cleanly (compressed or raw image samples, where the shipped rules have nothing
        to find and which cost most of the bytes). ClamAV always sees the whole file.
        """
        out: list[Finding] = []
        if self.rules is not None:
            if skip is not None and not self.config.yara_full:
                out.extend(self._yara_ranges(rel, src, [(0, skip[0]), (skip[1], src.size)]))
            else:
                out.extend(self._yara_ranges(rel, src, [(0, src.size)]))
        if self.config.clamd_socket:
            out.extend(self._clamd(rel, src))
        elif self.config.clamscan:
            out.extend(self._clamscan(rel, local_path, src))
        return out

    def _yara_ranges(self, rel: str, src: ByteSource, ranges: list[tuple[int, int]]
                     ) -> list[Finding]:
        """YARA over byte ranges, in windows so memory stays flat (YARA maps whole files)."""
        import yara

        matches = []
        seen: set[str] = set()
        try:
            for start, end in ranges:
                if end <= start:
                    continue
                if start == 0 and end == src.size and isinstance(src, MemorySource):
                    found = list(self.rules.match(data=src.data, timeout=YARA_TIMEOUT))
                else:
                    found = []
                    pos = start
                    while pos < end:
                        window = src.read_at(pos, min(YARA_WINDOW + YARA_OVERLAP, end - pos))
                        found.extend(self.rules.match(data=window, timeout=YARA_TIMEOUT))
                        pos += YARA_WINDOW
                for m in found:
                    if m.rule not in seen:
                        seen.add(m.rule)
                        matches.append(m)
        except yara.Error as exc:
            return [checks.check("media.engine-unavailable").finding(f"YARA failed: {exc}",
                                                                      path=rel, engine="yara")]
        return [
            checks.check("media.yara-match").finding(
                f"YARA rule {m.rule}: {m.meta.get('description', '')}".rstrip(": "), path=rel,
                rule=m.rule, namespace=m.namespace)
            for m in matches
        ]

    def _clamd(self, rel: str, src: ByteSource) -> list[Finding]:
        """Stream the file to clamd with INSTREAM (clamd's documented protocol)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(60)
                sock.connect(self.config.clamd_socket)
                sock.sendall(b"zINSTREAM\0")
                pos = 0
                while pos < src.size:
                    chunk = src.read_at(pos, 1024 * 1024)
                    sock.sendall(struct.pack(">I", len(chunk)) + chunk)
                    pos += len(chunk)
                sock.sendall(struct.pack(">I", 0))
                reply = sock.recv(4096).rstrip(b"\0").decode("utf-8", "replace")
        except OSError as exc:
            return [checks.check("media.engine-unavailable").finding(
                f"clamd unavailable: {exc}", path=rel, engine="clamav")]
        if reply.endswith("FOUND"):
            name = reply.split(":", 1)[-1].rsplit(" ", 1)[0].strip()
            return [checks.check("media.antivirus-detection").finding(f"ClamAV: {name}", path=rel,
                                                                      signature=name)]
        if not reply.endswith("OK"):
            return [checks.check("media.engine-unavailable").finding(f"clamd: {reply}", path=rel,
                                                                      engine="clamav")]
        return []

    def _clamscan(self, rel: str, local_path: str | None, src: ByteSource) -> list[Finding]:
        """clamscan on the file, or on its bytes through stdin (``-``) when the file has no path of
        its own (a member of an ISO image): ClamAV sees every file either way."""
        argv = [self.config.clamscan, "--no-summary", "--stdout"]
        if self.config.clamav_db:
            argv += ["-d", self.config.clamav_db]
        try:
            if local_path is not None:
                proc = subprocess.run([*argv, local_path], capture_output=True, text=True,
                                      timeout=CLAMSCAN_TIMEOUT, check=False)
            else:
                proc = self._clamscan_stdin([*argv, "-"], src)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [checks.check("media.engine-unavailable").finding(f"clamscan failed: {exc}",
                                                                      path=rel, engine="clamav")]
        if proc.returncode == 1:
            line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "FOUND"
            name = line.split(":", 1)[-1].replace("FOUND", "").strip()
            return [checks.check("media.antivirus-detection").finding(f"ClamAV: {name}", path=rel,
                                                                      signature=name)]
        if proc.returncode != 0:
            return [checks.check("media.engine-unavailable").finding(
                f"clamscan exit {proc.returncode}: {proc.stderr.strip()[:200]}", path=rel,
                engine="clamav")]
        return []

    @staticmethod
    def _clamscan_stdin(argv: list[str], src: ByteSource) -> subprocess.CompletedProcess[str]:
        """Feed ``src`` to clamscan's stdin in 1 MiB chunks (memory stays flat)."""
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as proc:
            assert proc.stdin is not None
            try:
                pos = 0
                while pos < src.size:
                    chunk = src.read_at(pos, 1024 * 1024)
                    if not chunk:
                        break
                    proc.stdin.write(chunk)
                    pos += len(chunk)
            except BrokenPipeError:
                pass
            try:
                out, err = proc.communicate(timeout=CLAMSCAN_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
        return subprocess.CompletedProcess(argv, proc.returncode, out.decode("utf-8", "replace"),
                                           err.decode("utf-8", "replace"))
