"""Asset identity: `(namespace, name)` keys in OpenLineage's naming.

Namespaces are normalised so that every producer names one thing one way:
scheme and host lowercased, the scheme's default port filled in, user names,
passwords and query strings dropped (credentials are never kept). Names are
kept exactly: PostgreSQL identifiers are case-sensitive.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple
from urllib.parse import SplitResult, urlsplit, urlunsplit

from catalog.errors import InvalidInput
from catalog.secrets import mask_url

#: Default ports, filled in when a namespace leaves them out.
DEFAULT_PORTS: dict[str, int] = {
    "postgres": 5432,
    "mysql": 3306,
    "mariadb": 3306,
    "redshift": 5439,
    "sqlserver": 1433,
    "mssql": 1433,
    "oracle": 1521,
    "qdrant": 6333,
    "qdrants": 6333,
    "mlflow": 5000,
    "mlflows": 443,
    "kafka": 9092,
    "http": 80,
    "https": 443,
}

#: Longest namespace kept (UTF-8 bytes): it is indexed, and PostgreSQL's index
#: entries hold at most 2704 bytes.
MAX_NAMESPACE_BYTES = 2048

#: Scheme spellings that mean the same thing.
SCHEME_ALIASES: dict[str, str] = {"postgresql": "postgres"}


class AssetKey(NamedTuple):
    """The identity of an asset: OpenLineage namespace and name."""

    namespace: str
    name: str

    @property
    def uri(self) -> str:
        return asset_uri(self.namespace, self.name)

    @classmethod
    def of(cls, namespace: str, name: str) -> AssetKey:
        """A key with its namespace normalised and its name checked."""
        if not name or not name.strip():
            raise InvalidInput("asset name is empty", hint=f"namespace {namespace!r}")
        return cls(normalize_namespace(namespace), name)


def asset_uri(namespace: str, name: str) -> str:
    """The URI an asset is shown and referred to by: `NAMESPACE/NAME`.

    A local file (OpenLineage namespace `file`, name its absolute path) is
    shown as the `file://` URL it is.
    """
    if namespace == "file" and name.startswith("/"):
        return f"file://{name}"
    return f"{namespace}/{name}"


def _netloc(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port is not None else shown


@lru_cache(maxsize=8192)
def normalize_namespace(namespace: str) -> str:
    """Normalise a namespace: lowercase scheme and host, default port, no credentials.

    Namespaces that are not URLs (OpenLineage allows any string, e.g. a
    scheduler's name) are kept as given, without surrounding white space.
    """
    text = namespace.strip()
    if not text:
        raise InvalidInput("namespace is empty")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_NAMESPACE_BYTES:
        raise InvalidInput(f"namespace is longer than {MAX_NAMESPACE_BYTES} bytes")
    if "\x00" in text:
        raise InvalidInput("namespace contains a NUL character")
    if "://" not in text:
        return text
    parts = _split(text)
    scheme = SCHEME_ALIASES.get(parts.scheme.lower(), parts.scheme.lower())
    try:
        port = parts.port
    except ValueError as err:
        raise InvalidInput(f"namespace {redact_url(text)!r} has an invalid port") from err
    host = (parts.hostname or "").lower()
    if not host:
        # local storage and repositories: the namespace is the path
        return f"{scheme}://{parts.path.rstrip('/') or '/'}"
    if port is None:
        port = DEFAULT_PORTS.get(scheme)
    return urlunsplit((scheme, _netloc(host, port), parts.path.rstrip("/"), "", ""))


def _split(text: str) -> SplitResult:
    try:
        return urlsplit(text)
    except ValueError as err:
        raise InvalidInput(f"{redact_url(text)!r} is not a valid URL: {err}") from err


def redact_url(url: str) -> str:
    """The URL for a message: userinfo and secret parameters masked (`mask_url`)."""
    return mask_url(url)


def strip_credentials(url: str) -> str:
    """The URL without user, password or query string: what may be stored."""
    parts = _split(url)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError as err:
        raise InvalidInput(f"{redact_url(url)!r} has an invalid port") from err
    netloc = _netloc(host, port) if host else ""
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def parse_uri(uri: str) -> AssetKey:
    """The key a dataset URI names: `SCHEME://HOST[:PORT]/NAME` or `file:///PATH`.

    The namespace is scheme and authority (normalised), the name the rest of
    the path: `postgres://db:5432/shop.public.events` is
    `(postgres://db:5432, shop.public.events)`. A `file://` URI names a local
    file: namespace `file`, name its absolute path (OpenLineage's naming).
    """
    text = uri.strip()
    parts = _split(text)
    if not parts.scheme or "://" not in text:
        raise InvalidInput(
            f"{redact_url(text)!r} is not a dataset URI", hint="write SCHEME://HOST:PORT/NAME"
        )
    if parts.scheme.lower() == "file":
        if not parts.path or parts.path == "/":
            raise InvalidInput(f"{redact_url(text)!r} names no file")
        return AssetKey("file", parts.path)
    name = parts.path.lstrip("/")
    if not parts.hostname or not name:
        raise InvalidInput(
            f"{redact_url(text)!r} is not a dataset URI", hint="write SCHEME://HOST:PORT/NAME"
        )
    return AssetKey.of(f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}", name)
