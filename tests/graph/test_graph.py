"""The asset graph: inferred edges, selectors, cycles, unknown tables, exports."""

from __future__ import annotations

import json

import pytest

from gristmill.errors import ConfigError
from gristmill.graph.export import to_dot, to_json, to_mermaid, to_tree
from gristmill.graph.load import load_graph
from gristmill.project import Project
from tests.graph.conftest import GraphProject

pytestmark = pytest.mark.parametrize("graph_project", ["duckdb"], indirect=True)


def chain(p: GraphProject) -> None:
    p.write("a.sql", "WITH x AS (SELECT * FROM orders) SELECT * FROM x")
    p.write("b.sql", 'SELECT * FROM "a" JOIN users ON users.id = a.user_id')
    p.write("c.sql", "SELECT * FROM b WHERE id IN (SELECT id FROM analytics.a)")
    p.write("d.sql", "SELECT * FROM users")


def graph_of(p: GraphProject):  # type: ignore[no-untyped-def]
    with Project.load(p.root) as project:
        return load_graph(project).graph


def test_edges_are_inferred_from_sql(graph_project: GraphProject) -> None:
    chain(graph_project)
    graph = graph_of(graph_project)
    assert graph["a"].upstream == ["raw.orders"]
    assert sorted(graph["b"].upstream) == ["a", "raw.users"]
    assert sorted(graph["c"].upstream) == ["a", "b"]
    assert graph["raw.orders"].upstream == ["app.orders"]
    order = graph.order()
    assert order.index("a") < order.index("b") < order.index("c")


def test_selectors(graph_project: GraphProject) -> None:
    chain(graph_project)
    graph = graph_of(graph_project)
    assert graph.select(["b"]) == {"b"}
    assert graph.select(["b+"]) == {"b", "c"}
    assert graph.select(["+b"]) == {"b", "a", "raw.orders", "raw.users", "app.orders", "app.users"}
    assert graph.select(["a+ d"]) == {"a", "b", "c", "d"}
    assert graph.select(["analytics.d"]) == {"d"}
    assert graph.select(["app"]) >= {"app.users", "app.orders", "raw.users", "raw.orders"}
    with pytest.raises(ConfigError, match="Did you mean 'b'"):
        graph.select(["bb"])


def test_a_cycle_names_its_members(graph_project: GraphProject) -> None:
    p = graph_project
    p.write("a.sql", "SELECT * FROM c")
    p.write("b.sql", "SELECT * FROM a")
    p.write("c.sql", "SELECT * FROM b")
    p.write("d.sql", "SELECT * FROM users")
    with pytest.raises(ConfigError, match=r"cycle: (a|b|c) -> .* -> \1") as caught:
        graph_of(p)
    assert all(f"transforms/{n}.sql" in str(caught.value) for n in "abc")


def test_an_unknown_table_names_the_file_and_the_closest_table(
    graph_project: GraphProject,
) -> None:
    p = graph_project
    p.write("clean_orders.sql", "SELECT * FROM orders")
    p.write("daily.sql", "SELECT * FROM clean_order")
    with pytest.raises(ConfigError, match=r"transforms/daily.sql.*'clean_order'.*'clean_orders'"):
        graph_of(p)


def test_two_definitions_of_one_table_are_refused(graph_project: GraphProject) -> None:
    p = graph_project
    p.write("a.sql", "SELECT 1 AS x")
    p.write(
        "more.py", "from gristmill import transform\n\n@transform(inputs=[])\ndef a():\n    pass\n"
    )
    with pytest.raises(ConfigError, match="Two transforms make the table 'a'"):
        graph_of(p)


def test_exports(graph_project: GraphProject) -> None:
    chain(graph_project)
    graph = graph_of(graph_project)
    dot = to_dot(graph)
    assert '"a" -> "b";' in dot and dot.startswith("digraph")
    mermaid = to_mermaid(graph)
    assert mermaid.startswith("flowchart LR") and "-->" in mermaid
    data = json.loads(to_json(graph))
    by_name = {a["name"]: a for a in data["assets"]}
    assert by_name["b"]["file"] == "transforms/b.sql:1"
    assert by_name["b"]["downstream"] == ["c"]
    from rich.console import Console

    console = Console(record=True, width=120)
    console.print(to_tree(graph))
    text = console.export_text()
    assert "app.orders" in text and "(above)" in text
