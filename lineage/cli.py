"""`steward ingest` and `steward serve`: OpenLineage events from files and over HTTP."""

from __future__ import annotations

import errno
import gc
import ipaddress
import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from catalog.cli import AppContext
from catalog.errors import CatalogUnavailable, InvalidInput
from catalog.output import echo_json, info

if TYPE_CHECKING:
    from fastapi import FastAPI

    from catalog.db import Store

pass_app = click.make_pass_decorator(AppContext)
#: Allocations between two collections of the young generation in `steward serve`.
SERVER_GC_THRESHOLD = 50_000


class _Counter:
    """`N events` on stderr, rewritten in place: only on a terminal, never with --quiet."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.count = 0

    def __call__(self, *_: Any) -> None:
        self.count += 1
        if self.enabled and self.count % 500 == 0:
            click.echo(f"\r{self.count} events", err=True, nl=False)

    def done(self) -> None:
        if self.enabled and self.count >= 500:
            click.echo("\r", err=True, nl=False)


@click.command()
@click.argument("path", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option(
    "--rebuild",
    is_flag=True,
    help="Replay the raw event log into fresh projections (runs, job and dataset versions, "
    "edges); every stored event is parsed again.",
)
@pass_app
def ingest(app: AppContext, path: str | None, as_json: bool, rebuild: bool) -> None:
    """Ingest OpenLineage events from PATH (a file, a directory, or - for stdin).

    \b
    A file holds one event, a JSON array of events, or JSON lines (NDJSON),
    optionally gzip-compressed. A directory is read recursively (files ending
    in .json, .jsonl, .ndjson, .log or .gz, in name order): the output of the
    openlineage-python FileTransport, one file per event or append mode.

    Every event is kept in the raw log, valid or not. Events seen before are
    counted as duplicates and change nothing. The summary (accepted,
    duplicates, rejected with the first reasons) goes to stderr, or to
    stdout as JSON with --json. Exit code 0 even when some events are
    rejected: they are in the raw log, with why.
    """
    from lineage.ingest import Ingester

    if bool(path) == rebuild:
        raise InvalidInput("give either PATH or --rebuild", hint="steward ingest events.json")
    ingester = Ingester(app.store())
    counter = _Counter(not app.quiet and not as_json)
    if rebuild:
        summary = ingester.rebuild(counter)
    else:
        assert path is not None
        summary = ingester.ingest_path(path, sys.stdin.buffer, counter)
    counter.done()
    if as_json:
        echo_json(summary.to_json())
        return
    if not app.quiet:
        verb = "rebuilt from the raw log" if rebuild else "ingested"
        info(
            f"{verb}: {summary.accepted} accepted, {summary.duplicates} duplicates, "
            f"{summary.rejected} rejected ({summary.warnings} with warnings)"
        )
        for reason in summary.reasons:
            info(f"  rejected: {reason}")


def _max_body(value: str) -> int:
    text = value.strip().upper()
    for suffix, factor in (("KB", 1024), ("MB", 1024**2), ("GB", 1024**3), ("B", 1)):
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)], factor
            break
    else:
        scale = 1
    try:
        size = int(float(text) * scale)
    except ValueError:
        raise InvalidInput(f"--max-body {value!r} is not a size (e.g. 5MB)") from None
    if size <= 0:
        raise InvalidInput("--max-body must be positive")
    return size


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--max-body",
    default=lambda: os.environ.get("STEWARD_MAX_BODY", "5MB"),
    show_default="5MB or $STEWARD_MAX_BODY",
    help="Largest request body accepted (after gzip decoding); larger gets 413.",
)
@pass_app
def serve(app: AppContext, host: str, port: int, max_body: str) -> None:
    """Receive OpenLineage events over HTTP, the way Marquez does.

    \b
    POST /api/v1/lineage          one event (201; 400 unreadable; 422 bad identity)
    POST /api/v1/lineage/batch    a JSON array of events, one result each
    GET  /api/v1/lineage?nodeId=dataset:NS:NAME&depth=N   Marquez's lineage graph
    GET  /health                  liveness, never needs a token

    Point any OpenLineage client's HTTP transport at http://HOST:PORT. When
    $STEWARD_TOKEN is set, /api/ calls need `Authorization: Bearer TOKEN`
    (the client's `auth: {type: api_key, apiKey: TOKEN}`).

    The address is bound before the "serving" line is printed; then one
    line per written batch (accepted, duplicate, rejected counts) goes to
    stderr (none with -q).

    \b
    Exit codes:
      0  stopped by Ctrl-C or SIGTERM (gracefully)
      2  the address cannot be listened on (port in use, not this host's),
         a bad option, an unreachable catalog
    """
    run_server(app, host, port, max_body)


def run_server(
    app: AppContext,
    host: str,
    port: int,
    max_body: str,
    extend: Callable[[FastAPI, Store, str | None], None] | None = None,
) -> None:
    """Serve the API (and whatever `extend` mounts on it, e.g. the live report).

    The address is bound before anything is announced: a busy port is an
    error (exit 2) before the banner, never after it.
    """
    import uvicorn

    limit = _max_body(max_body)
    token = os.environ.get("STEWARD_TOKEN") or None
    store = app.store()
    sock = listen(host, port)
    if token is None and not _loopback(host):
        info(f"warning: listening on {host} without STEWARD_TOKEN: anyone can post events")
    if not app.quiet:
        bound = sock.getsockname()[1]
        info(f"steward serving {store.shown_url} on http://{host}:{bound} (Ctrl-C stops)")
        server_log = logging.getLogger("lineage.server")
        server_log.setLevel(min(server_log.getEffectiveLevel(), logging.INFO))
    api = server_app(store, token, limit, extend)
    # Every request decodes thousands of objects that hold no cycles: collect
    # the young generation rarely, and never walk what start-up loaded.
    gc.freeze()
    gc.set_threshold(SERVER_GC_THRESHOLD, 20, 20)
    server = uvicorn.Server(uvicorn.Config(api, log_level="warning", access_log=False))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stopped gracefully, then re-raised Ctrl-C
        return
    except SystemExit as stopped:  # uvicorn's exit when the app fails to start
        raise CatalogUnavailable(f"the server did not start (exit {stopped.code})") from None
    finally:
        sock.close()
    if not server.started:
        raise CatalogUnavailable("the server did not start")


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to HOST:PORT and listening; an address that cannot be used is
    a one-line error naming it (a port in use, a host that is not this machine's)."""
    where = f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as err:
        raise InvalidInput(
            f"cannot listen on {where}: unknown host ({err})", hint="give --host an address"
        ) from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as err:
        sock.close()
        hint = {
            errno.EADDRINUSE: "another process listens there: stop it or give another --port",
            errno.EACCES: "ports below 1024 need privileges: give --port 5000",
            errno.EADDRNOTAVAIL: "not an address of this machine: give --host 127.0.0.1",
        }.get(err.errno or 0)
        raise InvalidInput(f"cannot listen on {where}: {err.strerror}", hint=hint) from None
    sock.set_inheritable(True)
    return sock


def server_app(
    store: Store,
    token: str | None,
    limit: int,
    extend: Callable[[FastAPI, Store, str | None], None] | None = None,
) -> FastAPI:
    """The app `steward serve` runs: the API, and whatever `extend` mounts on it."""
    from lineage.server import create_app

    api = create_app(store, token=token, max_body=limit)
    if extend is not None:
        extend(api, store, token)
    return api


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
