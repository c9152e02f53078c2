"""`gristmill check`: run the declared checks of the selected assets as they stand."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gristmill.graph.load import load_graph

if TYPE_CHECKING:
    from gristmill.project import Project


@dataclass
class AssetChecks:
    asset: str
    relation: str
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass
class CheckSummary:
    run_id: int
    assets: list[AssetChecks] = field(default_factory=list)

    @property
    def results(self) -> list[dict[str, Any]]:
        return [r for a in self.assets for r in a.results]

    @property
    def ok(self) -> bool:
        """No check of severity error failed, and every checked table exists."""
        return not any(a.error for a in self.assets) and not any(
            r["blocking"] for r in self.results
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "assets": [a.__dict__ for a in self.assets],
        }


def check(project: Project, selectors: Iterable[str] = ()) -> CheckSummary:
    """Run the checks of the selected assets (all when none is given), store the results."""
    from gristmill.checks import run_checks

    selectors = list(selectors)
    loaded = load_graph(project)
    graph = loaded.graph
    warehouse, catalog = project.warehouse, project.catalog
    run_id = catalog.start_run("check" + "".join(f" {s}" for s in selectors))
    summary = CheckSummary(run_id)
    selected = graph.select(selectors)
    for name in graph.order():
        asset = graph[name]
        if name not in selected or not asset.checks or asset.relation is None:
            continue
        entry = AssetChecks(name, ".".join(asset.relation))
        summary.assets.append(entry)
        if asset.relation not in loaded.relations:
            entry.error = f"{entry.relation} does not exist yet; build it: gristmill run {name}"
            continue
        results = run_checks(
            warehouse,
            warehouse.qualified(*asset.relation),
            asset.checks,
            search_path=loaded.search_path,
        )
        entry.results = [r.to_dict() for r in results]
        catalog.record_checks(run_id, name, entry.results)
    catalog.finish_run(run_id, "ok" if summary.ok else "failed")
    return summary
