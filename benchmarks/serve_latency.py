"""Benchmark: `gristmill serve` scoring single transactions with the quickstart's LightGBM
model and a local Redis online store, beside the same booster behind `mlflow models serve`.

    .venv/bin/python benchmarks/serve_latency.py [--rows N] [--rates R ...]
        [--workers N ...] [--omp default|N ...] [--split] [--profile] [--skip-mlflow]

Each server runs with OMP_NUM_THREADS unset and set to 1 (LightGBM's OpenMP threads);
`--split` adds two single-worker gristmill servers on two ports, the generator alternating
between them (uvicorn's `--workers N` loses TCP_NODELAY, Kludex/uvicorn#3149); `--profile`
prints a cProfile of the predict route called in-process.

The quickstart project is built under benchmarks/.work/serve, its online store switched to
Redis (a prefix of its own, cleared at the end) and materialized. Requests are real
transactions of the project (user, merchant, amount, kind), read from its DuckDB file
before any server starts.

Per request, gristmill reads the user's and the merchant's events from Redis, computes
their windowed features, encodes the row, predicts, computes the contributions (reasons),
applies the policy and writes a prediction-log line. MLflow gets a head start: it has no
online features, so it is sent the complete, already encoded feature row of the same
request (computed by gristmill beforehand, untimed) and only builds a pandas DataFrame and
predicts. MLflow runs in a virtualenv of its own (benchmarks/.work/mlflow-venv, made here
when missing); the booster it serves is the registry's model.txt, saved with
`mlflow.lightgbm.save_model`.

Both contenders are measured the same way, by a load generator in this process (asyncio,
raw HTTP/1.1 on keep-alive connections; it shares the machine's cores with the server, and
its CPU use is reported): closed loop with a fixed number of connections for the highest
throughput, then open loop at a constant rate (latency counted from each request's
scheduled time, so a server that falls behind pays for its queue), again at a lower rate
when it does not keep up.

Target (issue 7): p99 under 10 ms at 500 requests/s on 2 cores; at least 3x MLflow's
throughput at equal p99.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GRISTMILL = ROOT / ".venv" / "bin" / "gristmill"
WORK = Path(__file__).resolve().parent / ".work"
PROJECT = WORK / "serve"
MLFLOW = ["mlflow", "lightgbm"]
VENV = WORK / "mlflow-venv"
MLFLOW_PYTHON = VENV / "bin" / "python"
MLFLOW_MODEL = WORK / "serve-mlflow-model"
MODEL_DIR = PROJECT / ".gristmill" / "registry" / "fraud" / "versions" / "1"
PREDICT = "/v1/models/fraud/predict"


# ---------------------------------------------------------------- the project and its data


def prepare(rows: int) -> str:
    """The quickstart project with a Redis online store, materialized; returns the prefix."""
    shutil.rmtree(PROJECT, ignore_errors=True)
    subprocess.run(
        [str(GRISTMILL), "quickstart", str(PROJECT), "--rows", str(rows)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    prefix = f"serve-bench-{uuid.uuid4().hex[:12]}"
    config = PROJECT / "gristmill.toml"
    config.write_text(
        config.read_text()
        + f'\n[online]\ntype = "redis"\nurl = "redis://127.0.0.1:6379/0"\nprefix = "{prefix}"\n'
    )
    subprocess.run(
        [str(GRISTMILL), "materialize", "-p", str(PROJECT), "--full"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return prefix


def clear_online() -> None:
    """Removes the benchmark's keys from Redis."""
    from gristmill.project import Project

    with Project.load(PROJECT) as project:
        for view in ("user_velocity", "merchant_velocity"):
            project.online.clear(view)


def sample_requests(count: int) -> list[dict[str, Any]]:
    """`count` real transactions of the project (the newest month), as predict bodies."""
    import duckdb

    path = PROJECT / ".gristmill" / "warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as db:
        found = db.execute(
            "SELECT user_id, merchant_id, CAST(amount AS DOUBLE), kind"
            " FROM analytics.clean_transactions"
            " WHERE merchant_id IS NOT NULL AND created_at > (SELECT max(created_at) - INTERVAL 30 DAY"
            "   FROM analytics.clean_transactions)"
            " ORDER BY hash(transaction_id) LIMIT ?",
            [count],
        ).fetchall()
    return [{"user_id": u, "merchant_id": m, "amount": a, "kind": k} for u, m, a, k in found]


