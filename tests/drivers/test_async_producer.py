"""The async producer methods (`await qm.apush(...)`, `await qm.aresult(...)`, and
`await fn.apush(...)` for job functions), for async web apps: run under a running event loop,
on both drivers (redis-py's asyncio client on the real server)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from job_functions import Multiply, add, boom
from jobs import Once, Record

from jobpool import JobFailed, Outcome, Worker
from jobpool.errors import JobEncodeError, JobNotFoundError

QM_BACKENDS = ("memory", "redis", "cluster")  # see tests/conftest.py


def test_apush_and_aresult_under_a_running_loop(qm):
    async def main() -> tuple[str, str]:
        try:
            a = await qm.apush(Multiply(6, 7))
            b = await add.apush(1, 2, manager=qm)
            return a, b
        finally:
            await qm.aclose()

    a, b = asyncio.run(main())
    assert qm.get_job_status(a)["status"] == "queued"
    assert qm.get_job_status(b)["job"] == "add"
    worker = Worker(qm)
    assert worker.process(qm.pop()) is Outcome.COMPLETED
    assert worker.process(qm.pop()) is Outcome.COMPLETED

    async def results() -> list[object]:
        try:
            return [await qm.aresult(a), await qm.aresult(b, timeout=1)]
        finally:
            await qm.aclose()

    assert asyncio.run(results()) == [42, 3]


@pytest.mark.timing
def test_aresult_waits_without_blocking_the_loop(qm):
    job_id = add.push(2, 3, manager=qm)

    def work() -> None:
        time.sleep(0.3)
        Worker(qm).process(qm.pop(timeout=5))

    async def main() -> tuple[object, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        try:
            return await qm.aresult(job_id, timeout=10), ticks
        finally:
            ticker.cancel()
            await qm.aclose()

    thread = threading.Thread(target=work)
    thread.start()
    started = time.monotonic()
    result, ticks = asyncio.run(main())
    thread.join()
    assert result == 5
    assert time.monotonic() - started < 0.9  # woken by the ack
    assert ticks >= 10  # the loop kept running while it waited


def test_aresult_raises_job_failed_timeout_and_not_found(qm):
    failed = boom.push("async side", manager=qm)
    Worker(qm).process(qm.pop())
    waiting = add.push(1, 1, manager=qm)

    async def main() -> None:
        try:
            with pytest.raises(JobFailed, match="ValueError: async side"):
                await qm.aresult(failed)
            with pytest.raises(TimeoutError, match="still queued after 0.2s"):
                await qm.aresult(waiting, timeout=0.2)
            with pytest.raises(JobNotFoundError):
                await qm.aresult("default:nope")
        finally:
            await qm.aclose()

    asyncio.run(main())


def test_async_pushes_validate_like_push_and_store_nothing_bad(qm):
    async def main() -> None:
        try:
            with pytest.raises(JobEncodeError, match="argument 'b'"):
                await add.apush(1, object(), manager=qm)
            job = Multiply(1, 2)
            job.a = {1}  # type: ignore[assignment]
            with pytest.raises(JobEncodeError, match="attribute 'a'"):
                await qm.apush(job)
        finally:
            await qm.aclose()

    asyncio.run(main())
    assert qm.size() == 0


def test_alater_and_apush_many(qm):
    async def main() -> tuple[str, str, list[str]]:
        try:
            late = await qm.alater(Multiply(1, 1), 30)
            late_fn = await add.alater(30, 1, 1, manager=qm)
            many = await qm.apush_many([Multiply(1, 2), add.job(2, 2)], queue="bulk")
            return late, late_fn, many
        finally:
            await qm.aclose()

    late, late_fn, many = asyncio.run(main())
    assert qm.get_job_status(late)["status"] == "delayed"
    assert qm.get_job_status(late_fn)["status"] == "delayed"
    assert [i.split(":")[0] for i in many] == ["bulk", "bulk"] and qm.size("bulk") == 2


def test_each_event_loop_gets_its_own_client(qm):
    """redis-py's asyncio connections belong to the loop that made them: a second loop (a
    second asyncio.run(), a test's own loop) must not be handed the first one's."""
    loops = [asyncio.new_event_loop(), asyncio.new_event_loop()]
    try:
        ids = [loop.run_until_complete(add.apush(1, 1, manager=qm)) for loop in loops * 2]
        assert len(set(ids)) == 4 and qm.size() == 4
    finally:
        for loop in loops:
            loop.run_until_complete(qm.aclose())
            loop.close()


def test_async_pushes_with_unique_keys_behave_as_push(qm, tmp_path):
    path = str(tmp_path / "out")

    async def main() -> tuple[str, str, str]:
        try:
            first = await qm.apush(Record(path, "a"), unique_key="order:42", unique_for=60)
            assert await qm.apush(Record(path, "b"), unique_key="order:42") == first
            assert await qm.apush_unique(Record(path), unique_key="order:42") == (first, False)
            late = await qm.alater(Record(path), 60, unique_key="report:7")
            assert await qm.alater(Record(path), 5, unique_key="report:7") == late
            assert await qm.apush(Record(path), unique_key="report:7") == late
            assert await qm.apush_unique(Record(path), unique_key="report:7", delay=5) == (
                late,
                False,
            )
            fresh, created = await qm.apush_unique(Record(path), unique_key="new", delay=30)
            assert created and fresh not in (first, late)
            once = await qm.apush(Once(path, 1))  # unique = True: keyed by class and arguments
            assert await qm.apush_unique(Once(path, 1)) == (once, False)
            assert await qm.apush(Once(path, 2)) != once
            return first, late, once
        finally:
            await qm.aclose()

    first, late, once = asyncio.run(main())
    assert qm.size() == 5
    # the blocking side sees the keys the async side took, in the same records
    assert qm.push(Record(path), unique_key="order:42") == first
    assert qm.later(Record(path), 60, unique_key="report:7") == late
    assert qm.push(Once(path, 1)) == once
    assert qm.get_job_status(first)["unique_key"] == "order:42"
    assert qm.get_job_status(late)["status"] == "delayed"
    synced = qm.push(Record(path, "a"), unique_key="sync", unique_for=60)
    assert set(qm.get_job_status(first)) == set(qm.get_job_status(synced))


def test_async_unique_keys_are_released_and_lapse_as_with_push(qm, tmp_path):
    path = str(tmp_path / "out")

    async def push(unique_for: float | None = None) -> tuple[str, bool]:
        try:
            return await qm.apush_unique(Record(path), unique_key="k", unique_for=unique_for)
        finally:
            await qm.aclose()

    first, created = asyncio.run(push())
    assert created and asyncio.run(push()) == (first, False)
    assert Worker(qm).process(qm.pop()) is Outcome.COMPLETED
    second, created = asyncio.run(push(unique_for=0.2))
    assert created and second != first
    time.sleep(0.3)
    third, created = asyncio.run(push())
    assert created and third != second


@pytest.mark.parametrize(
    "options, message",
    [
        ({"unique_key": ""}, "unique_key must be a non-empty string"),
        ({"unique_key": "k", "unique_for": 0}, "unique_for must be a number > 0"),
    ],
)
def test_async_pushes_refuse_bad_unique_options(qm, tmp_path, options, message):
    async def main() -> None:
        try:
            with pytest.raises(JobEncodeError, match=message):
                await qm.apush(Record(str(tmp_path / "out")), **options)
            with pytest.raises(JobEncodeError, match=message):
                await qm.alater(Record(str(tmp_path / "out")), 5, **options)
        finally:
            await qm.aclose()

    asyncio.run(main())
    assert qm.size() == 0


def test_async_unique_pushes_await_redis_on_the_loop(redis_qm, tmp_path, monkeypatch):
    """A unique apush runs enqueue.lua on the asyncio client: not the blocking push in a thread."""

    def blocking(*args: object, **kwargs: object) -> None:
        raise AssertionError("the blocking client was used")

    monkeypatch.setattr(redis_qm.driver, "enqueue_unique", blocking)
    monkeypatch.setattr(asyncio, "to_thread", blocking)
    path = str(tmp_path / "out")

    async def main() -> tuple[str, str]:
        try:
            first = await redis_qm.apush(Once(path, 1))
            late = await redis_qm.alater(Record(path), 30, unique_key="later")
            assert await redis_qm.apush_unique(Once(path, 1)) == (first, False)
            return first, late
        finally:
            await redis_qm.aclose()

    first, late = asyncio.run(main())
    assert redis_qm.get_job_status(first)["status"] == "queued"
    assert redis_qm.get_job_status(late)["unique_key"] == "later"
