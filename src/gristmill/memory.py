"""Process-wide memory behaviour for moving data in bulk."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import re

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3
LARGE_BUFFER_BYTES = 1 << 20


@functools.cache
def return_large_buffers_to_the_system() -> bool:
    """Have glibc's malloc map every buffer of LARGE_BUFFER_BYTES or more on its own, so
    that freeing it gives the memory back at once.

    By default glibc raises that threshold each time such a buffer is freed, after which
    the next ones (the ~14 MB of each batch a PostgreSQL read delivers) are carved out of
    its heap and their memory stays with the process: a 10-million-row sync into DuckDB
    peaked at 670 MB instead of 540 MB. Elsewhere than glibc, nothing changes."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    done = bool(mallopt(_M_MMAP_THRESHOLD, LARGE_BUFFER_BYTES))
    log.debug("malloc maps buffers of %d bytes and more: %s", LARGE_BUFFER_BYTES, done)
    return done


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_size(text: str) -> int:
    """A size as people write it ("4GB", "512MiB", "3 GB", "1e9" is not one) in bytes:
    GB is 10**9 and GiB 2**30, as in Dask and DuckDB."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f'\'{text}\' is not a size: write it like "4GB" or "512MiB"')
    number, unit = float(match.group(1)), match.group(2).lower()
    prefix = unit[:1] if unit[:1] != "b" else ""
    binary = "i" in unit and prefix
    scale = 1024 ** ("kmgt".index(prefix) + 1) if binary else _SIZE_UNITS[prefix]
    return int(number * scale)
