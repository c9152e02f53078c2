"""`gristmill score` on Dask: partitions scored on workers give the table the local loop
gives (same rows, bit-equal scores, decisions, columns and types), around partition
boundaries too; a worker killed mid-job is survived; a failing partition or a tampered
model copy publishes nothing."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gristmill.errors import ArtifactTamperedError
from gristmill.project import Project
from gristmill.serve.batch import score_table

if TYPE_CHECKING:
    from tests.conftest import ObjectStoreStaging

pytest.importorskip("distributed", reason="the dask extra is not installed")

STATES = 'rules=[Rule.stale("tx_count_7d", "review"), Rule.missing("last_amount", "hold"),'


def on_dask(root: Path, scheduler: str, partitions: int, staging: str | None = None) -> None:
    """Point the project at the shared test cluster, local by default (--engine dask
    switches), as a user's gristmill.toml would."""
    with (root / "gristmill.toml").open("a") as toml:
        toml.write(
            f'\n[execution]\nengine = "local"\nscheduler = "{scheduler}"\n'
            f"partitions = {partitions}\n"
        )
        if staging:
            toml.write(f'staging = "{staging}"\n')
    spec = root / "models" / "fraud.py"  # rules that need each row's missing and stale
    spec.write_text(spec.read_text().replace("rules=[", STATES, 1))


def scored(p: Project, table: str, engine: str, batch_rows: int = 100_000) -> dict[str, Any]:
    out = f"{table}_{engine}"
    result = score_table(p.use_engine(engine), "fraud", table, out, batch_rows=batch_rows)
    warehouse = p.warehouse
    columns = warehouse.fetchall(
        "SELECT column_name, data_type FROM information_schema.columns"
        f" WHERE table_schema = 'analytics' AND table_name = '{out}' ORDER BY ordinal_position"
    )
    rows = warehouse.query_arrow(f"SELECT * FROM analytics.{out} ORDER BY transaction_id")
    return {"rows": result.rows, "columns": columns, "table": rows}


def same(local: dict[str, Any], dask: dict[str, Any]) -> None:
    assert dask["rows"] == local["rows"]
    assert dask["columns"] == local["columns"]
    assert dask["table"].schema == local["table"].schema
    # Table.equals compares every value exactly: scores bit for bit.
    assert dask["table"].equals(local["table"])


def test_partitions_scored_on_workers_equal_the_local_loop(
    project: Path, dask_scheduler: str
) -> None:
    on_dask(project, dask_scheduler, partitions=3)
    with Project.load(project) as p:
        local = scored(p, "clean_transactions", "local", batch_rows=700)
        dask = scored(p, "clean_transactions", "dask", batch_rows=700)
        assert {"score", "decision", "model_version"} <= set(dask["table"].column_names)
        assert len(set(dask["table"].column("decision").to_pylist())) > 1
        same(local, dask)
        # No staging left behind once the job is done.
        assert not any((project / ".gristmill" / "staging").iterdir())


def test_staging_on_an_object_store(project: Path, s3_staging: ObjectStoreStaging) -> None:
    """Rows, the model's copy and the scored partitions handed over through S3."""
    on_dask(project, s3_staging.scheduler, partitions=3, staging=s3_staging.url)
    with Project.load(project) as p:
        local = scored(p, "clean_transactions", "local", batch_rows=700)
        dask = scored(p, "clean_transactions", "dask", batch_rows=700)
    same(local, dask)
    assert not (project / ".gristmill" / "staging").exists(), "nothing staged on the local disk"
    assert s3_staging.objects() == [], "the job's objects are removed"


@pytest.mark.parametrize("rows", [29, 30, 31])
def test_rows_around_partition_boundaries(project: Path, dask_scheduler: str, rows: int) -> None:
    """3 partitions of 10 rows for 30 rows; 29 and 31 leave a short last one, and chunks
    of 4 rows cut each partition unevenly too."""
    on_dask(project, dask_scheduler, partitions=3)
    with Project.load(project) as p:
        p.warehouse.execute(
            f"CREATE TABLE analytics.few AS SELECT * FROM analytics.clean_transactions"
            f" ORDER BY transaction_id LIMIT {rows}"
        )
        local = scored(p, "few", "local", batch_rows=4)
        dask = scored(p, "few", "dask", batch_rows=4)
    assert dask["rows"] == rows
    same(local, dask)


def test_a_worker_killed_mid_scoring_is_survived(project: Path) -> None:
    """A worker SIGKILLed while it scores a partition: Dask reruns the partition
    elsewhere and the table is the local one."""
    from distributed import Client

    from gristmill.execution.dask import local_cluster

    with (
        local_cluster(2, 1, "2GB") as cluster,
        Client(cluster) as client,
    ):
        on_dask(project, cluster.scheduler_address, partitions=4)
        with Project.load(project) as p:
            # Enough rows that each partition takes a while to score, in small chunks.
            p.warehouse.execute(
                "CREATE TABLE analytics.many AS SELECT t.* REPLACE (t.transaction_id * 100 + k"
                " AS transaction_id) FROM analytics.clean_transactions t, range(12) r(k)"
            )
            local = scored(p, "many", "local", batch_rows=500)
            pids = client.run(os.getpid)
            killed: list[str] = []

            def kill_a_scoring_worker() -> None:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not killed:
                    for address, tasks in client.processing().items():
                        if any("scoring" in str(t) for t in tasks):
                            os.kill(pids[address], signal.SIGKILL)
                            killed.append(address)
                            return
                    time.sleep(0.005)

            killer = threading.Thread(target=kill_a_scoring_worker)
            killer.start()
            dask = scored(p, "many", "dask", batch_rows=500)
            killer.join()
    assert killed, "no worker was seen scoring"
    same(local, dask)


def test_a_failing_partition_publishes_nothing(project: Path, dask_scheduler: str) -> None:
    """A partition that fails on a worker (an amount that is no number, in its last row)
    fails the job naming it, and the table it would have replaced stays as it was."""
    from gristmill.errors import ExecutionError

    on_dask(project, dask_scheduler, partitions=2)
    with Project.load(project) as p:
        p.warehouse.execute(
            "CREATE TABLE analytics.broken AS SELECT * REPLACE (CASE WHEN n = 50 THEN 'lots'"
            " ELSE amount::VARCHAR END AS amount) FROM (SELECT *, row_number() OVER"
            " (ORDER BY transaction_id) AS n FROM analytics.clean_transactions"
            " ORDER BY transaction_id LIMIT 50)"
        )
        p.warehouse.execute("CREATE TABLE analytics.broken_dask AS SELECT 1 AS earlier")
        with pytest.raises(ExecutionError, match=r"partition 1 \(rows 25 to 49\) failed"):
            scored(p, "broken", "dask")
        assert p.warehouse.fetchall("SELECT * FROM analytics.broken_dask") == [(1,)]
        assert "_gm_build_broken_dask" not in p.warehouse.tables("analytics")


def test_a_worker_refuses_a_tampered_model_copy(project: Path, tmp_path: Path) -> None:
    """The copy of the artifacts in staging is checked against the registry's checksums
    on the worker, as the registry checks its own files."""
    from gristmill.execution.staging import StagingArea
    from gristmill.serve import partitioned

    with Project.load(project) as p:
        version = p.registry.get("fraud", "champion")
        area = StagingArea.create(tmp_path.as_uri(), "scoring")
        partitioned._stage_model(p.registry, version, area)
        [name] = version.checksums
        with area.open(f"model/{name}", "ab") as file:
            file.write(b"\n")
        with pytest.raises(ArtifactTamperedError, match=r"was changed after the registry"):
            partitioned._model(area, version)
