"""A private redis-server for one benchmark run: TCP on a free loopback port, no persistence."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, binary: str, run_dir: Path):
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = run_dir / "redis.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> redis.Redis:
        argv = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(self.log),
        ]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return client
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start; see {self.log}") from None
                time.sleep(0.02)

    def version(self) -> str:
        """'Valkey 9.1.2', or Redis's bare version ('7.0.15'). Valkey's INFO also carries a
        redis_version, the Redis it is compatible with (7.2.4), which is not what runs."""
        info = redis.Redis.from_url(self.url).info("server")
        if info.get("server_name") == "valkey":
            return f"Valkey {info['valkey_version']}"
        return str(info["redis_version"])

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        self.proc = None
