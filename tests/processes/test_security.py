"""Redis authentication and TLS end to end, with real redis-servers and real `jobpool`
processes: an ACL user and password from the config file or from the environment, a wrong
password, and `rediss://` with a CA and a client certificate. The password must never reach a
log line or an error message, wrong or right.

The TLS test runs Debian's redis-server 7 (built with TLS; the embedded Valkey that the other
tests use is built without it) and needs the `openssl` command; it is skipped, saying so, without
them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from helpers import NO_REDIS7, REPO, SUPPORT, free_port, kill_tree, redis7_server, wait_until
from jobs import Record, runs

from jobpool import QueueManager
from jobpool.drivers.redis.client import client_from_url
from jobpool.drivers.redis.embedded import find_redis_server

SECRET = "Pw-for-alice-7c1e9a"
WRONG = "Not-the-pw-5b2d"
_ENV = ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_PASSWORD", "REDIS_USERNAME")
ACL = ["--user", "default", "off", "--user", "alice", "on", f">{SECRET}", "~*", "&*", "+@all"]


class Server:
    """A redis-server in the foreground with extra arguments (ACL users, TLS)."""

    def __init__(self, workdir: Path, args: list[str], binary: str | None = None):
        workdir.mkdir(exist_ok=True)
        self.socket_path = workdir / "redis.sock"
        self.log_path = workdir / "redis.log"
        argv = [binary or find_redis_server(), "--unixsocket", str(self.socket_path)]
        argv += ["--unixsocketperm", "700", "--dir", str(workdir), "--save", ""]
        argv += ["--appendonly", "no", "--daemonize", "no", "--logfile", str(self.log_path)]
        self.proc = subprocess.Popen([*argv, *args], stdin=subprocess.DEVNULL)

    def wait_ready(self) -> bool:
        """True once it accepts connections, False if it exited."""

        def settled() -> bool:
            log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            return "ready to accept connections" in log.lower() or self.proc.poll() is not None

        wait_until(settled, 10, 0.02, "redis-server to start")
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def acl_server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "acl", ["--port", "0", *ACL])
    try:
        assert server.wait_ready(), server.log()
        yield server
    finally:
        server.stop()


class Jobpool:
    """A `jobpool` command in the background, stderr to a file, with extra environment."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None):
        base = {k: v for k, v in os.environ.items() if k not in _ENV}
        base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), base.get("PYTHONPATH")]))
        self.err = tmp_path / f"{args[0]}-{len(list(tmp_path.glob('*.err')))}.err"
        with open(self.err, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jobpool.cli", *args],
                cwd=SUPPORT,
                env={**base, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        """Wait for the exit; (exit code, stdout + stderr)."""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        finally:
            self.kill()
        return self.proc.returncode, out.decode(errors="replace") + self.stderr()

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        return self.finish()

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            kill_tree(self.proc.pid)
        self.proc.wait(10)


def config(tmp_path: Path, redis_lines: str, name: str = "jobpool.toml") -> Path:
    path = tmp_path / name
    path.write_text(f'imports = ["jobs"]\nlog_level = "debug"\n[redis]\n{redis_lines}\n')
    return path


def client(server: Server, **auth: str) -> redis.Redis:
    """A client on the unix socket, without redis-py's retries (an auth error is final)."""
    return client_from_url(f"unix://{server.socket_path}", **auth)


def producer(server: Server, password: str = SECRET) -> QueueManager:
    return QueueManager(client(server, username="alice", password=password))


def run_one_job(tmp_path: Path, qm: QueueManager, proc: Jobpool) -> str:
    """Push a job, wait until it completes, drain the process; its whole output."""
    job_id = qm.push(Record(str(tmp_path / "out")))
    try:
        wait_until(
            lambda: (qm.get_job_status(job_id) or {}).get("status") == "completed",
            15,
            0.05,
            "the job to complete",
        )
    except AssertionError:
        raise AssertionError(proc.stderr()) from None
    code, output = proc.stop()
    assert code == 0, output
    assert runs(tmp_path / "out") == ["ran"]
    return output


def test_the_acl_server_refuses_clients_without_alices_password(acl_server):
    """The premise of the tests below: without the right user and password nothing works."""
    with pytest.raises(redis.AuthenticationError):
        client(acl_server).ping()
    with pytest.raises(redis.AuthenticationError):
        producer(acl_server, WRONG).driver.client.ping()


def test_acl_user_and_password_from_the_config_file_run_jobs_and_never_show(acl_server, tmp_path):
    cfg = config(
        tmp_path,
        f'url = "unix://{acl_server.socket_path}"\nusername = "alice"\npassword = "{SECRET}"',
    )
    master = Jobpool(tmp_path, "start", "-c", str(cfg))
    with QueueManager.from_config(cfg) as qm:  # the producer reads the same file
        output = run_one_job(tmp_path, qm, master)
    assert "master" in output and "worker default.0 started" in output
    assert SECRET not in output


def test_acl_user_and_password_from_the_environment_run_jobs_and_never_show(acl_server, tmp_path):
    cfg = config(tmp_path, f'url = "unix://{acl_server.socket_path}"')
    env = {"REDIS_USERNAME": "alice", "REDIS_PASSWORD": SECRET}
    worker = Jobpool(tmp_path, "worker", "-c", str(cfg), env=env)
    with producer(acl_server) as qm:
        output = run_one_job(tmp_path, qm, worker)
    assert "serving queue default" in output
    assert SECRET not in output


@pytest.mark.parametrize("where", ["file", "env"])
def test_a_wrong_password_is_a_clear_error_that_never_shows_it(acl_server, tmp_path, where):
    url = f'url = "unix://{acl_server.socket_path}"\nusername = "alice"'
    env = {"REDIS_PASSWORD": WRONG} if where == "env" else {}
    cfg = config(tmp_path, url if where == "env" else f'{url}\npassword = "{WRONG}"')
    for args in (
        ["start", "--redis-wait", "1"],
        ["worker", "--redis-wait", "1"],
        ["status", "default:1a2b"],
    ):
        code, output = Jobpool(tmp_path, *args, "-c", str(cfg), env=env).finish()
        assert code == 2, output  # a config problem: retrying (or systemd restarting) cannot help
        assert f"jobpool {args[0]}: Redis at unix://" in output
        assert "refused the credentials" in output
        assert "invalid username-password pair" in output
        assert WRONG not in output


# -- TLS -----------------------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d: Path) -> None:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate."""
    d.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=jobpool test CA", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                 "-extfile", "san.ext", cwd=d)  # fmt: skip


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Server, int, Path]]:
    binary = redis7_server()
    if binary is None:
        pytest.skip(f"the TLS test {NO_REDIS7}")
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make test certificates")
    certs = tmp_path / "certs"
    make_certs(certs)
    port = free_port()
    args = ["--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", *ACL]
    args += [
        "--tls-cert-file",
        str(certs / "server.crt"),
        "--tls-key-file",
        str(certs / "server.key"),
    ]
    args += ["--tls-ca-cert-file", str(certs / "ca.crt"), "--tls-auth-clients", "yes"]
    server = Server(tmp_path / "tls", args, binary)
    try:
        assert server.wait_ready(), f"{binary} did not start with TLS:\n{server.log()}"
        yield server, port, certs
    finally:
        server.stop()


