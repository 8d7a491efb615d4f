"""Each Lua script's header against the pure functions that build its KEYS and ARGV, and the rules
every script keeps; no Redis (the scripts run against a real server in
tests/drivers/test_lua_scripts.py)."""

from __future__ import annotations

import re

import pytest

from jobpool.drivers import base
from jobpool.drivers.redis import scripts as s
from jobpool.drivers.redis.keys import QueueKeys

K = QueueKeys("jobpool", "default")
BUILDERS = {
    "enqueue": lambda: s.enqueue_keys(K, "order:42"),
    "fetch": lambda: s.fetch_keys(K, "w1"),
    "begin": lambda: s.begin_keys(K, "w1"),
    "ack": lambda: s.ack_keys(K, "w1"),
    "retry_or_fail": lambda: s.retry_or_fail_keys(K, "w1"),
    "requeue": lambda: s.requeue_keys(K, "w1"),
    "release": lambda: s.release_keys(K, "w1"),
    "renew": lambda: s.renew_keys(K),
    "retry_failed": lambda: s.retry_failed_keys(K),
    "delete": lambda: s.delete_keys(K),
    "cancel": lambda: s.cancel_keys(K),
    "watch": lambda: s.watch_keys(K),
    "schedule_tick": lambda: s.schedule_tick_keys(K, "nightly", "order:42"),
    "enqueue_flow": lambda: s.enqueue_flow_keys(K),
}
JOBS = [("default:a", "{}", {"job": "Record"}), ("default:b", "{}", {"job": "Record"})]
# Each script's ARGV builder, called with a two-item tail where the script takes one, and that
# tail's length: enqueue takes a triple per job.
ARGS = {
    "enqueue": (lambda: s.enqueue_args(0, JOBS, 60_000), 6),
    "fetch": (lambda: s.fetch_args("w1", 1, 30_000, 100, ["default:a", "default:b"]), 2),
    "begin": (lambda: s.begin_args("default:a", "w1"), 0),
    "ack": (lambda: s.ack_args(1000, "", "w1", ["default:a", "default:b"], results=["1"]), 4),
    "retry_or_fail": (lambda: s.retry_or_fail_args("default:a", 0, "E", "tb", 1000, False), 0),
    "requeue": (lambda: s.requeue_args("w1", "lost", 1000, True, True), 0),
    "release": (lambda: s.release_args("w1", 1000, ["default:a", "default:b"]), 2),
    "renew": (lambda: s.renew_args(1000, ["w1", "w2"]), 2),
    "retry_failed": (lambda: s.retry_failed_args(["default:a", "default:b"]), 2),
    "delete": (lambda: s.delete_args("default:a"), 0),
    "cancel": (lambda: s.cancel_args("default:a", 1000), 0),
    "watch": (lambda: s.watch_args("default:a", K.done("default:a")), 0),
    "schedule_tick": (lambda: s.schedule_tick_args(60_000, True, 60_000, JOBS[0], 1000), 0),
    "enqueue_flow": (lambda: s.enqueue_flow_args("chain:default:c", {}, JOBS, [True, False]), 8),
}
HEADER_KEY = re.compile(r"^KEYS\[(\d+)\]\s+(\w+)", re.MULTILINE)
HEADER_ARG = re.compile(r"^ARGV\[(\d+)(\.\.)?\]\s+(.*)$", re.MULTILINE)


@pytest.mark.parametrize("name", s.OPERATIONS)
def test_header_documents_each_key_in_the_builders_order(name):
    text = s.source(name)
    documented = [(int(i), part) for i, part in HEADER_KEY.findall(text)]
    built = BUILDERS[name]()
    assert [i for i, _ in documented] == list(range(1, len(built) + 1))
    for (_, part), key in zip(documented, built, strict=True):
        assert key.split(":")[2] == part, f"{name}: KEYS documents {part}, builder gives {key}"
    used = {int(i) for i in re.findall(r"KEYS\[(\d+)\]", text.split("]]", 1)[1])}
    assert used <= set(range(1, len(built) + 1))


