"""The public API is typed: `mypy --strict` on a small user module that pushes class and function
jobs passes, and a wrong argument to a job function's push() is reported (`@job` keeps the
function's signature through ParamSpec). Runs the venv's mypy in a subprocess, as a user would."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

USER_MODULE = """
from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import jobpool
from jobpool import Job, JobFailed, QueueManager, current_job, job


@job(queue="emails", max_tries=5, retry_delay=10, timeout=30)
def send_email(to: str, subject: str = "Hi", *, urgent: bool = False) -> str:
    me = current_job()
    return f"{me.id} {me.attempt}/{me.max_tries} {to} {subject} {urgent}"


@job
async def fetch(url: str) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"url": url}


class Report(Job):
    queue = "reports"
    max_tries = 2

    def __init__(self, day: str) -> None:
        self.day = day

    def handle(self) -> dict[str, int]:
        return {"rows": len(self.day)}

    def failed(self, exc: BaseException) -> None:
        print(current_job().id, exc)


class AsyncReport(Job):
    async def handle(self) -> None:
        await asyncio.sleep(0)


def produce(qm: QueueManager) -> list[str]:
    qm.make_current()
    ids = [
        send_email.push("ada@example.com", subject="Welcome"),
        send_email.push("bob@example.com", manager=qm),
        send_email.later(60, "ada@example.com", urgent=True),
        send_email.later(dt.timedelta(minutes=1), "ada@example.com"),
        fetch.push("https://example.com"),
        qm.push(Report("2024-01-01")),
        qm.later(Report("2024-01-02"), 30, queue="reports"),
        qm.push(send_email.job("cy@example.com"), queue="other"),
        qm.push(AsyncReport()),
    ]
    ids += send_email.push_many([("a@x",), {"to": "b@x"}, send_email.job("c@x")])
    ids += qm.push_many([Report("d"), send_email.job("d@x")])
    try:
        value: Any = qm.result(ids[0], timeout=5)
        print(value)
    except JobFailed as exc:
        print(exc.error, exc.traceback, exc.job_id)
    except TimeoutError:
        pass
    inline: str = send_email("ada@example.com")
    print(inline, jobpool.configure(qm) is qm)
    return ids


async def produce_async(qm: QueueManager) -> object:
    job_id: str = await qm.apush(Report("x"))
    other: str = await send_email.apush("ada@example.com", manager=qm)
    later: str = await send_email.alater(5, "ada@example.com", manager=qm)
    await qm.apush_many([Report("y")])
    print(other, later)
    result = await qm.aresult(job_id, timeout=1.5)
    await qm.aclose()
    return result
"""

WRONG = """
from user_jobs import send_email

send_email.push(1)
send_email.push("ada@example.com", subjet="typo")
send_email.later(5, "ada@example.com", urgent="yes")
"""


def test_mypy_strict_accepts_a_user_module_and_reports_a_wrong_argument(tmp_path):
    (tmp_path / "user_jobs.py").write_text(textwrap.dedent(USER_MODULE))
    (tmp_path / "wrong.py").write_text(WRONG)
    # jobpool is found through MYPYPATH (an editable install hides it from mypy) and, as for an
    # installed package, checked silently: what is checked here is the user's module.
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n[mypy-jobpool.*]\nfollow_imports = silent\n")
    cache = REPO / ".mypy_cache" / "user-module-test"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            f"--config-file={config}",
            f"--cache-dir={cache}",
            "user_jobs.py",
            "wrong.py",
        ],
        cwd=tmp_path,
        env={"MYPYPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if e.startswith("user_jobs.py")], out.stdout + out.stderr
    assert [e.split(":")[1] for e in errors] == ["4", "5", "6"], out.stdout + out.stderr
    assert 'matches argument type "int"' in errors[0]
    assert 'argument types "str", "str"' in errors[1]


def test_the_package_ships_its_py_typed_marker():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    assert (REPO / "jobpool" / "py.typed").exists()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["jobpool"]
