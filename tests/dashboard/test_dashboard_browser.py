"""The dashboard in a real headless Chromium, served by a real `jobpool start` (or `jobpool
dashboard`), over the session's redis-server: what a person sees and what the buttons do."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from dashboard_jobs import Broken, Echo, Nap
from dashboard_support import TOKEN, run_all, seed_history
from helpers import wait_until

from jobpool import QueueManager

pytest.importorskip("starlette", reason="the dashboard extra is not installed")
pytest.importorskip("selenium", reason="selenium is not installed")

from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

SCRIPT = "<script>alert('xss')</script>"
IMG = '"><img src=x onerror=alert(1)>'
SCREENSHOTS = os.environ.get("JOBPOOL_DASHBOARD_SCREENSHOTS")  # a folder: save screenshots


def _finished(qm: QueueManager, ids: list[str], timeout: float = 15.0) -> None:
    def done() -> bool:
        return all(
            (qm.get_job_status(i) or {}).get("status") in ("completed", "failed") for i in ids
        )

    wait_until(done, timeout, 0.05, "the jobs to finish")


def _cell(page: Any, queue: str, field: str) -> str:
    row = page.find_element(By.CSS_SELECTOR, f'tr[data-queue="{queue}"]')
    return str(row.find_element(By.CSS_SELECTOR, f'td[data-field="{field}"]').text)


def _sign_in(page: Any, base: str) -> None:
    page.get(base + "/login")
    page.find_element(By.ID, "token").send_keys(TOKEN)
    page.find_element(By.ID, "sign-in").click()
    wait_until(lambda: "Signed in." in page.page_source, 10, 0.05, "the sign-in")


def _no_alert(page: Any) -> None:
    try:
        alert = page.switch_to.alert
    except NoAlertPresentException:
        return
    text = alert.text
    alert.dismiss()
    raise AssertionError(f"a script ran: alert({text!r})")


def test_the_overview_matches_redis_and_its_charts_grow_live(
    served,
    redis_qm: QueueManager,
    page: Any,  # noqa: ANN001
) -> None:
    m, base = served()
    ids = [redis_qm.push(Echo(i)) for i in range(5)] + [redis_qm.push(Broken("/nowhere"))]
    later = [redis_qm.later(Echo("later"), 600) for _ in range(2)]
    _finished(redis_qm, ids)
    page.get(base + "/")
    stats = redis_qm.driver.stats("default")  # type: ignore[attr-defined]

    def shown() -> bool:
        cells = {f: _cell(page, "default", f) for f in ("ready", "delayed", "failed", "workers")}
        wanted = {f: str(stats[f]) for f in cells}
        return cells == wanted

    wait_until(shown, 5, 0.1, "the overview's numbers to match Redis")
    assert (stats["delayed"], stats["failed"], stats["workers"]) == (len(later), 1, 2)
    completed = page.find_element(By.ID, "chart-completed")
    wait_until(lambda: completed.get_attribute("data-total") == "5", 5, 0.1, "5 completed charted")
    points = int(completed.get_attribute("data-points"))
    assert points >= 1 and completed.find_elements(By.CSS_SELECTOR, "circle.completed")
    failed = page.find_element(By.ID, "chart-failed")
    assert failed.get_attribute("data-total") == "1"
    more = [redis_qm.push(Nap(0.02)) for _ in range(20)]
    _finished(redis_qm, more)
    # The page is not reloaded: the chart updates itself within ~2 s of the jobs finishing.
    wait_until(lambda: completed.get_attribute("data-total") == "25", 4, 0.1, "the chart to grow")
    runtime = page.find_element(By.ID, "chart-runtime")
    assert int(runtime.get_attribute("data-points")) >= 1
    wait_until(lambda: _cell(page, "default", "done_last_minute") == "25", 4, 0.1, "done/min")
    _no_alert(page)
    page.get(base + "/hosts")  # the host registry: this master and its two workers
    master = page.find_element(By.CSS_SELECTOR, f'section[data-master$=".{m.pid}"]')
    assert f"master pid {m.pid}" in master.text
    assert "default.0" in master.text and "default.1" in master.text
    # Each worker's RSS, jobs done and restarts (none yet), from the master's heartbeat.
    rows = master.find_elements(By.CSS_SELECTOR, "table.workers tbody tr")
    assert len(rows) == 2 and all(" MB" in row.text and "none" in row.text for row in rows)


def test_a_failed_jobs_traceback_and_its_retry_with_the_token(
    served,
    redis_qm: QueueManager,
    page: Any,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    _, base = served()
    fixed = tmp_path / "fixed"
    job_id = redis_qm.push(Broken(str(fixed)))
    _finished(redis_qm, [job_id])
    page.get(f"{base}/jobs/{job_id}")
    assert page.find_element(By.ID, "job-status").text == "failed"
    traceback = page.find_element(By.ID, "traceback").text
    assert "Traceback" in traceback and "_charge" in traceback and "RuntimeError" in traceback
    assert not page.find_elements(By.CSS_SELECTOR, 'button[data-action="retry"]')  # signed out
    _sign_in(page, base)
    page.get(f"{base}/jobs/{job_id}")
    fixed.touch()
    page.find_element(By.CSS_SELECTOR, 'button[data-action="retry"]').click()
    wait_until(lambda: "Queued again." in page.page_source, 5, 0.05, "the retry's notice")
    wait_until(
        lambda: redis_qm.get_job_status(job_id)["status"] == "completed", 10, 0.05, "completed"
    )
    page.get(f"{base}/jobs/{job_id}")
    assert page.find_element(By.ID, "job-status").text == "completed"
    assert '"charged"' in page.find_element(By.ID, "result").text


def test_without_the_token_there_is_no_button_and_a_forged_post_is_refused(
    standalone,
    redis_qm: QueueManager,
    page: Any,  # noqa: ANN001
) -> None:
    job_id = redis_qm.push(Broken("/nowhere"))
    run_all(redis_qm)  # no master here: the job fails in this process
    base = standalone(token=None)
    for path in ("/", "/failed", f"/jobs/{job_id}"):
        page.get(base + path)
        assert not page.find_elements(By.CSS_SELECTOR, "form.action, button[data-action]"), path
    status = page.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch("/actions/retry", {method: "POST", body: new URLSearchParams(
            {job_id: arguments[0], csrf: "forged"})}).then(r => done(r.status));
        """,
        job_id,
    )
    assert status == 403
    assert redis_qm.get_job_status(job_id)["status"] == "failed"


