"""The dashboard's routes through Starlette's TestClient, against the session's redis-server:
what each page shows, who may act, and that nothing from Redis is ever markup."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the dashboard extra is not installed")
pytest.importorskip("httpx2", reason="Starlette's TestClient needs httpx2")

from dashboard_jobs import Broken, Echo, Nap  # noqa: E402
from dashboard_support import run_all  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from jobpool import QueueManager  # noqa: E402
from jobpool.config import config_from_dict  # noqa: E402
from jobpool.dashboard import actions  # noqa: E402
from jobpool.dashboard.app import create_app  # noqa: E402
from jobpool.drivers.redis import history  # noqa: E402

TOKEN = "s3cret-token"
SCRIPT = "<script>alert('x')</script>"
IMG = '"><img src=x onerror=alert(1)>'
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _config(redis_url: str, token: str | None = TOKEN, password: str | None = None):  # noqa: ANN202
    dashboard = {"token": token} if token else {}
    redis = (
        {"url": redis_url} if password is None else {"host": "db.internal", "password": password}
    )
    data = {"redis": redis, "queues": {"default": {}, "mail": {}}, "dashboard": dashboard}
    return config_from_dict(data, env={})


@pytest.fixture
def client_for(redis_qm: QueueManager, redis_url: str) -> Iterator:  # noqa: ANN001
    def make(token: str | None = TOKEN, password: str | None = None) -> TestClient:
        app = create_app(_config(redis_url, token, password), redis_qm.driver)  # type: ignore[arg-type]
        return TestClient(app, follow_redirects=False)

    yield make


def _failed_job(qm: QueueManager, tmp_path: Path, note: object = None) -> str:
    job_id = qm.push(Broken(str(tmp_path / "fixed"), note=note))
    run_all(qm)
    assert qm.get_job_status(job_id)["status"] == "failed"
    return job_id


def _sign_in(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(actions, "WRONG_TOKEN_PAUSE", 0.0)
    wrong = client.post("/login", data={"token": "nope"})
    assert wrong.status_code == 303 and wrong.headers["location"] == "/login?wrong=1"
    right = client.post("/login", data={"token": TOKEN, "next": "/failed"})
    assert right.status_code == 303 and right.headers["location"].startswith("/failed")
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    page = client.get("/failed")
    return CSRF.search(page.text)[1]


def test_overview_shows_each_queues_numbers(redis_qm: QueueManager, client_for) -> None:  # noqa: ANN001
    redis_qm.push(Echo(1), queue="mail")
    redis_qm.push(Echo(2), queue="mail")
    redis_qm.later(Echo(3), 60, queue="mail")
    page = client_for().get("/")
    assert page.status_code == 200
    row = re.search(r'<tr data-queue="mail">(.*?)</tr>', page.text, re.S)[1]
    assert re.search(r'data-field="ready">2<', row)
    assert re.search(r'data-field="delayed"><a [^>]*>1</a>', row)
    live = client_for().get("/api/overview").json()
    mail = next(q for q in live["queues"] if q["name"] == "mail")
    assert (mail["ready"], mail["delayed"], mail["failed"]) == (2, 1, 0)
    assert "Content-Security-Policy" in page.headers
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_a_read_only_dashboard_shows_no_buttons_and_refuses_every_action(
    redis_qm: QueueManager,
    client_for,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    job_id = _failed_job(redis_qm, tmp_path)
    client = client_for(token=None)
    for path in ("/", "/failed", f"/jobs/{job_id}"):
        page = client.get(path)
        assert page.status_code == 200
        assert "/actions/" not in page.text, path
    assert "read-only" in client.get("/").text
    for action, form in [
        ("retry", {"job_id": job_id}),
        ("delete", {"job_id": job_id}),
        ("retry-all", {"queue": "default", "confirm": "yes"}),
        ("pause", {"queue": "default"}),
    ]:
        refused = client.post(f"/actions/{action}", data={**form, "csrf": "forged"})
        assert refused.status_code == 403, action
    refused = client.post(
        "/actions/retry", data={"job_id": job_id}, headers={"Authorization": "Bearer x"}
    )
    assert refused.status_code == 403
    assert client.post("/login", data={"token": "anything"}).status_code == 403
    assert redis_qm.get_job_status(job_id)["status"] == "failed"
    assert not redis_qm.is_paused("default")


def test_with_a_token_only_a_signed_in_browser_with_the_csrf_token_acts(
    redis_qm: QueueManager,
    client_for,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    job_id = _failed_job(redis_qm, tmp_path)
    client = client_for()
    assert "/actions/" not in client.get("/failed").text  # not signed in: read-only
    assert client.post("/actions/retry", data={"job_id": job_id}).status_code == 403
    csrf = _sign_in(client, monkeypatch)
    page = client.get(f"/jobs/{job_id}")
    assert 'action="/actions/retry"' in page.text and 'action="/actions/delete"' in page.text
    assert client.post("/actions/retry", data={"job_id": job_id}).status_code == 403  # no csrf
    forged = client.post("/actions/retry", data={"job_id": job_id, "csrf": csrf[:-2] + "00"})
    assert forged.status_code == 403
    assert redis_qm.get_job_status(job_id)["status"] == "failed"
    done = client.post(
        "/actions/retry", data={"job_id": job_id, "csrf": csrf, "next": f"/jobs/{job_id}"}
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/jobs/{job_id}?notice=retried"
    assert redis_qm.get_job_status(job_id)["status"] == "queued"
    (tmp_path / "fixed").touch()
    run_all(redis_qm)
    assert redis_qm.get_job_status(job_id)["status"] == "completed"
    assert "Queued again." in client.get(done.headers["location"]).text
    out = client.post("/logout")
    assert out.status_code == 303
    client.cookies.clear()
    assert client.post("/actions/pause", data={"queue": "default", "csrf": csrf}).status_code == 403


def test_a_script_acts_with_the_bearer_token(redis_qm: QueueManager, client_for) -> None:  # noqa: ANN001
    client = client_for()
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    paused = client.post("/actions/pause", data={"queue": "mail"}, headers=bearer)
    assert paused.status_code == 200 and paused.json() == {"notice": "paused", "count": None}
    assert redis_qm.is_paused("mail")
    assert "paused" in client.get("/").text
    wrong = client.post(
        "/actions/resume", data={"queue": "mail"}, headers={"Authorization": "Bearer no"}
    )
    assert wrong.status_code == 403 and redis_qm.is_paused("mail")
    client.post("/actions/resume", data={"queue": "mail"}, headers=bearer)
    assert not redis_qm.is_paused("mail")
    job_id = redis_qm.later(Echo(1), 60)
    cancelled = client.post("/actions/cancel", data={"job_id": job_id}, headers=bearer)
    assert cancelled.json()["notice"] == "cancelled"
    assert redis_qm.get_job_status(job_id)["status"] == "cancelled"


def test_acting_on_every_failed_job_of_a_queue_takes_a_confirmation(
    redis_qm: QueueManager,
    client_for,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    ids = [_failed_job(redis_qm, tmp_path, note=n) for n in range(3)]
    client = client_for()
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    unconfirmed = client.post("/actions/retry-all", data={"queue": "default"}, headers=bearer)
    assert unconfirmed.status_code == 400
    assert all(redis_qm.get_job_status(i)["status"] == "failed" for i in ids)
    page = client.get("/confirm?action=delete-all&queue=default")
    assert "3 failed job(s) now" in page.text
    done = client.post(
        "/actions/retry-all", data={"queue": "default", "confirm": "yes"}, headers=bearer
    )
    assert done.json() == {"notice": "retried", "count": 3}
    assert all(redis_qm.get_job_status(i)["status"] == "queued" for i in ids)
    run_all(redis_qm)
    deleted = client.post(
        "/actions/delete-all", data={"queue": "default", "confirm": "yes"}, headers=bearer
    )
    assert deleted.json() == {"notice": "deleted", "count": 3}
    assert all(redis_qm.get_job_status(i) is None for i in ids)


def test_hostile_values_render_as_text(redis_qm: QueueManager, client_for, tmp_path: Path) -> None:  # noqa: ANN001
    job_id = _failed_job(redis_qm, tmp_path, note=[SCRIPT, IMG])
    done_id = redis_qm.push(Echo(SCRIPT, note=IMG))
    run_all(redis_qm)
    client = client_for()
    for path in (f"/jobs/{job_id}", f"/jobs/{done_id}", "/failed", "/failed?class=" + SCRIPT):
        text = client.get(path).text
        assert "<script>alert" not in text and "<img src=x" not in text, path
        assert "onerror=alert(1)" not in text or "&lt;img" in text or "&#34;&gt;&lt;img" in text
    job_page = client.get(f"/jobs/{job_id}").text
    assert "&lt;script&gt;alert(" in job_page
    assert "the card was declined &lt;b&gt;twice&lt;/b&gt;" in job_page


def test_the_redis_password_never_appears(
    redis_qm: QueueManager, client_for, tmp_path: Path
) -> None:  # noqa: ANN001
    _failed_job(redis_qm, tmp_path)
    client = client_for(password="hunter2-secret")
    for path in (
        "/",
        "/hosts",
        "/failed",
        "/delayed",
        "/retrying",
        "/metrics",
        "/login",
        "/api/overview",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "hunter2" not in response.text, path


def test_a_job_page_shows_its_traceback_timeline_and_place_in_the_queue(
    redis_qm: QueueManager,
    client_for,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    job_id = _failed_job(redis_qm, tmp_path)
    client = client_for()
    page = client.get(f"/jobs/{job_id}").text
    assert 'id="traceback"' in page and "_charge" in page and "RuntimeError" in page
    assert re.search(r"<li><time>[^<]+</time> pushed</li>", page)
    assert re.search(r"<li><time>[^<]+</time> failed</li>", page)
    # Each failed attempt, with its error and traceback, on the timeline and below it.
    attempts = redis_qm.get_job_status(job_id)["attempts"]
    for n in range(1, attempts + 1):
        assert re.search(rf"<li><time>[^<]+</time> attempt {n} failed: RuntimeError", page)
        assert f"<summary>attempt {n}: RuntimeError" in page
    waiting = [redis_qm.push(Echo(i), queue="mail") for i in range(3)]
    assert "2 job(s) ahead of it" in client.get(f"/jobs/{waiting[2]}").text
    assert "0 job(s) ahead of it" in client.get(f"/jobs/{waiting[0]}").text
    api = client.get(f"/api/jobs/{job_id}").json()
    assert api["record"]["status"] == "failed" and api["timeline"][0]["what"] == "pushed"
    assert client.get("/jobs/default:nope").status_code == 404
    assert client.get("/jobs/not-an-id").status_code == 404
    found = client.get("/jobs?id=" + job_id)
    assert found.status_code == 303 and found.headers["location"].endswith(job_id.split(":")[1])


def test_lists_of_delayed_retrying_and_failed_jobs_filter_and_page(
    redis_qm: QueueManager,
    client_for,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    client = client_for()
    later = [redis_qm.later(Echo(i), 60 + i, queue="mail") for i in range(60)]
    nap = redis_qm.later(Nap(0.0), 30, queue="mail")
    first = client.get("/delayed?queue=mail").text
    assert nap in first and later[0] in first and later[-1] not in first  # due first, 50 a page
    assert "page=1" in first
    assert later[-1] in client.get("/delayed?queue=mail&page=1").text
    only_naps = client.get("/delayed?queue=mail&class=Nap").text
    assert nap in only_naps and later[0] not in only_naps
    failed = _failed_job(redis_qm, tmp_path)
    assert (
        failed in client.get("/failed").text and failed in client.get("/failed?queue=default").text
    )
    assert failed not in client.get("/failed?queue=mail").text
    assert "No retrying jobs" in client.get("/retrying").text


def test_history_feeds_the_charts_and_the_metrics_page(redis_qm: QueueManager, client_for) -> None:  # noqa: ANN001
    recorder = history.recorder_for(redis_qm.driver)
    for seconds in [0.010] * 50 + [0.100] * 40 + [2.0] * 10:
        recorder.add("default", "Nap", "completed", seconds)
    recorder.add("default", "Broken", "failed", 0.001)
    recorder.add("mail", "Echo", "retrying", 0.001)
    recorder.flush(time.monotonic())
    assert not recorder.pending
    client = client_for()
    series = client.get("/api/history?span=1h&queue=default").json()
    assert len(series["points"]) == 60 and series["step"] == 60
    now = series["points"][-1]
    assert (now["completed"], now["failed"], now["retried"]) == (100, 1, 0)
    assert 0.008 < now["p50"] < 0.013 and 1.5 < now["p95"] < 2.6
    everything = client.get("/api/history?span=24h").json()
    assert sum(p["retried"] for p in everything["points"]) == 1 and everything["step"] == 900
    assert client.get("/api/history?span=1y").status_code == 400
    metrics = client.get("/metrics?span=1h").text
    row = re.search(r'<tr data-class="Nap">(.*?)</tr>', metrics, re.S)[1]
    assert ">100<" in row and "0.0%" in row


def test_redirects_stay_on_this_site() -> None:
    assert actions.local_path("//evil.example/x") == "/"
    assert actions.local_path("https://evil.example/") == "/"
    assert actions.local_path("/\\evil") == "/"
    assert actions.local_path("/failed?queue=a") == "/failed?queue=a"


def test_run_time_percentiles_from_the_histogram() -> None:
    assert history.bucket(0.0) == 0 and history.bucket(1e-4) == 0
    for seconds in (0.00123, 0.05, 1.0, 7.5, 300.0):
        b = history.bucket(seconds)
        assert history.upper(b - 1) < seconds <= history.upper(b) * 1.0000001
    runs = {history.bucket(0.01): 90, history.bucket(1.0): 10}
    assert 0.0079 < history.percentile(runs, 0.5) <= 0.0101
    assert 0.79 < history.percentile(runs, 0.95) <= 1.01
    assert history.percentile({}, 0.5) is None


def test_an_unreachable_redis_gives_503_pages(redis_url: str) -> None:
    from helpers import free_port

    with QueueManager(f"redis://127.0.0.1:{free_port()}/0") as down:
        app = create_app(_config(redis_url), down.driver)  # type: ignore[arg-type]
        client = TestClient(app, raise_server_exceptions=False)
        for path in ("/", "/api/overview", "/failed"):
            response = client.get(path)
            assert response.status_code == 503 and "cannot read Redis" in response.text, path
