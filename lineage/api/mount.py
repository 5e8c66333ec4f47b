"""Put the read APIs on the app: access first, then the routes, then the OpenAPI document.

- Access is the server's `Guard` (lineage.guard): with a token, every
  request but `GET /health` is refused with 401 before any routing, so an
  unknown route without the token is a 401, never a 404 that would tell a
  caller which routes exist.
- Paths under `/api/` are routed on the bytes the client sent (each segment
  still percent-encoded), so a namespace such as `postgres://db:5432`,
  sent as one segment `postgres%3A%2F%2Fdb%3A5432`, stays one segment; the
  routes decode their path values once.
- `/openapi.json`: FastAPI's document, with Marquez's response schemas on
  the Marquez routes. With a token, served (like everything) to its holders
  only.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from catalog.db import Store
from lineage.api.common import ApiError, api_error_handler, json_response
from lineage.api.marquez_routes import PREFIX, marquez_router
from lineage.api.steward_routes import steward_router

OPEN_PATHS = frozenset({"/health"})


class Access:
    """ASGI middleware: raw paths under `/api/` (the token is the server's `Guard`'s,
    asked before anything else, routing included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope.get("raw_path")
        if raw and scope["path"].startswith("/api/"):
            path = raw.split(b"?", 1)[0].decode("latin-1")
            scope = {**scope, "path": path}
        await self.app(scope, receive, send)


async def http_error_handler(_request: Request, err: Exception) -> Response:
    """Routing's own errors (unknown route, wrong method) in the same shape as the others."""
    assert isinstance(err, StarletteHTTPException)
    return json_response(
        {"code": err.status_code, "message": str(err.detail)},
        err.status_code,
        dict(err.headers or {}),
    )


@cache
def marquez_spec() -> dict[str, Any]:
    """Marquez's own OpenAPI document (Apache-2.0), as shipped with steward."""
    text = resources.files("lineage.api").joinpath("marquez-openapi.json").read_text("utf-8")
    spec: dict[str, Any] = json.loads(text)
    return spec


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    marquez = marquez_spec()
    doc.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in marquez["components"]["schemas"].items():
        if doc["components"]["schemas"].setdefault(name, schema) is not schema:
            raise RuntimeError(f"schema {name} is both steward's and Marquez's: rename ours")
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            # the routes parse their own parameters: a mistake is a 400, never a 422
            operation.get("responses", {}).pop("422", None)
    for path, item in doc.get("paths", {}).items():
        if not path.startswith(PREFIX):
            continue
        theirs = marquez["paths"].get(path.removeprefix(PREFIX), {})
        for method, operation in item.items():
            ok = ((theirs.get(method) or {}).get("responses") or {}).get("200")
            if ok and "content" in ok:
                operation.setdefault("responses", {})["200"] = ok
    doc["security"] = [{"bearer": []}]
    doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    app.openapi_schema = doc
    return doc


def mount_api(app: FastAPI, store: Store, token: str | None) -> None:
    """Add access control, the Marquez and steward read routes and `/openapi.json`."""
    app.add_middleware(Access)
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.include_router(marquez_router(store))
    app.include_router(steward_router(store))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    if app.openapi_url is None:

        @app.get("/openapi.json", include_in_schema=False)
        def openapi(_request: Request) -> Response:
            return json_response(app.openapi())
