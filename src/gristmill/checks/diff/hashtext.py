"""PostgreSQL's `hashtext()`, vectorised over Arrow strings, so that another database
can compute the very same 32-bit text hash.

PostgreSQL hashes the UTF-8 bytes of a text value with Bob Jenkins' lookup3 (public
domain), as adapted in its src/common/hashfn.c: 12-byte blocks read as three
little-endian words and mixed, the last 0-11 bytes added with the lowest byte of the
third word left free, a final mix, and the third word returned. Computing it in
PostgreSQL costs a few tens of nanoseconds a value, far less than md5, so a diff of a
PostgreSQL table against a DuckDB one uses it: DuckDB runs this implementation as a
vectorised function. Equality with PostgreSQL is tested on random unicode strings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

UInt32s = Any
"""A numpy array of uint32 (arithmetic on it wraps around, as C's does)."""


def _rot(x: UInt32s, k: int) -> UInt32s:
    return (x << np.uint32(k)) | (x >> np.uint32(32 - k))


def _mix(a: UInt32s, b: UInt32s, c: UInt32s) -> tuple[UInt32s, UInt32s, UInt32s]:
    a -= c
    a ^= _rot(c, 4)
    c += b
    b -= a
    b ^= _rot(a, 6)
    a += c
    c -= b
    c ^= _rot(b, 8)
    b += a
    a -= c
    a ^= _rot(c, 16)
    c += b
    b -= a
    b ^= _rot(a, 19)
    a += c
    c -= b
    c ^= _rot(b, 4)
    b += a
    return a, b, c


def _final(a: UInt32s, b: UInt32s, c: UInt32s) -> UInt32s:
    c ^= b
    c -= _rot(b, 14)
    a ^= c
    a -= _rot(c, 11)
    b ^= a
    b -= _rot(a, 25)
    c ^= b
    c -= _rot(b, 16)
    a ^= c
    a -= _rot(c, 4)
    b ^= a
    b -= _rot(a, 14)
    c ^= b
    c -= _rot(b, 24)
    return c


def hashtext(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """PostgreSQL's `hashtext(value)::bigint & 4294967295` of every value (NULL stays NULL)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_large_string(values.type):
        values = values.cast(pa.large_string())
    n = len(values)
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64, count=n + 1, offset=values.offset * 8)
    raw = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0)
    # A few zero bytes past the end, so that reading a whole word at a tail stays in bounds.
    data = np.concatenate([raw[offsets[0] : offsets[-1]], np.zeros(12, np.uint8)])
    start = offsets[:-1] - offsets[0]
    length = offsets[1:] - offsets[:-1]
    a = (np.uint32((0x9E3779B9 + 3923095) & 0xFFFFFFFF) + length.astype(np.uint32)).astype(
        np.uint32
    )
    b, c = a.copy(), a.copy()

    def word(at: Any, count: Any = None) -> UInt32s:
        """The little-endian word of the bytes at `at` (only the first `count` of them)."""
        w = np.zeros(len(at), np.uint32)
        for i in range(4):
            byte = data[at + i].astype(np.uint32)
            if count is not None:
                byte[count <= i] = 0
            w |= byte << np.uint32(8 * i)
        return w

    blocks = length // 12
    with np.errstate(over="ignore"):
        for block in range(int(blocks.max(initial=0))):
            rows = np.nonzero(blocks > block)[0]
            at = start[rows] + 12 * block
            a[rows], b[rows], c[rows] = _mix(
                a[rows] + word(at), b[rows] + word(at + 4), c[rows] + word(at + 8)
            )
        tail = length - blocks * 12
        at = start + blocks * 12
        a += word(at, tail)
        b += word(at + 4, tail - 4)
        c += word(at + 8, tail - 8) << np.uint32(8)
        c = _final(a, b, c)
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    return pa.array(c.astype(np.int64), type=pa.int64(), mask=~valid)
