"""The rule for queue names, in one place: the config, QueueManager and the CLI all check names
with `check_queue_name`, so a name is accepted or refused, with the same message, everywhere."""

from __future__ import annotations

import re

# Queue names end up inside Redis key names: no ':' (the separator), no '{' or '}' (Redis Cluster
# hash tags), no spaces.
QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
QUEUE_NAME_RULE = (
    "must be 1 to 64 characters: letters, digits, '_', '.' or '-', starting with a letter or "
    "digit (queue names become part of Redis keys, so ':', '{', '}' and spaces are not allowed)"
)


def check_queue_name(name: object) -> str:
    """`name` if it is a valid queue name; else ValueError saying what a queue name must be."""
    if not isinstance(name, str) or not QUEUE_NAME.fullmatch(name):
        raise ValueError(f"invalid queue name: {QUEUE_NAME_RULE}; got {name!r}")
    return name
