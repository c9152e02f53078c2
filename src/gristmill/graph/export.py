"""The asset graph as text: a tree for the terminal, and dot, mermaid or JSON to export."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gristmill.graph.assets import AssetGraph

if TYPE_CHECKING:
    from rich.tree import Tree

    from gristmill.graph.load import ProjectGraph
    from gristmill.project import Project

FORMATS = ("tree", "dot", "mermaid", "json")


def _nodes(graph: AssetGraph, only: set[str] | None) -> list[str]:
    return [n for n in graph.order() if only is None or n in only]


def to_tree(graph: AssetGraph, only: set[str] | None = None) -> Tree:
    """A Rich tree from the roots down; an asset reached twice is shown once in full."""
    from rich.tree import Tree

    names = set(_nodes(graph, only))
    root = Tree("[bold]assets[/]")
    shown: set[str] = set()

    def add(parent: Tree, name: str) -> None:
        asset = graph[name]
        label = f"{name} [dim]{asset.label}[/]"
        if name in shown:
            parent.add(f"{label} [dim](above)[/]")
            return
        shown.add(name)
        branch = parent.add(label)
        for down in dict.fromkeys(graph.downstream[name]):
            if down in names:
                add(branch, down)

    for name in graph.order():
        if name in names and not any(up in names for up in graph[name].upstream):
            add(root, name)
    return root


def to_dot(graph: AssetGraph, only: set[str] | None = None) -> str:
    shapes = {
        "source": "cylinder",
        "raw": "box",
        "external": "box",
        "transform": "ellipse",
        "feature_view": "hexagon",
        "dataset": "box3d",
        "model": "component",
    }
    lines = ["digraph gristmill {", "  rankdir=LR;"]
    for name in _nodes(graph, only):
        asset = graph[name]
        lines.append(f'  "{name}" [shape={shapes[asset.kind]}, label="{name}\\n{asset.label}"];')
    for name in _nodes(graph, only):
        for up in graph[name].upstream:
            if only is None or up in only:
                lines.append(f'  "{up}" -> "{name}";')
    lines.append("}")
    return "\n".join(lines)


def to_mermaid(graph: AssetGraph, only: set[str] | None = None) -> str:
    ids = {name: f"n{i}" for i, name in enumerate(graph.order())}
    brackets = {
        "source": ("[(", ")]"),
        "raw": ("[", "]"),
        "external": ("[", "]"),
        "feature_view": ("{{", "}}"),
        "dataset": ("[[", "]]"),
        "model": ("[/", "/]"),
    }
    lines = ["flowchart LR"]
    for name in _nodes(graph, only):
        asset = graph[name]
        left, right = brackets.get(asset.kind, ("(", ")"))
        lines.append(f'  {ids[name]}{left}"{name}"{right}')
    for name in _nodes(graph, only):
        for up in graph[name].upstream:
            if only is None or up in only:
                lines.append(f"  {ids[up]} --> {ids[name]}")
    return "\n".join(lines)


def to_json(
    graph: AssetGraph,
    only: set[str] | None = None,
    lineage: dict[str, dict[str, list[str]]] | None = None,
) -> str:
    assets: list[dict[str, Any]] = []
    for name in _nodes(graph, only):
        asset = graph[name]
        entry: dict[str, Any] = {
            "name": name,
            "kind": asset.kind,
            "upstream": asset.upstream,
            "downstream": graph.downstream[name],
            "relation": ".".join(asset.relation) if asset.relation else None,
        }
        if asset.transform is not None:
            entry["file"] = asset.transform.where
            entry["materialized"] = asset.transform.options.materialized
            entry["language"] = asset.transform.kind
        if asset.checks:
            entry["checks"] = [c.name for c in asset.checks]
        if lineage is not None and name in lineage:
            entry["columns"] = lineage[name]
        assets.append(entry)
    return json.dumps({"assets": assets}, indent=2)


def column_lineage(project: Project, loaded: ProjectGraph) -> dict[str, dict[str, list[str]]]:
    """For each SQL transform, which input columns feed each of its output columns."""
    from gristmill.transforms.sql import column_lineage as lineage_of

    schema = project.warehouse.columns()
    result: dict[str, dict[str, list[str]]] = {}
    for name in loaded.graph.order():
        transform = loaded.graph[name].transform
        if transform is None or transform.kind != "sql":
            continue
        result[name] = lineage_of(
            transform.sql, project.warehouse.DIALECT, transform.where, schema, loaded.resolved
        )
        # What a table built in this walk returns, so its own readers can expand `*`.
        schema.setdefault(loaded.derived_schema, {}).setdefault(
            name, {column: "TEXT" for column in result[name]}
        )
    return result


def render(
    project: Project, fmt: str, selectors: list[str], columns: bool
) -> tuple[AssetGraph, set[str] | None, str | None]:
    """The graph and selection to show; the text to print unless the format is 'tree'."""
    from gristmill.errors import ConfigError, did_you_mean
    from gristmill.graph.load import load_graph

    if fmt not in FORMATS:
        raise ConfigError(
            f"Unknown graph format '{fmt}'.{did_you_mean(fmt, FORMATS)} Use one of {FORMATS}."
        )
    loaded = load_graph(project)
    graph = loaded.graph
    only = graph.select(selectors) if selectors else None
    if fmt == "tree":
        return graph, only, None
    if fmt == "dot":
        return graph, only, to_dot(graph, only)
    if fmt == "mermaid":
        return graph, only, to_mermaid(graph, only)
    lineage = column_lineage(project, loaded) if columns else None
    return graph, only, to_json(graph, only, lineage)
