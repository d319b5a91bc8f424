"""Typed settings, declared once with name, default and help.

Sources, weakest first: the defaults below, the config file (TOML; ``$RADGUARD_HOME/radguard.toml`` or
``--config``), ``RADGUARD_<NAME>`` environment variables, then CLI options. Settings are read at the edge
(the CLI or the web app) and passed down as a frozen :class:`Settings` value; the library keeps no
mutable module globals.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from radguard.errors import ConfigError

__all__ = ["SETTINGS", "Setting", "Settings", "default_home", "load_settings"]


@dataclass(frozen=True, slots=True)
class Setting:
    """Declaration of one setting: its name (also the TOML key), type, default and help text."""

    name: str
    type: type
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("home", str, "", "Data directory (keys, journal, quarantine, SQLite store). "
            "Default: $RADGUARD_HOME or ~/.local/share/radguard."),
    Setting("database_url", str, "", "SQLAlchemy URL of the store; default sqlite in the data directory."),
    Setting("station", str, "", "Name of this station in audit messages and custody manifests; "
            "default: the host name."),
    Setting("operator", str, "", "Operator recorded in audit messages; default: the login name."),
    Setting("site", str, "", "Audit Enterprise Site ID (PS3.15 A.5.1) of the department."),
    Setting("audit_syslog", str, "", "Audit repository to send to: udp://host:port, "
            "tcp://host:port or tls://host:port. Empty: local journal only."),
    Setting("audit_syslog_ca", str, "", "CA bundle (PEM) to verify a tls:// audit repository."),
    Setting("audit_syslog_cert", str, "", "Client certificate (PEM) for a tls:// audit repository."),
    Setting("audit_syslog_key", str, "", "Client key (PEM) for a tls:// audit repository."),
    Setting("workers", int, 0, "Worker processes for bulk work; 0 = one per core."),
    Setting("max_file_size", int, 4 * 1024**3, "Bounded reader: largest file read (bytes)."),
    Setting("max_depth", int, 64, "Bounded reader: deepest sequence nesting."),
    Setting("max_elements", int, 1_000_000, "Bounded reader: most data elements in one file."),
    Setting("max_value_length", int, 2 * 1024**3, "Bounded reader: longest single value (bytes)."),
    Setting("max_inflated_size", int, 512 * 1024**2, "Bounded reader: largest inflated data set "
            "(Deflated transfer syntax)."),
    Setting("max_inflate_ratio", int, 200, "Bounded reader: largest inflate ratio."),
    Setting("max_seconds", float, 30.0, "Bounded reader: time allowed for one file (seconds)."),
    Setting("rules_dir", str, "", "Extra YARA rules directory for media scans."),
    Setting("clamd_socket", str, "", "clamd UNIX socket to use for media scans (ClamAV)."),
    Setting("clamscan", str, "", "Path of clamscan to use when no clamd socket is configured."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def default_home() -> Path:
    """``$RADGUARD_HOME`` if set, else ``$XDG_DATA_HOME/radguard`` or ``~/.local/share/radguard``."""
    env = os.environ.get("RADGUARD_HOME")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "radguard"


@dataclass(frozen=True, slots=True)
class Settings:
    """The resolved settings (see :data:`SETTINGS` for meanings)."""

    home: str = ""
    database_url: str = ""
    station: str = ""
    operator: str = ""
    site: str = ""
    audit_syslog: str = ""
    audit_syslog_ca: str = ""
    audit_syslog_cert: str = ""
    audit_syslog_key: str = ""
    workers: int = 0
    max_file_size: int = 4 * 1024**3
    max_depth: int = 64
    max_elements: int = 1_000_000
    max_value_length: int = 2 * 1024**3
    max_inflated_size: int = 512 * 1024**2
    max_inflate_ratio: int = 200
    max_seconds: float = 30.0
    rules_dir: str = ""
    clamd_socket: str = ""
    clamscan: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def home_path(self) -> Path:
        return Path(self.home) if self.home else default_home()

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home_path / 'radguard.db'}"

    @property
    def station_name(self) -> str:
        if self.station:
            return self.station
        import socket

        return socket.gethostname() or "radguard"

    @property
    def operator_name(self) -> str:
        if self.operator:
            return self.operator
        import getpass

        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"

    @property
    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else max(1, os.cpu_count() or 1)

    def with_overrides(self, **values: Any) -> Settings:
        """Return a copy with the non-``None`` values applied (CLI options)."""
        clean = {k: _coerce(k, v) for k, v in values.items() if v is not None}
        return replace(self, **clean)

    def section(self, name: str) -> Mapping[str, Any]:
        """A table of the config file that is not a plain setting (``[destinations]``, ...)."""
        value = self.extra.get(name, {})
        return value if isinstance(value, Mapping) else {}


def _coerce(name: str, value: Any) -> Any:
    decl = _BY_NAME.get(name)
    if decl is None:
        raise ConfigError(f"unknown setting {name!r}", remedy=f"use one of {sorted(_BY_NAME)}")
    try:
        if decl.type is bool and isinstance(value, str):
            return value.strip().lower() in {"1", "true", "yes", "on"}
        return decl.type(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"setting {name!r} must be of type {decl.type.__name__}, got {value!r}",
            remedy="fix the config file or the RADGUARD_ environment variable",
        ) from exc


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Resolve settings from defaults, config file, environment and ``overrides``.

    Raises
    ------
    ConfigError
        The config file cannot be parsed or a value has the wrong type.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    home = Path(env["RADGUARD_HOME"]) if env.get("RADGUARD_HOME") else default_home()
    path = config_file or (Path(env["RADGUARD_CONFIG"]) if env.get("RADGUARD_CONFIG") else None)
    if path is None and (home / "radguard.toml").is_file():
        path = home / "radguard.toml"
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file: {exc.strerror}", subject=str(path),
                              remedy="check the path given with --config or RADGUARD_CONFIG") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file is not valid TOML: {exc}", subject=str(path),
                              remedy="fix the syntax; see README 'Configuration'") from exc
        for key, value in data.items():
            if isinstance(value, dict):
                extra[key] = value
            else:
                values[key] = _coerce(key, value)
    for decl in SETTINGS:
        env_value = env.get(f"RADGUARD_{decl.name.upper()}")
        if env_value is not None and env_value != "":
            values[decl.name] = _coerce(decl.name, env_value)
    if "home" not in values:
        values["home"] = str(home)
    settings = Settings(**values, extra=extra)
    return settings.with_overrides(**overrides)


def setting_names() -> list[str]:
    """Names of all settings, for help text and documentation."""
    return [f.name for f in fields(Settings) if f.name != "extra"]
