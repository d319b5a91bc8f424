"""Versioned data tables of the assessment (``radguard assess``).

- ``tls-profiles.json``: TLS protocol versions, cipher suites (IANA id, name, OpenSSL name and their
  components) and the PS3.15 Annex B profiles, current (B.12, B.13) and retired, with the B.13 rules.
- ``orthanc-cves.json``: known Orthanc vulnerabilities with the first fixed version.
- ``sop-tiers.json``: SOP classes proposed in tiers of at most 128 presentation contexts, and the rules
  that infer a node's role from what it accepts.
- ``controls.json``: for each check id, the controls it maps to (MITA CSP 1-2015, NIST CSF 2.0, HIPAA).

Reports print the ``version`` of each table they used.
"""
