"""Request bodies: read within a size and a time limit, then parsed as strict JSON.

Python's json module takes what JSON does not allow (NaN, Infinity) and what a model
cannot score (1e309 becomes inf, 10**400 an integer no column holds, a lone surrogate a
string no encoder writes back), and nesting deep enough to exhaust the stack. Each is
refused here, as a bad request naming where in the body it is, before anything is scored,
logged or counted."""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

from gristmill.errors import GristmillError
from gristmill.serve.scoring import BadRequestError

if TYPE_CHECKING:
    from starlette.requests import Request

MAX_DEPTH = 32
"""Objects and lists within each other; a predict body needs three (rows, a row, a value)."""

INT64 = (-(2**63), 2**63 - 1)

_SURROGATE = re.compile("[\ud800-\udfff]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class BodyTooLargeError(GristmillError):
    """The body is larger than [serve] max_body_bytes (413)."""


class BodyTooSlowError(GristmillError):
    """The client took longer than [serve] body_timeout to send the body (408)."""


class _Refused:
    """What the parser puts where a value JSON cannot carry exactly was, to be named with
    its path by the walk that follows (the parser's hooks do not know where they are)."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _constant(text: str) -> _Refused:
    return _Refused(f"{text} is not a number JSON allows; send a finite number or null")


def _float(text: str) -> float | _Refused:
    value = float(text)
    if math.isinf(value):
        return _Refused(f"{_short(text)} is beyond the range of a 64-bit float")
    return value


def _int(text: str) -> int | _Refused:
    # Compared as text first: converting thousands of digits costs more than the check.
    if len(text.lstrip("-")) > 19 or not INT64[0] <= int(text) <= INT64[1]:
        return _Refused(f"{_short(text)} is beyond a 64-bit integer")
    return int(text)


def _short(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:12]}…{text[-4:]} ({len(text)} characters)"


def parse_json(raw: bytes) -> Any:
    """The JSON value of `raw`, or a BadRequestError naming the first field that holds a
    value out of range (e.g. "rows[0].amount")."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"The body is not UTF-8 (byte {exc.start}).") from None
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise BadRequestError(f"The body nests deeper than {MAX_DEPTH} levels.") from None
    except ValueError as exc:
        raise BadRequestError(f"The body is not JSON: {exc}") from None
    _check(value, "", 0)
    return value


def _check(value: Any, path: str, depth: int) -> None:
    if isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            raise BadRequestError(f"{path or 'The body'}: nests deeper than {MAX_DEPTH} levels.")
        if isinstance(value, list):
            for i, item in enumerate(value):
                _check(item, f"{path}[{i}]", depth + 1)
            return
        for key, item in value.items():
            where = _join(path, key)
            if _SURROGATE.search(key):
                raise BadRequestError(f"{where}: the name holds a lone surrogate (not UTF-8).")
            _check(item, where, depth + 1)
    elif isinstance(value, _Refused):
        raise BadRequestError(f"{path or 'The body'}: {value.problem}.")
    elif isinstance(value, str) and _SURROGATE.search(value):
        raise BadRequestError(f"{path or 'The body'}: the text holds a lone surrogate (not UTF-8).")


def _join(path: str, key: str) -> str:
    if _NAME.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{_short(json.dumps(key))}]"


async def read_body(request: Request, max_bytes: int, seconds: float) -> bytes:
    """The body, at most `max_bytes` of it, sent within `seconds`."""
    import anyio

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLargeError(f"The body is larger than {max_bytes:,} bytes.")
    parts: list[bytes] = []
    size = 0
    try:
        with anyio.fail_after(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise BodyTooLargeError(f"The body is larger than {max_bytes:,} bytes.")
                parts.append(chunk)
    except TimeoutError:
        raise BodyTooSlowError(f"The body took longer than {seconds:g} s to arrive.") from None
    return b"".join(parts)
