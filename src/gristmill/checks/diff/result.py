"""What a diff found: keys missing on each side and changed rows, with values written as
the user would write them (see normalise.display)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

DisplayKey = Any
"""A key as the user writes it: an int or a text for one key column, a tuple of those
for a composite key."""


@dataclass
class Changed:
    """A key present on both sides whose values differ: column -> (value in A, value in B),
    each as the user would write it (None for NULL)."""

    key: DisplayKey
    columns: dict[str, tuple[Any, Any]]


@dataclass
class DiffResult:
    """What differs between tables A and B, and what finding it cost."""

    a: str
    b: str
    key: list[str]
    """The key columns (one, or the columns of a composite key)."""
    columns: list[str]
    float_tolerance: float = 0.0
    rows_a: int = 0
    rows_b: int = 0
    missing_in_a: list[DisplayKey] = field(default_factory=list)
    """Keys in B that A lacks."""
    missing_in_b: list[DisplayKey] = field(default_factory=list)
    """Keys in A that B lacks."""
    changed: list[Changed] = field(default_factory=list)
    only_in_a: list[str] = field(default_factory=list)
    """Columns of A that B lacks (not compared)."""
    only_in_b: list[str] = field(default_factory=list)
    not_compared: dict[str, str] = field(default_factory=dict)
    """Columns both tables have that the diff cannot compare: column -> why."""
    rows_moved: int = 0
    """Result rows both databases sent to this process: checksums, row hashes, values."""
    queries: int = 0
    segments: int = 0
    """Segment checksums compared, over every level."""
    levels: int = 0
    seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def equal(self) -> bool:
        return not (self.missing_in_a or self.missing_in_b or self.changed)

    @property
    def differences(self) -> int:
        return len(self.missing_in_a) + len(self.missing_in_b) + len(self.changed)

    @property
    def key_label(self) -> str:
        """The key columns as the command line takes them: id, or id,line."""
        return ",".join(self.key)

    def key_json(self, key: DisplayKey) -> Any:
        """A key in the JSON report: the value itself for one key column, an object of
        column -> value for a composite key."""
        if len(self.key) == 1:
            return key
        return dict(zip(self.key, key, strict=True))

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "key": self.key[0] if len(self.key) == 1 else self.key,
            "columns": self.columns,
            "float_tolerance": self.float_tolerance,
            "equal": self.equal,
            "rows_a": self.rows_a,
            "rows_b": self.rows_b,
            "missing_in_a": [self.key_json(k) for k in self.missing_in_a],
            "missing_in_b": [self.key_json(k) for k in self.missing_in_b],
            "changed": [
                {
                    "key": self.key_json(c.key),
                    "columns": {n: {"a": va, "b": vb} for n, (va, vb) in c.columns.items()},
                }
                for c in self.changed
            ],
            "only_in_a": self.only_in_a,
            "only_in_b": self.only_in_b,
            "not_compared": self.not_compared,
            "stats": {
                "rows_moved": self.rows_moved,
                "queries": self.queries,
                "segments": self.segments,
                "levels": self.levels,
                "seconds": round(self.seconds, 3),
            },
        }
