"""[redis] keys for high availability: Sentinel, Cluster and durable writes (WAIT)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jobpool.config import ConfigError, RedisConfig, load_config

SECRET = "s3nt1nel-Pa55"


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load(in_tmp: Path, text: str, env: dict[str, str] | None = None) -> RedisConfig:
    (in_tmp / "jobpool.toml").write_text(textwrap.dedent(text))
    return load_config("jobpool.toml", env=env or {}).redis


def problems(in_tmp: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    (in_tmp / "jobpool.toml").write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as info:
        load_config("jobpool.toml", env=env or {})
    return info.value.problems


def test_defaults_are_a_single_server_without_waiting(in_tmp: Path) -> None:
    redis = load(in_tmp, "")
    assert redis.mode == "single"
    assert redis.sentinels == () and redis.service_name is None and redis.cluster is False
    assert (redis.wait_replicas, redis.wait_timeout) == (0, 1.0)


def test_sentinel_keys(in_tmp: Path) -> None:
    redis = load(
        in_tmp,
        f"""
        [redis]
        sentinels = ["10.0.0.1:26379", "[::1]:26380", "s3"]
        service_name = "mymaster"
        sentinel_username = "watch"
        sentinel_password = "{SECRET}"
        password = "{SECRET}"
        database = 2
        wait_replicas = 1
        wait_timeout = "500ms"
        """,
    )
    assert redis.mode == "sentinel"
    assert redis.sentinels == ("10.0.0.1:26379", "[::1]:26380", "s3:26379")
    assert (redis.service_name, redis.sentinel_username) == ("mymaster", "watch")
    assert (redis.wait_replicas, redis.wait_timeout) == (1, 0.5)
    assert SECRET not in repr(redis)
    assert redis.safe_url() == (
        "redis+sentinel://:***@10.0.0.1:26379,[::1]:26380,s3:26379/mymaster/2"
    )


def test_sentinel_url_fills_the_fields_and_hides_the_password(in_tmp: Path) -> None:
    url = f"redis+sentinel://app:{SECRET}@h1:26379,h2:26380/jobs/3"
    redis = load(in_tmp, f"[redis]\nurl = '{url}'")
    assert redis.mode == "sentinel"
    assert redis.sentinels == ("h1:26379", "h2:26380")
    assert (redis.service_name, redis.database) == ("jobs", 3)
    assert redis.server_credentials == ("app", SECRET)
    assert SECRET not in repr(redis) and SECRET not in redis.safe_url()
    assert redis.safe_url() == "redis+sentinel://app:***@h1:26379,h2:26380/jobs/3"


def test_sentinel_from_the_environment(in_tmp: Path) -> None:
    env = {
        "REDIS_SENTINELS": "a:26379, b:26379",
        "REDIS_SERVICE_NAME": "mymaster",
        "REDIS_SENTINEL_PASSWORD": SECRET,
        "REDIS_WAIT_REPLICAS": "2",
    }
    redis = load(in_tmp, "[redis]\nurl = 'redis://old:6379/0'", env)
    assert redis.url is None  # the environment's address replaces the file's
    assert redis.sentinels == ("a:26379", "b:26379")
    assert (redis.sentinel_password, redis.wait_replicas) == (SECRET, 2)
    assert SECRET not in repr(redis)


def test_an_environment_url_replaces_the_files_sentinels(in_tmp: Path) -> None:
    text = "[redis]\nsentinels = ['a:1']\nservice_name = 'm'"
    redis = load(in_tmp, text, {"REDIS_URL": "redis://other:6379/0"})
    assert redis.mode == "single" and redis.url == "redis://other:6379/0"


@pytest.mark.parametrize(
    ("url", "nodes"),
    [
        ("redis+cluster://n1:7000,n2:7001", ("n1:7000", "n2:7001")),
        ("redis+cluster://n1", ("n1:6379",)),
    ],
)
def test_cluster_url(in_tmp: Path, url: str, nodes: tuple[str, ...]) -> None:
    redis = load(in_tmp, f"[redis]\nurl = '{url}'")
    assert redis.mode == "cluster" and redis.cluster_nodes == nodes


def test_cluster_key_uses_host_and_port(in_tmp: Path) -> None:
    redis = load(in_tmp, "[redis]\ncluster = true\nhost = 'n1'\nport = 7000")
    assert redis.mode == "cluster" and redis.cluster_nodes == ("n1:7000",)
    assert redis.safe_url() == "redis+cluster://n1:7000"
    env = {"REDIS_CLUSTER": "yes", "REDIS_HOST": "n2"}
    assert load(in_tmp, "", env).cluster_nodes == ("n2:6379",)


INVALID = [
    ("sentinels = 5", "redis.sentinels: must be an array of 'host:port' strings"),
    ("sentinels = []", "redis.sentinels: must be an array of 'host:port' strings"),
    (
        "sentinels = ['a:1', 'b:x']\nservice_name='m'",
        "redis.sentinels: entry 2 must be 'host:port'",
    ),
    ("sentinels = ['a:1', 5]\nservice_name='m'", "redis.sentinels: must be an array of"),
    ("sentinels = ['a:1']", "redis.service_name: is required with redis.sentinels"),
    ("service_name = 'm'", "redis.service_name: is set but redis.sentinels is not"),
    (
        "sentinels = ['a:1']\nservice_name = 'm'\ncluster = true",
        "redis.cluster: cannot be combined with redis.sentinels",
    ),
    (
        "sentinels = ['a:1']\nservice_name = 'm'\nurl = 'redis://h'",
        "redis.sentinels: cannot be combined with a redis://",
    ),
    ("cluster = 'yes'", "redis.cluster: must be true or false, got string 'yes'"),
    ("cluster = true\ndatabase = 1", "redis.database: must be 0 with redis.cluster"),
    ("url = 'redis+cluster://a:1/2'", "redis.url: a Redis Cluster has only database 0"),
    ("url = 'redis+sentinel://a:1'", "redis.url: a redis+sentinel:// URL needs the service name"),
    ("url = 'redis+sentinel://a:1/m/x'", "redis.url: the path of a redis+sentinel:// URL"),
    ("url = 'redis+sentinel://a:99999/m'", "redis.url: must be 'host:port'"),
    (
        "url = 'redis+sentinel://a:1/m'\nsentinels = ['b:2']",
        "redis.sentinels: is also set by redis.url",
    ),
    ("wait_replicas = -1", "redis.wait_replicas: must be an integer from 0 to 100, got -1"),
    ("wait_timeout = 0", "redis.wait_timeout: must be a duration > 0"),
    ("url = 'embedded'\nwait_replicas = 1", "redis.wait_replicas: must be 0 with the embedded"),
]


@pytest.mark.parametrize(("text", "expected"), INVALID)
def test_invalid_ha_keys_name_the_key_and_the_problem(
    in_tmp: Path, text: str, expected: str
) -> None:
    found = problems(in_tmp, "[redis]\n" + text)
    assert any(expected in problem for problem in found), found


def test_a_bad_sentinel_url_never_shows_its_password(in_tmp: Path) -> None:
    found = problems(in_tmp, f"[redis]\nurl = 'redis+sentinel://u:{SECRET}@a:1/m/x'")
    assert found and not any(SECRET in problem for problem in found)
    found = problems(in_tmp, "", {"REDIS_SENTINEL_PASSWORD": "", "REDIS_SENTINELS": "a:b"})
    assert "environment variable REDIS_SENTINELS: entry 1 must be 'host:port'" in found[0]
