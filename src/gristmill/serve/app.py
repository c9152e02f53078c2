"""The HTTP API (Starlette): score with fresh features, push events, health.

    POST /v1/models/{name}/predict   one row of fields, or {"rows": [...]}
    POST /v1/events/{view}           one event, a list, or {"events": [...]}
    GET  /healthz                    the process is up
    GET  /readyz                     every model is loaded at its alias and the online store answers
    GET  /metrics                    Prometheus: requests, latencies, scores, decisions
    GET  /openapi.json, /docs        the operations, with each model's fields and types

Bad input is a 4xx whose message names the field; a gristmill error never becomes a 500.
Every request is answered within [serve] request_timeout (past it: 503), and the event
loop never waits: a prediction awaits its online store read (Redis's asyncio client, or a
worker thread when the store would wait) and scores on the loop; large batches, pushes and
the registry run on worker threads.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gristmill.durations import parse_duration
from gristmill.errors import (
    ArtifactTamperedError,
    ConfigError,
    ConnectionFailedError,
    GristmillError,
    InvalidEventError,
    NotFoundError,
)
from gristmill.serve.body import BodyTooLargeError, BodyTooSlowError, parse_json, read_body
from gristmill.serve.scoring import BadRequestError, Scorer, check_request_rows

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response

    from gristmill.project import Project
    from gristmill.serve.scoring import LoadedModel, Scored

logger = logging.getLogger(__name__)

T = TypeVar("T")

WORKER_THREADS = 32
"""Blocking work (store reads and writes, scoring, the registry) runs on at most this many
threads per worker, so that the event loop stays free to answer; requests beyond them wait
for a thread within their deadline."""

STORE_SHARE = 0.75
"""The online store's deadline as a share of the request's (when [online] timeout is
longer): a store that does not answer fails its call while the request still has time to
answer with the decision the model's policy declares for it."""

INLINE_ROWS = 8
"""A request of at most this many rows is scored on the event loop, its online store
read awaited (a few hundred microseconds of work a row: a hop to a thread and back would
cost more than the work); a larger batch is scored on a worker thread."""

RETRY_AFTER = {"Retry-After": "1"}

GC_GEN0_FACTOR = 10
"""A server's young generation is collected after this many times Python's default
allocations: a request allocates thousands of short-lived objects."""


class _LateError(GristmillError):
    """The work of a request did not finish within [serve] request_timeout."""


