"""`steward ingest` and `steward serve`: OpenLineage events from files and over HTTP."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import gc
import ipaddress
import logging
import math
import os
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from catalog.cli import AppContext
from catalog.errors import CatalogUnavailable, CatalogWriteFailed, InvalidInput
from catalog.output import echo_json, info
from lineage.guard import Limits, valid_token

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
@click.option(
    "--max-document",
    envvar="STEWARD_MAX_DOCUMENT",
    default="256MB",
    show_default=True,
    show_envvar=True,
    help="Largest document read at once (a JSON line, or a file holding one JSON value), "
    "counted after gzip decompression; larger is an error (exit 2).",
)
@click.option(
    "--chunk-size",
    envvar="STEWARD_INGEST_CHUNK",
    default="4MB",
    show_default=True,
    show_envvar=True,
    help="Events (as text) written in one transaction, at most (and 10,000 events). What "
    "bounds an ingest's memory whatever the file's size: a chunk is held decoded by the "
    "reading and by the writing process (README: Speed).",
)
@pass_app
def ingest(
    app: AppContext,
    path: str | None,
    as_json: bool,
    rebuild: bool,
    max_document: str,
    chunk_size: str,
) -> None:
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
    rejected: they are in the raw log, with why. Exit code 2 when the
    catalog failed to write an event (a database error, not the event's
    fault): its projection is rolled back, it is kept raw (rejected, with
    the reason), and `--rebuild` replays it once the cause is fixed.
    """
    from lineage.ingest import Ingester

    if bool(path) == rebuild:
        raise InvalidInput("give either PATH or --rebuild", hint="steward ingest events.json")
    limit = parse_size(max_document, "--max-document")
    chunk = parse_size(chunk_size, "--chunk-size")
    ingester = Ingester(app.store(), max_document=limit, chunk_bytes=chunk)
    counter = _Counter(not app.quiet and not as_json)
    if rebuild:
        summary = ingester.rebuild(counter)
    else:
        assert path is not None
        summary = ingester.ingest_path(path, sys.stdin.buffer, counter)
    counter.done()
    if as_json:
        echo_json(summary.to_json())
    elif not app.quiet:
        verb = "rebuilt from the raw log" if rebuild else "ingested"
        info(
            f"{verb}: {summary.accepted} accepted, {summary.duplicates} duplicates, "
            f"{summary.rejected} rejected ({summary.warnings} with warnings)"
        )
        for reason in summary.reasons:
            info(f"  rejected: {reason}")
    if summary.failed:
        raise CatalogWriteFailed(
            f"{summary.failed} events could not be written to the catalog, the first: "
            f"{summary.first_failure}",
            hint="fix the cause, then steward ingest --rebuild",
        )


def parse_size(value: str, option: str) -> int:
    """A size such as `5MB`, `512KB` or `1048576` in bytes; InvalidInput otherwise."""
    text = value.strip().upper()
    for suffix, factor in (("KB", 1024), ("MB", 1024**2), ("GB", 1024**3), ("B", 1)):
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)], factor
            break
    else:
        scale = 1
    try:
        number = float(text)
    except ValueError:
        raise InvalidInput(f"{option} {value!r} is not a size (e.g. 5MB)") from None
    if not math.isfinite(number) or number <= 0 or number * scale > 2**62:
        raise InvalidInput(f"{option} {value!r} must be a positive, finite size (e.g. 5MB)")
    return int(number * scale)


def _positive(kind: type) -> Callable[[Any, Any, Any], Any]:
    def check(_ctx: Any, param: Any, value: Any) -> Any:
        number = kind(value)
        if not math.isfinite(number) or number <= 0:
            raise click.BadParameter(f"{value!r} must be a positive number", param=param)
        return number

    return check


def _option(name: str, env: str, default: Any, **settings: Any) -> Callable[[Any], Any]:
    """An option with a default and an environment variable, both shown in --help."""
    return click.option(
        name, envvar=env, default=default, show_default=True, show_envvar=True, **settings
    )


def _size_option(name: str, env: str, default: str, text: str) -> Callable[[Any], Any]:
    return _option(name, env, default, help=text)


