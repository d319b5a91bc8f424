"""A private rsyslogd (Debian ``rsyslog`` + ``rsyslog-gnutls``) that forwards a file of audit
messages (imfile) to the test repository with omfwd, over TCP or TLS (gtls), octet-counted.

It runs in the foreground (``-n``) with its own config file, pid file (``-i``) and work
directory, reads nothing but the given file and listens on nothing.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.peers import require, stop_process

TEMPLATE = ('template(name="atna" type="string" '
            'string="<85>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME% rsyslog - DICOM+RFC3881 - '
            '%msg%")')


@dataclass
class Rsyslog:
    proc: subprocess.Popen[bytes]
    folder: Path

    def stop(self) -> None:
        stop_process(self.proc)


def start_rsyslog(folder: Path, source: Path, port: int, *, tls: dict[str, Path] | None = None,
                  output: Path | None = None) -> Rsyslog:
    """Forward every line of ``source`` to ``127.0.0.1:port`` (or only write them to
    ``output``)."""
    binary = require("rsyslogd")
    work = folder / "work"
    work.mkdir(parents=True, exist_ok=True)
    glob = [f'workDirectory="{work}"', 'maxMessageSize="256k"']
    stream = ""
    if tls is not None:
        glob += [f'defaultNetstreamDriverCAFile="{tls["ca"]}"',
                 f'defaultNetstreamDriverCertFile="{tls["cert"]}"',
                 f'defaultNetstreamDriverKeyFile="{tls["key"]}"']
        stream = ('StreamDriver="gtls" StreamDriverMode="1" '
                  'StreamDriverAuthMode="x509/certvalid"')
    action = (f'action(type="omfile" file="{output}" template="atna")' if output else
              f'action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" '
              f'TCP_Framing="octet-counted" template="atna" {stream} '
              'action.resumeRetryCount="-1" queue.type="LinkedList" queue.size="200000")')
    config = "\n".join([
        f"global({' '.join(glob)})",
        'module(load="imfile")',
        TEMPLATE,
        f'input(type="imfile" File="{source}" Tag="audit" ruleset="fwd" '
        'freshStartTail="off" reopenOnTruncate="on")',
        f'ruleset(name="fwd") {{ {action} }}',
    ]) + "\n"
    conf = folder / "rsyslog.conf"
    conf.write_text(config)
    check = subprocess.run([binary, "-N1", "-f", str(conf)], capture_output=True, timeout=60)
    assert check.returncode == 0, check.stderr.decode(errors="replace")
    proc = subprocess.Popen([binary, "-n", "-f", str(conf), "-i", str(folder / "rsyslog.pid")],
                            stdout=subprocess.DEVNULL, stderr=(folder / "rsyslog.err").open("wb"))
    return Rsyslog(proc, folder)
