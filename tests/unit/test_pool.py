"""PoolPlan: which worker slots the master wants (pure logic, no processes)."""

from __future__ import annotations

from jobpool.config import config_from_dict
from jobpool.supervisor.children import Slot
from jobpool.supervisor.plan import PoolPlan


def cfg(**data):
    return config_from_dict(data, env={})


def test_slots_per_queue_from_the_config():
    plan = PoolPlan(cfg(queues={"default": {"workers": 2}, "emails": {"workers": 1}}))
    assert plan.wanted() == {Slot("default", 0), Slot("default", 1), Slot("emails", 0)}
    assert plan.describe() == "default x2, emails x1"


def test_without_queues_the_default_queue_runs_pool_workers():
    plan = PoolPlan(cfg(default_queue="jobs", pool={"workers": 3}))
    assert plan.wanted() == {Slot("jobs", i) for i in range(3)}


def test_grow_and_shrink_every_queue_keeping_one_worker():
    plan = PoolPlan(cfg(queues={"a": {"workers": 1}, "b": {"workers": 3}}))
    plan.grow()
    assert plan.describe() == "a x2, b x4"
    for _ in range(5):
        plan.shrink()
    assert plan.describe() == "a x1, b x3"  # never below one worker on any queue


def test_reload_gives_changed_queues_a_new_generation_only():
    plan = PoolPlan(cfg(queues={"a": {"workers": 1}, "b": {"workers": 1}, "c": {"workers": 1}}))
    removed = plan.reload(cfg(queues={"a": {"workers": 1}, "b": {"workers": 2}}))
    assert removed == ["c"]
    assert plan.wanted() == {Slot("a", 0), Slot("b", 0, 1), Slot("b", 1, 1)}


def test_reload_of_shared_settings_replaces_every_queue():
    plan = PoolPlan(cfg(queues={"a": {"workers": 1}}))
    plan.reload(cfg(imports=["myapp.jobs"], queues={"a": {"workers": 1}}))
    assert plan.wanted() == {Slot("a", 0, 1)}


def test_reload_of_master_only_settings_keeps_the_workers():
    plan = PoolPlan(cfg(queues={"a": {"workers": 1}}))
    plan.reload(cfg(pool={"memory_check_interval": 5}, queues={"a": {"workers": 1}}))
    assert plan.wanted() == {Slot("a", 0, 0)}
