"""The HTTP API (Starlette): score with fresh features, push events, health.

    POST /v1/models/{name}/predict   one row of fields, or {"rows": [...]}
    POST /v1/events/{view}           one event, a list, or {"events": [...]}
    GET  /healthz                    the process is up
    GET  /readyz                     every model loads at its alias
    GET  /metrics                    Prometheus: requests, latencies, scores, decisions
    GET  /openapi.json, /docs        the operations, with each model's fields and types

Bad input is a 4xx whose message names the field; a gristmill error never becomes a 500.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError, GristmillError, NotFoundError
from gristmill.serve.scoring import BadRequestError, Scorer, check_request_rows

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response

    from gristmill.project import Project


def create_app(project: Project) -> Starlette:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from gristmill.features.api import Pusher
    from gristmill.serve.log import PredictionLog
    from gristmill.serve.metrics import ServerMetrics
    from gristmill.serve.openapi import docs_page, openapi_document

    config = project.config.serve
    scorer = Scorer(project, alias=config.alias)
    pusher = Pusher(project, scorer.definitions)
    log = PredictionLog(project.root)
    metrics = ServerMetrics()
    keys = [k.encode() for k in config.api_keys]

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

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
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > config.max_body_bytes:
            raise _TooLarge()
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > config.max_body_bytes:
                raise _TooLarge()
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise BadRequestError(f"The body is not JSON: {exc}") from None

    async def guarded(request: Request, handler: Any) -> JSONResponse:
        response = await answer(request, handler)
        route = "predict" if "name" in request.path_params else "events"
        name = request.path_params.get("name") or request.path_params.get("view", "")
        # Only names the project defines become label values: a client cannot mint series.
        if name not in scorer.models and name not in scorer.definitions.views:
            name = "(unknown)"
        metrics.requests.labels(route, name, str(response.status_code)).inc()
        return response

    async def answer(request: Request, handler: Any) -> JSONResponse:
        if not authorised(request):
            return error(401, "A valid API key is needed (Authorization: Bearer KEY).")
        try:
            result: JSONResponse = await handler(request)
            return result
        except _TooLarge:
            return error(413, f"The body is larger than {config.max_body_bytes:,} bytes.")
        except BadRequestError as exc:
            return error(422, str(exc))
        except NotFoundError as exc:
            return error(404, str(exc))
        except ConfigError as exc:
            unknown = "No model" in str(exc) or "No feature view" in str(exc)
            return error(404 if unknown else 422, str(exc))
        except GristmillError as exc:
            return error(503, str(exc))

    async def predict(request: Request) -> JSONResponse:
        async def handle(request: Request) -> JSONResponse:
            started = time.perf_counter()
            name = request.path_params["name"]
            body = await body_of(request)
            rows = check_request_rows(body)
            loaded, scored = scorer.score(name, rows)
            latency = (time.perf_counter() - started) * 1000
            metrics.predicted(name, latency / 1000, scored)
            version = loaded.version.version
            policy = loaded.policy.version
            log.write(
                [
                    {
                        "model": name,
                        "version": version,
                        "alias": loaded.alias,
                        "policy_version": policy,
                        "request": row,
                        "features": s.features,
                        "score": s.headline,
                        "scores": s.score if isinstance(s.score, list) else None,
                        "decision": s.decision,
                        "latency_ms": round(latency, 3),
                    }
                    for row, s in zip(rows, scored, strict=True)
                ]
            )
            results = [s.response() for s in scored]
            head = {"model": name, "version": version, "alias": loaded.alias}
            head["policy_version"] = policy
            if isinstance(body, dict) and "rows" in body:
                return JSONResponse({**head, "predictions": results})
            return JSONResponse({**head, **results[0]})

        return await guarded(request, handle)

    async def push_events(request: Request) -> JSONResponse:
        async def handle(request: Request) -> JSONResponse:
            view = request.path_params["view"]
            body = await body_of(request)
            events = body.get("events") if isinstance(body, dict) and "events" in body else body
            events = [events] if isinstance(events, dict) else events
            if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
                raise BadRequestError('Send an event object, a list of them, or {"events": [...]}.')
            scorer.definitions.view(view)
            try:
                entities = pusher.push(view, events)
            except GristmillError:
                raise
            except Exception as exc:  # DuckDB's view of a malformed event
                raise BadRequestError(f"The events do not fit view {view}: {exc}") from None
            return JSONResponse({"view": view, "events": len(events), "entities": entities})

        return await guarded(request, handle)

    async def metrics_page(request: Request) -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(openapi_document(scorer))

    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(docs_page(openapi_document(scorer)))

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        problems = {}
        for name in scorer.models:
            try:
                scorer.model(name)
            except GristmillError as exc:
                problems[name] = str(exc)
        if problems:
            return JSONResponse({"status": "not ready", "models": problems}, status_code=503)
        return JSONResponse({"status": "ready", "models": sorted(scorer.models)})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        log.close()
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


class _TooLarge(Exception):
    pass


def create_app_from_environment() -> Starlette:
    """The app for `uvicorn --factory` workers: the project named by GRISTMILL_PROJECT."""
    import os

    from gristmill.project import Project

    return create_app(Project.load(Path(os.environ.get("GRISTMILL_PROJECT", "."))))
