"""Parsing rate limits ("100/s") and the limits a queue's config gives its workers."""

from __future__ import annotations

import pytest

from jobpool.config import ConfigError
from jobpool.config.load import config_from_dict
from jobpool.limits import Limits, RateLimit, parse_rate


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("100/s", RateLimit(100, 1.0)),
        ("5/m", RateLimit(5, 60.0)),
        ("1000/h", RateLimit(1000, 3600.0)),
        (" 30 / 10s ", RateLimit(30, 10.0)),
    ],
)
def test_rates_parse(text, want):
    assert parse_rate(text) == want


@pytest.mark.parametrize("text", ["", "100", "100/d", "0/s", "1/0s", "-1/s", "ten/s"])
def test_bad_rates_are_refused_with_the_forms_that_work(text):
    with pytest.raises(ValueError, match="must"):
        parse_rate(text)


def test_a_queue_gets_its_limits_and_no_limit_is_falsy():
    cfg = config_from_dict(
        {"queues": {"api": {"rate_limit": "20/s", "max_running": 3}, "other": {}}}
    )
    assert cfg.queue("api").limits == Limits(RateLimit(20, 1.0), 3)
    assert not cfg.queue("other").limits


def test_a_bad_rate_limit_names_the_queue_and_key():
    with pytest.raises(ConfigError, match=r"queues\.api.*rate_limit"):
        config_from_dict({"queues": {"api": {"rate_limit": "fast"}}})
