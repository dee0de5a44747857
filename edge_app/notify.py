"""systemd's notify protocol (Type=notify services) and journald logging.

The protocol is a datagram of `KEY=value` lines sent to the AF_UNIX socket named by
NOTIFY_SOCKET (a leading '@' means the abstract namespace). It is spoken directly here, so it
behaves the same with or without python3-systemd; outside systemd every call is a no-op.
The watchdog interval comes from WATCHDOG_USEC (for this process when WATCHDOG_PID names it);
pings go out at half of it.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Mapping, Optional


class Notifier:
    def __init__(self, environ: Mapping[str, str] = os.environ):
        self.address = environ.get("NOTIFY_SOCKET") or None
        if self.address and self.address.startswith("@"):
            self.address = "\0" + self.address[1:]
        self._socket: Optional[socket.socket] = None
        usec = environ.get("WATCHDOG_USEC")
        pid = environ.get("WATCHDOG_PID")
        self.watchdog_usec = int(usec) if usec and usec.isdigit() and int(usec) > 0 else None
        if pid and pid.isdigit() and int(pid) != os.getpid():
            self.watchdog_usec = None  # the watchdog belongs to another process

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def ping_interval(self) -> Optional[float]:
        """Seconds between WATCHDOG=1 pings (half the watchdog timeout), or None."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec else None

    def send(self, message: str) -> bool:
        if not self.address:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                # a reader that stopped reading must not block the supervisor: a failed send is
                # logged at debug level and the next ping or status tries again
                self._socket.setblocking(False)
            self._socket.sendto(message.encode("utf-8"), self.address)
            return True
        except OSError:
            logging.getLogger(__name__).debug("sd_notify %r failed", message, exc_info=True)
            return False

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        return self.send("STOPPING=1" + (f"\nSTATUS={status}" if status else ""))

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def setup_logging(level: str = "info", identifier: str = "edge-app") -> None:
    """journald (with priorities and fields) when running under systemd and python3-systemd is
    there; plain stderr lines otherwise."""
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    handler: logging.Handler
    if os.environ.get("JOURNAL_STREAM"):
        try:
            from systemd.journal import JournalHandler  # python3-systemd, from apt on the Pi

            handler = JournalHandler(SYSLOG_IDENTIFIER=identifier)
            handler.setFormatter(logging.Formatter("%(message)s"))
            root.addHandler(handler)
            return
        except ImportError:
            pass
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    logging.getLogger("paho").setLevel(logging.WARNING)
