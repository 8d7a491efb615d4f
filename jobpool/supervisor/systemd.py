"""The sd_notify protocol, with nothing but the socket module; a no-op without NOTIFY_SOCKET.

systemd (Type=notify) learns from these datagrams when the pool is up (READY=1), what it is doing
(STATUS=...), that the master loop still turns (WATCHDOG=1), and when it reloads or stops.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger("jobpool.systemd")


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # an abstract socket: the name starts with a NUL byte
            address = "\0" + address[1:]
        self.address = address or None
        self.watchdog_interval = _watchdog_interval(env)
        self._next_ping = 0.0
        self._last_status = ""
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> None:
        if self.address is None:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as exc:  # systemd gone or not listening: never fatal
            log.debug("sd_notify failed: %s", exc)

    def ready(self, status: str) -> None:
        self._last_status = status
        self.send("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        self.send(
            "RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
        )

    def stopping(self, status: str) -> None:
        self._last_status = status
        self.send("STOPPING=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        """Send STATUS= only when it changed."""
        if status != self._last_status:
            self._last_status = status
            self.send(f"STATUS={status}")

    def watchdog(self, now: float) -> None:
        """Ping at half the watchdog interval; called from the master loop, so a stuck loop
        stops the pings and systemd restarts the service."""
        if self.watchdog_interval is not None and now >= self._next_ping:
            self.send("WATCHDOG=1")
            self._next_ping = now + self.watchdog_interval / 2

    def next_deadline(self) -> float | None:
        return self._next_ping if self.watchdog_interval is not None else None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1e6 if int(usec) > 0 else None
    except ValueError:
        return None
