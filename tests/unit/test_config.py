"""Tests for jobpool.config (TOML -> validated frozen dataclasses) and jobpool.config.units."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
import textwrap
from pathlib import Path

import pytest

from jobpool.config import (
    Config,
    ConfigError,
    JobsConfig,
    MetricsConfig,
    PoolConfig,
    QueueConfig,
    RedisConfig,
    config_from_dict,
    default_config,
    load_config,
)
from jobpool.config.units import format_size, parse_duration, parse_size

SECRET = "s3cr3t-Pa55word"
MiB = 1024 * 1024
GiB = 1024 * MiB


def write(tmp_path: Path, text: str, name: str = "jobpool.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from tmp_path so that load_config("jobpool.toml") names the file as users write it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load_text(in_tmp: Path, text: str, env: dict[str, str] | None = None) -> Config:
    write(in_tmp, text)
    return load_config("jobpool.toml", env=env or {})


def errors_of(in_tmp: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    write(in_tmp, text)
    with pytest.raises(ConfigError) as info:
        load_config("jobpool.toml", env=env or {})
    return info.value.problems


# --------------------------------------------------------------------------------------------
# Defaults
# --------------------------------------------------------------------------------------------


def test_default_config_has_every_documented_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = default_config(env={})

    assert config.source == "<defaults>"
    assert config.base_dir == tmp_path
    assert config.driver == "redis"
    assert config.default_queue == "default"
    assert config.imports == ()
    assert config.log_level == "info"
    assert config.log_format == "text"
    assert dict(config.queues) == {}
    assert config.metrics == MetricsConfig(listen=None)
    assert config.metrics.address is None

    assert config.jobs == JobsConfig(completed_ttl=86400.0, failed_ttl=604800.0, max_payload=MiB)
    assert config.pool == PoolConfig(
        workers=1,
        memory_limit=None,
        memory_hard_limit=None,
        max_jobs=0,
        graceful_timeout=30.0,
        lease=30.0,
        preload=False,
        memory_check_interval=1.0,
        timeout=None,
        restart_backoff_max=60.0,
    )


def test_what_is_built_without_a_config_defaults_as_the_config_does() -> None:
    """QueueManager, Worker and the drivers read the same defaults as the config: a manager or
    a worker made in code behaves as one made from an empty jobpool.toml."""
    from jobpool import QueueManager, Worker
    from jobpool.drivers.memory import MemoryDriver
    from jobpool.drivers.redis import RedisDriver
    from jobpool.supervisor.restarts import RestartPolicy

    config = default_config(env={})
    qm = QueueManager(None)
    assert qm.default_queue == config.default_queue
    assert qm.max_payload == config.jobs.max_payload
    assert qm.max_result == config.jobs.max_result == 1024 * 1024
    worker = Worker(qm)
    assert (worker.lease, worker.prefetch) == (config.pool.lease, config.pool.prefetch)
    assert RestartPolicy().cap == config.pool.restart_backoff_max
    for made in (QueueManager, MemoryDriver, RedisDriver):
        params = inspect.signature(made.__init__).parameters
        assert params["completed_ttl"].default == config.jobs.completed_ttl, made
        assert params["failed_ttl"].default == config.jobs.failed_ttl, made
    for made in (QueueManager, RedisDriver):
        params = inspect.signature(made.__init__).parameters
        assert params["prefix"].default == config.redis.prefix, made


def test_default_redis_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    redis = default_config(env={}).redis

    assert redis.url is None
    assert (redis.host, redis.port, redis.database) == ("localhost", 6379, 0)
    assert redis.username is None and redis.password is None
    assert redis.prefix == "jobpool"
    assert redis.data_dir == tmp_path / ".jobpool"
    assert redis.socket_timeout == 5.0
    assert (redis.ssl_ca_certs, redis.ssl_certfile, redis.ssl_keyfile) == (None, None, None)
    assert redis.ssl_cert_reqs == "required"
    assert redis.is_embedded is False
    assert redis.safe_url() == "redis://localhost:6379/0"


def test_empty_file_equals_defaults_apart_from_source(in_tmp: Path) -> None:
    config = load_text(in_tmp, "")
    assert config.source == "jobpool.toml"
    assert config.base_dir == in_tmp
    assert dataclasses.replace(config, source="<defaults>") == default_config(env={})


def test_dataclasses_are_frozen() -> None:
    config = default_config(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.driver = "memory"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.pool.workers = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.queues["x"] = QueueConfig(name="x")  # type: ignore[index]


def test_default_config_reads_os_environ_when_env_is_not_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QUEUE_DEFAULT", "from-environ")
    assert default_config().default_queue == "from-environ"


# --------------------------------------------------------------------------------------------
# A full example file
# --------------------------------------------------------------------------------------------

FULL_EXAMPLE = """
driver = "redis"
default_queue = "emails"
imports = ["myapp.jobs", "myapp.billing.tasks"]
log_level = "DEBUG"
log_format = "json"

