"""Conversions between Python values and what the Lua scripts take and return."""

from __future__ import annotations

import json
import math
from typing import Any

from jobpool.drivers.base import Delivery, Fetched, Outcome

_loads = json.JSONDecoder().decode  # from str: json.loads would sniff the encoding of bytes
RETRY_CODES = {-1: Outcome.LOST, 1: Outcome.RETRYING, 2: Outcome.FAILED, 3: Outcome.CANCELLED}


def ms(seconds: float) -> int:
    """Seconds to whole ms, rounded up so nothing becomes due early."""
    return max(math.ceil(seconds * 1000), 0)


def parse_fetch(out: list[Any], queue: str, worker_id: str) -> Fetched:
    """fetch.lua's reply: {next due in ms or -1, stale worker or '', (id, body, record)...}, or
    {-1, '', 'paused'}, or {ms, stale worker or '', 'limited'}."""
    if len(out) == 3:  # paused, or limited: ms until a claim may take something
        if out[2] == b"paused":
            return Fetched([], None, None, paused=True)
        return Fetched([], None, out[1].decode() or None, limited_for=out[0] / 1000.0)
    deliveries = [
        Delivery(out[i].decode(), queue, out[i + 1], _loads(out[i + 2].decode()), worker_id)
        for i in range(2, len(out), 3)
    ]
    next_due = None if out[0] < 0 else out[0] / 1000.0
    return Fetched(deliveries, next_due, out[1].decode() or None)
