"""Benchmark: the training set of `training_set.py` (10 windowed features over 3 windows)
built by `gristmill dataset build` with the local engine and with the Dask engine (a
LocalCluster of worker processes started by the command), on the same data in the same
run; the two tables are compared.

    .venv/bin/python benchmarks/training_set_dask.py [--events N] [--spine N]
        [--memory-limit 3GB] [--partitions N] [--skip-local] [--running-cluster]

Targets (issue 18): with 10M events / 1M spine rows, Dask (2 workers on 2 cores) within
1.3x of local; with 50M events and memory_limit = "3GB" per worker, the build completes
with every worker's peak memory under the limit (local is run with its DuckDB limited to
the same size: it spills or fails).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import psutil
from training_set import WORK, prepare

from gristmill.memory import parse_size


def write_config(memory_limit: str, partitions: int | None, scheduler: str = "local") -> None:
    toml = 'name = "training-bench"\n'
    toml += f'\n[warehouse]\nmemory_limit = "{memory_limit}"\n'
    toml += f'\n[execution]\nworkers = 2\nthreads_per_worker = 1\nmemory_limit = "{memory_limit}"\n'
    toml += f'scheduler = "{scheduler}"\n'
    if partitions:
        toml += f"partitions = {partitions}\n"
    (WORK / "gristmill.toml").write_text(toml)


class Sampler:
    """Peak RSS of a process and of each of its descendants (Dask's nannies and workers),
    sampled every 50 ms: wait4's maxrss does not see grandchildren."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peaks: dict[int, tuple[str, int]] = {}
        self.spilled = 0
        """The peak size of DuckDB's spill files: the warehouse's (local) and the workers'."""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for process in processes:
                try:
                    rss = process.memory_info().rss
                    name = " ".join(process.cmdline())
                except psutil.Error:
                    continue
                if rss > self.peaks.get(process.pid, ("", 0))[1]:
                    self.peaks[process.pid] = (name, rss)
            self.spilled = max(self.spilled, _spill_size())
            time.sleep(0.05)

    def finish(self) -> dict[int, tuple[str, int]]:
        self.stop.set()
        self.thread.join()
        return self.peaks


def _spill_size() -> int:
    total = 0
    for folder in (WORK / ".gristmill" / "warehouse.duckdb.tmp", WORK / ".gristmill" / "dask"):
        try:  # DuckDB creates and removes these folders as it goes
            for path in folder.rglob("*") if folder.exists() else []:
                if ".tmp" in str(path) or "duckdb-spill" in str(path):
                    total += path.stat().st_size if path.is_file() else 0
        except OSError:
            continue
    return total


def build(engine: str) -> tuple[float, float, Sampler, dict[str, object]]:
    """Wall seconds, the gristmill process's peak RSS (MB), every descendant's peak RSS,
    and the dataset step of the run's JSON."""
    cmd = [
        str(Path(sys.executable).parent / "gristmill"),
        "dataset",
        "build",
        "training",
        "--full-refresh",
        "--json",
        "--engine",
        engine,
        "-p",
        str(WORK),
    ]
    out = WORK / f"{engine}.json"
    started = time.perf_counter()
    with out.open("wb") as handle:
        process = subprocess.Popen(cmd, stdout=handle)
        sampler = Sampler(process.pid)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    sampler.finish()
    text = out.read_text()
    try:
        step = next(s for s in json.loads(text)["steps"] if s["name"] == "training")
    except (ValueError, StopIteration):
        step = {"status": "failed", "error": text[-2000:] or f"exit status {status}"}
    return seconds, usage.ru_maxrss / 1024, sampler, step


def compare() -> str:
    """The dask table against the local one: rows that differ in any column but doubles
    (means: compared to 1e-9 relative), in either direction."""
    with duckdb.connect(str(WORK / ".gristmill" / "warehouse.duckdb")) as db:
        columns = db.execute("DESCRIBE analytics.training").fetchall()
        exact = ", ".join(f'"{c[0]}"' for c in columns if c[1] != "DOUBLE")
        doubles = [c[0] for c in columns if c[1] == "DOUBLE"]
        a, b = "analytics.training_local", "analytics.training"
        differ = db.execute(
            f"SELECT (SELECT count(*) FROM (SELECT {exact} FROM {a} EXCEPT ALL SELECT {exact} FROM {b})),"
            f" (SELECT count(*) FROM (SELECT {exact} FROM {b} EXCEPT ALL SELECT {exact} FROM {a}))"
        ).fetchone()
        numbered = "SELECT row_number() OVER () AS n, * FROM {}"
        far = " OR ".join(
            f'abs(l."{d}" - r."{d}") > 1e-9 * abs(l."{d}") OR (l."{d}" IS NULL) <> (r."{d}" IS NULL)'
            for d in doubles
        )
        off = db.execute(
            f"SELECT count(*) FROM ({numbered.format(a)}) AS l JOIN ({numbered.format(b)}) AS r"
            f" USING (n) WHERE {far or 'FALSE'}"
        ).fetchone()
        same_types = db.execute(
            "SELECT count(*) FROM (SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'training_local' EXCEPT SELECT column_name, data_type"
            " FROM information_schema.columns WHERE table_name = 'training')"
        ).fetchone()
    assert differ and off and same_types
    return (
        f"rows differing (exact columns): {differ[0]} / {differ[1]};"
        f" doubles off by >1e-9: {off[0]}; columns of other type: {same_types[0]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--spine", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument(
        "--running-cluster",
        action="store_true",
        help="also build on a LocalCluster started before the command (its start not timed)",
    )
    args = parser.parse_args()
    print(f"creating {args.events:,} events and {args.spine:,} spine rows ...", flush=True)
    prepare(args.events, args.spine, args.users)
    write_config(args.memory_limit, args.partitions)
    limit = parse_size(args.memory_limit) / 2**20
    engines = ["dask"] if args.skip_local else ["local", "dask"]
    if args.running_cluster:
        engines.append("dask, running cluster")
    for engine in engines:
        if engine == "dask, running cluster":
            from gristmill.execution.dask import local_cluster

            cluster = local_cluster(2, 1, args.memory_limit)
            write_config(args.memory_limit, args.partitions, cluster.scheduler_address)
            with cluster:
                seconds, peak, sampler, step = build("dask")
            write_config(args.memory_limit, args.partitions)
        else:
            seconds, peak, sampler, step = build(engine)
        workers = [
            rss / 2**20
            for name, rss in sampler.peaks.values()
            if "multiprocessing" in name and "spawn_main" in name
        ]
        print(
            f"| {engine} | {args.events:,} events, {args.spine:,} spine rows |"
            f" {seconds:.1f} s (step {step.get('seconds', '-')} s) | {step['status']} |"
            f" driver {peak:.0f} MB | workers' peaks"
            f" {', '.join(f'{w:.0f}' for w in sorted(workers)) or '-'} MB"
            f" (limit {limit:.0f} MB) | spilled {sampler.spilled / 2**20:.0f} MB |",
            flush=True,
        )
        if step["status"] != "ok":
            print(f"  {engine} failed: {step.get('error')}", flush=True)
        if engine == "local" and step["status"] == "ok":
            with duckdb.connect(str(WORK / ".gristmill" / "warehouse.duckdb")) as db:
                db.execute("DROP TABLE IF EXISTS analytics.training_local")
                db.execute("CREATE TABLE analytics.training_local AS FROM analytics.training")
    if "local" in engines:
        print(compare(), flush=True)


if __name__ == "__main__":
    main()