def create_app(project: Project) -> Starlette:
    import asyncio

    import anyio
    import anyio.to_thread
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from gristmill.features.api import Pusher
    from gristmill.registry.api import CANARY
    from gristmill.serve.log import PredictionLog
    from gristmill.serve.metrics import ServerMetrics
    from gristmill.serve.openapi import docs_page, openapi_document
    from gristmill.serve.releases import Releases, ShadowWorker, record

    config = project.config.serve
    deadline = parse_duration(config.request_timeout).total_seconds()
    body_seconds = parse_duration(config.body_timeout).total_seconds()
    _cap_store_deadline(project, deadline)
    scorer = Scorer(project, alias=config.alias)
    pusher = Pusher(project, scorer.definitions)
    # The pusher evaluates events on one DuckDB connection, which one thread uses at a time.
    pushing = threading.Lock()
    log = PredictionLog(project.root)
    metrics = ServerMetrics(project.root)
    releases = Releases(scorer)
    shadows = ShadowWorker(scorer, log, metrics.shadow_dropped)
    keys = [k.encode() for k in config.api_keys]
    limiter = anyio.CapacityLimiter(WORKER_THREADS)
    models = {name: _model_state(scorer, name) for name in sorted(scorer.models)}

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": _public(project, message)}, status, headers)

    def authorised(request: Request) -> bool:
        if not keys:
            return True
        given = request.headers.get("x-api-key") or ""
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            given = bearer[7:]
        # In constant time, so that a key cannot be guessed byte by byte.
        return any(hmac.compare_digest(given.encode(), key) for key in keys)

    async def body_of(request: Request) -> Any:
        return parse_json(await read_body(request, config.max_body_bytes, body_seconds))

    async def within_deadline(work: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(deadline):  # cheaper than an anyio cancel scope
                return await work
        except TimeoutError:
            raise _LateError(
                f"No answer within the request's deadline ({deadline:g} s); retry."
            ) from None

    async def offload(work: Callable[[], T]) -> T:
        """`work` on a worker thread, within the request's deadline. Past it the thread is
        left to finish (or fail at the store's own deadline) and its result is dropped."""
        return await within_deadline(
            anyio.to_thread.run_sync(work, limiter=limiter, abandon_on_cancel=True)
        )

    async def guarded(request: Request, handler: Any) -> JSONResponse:
        response = await answer(request, handler)
        route = "predict" if "name" in request.path_params else "events"
        name = request.path_params.get("name") or request.path_params.get("view", "")
        # Only names the project defines become label values: a client cannot mint series.
        if name not in scorer.models and name not in scorer.definitions.views:
            name = "(unknown)"
        metrics.requests.labels(route, name, str(response.status_code)).inc()
        if route == "events" and response.status_code == 422 and name != "(unknown)":
            metrics.refused_pushes.labels(name).inc()
        return response

    async def answer(request: Request, handler: Any) -> JSONResponse:
        if not authorised(request):
            return error(401, "A valid API key is needed (Authorization: Bearer KEY).")
        try:
            result: JSONResponse = await handler(request)
            return result
        except BodyTooLargeError as exc:
            return error(413, str(exc))
        except BodyTooSlowError as exc:
            return error(408, str(exc))
        except (BadRequestError, InvalidEventError) as exc:
            return error(422, str(exc))
        except NotFoundError as exc:
            return error(404, str(exc))
        except ConfigError as exc:
            unknown = "No model" in str(exc) or "No feature view" in str(exc)
            return error(404 if unknown else 422, str(exc))
        except _LateError as exc:
            return error(503, str(exc), RETRY_AFTER)
        except ConnectionFailedError as exc:
            logger.warning("%s %s: %s", request.method, request.url.path, exc)
            return error(503, "The online store is unavailable; retry.", RETRY_AFTER)
        except GristmillError as exc:  # the server's own trouble: its words stay in its log
            logger.error("%s %s: %s", request.method, request.url.path, exc)
            return error(503, "The server cannot answer this now; its log says why.", RETRY_AFTER)

    async def predict(request: Request) -> JSONResponse:
        async def handle(request: Request) -> JSONResponse:
            started = time.perf_counter()
            name = request.path_params["name"]
            body = await body_of(request)
            rows = check_request_rows(body)
            if len(rows) > config.max_batch_rows:
                raise BadRequestError(
                    f"rows: {len(rows):,} rows; a request holds at most"
                    f" {config.max_batch_rows:,} ([serve] max_batch_rows)."
                )
            if name not in scorer.models or scorer.current(name) is None:
                await offload(lambda: scorer.model(name))  # loaded (or not found) on a thread
            canary = releases.canary(name)
            picks = canary.picks(rows) if canary is not None else [False] * len(rows)
            deciders: list[LoadedModel] = [None] * len(rows)  # type: ignore[list-item]
            scored: list[Scored] = [None] * len(rows)  # type: ignore[list-item]
            for alias in (None, CANARY) if any(picks) else (None,):
                at = [i for i, pick in enumerate(picks) if pick == (alias is not None)]
                group = [rows[i] for i in at]
                if not group:
                    continue
                if len(group) <= INLINE_ROWS:
                    work = scorer.score_async(name, group, alias=alias)
                    loaded, got = await within_deadline(work)
                else:
                    loaded, got = await offload(
                        functools.partial(scorer.score, name, group, alias=alias)
                    )
                for i, s in zip(at, got, strict=True):
                    deciders[i], scored[i] = loaded, s
            latency = (time.perf_counter() - started) * 1000
            metrics.predicted(name, latency / 1000, scored)
            records = [
                record(name, loaded, row, s, latency)
                for loaded, row, s in zip(deciders, rows, scored, strict=True)
            ]
            log.write(records)
            results = [
                {**s.response(), "version": d.version.version, "alias": d.alias}
                for d, s in zip(deciders, scored, strict=True)
            ]
            champion = deciders[0] if not picks[0] else scorer.model(name)
            head = {"model": name, "version": champion.version.version, "alias": champion.alias}
            head["policy_version"] = champion.policy_version
            # Scored by the shadow after this answer is sent; queued, never waited for.
            later = None
            if releases.shadow(name) is not None:
                ids = [r["prediction_id"] for r in records]
                later = BackgroundTask(shadows.submit, name, rows, ids)
            if isinstance(body, dict) and "rows" in body:
                return JSONResponse({**head, "predictions": results}, background=later)
            return JSONResponse({**head, **results[0]}, background=later)

        return await guarded(request, handle)

    def push(view: str, events: list[dict[str, Any]]) -> int:
        with pushing:
            try:
                return pusher.push(view, events)
            except GristmillError:
                raise
            except Exception as exc:  # DuckDB's view of a malformed event: its words stay here
                logger.info("A push to %s was refused: %s", view, exc)
                raise BadRequestError(
                    f"The events do not fit view {view}: a field's value is not of the type"
                    " its column has in the view's source."
                ) from None

    async def push_events(request: Request) -> JSONResponse:
        async def handle(request: Request) -> JSONResponse:
            view = request.path_params["view"]
            body = await body_of(request)
            events = body.get("events") if isinstance(body, dict) and "events" in body else body
            events = [events] if isinstance(events, dict) else events
            if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
                raise BadRequestError('Send an event object, a list of them, or {"events": [...]}.')
            if len(events) > config.max_batch_rows:
                raise BadRequestError(
                    f"events: {len(events):,} events; a push holds at most"
                    f" {config.max_batch_rows:,} ([serve] max_batch_rows)."
                )
            scorer.definitions.view(view)
            entities = await offload(lambda: push(view, events))
            return JSONResponse({"view": view, "events": len(events), "entities": entities})

        return await guarded(request, handle)

    async def metrics_page(request: Request) -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(await offload(lambda: openapi_document(scorer, config.max_batch_rows)))

    async def docs(request: Request) -> HTMLResponse:
        document = await offload(lambda: openapi_document(scorer, config.max_batch_rows))
        return HTMLResponse(docs_page(document))

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    def refresh_models() -> None:
        for name in models:
            models[name] = _model_state(scorer, name)

    def ping() -> str:
        try:
            project.online.ping()
        except Exception as exc:  # whichever way the store fails, it does not answer
            logger.warning("The online store does not answer: %s", exc)
            return "unavailable"
        return "ok"

    async def readyz(request: Request) -> JSONResponse:
        """Ready: every model is loaded at its alias and the online store answers, each
        found out within the request's deadline."""
        with contextlib.suppress(_LateError):  # the states the models had last
            await offload(refresh_models)
        try:
            store = await offload(ping)
        except _LateError:
            store = "unavailable"
        ready = store == "ok" and all(state == "loaded" for state in models.values())
        body = {"status": "ready" if ready else "unavailable", "models": dict(models)}
        body["online_store"] = store
        return JSONResponse(body, 200 if ready else 503, None if ready else RETRY_AFTER)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        shadows.close()
        log.close()
        # A push past its deadline may still be running on its thread: it finishes first.
        with pushing:
            pusher.close()

    return Starlette(
        routes=[
            Route("/v1/models/{name}/predict", predict, methods=["POST"]),
            Route("/v1/events/{view}", push_events, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_page),
            Route("/openapi.json", openapi),
            Route("/docs", docs),
        ],
        lifespan=lifespan,
    )


def _cap_store_deadline(project: Project, request_seconds: float) -> None:
    """The online store's deadline no longer than STORE_SHARE of the request's (the store
    reads it when it is opened, on first use)."""
    online = project.config.online
    share = request_seconds * STORE_SHARE
    if parse_duration(online.timeout).total_seconds() > share:
        online.timeout = f"{max(1, round(share * 1000))}ms"


def _model_state(scorer: Scorer, name: str) -> str:
    """The model's state: loaded, or what keeps it from being served (the details go to
    the server's log, not to callers)."""
    try:
        scorer.model(name)
    except NotFoundError as exc:
        logger.warning("Model %s is not served: %s", name, exc)
        return "not found"
    except ArtifactTamperedError as exc:
        logger.error("Model %s is not served: %s", name, exc)
        return "tampered"
    except GristmillError as exc:
        logger.error("Model %s is not served: %s", name, exc)
        return "failed"
    return "loaded"


def _public(project: Project, message: str) -> str:
    """A message for a caller: the project's folder, which a caller has no need of, left out."""
    for root in {str(project.root.resolve()), str(project.root)}:
        message = message.replace(root, "<project>")
    return message


def create_app_from_environment() -> Starlette:
    """The app for `uvicorn --factory` workers: the project named by GRISTMILL_PROJECT."""
    import gc
    import os

    from gristmill.project import Project

    app = create_app(Project.load(Path(os.environ.get("GRISTMILL_PROJECT", "."))))
    # What the server loaded (models, definitions, libraries) lives as long as it does: out
    # of the collector's sight, a full collection scans only what requests made (it took
    # ~90 ms, the slowest request of a benchmark run), and it runs a tenth as often.
    gc.collect()
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0 * GC_GEN0_FACTOR, gen1, gen2)
    return app
