"""What the dashboard changes: retry, delete, cancel, pause, resume, and signing in and out.

Every action is a POST from a signed-in browser with the page's CSRF token, or from a script
with `Authorization: Bearer TOKEN`; anything else gets 403 and changes nothing (so does every
action of a dashboard without a token). A browser is sent back where it was (303) with a fixed
notice; a script gets JSON. An action on every failed job of a queue takes `confirm=yes`, which
only the confirmation page's form sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from jobpool.dashboard.auth import COOKIE, SESSION_LIFE
from jobpool.dashboard.pages import dashboard
from jobpool.drivers.base import Cancel
from jobpool.ids import queue_of
from jobpool.names import check_queue_name

if TYPE_CHECKING:
    from jobpool.drivers.redis import RedisDriver

MAX_FORM = 16 * 1024  # bytes: the largest form an action reads
WRONG_TOKEN_PAUSE = 1.0  # seconds before answering a wrong token: slows guessing
READ_ONLY = (
    "403 Forbidden: this dashboard is read-only (no [dashboard] token is set), nothing changed"
)
NOT_ALLOWED = (
    "403 Forbidden: sign in with the dashboard token (or send Authorization: Bearer TOKEN), "
    "and post the page's CSRF token; nothing changed"
)


async def form_of(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the first value of each); {} for anything else."""
    body = await request.body()
    if len(body) > MAX_FORM:
        return {}
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in parsed.items()}


def local_path(target: str | None) -> str:
    """`target` if it is a path of this site, else "/": never a redirect to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def login(request: Request) -> Response:
    d = dashboard(request)
    if not d.auth.enabled:
        return PlainTextResponse(READ_ONLY, status_code=403)
    form = await form_of(request)
    if not d.auth.check_token(form.get("token", "")):
        await asyncio.sleep(WRONG_TOKEN_PAUSE)
        return RedirectResponse("/login?wrong=1", status_code=303)
    target = local_path(form.get("next"))
    response = RedirectResponse(_with_notice(target, "signed_in"), status_code=303)
    response.set_cookie(
        COOKIE,
        d.auth.new_session(),
        max_age=SESSION_LIFE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/?notice=signed_out", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return response


async def act(request: Request) -> Response:
    d = dashboard(request)
    visitor = d.auth.visitor(request)
    form = await form_of(request)
    if not d.auth.enabled:
        return PlainTextResponse(READ_ONLY, status_code=403)
    if not d.auth.csrf_ok(visitor, form.get("csrf", "")):
        return PlainTextResponse(NOT_ALLOWED, status_code=403)
    run = ACTIONS.get(request.path_params["action"])
    if run is None:
        return PlainTextResponse("404 Not Found: no such action", status_code=404)
    try:
        notice, count = await run_in_threadpool(run, d.driver, form)
    except BadRequest as exc:
        return PlainTextResponse(f"400 Bad Request: {exc}", status_code=400)
    if visitor.bearer:
        return JSONResponse({"notice": notice, "count": count})
    target = _with_notice(local_path(form.get("next")), notice)
    return RedirectResponse(target + (f"&n={count}" if count is not None else ""), status_code=303)


class BadRequest(Exception):
    pass


def _with_notice(target: str, notice: str) -> str:
    return f"{target}{'&' if '?' in target else '?'}notice={notice}"


def _job_id(form: dict[str, str]) -> tuple[str, str]:
    job_id = form.get("job_id", "")
    try:
        return job_id, queue_of(job_id)
    except ValueError:
        raise BadRequest("job_id is not a job id") from None


def _queue(form: dict[str, str]) -> str:
    try:
        return check_queue_name(form.get("queue", ""))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def _failed(driver: RedisDriver, job_id: str) -> bool:
    record = driver.status(job_id)
    return record is not None and record.get("status") == "failed"


def retry(driver: RedisDriver, form: dict[str, str]) -> tuple[str, int | None]:
    job_id, queue = _job_id(form)
    if not _failed(driver, job_id):
        return "nothing", None
    return ("retried" if driver.retry_failed(queue, [job_id]) else "nothing"), None


def delete(driver: RedisDriver, form: dict[str, str]) -> tuple[str, int | None]:
    job_id, _ = _job_id(form)
    if not _failed(driver, job_id):
        return "nothing", None
    try:
        return ("deleted" if driver.delete(job_id) else "nothing"), None
    except ValueError:  # a worker runs it (its failed() hook)
        return "nothing", None


def cancel(driver: RedisDriver, form: dict[str, str]) -> tuple[str, int | None]:
    job_id, _ = _job_id(form)
    done = driver.cancel(job_id)
    notice = {Cancel.CANCELLED: "cancelled", Cancel.STOPPING: "stopping"}.get(done, "nothing")
    return notice, None


def pause(driver: RedisDriver, form: dict[str, str]) -> tuple[str, int | None]:
    return ("paused" if driver.set_paused(_queue(form), True) else "nothing"), None


def resume(driver: RedisDriver, form: dict[str, str]) -> tuple[str, int | None]:
    return ("resumed" if driver.set_paused(_queue(form), False) else "nothing"), None


def retry_all(driver: RedisDriver, form: dict[str, str]) -> tuple[str, int | None]:
    queue = _confirmed_queue(form)
    total, failed = 0, driver.counts(queue)["failed"]
    while total < failed and (moved := driver.retry_failed(queue)):  # a batch per call
        total += moved
    return "retried", total


def delete_all(driver: RedisDriver, form: dict[str, str]) -> tuple[str, int | None]:
    """Every failed job of the queue that was failed when this began (none that fails later)."""
    queue = _confirmed_queue(form)
    ids = [r["id"] for r in driver.failed_jobs(queue, 0, driver.counts(queue)["failed"])]
    deleted = 0
    for job_id in ids:
        try:
            deleted += int(driver.delete(job_id))
        except ValueError:
            continue
    return "deleted", deleted


def _confirmed_queue(form: dict[str, str]) -> str:
    queue = _queue(form)
    if form.get("confirm") != "yes":
        raise BadRequest("an action on every failed job of a queue needs confirm=yes")
    return queue


ACTIONS: dict[str, Callable[[RedisDriver, dict[str, str]], tuple[str, int | None]]] = {
    "retry": retry,
    "delete": delete,
    "cancel": cancel,
    "pause": pause,
    "resume": resume,
    "retry-all": retry_all,
    "delete-all": delete_all,
}
