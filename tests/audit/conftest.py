"""Fixtures of the audit tests: loopback UDP/TCP/TLS receivers and a throw-away PKI."""

from audit_peers import pki, stop_server, tcp_receiver, tls_receiver, udp_socket

__all__ = ["pki", "stop_server", "tcp_receiver", "tls_receiver", "udp_socket"]