#: `steward serve`'s limits, each an option with its environment variable.
LIMIT_OPTIONS = [
    _size_option(
        "--max-body",
        "STEWARD_MAX_BODY",
        "5MB",
        "Largest request body accepted (after gzip decoding); larger gets 413.",
    ),
    _size_option(
        "--max-header-size",
        "STEWARD_MAX_HEADER_SIZE",
        "32KB",
        "Largest request line and headers together; larger gets 431.",
    ),
    _option(
        "--max-headers",
        "STEWARD_MAX_HEADERS",
        100,
        type=click.IntRange(1, 10_000),
        help="Most header fields in one request; more gets 431.",
    ),
    _option(
        "--header-timeout",
        "STEWARD_HEADER_TIMEOUT",
        10.0,
        callback=_positive(float),
        help="Seconds a client has to send its request headers (from connecting); "
        "then 408 and the connection is closed.",
    ),
    _option(
        "--body-timeout",
        "STEWARD_BODY_TIMEOUT",
        60.0,
        callback=_positive(float),
        help="Seconds a client has to send its body after the headers (408 then).",
    ),
    _option(
        "--queue-timeout",
        "STEWARD_QUEUE_TIMEOUT",
        30.0,
        callback=_positive(float),
        help="Seconds a request waits for its turn (--max-concurrent) before 503.",
    ),
    _option(
        "--max-connections",
        "STEWARD_MAX_CONNECTIONS",
        1000,
        type=click.IntRange(1, 1_000_000),
        help="Open connections at most; one more is answered 503 and closed.",
    ),
    _option(
        "--max-concurrent",
        "STEWARD_MAX_CONCURRENT",
        8,
        type=click.IntRange(1, 10_000),
        help="Requests worked on at once (bodies read and decoded, answers built); "
        "others wait their turn. /health never waits.",
    ),
    _option(
        "--max-datasets",
        "STEWARD_MAX_DATASETS",
        5000,
        type=click.IntRange(1, 10_000_000),
        help="Datasets (inputs and outputs) one event may name; more is rejected (413).",
    ),
    _option(
        "--max-lineage-nodes",
        "STEWARD_MAX_LINEAGE_NODES",
        5000,
        type=click.IntRange(1, 10_000_000),
        help="Nodes in one GET /api/v1/lineage answer; a wider graph is cut (truncated: true).",
    ),
    _size_option(
        "--max-answer",
        "STEWARD_MAX_ANSWER",
        "16MB",
        "About the most JSON one GET /api/v1/lineage answer holds; a larger graph is cut.",
    ),
    _size_option(
        "--cache-size",
        "STEWARD_CACHE_SIZE",
        "64MB",
        "Memory the projection caches (datasets, schemas, versions already seen) may hold.",
    ),
    click.option(
        "--allowed-host",
        "allowed_hosts",
        envvar="STEWARD_ALLOWED_HOSTS",
        multiple=True,
        show_envvar=True,
        help="A Host name accepted without a token, beside IP addresses and localhost "
        "(a proxy's name; repeat it, or separate names by spaces in the variable; * for any).",
    ),
]


