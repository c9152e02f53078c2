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
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_LONG_NUMBER = re.compile(r"\d{20}")
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


def _int(text: str) -> int | _Refused:
    # Compared as text first: converting thousands of digits costs more than the check
    # (and past 4,300 Python refuses without saying where).
    if len(text.lstrip("-")) > 19:
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
    # Hooks cost a Python call per number: the one for integers only where one may be long.
    long = _LONG_NUMBER.search(text) is not None
    try:
        value = json.loads(text, parse_constant=_constant, parse_int=_int if long else None)
    except RecursionError:
        raise BadRequestError(f"The body nests deeper than {MAX_DEPTH} levels.") from None
    except ValueError as exc:
        raise BadRequestError(f"The body is not JSON: {exc}") from None
    # Strict UTF-8 has no surrogates: one can only come from a \\uD800-\\uDFFF escape.
    found = _find(value, 0, _ESCAPED_SURROGATE.search(text) is not None)
    if found is not None:
        path, problem = found
        raise BadRequestError(f"{_path(path) or 'The body'}: {problem}.")
    return value


def _find(value: Any, depth: int, surrogates: bool) -> tuple[list[str | int], str] | None:
    """Where in `value` the first refused thing is (its path, innermost last) and what it
    is; None when there is none. Paths are built only for a refusal, and scalars are
    checked in the loop over their container, not by a call each: the walk over a body
    that passes costs a few type checks per value."""
    kind = type(value)
    if kind is not dict and kind is not list:
        problem = _problem(value, surrogates)
        return None if problem is None else ([], problem)
    if depth >= MAX_DEPTH:
        return [], f"nests deeper than {MAX_DEPTH} levels"
    items = value.items() if kind is dict else enumerate(value)
    for key, item in items:
        if surrogates and isinstance(key, str) and _SURROGATE.search(key):
            return [key], "the name holds a lone surrogate (not UTF-8)"
        of = type(item)
        if of is dict or of is list:
            found = _find(item, depth + 1, surrogates)
            if found is not None:
                found[0].insert(0, key)
                return found
        elif (
            (of is float and not math.isfinite(item))
            or (of is int and not INT64[0] <= item <= INT64[1])
            or of is _Refused
            or (surrogates and of is str)
        ):
            problem = _problem(item, surrogates)
            if problem is not None:
                return [key], problem
    return None


def _problem(value: Any, surrogates: bool) -> str | None:
    """What is wrong with a scalar, if anything."""
    if isinstance(value, _Refused):
        return value.problem
    if isinstance(value, float) and not math.isfinite(value):
        return "a number beyond the range of a 64-bit float"  # 1e309 parses as inf
    if type(value) is int and not INT64[0] <= value <= INT64[1]:
        return f"{_short(str(value))} is beyond a 64-bit integer"
    if surrogates and isinstance(value, str) and _SURROGATE.search(value):
        return "the text holds a lone surrogate (not UTF-8)"
    return None


def _path(parts: list[str | int]) -> str:
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif len(part) <= 64 and _NAME.match(part):
            path += f".{part}" if path else part
        else:
            path += f"[{_short(json.dumps(part))}]"
    return path


async def read_body(request: Request, max_bytes: int, seconds: float) -> bytes:
    """The body, at most `max_bytes` of it, sent within `seconds`."""
    import asyncio

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLargeError(f"The body is larger than {max_bytes:,} bytes.")
    parts: list[bytes] = []
    size = 0
    try:
        # asyncio's own timeout: an anyio cancel scope costs tens of µs a request.
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise BodyTooLargeError(f"The body is larger than {max_bytes:,} bytes.")
                parts.append(chunk)
    except TimeoutError:
        raise BodyTooSlowError(f"The body took longer than {seconds:g} s to arrive.") from None
    return b"".join(parts)
