"""Parse the human-friendly sizes and durations that people write in config files.

Kept apart from config.py so that the CLI and other modules can reuse the same rules. Each parser
raises ValueError with a message that lists the accepted forms; config.py adds the file and the key.
"""

from __future__ import annotations

import math
import re

SIZE_FORMS = (
    "an integer number of bytes or a number with a unit B, K/KB/KiB, M/MB/MiB or G/GB/GiB "
    "(e.g. 512KiB, 64k, 256MiB, 128MB, 1.5GB; KB = 1000, KiB and bare K = 1024)"
)
DURATION_FORMS = (
    "a number of seconds or a number with a unit ms, s, m, h or d (e.g. 500ms, 30s, 5m, 2h)"
)

# Decimal units (KB) are powers of 1000 because that is what the SI prefix means; a bare K, M, G is
# read as binary because that is what people mean when they write "memory_limit = 512M".
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
}
_DURATION_UNITS = {
    "": 1.0,
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_NUMBER_WITH_UNIT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")
_BINARY_STEPS = (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


def parse_size(value: int | float | str | bool | None) -> int | None:
    """Return a size in bytes, or None when the value means "no limit" (false, "none", 0).

    None rather than 0 so that callers write `if limit is not None` and never mistake an unset
    limit for a limit of zero bytes.
    """
    if value is None or value is False:
        return None
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    number, factor = _split_size(value)
    if number == 0:
        return None
    size = round(number * factor)
    if size <= 0:
        raise ValueError(f"must be a size of at least 1 byte: {SIZE_FORMS}; got {value!r}")
    return size


def _split_size(value: object) -> tuple[float, int]:
    """Split a size into (number, bytes per unit), rejecting anything that is not a size."""
    problem = ValueError(f"must be a size: {SIZE_FORMS}; got {value!r}")
    if isinstance(value, bool):
        raise problem
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise problem
        return float(value), 1
    if not isinstance(value, str):
        raise problem
    match = _NUMBER_WITH_UNIT.fullmatch(value)
    if match is None or match[2].lower() not in _SIZE_UNITS:
        raise problem
    return float(match[1]), _SIZE_UNITS[match[2].lower()]


def parse_duration(value: int | float | str) -> float:
    """Return a duration in seconds (always > 0) from a number of seconds or a string like "5m"."""
    problem = ValueError(f"must be a duration > 0: {DURATION_FORMS}; got {value!r}")
    if isinstance(value, bool):
        raise problem
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _NUMBER_WITH_UNIT.fullmatch(value)
        if match is None or match[2].lower() not in _DURATION_UNITS:
            raise problem
        seconds = float(match[1]) * _DURATION_UNITS[match[2].lower()]
    else:
        raise problem
    if not math.isfinite(seconds) or seconds <= 0:
        raise problem
    return seconds


def format_size(size: int | None) -> str:
    """Render a byte count for humans, in binary units: 268435456 -> "256MiB", None -> "unlimited".

    Exact multiples print without decimals so that the output parses back to the same number.
    """
    if size is None:
        return "unlimited"
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"a size must be an integer >= 0, got {size!r}")
    for unit, factor in _BINARY_STEPS:
        if size >= factor:
            if size % factor == 0:
                return f"{size // factor}{unit}"
            return f"{size / factor:.1f}{unit}"
    return f"{size}B"
