"""What stands between a client and the app: access rules and per-connection limits.

- `Guard`, an ASGI middleware: with a token, every route but `/health` needs
  `Authorization: Bearer TOKEN` (the scheme in any case), checked before
  anything else about the request. Without one (loopback by default), a web
  page the operator visits must not reach the server: a POST must be
  `Content-Type: application/json` (a page can send `text/plain` or no type
  without asking; `application/json` it cannot), the `Host` header must be
  an IP address, `localhost` or an allowed name (DNS rebinding needs a name),
  and a browser's `Origin`, when sent, the same. Every answer says `nosniff`
  and may not be framed. At most `max_concurrent` requests are worked on at
  once (their bodies read, decoded, answered); the others wait their turn,
  or get 503 after `queue_timeout`.
- `GuardedProtocol`, uvicorn's httptools protocol with the limits uvicorn
  does not have: header bytes and count (431), a deadline for the headers
  and another for the body (408: slow clients are cut off; time the server
  itself is not reading does not count), and a cap on open connections (503
  at once beyond it).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

KB = 1024
MB = 1024 * KB


@dataclass(frozen=True)
class Limits:
    """The server's limits; each is a `steward serve` option (see `--help`)."""

    max_body: int = 5 * MB
    max_header_size: int = 32 * KB
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_connections: int = 1000
    max_concurrent: int = 8
    #: Seconds a request waits for its turn (`max_concurrent`) before 503.
    queue_timeout: float = 30.0
    #: Datasets (inputs and outputs) one event may name.
    max_datasets: int = 5000
    #: Nodes and bytes of one lineage answer.
    max_nodes: int = 5000
    max_answer: int = 16 * MB
    #: Bytes the projection caches may hold.
    cache_size: int = 64 * MB
    #: Host names accepted without a token, beside IP addresses and localhost.
    allowed_hosts: tuple[str, ...] = field(default_factory=tuple)


def valid_token(token: str) -> str | None:
    """Why `token` could never match a header (None when it can)."""
    if not token:
        return "it is empty"
    if not all(0x21 <= ord(c) <= 0x7E for c in token):
        return "it holds white space, control or non-ASCII characters"
    return None


