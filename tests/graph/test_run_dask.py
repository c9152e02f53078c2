"""`gristmill run` with engine = "dask": Python transforms run as tasks on the cluster's
workers (independent ones at once), SQL in the warehouse, the catalog written by the
driver; the tables equal those of the local engine."""

from __future__ import annotations

import os

import pytest

from tests.graph.conftest import GraphProject
from tests.graph.test_run import _basic

pytest.importorskip("distributed", reason="the dask extra is not installed")

WHERE_IT_RAN = """
    import os

    import pyarrow as pa

    from gristmill import transform


    @transform(inputs=["users"])
    def ran_{i}(users: pa.Table) -> pa.Table:
        return pa.table({{"id": users["id"], "pid": [os.getpid()] * users.num_rows}})
"""


def _on_dask(p: GraphProject, scheduler: str) -> None:
    config = p.root / "gristmill.toml"
    config.write_text(
        config.read_text() + f'\n[execution]\nengine = "dask"\nscheduler = "{scheduler}"\n'
    )


def test_dask_builds_the_tables_local_builds(
    graph_project: GraphProject, dask_scheduler: str
) -> None:
    p = graph_project
    _basic(p)
    assert p.run().ok
    tables = ("user_totals", "big_spenders", "user_scores")
    local = {t: p.rows(t) for t in tables}
    _on_dask(p, dask_scheduler)
    summary = p.run(full_refresh=True)
    assert summary.ok, [s.error for s in summary.steps]
    assert {s.name: s.status for s in summary.steps if s.name in tables} == dict.fromkeys(
        tables, "ok"
    )
    assert {t: p.rows(t) for t in tables} == local


@pytest.mark.parametrize("graph_project", ["duckdb"], indirect=True)
def test_python_transforms_run_on_the_workers(
    graph_project: GraphProject, dask_scheduler: str
) -> None:
    p = graph_project
    for i in range(3):
        p.write(f"ran_{i}.py", WHERE_IT_RAN.format(i=i))
    _on_dask(p, dask_scheduler)
    summary = p.run()
    assert summary.ok, [s.error for s in summary.steps]
    pids = {r["pid"] for i in range(3) for r in p.rows(f"ran_{i}")}
    assert os.getpid() not in pids


@pytest.mark.parametrize("graph_project", ["duckdb"], indirect=True)
def test_a_failing_transform_on_a_worker_names_its_line_and_skips_downstream(
    graph_project: GraphProject, dask_scheduler: str
) -> None:
    p = graph_project
    p.write(
        "broken.py",
        """
        from gristmill import transform


        @transform(inputs=["users"])
        def broken(users):
            return users.column("no_such_column")
        """,
    )
    p.write("after_broken.sql", "SELECT * FROM broken")
    _on_dask(p, dask_scheduler)
    status = p.status(summary := p.run())
    assert status["broken"] == "failed" and status["after_broken"] == "skipped"
    broken = next(s for s in summary.steps if s.name == "broken")
    assert "transforms/broken.py:6" in (broken.error or "")
