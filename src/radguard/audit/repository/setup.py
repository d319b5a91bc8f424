"""Building the repository's parts from the settings (the ``[audit]`` section of the config file).

Keys read (all optional)::

    [audit]
    udp = "0.0.0.0:5514"          # listeners used when serve gets no --udp/--tcp/--tls
    tcp = "0.0.0.0:5514"
    tls = "0.0.0.0:6514"
    cert = "/etc/radguard/audit.pem"
    key = "/etc/radguard/audit.key"
    client_ca = "/etc/radguard/nodes-ca.pem"
    rules = "/etc/radguard/audit-rules.yaml"   # replaces the built-in pack
    disabled_rules = ["audit.node-silent"]
    alert_log = "/var/log/radguard/audit-alerts.log"   # default HOME/audit/alerts.log
    forward = "tls://siem.example.local:6514"          # syslog forwarder of alerts
    forward_ca = "/etc/radguard/siem-ca.pem"
    webhook = "http://10.1.2.3:8080/alerts"            # local network only
    known_destinations = ["ARCHIVE2", "10.1.2.40"]     # besides the inventory
    honeytoken_patients = ["HT-000001"]
    honeytoken_studies = ["1.2.826.0.1.3680043.10.999.1"]
    local_repository = true       # RadGuard's own emitter writes straight into the store
    [audit.working_hours]
    days = ["mon", "tue", "wed", "thu", "fri"]
    start = "07:00"
    end = "19:00"
    tz = "Europe/Berlin"
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from radguard.audit.repository.alerts import AlertSink
from radguard.audit.repository.rules import Context, RulePack, builtin_pack, load_pack
from radguard.config import Settings
from radguard.store import Store, list_assets

__all__ = ["alert_sink", "audit_section", "context", "rule_pack"]

_PARAMS = ("known_destinations", "honeytoken_patients", "honeytoken_studies", "working_hours")


def audit_section(settings: Settings) -> Mapping[str, Any]:
    """The ``[audit]`` table of the config file (empty when absent)."""
    return settings.section("audit")


def rule_pack(settings: Settings, path: Path | None = None) -> RulePack:
    """``path``, else the ``rules`` file of the config, else the built-in pack."""
    configured = path or (Path(str(audit_section(settings)["rules"]))
                          if audit_section(settings).get("rules") else None)
    return load_pack(configured) if configured else builtin_pack()


def inventory(store: Store | None) -> frozenset[str]:
    """Lower-cased names, AE titles and addresses of the store's assets."""
    if store is None:
        return frozenset()
    names: set[str] = set()
    for asset in list_assets(store):
        names.update(v.lower() for v in (asset.name, asset.ae_title, asset.address) if v)
    return frozenset(names)


def context(settings: Settings, store: Store | None) -> Context:
    """The detection context: ``@`` parameters from ``[audit]`` and the inventory."""
    section = audit_section(settings)
    params = {k: section[k] for k in _PARAMS if k in section}
    return Context(params=params, inventory=inventory(store))


def alert_sink(settings: Settings, store: Store | None) -> AlertSink:
    """Where alerts go, from ``[audit]`` (log file default ``HOME/audit/alerts.log``)."""
    section = audit_section(settings)
    log_file = Path(str(section.get("alert_log") or settings.home_path / "audit" / "alerts.log"))
    return AlertSink(store, log_file, forward_url=section.get("forward") or None,
                     webhook=section.get("webhook") or None,
                     forward_ca=section.get("forward_ca") or None)