def bearer_matches(header: bytes, token: bytes) -> bool:
    """`Authorization: Bearer TOKEN`, the scheme in any case, compared in constant time."""
    scheme, _, given = header.strip().partition(b" ")
    ok_scheme = scheme.lower() == b"bearer"
    return hmac.compare_digest(given.strip(), token) and ok_scheme


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a `Host` (or an `Origin`'s host) may reach a server without a token."""
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    if name in ("localhost", *allowed) or "*" in allowed:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _error_body(status: int, message: str) -> str:
    """A refusal in the API's error shape (Marquez's `code` and `message`, and `error`)."""
    return json.dumps({"code": status, "message": message, "error": message})


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json"


async def _answer(send: Any, status: int, message: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = _error_body(status, message).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
]


class Guard:
    """ASGI middleware: the access rules above, then the app."""

    def __init__(self, app: Any, token: str | None, limits: Limits) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.limits = limits
        self.slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        refusal = self._refusal(scope) or _nul_refusal(scope)
        if refusal is not None:
            await _answer(secured, *refusal)
            return
        if scope["path"] == "/health":
            await self.app(scope, receive, secured)
            return
        if self.slots is None:
            self.slots = asyncio.Semaphore(self.limits.max_concurrent)
        try:
            await asyncio.wait_for(self.slots.acquire(), self.limits.queue_timeout)
        except TimeoutError:
            await _answer(secured, 503, "the server is busy; retry", [(b"retry-after", b"2")])
            return
        try:
            await self.app(scope, receive, secured)
        finally:
            self.slots.release()

    def _refusal(self, scope: dict[str, Any]) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        headers = dict(scope["headers"])
        if self.token is not None:
            if scope["path"] == "/health":
                return None
            if not bearer_matches(headers.get(b"authorization", b""), self.token):
                return 401, "missing or wrong bearer token", [(b"www-authenticate", b"Bearer")]
            return None
        host = headers.get(b"host", b"").decode("latin-1")
        if not host_allowed(host, self.limits.allowed_hosts):
            return (
                403,
                "Host header names no address of this server (set --allowed-host for a "
                "proxy's name, or STEWARD_TOKEN)",
                [],
            )
        origin = headers.get(b"origin")
        if origin is not None and origin != b"null":
            origin_host = origin.decode("latin-1").partition("://")[2]
            if not host_allowed(origin_host, self.limits.allowed_hosts):
                return 403, "requests from web pages are refused without STEWARD_TOKEN", []
        if scope["method"] == "POST" and not _is_json(
            headers.get(b"content-type", b"").decode("latin-1")
        ):
            return 415, "send Content-Type: application/json", []
        if origin == b"null":
            return 403, "requests from web pages are refused without STEWARD_TOKEN", []
        return None


def _nul_refusal(scope: dict[str, Any]) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
    """A NUL character in the path or the query (`%00`) is a client's mistake: no name
    or text in a catalog holds one, and PostgreSQL refuses it in any text (which the
    server took for a catalog it could not reach, and answered 503)."""
    # The path as decoded or raw (`lineage.api.mount.Access` passes `/api/` paths raw).
    path, raw = scope["path"], scope.get("raw_path") or b""
    if "\x00" in path or b"%00" in raw + scope.get("query_string", b""):
        return 400, "a NUL character (%00) in the URL: no name or text holds one", []
    return None


def _status_line(status: int, reason: str, message: str, extra: str = "") -> bytes:
    body = _error_body(status, message)
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}x-content-type-options: nosniff\r\n"
        f"connection: close\r\n\r\n{body}"
    ).encode()


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with limits on headers, slow clients and connections.

    `limits` is set on a subclass made by `protocol_for`.
    """

    limits: Limits = Limits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_bytes = 0
        self._header_count = 0
        self._header_size = 0
        self._in_headers = True
        self._refused = False
        self._timer: asyncio.TimerHandle | None = None
        if len(self.connections) > self.limits.max_connections:
            log.warning("over %d connections: refusing one", self.limits.max_connections)
            self._refuse(
                503, "Service Unavailable", "too many connections; retry", "retry-after: 2\r\n"
            )
            return
        self._arm(self.limits.header_timeout, self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.cancel()
            self._timer = None

    def _refuse(self, status: int, reason: str, message: str, extra: str = "") -> None:
        self._refused = True
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_status_line(status, reason, message, extra))
            self.transport.close()

    def _headers_too_slow(self) -> None:
        self._timer = None
        if self._in_headers and not self._refused:
            self._refuse(
                408, "Request Timeout", f"headers not received in {self.limits.header_timeout:g}s"
            )

    def _body_too_slow(self) -> None:
        self._timer = None
        if self.flow is not None and self.flow.read_paused and not self._refused:
            # The server stopped reading (the request waits for its turn): the
            # client is not slow. Its deadline starts again.
            self._arm(self.limits.body_timeout, self._body_too_slow)
            return
        if self._refused or self.cycle is None or self.cycle.response_started:
            if not self._refused:
                self.transport.close()
            return
        log.info("a client sent its body too slowly; connection closed")
        self._refuse(408, "Request Timeout", f"body not received in {self.limits.body_timeout:g}s")

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        if self._in_headers:
            self._header_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if not self._refused:
                log.info("a request that is not HTTP: answered 400")
                self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
            return
        if self._in_headers and self._header_bytes > self.limits.max_header_size:
            self._too_large()  # one long header the parser is still gathering

    def _too_large(self) -> None:
        self._refuse(
            431,
            "Request Header Fields Too Large",
            f"request headers are over {self.limits.max_header_size} bytes "
            f"or {self.limits.max_headers} fields",
        )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_headers:  # the next request on a kept-alive connection
            self._in_headers = True
            self._header_bytes = 0
            self._header_count = 0
            self._header_size = 0
            self._arm(self.limits.header_timeout, self._headers_too_slow)

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > self.limits.max_header_size:
            self._too_large()
            raise _Stop
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._header_size += len(name) + len(value) + 4
        size = self._header_size + len(self.url)
        if self._header_count > self.limits.max_headers or size > self.limits.max_header_size:
            self._too_large()
            raise _Stop
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._disarm()
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.more_body:
            self._arm(self.limits.body_timeout, self._body_too_slow)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()


class _Stop(Exception):
    """Raised in a parser callback to stop parsing a request already refused."""


def protocol_for(limits: Limits) -> type[GuardedProtocol]:
    """The protocol class uvicorn runs, with `limits`."""
    return type("StewardProtocol", (GuardedProtocol,), {"limits": limits})
