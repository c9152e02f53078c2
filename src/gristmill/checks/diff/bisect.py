"""The diff algorithm (datafold data-diff's): checksum key segments inside each database,
bisect only the segments that disagree, compare rows in Python only where few remain.

Level 0 splits the key range into segments of ~SEGMENT_ROWS rows, so that the first
level is one scan of each table. Each further level splits the segments that disagreed
into ~FANOUT parts, with one aggregate query per side restricted to those segments' key
ranges. A disagreeing segment is compared row by row (keys and row hashes, then the
values of the rows whose hashes differ) once it holds at most FETCH_ROWS rows on each
side, once it is missing on one side, or once most segments disagree (differences are
dense, and bisecting further would not save transfers). Both sides run in parallel.

A single integer key (or timestamp, as epoch microseconds) is split arithmetically: the
segment of a key is (key - base) // width. Other keys, composite keys among them, are
compared by their position (the byte-ordered text of their normalised parts), split at
boundaries read from the side holding more rows. Rows found to differ are compared value
by value in Python: floats within the tolerance are equal (their codes only tell which
rows to look at), and what differs is reported as the user would write it.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from gristmill.checks.diff.base import (
    Column,
    DiffEndpoint,
    Identity,
    Key,
    Range,
    positional,
)
from gristmill.checks.diff.normalise import (
    DEFAULT_FLOAT_TOLERANCE,
    ColumnType,
    Normalise,
    display,
    float_shift,
    floats_equal,
)
from gristmill.checks.diff.result import Changed, DiffResult, DisplayKey
from gristmill.errors import BackendError, ConfigError

SEGMENT_ROWS = 30_000
"""Rows per segment of the first level."""
FANOUT = 32
"""Parts a disagreeing segment is split into at the next level."""
FETCH_ROWS = 500
"""A disagreeing segment this small (on both sides) is compared row by row."""
DENSE = 0.5
"""When more than this share of a level's segments disagree (and there are at least
DENSE_MIN_SEGMENTS, of at most DENSE_ROWS rows on average), compare their rows at once."""
DENSE_MIN_SEGMENTS = 8
DENSE_ROWS = FETCH_ROWS * FANOUT
RANGES_PER_QUERY = 400
KEYS_PER_QUERY = 1_000

T = TypeVar("T")


@dataclass(frozen=True)
class _Plan:
    key: tuple[list[Column], list[Column]]
    columns: tuple[list[Column], list[Column]]
    names: list[str]


class _Segmentation(ABC):
    """Which segment each key falls in, at one level."""

    @abstractmethod
    def index_sql(self, side: DiffEndpoint) -> str:
        """SQL over `{key}` giving the segment number."""

    @abstractmethod
    def range_of(self, segment: int) -> Range: ...


@dataclass(frozen=True)
class _Grid(_Segmentation):
    """Integer keys: segment = (key - base) // width."""

    base: int
    width: int

    def index_sql(self, side: DiffEndpoint) -> str:
        return side.dialect.int_div(f"({{key}} - {self.base})", str(self.width))

    def range_of(self, segment: int) -> Range:
        lo = self.base + segment * self.width
        return Range(lo, lo + self.width)


@dataclass(frozen=True)
class _Boundaries(_Segmentation):
    """Ordered keys: segment i holds bounds[i-1] <= key < bounds[i]."""

    bounds: tuple[Key, ...]

    def index_sql(self, side: DiffEndpoint) -> str:
        def tree(lo: int, hi: int) -> str:
            # segments lo..hi; bounds[lo..hi-1] separate them
            if lo == hi:
                return str(lo)
            mid = (lo + hi + 1) // 2
            below, above = tree(lo, mid - 1), tree(mid, hi)
            return f"CASE WHEN {{key}} < {side.literal(self.bounds[mid - 1])} THEN {below} ELSE {above} END"

        return tree(0, len(self.bounds))

    def range_of(self, segment: int) -> Range:
        lo = self.bounds[segment - 1] if segment > 0 else None
        hi = self.bounds[segment] if segment < len(self.bounds) else None
        return Range(lo, hi)


