"""etc/jobpool.toml documents every config key: set, or shown commented out."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from jobpool.config import (
    Config,
    DashboardConfig,
    JobsConfig,
    MetricsConfig,
    PoolConfig,
    QueueConfig,
    RedisConfig,
    load_config,
)
from jobpool.schedules.model import Schedule

EXAMPLE = Path(__file__).resolve().parents[2] / "etc" / "jobpool.toml"
SECTION = re.compile(r"^#?\s*\[([a-z_.]+)\]")
KEY = re.compile(r"^#?\s*([a-z_]+)\s*=")
NOT_IN_FILE = {
    *("source", "base_dir", "redis", "jobs", "pool", "queues", "metrics", "schedules", "name"),
    "dashboard",
}


def _mentioned() -> dict[str, set[str]]:
    """Section ("" for the top, "queues" for every [queues.NAME]) -> the keys the file sets
    or shows in a comment."""
    keys: dict[str, set[str]] = {"": set()}
    section = ""
    for line in EXAMPLE.read_text().splitlines():
        if match := SECTION.match(line):
            section = match[1].split(".")[0]
            keys.setdefault(section, set())
        elif match := KEY.match(line):
            keys[section].add(match[1])
    return keys


def _fields(cls: type) -> set[str]:
    return {item.name for item in fields(cls)} - NOT_IN_FILE


def test_the_example_config_shows_every_key():
    mentioned = _mentioned()
    assert mentioned[""] == _fields(Config)
    assert mentioned["redis"] == _fields(RedisConfig)
    assert mentioned["jobs"] == _fields(JobsConfig)
    assert mentioned["pool"] == _fields(PoolConfig)
    assert mentioned["metrics"] == _fields(MetricsConfig)
    assert mentioned["dashboard"] == _fields(DashboardConfig)
    assert mentioned["queues"] <= _fields(QueueConfig)
    assert mentioned["schedules"] == _fields(Schedule)


def test_the_example_config_loads():
    load_config(EXAMPLE, env={})
