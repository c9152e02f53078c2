"""The server's OpenAPI document, written from the project: one predict operation per
model, whose request lists the model's entity keys and request fields with their types
(as the training set had them), and one events operation per feature view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gristmill.serve.scoring import LoadedModel, Scorer


def json_type(arrow_type: str) -> dict[str, Any]:
    """A JSON Schema for values of an Arrow type (as `str(pa.DataType)` writes it)."""
    if arrow_type.startswith(("int", "uint")):
        return {"type": "integer"}
    if arrow_type.startswith(("double", "float", "halffloat", "decimal")):
        return {"type": "number"}
    if arrow_type == "bool":
        return {"type": "boolean"}
    if arrow_type.startswith(("timestamp", "date")):
        return {"type": "string", "format": "date-time"}
    return {"type": "string"}


def _row_schema(loaded: LoadedModel) -> dict[str, Any]:
    types = loaded.version.metadata.get("column_types", {})
    fields = [*loaded.entity_keys, *loaded.request_fields]
    properties = {}
    for name in fields:
        # A feature may be missing; a null key is an entity without events (no merchant).
        properties[name] = {**json_type(types.get(name, "string")), "nullable": True}
    return {"type": "object", "required": fields, "properties": properties}


ERRORS = {
    "401": "No valid API key.",
    "404": "No such model or view.",
    "408": "The body took longer than [serve] body_timeout to arrive.",
    "413": "The body is too large.",
    "422": (
        "A field is missing, of the wrong type or out of range (NaN, infinite, beyond 64 bits),"
        " too many rows or events, or an event dated past the serving clock; the message"
        " names the field. Nothing of the request was scored or stored."
    ),
    "503": (
        "The online store did not answer, or the request's deadline ([serve] request_timeout)"
        " passed; retry after Retry-After seconds."
    ),
}


def _responses(ok: dict[str, Any]) -> dict[str, Any]:
    error = {"type": "object", "properties": {"error": {"type": "string"}}}
    answers: dict[str, Any] = {"200": {"description": "OK", "content": _json(ok)}}
    for status, text in ERRORS.items():
        answers[status] = {"description": text, "content": _json(error)}
    return answers


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def openapi_document(scorer: Scorer, max_rows: int) -> dict[str, Any]:
    """The document; `max_rows`: the most rows of a predict request or events of a push."""
    paths: dict[str, Any] = {}
    prediction = {
        "type": "object",
        "properties": {
            "score": {},
            "decision": {"type": "string"},
            "why": {"type": "string"},
            "reasons": {"type": "array", "items": {"type": "object"}},
            "freshness_seconds": {"type": "object"},
            "missing_features": {"type": "array", "items": {"type": "string"}},
            "stale_features": {
                "type": "object",
                "additionalProperties": {"type": "number"},
                "description": "Features older than their view's ttl: their age in seconds.",
            },
            "degraded": {
                "type": "boolean",
                "description": "Decided without a score: the online store did not answer.",
            },
        },
    }
    for name in sorted(scorer.models):
        try:
            loaded = scorer.model(name)
        except Exception:  # not trained or not promoted yet: it has no operation
            continue
        row = _row_schema(loaded)
        body = {
            "oneOf": [
                row,
                {
                    "type": "object",
                    "required": ["rows"],
                    "properties": {
                        "rows": {"type": "array", "minItems": 1, "maxItems": max_rows, "items": row}
                    },
                },
            ]
        }
        paths[f"/v1/models/{name}/predict"] = {
            "post": {
                "summary": f"Score with {name} ({loaded.alias}), its decision and reasons",
                "operationId": f"predict_{name}",
                "requestBody": {"required": True, "content": _json(body)},
                "responses": _responses(prediction),
            }
        }
    for name, view in sorted(scorer.definitions.views.items()):
        event = {
            "type": "object",
            "required": [*view.entity, view.timestamp],
            "properties": {
                **{k: {} for k in view.entity},
                view.timestamp: {"type": "string", "format": "date-time"},
            },
        }
        paths[f"/v1/events/{name}"] = {
            "post": {
                "summary": f"Push events of {name}: its features count them at once",
                "operationId": f"events_{name}",
                "requestBody": {
                    "required": True,
                    "content": _json(
                        {"oneOf": [event, {"type": "array", "maxItems": max_rows, "items": event}]}
                    ),
                },
                "responses": _responses({"type": "object"}),
            }
        }
    paths["/healthz"] = {
        "get": {"summary": "The process is up", "responses": {"200": {"description": "OK"}}}
    }
    paths["/readyz"] = {
        "get": {
            "summary": "Every model is loaded at its alias and the online store answers",
            "responses": {
                "200": {"description": "Ready"},
                "503": {"description": "A model is not loaded or the online store is unavailable"},
            },
        }
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "gristmill", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "key": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
        },
    }


def docs_page(document: dict[str, Any]) -> str:
    """A plain, self-contained page listing the operations and their request fields."""
    from html import escape

    items = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            schema = body.get("schema", {})
            row = schema.get("oneOf", [schema])[0] if schema else {}
            fields = ", ".join(
                f"{escape(k)}: {escape(str(v.get('type', 'any')))}"
                for k, v in row.get("properties", {}).items()
            )
            items.append(
                f"<li><code>{method.upper()} {escape(path)}</code> {escape(operation['summary'])}"
                f"{'<br><small>' + fields + '</small>' if fields else ''}</li>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>gristmill API</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:60em}"
        "li{margin:.6em 0}code{background:#f3f4f6;padding:1px 4px}</style></head><body>"
        "<h1>gristmill API</h1><p>The OpenAPI document is at <a href='/openapi.json'>"
        f"/openapi.json</a>.</p><ul>{''.join(items)}</ul></body></html>"
    )
