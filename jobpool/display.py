"""How the `jobpool` commands show queues and jobs to a person: aligned tables, local times
in ISO 8601 with their zone, a job's arguments, a status record.

Scripts read `--json` instead; this module is for eyes, so it may shorten and align.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

ARGUMENTS_WIDTH = 60  # most characters of arguments in a table row
_ORDER = ("id", "job", "queue", "status", "attempts", "max_tries", "error", "last_error")
_TIMES = ("created_at", "due_at", "started_at", "finished_at", "updated_at", "expires_at")


def table(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    """`rows` (the header first) as lines of columns two spaces apart; the columns whose
    indexes are in `right` are aligned right (numbers), the others left."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def local_time(seconds: float | None) -> str:
    """Unix seconds as local time in ISO 8601 with the zone: 2026-12-01T07:32:06+00:00."""
    if seconds is None:
        return "-"
    return dt.datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="seconds")


def arguments(body: bytes | str | None, width: int | None = None) -> str:
    """A job's arguments (the attributes stored in its body) as `name=value, ...`, cut to
    `width` characters; "-" when the body is gone (a completed job's goes with its ack)."""
    try:
        attrs = json.loads(body)["attrs"] if body is not None else None
    except (ValueError, TypeError, KeyError):
        attrs = None
    if not isinstance(attrs, dict):
        return "-"
    text = ", ".join(f"{name}={value!r}" for name, value in attrs.items())
    if width is not None and len(text) > width:
        text = text[: width - 3] + "..."
    return text


def first_line(text: Any) -> str:
    """The first line of an error message, for a one-line row."""
    lines = str(text or "").splitlines()
    return lines[0] if lines else ""


def pretty_record(record: dict[str, Any], body: bytes | str | None) -> str:
    """A status record as `name  value` lines, times in local ISO 8601, then the job's
    arguments, each failed attempt's error in a line, then the last traceback as the text it
    is."""
    fields = {key: value for key, value in record.items() if key not in ("traceback", "errors")}
    order = [key for key in (*_ORDER, *_TIMES) if key in fields]
    order += sorted(key for key in fields if key not in order)
    rows = [[_label(key), _value(key, fields[key])] for key in order]
    rows.append(["arguments", arguments(body)])
    for entry in record.get("errors") or []:
        if isinstance(entry, dict):
            at = entry.get("at")
            when = _value("failed_at", at) if isinstance(at, (int, float)) else ""
            attempt = f"attempt {entry.get('attempt', '?')}"
            rows.append([attempt, f"{when} {first_line(entry.get('error'))}".strip()])
    lines = table(rows)
    if record.get("traceback"):
        lines += ["traceback:", str(record["traceback"]).rstrip("\n")]
    return "\n".join(lines)


def _label(key: str) -> str:
    """`finished_at` -> `finished at`."""
    return key.replace("_", " ")


def _value(key: str, value: Any) -> str:
    if key.endswith("_at") and isinstance(value, (int, float)):
        return local_time(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)