def test_hostile_arguments_and_errors_render_as_text(
    served,
    redis_qm: QueueManager,
    page: Any,  # noqa: ANN001
) -> None:
    _, base = served()
    job_id = redis_qm.push(Broken("/nowhere", note=[SCRIPT, IMG]))
    done_id = redis_qm.push(Echo(SCRIPT, note=IMG))
    _finished(redis_qm, [job_id, done_id])
    page.get(f"{base}/jobs/{job_id}")
    _no_alert(page)
    arguments = page.find_element(By.ID, "arguments")
    assert SCRIPT in arguments.text and "<img src=x onerror=alert(1)>" in arguments.text
    assert not page.find_elements(By.CSS_SELECTOR, "main img, main script")
    assert "<b>twice</b>" in page.find_element(By.ID, "error").text  # shown, not bold
    page.get(f"{base}/failed")
    _no_alert(page)
    assert SCRIPT in page.find_element(By.CSS_SELECTOR, f'tr[data-job="{job_id}"]').text
    assert not page.find_elements(By.CSS_SELECTOR, "main img, main script")
    page.get(f"{base}/jobs/{done_id}")
    _no_alert(page)
    assert SCRIPT in page.find_element(By.ID, "result").text


@pytest.mark.skipif(not SCREENSHOTS, reason="set JOBPOOL_DASHBOARD_SCREENSHOTS=DIR to save them")
def test_screenshots(served, redis_qm: QueueManager, page: Any, tmp_path: Path) -> None:  # noqa: ANN001
    """The README's screenshots: an hour of history seeded, then real jobs on a real master."""
    _, base = served()
    seed_history(redis_qm)
    ids = [redis_qm.push(Nap(0.01 * (i % 7))) for i in range(40)]
    card = "/var/lib/shop/card-accepted"  # never there: the jobs fail
    ids += [redis_qm.push(Broken(card, note={"order": 4711 + i})) for i in range(3)]
    redis_qm.later(Echo("reminder", note="in an hour"), 3600)
    _finished(redis_qm, ids)
    folder = Path(SCREENSHOTS or ".")
    _sign_in(page, base)
    page.get(base + "/")
    wait_until(
        lambda: int(page.find_element(By.ID, "chart-completed").get_attribute("data-points")) > 10,
        5,
        0.1,
        "the charts",
    )
    page.save_screenshot(str(folder / "dashboard-overview.png"))
    page.get(f"{base}/jobs/{ids[-1]}")
    page.save_screenshot(str(folder / "dashboard-job.png"))
    page.get(f"{base}/failed")
    page.save_screenshot(str(folder / "dashboard-failed.png"))
