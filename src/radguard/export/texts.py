"""README.TXT and INDEX.HTM of a medium (IHE PDI): what is on it, who sent it, how to open it.

On an encrypted medium neither names a patient: they give counts, the sender (site, station),
the date and the steps to decrypt. INDEX.HTM is XHTML without scripts (a Content-Security-Policy of
``default-src 'none'`` forbids any), rendered from ``formats/templates/export_index.htm.j2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from string import Template

import jinja2

from radguard import __version__
from radguard.export.policy import text

__all__ = ["MediumFacts", "index_htm", "readme_txt"]


@dataclass(frozen=True)
class MediumFacts:
    index: int
    count: int
    date: str
    site: str
    station: str
    studies: int
    instances: int
    megabytes: str
    encrypted: bool
    password: bool
    cert_fingerprints: tuple[str, ...]
    signer: str
    example_file: str
    study_rows: tuple[dict[str, str], ...] = field(default_factory=tuple)  # plain media only
    version: str = __version__

    @property
    def means(self) -> str:
        ways = []
        if self.password:
            ways.append("the password the sender gave you separately (never with the medium)")
        if self.cert_fingerprints:
            ways.append("the private key of a recipient certificate (SHA-256 fingerprint "
                        + ", ".join(f[:16] + "..." for f in self.cert_fingerprints) + ")")
        return " or ".join(ways)


def _ascii(value: str) -> str:
    return value.encode("ascii", "replace").decode("ascii")


def readme_txt(m: MediumFacts) -> bytes:
    """README.TXT (ASCII, CRLF line ends for Windows editors)."""
    if m.encrypted:
        lines = []
        opts = []
        if m.password:
            opts.append(" [--password-file FILE]")
            lines.append(f"  openssl cms -decrypt -inform DER -in {m.example_file} "
                         "-pwri_password PASSWORD -out IMAGE.dcm")
        if m.cert_fingerprints:
            opts.append(" [--key KEY.pem --cert CERT.pem]")
            lines.append(f"  openssl cms -decrypt -inform DER -in {m.example_file} "
                         "-recip CERT.pem -inkey KEY.pem -out IMAGE.dcm")
        enc = Template(text("readme_encrypted.txt")).substitute(
            means=m.means, open_options="".join(opts), openssl_lines="\n".join(lines))
    else:
        enc = text("readme_plain.txt")
    body = Template(text("readme.txt")).substitute(
        medium_kind="medium", version=m.version, date=m.date, site=_ascii(m.site or "-"),
        station=_ascii(m.station), index=m.index, count=m.count, studies=m.studies,
        instances=m.instances, megabytes=m.megabytes, encryption_text=enc, signer=m.signer)
    return _ascii(body).replace("\r\n", "\n").replace("\n", "\r\n").encode("ascii")


def index_htm(m: MediumFacts) -> bytes:
    env = jinja2.Environment(loader=jinja2.PackageLoader("radguard.formats", "templates"),
                             autoescape=True)
    return env.get_template("export_index.htm.j2").render(m=m).encode("utf-8")
