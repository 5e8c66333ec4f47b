"""The HTTP endpoint: OpenLineage events in, the way Marquez takes them (FastAPI).

- `POST /api/v1/lineage`: one event. 201 when accepted (or a duplicate),
  400 for a body that is not JSON (or not valid gzip), 422 for an event whose
  identity is broken, with `{"error", "field"}`; 413 over the body limit.
- `POST /api/v1/lineage/batch`: a JSON array of events, one result each
  (at most `MAX_BATCH` events, else 413).
- `GET /api/v1/lineage?nodeId=...&depth=N`: Marquez's lineage graph; 404 for
  an unknown node.
- `GET /health`: no auth.

With `STEWARD_TOKEN` set, every `/api/` route needs `Authorization: Bearer
TOKEN` (compared in constant time), else 401. Writes go through one writer
thread that groups the events of concurrent requests into one transaction
(the chunked projection of `lineage.ingest`), so many small POSTs cost about
what one batch does and SQLite never sees two writers from this process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import DatabaseError
from starlette.requests import ClientDisconnect

from catalog.db import Store
from catalog.errors import CatalogUnavailable, InvalidInput, NotFound
from lineage.api.mount import mount_api
from lineage.guard import Guard, Limits
from lineage.ingest import Document, Ingester, Result, Summary
from lineage.marquez import DEFAULT_DEPTH, lineage_graph
from lineage.openlineage import loads
from lineage.rows import dumps

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 5 * 1024 * 1024
#: Events grouped into one transaction by the writer thread, at most.
WRITER_CHUNK = 2000
#: ... and datasets named by them, at most (a request beyond it is a chunk alone).
WRITER_WEIGHT = 20_000
GATHER_SECONDS = 0.004
#: A request with fewer events than this waits `GATHER_SECONDS` for others.
GATHER_BELOW = 50
RETRY_AFTER = "2"
MAX_DEPTH = 100
#: Events in one batch, at most: each costs its result in memory and in the answer
#: (a 5 MB body of `{}` would otherwise be 1.7 million of them).
MAX_BATCH = 10_000


@dataclass
class _Job:
    documents: list[Document]
    future: Future[list[Result]]
    #: The datasets its events name: what a chunk holds in memory grows with them.
    weight: int = 0


def _weight(documents: list[Document]) -> int:
    total = len(documents)
    for _, value, _ in documents:
        if isinstance(value, dict):
            for key in ("inputs", "outputs"):
                items = value.get(key)
                total += len(items) if isinstance(items, list) else 0
    return total


class Writer:
    """One thread that writes every event, grouping what waits into one chunk."""

    def __init__(self, ingester: Ingester) -> None:
        self.ingester = ingester
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="steward-writer", daemon=True)
        self.thread.start()

    def submit(self, documents: list[Document]) -> Future[list[Result]]:
        future: Future[list[Result]] = Future()
        self.jobs.put(_Job(documents, future, _weight(documents)))
        return future

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join(timeout=10)

    def _loop(self) -> None:
        expected = 1  # requests in the last group: about how many clients are posting
        while True:
            first = self.jobs.get()
            if first is None:
                return
            group = [first]
            size = len(first.documents)
            weight = first.weight
            # Concurrent clients' next events are usually on their way: waiting a
            # moment (until as many requests as last time are in, at most
            # GATHER_SECONDS) lets one transaction carry them all. A batch is
            # worth a transaction of its own: it does not wait.
            deadline = time.monotonic() + GATHER_SECONDS
            while size < WRITER_CHUNK and weight < WRITER_WEIGHT:
                waiting = size < GATHER_BELOW and len(group) < expected
                left = deadline - time.monotonic() if waiting else 0.0
                try:
                    more = self.jobs.get(timeout=left) if left > 0 else self.jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self.jobs.put(None)
                    break
                group.append(more)
                size += len(more.documents)
                weight += more.weight
            expected = len(group)
            log.debug("writing %d events from %d requests", size, len(group))
            try:
                results = self.ingester.ingest([d for job in group for d in job.documents])
            except BaseException as err:  # handed to the requests, which answer 503/500
                for job in group:
                    job.future.set_exception(err)
                continue
            at = 0
            for job in group:
                job.future.set_result(results[at : at + len(job.documents)])
                at += len(job.documents)
            _log_batch(results, len(group))


def _log_batch(results: list[Result], requests: int) -> None:
    """One line per transaction (INFO: shown by `steward serve` unless --quiet)."""
    if not log.isEnabledFor(logging.INFO):
        return
    counts = Counter(r.status for r in results)
    log.info(
        "%d events from %d requests: %d accepted, %d duplicates, %d rejected",
        len(results),
        requests,
        counts["accepted"],
        counts["duplicate"],
        counts["rejected"],
    )


class BodyTooLarge(Exception):
    pass


class BadBody(Exception):
    pass


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer written by orjson (the standard library's encoder is slower)."""
    return Response(
        dumps(body).encode("utf-8"),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def _error(status: int, message: str, field: str | None = None, **headers: str) -> Response:
    # Marquez's error shape ({"code", "message"}) and steward's ("error", "field").
    body: dict[str, Any] = {"code": status, "message": message, "error": message}
    if field is not None:
        body["field"] = field
    return _json(body, status, headers or None)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise BadBody(f"unsupported Content-Encoding {encoding[:40]!r} (use gzip)")
    inflater = zlib.decompressobj(wbits=47 if encoding != "deflate" else 15)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as err:
        raise BadBody(f"body is not valid {encoding}: {err}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyTooLarge
    return out


def _decode(body: bytes) -> tuple[str, Any]:
    try:
        text = body.decode("utf-8")
        return text, loads(text)
    except UnicodeDecodeError as err:
        raise BadBody(f"body is not UTF-8: {err.reason}") from None
    except json.JSONDecodeError as err:
        raise BadBody(f"body is not valid JSON: {err.msg} (line {err.lineno})") from None
    except RecursionError:
        raise BadBody("body is not valid JSON: nested too deeply") from None


def create_app(
    store: Store,
    token: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    limits: Limits | None = None,
) -> FastAPI:
    """The app, writing to `store`; `token` enables bearer auth on every route but
    `/health` (`lineage.guard`); `limits` (else the defaults, with `max_body`)."""
    limits = limits or Limits(max_body=max_body)
    max_body = limits.max_body
    writer = Writer(Ingester(store, cache_size=limits.cache_size, max_datasets=limits.max_datasets))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        writer.close()

    app = FastAPI(
        title="steward",
        description="OpenLineage endpoint of steward",
        lifespan=lifespan,
        # FastAPI's own pages (/openapi.json, /docs, /redoc) cannot ask for the
        # token: with one, there are none.
        openapi_url=None if token else "/openapi.json",
    )
    app.add_middleware(Guard, token=token, limits=limits)

    @app.exception_handler(CatalogUnavailable)
    @app.exception_handler(DatabaseError)
    async def unavailable(_request: Request, err: Exception) -> Response:
        log.warning("catalog unavailable: %s", str(err).splitlines()[0] if str(err) else err)
        return _error(503, "catalog is busy or unavailable; retry", **{"Retry-After": RETRY_AFTER})

    async def _submit(documents: list[Document]) -> list[Result]:
        return await asyncio.wrap_future(writer.submit(documents))

    async def _events(request: Request) -> tuple[str, Any] | Response:
        try:
            return _decode(await _read_body(request, max_body))
        except ClientDisconnect:
            log.info("a client went away before sending its whole body")
            return _error(400, "the client went away", "(body)")
        except BodyTooLarge:
            return _error(413, f"request body is over the limit of {max_body} bytes")
        except BadBody as err:
            return _error(400, str(err), "(body)")

    @app.post("/api/v1/lineage", status_code=201)
    async def post_event(request: Request) -> Response:
        decoded = await _events(request)
        if isinstance(decoded, Response):
            return decoded
        text, value = decoded
        (result,) = await _submit([(text, value, "http")])
        return _json(result.to_json(), result.http_status)

    @app.post("/api/v1/lineage/batch")
    async def post_batch(request: Request) -> Response:
        decoded = await _events(request)
        if isinstance(decoded, Response):
            return decoded
        _, value = decoded
        if not isinstance(value, list):
            return _error(422, "a batch must be a JSON array of events", "(body)")
        if len(value) > MAX_BATCH:
            return _error(413, f"a batch holds at most {MAX_BATCH} events; send it in parts")
        documents: list[Document] = [(dumps(item), item, "http:batch") for item in value]
        results = await _submit(documents) if documents else []
        summary = Summary()
        for result in results:
            summary.add(result)
        return _json({"summary": summary.to_json(), "results": [r.to_json() for r in results]})

    @app.get("/api/v1/lineage")
    def get_lineage(
        request: Request,
        node_id: str | None = Query(None, alias="nodeId"),
        depth: str = Query(str(DEFAULT_DEPTH)),
    ) -> Response:
        if not node_id or len(node_id) > 4000:
            return _error(422, "nodeId is required: dataset:NAMESPACE:NAME or job:...", "nodeId")
        if not (depth.isascii() and depth.isdigit()) or int(depth) > MAX_DEPTH:
            return _error(400, f"depth must be an integer from 0 to {MAX_DEPTH}", "depth")
        try:
            with store.engine.connect() as conn:
                answer = lineage_graph(
                    conn, node_id, int(depth), limits.max_nodes, limits.max_answer
                )
                return _json(answer)
        except NotFound as err:
            return _error(404, str(err), "nodeId")
        except InvalidInput as err:
            return _error(400, str(err), "nodeId")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    mount_api(app, store, token)
    return app