class Differ:
    def __init__(self, a: DiffEndpoint, b: DiffEndpoint, plan: _Plan, result: DiffResult) -> None:
        self.sides = (a, b)
        self.plan = plan
        self.result = result
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gristmill-diff")

    def both(self, call: Callable[[DiffEndpoint, int], T]) -> tuple[T, T]:
        """`call(side, i)` for both sides at once."""
        futures = [self._pool.submit(call, side, i) for i, side in enumerate(self.sides)]
        first, second = (f.result() for f in futures)
        return first, second

    def run(self) -> DiffResult:
        try:
            self._run()
        finally:
            self._pool.shutdown(wait=True)
        result = self.result
        result.queries = sum(s.queries for s in self.sides)
        result.rows_moved = sum(s.rows_moved for s in self.sides)
        result.seconds = time.perf_counter() - result.started
        return result

    def _run(self) -> None:
        plan = self.plan
        estimates = self.both(lambda side, _: side.estimate_rows())
        if max(estimates) == 0:
            return
        integer = not positional(plan.key[0])
        fetch: list[Range] = []
        if max(estimates) <= FETCH_ROWS:
            fetch.append(Range())
            pending: list[Range] = []
            segmentation: _Segmentation | None = None
        elif integer:
            bounds = self.both(lambda side, i: side.key_bounds(plan.key[i]))
            lows = [lo for lo, _ in bounds if lo is not None]
            highs = [hi for _, hi in bounds if hi is not None]
            if not lows:
                return
            base, top = int(min(lows)), int(max(highs)) + 1
            parts = max(1, math.ceil(max(estimates) / SEGMENT_ROWS))
            segmentation = _Grid(base, max(1, math.ceil((top - base) / parts)))
            pending = [Range(base, top)]
        else:
            larger = 0 if estimates[0] >= estimates[1] else 1
            step = max(1, SEGMENT_ROWS if estimates[larger] > SEGMENT_ROWS else FETCH_ROWS)
            bounds_ = self.sides[larger].boundaries(plan.key[larger], [Range()], step)
            segmentation = _Boundaries(tuple(dict.fromkeys(bounds_)))
            pending = [Range()]

        first = True
        while pending and segmentation is not None:
            self.result.levels += 1
            sums = self.both(self._checksums(segmentation, pending))
            counts = [0, 0]
            segments = sorted(set(sums[0]) | set(sums[1]))
            self.result.segments += len(segments)
            disagree: list[tuple[Range, int, int]] = []
            for segment in segments:
                ca, sa = sums[0].get(segment, (0, 0))
                cb, sb = sums[1].get(segment, (0, 0))
                counts[0] += ca
                counts[1] += cb
                if (ca, sa) != (cb, sb):
                    disagree.append((segmentation.range_of(segment), ca, cb))
            if first:
                self.result.rows_a, self.result.rows_b = counts
                first = False
            # Differences everywhere, in segments already small: bisecting further would
            # move more checksums than it saves rows.
            dense = (
                len(segments) >= DENSE_MIN_SEGMENTS
                and len(disagree) > DENSE * len(segments)
                and sum(max(ca, cb) for _, ca, cb in disagree) <= DENSE_ROWS * len(disagree)
            )
            pending = []
            for r, ca, cb in disagree:
                if dense or min(ca, cb) == 0 or max(ca, cb) <= FETCH_ROWS:
                    fetch.append(r)
                else:
                    pending.append(r)
            segmentation = self._split(segmentation, pending, disagree, fetch) if pending else None
            pending = [r for r in pending if r not in fetch]

        if fetch:
            self._compare_rows(fetch)
        if self.result.levels == 0 and fetch:
            self.result.rows_a, self.result.rows_b = self._fetched_counts

    def _checksums(
        self, segmentation: _Segmentation, ranges: list[Range]
    ) -> Callable[[DiffEndpoint, int], dict[int, tuple[int, int]]]:
        plan = self.plan

        def call(side: DiffEndpoint, i: int) -> dict[int, tuple[int, int]]:
            index = segmentation.index_sql(side)
            merged: dict[int, tuple[int, int]] = {}
            for chunk in _chunks(ranges):
                for seg, (n, s) in side.checksums(
                    plan.key[i], plan.columns[i], index, chunk
                ).items():
                    n0, s0 = merged.get(seg, (0, 0))
                    merged[seg] = (n0 + n, s0 + s)
            return merged

        return call

    def _split(
        self,
        current: _Segmentation,
        pending: list[Range],
        disagree: list[tuple[Range, int, int]],
        fetch: list[Range],
    ) -> _Segmentation | None:
        """The next level's segmentation of `pending`; a range that cannot be split
        further moves to `fetch`."""
        if isinstance(current, _Grid):
            width = max(1, math.ceil(current.width / FANOUT))
            if width == current.width:
                fetch.extend(pending)
                return None
            return _Grid(current.base, width)
        rows = [0, 0]
        for r, ca, cb in disagree:
            if r in pending:
                rows[0] += ca
                rows[1] += cb
        larger = 0 if rows[0] >= rows[1] else 1
        step = max(1, rows[larger] // (FANOUT * len(pending)))
        side = self.sides[larger]
        found = _chunked_list(
            pending, lambda chunk: side.boundaries(self.plan.key[larger], chunk, step)
        )
        edges = {r.lo for r in pending if r.lo is not None}
        edges |= {r.hi for r in pending if r.hi is not None}
        for r in pending:
            if not any(r.contains(k) and k != r.lo for k in found):
                fetch.append(r)
        bounds = sorted(edges | set(found))  # type: ignore[type-var]
        return _Boundaries(tuple(bounds))

    # -- row by row ----------------------------------------------------------------------
    _fetched_counts: tuple[int, int] = (0, 0)

    def _compare_rows(self, ranges: list[Range]) -> None:
        plan = self.plan
        hashes = self.both(
            lambda side, i: _chunked_list(
                ranges, lambda chunk: side.row_hashes(plan.key[i], plan.columns[i], chunk)
            )
        )
        maps: list[dict[Key, tuple[Identity, str]]] = []
        for side, rows in zip(self.sides, hashes, strict=True):
            found: dict[Key, tuple[Identity, str]] = {}
            for position, identity, digest in rows:
                if position in found:
                    raise BackendError(
                        f"{side.label}: the key ({self.result.key_label}) is not unique:"
                        f" {self._display_key(identity)!r} appears more than once."
                        " Diff on a unique key (several columns: --key a,b)."
                    )
                found[position] = (identity, digest)
            maps.append(found)
        self._fetched_counts = (len(maps[0]), len(maps[1]))
        in_a, in_b = maps
        result = self.result
        result.missing_in_b = self._display_keys(v[0] for k, v in in_a.items() if k not in in_b)
        result.missing_in_a = self._display_keys(v[0] for k, v in in_b.items() if k not in in_a)
        changed = sorted(  # type: ignore[type-var]
            (v[0], k) for k, v in in_a.items() if k in in_b and in_b[k][1] != v[1]
        )
        if not changed or not plan.names:
            return
        positions = [k for _, k in changed]
        values = self.both(
            lambda side, i: _merged(
                [
                    side.values(plan.key[i], plan.columns[i], positions[s : s + KEYS_PER_QUERY])
                    for s in range(0, len(positions), KEYS_PER_QUERY)
                ]
            )
        )
        for identity, position in changed:
            va, vb = values[0].get(position), values[1].get(position)
            if va is None or vb is None:  # changed under our feet: report it as it was seen
                continue
            columns = {
                name: (
                    display(ca.type, ca.norm, xa, shown_a),
                    display(cb.type, cb.norm, xb, shown_b),
                )
                for name, ca, cb, (xa, shown_a), (xb, shown_b) in zip(
                    plan.names, plan.columns[0], plan.columns[1], va, vb, strict=True
                )
                if not _same(ca.norm, xa, xb)
            }
            if columns:  # else the row differs only within the float tolerance
                result.changed.append(Changed(self._display_key(identity), columns))

    def _display_keys(self, identities: Iterable[Identity]) -> list[DisplayKey]:
        return [self._display_key(i) for i in sorted(identities)]  # type: ignore[type-var]

    def _display_key(self, identity: Identity) -> DisplayKey:
        """A key as the user writes it, in side A's types: the value of a single key
        column, a tuple for a composite key."""
        parts = tuple(
            display(p.type, p.norm, v) for p, v in zip(self.plan.key[0], identity, strict=True)
        )
        return parts[0] if len(parts) == 1 else parts


def _same(norm: Normalise, a: Any, b: Any) -> bool:
    if norm.kind == "float":
        return floats_equal(a, b, norm.tolerance)
    return bool(a == b)


def _chunks(ranges: Sequence[Range]) -> list[list[Range]]:
    merged = _merge(ranges)
    return [merged[i : i + RANGES_PER_QUERY] for i in range(0, len(merged), RANGES_PER_QUERY)]


def _chunked_list(ranges: Sequence[Range], call: Callable[[Sequence[Range]], list[T]]) -> list[T]:
    out: list[T] = []
    for chunk in _chunks(ranges):
        out.extend(call(chunk))
    return out


def _merged(parts: list[dict[Key, T]]) -> dict[Key, T]:
    out: dict[Key, T] = {}
    for part in parts:
        out.update(part)
    return out


def _merge(ranges: Sequence[Range]) -> list[Range]:
    """Sorted, with touching ranges joined."""

    def start(r: Range) -> tuple[int, Key | int]:
        return (0, 0) if r.lo is None else (1, r.lo)

    out: list[Range] = []
    for r in sorted(ranges, key=start):  # type: ignore[arg-type]
        if out and out[-1].hi is not None and r.lo is not None and out[-1].hi == r.lo:
            out[-1] = Range(out[-1].lo, r.hi)
        elif out and out[-1].hi is None:
            continue
        else:
            out.append(r)
    return out


def plan(
    a: DiffEndpoint,
    b: DiffEndpoint,
    key: Sequence[str],
    columns: Sequence[str] | None,
    result: DiffResult,
    float_tolerance: float = DEFAULT_FLOAT_TOLERANCE,
) -> _Plan:
    """The key and compared columns on each side, with their shared renderings."""
    float_shift(float_tolerance)  # a tolerance out of bounds stops here, named
    canonical_json = a.dialect.CANONICAL_JSON and b.dialect.CANONICAL_JSON

    def common(ta: ColumnType, tb: ColumnType) -> Normalise:
        return Normalise.common(ta, tb, float_tolerance, canonical_json)

    keys = [(a.column(k), b.column(k)) for k in key]
    for ta, tb in keys:
        why = Normalise.incomparable(ta, tb, canonical_json)
        if why:
            raise ConfigError(f"Key column '{ta.name}' cannot be compared: {why}.")
    lowered = {k.lower() for k in key}
    if columns:
        names = [c.strip() for c in columns if c.strip() and c.strip().lower() not in lowered]
        pairs = [(a.column(n), b.column(n)) for n in names]
    else:
        in_b = b.columns()
        pairs = [
            (t, in_b[lower])
            for lower, t in a.columns().items()
            if lower in in_b and lower not in lowered
        ]
        result.only_in_a = [t.name for n, t in a.columns().items() if n not in in_b]
        result.only_in_b = [t.name for n, t in in_b.items() if n not in a.columns()]
    # One column that cannot be compared is reported, and the others are still compared.
    for ta, tb in pairs:
        why = Normalise.incomparable(ta, tb, canonical_json)
        if why:
            result.not_compared[ta.name] = why
    pairs = [(ta, tb) for ta, tb in pairs if ta.name not in result.not_compared]
    key_norms = [common(ta, tb) for ta, tb in keys]
    norms = [common(ta, tb) for ta, tb in pairs]
    return _Plan(
        key=(
            [Column(ta, n) for (ta, _), n in zip(keys, key_norms, strict=True)],
            [Column(tb, n) for (_, tb), n in zip(keys, key_norms, strict=True)],
        ),
        columns=(
            [Column(ta, n) for (ta, _), n in zip(pairs, norms, strict=True)],
            [Column(tb, n) for (_, tb), n in zip(pairs, norms, strict=True)],
        ),
        names=[ta.name for ta, _ in pairs],
    )


def key_columns(key: str | Sequence[str]) -> list[str]:
    """The key columns a caller named: one column name, or a list of them."""
    names = [key] if isinstance(key, str) else list(key)
    names = [n.strip() for n in names]
    if not names or not all(names):
        raise ConfigError("diff needs a key: the column (or columns) that identify a row.")
    if len({n.lower() for n in names}) != len(names):
        raise ConfigError(f"diff key columns are named twice: {', '.join(names)}.")
    return names


def diff(
    a: DiffEndpoint,
    b: DiffEndpoint,
    key: str | Sequence[str],
    columns: Sequence[str] | None = None,
    float_tolerance: float = DEFAULT_FLOAT_TOLERANCE,
) -> DiffResult:
    """Compare the tables of endpoints `a` and `b` on the unique `key` (a column, or the
    columns of a composite key); floats within the relative `float_tolerance` are equal."""
    shared = [h for h in a.dialect.TEXT_HASHES if h in b.dialect.TEXT_HASHES]
    a.text_hash = b.text_hash = shared[0] if shared else "md5"
    names = key_columns(key)
    result = DiffResult(
        a=a.label, b=b.label, key=names, columns=[], float_tolerance=float_tolerance
    )
    the_plan = plan(a, b, names, columns, result, float_tolerance)
    result.key = [c.type.name for c in the_plan.key[0]]
    result.columns = the_plan.names
    return Differ(a, b, the_plan, result).run()
