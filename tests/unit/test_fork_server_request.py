"""What the master sends its fork server for each worker: the config travels (its read-only
tables included) only when the fork server does not have it yet."""

from __future__ import annotations

import pickle
from types import MappingProxyType

from jobpool.config import load_config
from jobpool.supervisor.children import Slot
from jobpool.supervisor.fork_server import WorkerRequest, _dumps

CONFIG = """
imports = ["jobs"]
[redis]
url = "redis://127.0.0.1:6379/0"
[queues.default]
workers = 2
concurrency = 8
[queues.emails]
rate_limit = "20/s"
[schedules.nightly]
cron = "0 3 * * *"
job = "jobs:Record"
"""


def test_a_request_carries_the_whole_config_and_its_tables_stay_read_only(tmp_path):
    path = tmp_path / "jobpool.toml"
    path.write_text(CONFIG)
    config = load_config(str(path), env={})
    request = WorkerRequest(Slot("default", 1, 3), "host.1.default.1.7", 8, config)
    back = pickle.loads(_dumps(request))
    assert back == request
    assert back.config.queue("default").concurrency == 8
    assert isinstance(back.config.queues, MappingProxyType)
    assert isinstance(back.config.schedules, MappingProxyType)


def test_a_request_without_a_config_is_small():
    request = WorkerRequest(Slot("default", 0), "host.1.default.0.1", 1)
    assert len(_dumps(request)) < 300
