"""The chaos run's Sentinel harness reads from the sentinels' logs every change of primary they
made, so that a failover they make on their own (a new primary unanswered for a second on a busy
machine) is reported and explains a job run twice, instead of failing the run as unexplained."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from helpers import REPO

sys.path.insert(0, str(REPO / "scripts"))

from chaos import SentinelRedis  # noqa: E402

PLANNED = "01 Dec 2026 16:18:37.687 # +switch-master mymaster 127.0.0.1 34473 127.0.0.1 53375"
KILLED = "01 Dec 2026 16:18:41.022 # +switch-master mymaster 127.0.0.1 53375 127.0.0.1 34473"
OWN = "01 Dec 2026 16:18:43.142 # +switch-master mymaster 127.0.0.1 34473 127.0.0.1 53375"
DEMOTED = (
    "01 Dec 2026 16:18:53.225 * +convert-to-slave slave 127.0.0.1:34473 127.0.0.1 34473 @ "
    "mymaster 127.0.0.1 53375"
)


def at(clock: str) -> float:
    return datetime.strptime(f"01 Dec 2026 {clock}", "%d %b %Y %H:%M:%S.%f").timestamp()


def sentinels(tmp_path: Path, logs: list[list[str]]) -> SentinelRedis:
    harness = SentinelRedis(tmp_path)
    harness.set.sentinel_ports = list(range(26379, 26379 + len(logs)))
    for port, lines in zip(harness.set.sentinel_ports, logs, strict=True):
        prefix = f"{port}:X "
        (tmp_path / f"sentinel-{port}.log").write_text("".join(prefix + x + "\n" for x in lines))
    return harness


def test_each_switch_is_counted_once_however_many_sentinels_logged_it(tmp_path):
    harness = sentinels(tmp_path, [[PLANNED, KILLED, OWN], [PLANNED, KILLED, OWN, DEMOTED], []])
    assert harness.set.switches() == [
        (at("16:18:37.687"), at("16:18:37.687")),
        (at("16:18:41.022"), at("16:18:41.022")),
        (at("16:18:43.142"), at("16:18:53.225")),  # the old primary took writes until then
    ]


def test_a_switch_no_planned_failover_made_is_the_sentinels_own(tmp_path):
    harness = sentinels(tmp_path, [[PLANNED, KILLED, OWN, DEMOTED]])
    planned = [(at("16:18:36.500"), at("16:18:37.700")), (at("16:18:39.800"), at("16:18:41.100"))]
    assert harness.unplanned(planned) == [(at("16:18:43.142"), at("16:18:53.225"))]
    assert harness.unplanned([*planned, (at("16:18:42.000"), at("16:18:43.200"))]) == []
