"""A local stand-in for Pinecone's API, checked against Pinecone's published OpenAPI documents.

No Pinecone service can be reached from the test machines, so the real SDK
is pointed at this server on 127.0.0.1: one control plane (`GET /indexes`,
`GET /indexes/{name}`) and one data-plane server per index, as Pinecone
gives each index its own host (`POST /describe_index_stats`, `GET
/vectors/list`, `GET /vectors/fetch`: what the connector reads).

Every request it receives and every answer it gives are validated with
openapi-core against the document of the API version the request names in
`X-Pinecone-Api-Version` (tests/fixtures/external/pinecone-api); anything that
does not conform is kept in `problems`, which the tests' fixture asserts is
empty, so the stand-in cannot drift from the real API unnoticed.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.conftest import FIXTURES

SPECS = FIXTURES / "pinecone-api"
VERSIONS = ("2025-10", "2026-04")
#: What the real service's servers are called in the documents (for matching paths).
CONTROL_URL = "https://api.pinecone.io"
#: `IndexTags`: "Keys must be 80 characters or less. Values must be 120 characters or
#: less. Keys must be alphanumeric, '_', or '-'. Values must be alphanumeric, ';', '@',
#: '_', '-', '.', '+', or ' '."
TAG_KEY = re.compile(r"[A-Za-z0-9_-]{1,80}")
TAG_VALUE = re.compile(r"[A-Za-z0-9;@_.+ -]{0,120}")


@cache
def openapi(plane: str, version: str) -> Any:
    """The OpenAPI document of one plane (`control`, `data`) and API version."""
    from openapi_core import OpenAPI

    return OpenAPI.from_file_path(str(SPECS / f"db_{plane}_{version}.oas.yaml"))


@dataclass
class Exchange:
    """One request the SDK sent and the answer it got, as seen on the wire."""

    plane: str
    version: str
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    status: int
    answer: bytes
    host: str = ""


def validate(exchange: Exchange, version: str | None = None) -> list[str]:
    """What in `exchange` does not conform to the OpenAPI document (empty: all does)."""
    from openapi_core.testing import MockRequest, MockResponse

    version = version or exchange.version
    api = openapi(exchange.plane, version)
    host = CONTROL_URL if exchange.plane == "control" else f"https://{exchange.host}"
    headers = {**exchange.headers, "X-Pinecone-Api-Version": version}
    # The SDK names the default namespace with an empty `namespace=` (it always sends
    # the parameter); the documents do not set `allowEmptyValue`. A quirk of the
    # SDK's request, not of an answer: that one parameter is left out of the check.
    query = [(k, v) for k, v in exchange.query if v or k != "namespace"]
    request = MockRequest(
        host,
        exchange.method,
        exchange.path,
        args=query,  # type: ignore[arg-type]  # a list of pairs is a multidict
        headers=headers,
        data=exchange.body or None,
        content_type="application/json" if exchange.body else "",
    )
    problems = []
    try:
        api.validate_request(request)
    except Exception as err:
        problems.append(f"request {exchange.method} {exchange.path}: {_why(err)}")
    response = MockResponse(exchange.answer, exchange.status, content_type="application/json")
    try:
        api.validate_response(request, response)
    except Exception as err:
        problems.append(
            f"answer {exchange.status} to {exchange.method} {exchange.path}: {_why(err)}"
        )
    return problems


def _why(err: BaseException) -> str:
    causes = [str(err)]
    for sub in getattr(err, "schema_errors", None) or []:
        causes.append(getattr(sub, "message", str(sub)))
    if err.__cause__ is not None:
        causes.append(_why(err.__cause__))
    return "; ".join(causes)


@dataclass
class Record:
    values: list[float] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    sparse: tuple[list[int], list[float]] | None = None


@dataclass
class StandInIndex:
    """One index: its description (as `describe_index` answers) and its records."""

    description: dict[str, Any]
    namespaces: dict[str, dict[str, Record]] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    @property
    def name(self) -> str:
        return str(self.description["name"])

    @property
    def serverless(self) -> bool:
        return "serverless" in self.description["spec"]


def serverless(cloud: str = "aws", region: str = "us-east-1") -> dict[str, Any]:
    """A serverless spec as `describe_index` answers it (on-demand read capacity)."""
    return {
        "serverless": {
            "cloud": cloud,
            "region": region,
            "read_capacity": {"mode": "OnDemand", "status": {"state": "Ready"}},
        }
    }


def pod(environment: str = "us-east1-gcp", pod_type: str = "p1.x1") -> dict[str, Any]:
    return {
        "pod": {
            "environment": environment,
            "pod_type": pod_type,
            "pods": 1,
            "replicas": 1,
            "shards": 1,
        }
    }


class PineconeStandIn:
    """The control plane and one data-plane server per index, on 127.0.0.1."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.indexes: dict[str, StandInIndex] = {}
        self.exchanges: list[Exchange] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self.control = self._serve("control", None)

    # --- setting up what the service holds ------------------------------------------

    @property
    def port(self) -> int:
        return int(self.control.server_address[1])

    @property
    def url(self) -> str:
        """The steward URL of this control plane."""
        return f"pinecone+http://127.0.0.1:{self.port}"

    def add_index(
        self,
        name: str,
        dimension: int | None = 8,
        metric: str = "cosine",
        spec: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        embed: Mapping[str, Any] | None = None,
        vector_type: str = "dense",
        deletion_protection: str = "disabled",
        ready: bool = True,
    ) -> StandInIndex:
        index = StandInIndex(
            {
                "name": name,
                "metric": metric,
                "host": "",
                "spec": dict(spec or serverless()),
                "status": {"ready": ready, "state": "Ready" if ready else "Initializing"},
                "vector_type": vector_type,
                "deletion_protection": deletion_protection,
            }
        )
        if dimension is not None:
            index.description["dimension"] = dimension
        if tags:
            for key, value in tags.items():  # as Pinecone's API documents them
                assert TAG_KEY.fullmatch(key) and TAG_VALUE.fullmatch(value), (key, value)
            index.description["tags"] = dict(tags)
        if embed:
            index.description["embed"] = dict(embed)
        if name in self.indexes:
            self.drop_index(name)
        index.server = self._serve("data", index)
        index.description["host"] = f"127.0.0.1:{index.server.server_address[1]}"
        self.indexes[name] = index
        return index

    def drop_index(self, name: str) -> None:
        index = self.indexes.pop(name)
        if index.server is not None:
            index.server.shutdown()
            index.server.server_close()

    def upsert(
        self,
        name: str,
        vectors: Sequence[Sequence[float]],
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        namespace: str = "",
        prefix: str = "rec-",
    ) -> None:
        records = self.indexes[name].namespaces.setdefault(namespace, {})
        for i, values in enumerate(vectors):
            meta = dict(metadata[i]) if metadata and metadata[i] is not None else None
            records[f"{prefix}{i:05d}"] = Record([float(v) for v in values], meta)

    def close(self) -> None:
        for name in list(self.indexes):
            self.drop_index(name)
        self.control.shutdown()
        self.control.server_close()

    # --- the HTTP side ------------------------------------------------------------

    def _serve(self, plane: str, index: StandInIndex | None) -> ThreadingHTTPServer:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                standin._handle(self, plane, index)

            def do_POST(self) -> None:
                standin._handle(self, plane, index)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return server

    def _handle(self, http: BaseHTTPRequestHandler, plane: str, index: StandInIndex | None) -> None:
        parts = urlsplit(http.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        length = int(http.headers.get("Content-Length") or 0)
        body = http.rfile.read(length) if length else b""
        version = http.headers.get("X-Pinecone-Api-Version", "")
        if version not in VERSIONS:
            status, answer = 400, _rpc(3, f"unknown API version {version!r}")
            self.problems.append(f"the SDK asked for API version {version!r}")
        elif http.headers.get("Api-Key") != self.api_key:
            status, answer = (
                401,
                (
                    _error(401, "UNAUTHENTICATED", "Invalid API key.")
                    if plane == "control"
                    else _rpc(16, "Invalid API key")
                ),
            )
        else:
            route = self._control if plane == "control" else self._data
            status, answer = route(http.command, unquote(parts.path), query, body, index)
        data = json.dumps(answer).encode()
        exchange = Exchange(
            plane,
            version if version in VERSIONS else VERSIONS[0],
            http.command,
            parts.path,
            query,
            {k: v for k, v in http.headers.items()},
            body,
            status,
            data,
            host=str((index.description["host"] if index else "") or ""),
        )
        problems = validate(exchange)
        with self._lock:
            self.exchanges.append(exchange)
            self.problems.extend(problems)
        http.send_response(status)
        http.send_header("Content-Type", "application/json")
        http.send_header("Content-Length", str(len(data)))
        http.end_headers()
        http.wfile.write(data)

    def _control(
        self, method: str, path: str, query: Any, body: bytes, _: StandInIndex | None
    ) -> tuple[int, Any]:
        if method == "GET" and path == "/indexes":
            return 200, {"indexes": [i.description for _, i in sorted(self.indexes.items())]}
        if method == "GET" and path.startswith("/indexes/"):
            name = path.removeprefix("/indexes/")
            if name in self.indexes:
                return 200, self.indexes[name].description
            return 404, _error(404, "NOT_FOUND", f"Resource {name} not found")
        return 404, _error(404, "NOT_FOUND", f"{method} {path} is not served here")

    def _data(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        body: bytes,
        index: StandInIndex | None,
    ) -> tuple[int, Any]:
        assert index is not None
        args: dict[str, list[str]] = {}
        for key, value in query:
            args.setdefault(key, []).append(value)
        namespace = (args.get("namespace") or [""])[0]
        if method == "POST" and path == "/describe_index_stats":
            return 200, self._stats(index)
        if method == "GET" and path == "/vectors/list":
            if not index.serverless:
                return 400, _rpc(3, "List is only supported for serverless indexes")
            return 200, self._list(index, namespace, args)
        if method == "GET" and path == "/vectors/fetch":
            return 200, self._fetch(index, namespace, args.get("ids") or [])
        return 404, _rpc(5, f"{method} {path} is not served here")

    @staticmethod
    def _stats(index: StandInIndex) -> dict[str, Any]:
        out: dict[str, Any] = {
            "namespaces": {ns: {"vectorCount": len(r)} for ns, r in index.namespaces.items()},
            "indexFullness": 0.0,
            "totalVectorCount": sum(len(r) for r in index.namespaces.values()),
            "metric": index.description["metric"],
            "vectorType": index.description["vector_type"],
        }
        if "dimension" in index.description:
            out["dimension"] = index.description["dimension"]
        return out

    @staticmethod
    def _list(index: StandInIndex, namespace: str, args: dict[str, list[str]]) -> dict[str, Any]:
        limit = int((args.get("limit") or ["100"])[0])
        token = (args.get("paginationToken") or [""])[0]
        after = base64.b64decode(token).decode() if token else ""
        ids = sorted((i for i in index.namespaces.get(namespace, {}) if i > after), key=str.encode)
        page = ids[:limit]
        out: dict[str, Any] = {
            "vectors": [{"id": i} for i in page],
            "namespace": namespace,
            "usage": {"readUnits": 1},
        }
        if len(ids) > limit:
            out["pagination"] = {"next": base64.b64encode(page[-1].encode()).decode()}
        return out

    @staticmethod
    def _vector(rid: str, record: Record, values: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"id": rid}
        if values and record.values:
            out["values"] = record.values
        if record.sparse is not None:
            out["sparseValues"] = {"indices": record.sparse[0], "values": record.sparse[1]}
        if record.metadata is not None:
            out["metadata"] = record.metadata
        return out

    def _fetch(self, index: StandInIndex, namespace: str, ids: list[str]) -> dict[str, Any]:
        records = index.namespaces.get(namespace, {})
        found = {i: self._vector(i, records[i]) for i in ids if i in records}
        return {"vectors": found, "namespace": namespace, "usage": {"readUnits": 1}}


def _error(status: int, code: str, message: str) -> dict[str, Any]:
    """The control plane's error shape (`ErrorResponse`)."""
    return {"error": {"code": code, "message": message}, "status": status}


def _rpc(code: int, message: str) -> dict[str, Any]:
    """The data plane's error shape (`rpcStatus`, gRPC status codes)."""
    return {"code": code, "message": message, "details": []}


__all__ = ["Exchange", "Path", "PineconeStandIn", "pod", "serverless", "validate"]
