"""The asset graph: every table a project makes, what it is made from, in what order.

Nodes are named so that a user can type them: a source table `app.transactions`, the
raw table it syncs into `raw.transactions`, a derived table `clean_transactions` (its
file name), and tables that exist in the warehouse without gristmill making them
(`schema.table`, kind "external").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from gristmill.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from gristmill.checks import CheckSpec
    from gristmill.features.distributed import TrainingSetSpec
    from gristmill.transforms.definition import Transform

AssetKind = Literal["source", "raw", "transform", "external", "feature_view", "dataset", "model"]
RUNNABLE: frozenset[str] = frozenset({"raw", "transform", "dataset", "feature_view", "model"})
"""A feature view's step refreshes its online values (incrementally); it runs only for views
the online store holds, i.e. that were materialized once."""
ONLINE = "online"
"""Where a feature view's recorded version lives: the online store, not a relation."""


@dataclass
class Asset:
    name: str
    kind: AssetKind
    upstream: list[str] = field(default_factory=list)
    relation: tuple[str, str] | None = None
    """(schema, table) in the warehouse."""
    definition_hash: str = ""
    transform: Transform | None = None
    source: tuple[str, str] | None = None
    """(source, source table) of a raw table."""
    checks: list[CheckSpec] = field(default_factory=list)
    training: TrainingSetSpec | None = None
    """A dataset's parts, to build it on the workers of a distributed executor."""

    @property
    def label(self) -> str:
        if self.kind in ("feature_view", "dataset", "model"):
            return self.kind.replace("_", " ")
        if self.kind == "transform" and self.transform is not None:
            return f"{self.transform.kind} {self.transform.options.materialized}"
        return self.kind


class AssetGraph:
    def __init__(self, assets: Iterable[Asset]) -> None:
        self.assets: dict[str, Asset] = {}
        for asset in assets:
            if asset.name in self.assets:
                raise ConfigError(f"Two assets are named '{asset.name}'; rename one of them.")
            self.assets[asset.name] = asset
        self.downstream: dict[str, list[str]] = {name: [] for name in self.assets}
        for asset in self.assets.values():
            for up in asset.upstream:
                self.downstream[up].append(asset.name)
        self._order = self._topological_order()

    def __getitem__(self, name: str) -> Asset:
        return self.assets[name]

    def __len__(self) -> int:
        return len(self.assets)

    def order(self) -> list[str]:
        """Every asset after all of its upstream assets."""
        return list(self._order)

    def _topological_order(self) -> list[str]:
        pending = {name: len(set(a.upstream)) for name, a in self.assets.items()}
        ready = [name for name, count in pending.items() if count == 0]
        order: list[str] = []
        while ready:
            name = ready.pop(0)
            order.append(name)
            for down in dict.fromkeys(self.downstream[name]):
                pending[down] -= 1
                if pending[down] == 0:
                    ready.append(down)
        if len(order) < len(self.assets):
            raise ConfigError(self._describe_cycle(set(self.assets) - set(order)))
        return order

    def _describe_cycle(self, stuck: set[str]) -> str:
        start = min(stuck)
        path = [start]
        while True:
            following = next(up for up in self.assets[path[-1]].upstream if up in stuck)
            if following in path:
                cycle = [*path[path.index(following) :], following]
                break
            path.append(following)
        cycle.reverse()
        where = ", ".join(
            self.assets[n].transform.where  # type: ignore[union-attr]
            for n in dict.fromkeys(cycle)
            if self.assets[n].transform is not None
        )
        return f"The transforms form a cycle: {' -> '.join(cycle)} ({where}). Break it."

    def upstream_of(self, name: str) -> set[str]:
        return self._reach(name, lambda n: self.assets[n].upstream)

    def downstream_of(self, name: str) -> set[str]:
        return self._reach(name, lambda n: self.downstream[n])

    @staticmethod
    def _reach(start: str, step: Callable[[str], Iterable[str]]) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for following in step(todo.pop()):
                if following not in seen:
                    seen.add(following)
                    todo.append(following)
        return seen

    def find(self, name: str) -> list[str]:
        """The assets `name` designates: an asset name, a schema.table, or a source."""
        if name in self.assets:
            return [name]
        matches = [
            a.name
            for a in self.assets.values()
            if (a.relation is not None and ".".join(a.relation) == name)
            or (a.source is not None and a.source[0] == name)
            or (a.kind == "source" and a.name.split(".", 1)[0] == name)
        ]
        if not matches:
            raise ConfigError(
                f"Nothing in the project is called '{name}'.{did_you_mean(name, self.assets)}"
            )
        return matches

    def select(self, selectors: Iterable[str]) -> set[str]:
        """Assets chosen by dbt-style selectors: NAME, +NAME (with upstream), NAME+ (with
        downstream), +NAME+; several selectors add up. No selector chooses everything."""
        chosen: set[str] = set()
        given = [s for selector in selectors for s in selector.split()]
        if not given:
            return set(self.assets)
        for selector in given:
            with_up, with_down = selector.startswith("+"), selector.endswith("+")
            for name in self.find(selector.strip("+")):
                chosen.add(name)
                if with_up:
                    chosen |= self.upstream_of(name)
                if with_down:
                    chosen |= self.downstream_of(name)
        # A source table is synced by its raw table's step.
        for name in list(chosen):
            if self.assets[name].kind == "source":
                chosen.update(d for d in self.downstream[name] if self.assets[d].kind == "raw")
        return chosen
