"""The fork server of a real `jobpool start`: a still, single-threaded copy of the master that
forks the workers, which are nonetheless the master's children; and what happens when it is gone
(the master forks workers itself), when the master dies, and when the master stops."""

from __future__ import annotations

import os
import signal

import psutil
from helpers import wait_until
from jobs import Record, runs
from masters import toml

from jobpool import QueueManager


def fork_server_pid(m) -> int:
    return int(m.wait_log(r"fork server started: pid (\d+)").group(1))


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_workers_come_from_a_single_threaded_fork_server_and_are_the_masters_children(
    master, redis_url, tmp_path
):
    m = master(toml(redis_url, queues={"default": {"workers": 2, "concurrency": 4}}), workers=2)
    server = psutil.Process(fork_server_pid(m))
    assert " ".join(server.cmdline()).startswith("jobpool: fork server")
    assert server.ppid() == m.pid
    assert server.num_threads() == 1
    for pid in m.workers():
        assert psutil.Process(pid).ppid() == m.pid  # handed to the master, its subreaper
    # The workers run jobs, report them on their pipes and boards as before.
    qm = QueueManager.from_config(str(m.config))
    path = tmp_path / "ran"
    ids = qm.push_many([Record(str(path), f"job{i}") for i in range(20)])
    wait_until(lambda: len(runs(path)) == 20, 15, 0.05, "20 jobs")
    wait_until(
        lambda: {(qm.get_job_status(i) or {}).get("status") for i in ids} == {"completed"},
        10,
        0.05,
        "every job completed",
    )
    assert "lost" not in m.log() and "forks workers itself" not in m.log()


def test_a_killed_fork_server_leaves_the_master_forking_workers_itself(master, redis_url, tmp_path):
    m = master(toml(redis_url), workers=2)
    server = fork_server_pid(m)
    os.kill(server, signal.SIGKILL)
    # Reaped ("exited"), or met in the middle of a fork ("lost"); a worker it forked but did
    # not report leaves at once (see ForkServer.spawn), so exactly two workers run below.
    m.wait_log(rf"fork server \(pid {server}\) (exited|lost) .*: the master forks workers itself")
    wait_until(lambda: not alive(server), 5, 0.05, "the fork server reaped")
    victim = next(iter(m.workers()))
    os.kill(victim, signal.SIGKILL)
    workers = m.wait_workers(2, gone=[victim])
    for pid in workers:
        assert psutil.Process(pid).ppid() == m.pid
    qm = QueueManager.from_config(str(m.config))
    path = tmp_path / "ran"
    qm.push(Record(str(path)))
    wait_until(lambda: runs(path) == ["ran"], 10, 0.05, "a job run after the fork server died")
    m.assert_running()


def test_the_fork_server_dies_with_the_master(master, redis_url):
    m = master(toml(redis_url), workers=2)
    server = fork_server_pid(m)
    workers = list(m.workers())
    os.kill(m.pid, signal.SIGKILL)
    m.proc.wait(5)
    wait_until(lambda: not alive(server), 5, 0.05, "the fork server gone with its master")
    wait_until(lambda: not any(alive(p) for p in workers), 10, 0.05, "the workers gone")


def test_a_stopped_master_leaves_no_fork_server_behind(master, redis_url):
    m = master(toml(redis_url), workers=2)
    server = fork_server_pid(m)
    m.send(signal.SIGTERM)
    assert m.wait_exit(15) == 0
    assert not alive(server)


def test_ctrl_c_reaches_the_fork_server_too_and_only_the_master_acts_on_it(master, redis_url):
    # A terminal's Ctrl-C signals the foreground process group: the master and its fork
    # server (each worker leads a group of its own). The fork server ignores it; the master
    # drains and stops, and the fork server leaves with it, with no traceback.
    m = master(toml(redis_url), workers=2)
    server = fork_server_pid(m)
    os.killpg(m.pid, signal.SIGINT)
    assert m.wait_exit(15) == 0
    assert not alive(server)
    assert "Traceback" not in m.log()


def test_workers_forked_after_a_reload_get_the_new_config(master, redis_url, tmp_path):
    m = master(toml(redis_url, queues={"default": {"workers": 1}}), workers=1)
    fork_server_pid(m)
    m.config.write_text(
        toml(redis_url, queues={"default": {"workers": 1}, "emails": {"workers": 2}})
    )
    m.send(signal.SIGHUP)
    emails = m.wait_workers(2, queue="emails")
    qm = QueueManager.from_config(str(m.config))
    path = tmp_path / "ran"
    qm.push(Record(str(path)), queue="emails")
    wait_until(lambda: runs(path) == ["ran"], 10, 0.05, "a job of the new queue run")
    assert all(psutil.Process(pid).ppid() == m.pid for pid in emails)
    assert "forks workers itself" not in m.log()


def test_a_sigterm_to_every_process_of_the_service_is_the_masters_to_act_on(master, redis_url):
    # systemd stops a service by sending SIGTERM to each of its processes: the fork server
    # outlives it, so the master does not report it lost while it drains, then it leaves.
    m = master(toml(redis_url), workers=2)
    server = fork_server_pid(m)
    os.kill(server, signal.SIGTERM)
    m.send(signal.SIGTERM)
    assert m.wait_exit(15) == 0
    assert not alive(server)
    assert "fork server" not in m.log().split("fork server started")[1]
