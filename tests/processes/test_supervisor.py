"""The real `jobpool start` master and its forked pool: titles, crashes, restarts, memory limits,
timeouts, max_jobs, signals and reloads, proven through pids, titles, job statuses, exit codes and
the master's log, against the session's redis-server. Each test starts its own master in its own
process group and kills the whole group at the end, so nothing outlives a test.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from helpers import RedisServer, free_port, scrape, wait_until
from jobs import ExitJob, Hog, KillSelf, Record, Sleep, SlowFirst, Spike, Spin
from masters import slot_of, toml

from jobpool import QueueManager


def status(qm: QueueManager, job_id: str) -> dict[str, Any]:
    return qm.get_job_status(job_id) or {}


def wait_status(qm: QueueManager, job_id: str, want: str, timeout: float = 10.0) -> dict:
    wait_until(
        lambda: status(qm, job_id).get("status") == want,
        timeout,
        0.05,
        f"{job_id} to be {want} (now {status(qm, job_id)})",
    )
    return status(qm, job_id)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def pids_started(path: Path) -> list[int]:
    """The worker pids that started the job(s) writing to `path`, in order."""
    return [int(line.split(":")[1]) for line in lines(path) if line.startswith("start:")]


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


# -- titles ------------------------------------------------------------------------------------


def test_titles_show_master_config_and_worker_count_and_each_worker_state(
    master, redis_url, redis_qm, tmp_path
):
    cfg = toml(redis_url, queues={"default": {"workers": 2}, "emails": {"workers": 1}})
    m = master(cfg, workers=3)

    wait_until(lambda: m.title() == f"jobpool: master -c {m.config} [3 workers]", 10, 0.05)
    titles = sorted(m.workers().values())
    assert titles == [
        "jobpool: worker default.0 idle",
        "jobpool: worker default.1 idle",
        "jobpool: worker emails.0 idle",
    ]
    assert len(m.workers("default")) == 2 and len(m.workers("emails")) == 1

    job_id = redis_qm.push(Sleep(str(tmp_path / "sleep"), 30))
    busy = wait_until(
        lambda: [t for t in m.workers().values() if " busy " in t], 10, 0.05, "a busy title"
    )
    assert len(busy) == 1
    assert re.fullmatch(rf"jobpool: worker default\.[01] busy Sleep {re.escape(job_id)}", busy[0])


# -- crashes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_class", "error"),
    [
        (KillSelf, "worker killed by signal 9 (SIGKILL)"),
        (ExitJob, "worker exited with code 1"),
    ],
    ids=["sigkill", "os_exit_1"],
)
def test_job_killing_its_worker_is_redelivered_at_once_and_fails_after_max_tries(
    master, redis_url, redis_qm, tmp_path, job_class, error
):
    m = master(toml(redis_url, pool={"lease": 30}), workers=2)
    path = tmp_path / "poison"

    job_id = redis_qm.push(job_class(str(path)))  # max_tries 2; a 30 s lease cannot expire in time
    wait_until(lambda: any(x.startswith("failed:") for x in lines(path)), 10, 0.05, "the hook")

    record = status(redis_qm, job_id)
    assert record["status"] == "failed" and record["attempts"] == 2
    assert record["error"] == error
    dead = pids_started(path)
    assert len(dead) == 2 and len(set(dead)) == 2, lines(path)
    m.wait_workers(2, gone=dead)  # both replaced by new pids
    for pid in dead:
        assert re.search(rf"worker default\.\d exited: pid {pid}, reason crash", m.log())
    first, last = dead
    assert re.search(rf"exited: pid {first}, .*; job {job_id} requeued", m.log())
    assert re.search(rf"exited: pid {last}, .*; job {job_id} failed for good", m.log())

    after = redis_qm.push(Record(str(tmp_path / "after")))
    wait_status(redis_qm, after, "completed")
    assert [x for x in lines(path) if x.startswith("failed:")] == [
        f"failed:WorkerLostError:{error}"
    ]


@pytest.mark.timing
def test_worker_that_cannot_import_is_restarted_with_growing_delays(master, redis_url, tmp_path):
    (tmp_path / "broken_jobs.py").write_text('raise RuntimeError("broken on purpose")\n')
    cfg = toml(redis_url, imports=["jobs", "broken_jobs"], queues={"default": {"workers": 1}})
    m = master(cfg, workers=0, pythonpath=[tmp_path])

    m.wait_log(r"restarting in 1s")
    started, cpu = time.monotonic(), cpu_seconds(m.pid)
    m.wait_log(r"restarting in 2s")
    time.sleep(max(0.0, started + 3.0 - time.monotonic()))  # the measuring window
    share = (cpu_seconds(m.pid) - cpu) / (time.monotonic() - started)
    print(f"master CPU while backing off: {share:.1%} of a core")

    assert m.proc.poll() is None, m.log()
    assert "could not import its job modules" in m.log()
    delays = [int(d) for d in re.findall(r"restarting in (\d+)s", m.log())]
    assert delays[:2] == [1, 2], m.log()
    assert all(reason == "crash" for _, _, reason in m.exits())
    # Measured at well under 1 %: a loop that forgot to wait would take most of a core. CPU time
    # does not grow with the machine's load, so the bound holds on a busy machine too.
    assert share < 0.25
    m.send(signal.SIGTERM)
    assert m.wait_exit(10) == 0


# -- memory ------------------------------------------------------------------------------------


def test_job_past_memory_limit_completes_and_its_worker_is_replaced(
    master, redis_url, redis_qm, tmp_path
):
    cfg = toml(redis_url, queues={"default": {"workers": 1, "memory_limit": "60MiB"}})
    m = master(cfg, workers=1)
    (old,) = m.workers()

    hog = redis_qm.push(Hog(str(tmp_path / "hog"), 100))
    wait_status(redis_qm, hog, "completed")
    (new,) = m.wait_workers(1, gone=[old])
    assert pids_started(tmp_path / "hog") == [old]
    assert (("default.0", old, "memory")) in m.exits(), m.log()
    m.wait_log(rf"worker {old} uses \d+(\.\d)?MiB, above memory_limit 60MiB: leaving after")

    after = redis_qm.push(Sleep(str(tmp_path / "after"), 0))
    wait_status(redis_qm, after, "completed")
    assert lines(tmp_path / "after") == [f"start:{new}", f"done:{new}"]


def test_job_past_memory_hard_limit_is_killed_mid_job_with_a_memory_error(
    master, redis_url, redis_qm, tmp_path
):
    pool = {"memory_hard_limit": "80MiB", "memory_check_interval": 0.2}
    m = master(toml(redis_url, pool=pool, queues={"default": {"workers": 1}}), workers=1)
    (old,) = m.workers()
    path = tmp_path / "hog"

    job = Hog(str(path), 150, seconds=5)
    job.max_tries = 1
    job_id = redis_qm.push(job)
    record = wait_status(redis_qm, job_id, "failed")

    assert "memory" in record["error"] and "memory_hard_limit" in record["error"], record
    assert lines(path) == [f"start:{old}"]  # never reached the end of its sleep
    m.wait_workers(1, gone=[old])
    assert ("default.0", old, "memory") in m.exits(), m.log()


def test_memory_hard_limit_is_sampled_every_memory_check_interval(
    master, redis_url, redis_qm, tmp_path
):
    # lease 30: lease renewals (every 10 s) do not wake the master during the job either
    pool = {"lease": 30, "memory_hard_limit": "80MiB", "memory_check_interval": 0.1}
    m = master(toml(redis_url, pool=pool, queues={"default": {"workers": 1}}), workers=1)
    (old,) = m.workers()
    path = tmp_path / "spike"

    # The job's start report wakes the master; 0.2 s later it holds 150 MiB for 0.5 s, then
    # frees it, a window that sampling every 0.1 s cannot miss and that ends before the next
    # 1 s tick.
    job_id = redis_qm.push(Spike(str(path), 150, wait=0.2, hold=0.5, after=1.5))
    wait_until(lambda: status(redis_qm, job_id).get("status") in ("completed", "failed"), 15, 0.05)

    assert status(redis_qm, job_id)["status"] == "failed", (lines(path), m.log())
    assert ("default.0", old, "memory") in m.exits()


# -- stopping ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_lets_running_job_complete_and_leaves_queued_jobs_queued(
    master, redis_url, redis_qm, tmp_path, sig
):
    cfg = toml(redis_url, pool={"graceful_timeout": 10}, queues={"default": {"workers": 1}})
    m = master(cfg, workers=1)
    path = tmp_path / "sleep"
    sleep_id = redis_qm.push(Sleep(str(path), 3))
    waiting = redis_qm.push_many([Record(str(tmp_path / "rec")), Record(str(tmp_path / "rec"))])
    wait_until(lambda: lines(path), 10, 0.05, "the Sleep job to start")

    m.send(sig)
    assert m.wait_exit(20) == 0

    (pid,) = pids_started(path)
    assert lines(path) == [f"start:{pid}", f"done:{pid}"]
    assert status(redis_qm, sleep_id)["status"] == "completed"
    for job_id in waiting:
        assert (status(redis_qm, job_id)["status"], status(redis_qm, job_id)["attempts"]) == (
            "queued",
            0,
        )
    assert ("default.0", pid, "stopped") in m.exits(), m.log()
    assert not lines(tmp_path / "rec")
    assert "closed its report pipe" not in m.log()  # exiting children close it too


def test_ctrl_c_to_the_process_group_drains_like_sigint(master, redis_url, redis_qm, tmp_path):
    cfg = toml(redis_url, pool={"graceful_timeout": 10}, queues={"default": {"workers": 2}})
    m = master(cfg, workers=2)
    path = tmp_path / "sleep"
    sleep_id = redis_qm.push(Sleep(str(path), 3))
    wait_until(lambda: lines(path), 10, 0.05, "the Sleep job to start")

    os.killpg(m.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    assert m.wait_exit(20) == 0

    assert status(redis_qm, sleep_id)["status"] == "completed", m.log()
    assert {reason for _, _, reason in m.exits()} == {"stopped"}, m.log()


def test_job_past_graceful_timeout_is_requeued_uncounted_and_completed_by_next_start(
    master, redis_url, redis_qm, tmp_path
):
    cfg = toml(redis_url, pool={"graceful_timeout": 1}, queues={"default": {"workers": 1}})
    first = master(cfg, workers=1)
    path = tmp_path / "slow"
    job_id = redis_qm.push(SlowFirst(str(path), first=4, then=0.1))  # 4 s the first time only
    wait_until(lambda: lines(path), 10, 0.05, "the job to start")

    first.send(signal.SIGTERM)
    assert first.wait_exit(15) == 0
    (killed,) = pids_started(path)
    assert re.search(rf"killing worker default\.0 \(pid {killed}\): shutdown", first.log())
    assert ("default.0", killed, "shutdown") in first.exits()
    record = status(redis_qm, job_id)
    assert (record["status"], record["attempts"]) == ("queued", 0)

    master(cfg, workers=1)
    assert wait_status(redis_qm, job_id, "completed")["attempts"] == 1
    (_, again) = pids_started(path)
    assert lines(path) == [f"start:{killed}", f"start:{again}", f"done:{again}"]


@pytest.mark.parametrize(
    "signals",
    [(signal.SIGTERM, signal.SIGTERM), (signal.SIGQUIT,)],
    ids=["second_SIGTERM", "SIGQUIT"],
)
def test_stop_at_once_kills_busy_worker_and_requeues_its_job(
    master, redis_url, redis_qm, tmp_path, signals
):
    # graceful_timeout 30 and a 10 s job: an exit within seconds can only be a stop at once
    cfg = toml(redis_url, pool={"graceful_timeout": 30}, queues={"default": {"workers": 1}})
    m = master(cfg, workers=1)
    path = tmp_path / "sleep"
    job_id = redis_qm.push(Sleep(str(path), 10))
    wait_until(lambda: lines(path), 10, 0.05, "the Sleep job to start")

    for n, sig in enumerate(signals):
        if n:  # two SIGTERMs sent together may merge into one pending signal
            m.wait_log(r"SIGTERM: draining")
        m.send(sig)
    assert m.wait_exit(4) == 0

    (pid,) = pids_started(path)
    assert lines(path) == [f"start:{pid}"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    record = status(redis_qm, job_id)
    assert (record["status"], record["attempts"]) == ("queued", 0)
    assert ("default.0", pid, "shutdown") in m.exits(), m.log()


# -- reloading and resizing --------------------------------------------------------------------


def test_sighup_adding_a_queue_starts_its_workers_without_restarting_the_others(master, redis_url):
    m = master(toml(redis_url), workers=2)
    before = m.workers("default")

    m.config.write_text(
        toml(redis_url, queues={"default": {"workers": 2}, "emails": {"workers": 1}})
    )
    m.send(signal.SIGHUP)
    (emails,) = m.wait_workers(1, "emails").values()

    assert emails == "jobpool: worker emails.0 idle"
    assert m.workers("default") == before


def test_sighup_with_an_invalid_file_keeps_the_running_pool(master, redis_url):
    m = master(toml(redis_url), workers=2)
    before = m.workers()

    m.config.write_text(toml(redis_url, queues={"default": {"workers": 0}}))
    m.send(signal.SIGHUP)
    m.wait_log(r"SIGHUP: .* is invalid, keeping the running config")
    m.config.write_text("[pool\n")  # not TOML at all
    m.send(signal.SIGHUP)
    wait_until(lambda: m.log().count("is invalid, keeping") == 2, 10, 0.05)

    assert m.workers() == before
    assert m.proc.poll() is None
    assert not m.exits()


def test_sighup_raising_a_queues_workers_runs_that_many(master, redis_url):
    m = master(toml(redis_url), workers=2)

    m.config.write_text(toml(redis_url, queues={"default": {"workers": 3}}))
    m.send(signal.SIGHUP)
    # The queue's settings changed, so its workers are replaced: wait for the new ones alone.
    wanted = ["default.0", "default.1", "default.2"]
    wait_until(
        lambda: sorted(slot_of(t) for t in m.workers("default").values()) == wanted,
        15,
        0.05,
        f"workers {wanted}",
    )
    wait_until(lambda: m.title().endswith("[3 workers]"), 10, 0.05)


def test_sigttin_adds_a_worker_per_queue_and_sigttou_drains_one(master, redis_url):
    cfg = toml(redis_url, queues={"default": {"workers": 2}, "emails": {"workers": 1}})
    m = master(cfg, workers=3)
    before = m.workers()

    m.send(signal.SIGTTIN)
    grown = m.wait_workers(5)
    added = {pid: slot_of(t) for pid, t in grown.items() if pid not in before}
    assert sorted(added.values()) == ["default.2", "emails.1"]
    assert set(before) < set(grown)

    m.send(signal.SIGTTOU)
    m.wait_workers(3, gone=added)
    assert m.workers() == before
    for pid, slot in added.items():
        # A child can be gone a moment before its master reaps it and logs the exit.
        m.wait_log(rf"worker {re.escape(slot)} exited: pid {pid}, reason stopped")
        assert (slot, pid, "stopped") in m.exits(), m.log()


# -- limits per job and per worker -------------------------------------------------------------


def test_job_past_its_timeout_fails_with_timeout_error_and_worker_is_replaced(
    master, redis_url, redis_qm, tmp_path
):
    m = master(toml(redis_url, queues={"default": {"workers": 1}}), workers=1)
    path = tmp_path / "spin"

    job_id = redis_qm.push(Spin(str(path), 30))  # timeout = 1, max_tries = 1
    record = wait_status(redis_qm, job_id, "failed", timeout=15)

    assert record["error"] == "timeout after 1 s"
    (pid,) = pids_started(path)
    assert lines(path) == [f"start:{pid}"]
    m.wait_workers(1, gone=[pid])
    assert ("default.0", pid, "timeout") in m.exits(), m.log()


def test_max_jobs_recycles_the_worker_and_every_job_completes(
    master, redis_url, redis_qm, tmp_path
):
    m = master(toml(redis_url, queues={"default": {"workers": 1, "max_jobs": 3}}), workers=1)
    path = tmp_path / "jobs"

    # 9 jobs: a worker runs max_jobs plus up to 1 of jitter, so 8 could fit in two workers
    ids = redis_qm.push_many([Sleep(str(path), 0) for _ in range(9)])
    for job_id in ids:
        wait_status(redis_qm, job_id, "completed", timeout=20)

    pids = list(dict.fromkeys(pids_started(path)))
    assert len(pids) >= 3, lines(path)  # the pid changed at least twice
    recycled = [pid for _, pid, reason in m.exits() if reason == "max_jobs"]
    assert recycled == pids[: len(recycled)] and len(recycled) >= 2, m.log()


# -- the master's own health -------------------------------------------------------------------


def test_workers_of_a_killed_master_finish_their_job_and_exit(
    master, redis_url, redis_qm, tmp_path
):
    m = master(toml(redis_url, pool={"lease": 5}), workers=2)
    workers = list(m.workers())
    path = tmp_path / "sleep"
    job_id = redis_qm.push(Sleep(str(path), 1))
    wait_until(lambda: lines(path), 10, 0.05, "the Sleep job to start")

    os.kill(m.pid, signal.SIGKILL)  # the master only, not its group
    m.proc.wait(10)

    wait_until(lambda: all(_gone(pid) for pid in workers), 8, 0.05, "the orphans to exit")
    (pid,) = pids_started(path)
    assert lines(path) == [f"start:{pid}", f"done:{pid}"]
    assert status(redis_qm, job_id)["status"] == "completed"


def test_an_orphan_whose_redis_is_gone_too_leaves_after_graceful_timeout(master, tmp_path):
    """With its master dead nobody enforces graceful_timeout on a draining worker, and with its
    Redis gone too it would retry its job's outcome for ever. It leaves by itself once
    graceful_timeout has passed; its job stays under its lease, for a peer to hand back."""
    server = RedisServer(tmp_path / "redis")
    server.workdir.mkdir()
    server.start()
    worker = 0
    try:
        queues = {"default": {"workers": 1, "concurrency": 2}}  # acks are waited for
        cfg = toml(server.url, pool={"graceful_timeout": 2}, queues=queues)
        m = master(cfg, workers=1)
        (worker,) = m.workers()
        path = tmp_path / "sleep"
        with QueueManager(server.url) as qm:
            qm.push(Sleep(str(path), 1))
        wait_until(lambda: lines(path), 10, 0.05, "the Sleep job to start")
        server.stop()
        os.kill(m.pid, signal.SIGKILL)  # the master only: its worker gets SIGTERM, an orphan
        m.proc.wait(10)
        wait_until(lambda: _gone(worker), 15, 0.1, "the orphan to leave")
        assert lines(path) == [f"start:{worker}", f"done:{worker}"]  # it finished its job
    finally:
        server.stop()
        if worker and not _gone(worker):
            os.kill(worker, signal.SIGKILL)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.timing
def test_idle_master_uses_almost_no_cpu(master, redis_url):
    m = master(toml(redis_url), workers=2)
    wait_until(lambda: m.title().endswith("[2 workers]"), 10, 0.05)

    started, cpu = time.monotonic(), cpu_seconds(m.pid)
    time.sleep(5)  # the measuring window
    share = (cpu_seconds(m.pid) - cpu) / (time.monotonic() - started)
    print(f"idle master CPU: {share:.2%} of a core")

    assert share < 0.05  # measured at about 0.2 %; load does not add CPU time, only delays it
    assert len(m.workers()) == 2


def test_a_job_failed_by_worker_deaths_counts_as_failed_in_stats_and_metrics(
    master, redis_url, redis_qm, tmp_path
):
    port = free_port()
    cfg = toml(redis_url, pool={"lease": 30}) + f'[metrics]\nlisten = "127.0.0.1:{port}"\n'
    master(cfg, workers=2)
    path = tmp_path / "poison"
    job_id = redis_qm.push(KillSelf(str(path)))  # max_tries 2: the second death fails it
    wait_until(lambda: any(x.startswith("failed:") for x in lines(path)), 10, 0.05, "the hook")
    assert status(redis_qm, job_id)["status"] == "failed"
    assert redis_qm.driver.stats("default")["failed_last_minute"] == 1
    samples = wait_until(
        lambda: (
            (s := scrape(port)).get(
                'jobpool_jobs_total{job_class="KillSelf",outcome="failed",queue="default"}'
            )
            and s
        ),
        5,
        0.1,
        "the failure in the metrics",
    )
    assert samples['jobpool_jobs_total{job_class="KillSelf",outcome="failed",queue="default"}'] == 1