[redis]
host = "redis.internal"
port = 6380
username = "worker"
password = "s3cr3t-Pa55word"
db = 3
prefix = "myapp:jobs"
data_dir = "var/redis"
socket_timeout = "1500ms"
ssl_ca_certs = "/etc/ssl/ca.pem"
ssl_certfile = "/etc/ssl/client.pem"
ssl_keyfile = "/etc/ssl/client.key"
ssl_cert_reqs = "optional"

[jobs]
completed_ttl = "1h"
failed_ttl = "2d"
max_payload = "512KiB"

[pool]
workers = 4
memory_limit = "256MiB"
memory_hard_limit = "1GiB"
max_jobs = 1000
graceful_timeout = "45s"
lease = 60
preload = true
memory_check_interval = 0.5
timeout = "5m"
restart_backoff_max = "2m"

[queues.emails]
workers = 2
memory_limit = "128MB"
timeout = 20

[queues."reports.v2"]
lease = "10m"
memory_limit = false

[metrics]
listen = "127.0.0.1:9100"
"""


def test_full_example_parses_to_the_right_values(in_tmp: Path) -> None:
    config = load_text(in_tmp, FULL_EXAMPLE)

    assert config.driver == "redis"
    assert config.default_queue == "emails"
    assert config.imports == ("myapp.jobs", "myapp.billing.tasks")
    assert config.log_level == "debug"
    assert config.log_format == "json"
    assert config.redis == RedisConfig(
        url=None,
        host="redis.internal",
        port=6380,
        username="worker",
        password=SECRET,
        database=3,
        prefix="myapp:jobs",
        data_dir=in_tmp / "var" / "redis",
        socket_timeout=1.5,
        ssl_ca_certs="/etc/ssl/ca.pem",
        ssl_certfile="/etc/ssl/client.pem",
        ssl_keyfile="/etc/ssl/client.key",
        ssl_cert_reqs="optional",
    )
    assert config.jobs == JobsConfig(completed_ttl=3600.0, failed_ttl=172800.0, max_payload=524288)
    assert config.pool == PoolConfig(
        workers=4,
        memory_limit=256 * MiB,
        memory_hard_limit=GiB,
        max_jobs=1000,
        graceful_timeout=45.0,
        lease=60.0,
        preload=True,
        memory_check_interval=0.5,
        timeout=300.0,
        restart_backoff_max=120.0,
    )
    assert config.metrics.listen == "127.0.0.1:9100"
    assert config.metrics.address == ("127.0.0.1", 9100)


def test_full_example_queues_override_only_what_they_set(in_tmp: Path) -> None:
    config = load_text(in_tmp, FULL_EXAMPLE)

    assert list(config.queues) == ["emails", "reports.v2"]
    assert config.queues["emails"] == QueueConfig(
        name="emails",
        workers=2,
        memory_limit=128_000_000,
        memory_hard_limit=GiB,
        max_jobs=1000,
        graceful_timeout=45.0,
        lease=60.0,
        timeout=20.0,
    )
    reports = config.queues["reports.v2"]
    assert (reports.workers, reports.lease, reports.memory_limit) == (4, 600.0, None)
    assert config.queue("emails") is config.queues["emails"]


# --------------------------------------------------------------------------------------------
# Validation: one problem per case, message names file, key path and what is wrong
# --------------------------------------------------------------------------------------------

INVALID = [
    ("[queues.emails]\nworkers = 0", "queues.emails.workers: must be an integer >= 1, got 0"),
    ("[pool]\nworkers = 0", "pool.workers: must be an integer >= 1, got 0"),
    ("[pool]\nworkers = true", "pool.workers: must be an integer >= 1, got boolean true"),
    ("[pool]\nworkers = 2.5", "pool.workers: must be an integer >= 1, got float 2.5"),
    ("[pool]\nmax_jobs = -1", "pool.max_jobs: must be an integer >= 0, got -1"),
    ("[redis]\nhost = 5", "redis.host: must be a string, got integer 5"),
    ("[redis]\nhost = ''", "redis.host: must not be empty"),
    ("[redis]\nhost = 1979-05-27", "redis.host: must be a string, got date"),
    ("[redis]\nhost = {a = 1}", "redis.host: must be a string, got table"),
    ("[redis]\nhost = ['a']", "redis.host: must be a string, got array"),
    ("[redis]\nport = 70000", "redis.port: must be an integer from 1 to 65535, got 70000"),
    ("[redis]\nport = '6379'", "redis.port: must be an integer from 1 to 65535, got string"),
    ("[redis]\ndatabase = -1", "redis.database: must be an integer >= 0, got -1"),
    ("[redis]\ndb = 1\ndatabase = 2", "redis.db: 'db' is another name for 'database'"),
    ("[redis]\nurl = 'http://example.com'", "redis.url: must be 'embedded' or a redis://"),
    ("[redis]\nurl = 'redis://'", "redis.url: a redis:// URL needs a host"),
    ("[redis]\nurl = 'unix://'", "redis.url: a unix:// URL needs a socket path"),
    ("[redis]\nurl = 'redis://h:notaport'", "redis.url: must be 'embedded' or a redis://"),
    ("[redis]\nprefix = 'my{app}'", "redis.prefix: must be 1 to 64 characters"),
    ("[redis]\nprefix = ':x'", "redis.prefix: must be 1 to 64 characters"),
    ("[redis]\nssl_cert_reqs = 'maybe'", "redis.ssl_cert_reqs: must be one of 'required'"),
    ("[redis]\nsocket_timeout = 0", "redis.socket_timeout: must be a duration > 0"),
    ("driver = 'sync'", "driver: must be one of 'redis', 'memory', got 'sync'"),
    ("log_level = 'verbose'", "log_level: must be one of 'debug', 'info', 'warning', 'error'"),
    ("log_format = 'xml'", "log_format: must be one of 'text', 'json', got 'xml'"),
    ("default_queue = 'a:b'", "default_queue: invalid queue name: must be 1 to 64 characters"),
    ("imports = 'myapp.jobs'", "imports: must be an array of dotted module names"),
    ("imports = ['ok.mod', 'my-app']", "imports: must be an array of dotted module names"),
    ("imports = ['a..b']", "not module names: string 'a..b'"),
    ("imports = ['class.jobs']", "not module names: string 'class.jobs'"),
    ("[queues.'bad:name']", 'queues."bad:name": invalid queue name: must be 1 to 64'),
    ("[queues.'has space']", 'queues."has space": invalid queue name'),
    ("[queues.'{tag}']", 'queues."{tag}": invalid queue name'),
    ("[queues.'-dash']", "queues.-dash: invalid queue name"),
    (f"[queues.{'q' * 65}]", "invalid queue name: must be 1 to 64 characters"),
    ("[queues]\nemails = 3", "queues.emails: must be a table, got integer 3"),
    ("queues = 3", "queues: must be a table of queue tables, got integer 3"),
    ("redis = 'localhost'", "redis: must be a table, got string 'localhost'"),
    ("[pool]\nlease = 0.5", "pool.lease: must be at least 1 second, got 0.5"),
    ("[pool]\nlease = '500ms'", "pool.lease: must be at least 1 second, got '500ms'"),
    ("[pool]\ngraceful_timeout = 0", "pool.graceful_timeout: must be a duration > 0"),
    ("[pool]\ngraceful_timeout = -3", "pool.graceful_timeout: must be a duration > 0"),
    ("[pool]\ngraceful_timeout = 'soon'", "got 'soon'"),
    ("[pool]\ngraceful_timeout = '5 fortnights'", "pool.graceful_timeout: must be a duration"),
    ("[pool]\ntimeout = true", "pool.timeout: must be a duration > 0"),
    ("[pool]\nmemory_check_interval = [1]", "memory_check_interval: must be a duration > 0"),
    ("[jobs]\ncompleted_ttl = 0", "jobs.completed_ttl: must be a duration > 0"),
    ("[jobs]\nfailed_ttl = '1y'", "jobs.failed_ttl: must be a duration > 0"),
    ("[pool]\npreload = 'yes'", "pool.preload: must be true or false, got string 'yes'"),
    ("[pool]\nmemory_limit = 'lots'", "pool.memory_limit: must be a size > 0"),
    ("[pool]\nmemory_limit = '-5MiB'", "got '-5MiB'"),
    ("[pool]\nmemory_limit = '12XB'", "got '12XB'"),
    ("[pool]\nmemory_limit = -5", "pool.memory_limit: must be a size > 0"),
    ("[pool]\nmemory_limit = true", "pool.memory_limit: must be a size > 0"),
    ("[jobs]\nmax_payload = 0", "jobs.max_payload: must be a size > 0"),
    ("[jobs]\nmax_payload = false", "jobs.max_payload: must be a size > 0"),
    ("[jobs]\nmax_payload = 'none'", "jobs.max_payload: must be a size > 0"),
    ("[jobs]\nmax_result = 0", "jobs.max_result: must be a size > 0"),
    ("[metrics]\nlisten = '9100'", "metrics.listen: must be 'host:port'"),
    ("[metrics]\nlisten = 'localhost:0'", "metrics.listen: must be 'host:port'"),
    ("[metrics]\nlisten = 'localhost:65536'", "metrics.listen: must be 'host:port'"),
    ("[metrics]\nlisten = ':9100'", "metrics.listen: must be 'host:port'"),
    ("[metrics]\nlisten = '::1:9100'", "IPv6 hosts in brackets"),
    (
        "[pool]\nmemory_limit = '1GiB'\nmemory_hard_limit = '512MiB'",
        "pool.memory_hard_limit: must be above memory_limit (1GiB), got 512MiB",
    ),
    (
        "[pool]\nmemory_limit = '1GiB'\nmemory_hard_limit = '1GiB'",
        "pool.memory_hard_limit: must be above memory_limit (1GiB), got 1GiB",
    ),
    (
        "[pool]\nmemory_limit = '1GiB'\n[queues.big]\nmemory_hard_limit = '512MiB'",
        "queues.big.memory_hard_limit: must be above memory_limit (1GiB), got 512MiB",
    ),
]


@pytest.mark.parametrize(("text", "expected"), INVALID, ids=[case[1] for case in INVALID])
def test_each_invalid_value_is_reported_with_file_and_key(
    in_tmp: Path, text: str, expected: str
) -> None:
    problems = errors_of(in_tmp, text)
    assert len(problems) == 1, problems
    assert problems[0].startswith("jobpool.toml: ")
    assert expected in problems[0]


@pytest.mark.parametrize(
    ("text", "forms"),
    [
        ("[pool]\nmemory_limit = 'lots'", ["256MiB", "KiB", "1.5GB", "'none'"]),
        ("[pool]\nlease = 'long'", ["500ms", "30s", "5m", "2h"]),
    ],
)
def test_nonsense_sizes_and_durations_list_the_accepted_forms(
    in_tmp: Path, text: str, forms: list[str]
) -> None:
    (problem,) = errors_of(in_tmp, text)
    for form in forms:
        assert form in problem


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("'256MiB'", 256 * MiB),
        ("'128MB'", 128_000_000),
        ("'1GiB'", GiB),
        ("'512KiB'", 512 * 1024),
        ("'64k'", 64 * 1024),
        ("'1.5GB'", 1_500_000_000),
        ("'2gib'", 2 * GiB),
        ("1048576", MiB),
        ("false", None),
        ("'none'", None),
        ("'None'", None),
        ("0", None),
    ],
)
def test_memory_limit_accepts_sizes_and_no_limit(in_tmp: Path, value: str, expected: int) -> None:
    config = load_text(in_tmp, f"[pool]\nmemory_limit = {value}")
    assert config.pool.memory_limit == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("30", 30.0), ("2.5", 2.5), ("'30s'", 30.0), ("'5m'", 300.0), ("'2h'", 7200.0)],
)
def test_durations_accept_numbers_and_unit_strings(
    in_tmp: Path, value: str, expected: float
) -> None:
    assert (
        load_text(in_tmp, f"[pool]\ngraceful_timeout = {value}").pool.graceful_timeout == expected
    )


@pytest.mark.parametrize("value", ["false", "'none'"])
def test_timeout_can_be_switched_off(in_tmp: Path, value: str) -> None:
    text = f"[pool]\ntimeout = 60\n[queues.slow]\ntimeout = {value}"
    config = load_text(in_tmp, text)
    assert config.pool.timeout == 60.0
    assert config.queues["slow"].timeout is None


def test_lease_of_exactly_one_second_is_accepted(in_tmp: Path) -> None:
    assert load_text(in_tmp, "[pool]\nlease = '1s'").pool.lease == 1.0


def test_hard_limit_alone_is_allowed(in_tmp: Path) -> None:
    config = load_text(in_tmp, "[pool]\nmemory_hard_limit = '1GiB'")
    assert (config.pool.memory_limit, config.pool.memory_hard_limit) == (None, GiB)


def test_queue_hard_limit_above_inherited_soft_limit_is_fine(in_tmp: Path) -> None:
    text = "[pool]\nmemory_limit = '256MiB'\n[queues.big]\nmemory_hard_limit = '1GiB'"
    big = load_text(in_tmp, text).queues["big"]
    assert (big.memory_limit, big.memory_hard_limit) == (256 * MiB, GiB)


def test_driver_accepts_memory_and_array_alias(in_tmp: Path) -> None:
    assert load_text(in_tmp, "driver = 'memory'").driver == "memory"
    assert load_text(in_tmp, "driver = 'array'").driver == "memory"


def test_redis_db_alias_sets_database(in_tmp: Path) -> None:
    assert load_text(in_tmp, "[redis]\ndb = 7").redis.database == 7


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0",
        "rediss://user@redis.example.com:6380/2",
        "unix:///run/redis/redis.sock?db=1",
        "redis://[::1]:6379",
    ],
)
def test_redis_accepts_urls(in_tmp: Path, url: str) -> None:
    redis = load_text(in_tmp, f"[redis]\nurl = '{url}'").redis
    assert redis.url == url
    assert redis.is_embedded is False
    assert redis.safe_url() == url


def test_redis_embedded(in_tmp: Path) -> None:
    redis = load_text(in_tmp, "[redis]\nurl = 'embedded'").redis
    assert redis.url == "embedded"
    assert redis.is_embedded is True
    assert redis.safe_url() == "embedded"


def test_metrics_listen_accepts_bracketed_ipv6(in_tmp: Path) -> None:
    metrics = load_text(in_tmp, "[metrics]\nlisten = '[::1]:9100'").metrics
    assert metrics.address == ("::1", 9100)


# --------------------------------------------------------------------------------------------
# All problems at once, unknown keys, TOML syntax, missing file
# --------------------------------------------------------------------------------------------


def test_all_problems_are_reported_at_once(in_tmp: Path) -> None:
    text = """
        log_level = "loud"
        [redis]
        hots = "x"
        port = 0
        [pool]
        workers = 0
        memory_limit = "lots"
        [queues.emails]
        workers = -1
        [queues."a b"]
        [metrics]
        listen = "nowhere"
    """
    problems = errors_of(in_tmp, text, env={"REDIS_DB": "x"})

    expected = [
        "jobpool.toml: log_level:",
        "jobpool.toml: unknown key 'redis.hots'",
        "jobpool.toml: redis.port:",
        "environment variable REDIS_DB:",
        "jobpool.toml: pool.workers:",
        "jobpool.toml: pool.memory_limit:",
        "jobpool.toml: queues.emails.workers:",
        'jobpool.toml: queues."a b": invalid queue name',
        "jobpool.toml: metrics.listen:",
    ]
    assert len(problems) == len(expected), problems
    for start in expected:
        assert any(problem.startswith(start) for problem in problems), start


def test_config_error_str_lists_one_problem_per_line(in_tmp: Path) -> None:
    write(in_tmp, "[pool]\nworkers = 0\nmax_jobs = -1")
    with pytest.raises(ConfigError) as info:
        load_config("jobpool.toml", env={})
    assert str(info.value).splitlines() == info.value.problems
    assert len(info.value.problems) == 2


def test_config_error_survives_pickling() -> None:
    error = ConfigError(["a: first", "a: second"])
    copy = pickle.loads(pickle.dumps(error))
    assert copy.problems == ["a: first", "a: second"]
    assert str(copy) == "a: first\na: second"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[redis]\nhots = 'x'", "jobpool.toml: unknown key 'redis.hots' (did you mean 'host'?)"),
        ("log_levle = 'info'", "jobpool.toml: unknown key 'log_levle' (did you mean 'log_level'?)"),
        ("[pol]\nworkers = 1", "jobpool.toml: unknown key 'pol' (did you mean 'pool'?)"),
        (
            "[queues.emails]\nworker = 2",
            "jobpool.toml: unknown key 'queues.emails.worker' (did you mean 'workers'?)",
        ),
        (
            "[queues.emails]\npreload = true",
            "jobpool.toml: unknown key 'queues.emails.preload'",
        ),
    ],
)
def test_unknown_keys_are_errors_with_suggestions(in_tmp: Path, text: str, expected: str) -> None:
    (problem,) = errors_of(in_tmp, text)
    assert problem == expected


def test_unknown_key_without_close_match_suggests_nothing(in_tmp: Path) -> None:
    (problem,) = errors_of(in_tmp, "[redis]\nxyzzy = 1")
    assert "did you mean" not in problem


def test_toml_syntax_error_names_line_and_column(in_tmp: Path) -> None:
    write(in_tmp, 'driver = "redis"\n\n[pool]\nworkers 4\n')
    with pytest.raises(ConfigError) as info:
        load_config("jobpool.toml", env={})
    (problem,) = info.value.problems
    assert problem.startswith("jobpool.toml: line 4, column 9: invalid TOML: ")
    assert "(at line" not in problem


def test_toml_error_at_end_of_file_says_so(in_tmp: Path) -> None:
    (problem,) = errors_of(in_tmp, 'driver = "redis')
    assert problem == "jobpool.toml: end of file: invalid TOML: Unterminated string"


def test_invalid_utf8_is_reported(in_tmp: Path) -> None:
    (in_tmp / "jobpool.toml").write_bytes(b'driver = "\xff"\n')
    with pytest.raises(ConfigError, match="jobpool.toml: .*invalid TOML"):
        load_config("jobpool.toml", env={})


def test_missing_file_is_a_clear_error(in_tmp: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("missing.toml", env={})
    assert info.value.problems == [f"missing.toml: config file not found (relative to {in_tmp})"]


def test_directory_instead_of_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path, env={})


# --------------------------------------------------------------------------------------------
# Environment overrides
# --------------------------------------------------------------------------------------------

FILE_WITH_URL = """
driver = "memory"
default_queue = "file-queue"
[redis]
url = "redis://file-host:7000/1"
host = "file-host"
port = 7000
prefix = "fileprefix"
"""


def test_env_overrides_top_level_and_redis_fields(in_tmp: Path) -> None:
    env = {
        "QUEUE_DRIVER": "redis",
        "QUEUE_DEFAULT": "env-queue",
        "REDIS_USERNAME": "envuser",
        "REDIS_DB": "4",
        "JOBPOOL_PREFIX": "envprefix",
    }
    config = load_text(in_tmp, FILE_WITH_URL, env=env)
    assert config.driver == "redis"
    assert config.default_queue == "env-queue"
    assert config.redis.username == "envuser"
    assert config.redis.database == 4
    assert config.redis.prefix == "envprefix"


def test_without_env_the_file_wins(in_tmp: Path) -> None:
    config = load_text(in_tmp, FILE_WITH_URL, env={})
    assert (config.driver, config.default_queue) == ("memory", "file-queue")
    assert config.redis.url == "redis://file-host:7000/1"


def test_empty_env_values_count_as_unset(in_tmp: Path) -> None:
    env = {"REDIS_HOST": "", "REDIS_URL": "", "QUEUE_DRIVER": ""}
    config = load_text(in_tmp, FILE_WITH_URL, env=env)
    assert config.redis.url == "redis://file-host:7000/1"
    assert config.driver == "memory"


def test_env_redis_host_and_port_replace_the_file_url(in_tmp: Path) -> None:
    redis = load_text(in_tmp, FILE_WITH_URL, env={"REDIS_HOST": "env-host"}).redis
    assert redis.url is None
    assert (redis.host, redis.port) == ("env-host", 7000)

    redis = load_text(in_tmp, FILE_WITH_URL, env={"REDIS_PORT": "6390"}).redis
    assert redis.url is None
    assert (redis.host, redis.port) == ("file-host", 6390)


def test_env_redis_url_beats_env_host_and_the_file(in_tmp: Path) -> None:
    env = {"REDIS_URL": "redis://env-url:6000/2", "REDIS_HOST": "env-host"}
    redis = load_text(in_tmp, FILE_WITH_URL, env=env).redis
    assert redis.url == "redis://env-url:6000/2"


def test_env_redis_url_works_without_a_file(tmp_path: Path) -> None:
    redis = default_config(env={"REDIS_URL": "embedded"}).redis
    assert redis.is_embedded


def test_env_password_applies_on_top_of_a_url_without_password(in_tmp: Path) -> None:
    redis = load_text(in_tmp, FILE_WITH_URL, env={"REDIS_PASSWORD": SECRET}).redis
    assert redis.url == "redis://file-host:7000/1"
    assert redis.password == SECRET


def test_env_password_replaces_the_password_inside_a_url(in_tmp: Path) -> None:
    text = "[redis]\nurl = 'redis://user:old-password@h:6379/0?password=old2&db=1'"
    redis = load_text(in_tmp, text, env={"REDIS_PASSWORD": SECRET}).redis
    assert redis.url == "redis://user@h:6379/0?db=1"
    assert redis.password == SECRET


def test_env_url_with_password_drops_the_file_password(in_tmp: Path) -> None:
    text = "[redis]\npassword = 'file-password'"
    redis = load_text(in_tmp, text, env={"REDIS_URL": f"redis://:{SECRET}@h/0"}).redis
    assert redis.url == f"redis://:{SECRET}@h/0"
    assert redis.password is None


def test_env_password_applies_in_host_mode(in_tmp: Path) -> None:
    redis = load_text(in_tmp, "[redis]\npassword = 'file'", env={"REDIS_PASSWORD": SECRET}).redis
    assert redis.password == SECRET


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"REDIS_PORT": "abc"}, "environment variable REDIS_PORT: must be an integer from 1"),
        ({"REDIS_PORT": "0"}, "environment variable REDIS_PORT: must be an integer from 1"),
        ({"REDIS_DB": "-1"}, "environment variable REDIS_DB: must be an integer >= 0, got -1"),
        ({"QUEUE_DRIVER": "sync"}, "environment variable QUEUE_DRIVER: must be one of"),
        (
            {"QUEUE_DEFAULT": "a:b"},
            "environment variable QUEUE_DEFAULT: invalid queue name: must be 1 to 64",
        ),
        ({"JOBPOOL_PREFIX": "{x}"}, "environment variable JOBPOOL_PREFIX: must be 1 to 64"),
        ({"REDIS_URL": "mysql://db"}, "environment variable REDIS_URL: must be 'embedded'"),
    ],
)
def test_invalid_env_values_name_the_variable(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        default_config(env=env)
    (problem,) = info.value.problems
    assert problem.startswith(expected)


# --------------------------------------------------------------------------------------------
# Secrets never show
# --------------------------------------------------------------------------------------------


def test_password_is_not_in_repr_or_str(in_tmp: Path) -> None:
    config = load_text(in_tmp, f"[redis]\nusername = 'u'\npassword = '{SECRET}'")
    assert config.redis.password == SECRET
    for text in (repr(config), str(config), repr(config.redis), str(config.redis)):
        assert SECRET not in text
        assert "password='***'" in text
    assert config.redis.safe_url() == "redis://u:***@localhost:6379/0"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (f"redis://user:{SECRET}@h:6379/0", "redis://user:***@h:6379/0"),
        (f"rediss://:{SECRET}@h", "rediss://:***@h"),
        (f"redis://h/0?password={SECRET}&db=2", "redis://h/0?password=***&db=2"),
        (f"unix://:{SECRET}@/run/redis.sock", "unix://:***@/run/redis.sock"),
    ],
)
def test_password_inside_url_is_masked(in_tmp: Path, url: str, masked: str) -> None:
    config = load_text(in_tmp, f"[redis]\nurl = '{url}'")
    assert config.redis.url == url
    assert config.redis.safe_url() == masked
    assert SECRET not in repr(config)
    assert masked in repr(config.redis)


@pytest.mark.parametrize(
    ("text", "env"),
    [
        ("[redis]\npassword = 123456789", {}),
        ("[redis]\npassword = ['s3cr3t-Pa55word']", {}),
        (f"[redis]\nurl = 'redis//:{SECRET}@host'", {}),
        (f"[redis]\nurl = 'http://u:{SECRET}@host'", {}),
        (f"[redis]\nurl = 'redis://u:{SECRET}@host:notaport'", {}),
        ("[redis]\nport = 'x'", {"REDIS_URL": f"redis:{SECRET}@host"}),
        ("[redis]\nport = 'x'", {"REDIS_PASSWORD": SECRET, "REDIS_PORT": "nope"}),
        (f"[redis]\nurl = 'redis://u:{SECRET}@h'\npassword = '{SECRET}'", {}),
    ],
)
def test_passwords_never_appear_in_errors(in_tmp: Path, text: str, env: dict[str, str]) -> None:
    problems = errors_of(in_tmp, text, env=env)
    message = "\n".join(problems)
    assert SECRET not in message
    assert "123456789" not in message


def test_password_in_both_url_and_password_key_is_an_error(in_tmp: Path) -> None:
    (problem,) = errors_of(in_tmp, "[redis]\nurl = 'redis://:a@h'\npassword = 'b'")
    assert problem.startswith("jobpool.toml: redis.password: the password is also set inside")


@pytest.mark.parametrize("url", [f"redis//:{SECRET}@host", f"redis://:{SECRET}@[::1"])
def test_repr_of_an_unparseable_url_hides_everything(url: str) -> None:
    redis = RedisConfig(url=url)
    assert SECRET not in repr(redis)
    assert redis.safe_url() == "<invalid Redis URL>"


# --------------------------------------------------------------------------------------------
# queue() and paths
# --------------------------------------------------------------------------------------------


def test_queue_falls_back_to_pool_defaults_for_unlisted_names(in_tmp: Path) -> None:
    text = """
        [pool]
        workers = 3
        memory_limit = "100MiB"
        memory_hard_limit = "200MiB"
        max_jobs = 50
        graceful_timeout = 12
        lease = 40
        timeout = 90
        [queues.emails]
        workers = 1
    """
    config = load_text(in_tmp, text)
    assert config.queue("unlisted-queue") == QueueConfig(
        name="unlisted-queue",
        workers=3,
        memory_limit=100 * MiB,
        memory_hard_limit=200 * MiB,
        max_jobs=50,
        graceful_timeout=12.0,
        lease=40.0,
        timeout=90.0,
    )
    assert "unlisted-queue" not in config.queues
    assert config.queue("emails").workers == 1
    assert config.queue("emails").max_jobs == 50


@pytest.mark.parametrize("name", ["bad:name", "", "a b", "{x}", "q" * 65])
def test_queue_rejects_invalid_names(name: str) -> None:
    with pytest.raises(ConfigError, match="must be 1 to 64 characters"):
        default_config(env={}).queue(name)


def test_data_dir_is_resolved_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "etc" / "jobpool"
    config_dir.mkdir(parents=True)
    write(config_dir, "[redis]\ndata_dir = 'state/redis'")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    config = load_config(Path("..") / "etc" / "jobpool" / "jobpool.toml", env={})
    assert config.redis.data_dir.resolve() == config_dir / "state" / "redis"
    assert config.base_dir.resolve() == config_dir


def test_default_data_dir_sits_next_to_the_config_file(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert load_config(path, env={}).redis.data_dir == tmp_path / ".jobpool"


def test_absolute_and_home_data_dirs_are_kept(tmp_path: Path) -> None:
    absolute = tmp_path / "abs"
    config = load_config(write(tmp_path, f"[redis]\ndata_dir = '{absolute}'"), env={})
    assert config.redis.data_dir == absolute
    config = load_config(write(tmp_path, "[redis]\ndata_dir = '~/jp'"), env={})
    assert config.redis.data_dir == Path.home() / "jp"


def test_config_from_dict_uses_its_source_and_base_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"pool": {"workers": 0}}, source="inline", env={})
    assert info.value.problems[0].startswith("inline: pool.workers:")

    config = config_from_dict({}, base_dir=tmp_path, env={})
    assert config.source == "<dict>"
    assert config.redis.data_dir == tmp_path / ".jobpool"


# --------------------------------------------------------------------------------------------
# jobpool.config.units
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1),
        (4096, 4096),
        (2048.0, 2048),
        ("100", 100),
        ("10B", 10),
        ("64k", 65536),
        ("64K", 65536),
        ("2KB", 2000),
        ("2kib", 2048),
        ("3M", 3 * MiB),
        ("3MB", 3_000_000),
        ("3MiB", 3 * MiB),
        ("1G", GiB),
        ("1.5GB", 1_500_000_000),
        ("1.5GiB", 3 * GiB // 2),
        (" 256 MiB ", 256 * MiB),
        (0, None),
        ("0", None),
        (False, None),
        (None, None),
        ("none", None),
        ("NONE", None),
    ],
)
def test_parse_size(value: object, expected: int | None) -> None:
    assert parse_size(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value", ["lots", "-5MiB", "12XB", "", "MiB", "1.2.3MB", -1, True, float("inf"), "0.1B", [1]]
)
def test_parse_size_rejects_nonsense_with_the_accepted_forms(value: object) -> None:
    with pytest.raises(ValueError, match="KiB") as info:
        parse_size(value)  # type: ignore[arg-type]
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (30, 30.0),
        (0.25, 0.25),
        ("30", 30.0),
        ("30s", 30.0),
        ("500ms", 0.5),
        ("5m", 300.0),
        ("5min", 300.0),
        ("2h", 7200.0),
        ("1.5h", 5400.0),
        ("1d", 86400.0),
        ("10S", 10.0),
    ],
)
def test_parse_duration(value: object, expected: float) -> None:
    assert parse_duration(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -1, "0s", "-5s", "soon", "5 weeks", True, None, float("nan")])
def test_parse_duration_rejects_nonsense_with_the_accepted_forms(value: object) -> None:
    with pytest.raises(ValueError, match="500ms"):
        parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (None, "unlimited"),
        (0, "0B"),
        (1000, "1000B"),
        (1024, "1KiB"),
        (1536, "1.5KiB"),
        (256 * MiB, "256MiB"),
        (1_500_000_000, "1.4GiB"),
        (3 * GiB, "3GiB"),
    ],
)
def test_format_size(size: int | None, text: str) -> None:
    assert format_size(size) == text


@pytest.mark.parametrize("size", [1, 1024, 64 * 1024, 256 * MiB, 5 * GiB])
def test_format_size_round_trips_exact_sizes(size: int) -> None:
    assert parse_size(format_size(size)) == size


@pytest.mark.parametrize("size", [-1, 1.5, True])
def test_format_size_rejects_non_sizes(size: object) -> None:
    with pytest.raises(ValueError):
        format_size(size)  # type: ignore[arg-type]


def test_max_result_is_read_and_reaches_the_manager(tmp_path):
    from jobpool import QueueManager

    path = tmp_path / "jobpool.toml"
    path.write_text('driver = "memory"\n[jobs]\nmax_result = "64KiB"\n')
    config = load_config(path, env={})
    assert config.jobs.max_result == 65536
    assert QueueManager.from_config(config).max_result == 65536
