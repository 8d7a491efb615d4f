"""What the numbers were measured on: machine, interpreters, library versions."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess

from benchmarks.targets import TARGETS

PACKAGES = ["jobpool", "redis", "hiredis", "rq", "dramatiq", "celery", "kombu", "huey", "arq"]
_VERSIONS = """
import json, sys
from importlib import metadata
out = {"python": sys.version.split()[0]}
for name in sys.argv[1:]:
    try:
        out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
print(json.dumps(out))
"""


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def versions(python: str) -> dict[str, str]:
    done = subprocess.run(  # from /, where no egg-info of the checkout can pass for an install
        [python, "-c", _VERSIONS, *PACKAGES], capture_output=True, text=True, cwd="/"
    )
    return json.loads(done.stdout) if done.returncode == 0 else {}


def describe(redis_version: str, names: list[str]) -> dict:
    venvs: dict[str, dict[str, str]] = {}
    for name in names:
        venv = TARGETS[name].bin.parent.name
        if venv not in venvs:
            venvs[venv] = versions(TARGETS[name].python)
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib(), 1),
        "kernel": platform.release(),
        "redis_server": redis_version,
        "venvs": venvs,
    }
