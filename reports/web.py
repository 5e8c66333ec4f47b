"""The report served live: `GET /` on the app that takes OpenLineage events.

`lineage.server` cannot import this package (reports sit above lineage), so
whoever builds the app for `steward serve` mounts the page with
`mount_report(app, store)`:

    app = create_app(store, token=token)
    mount_report(app, store, token=token)

`GET /?focus=ASSET&depth=N` is the page `steward report` writes (focused the
same way), with the page's Content-Security-Policy also sent as a header
(and `frame-ancestors 'none'`: no other page may frame it). Pages are
rendered once and kept until the catalog changes (`Store.change_stamp`): a
reload costs one small query, and concurrent requests for a page being
rendered wait for that one rendering. The access rules (the bearer token
when one is set) are the app's (`lineage.guard`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlalchemy.exc import DatabaseError

from catalog.db import Store
from catalog.errors import Ambiguous, CatalogUnavailable, NotFound
from lineage.lru import ByteLRU
from reports.context import DEFAULT_DEPTH, MAX_DEPTH
from reports.render import assets, render_report

log = logging.getLogger(__name__)

#: Bytes of rendered pages kept beside the default one (always kept).
PAGE_CACHE = 64 * 1024 * 1024


class PageCache:
    """Rendered pages by (focus, depth), each with the catalog stamp it was made at."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.lock = threading.Lock()
        self.default: tuple[Any, str] | None = None
        self.others: ByteLRU[tuple[str | None, int], tuple[Any, str]] = ByteLRU(PAGE_CACHE)

    def page(self, focus: str | None, depth: int) -> str:
        key = (focus, depth)
        with self.lock:  # one rendering at a time: the others wait for it
            stamp = self.store.change_stamp()
            kept = self.default if key == (None, DEFAULT_DEPTH) else self.others.get(key)
            if kept is not None and kept[0] == stamp:
                return kept[1]
            page = render_report(self.store, focus=focus, depth=depth, served=True)
            if key == (None, DEFAULT_DEPTH):
                self.default = (stamp, page)
            else:
                self.others.put(key, (stamp, page), len(page))
            return page


def mount_report(app: FastAPI, store: Store, token: str | None = None) -> None:
    """Add `GET /`: the report of `store`, from a cache rebuilt when the catalog changes."""
    cache = PageCache(store)
    csp = assets()["csp"] + "; frame-ancestors 'none'"

    @app.get("/", include_in_schema=False)
    def report(
        focus: str | None = Query(None, max_length=4000),
        depth: int = Query(DEFAULT_DEPTH, ge=1, le=MAX_DEPTH),
    ) -> Response:
        try:
            page = cache.page(focus, depth)
        except (NotFound, Ambiguous) as err:
            return PlainTextResponse(f"{err}\n", status_code=404)
        except (CatalogUnavailable, DatabaseError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            log.warning("report: catalog unavailable: %s", first)
            return PlainTextResponse(
                "the catalog cannot be read; retry, or see the server's log\n",
                status_code=503,
                headers={"Retry-After": "5"},
            )
        return HTMLResponse(
            page,
            headers={
                "Content-Security-Policy": csp,
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",
            },
        )