def with_limits(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(LIMIT_OPTIONS):
        command = option(command)
    return command


def limits_of(options: dict[str, Any]) -> Limits:
    """The `Limits` the options of `steward serve` give."""
    return Limits(
        max_body=parse_size(options["max_body"], "--max-body"),
        max_header_size=parse_size(options["max_header_size"], "--max-header-size"),
        max_headers=options["max_headers"],
        header_timeout=options["header_timeout"],
        body_timeout=options["body_timeout"],
        queue_timeout=options["queue_timeout"],
        max_connections=options["max_connections"],
        max_concurrent=options["max_concurrent"],
        max_datasets=options["max_datasets"],
        max_nodes=options["max_lineage_nodes"],
        max_answer=parse_size(options["max_answer"], "--max-answer"),
        cache_size=parse_size(options["cache_size"], "--cache-size"),
        allowed_hosts=tuple(h.strip().lower() for h in options["allowed_hosts"] if h.strip()),
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535))
@with_limits
@pass_app
def serve(app: AppContext, host: str, port: int, **options: Any) -> None:
    """Receive OpenLineage events over HTTP, the way Marquez does.

    \b
    POST /api/v1/lineage          one event (201; 400 unreadable; 422 bad identity)
    POST /api/v1/lineage/batch    a JSON array of events, one result each
    GET  /api/v1/lineage?nodeId=dataset:NS:NAME&depth=N   Marquez's lineage graph
    GET  /api/v1/...              Marquez's read API: namespaces, datasets,
                                  versions, jobs, runs, column-lineage, search
    GET  /api/steward/v1/...      steward's: assets, versions, diffs, findings,
                                  models, feature sets, coverage (as --json)
    GET  /openapi.json            the OpenAPI document
    GET  /health                  liveness, never needs a token

    Point any OpenLineage client's HTTP transport at http://HOST:PORT. When
    $STEWARD_TOKEN is set, every route but /health needs `Authorization:
    Bearer TOKEN` (the client's `auth: {type: api_key, apiKey: TOKEN}`).
    Without it, posts must be `Content-Type: application/json` and the Host
    header an IP address, localhost or an --allowed-host, so that no web page
    can reach the server. Set a token before listening beyond loopback.

    The address is bound before the "serving" line is printed; then one
    line per written batch (accepted, duplicate, rejected counts) goes to
    stderr (none with -q).

    \b
    Exit codes:
      0  stopped by Ctrl-C or SIGTERM (gracefully)
      2  the address cannot be listened on (port in use, not this host's),
         a bad option or token, an unreachable catalog
    """
    run_server(app, host, port, limits_of(options))


def run_server(
    app: AppContext,
    host: str,
    port: int,
    limits: Limits,
    extend: Callable[[FastAPI, Store, str | None], None] | None = None,
) -> None:
    """Serve the API (and whatever `extend` mounts on it, e.g. the live report).

    The address is bound before anything is announced: a busy port is an
    error (exit 2) before the banner, never after it.
    """
    import uvicorn

    from lineage.guard import protocol_for

    token = _token()
    store = app.store()
    sock = listen(host, port)
    if token is None and not _loopback(host):
        info(
            f"WARNING: listening on {host} without STEWARD_TOKEN: anyone who can reach it "
            "can post events and read the catalog"
        )
    limits = _within_open_files(limits)
    if not app.quiet:
        bound = sock.getsockname()[1]
        info(f"steward serving {store.shown_url} on http://{host}:{bound} (Ctrl-C stops)")
        server_log = logging.getLogger("lineage.server")
        server_log.setLevel(min(server_log.getEffectiveLevel(), logging.INFO))
    api = server_app(store, token, limits, extend)
    # Every request decodes thousands of objects that hold no cycles: collect
    # the young generation rarely, and never walk what start-up loaded.
    gc.freeze()
    gc.set_threshold(SERVER_GC_THRESHOLD, 20, 20)
    server = uvicorn.Server(
        uvicorn.Config(
            api,
            http=protocol_for(limits),
            log_level="warning",
            log_config=None,  # the root logger's handler: every line masked
            access_log=False,
            timeout_keep_alive=5,
        )
    )
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


def _token() -> str | None:
    """$STEWARD_TOKEN, refused when it is set but could never match a header."""
    if "STEWARD_TOKEN" not in os.environ:
        return None
    token = os.environ["STEWARD_TOKEN"]
    problem = valid_token(token)
    if problem is not None:
        raise InvalidInput(
            f"STEWARD_TOKEN is set but {problem}: no client could ever send it",
            hint="unset it to serve without a token (loopback only), or set a token of "
            "visible ASCII characters",
        )
    return token


def _within_open_files(limits: Limits) -> Limits:
    """Raise the open-file limit to what `max_connections` needs, or lower that."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = limits.max_connections + 64  # the catalog, logs and listening sockets
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
    if soft != resource.RLIM_INFINITY and soft < wanted:
        fits = max(soft - 64, 1)
        info(f"warning: open files are limited to {soft}; --max-connections lowered to {fits}")
        return dataclasses.replace(limits, max_connections=fits)
    return limits


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
    limits: Limits | int,
    extend: Callable[[FastAPI, Store, str | None], None] | None = None,
) -> FastAPI:
    """The app `steward serve` runs: the API, and whatever `extend` mounts on it
    (`limits`: the `Limits`, or only the body limit)."""
    from lineage.server import create_app

    if isinstance(limits, int):
        limits = Limits(max_body=limits)
    api = create_app(store, token=token, limits=limits)
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