def test_rediss_with_ca_and_client_certificate_runs_jobs_and_never_shows_the_password(
    tls_server, tmp_path
):
    server, port, certs = tls_server
    tls = (
        f'url = "rediss://localhost:{port}/0"\nusername = "alice"\n'
        f'ssl_ca_certs = "{certs / "ca.crt"}"\nssl_certfile = "{certs / "client.crt"}"\n'
        f'ssl_keyfile = "{certs / "client.key"}"'
    )
    cfg = config(tmp_path, tls)
    env = {"REDIS_PASSWORD": SECRET}
    master = Jobpool(tmp_path, "start", "-c", str(cfg), env=env)
    with producer(server) as qm:  # over the unix socket: no TLS there
        output = run_one_job(tmp_path, qm, master)
    assert "worker default.0 started" in output
    assert SECRET not in output

    # Without the CA the server's certificate cannot be verified: a clear refusal.
    untrusted = config(
        tmp_path, tls.replace(f'ssl_ca_certs = "{certs / "ca.crt"}"\n', ""), "u.toml"
    )
    code, output = Jobpool(
        tmp_path, "status", "default:1a2b", "-c", str(untrusted), env=env
    ).finish()
    assert code == 3, output
    assert "certificate verify failed" in output
    assert SECRET not in output
