"""The order a worker serving several queues looks at them: strict priority, or by weight."""

from __future__ import annotations

import collections

import pytest

from jobpool.config import ConfigError
from jobpool.config.load import config_from_dict
from jobpool.worker.claim_order import ClaimOrder


def test_strict_order_is_always_the_configured_one():
    order = ClaimOrder(["urgent", "default", "low"])
    assert all(order.next() == ["urgent", "default", "low"] for _ in range(20))


def test_weights_draw_the_first_queue_in_proportion():
    order = ClaimOrder(["a", "b", "c"], [6, 3, 1])
    firsts = collections.Counter(order.next()[0] for _ in range(6000))
    assert 3300 < firsts["a"] < 4300 and 1400 < firsts["b"] < 2200 and 400 < firsts["c"] < 800
    assert all(sorted(order.next()) == ["a", "b", "c"] for _ in range(50))  # all, each once


def test_a_group_serves_its_queues_and_each_keeps_its_own_limits():
    cfg = config_from_dict(
        {
            "queues": {
                "web": {"serve": ["urgent", "default"], "rate_limit": "5/s"},
                "urgent": {"max_running": 2},
            }
        }
    )
    web = cfg.queue("web")
    assert web.served == ("urgent", "default") and cfg.queue("urgent").served == ("urgent",)
    limits = cfg.served_limits(web)
    assert limits["urgent"].max_running == 2 and limits["urgent"].rate is None
    assert limits["default"].rate is not None and limits["default"].rate.count == 5
    assert cfg.served_queues() == ["urgent", "default"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"weights": [1, 2]}, r"queues\.web\.weights: needs `serve`"),
        ({"serve": ["a", "b"], "weights": [1]}, r"one weight per queue of serve \(2\), got 1"),
        ({"serve": ["a", "a"]}, r"queues\.web\.serve: names a queue twice"),
        ({"serve": []}, r"queues\.web\.serve: must be a non-empty list"),
        ({"serve": ["no spaces"]}, r"queues\.web\.serve: invalid queue name"),
        ({"serve": ["a"], "weights": [0]}, r"queues\.web\.weights: must be an integer >= 1"),
    ],
)
def test_bad_serve_lists_name_the_key(table, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"queues": {"web": table}})
