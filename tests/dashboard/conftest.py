"""Fixtures of the dashboard tests: a headless Chromium driven by Selenium (skipped, saying
why, where the browser or its driver is missing), and `jobpool start` with the dashboard."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import TOKEN, dashboard_toml, wait_http
from helpers import REPO, free_port
from masters import Master

HERE = Path(__file__).resolve().parent
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver", "chromium-driver")


def _found(names: tuple[str, ...], *extra: str) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return next((p for p in extra if os.path.exists(p)), None)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session (a new one costs a second or two)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    binary = _found(BROWSERS)
    driver_path = _found(DRIVERS, "/usr/lib/chromium/chromedriver")
    if binary is None or driver_path is None:
        pytest.skip(
            "no headless browser: the browser tests need Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver; .ci/run does it as root)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1360,1000",
        "--hide-scrollbars",
    ):
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path=driver_path)
    chrome = webdriver.Chrome(options=options, service=service)
    chrome.set_page_load_timeout(20)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """The session's browser, its cookies cleared before each test."""
    browser.delete_all_cookies()
    yield browser
    browser.delete_all_cookies()


@pytest.fixture
def served(master: Callable[..., Master], redis_url: str) -> Callable[..., tuple[Master, str]]:
    """`served(token=..., workers=...)`: `jobpool start` whose config sets [dashboard] listen,
    so the master runs the dashboard; returns the master and the dashboard's base URL."""

    def start(token: str | None = TOKEN, workers: int = 2) -> tuple[Master, str]:
        port = free_port()
        m = master(dashboard_toml(redis_url, port, token, workers), workers, pythonpath=[HERE])
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz")
        return m, base

    return start


@pytest.fixture
def standalone(tmp_path: Path, redis_url: str) -> Iterator[Callable[..., str]]:
    """`standalone(token=None, host=...)`: `jobpool dashboard -c FILE --listen HOST:PORT` on its
    own (its log in tmp_path/dashboard-N.log); returns its URL."""
    started: list[subprocess.Popen[bytes]] = []

    def start(token: str | None = None, host: str = "127.0.0.1") -> str:
        port = free_port()
        config = tmp_path / f"dashboard-{len(started)}.toml"
        config.write_text(dashboard_toml(redis_url, free_port(), token))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "JOBPOOL_"))}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(HERE)])
        command = [sys.executable, "-m", "jobpool.cli", "dashboard", "-c", str(config)]
        log = open(tmp_path / f"dashboard-{len(started)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [*command, "--listen", f"{host}:{port}"], stderr=log, stdout=log, env=env
        )
        started.append(proc)
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz")
        return base

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
