"""Walk raw config data table by table, converting known keys and collecting every problem.

The Reader never stops at the first mistake: each bad key, unknown key or bad environment variable
adds one message naming the file (or the variable) and the full key path, and config.py raises them
all together as one ConfigError, so that one edit can fix them all.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobpool.config.schema import Convert, describe

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BOOLEAN_WORDS = {
    **dict.fromkeys(("true", "1", "yes", "on"), True),
    **dict.fromkeys(("false", "0", "no", "off"), False),
}


def key_path(path: str, key: str) -> str:
    """Join a TOML key path, quoting keys that are not bare keys: queues."emails.v2".workers."""
    key = str(key)
    quoted = key if _BARE_KEY.fullmatch(key) else '"' + key.replace('"', '\\"') + '"'
    return f"{path}.{quoted}" if path else quoted


@dataclass
class Reader:
    """Walks the raw data, converting known keys and collecting one message per problem."""

    source: str
    problems: list[str] = field(default_factory=list)

    def error(self, path: str, message: str) -> None:
        self.problems.append(f"{self.source}: {path or 'top level'}: {message}")

    def table(
        self,
        raw: Any,
        path: str,
        converters: Mapping[str, Convert],
        aliases: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The converted values of the valid keys of one table (missing keys are left out)."""
        aliases = aliases or {}
        if not isinstance(raw, Mapping):
            self.error(path, f"must be a table, got {describe(raw)}")
            return {}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            name, where = aliases.get(key, key), key_path(path, key)
            if name not in converters:
                self.unknown(where, key, [*converters, *aliases])
            elif name != key and name in raw:
                self.error(where, f"'{key}' is another name for '{name}': set only one of them")
            else:
                self.convert(values, name, where, converters[name], value)
        return values

    def convert(
        self, values: dict[str, Any], name: str, where: str, convert: Convert, value: Any
    ) -> None:
        try:
            values[name] = convert(value)
        except ValueError as exc:
            self.error(where, str(exc))

    def unknown(self, where: str, key: str, known: Iterable[str]) -> None:
        message = f"{self.source}: unknown key '{where}'"
        close = difflib.get_close_matches(key, list(known), n=3, cutoff=0.6)
        if close:
            message += f" (did you mean {' or '.join(repr(name) for name in close)}?)"
        self.problems.append(message)

    def env(
        self,
        env: Mapping[str, str],
        names: Mapping[str, str],
        converters: Mapping[str, Convert],
        integer_keys: frozenset[str] = frozenset(),
        boolean_keys: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """The converted values of the environment variables that are set and not empty.

        `names` maps each variable to its key; the keys in `integer_keys` turn digit-only text into
        an integer first (REDIS_PORT=6380 is text; the file's integer rules still apply), and
        those in `boolean_keys` turn true/false, 1/0, yes/no, on/off into a boolean.
        """
        values: dict[str, Any] = {}
        for variable, key in names.items():
            text = env.get(variable)
            if not text:
                continue
            value: Any = text
            if key in integer_keys and text.strip().lstrip("-").isdigit():
                value = int(text)
            if key in boolean_keys:
                value = _BOOLEAN_WORDS.get(text.strip().lower(), text)
            try:
                values[key] = converters[key](value)
            except ValueError as exc:
                self.problems.append(f"environment variable {variable}: {exc}")
        return values
