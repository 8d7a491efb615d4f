"""The pages and the JSON routes that read (GET). Each is a plain function: Starlette runs it on
its thread pool, where the blocking Redis client may wait."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from jobpool.dashboard.reads import LISTS, METRIC_SPANS, SPANS
from jobpool.names import check_queue_name

if TYPE_CHECKING:
    from jobpool.dashboard.app import Dashboard

NOTICES = {  # what an action says when it is done (fixed texts: the URL carries only the key)
    "retried": "Queued again.",
    "deleted": "Deleted.",
    "cancelled": "Cancelled.",
    "stopping": "Asked to stop: its worker is stopped within a few seconds.",
    "paused": "Paused: its workers finish what they run and claim nothing more.",
    "resumed": "Resumed.",
    "signed_in": "Signed in.",
    "signed_out": "Signed out.",
    "nothing": "Nothing to do: it changed meanwhile.",
}
CONFIRMED_ACTIONS = {"retry-all": "Retry", "delete-all": "Delete"}


def dashboard(request: Request) -> Dashboard:
    found: Dashboard = request.app.state.dashboard
    return found


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    d = dashboard(request)
    visitor = d.auth.visitor(request)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    base = {
        "visitor": visitor,
        "auth_enabled": d.auth.enabled,
        "notice": notice,
        "count": request.query_params.get("n", ""),
        "path": request.url.path,
        "here": _here(request),
    }
    return d.templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


def _here(request: Request) -> str:
    """This page's path and query, without a notice: where an action sends the browser back."""
    query = "&".join(
        f"{k}={v}" for k, v in request.query_params.multi_items() if k not in ("notice", "n")
    )
    return request.url.path + (f"?{query}" if query else "")


def _queue_param(request: Request) -> str | None:
    queue = request.query_params.get("queue") or None
    if queue is None:
        return None
    try:
        check_queue_name(queue)
    except ValueError:
        return None
    return queue


def overview(request: Request) -> Response:
    d = dashboard(request)
    rows = d.reads.overview()
    return render(request, "overview.html", {"rows": rows, "spans": list(SPANS)})


def hosts(request: Request) -> Response:
    found = dashboard(request).reads.hosts()
    return render(request, "hosts.html", found)


def lookup(request: Request) -> Response:
    job_id = request.query_params.get("id", "").strip()
    if job_id:
        from urllib.parse import quote

        return RedirectResponse(f"/jobs/{quote(job_id, safe=':')}", status_code=303)
    return render(request, "lookup.html", {})


def job(request: Request) -> Response:
    job_id = request.path_params["job_id"]
    try:
        found = dashboard(request).reads.job(job_id)
    except ValueError:  # not an id of ours
        found = None
    if found is None:
        return render(request, "missing.html", {"job_id": job_id}, status=404)
    return render(request, "job.html", {"job_id": job_id, **found})


def listing(request: Request) -> Response:
    d = dashboard(request)
    kind = request.url.path.strip("/")
    assert kind in LISTS
    queues = d.reads.queues()
    queue = _queue_param(request)
    job_class = request.query_params.get("class") or None
    try:
        page = max(int(request.query_params.get("page", "0")), 0)
    except ValueError:
        page = 0
    found = d.reads.listing(kind, queue, job_class, page)
    return render(
        request,
        "list.html",
        {
            "kind": kind,
            "listing": found,
            "queues": queues,
            "queue": queue,
            "job_class": job_class,
            "counts": {q: d.driver.counts(q)["failed"] for q in queues} if kind == "failed" else {},
        },
    )


def metrics(request: Request) -> Response:
    span = request.query_params.get("span", "24h")
    if span not in METRIC_SPANS:
        span = "24h"
    rows = dashboard(request).reads.metrics(span)
    return render(
        request, "metrics.html", {"rows": rows, "span": span, "spans": list(METRIC_SPANS)}
    )


def confirm(request: Request) -> Response:
    """The confirmation step of an action on every failed job of a queue."""
    d = dashboard(request)
    action = request.query_params.get("action", "")
    queue = _queue_param(request)
    if action not in CONFIRMED_ACTIONS or queue is None:
        return PlainTextResponse("unknown action or queue", status_code=400)
    failed = d.driver.counts(queue)["failed"]
    return render(
        request,
        "confirm.html",
        {"action": action, "verb": CONFIRMED_ACTIONS[action], "queue": queue, "failed": failed},
    )


def login_form(request: Request) -> Response:
    return render(request, "login.html", {"wrong": request.query_params.get("wrong") == "1"})


# -- JSON ----------------------------------------------------------------------------------------


def api_overview(request: Request) -> Response:
    d = dashboard(request)
    return JSONResponse({"time": d.clock(), "queues": d.reads.overview()})


def api_history(request: Request) -> Response:
    d = dashboard(request)
    span = request.query_params.get("span", "1h")
    if span not in SPANS:
        return JSONResponse({"error": f"span must be one of {', '.join(SPANS)}"}, status_code=400)
    queue = _queue_param(request)
    return JSONResponse(d.reads.series(queue, span))


def api_job(request: Request) -> Response:
    try:
        found = dashboard(request).reads.job(request.path_params["job_id"])
    except ValueError:
        found = None
    if found is None:
        return JSONResponse({"error": "no such job"}, status_code=404)
    found["timeline"] = [{"at": at, "what": what} for at, what in found["timeline"]]
    return JSONResponse(found)


def healthz(request: Request) -> Response:
    dashboard(request).driver.client.ping()
    return PlainTextResponse("ok")
