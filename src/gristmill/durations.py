"""Durations as people write them in gristmill.toml, SQL headers and decorators."""

from __future__ import annotations

import functools
import re
from datetime import timedelta

_UNITS = {
    "ms": 0.001,
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def parse_duration(text: str) -> timedelta:
    """A duration such as "30m", "24h", "7d", "2 days" or "1h30m" as a timedelta (cached:
    a served request reads every window of its views)."""
    position, seconds = 0, 0.0
    stripped = text.strip()
    if not stripped:
        raise ValueError("a duration cannot be empty; write one such as '24h', '30m' or '7d'")
    while position < len(stripped):
        match = _DURATION_PART.match(stripped, position)
        unit = match.group(2).lower() if match else ""
        if not match or unit not in _UNITS:
            raise ValueError(
                f"'{text}' is not a duration; write one such as '30m', '24h', '7d' or '2 days'"
            )
        seconds += float(match.group(1)) * _UNITS[unit]
        position = match.end()
    if seconds <= 0:
        raise ValueError(f"the duration '{text}' must be longer than zero")
    return timedelta(seconds=seconds)
