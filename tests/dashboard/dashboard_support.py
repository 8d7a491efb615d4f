"""What the dashboard tests share besides fixtures: the token, a config, an in-process worker
run, and (for the README's screenshots) an hour and a day of made-up history."""

from __future__ import annotations

import json
import math
import random
import time
import urllib.request

from helpers import wait_until
from masters import toml

from jobpool import QueueManager
from jobpool.config import config_from_dict
from jobpool.drivers.redis.history import HistoryRecorder, recorder_for
from jobpool.worker.threaded import make_worker

TOKEN = "browser-test-token"


def dashboard_toml(url: str, port: int, token: str | None, workers: int = 2) -> str:
    text = toml(url, imports=["dashboard_jobs"], queues={"default": {"workers": workers}})
    lines = ["[dashboard]", f'listen = "127.0.0.1:{port}"']
    if token:
        lines.append(f"token = {json.dumps(token)}")
    return text + "\n".join(lines) + "\n"


def wait_http(url: str, timeout: float = 15.0) -> None:
    def up() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    wait_until(up, timeout, 0.1, f"{url} to answer")


def run_all(qm: QueueManager, queue: str = "default") -> None:
    """Run every ready job of `queue` in this process (no master needed)."""
    cfg = config_from_dict({"queues": {queue: {}}}, env={})
    make_worker(qm, cfg.queue(queue)).run(burst=True, install_signals=False)


def seed_history(qm: QueueManager, minutes: int = 24 * 60) -> None:
    """Made-up history for screenshots: a daily wave of jobs with a burst of failures."""
    now, rng = time.time(), random.Random(17)
    real = recorder_for(qm.driver)
    for ago in range(minutes, 0, -1):
        at = now - ago * 60
        recorder = HistoryRecorder(real.client, real.prefix, clock=lambda at=at: at)
        load = 40 + 30 * math.sin(at / 3600 / 24 * 2 * math.pi) + rng.uniform(-8, 8)
        for job_class, share, base in (("SendEmail", 0.6, 0.08), ("RenderReport", 0.4, 0.9)):
            for _ in range(int(load * share / 4)):
                recorder.add("default", job_class, "completed", rng.lognormvariate(0, 0.5) * base)
        if 50 < ago % 240 < 58:
            for _ in range(rng.randint(1, 4)):
                recorder.add("default", "RenderReport", "failed", rng.uniform(1, 3))
                recorder.add("default", "RenderReport", "retrying", rng.uniform(1, 3))
        recorder.flush(0.0, force=True)
