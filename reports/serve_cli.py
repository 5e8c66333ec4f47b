"""`steward serve`: the OpenLineage API of `lineage.server`, plus the report live at `/`.

The API lives in `lineage`, the report in `reports` (above it), so the
command that serves both is assembled here: the same options and the same
server as the API alone, with `GET /` mounted on it.
"""

from __future__ import annotations

from typing import Any

import click
from fastapi import FastAPI

from catalog.cli import AppContext
from catalog.db import Store
from lineage.cli import limits_of, run_server
from lineage.cli import serve as api_serve
from reports.web import mount_report

LIVE_REPORT = """

\b
GET  /?focus=ASSET&depth=N     the HTML report (`steward report`), rendered live
"""


def mount_live(api: FastAPI, store: Store, token: str | None) -> None:
    """What `steward serve` adds to the API: the report, live at `/`."""
    mount_report(api, store, token=token)


def _serve(host: str, port: int, **options: Any) -> None:
    app = click.get_current_context().find_object(AppContext)
    assert app is not None
    run_server(app, host, port, limits_of(options), extend=mount_live)


serve = click.Command(
    "serve",
    params=list(api_serve.params),
    callback=_serve,
    help=(api_serve.help or "") + LIVE_REPORT,
    short_help=api_serve.short_help,
)
