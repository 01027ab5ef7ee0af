"""A real SMTP server on the loopback (aiosmtpd) and the Airflow connection that points at it."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from aiosmtpd.controller import Controller


class Inbox:
    """What the server received: (recipients, raw message) per mail."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@contextmanager
def local_smtp(monkeypatch, conn_id: str) -> Iterator[Inbox]:
    """Start a server on a free loopback port; ``AIRFLOW_CONN_<CONN_ID>`` names it for the test."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10, "retry_limit": 1}}))
    try:
        yield inbox
    finally:
        controller.stop()