def feature_rows(requests: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]], list[float]]:
    """MLflow's head start (untimed): each request's encoded feature row as gristmill would
    score it now (column names, rows with NaN for a missing value: MLflow's server parses
    JSON with Python's `json`, which reads the NaN literal; a null would make a one-row
    column of objects, which LightGBM refuses) and gristmill's scores."""
    from gristmill.project import Project
    from gristmill.serve.scoring import Scorer

    with Project.load(PROJECT) as project:
        scorer = Scorer(project)
        loaded = scorer.model("fraud")
        encoding = loaded.encoding
        matrix = []
        for i in range(0, len(requests), 500):
            part = requests[i : i + 500]
            found = scorer.reader.read(loaded.views, part)
            rows = loaded.features_of(loaded.check(part), found)
            for row in rows:
                row.pop("_gm_freshness")
            matrix += encoding.transform_rows(rows).tolist()
        _, scored = scorer.score("fraud", requests[:200])
    return encoding.names, matrix, [s.headline for s in scored]


# ---------------------------------------------------------------- MLflow's side


def ensure_mlflow() -> dict[str, str]:
    """MLflow's virtualenv, made and installed when missing; returns the versions."""
    stamp = VENV / ".installed"
    if not stamp.exists() or stamp.read_text() != " ".join(MLFLOW):
        print(f"installing {' '.join(MLFLOW)} into {VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        pip = [str(MLFLOW_PYTHON), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, *MLFLOW], check=True)
        stamp.write_text(" ".join(MLFLOW))
    code = (
        "import json, mlflow, lightgbm, uvicorn, fastapi, pandas; print(json.dumps({"
        "'mlflow': mlflow.__version__, 'lightgbm': lightgbm.__version__,"
        " 'uvicorn': uvicorn.__version__, 'fastapi': fastapi.__version__,"
        " 'pandas': pandas.__version__}))"
    )
    out = subprocess.run([str(MLFLOW_PYTHON), "-c", code], check=True, capture_output=True)
    versions: dict[str, str] = json.loads(out.stdout)
    return versions


def mlflow_child(model_file: str, names: str, out: str) -> None:
    """Runs in MLflow's virtualenv: saves the registry's booster as an MLflow model."""
    import lightgbm
    import mlflow.lightgbm

    booster = lightgbm.Booster(model_file=model_file)
    assert booster.num_feature() == len(names.split(","))
    mlflow.lightgbm.save_model(booster, out)


def save_mlflow_model(names: list[str]) -> None:
    shutil.rmtree(MLFLOW_MODEL, ignore_errors=True)
    model_file = MODEL_DIR / "artifacts" / "model.txt"
    child = [str(MLFLOW_PYTHON), __file__, "--mlflow-save", str(model_file)]
    subprocess.run(
        [*child, ",".join(names), str(MLFLOW_MODEL)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(cmd: list[str], port: int, ready: str, env: dict[str, str] | None = None) -> Any:
    """Starts a server in a session of its own (so that its workers stop with it) and waits
    until `ready` answers 200."""
    log = (WORK / f"server-{port}.log").open("wb")
    process = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop(process)
            raise SystemExit(
                f"{' '.join(cmd)} exited:\n{(WORK / f'server-{port}.log').read_text()}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready}", timeout=2) as r:
                if r.status == 200:
                    return process
        except OSError:
            pass
        time.sleep(0.2)
    stop(process)
    raise SystemExit(f"{' '.join(cmd)} was not ready after 120 s")


def stop(process: Any) -> None:
    """Stops the server's process group (the server we started and its workers)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def tree_cpu(process: Any) -> float:
    """CPU seconds (user + system) used so far by a process (or a list of them) and its
    descendants."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pending = [p.pid for p in process] if isinstance(process, list) else [process.pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


# ---------------------------------------------------------------- the load generator


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.waiter: asyncio.Future[int] | None = None
        self.answered = time.perf_counter()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].decode("latin-1").lower()
        length = 0
        for line in head.split("\r\n"):
            if line.startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length :]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(int(head[9:12]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(0)

    async def send(self, request: bytes) -> int:
        """The answer's status; 0 when the connection closed first."""
        if self.transport is None:
            return 0
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        status = await self.waiter
        self.answered = time.perf_counter()
        return status

    def stale(self) -> bool:
        """Closed, or idle long enough that the server may be closing it (uvicorn closes
        a keep-alive connection idle for 5 s; HTTP clients expire theirs sooner)."""
        return self.transport is None or time.perf_counter() - self.answered > IDLE_EXPIRY


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    """Seconds, from the request's scheduled time (open loop) or its sending (closed)."""
    errors: int = 0
    failures: dict[int, int] = field(default_factory=dict)
    """Errors by status (0: the connection closed before the answer)."""
    seconds: float = 0.0
    late: float = 0.0
    """Open loop: the most a request was sent after its scheduled time (generator lag)."""
    client_cpu: float = 0.0
    server_cpu: float = 0.0

    def row(self) -> dict[str, float]:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000 if ordered else 0

        done = len(self.latencies)
        return {
            "requests": done + self.errors,
            "rps": done / self.seconds if self.seconds else 0,
            "p50": pct(0.50),
            "p95": pct(0.95),
            "p99": pct(0.99),
            "max": ordered[-1] * 1000 if ordered else 0,
            "errors": self.errors,
            "late_ms": self.late * 1000,
            "client_cpu": self.client_cpu / self.seconds if self.seconds else 0,
            "server_cpu": self.server_cpu / self.seconds if self.seconds else 0,
        }


def http_requests(path: str, bodies: list[bytes]) -> list[bytes]:
    return [
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]


CONNECTIONS = itertools.count()
IDLE_EXPIRY = 4.0


async def connect(port: int | list[int]) -> Connection:
    """A connection to `port`, or to each of a list of ports in turn."""
    if isinstance(port, list):
        port = port[next(CONNECTIONS) % len(port)]
    loop = asyncio.get_running_loop()
    _, connection = await loop.create_connection(Connection, "127.0.0.1", port)
    return connection


def _finished(run: Run, cpu: float, started: float, connections: list[Connection]) -> Run:
    """`run` with its wall and client CPU seconds since (`started`, `cpu`), its
    connections closed."""
    run.seconds = time.perf_counter() - started
    run.client_cpu = time.process_time() - cpu
    for connection in connections:
        if connection.transport is not None:
            connection.transport.close()
    return run


async def open_loop(
    port: int | list[int], requests: list[bytes], rate: float, seconds: float
) -> Run:
    """Sends `rate` requests a second for `seconds`, whatever the answers' pace, each on an
    idle connection (a new one when none is idle)."""
    run = Run()
    idle: list[Connection] = [await connect(port) for _ in range(8)]
    tasks: set[asyncio.Task[None]] = set()

    async def one(request: bytes, scheduled: float) -> None:
        while idle and idle[-1].stale():
            stale = idle.pop()
            if stale.transport is not None:
                stale.transport.close()
        connection = idle.pop() if idle else await connect(port)
        run.late = max(run.late, time.perf_counter() - scheduled)
        status = await connection.send(request)
        if status == 200:
            run.latencies.append(time.perf_counter() - scheduled)
        else:
            run.errors += 1
            run.failures[status] = run.failures.get(status, 0) + 1
        if connection.transport is not None:
            idle.append(connection)

    total = int(rate * seconds)
    cpu, started = time.process_time(), time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - started) * rate) + 1)
        while sent < due:
            task = asyncio.create_task(one(requests[sent % len(requests)], started + sent / rate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.sleep(max(0.0, started + sent / rate - time.perf_counter()))
    # A server that falls behind has a queue to drain; what it has not answered 30 s after
    # the last request was sent counts as errors.
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=30)
        for task in pending:
            task.cancel()
        run.errors += len(pending)
        if pending:
            run.failures[-1] = len(pending)
    return _finished(run, cpu, started, idle)


async def closed_loop(
    port: int | list[int], requests: list[bytes], connections: int, seconds: float
) -> Run:
    """`connections` clients, each sending its next request as soon as the last is answered."""
    run = Run()
    clients = [await connect(port) for _ in range(connections)]
    cpu, started = time.process_time(), time.perf_counter()
    end = started + seconds

    async def client(connection: Connection, offset: int) -> None:
        i = offset
        while time.perf_counter() < end:
            sent = time.perf_counter()
            status = await connection.send(requests[i % len(requests)])
            if status == 200:
                run.latencies.append(time.perf_counter() - sent)
            else:
                run.errors += 1
                run.failures[status] = run.failures.get(status, 0) + 1
                if connection.transport is None:
                    connection = await connect(port)
            i += connections

    await asyncio.gather(*(client(c, i) for i, c in enumerate(clients)))
    return _finished(run, cpu, started, clients)


def with_server_cpu(process: Any, load: Coroutine[Any, Any, Run]) -> Run:
    """The run of `load`, with the CPU the server's processes used meanwhile."""
    before = tree_cpu(process)
    run = asyncio.run(load)
    run.server_cpu = tree_cpu(process) - before
    return run


def measure_server(
    process: Any, port: int | list[int], requests: list[bytes], args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """Warm-up; the closed-loop run (the highest throughput); the open-loop run at each
    rate, and, when the server cannot keep up with the highest of them, at 70% of its
    closed-loop throughput or of that rate (a rate it can sustain)."""
    results: dict[str, dict[str, float]] = {}
    asyncio.run(closed_loop(port, requests, 4, 3.0))  # warm-up
    run = with_server_cpu(
        process, closed_loop(port, requests, args.connections, args.closed_seconds)
    )
    closed = run.row()
    results[f"closed {args.connections}"] = closed
    print(f"  closed loop, {args.connections} connections: {fmt(closed)}", flush=True)
    if run.failures:
        print(f"    errors by status (0: closed): {run.failures}", flush=True)
    if args.p99_target:
        rate, row = capacity(process, port, requests, closed["rps"], args)
        key = f"capacity p99 {args.p99_target:g}"
        if row:
            results[key] = row
        print(f"  highest rate with p99 under {args.p99_target:g} ms: {rate:g}/s", flush=True)
    rates = list(args.rates)
    for rate in rates:
        time.sleep(1)
        run = with_server_cpu(process, open_loop(port, requests, rate, args.seconds))
        results[f"open {rate:g}/s"] = run.row()
        print(f"  open loop {rate:g}/s: {fmt(results[f'open {rate:g}/s'])}", flush=True)
        if run.failures:
            print(f"    errors by status (0: closed, -1: unanswered): {run.failures}", flush=True)
        kept_up = run.row()["rps"] > 0.97 * rate and run.row()["p99"] < 1000
        if rate == max(args.rates) and not kept_up:
            rates.append(round(min(closed["rps"], rate) * 0.7, -1))
    return results


def capacity(
    process: Any,
    port: int | list[int],
    requests: list[bytes],
    closed_rps: float,
    args: argparse.Namespace,
) -> tuple[float, dict[str, float] | None]:
    """The highest constant rate (of those probed) that the server answers in full with a
    p99 under args.p99_target: probes for args.probe_seconds each, from half its
    closed-loop throughput, up by 10% steps while it holds (down by 20% while it does not
    hold at the start)."""
    rate = max(10.0, round(closed_rps * 0.5, -1))
    best: tuple[float, dict[str, float] | None] = (0.0, None)
    falling = True
    for _ in range(20):
        time.sleep(1)
        run = with_server_cpu(process, open_loop(port, requests, rate, args.probe_seconds))
        row = run.row()
        held = not run.errors and row["rps"] > 0.97 * rate and row["p99"] <= args.p99_target
        print(f"    probe {rate:g}/s: {'holds' if held else 'does not hold'}: {fmt(row)}")
        if held:
            best, falling = (rate, row), False
            rate = max(rate + 10, round(rate * 1.1, -1))
        elif falling and rate > 10:
            rate = max(10.0, min(rate - 10, round(rate * 0.8, -1)))
        else:
            break
    return best


def fmt(row: dict[str, float]) -> str:
    return (
        f"{row['rps']:.0f} req/s, p50 {row['p50']:.2f} ms, p95 {row['p95']:.2f} ms,"
        f" p99 {row['p99']:.2f} ms, max {row['max']:.1f} ms, {row['errors']:.0f} errors,"
        f" generator late by up to {row['late_ms']:.1f} ms, CPU (cores): server"
        f" {row['server_cpu']:.2f}, generator {row['client_cpu']:.2f}"
    )


# ---------------------------------------------------------------- a request's profile


def profile_one(requests: list[dict[str, Any]], count: int = 500) -> str:
    """cProfile of `count` predictions in-process: the app called as ASGI in this thread's
    event loop (no HTTP server, no client), top functions by total and cumulative time."""
    import cProfile
    import io
    import pstats

    from gristmill.project import Project
    from gristmill.serve.app import create_app

    async def call(app: Any, body: bytes) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": PREDICT,
            "raw_path": PREDICT.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                assert message["status"] == 200, message

        await app(scope, receive, send)

    async def many(app: Any, bodies: list[bytes]) -> float:
        started = time.perf_counter()
        for body in bodies:
            await call(app, body)
        return (time.perf_counter() - started) / len(bodies) * 1000

    bodies = [json.dumps(r).encode() for r in requests[:count]]
    with Project.load(PROJECT) as project:
        app = create_app(project)
        asyncio.run(many(app, bodies[:50]))
        plain = asyncio.run(many(app, bodies))
        profiler = cProfile.Profile()
        profiler.enable()
        asyncio.run(many(app, bodies))
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    return f"one request in-process, unprofiled: {plain:.2f} ms (wall)\n{out.getvalue()}"


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rates", type=float, nargs="+", default=[500.0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--closed-seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--omp",
        nargs="+",
        default=["default", "1"],
        help="OMP_NUM_THREADS of the servers (LightGBM's threads); 'default' leaves it unset.",
    )
    parser.add_argument(
        "--p99-target",
        type=float,
        default=10.0,
        help="Also find each server's highest rate with p99 under this many ms (0: skip).",
    )
    parser.add_argument("--probe-seconds", type=float, default=10.0)
    parser.add_argument("--profile", action="store_true", help="Profile requests in-process.")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument(
        "--split",
        action="store_true",
        help="Also: two single-worker gristmill servers, the generator alternating between"
        " them (what --workers 2 would do without uvicorn's lost TCP_NODELAY).",
    )
    args = parser.parse_args()

    versions = {} if args.skip_mlflow else ensure_mlflow()
    import starlette
    import uvicorn

    versions |= {"gristmill uvicorn": uvicorn.__version__, "starlette": starlette.__version__}
    prefix = prepare(args.rows)
    print(f"project: {PROJECT} ({args.rows:,} rows), Redis prefix {prefix}", flush=True)
    table: list[tuple[str, str, dict[str, float]]] = []
    try:
        requests = sample_requests(5_000)
        names, cells, expected = feature_rows(requests)
        print(
            f"{len(requests)} distinct requests; feature cells missing (NaN):"
            f" {sum(v != v for r in cells for v in r)}",
            flush=True,
        )
        bodies = [json.dumps(r).encode() for r in requests]
        gristmill_requests = http_requests(PREDICT, bodies)
        for omp, workers in ((o, w) for o in args.omp for w in args.workers):
            port = free_port()
            label = f"{omp_label(omp)}gristmill serve --workers {workers}"
            print(label, flush=True)
            cmd = [str(GRISTMILL), "serve", "--port", str(port), "--workers", str(workers)]
            process = start([*cmd, "-p", str(PROJECT)], port, "/readyz", server_env(omp))
            try:
                for run, row in measure_server(process, port, gristmill_requests, args).items():
                    table.append((label, run, row))
            finally:
                stop(process)
        for omp in args.omp if args.split else []:
            ports = [free_port(), free_port()]
            label = f"{omp_label(omp)}2 x gristmill serve --workers 1, one port each"
            print(label, flush=True)
            processes = []
            try:
                for port in ports:
                    cmd = [str(GRISTMILL), "serve", "--port", str(port), "-p", str(PROJECT)]
                    processes.append(start(cmd, port, "/readyz", server_env(omp)))
                for run, row in measure_server(processes, ports, gristmill_requests, args).items():
                    table.append((label, run, row))
            finally:
                for process in processes:
                    stop(process)
        if not args.skip_mlflow:
            save_mlflow_model(names)
            mlflow_bodies = [
                json.dumps({"dataframe_split": {"columns": names, "data": [row]}}).encode()
                for row in cells
            ]
            check_mlflow(names, cells, expected, args)
            mlflow_requests = http_requests("/invocations", mlflow_bodies)
            mlflow = str(VENV / "bin" / "mlflow")
            mlflow_workers = (None, *(w for w in args.workers if w != 1))
            for omp, workers in ((o, w) for o in args.omp for w in mlflow_workers):
                port = free_port()
                cmd = [mlflow, "models", "serve", "-m", str(MLFLOW_MODEL), "--env-manager"]
                cmd += ["local", "-h", "127.0.0.1", "-p", str(port)]
                if workers:
                    cmd += ["--workers", str(workers)]
                label = f"mlflow models serve{f' --workers {workers}' if workers else ''}"
                label = omp_label(omp) + label
                print(label, flush=True)
                process = start(cmd, port, "/ping", server_env(omp))
                try:
                    for run, row in measure_server(process, port, mlflow_requests, args).items():
                        table.append((label, run, row))
                finally:
                    stop(process)
        if args.profile:
            print(profile_one(requests))
    finally:
        clear_online()
    print()
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print()
    print(markdown(table))


def check_mlflow(
    names: list[str], cells: list[list[Any]], expected: list[float], args: argparse.Namespace
) -> None:
    """One batch through MLflow's server: the same scores as gristmill's, or stop."""
    port = free_port()
    mlflow = str(VENV / "bin" / "mlflow")
    cmd = [mlflow, "models", "serve", "-m", str(MLFLOW_MODEL), "--env-manager", "local"]
    process = start(
        [*cmd, "-h", "127.0.0.1", "-p", str(port)], port, "/ping", server_env("default")
    )
    try:
        body = json.dumps({"dataframe_split": {"columns": names, "data": cells[: len(expected)]}})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            body.encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            got = json.loads(r.read())["predictions"]
        missing = next(row for row in cells if any(v != v for v in row))
        one = json.dumps({"dataframe_split": {"columns": names, "data": [missing]}})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            one.encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            assert r.status == 200, "MLflow refuses a single row with a missing value"
    finally:
        stop(process)
    worst = max(abs(a - b) for a, b in zip(got, expected, strict=True))
    print(f"MLflow's scores vs gristmill's on {len(expected)} rows: largest gap {worst:.2e}")
    if worst > 1e-9:
        raise SystemExit("MLflow and gristmill do not score alike: not the same model or rows")


def server_env(omp: str) -> dict[str, str]:
    """The servers' environment: MLflow's virtualenv first on PATH (`mlflow models serve`
    runs `uvicorn` from PATH), OMP_NUM_THREADS when given."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PATH": f"{VENV / 'bin'}:{os.environ['PATH']}"}
    env.pop("OMP_NUM_THREADS", None)
    if omp != "default":
        env["OMP_NUM_THREADS"] = omp
    return env


def omp_label(omp: str) -> str:
    return "" if omp == "default" else f"OMP_NUM_THREADS={omp} "


def markdown(table: list[tuple[str, str, dict[str, float]]]) -> str:
    lines = [
        "| server | load | req/s | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) | errors"
        " | server CPU (cores) | generator CPU (cores) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, run, row in table:
        load = run.replace("open", "open loop").replace("closed", "closed loop,")
        if run.startswith("capacity"):
            load = f"highest rate with p99 ≤ {run.split()[-1]} ms (open loop)"
        if run.startswith("closed"):
            load += " connections"
        lines.append(
            f"| {label} | {load} | {row['rps']:.0f} | {row['p50']:.2f} | {row['p95']:.2f}"
            f" | {row['p99']:.2f} | {row['max']:.1f} | {row['errors']:.0f}"
            f" | {row['server_cpu']:.2f} | {row['client_cpu']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--mlflow-save":
        mlflow_child(*sys.argv[2:])
    else:
        main()
