"""The report served live: `GET /` on the app that takes OpenLineage events.

`lineage.server` cannot import this package (reports sit above lineage), so
whoever builds the app for `steward serve` mounts the page with
`mount_report(app, store)`:

    app = create_app(store, token=token)
    mount_report(app, store, token=token)

`GET /?focus=ASSET&depth=N` is the page `steward report` writes, rendered
from the catalog at request time, with the page's Content-Security-Policy
also sent as a header. With a token, the page wants the same bearer token
as the API (a catalog's names are not for everyone).
"""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from catalog.db import Store
from catalog.errors import Ambiguous, NotFound
from reports.context import DEFAULT_DEPTH
from reports.render import assets, render_report

MAX_DEPTH = 10


def mount_report(app: FastAPI, store: Store, token: str | None = None) -> None:
    """Add `GET /`: the report of `store`, rendered on each request."""
    expected = f"Bearer {token}".encode() if token else None

    @app.get("/", include_in_schema=False)
    def report(
        request: Request,
        focus: str | None = None,
        depth: int = Query(DEFAULT_DEPTH, ge=1, le=MAX_DEPTH),
    ) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, expected):
                return PlainTextResponse(
                    "missing or wrong bearer token\n",
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        try:
            page = render_report(store, focus=focus, depth=depth)
        except (NotFound, Ambiguous) as err:
            return PlainTextResponse(f"{err}\n", status_code=404)
        return HTMLResponse(
            page,
            headers={
                "Content-Security-Policy": assets()["csp"],
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )
