"""Peers for bench/assess.py, one process per call: ``pynetdicom PORT...`` runs a pynetdicom
Verification + storage + query SCP on each port; ``silent PORT...`` accepts and never answers.
Loopback only. Runs until killed."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time


def pynetdicom(ports: list[int]) -> None:
    from pynetdicom import AE, StoragePresentationContexts
    from pynetdicom.sop_class import (  # type: ignore[attr-defined]
        StudyRootQueryRetrieveInformationModelFind,
        Verification,
    )

    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
    for port in ports:
        ae = AE(ae_title="BENCHSCP")
        ae.add_supported_context(Verification)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        for cx in StoragePresentationContexts[:60]:
            ae.add_supported_context(cx.abstract_syntax)
        ae.start_server(("127.0.0.1", port), block=False,
                        evt_handlers=[])


def silent(ports: list[int]) -> None:
    held: list[socket.socket] = []

    def serve(port: int) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(64)
        while True:
            conn, _ = s.accept()
            held.append(conn)

    for port in ports:
        threading.Thread(target=serve, args=(port,), daemon=True).start()


if __name__ == "__main__":
    mode, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
    {"pynetdicom": pynetdicom, "silent": silent}[mode](ports)
    print("ready", flush=True)
    while True:
        time.sleep(3600)
