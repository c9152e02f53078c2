"""Values as JSON holds them, for results that are printed, stored and sent."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any


def jsonable(value: Any) -> Any:
    """`value` as something json.dumps accepts: decimals, timestamps and such as text (so
    that nothing is rounded), bytes as hex."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def content_hash(value: Any, length: int = 12) -> str:
    """A short, stable hash of a JSON-able definition: its version by content."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
