"""The Quickstart demo: jobpool on etc/jobpool.toml with the embedded server (Valkey).

Starts `jobpool start`, pushes three example jobs (one that succeeds, one that retries then
fails, one delayed that pushes a follow-up), prints each status change, then drains the pool.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from jobpool import QueueManager
from jobpool.config import load_config
from jobpool.drivers.redis.embedded import EmbeddedRedis
from jobpool.examples import FlakyJob, ProcessOrderJob, SendEmailJob

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "etc" / "jobpool.toml"
FINAL = {"completed", "failed"}


def main() -> int:
    cfg = load_config(CONFIG)
    server = EmbeddedRedis(cfg.redis.data_dir)
    started_redis = server.ensure()
    log_path = cfg.redis.data_dir / "demo-master.log"
    state = "started" if started_redis else "already running"
    print(f"embedded server: {server.running_server()} on {server.url} ({state})")
    with open(log_path, "w") as log:
        master = subprocess.Popen(
            [sys.executable, "-m", "jobpool.cli", "start", "-c", str(CONFIG)], stderr=log
        )
    print(f"jobpool start -c {CONFIG.relative_to(ROOT)}: master pid {master.pid}, log {log_path}")
    try:
        return watch(QueueManager.from_config(cfg), master)
    finally:
        master.send_signal(signal.SIGTERM)
        code = master.wait(timeout=60)
        print(f"SIGTERM sent: master drained and exited with code {code}")
        print("master log:\n  " + log_path.read_text().strip().replace("\n", "\n  "))
        if started_redis:
            server.stop()
            print("embedded server stopped (its AOF keeps any queued job for the next run)")


def watch(qm: QueueManager, master: subprocess.Popen) -> int:
    jobs = {
        qm.push(SendEmailJob("ada@example.com", "Welcome", "Hello Ada")): "SendEmailJob (succeeds)",
        qm.push(FlakyJob()): "FlakyJob (retries, then fails)",
        qm.later(ProcessOrderJob(42, "ada@example.com", 99.5), 3): "ProcessOrderJob (delayed 3s)",
    }
    start, seen = time.time(), {}
    print(f"\n{'time':>6}  {'job':<32} {'status':<11} attempts  note")
    while time.time() - start < 30 and master.poll() is None:
        for job_id, label in list(jobs.items()):
            record = qm.get_job_status(job_id) or {}
            key = (record.get("status"), record.get("attempts"))
            if seen.get(job_id) != key:
                seen[job_id] = key
                note = record.get("error", "") if record.get("status") != "completed" else ""
                print(
                    f"{time.time() - start:5.1f}s  {label:<32} {key[0]:<11} "
                    f"{key[1]}/{record.get('max_tries')}     {note}"
                )
        if all(seen.get(j, (None,))[0] in FINAL for j in jobs):
            print(
                "\nall done. ProcessOrderJob pushed a follow-up SendEmailJob to the 'emails'"
                " queue from handle(); the master log below shows it sent."
            )
            return 0
        time.sleep(0.1)
    print("the demo did not finish in 30 s; see the master log", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
