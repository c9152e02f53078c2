"""Helpers for tests that build projects."""

from __future__ import annotations

import math
import socket
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from gristmill.ingest import IngestSummary, ingest
from gristmill.online.base import Events, OnlineStore
from gristmill.project import Project


def write_project(root: Path, sources: dict[str, Any], **extra: Any) -> Path:
    config = {"name": "test", "sources": sources, **extra}
    (root / "gristmill.toml").write_text(tomli_w.dumps(config))
    return root


def run_ingest(root: Path, selector: str | None = None, **kwargs: Any) -> IngestSummary:
    with Project.load(root) as project:
        return ingest(project, selector, **kwargs)


def warehouse_rows(root: Path, table: str, order_by: str = "id") -> list[dict[str, Any]]:
    with Project.load(root) as project:
        schema = project.config.warehouse.raw_schema
        rows: list[dict[str, Any]] = project.warehouse.query_arrow(
            f'SELECT * FROM "{schema}"."{table}" ORDER BY {order_by}'
        ).to_pylist()
        return rows


class ForwardingStore(OnlineStore):
    """An online store that hands every call to `inner`, after `before(call)`: what the
    tests' counting and failing stores add to a real one."""

    NAME = "forwarding"

    def __init__(self, inner: OnlineStore) -> None:
        self.inner = inner

    def before(self, call: str) -> None:
        """Runs before each call to the inner store."""

    def read(self, view: str, keys: Sequence[str]) -> list[list[bytes]]:
        self.before("read")
        return self.inner.read(view, keys)

    def read_views(self, lookups: Sequence[tuple[str, Sequence[str]]]) -> list[list[list[bytes]]]:
        self.before("read_views")
        return self.inner.read_views(lookups)

    def write(
        self,
        view: str,
        events: Mapping[str, Events],
        forget_before: Mapping[str, int],
        replace: bool = False,
    ) -> None:
        self.before("write")
        self.inner.write(view, events, forget_before, replace)

    def get_meta(self, view: str, name: str) -> str | None:
        self.before("get_meta")
        return self.inner.get_meta(view, name)

    def set_meta(self, view: str, name: str, value: str) -> None:
        self.before("set_meta")
        self.inner.set_meta(view, name, value)

    def clear(self, view: str) -> None:
        self.before("clear")
        self.inner.clear(view)

    def close(self) -> None:
        self.inner.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def psi_by_hand(expected: Counter[Any], actual: Counter[Any]) -> float:
    """PSI of two bin counts, written out as Evidently's psi test computes it: shares of
    each side's rows, a share of 0 replaced by 0.0001 (or by a millionth of the side's
    smallest share when that is 0.0001 or less), bins empty on both sides left out."""
    keys = [k for k in expected.keys() | actual.keys() if expected[k] or actual[k]]

    def shares(counts: Counter[Any]) -> list[float]:
        total = sum(counts[k] for k in keys)
        found = [counts[k] / total for k in keys]
        smallest = min(v for v in found if v > 0)
        fill = smallest / 10**6 if smallest <= 0.0001 else 0.0001
        return [v if v > 0 else fill for v in found]

    return sum(
        (a - e) * math.log(a / e) for e, a in zip(shares(expected), shares(actual), strict=True)
    )
