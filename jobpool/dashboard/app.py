"""The dashboard's web application: `create_app()` builds it for a config (and a driver).

Pages are rendered on the server (Jinja2, autoescaped: a value from Redis is always text, never
markup), styled and made live by two files in static/ that the package ships (no CDN); the
live parts poll the JSON routes under /api/ once a second. Every response forbids inline
scripts and framing (Content-Security-Policy), so even a value that escaped escaping could not
run. Reads go to Redis on Starlette's thread pool (redis-py is blocking).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from jobpool.config import Config
from jobpool.dashboard import actions, pages
from jobpool.dashboard.auth import Auth
from jobpool.dashboard.reads import Reads
from jobpool.drivers.redis import RedisDriver
from jobpool.drivers.redis.history import REDIS_ERRORS

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Dashboard:
    """What every handler needs: the reads, the manager's driver for actions, the auth and
    the templates. Kept on `app.state.dashboard`."""

    def __init__(self, config: Config, driver: RedisDriver, clock: Callable[[], float]):
        self.config = config
        self.driver = driver
        self.reads = Reads(config, driver, clock)
        self.auth = Auth(config.dashboard.token, clock)
        self.clock = clock
        self.templates = Jinja2Templates(env=_environment())


def create_app(
    config: Config, driver: RedisDriver, clock: Callable[[], float] = time.time
) -> Starlette:
    """The ASGI application for `config`'s queues in `driver`'s Redis."""
    app = Starlette(
        routes=[
            Route("/", pages.overview),
            Route("/hosts", pages.hosts),
            Route("/jobs", pages.lookup),
            Route("/jobs/{job_id:path}", pages.job),
            Route("/delayed", pages.listing),
            Route("/retrying", pages.listing),
            Route("/failed", pages.listing),
            Route("/metrics", pages.metrics),
            Route("/confirm", pages.confirm),
            Route("/login", pages.login_form, methods=["GET"]),
            Route("/login", actions.login, methods=["POST"]),
            Route("/logout", actions.logout, methods=["POST"]),
            Route("/actions/{action}", actions.act, methods=["POST"]),
            Route("/api/overview", pages.api_overview),
            Route("/api/history", pages.api_history),
            Route("/api/jobs/{job_id:path}", pages.api_job),
            Route("/healthz", pages.healthz),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=_headers)],
        exception_handlers={exc: _redis_down for exc in REDIS_ERRORS},
    )
    app.state.dashboard = Dashboard(config, driver, clock)
    return app


async def _headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def _redis_down(request: Request, exc: Exception) -> Response:
    """A page while Redis cannot be read: what failed (redis-py's messages name the address,
    never the password), 503, and the page answers again once Redis does."""
    return PlainTextResponse(
        f"503 Service Unavailable: cannot read Redis ({type(exc).__name__}: {exc})",
        status_code=503,
    )


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every {{ value }} is HTML-escaped; no template marks data safe
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        when=local_time,
        seconds=seconds,
        pretty=pretty_json,
        first_line=first_line,
        tojson_text=compact_json,
    )
    return env


def local_time(value: Any) -> str:
    """Unix seconds as the server's local time, to the second, with its offset."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "-"
    moment = dt.datetime.fromtimestamp(value).astimezone()
    return moment.isoformat(sep=" ", timespec="seconds")


def seconds(value: Any) -> str:
    """A duration for people: 850 ms, 12.3 s, 4 min 5 s, 2 h 10 min."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "-"
    if value < 1:
        return f"{value * 1000:.3g} ms"
    if value < 60:
        return f"{value:.3g} s"
    if value < 3600:
        return f"{int(value // 60)} min {int(value % 60)} s"
    return f"{int(value // 3600)} h {int(value % 3600 // 60)} min"


def pretty_json(value: Any) -> str:
    """A value as indented JSON text (escaped by the template like any other text)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def compact_json(value: Any) -> str:
    """A value as one line of JSON text, for a table cell (escaped like any other text)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def first_line(value: Any) -> str:
    lines = str(value or "").splitlines()
    return lines[0] if lines else ""
