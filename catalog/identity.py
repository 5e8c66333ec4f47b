"""Asset identity: `(namespace, name)` keys in OpenLineage's naming.

Namespaces are normalised so that every producer names one thing one way:
scheme and host lowercased, the scheme's default port filled in, user names,
passwords and query strings dropped (credentials are never kept). Names are
kept exactly: PostgreSQL identifiers are case-sensitive.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

from catalog.errors import InvalidInput
from catalog.secrets import mask_message, mask_url

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


#: What a job's URI starts with. Jobs and datasets are separate key spaces (as in
#: OpenLineage and Marquez): a job and a dataset with the same namespace and name
#: are two assets, the job's URI `job:NAMESPACE/NAME`, the dataset's `NAMESPACE/NAME`.
JOB_PREFIX = "job:"
#: What a reference may start with to name the dataset (any asset but a job) only.
DATASET_PREFIX = "dataset:"


def job_uri(namespace: str, name: str) -> str:
    """The URI of the job `(namespace, name)`: `job:NAMESPACE/NAME`."""
    return JOB_PREFIX + asset_uri(namespace, name)


def kind_uri(namespace: str, name: str, kind: str) -> str:
    """The URI of an asset of `kind`: a job's (`job_uri`), or any other asset's."""
    return job_uri(namespace, name) if kind == "job" else asset_uri(namespace, name)


def asset_uri(namespace: str, name: str) -> str:
    """The URI an asset (any but a job: see `job_uri`) is shown and referred to by:
    `NAMESPACE/NAME`.

    A local file (OpenLineage namespace `file`, name its absolute path) is
    shown as the `file://` URL it is.
    """
    if namespace == "file" and name.startswith("/"):
        return f"file://{name}"
    return f"{namespace}/{name}"


def _netloc(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port is not None else shown


#: Schemes whose `user@` is part of the identity: Azure's `container@account`
#: (OpenLineage naming: `abfss://{container}@{service}.dfs.core.windows.net`).
USERINFO_IS_IDENTITY = frozenset({"abfs", "abfss", "wasb", "wasbs"})


@lru_cache(maxsize=8192)
def normalize_namespace(namespace: str) -> str:
    """Normalise a namespace: lowercase scheme and host, default port, no credentials.

    Namespaces that are not URLs (OpenLineage allows any string, e.g. a
    scheduler's name) are kept as given, without surrounding white space.
    Only `user:password@` is a credential (dropped); Azure's
    `container@account` is identity (kept), a database user (`user@`) is
    neither and is dropped, and so are JDBC properties (`;user=...`). Multi-host authorities (`oracle://h1:1521,h2:1522`,
    a Kafka bootstrap list) keep every host, each normalised. Raises
    `InvalidInput` for a port that is not a number in range.
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
    scheme_text, rest = text.split("://", 1)
    scheme = SCHEME_ALIASES.get(scheme_text.lower(), scheme_text.lower())
    authority, slash, path = rest.partition("/")
    # JDBC properties (`sqlserver://h:1433;user=u;password=p`) are not identity.
    authority = authority.split(";", 1)[0]
    path = (slash + path).split("?", 1)[0].split("#", 1)[0].rstrip("/")
    userinfo, at, hosts = authority.rpartition("@")
    keep = ""
    if at and ":" not in userinfo and scheme in USERINFO_IS_IDENTITY:
        keep = userinfo + "@"
    if "," in hosts:
        netloc = ",".join(_host_port(scheme, h, text) for h in hosts.split(",") if h.strip())
        return f"{scheme}://{keep}{netloc}{path}"
    parts = _split(f"{scheme}://{hosts}{path}")
    port = _port(parts, text)
    if hosts[:3].lower() == "%2f":
        # A Unix socket directory, percent-encoded as libpq writes it in a URL
        # (`postgres://%2Fvar%2Frun%2Fpostgresql:5432`): a path, so its case is kept.
        shown = socket_host(unquote(hosts.rsplit(":", 1)[0] if port is not None else hosts))
        port = port if port is not None else DEFAULT_PORTS.get(scheme)
        return f"{scheme}://{_netloc(shown, port)}{parts.path.rstrip('/')}"
    host = (parts.hostname or "").lower()
    if not host:
        # local storage and repositories: the namespace is the path
        return f"{scheme}://{parts.path.rstrip('/') or '/'}"
    if port is None:
        port = DEFAULT_PORTS.get(scheme)
    return urlunsplit((scheme, keep + _netloc(host, port), parts.path.rstrip("/"), "", ""))


def socket_host(directory: str) -> str:
    """A Unix socket directory as the host of a URL: percent-encoded, as libpq reads it.

    `/var/run/postgresql` -> `%2Fvar%2Frun%2Fpostgresql`; trailing slashes dropped.
    """
    return quote(directory.rstrip("/") or "/", safe="")


def _host_port(scheme: str, item: str, text: str) -> str:
    """One host of a multi-host authority, normalised as a single one is."""
    parts = _split(f"{scheme}://{item.strip()}")
    port = _port(parts, text)
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidInput(f"namespace {redact_url(text)!r} has an empty host")
    return _netloc(host, port if port is not None else DEFAULT_PORTS.get(scheme))


def _port(parts: SplitResult, text: str) -> int | None:
    try:
        return parts.port
    except ValueError as err:
        raise InvalidInput(f"namespace {redact_url(text)!r} has an invalid port") from err


def read_namespace(namespace: str) -> tuple[str, str | None]:
    """A producer's namespace: normalised, or kept verbatim with a warning.

    What steward cannot read (a port placeholder such as `database://host:port`)
    is never a reason to drop an event: the namespace is kept as given (without
    credentials) and the warning says so. Empty, NUL and overlong namespaces
    still raise `InvalidInput`.
    """
    try:
        return normalize_namespace(namespace), None
    except InvalidInput as err:
        text = namespace.strip()
        if (
            not text
            or "\x00" in text
            or len(text.encode("utf-8", "surrogatepass")) > MAX_NAMESPACE_BYTES
        ):
            raise
        kept = re.sub(r"(://)[^/@]*:[^/@]*@", r"\1", text).split("?", 1)[0]
        kept = mask_message(kept)
        return kept, f"{err}; kept verbatim"


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
