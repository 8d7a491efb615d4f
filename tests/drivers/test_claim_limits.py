"""A queue's rate_limit and max_running, decided at each claim on both drivers: a claim takes
no more than the limits allow, and one that may take nothing says how long to wait."""

from __future__ import annotations

import time

from jobs import Record

from jobpool.limits import Limits, RateLimit


def test_a_rate_limit_allows_a_burst_then_says_when_the_next_claim_may_start(qm):
    qm.push_many([Record("/dev/null") for _ in range(10)])
    session = qm.driver.session()
    limits = Limits(rate=RateLimit(4, 1.0))
    claimed = []
    for _ in range(4):  # the burst, one job per claim, each begun by its claim
        (one,) = session.fetch("default", "w1", count=10, held=claimed, limits=limits).deliveries
        assert one.record["status"] == "processing"
        claimed.append(one.id)
    later = session.fetch("default", "w1", count=10, held=claimed, limits=limits)
    assert later.deliveries == [] and 0.3 < later.limited_for <= 1.0  # the window is 1 s
    time.sleep(later.limited_for + 0.01)
    again = session.fetch("default", "w1", count=10, held=claimed, limits=limits)
    assert len(again.deliveries) == 1


def test_max_running_counts_what_every_worker_holds(qm):
    qm.push_many([Record("/dev/null") for _ in range(10)])
    limits = Limits(max_running=3)
    one, two = qm.driver.session(), qm.driver.session()
    assert len(one.fetch("default", "w1", count=2, limits=limits).deliveries) == 2
    got = two.fetch("default", "w2", count=5, limits=limits)
    assert len(got.deliveries) == 1  # 2 held by w1, 1 left under the limit
    full = two.fetch("default", "w2", count=5, held=[got.deliveries[0].id], limits=limits)
    assert full.deliveries == [] and full.limited_for is not None and full.limited_for > 0
    # A job that ends frees its place.
    two.complete(got.deliveries[0])
    two.flush()
    assert len(two.fetch("default", "w2", count=5, held=[], limits=limits).deliveries) == 1


def test_no_limits_claim_as_before(qm):
    qm.push_many([Record("/dev/null") for _ in range(5)])
    fetched = qm.driver.session().fetch("default", "w1", count=5, limits=None)
    assert len(fetched.deliveries) == 5 and fetched.limited_for is None