@pytest.mark.parametrize("name", s.OPERATIONS)
def test_header_documents_each_argument_in_the_builders_order(name):
    text = s.source(name)
    header, body = text.split("]]", 1)
    documented = [(int(i), bool(tail)) for i, tail, _ in HEADER_ARG.findall(header)]
    build, tail = ARGS[name]
    built = build()
    fixed = [i for i, is_tail in documented if not is_tail]
    assert fixed == list(range(1, len(fixed) + 1)), f"{name}: ARGV lines out of order"
    assert [i for i, is_tail in documented if is_tail] == ([len(fixed) + 1] if tail else [])
    assert len(built) == len(fixed) + tail, f"{name}: the builder gives {built}"
    used = {int(i) for i in re.findall(r"ARGV\[(\d+)\]", body)}
    assert set(fixed) <= used, f"{name}: a documented argument the script never reads"
    tail_start = {len(fixed) + 1} if tail else set()
    assert used <= set(fixed) | tail_start, f"{name}: the script reads an undocumented one"


def test_the_ack_argument_the_session_fills_late_names_the_next_job():
    lines = {int(i): line for i, _, line in HEADER_ARG.findall(s.source("ack"))}
    assert "begins next" in lines[s.ACK_NEXT + 1]
    assert s.ack_args(1000, "default:n", "w1", ["default:a"])[s.ACK_NEXT] == "default:n"


def test_the_ack_takes_a_result_per_job_and_empty_for_none():
    args = s.ack_args(1000, "", "w1", ["default:a", "default:b"], results=['{"x":1}'])
    assert args[4:] == ["default:a", '{"x":1}', "default:b", ""]


def test_python_and_lua_agree_on_the_statuses_of_a_finished_job():
    statuses = re.findall(r"status == '(\w+)'", s.source("watch"))
    assert set(statuses) == base.FINISHED
    assert K.done("default:a") == "jobpool:{default}:done:default:a"  # the queue's hash tag


def test_python_and_lua_share_the_wake_token_and_the_hook_states():
    common = s.source("fetch")
    assert re.search(r"^local WAKE = '(.*?)'", common, re.MULTILINE).group(1) == s.WAKE
    for name in ("HOOK_PENDING", "HOOK_STARTED"):
        lua = re.search(rf"^local {name} = (\d+)", common, re.MULTILINE).group(1)
        assert int(lua) == getattr(base, name)


def test_a_unique_key_is_optional_and_shares_the_queue_slot():
    assert s.enqueue_keys(K) == s.enqueue_keys(K, "k")[:5]
    assert s.enqueue_keys(K, "order:{7}")[5] == "jobpool:{default}:unique:order:{7}"
    assert s.enqueue_args(0, JOBS)[1] == 0  # no hold without a key


def test_python_and_lua_agree_on_the_statuses_that_hold_a_unique_key():
    table = re.search(r"^local WAITING_OR_RUNNING = \{(.*?)\}", s.source("enqueue"), re.MULTILINE)
    assert set(re.findall(r"(\w+) = true", table.group(1))) == base.WAITING_OR_RUNNING


# Scripts that read keys they name themselves, each in the slot of a declared key: fetch's
# max_running sums the lengths of the queue's workers' lists, named after its own (KEYS[6]).
SAME_SLOT_NAMES = {"fetch": "local wip = base .. w"}


@pytest.mark.parametrize("name", s.OPERATIONS)
def test_scripts_never_use_the_keys_command_or_build_key_names(name):
    text = s.source(name)
    assert not re.search(r"redis\.call\(\s*'KEYS'", text, re.IGNORECASE)
    assert not re.search(r"redis\.call\([^)]*\.\.", text), "a key name built inside Lua"
    built = re.findall(r"^\s*local \w+ = \w+ \.\. \w+\s*(?:--.*)?$", text, re.MULTILINE)
    allowed = [SAME_SLOT_NAMES[name]] if name in SAME_SLOT_NAMES else []
    assert [line.split("--")[0].strip() for line in built] == allowed


def test_every_key_of_a_queue_shares_one_hash_slot():
    keys = {key for build in BUILDERS.values() for key in build()}
    assert {re.search(r"\{(.*?)\}", key).group(1) for key in keys} == {"default"}
    assert K.ready == "jobpool:{default}:ready"


def test_include_lines_are_expanded():
    assert "-- @include" not in s.source("fetch")
    assert "local function now_ms" in s.source("fetch")
    assert "local function flow_outcome" in s.source("ack")  # common.lua includes flows.lua
