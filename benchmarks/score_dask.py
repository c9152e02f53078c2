"""Benchmark (issue 18): `gristmill score` of 10M rows and LightGBM training, local against
Dask (a LocalCluster of 2 worker processes, 1 thread each), in the same run.

    .venv/bin/python benchmarks/score_dask.py [--rows N] [--train-rows N] [--runs N]

The project: a model (LightGBM, 200 rounds, 63 leaves, on 30 features: the applications
of benchmarks/train_overhead.py) trained locally on `--train-rows` rows, then scoring a
table of `--rows` other applications into a table (`score_table`, what `gristmill score`
runs) with `--engine local` and `--engine dask`, alternating. The scored tables must be
equal, row for row (EXCEPT ALL both ways, on every column). Then the model is trained
with each engine on the same rows (`train_model`): seconds, the fit's own seconds, AUC.

The LocalCluster is started once, before the runs, and reached by its address, as a
deployed scheduler is; its start and its workers' first task (imports, the model) are
given apart.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

from train_overhead import applications_sql

WORK = Path(__file__).parent / ".work" / "score_dask"
MODEL = """
from gristmill.train import Model, time_split

risk = Model(
    name="risk", training_set="applications", target="bad", time_column="applied_at",
    estimator="lightgbm", params={"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 63},
    split=time_split(test=0.2), exclude=["id"],
)
"""
WORKERS = 2
MEMORY_LIMIT = "5GB"


def prepare(rows: int, train_rows: int, scheduler: str) -> None:
    import duckdb

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "models").mkdir(parents=True)
    (WORK / ".gristmill").mkdir()
    (WORK / "models" / "risk.py").write_text(MODEL)
    # The cluster outlives the commands (as a deployed one does): switching engines in
    # this process closes the client, not the workers.
    (WORK / "gristmill.toml").write_text(
        f'name = "score-bench"\n\n[execution]\nscheduler = "{scheduler}"\n'
    )
    with duckdb.connect(str(WORK / ".gristmill" / "warehouse.duckdb")) as db:
        db.execute("CREATE SCHEMA analytics")
        db.execute(f"CREATE TABLE analytics.applications AS {applications_sql(train_rows)}")
        db.execute(
            "CREATE TABLE analytics.incoming AS SELECT * EXCLUDE (bad)"
            f" FROM ({applications_sql(rows, offset=train_rows)})"
        )


def differing(project: object, left: str, right: str) -> int:
    warehouse = project.warehouse  # type: ignore[attr-defined]
    [(count,)] = warehouse.fetchall(
        f"SELECT (SELECT count(*) FROM (FROM analytics.{left} EXCEPT ALL FROM analytics.{right}))"
        f" + (SELECT count(*) FROM (FROM analytics.{right} EXCEPT ALL FROM analytics.{left}))"
    )
    return int(count)


def main() -> None:
    from gristmill.execution.dask import local_cluster
    from gristmill.project import Project
    from gristmill.serve.batch import score_table
    from gristmill.train.trainer import train_model

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--train-rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    # The Dask runs' phases: staging the rows, scoring them on the workers.
    logging.basicConfig(format="    %(message)s")
    logging.getLogger("gristmill.serve.partitioned").setLevel(logging.INFO)
    started = time.perf_counter()
    cluster = local_cluster(WORKERS, 1, MEMORY_LIMIT)
    print(f"LocalCluster started in {time.perf_counter() - started:.2f} s", flush=True)
    print(f"creating {args.train_rows:,} + {args.rows:,} rows x 30 features ...", flush=True)
    prepare(args.rows, args.train_rows, cluster.scheduler_address)
    with cluster, Project.load(WORK) as project:
        trained = train_model(project.use_engine("local"), "risk")
        print(f"model trained locally: AUC {trained.metrics['roc_auc']:.4f}", flush=True)
        # The workers' first task imports gristmill, pyarrow and LightGBM and loads the
        # model: paid once per worker process, given apart.
        project.warehouse.execute(
            "CREATE TABLE analytics.few AS FROM analytics.incoming LIMIT 1000"
        )
        for engine in ("dask", "local"):
            cold = score_table(project.use_engine(engine), "risk", "few", f"few_{engine}")
            print(f"1,000 rows, {engine}, first: {cold.seconds:.2f} s", flush=True)

        print("\n| run | score local | score Dask | Dask / local | rows differing |")
        print("|---|---:|---:|---:|---:|")
        for run in range(args.runs):
            seconds = {}
            for engine in ("local", "dask"):
                result = score_table(project.use_engine(engine), "risk", "incoming", engine)
                seconds[engine] = result.seconds
            print(
                f"| {run + 1} | {seconds['local']:.2f} s | {seconds['dask']:.2f} s |"
                f" {seconds['dask'] / seconds['local']:.2f}x |"
                f" {differing(project, 'local', 'dask')} |",
                flush=True,
            )

        print(
            "\n| run | engine | train (wall) | its fits | AUC |\n|---|---|---:|---:|---:|",
            flush=True,
        )
        for run in range(args.runs):
            for engine in ("local", "dask"):
                result = train_model(project.use_engine(engine), "risk")
                print(
                    f"| {run + 1} | {engine} | {result.seconds:.2f} s |"
                    f" {result.fit_seconds:.2f} s | {result.metrics['roc_auc']:.4f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
