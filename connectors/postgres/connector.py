"""The PostgreSQL connector: `steward scan postgres://USER[:PASSWORD]@HOST:PORT/DB`.

Reads the catalog of one database in a single REPEATABLE READ, READ ONLY
transaction with a fixed handful of set-based queries (`queries.py`), plus,
in the same transaction, what only the data says (`contents.py`: dimensions
of unsized vector columns, the collections of vector stores' layouts), and
turns the rows into asset specs (`mapping.py`). The password is held as a
`SecretStr`, handed to libpq only, and never stored, logged or printed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import unquote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from pydantic import Field, SecretStr, field_validator, model_validator

from catalog.apply import Scope
from catalog.errors import InvalidInput, SourceUnavailable
from catalog.identity import normalize_namespace, socket_host
from catalog.profiles import VectorSample
from connectors.base import Connector, ConnectorConfig, Progress, SamplingOptions, Scan
from connectors.postgres import queries
from connectors.postgres.contents import read_contents
from connectors.postgres.layouts import BUILT_IN, Layout
from connectors.postgres.mapping import (
    KINDS,
    Snapshot,
    VectorRelation,
    build_specs,
    vector_relations,
)
from connectors.postgres.vectors import sample_relation

log = logging.getLogger(__name__)

DEFAULT_PORT = 5432
#: Steps of a scan, for the progress callback.
STEPS = (
    "connecting",
    "schemas",
    "relations",
    "columns",
    "keys",
    "indexes",
    "views",
    "contents",
    "specs",
)
#: libpq parameters a URL's query string may set (others are refused).
ALLOWED_PARAMS = frozenset(
    {
        "host",
        "port",
        "dbname",
        "user",
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslcrl",
        "sslcompression",
        "target_session_attrs",
        "application_name",
        "connect_timeout",
        "gssencmode",
        "channel_binding",
        "options",
        "passfile",
        "service",
    }
)
SCOPE_KINDS = tuple(sorted(set(KINDS.values())))


def _password_from_url(url: str) -> tuple[str, str | None]:
    """The URL without its password, and the password (percent-decoded) if it had one."""
    # Greedy up to the last `@` of the authority: an unencoded `@` stays in the password.
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/@:?#]*):([^/?#]*)@", url)
    if not match:
        return url, None
    return match.group(1) + "@" + url[match.end() :], unquote(match.group(2))


class PostgresConfig(ConnectorConfig, SamplingOptions):
    """`postgres://USER[:PASSWORD]@HOST:PORT/DB[?sslmode=...]` and the schemas to scan.

    A password in the URL is moved into `password` (a `SecretStr`) when the
    config is made, so the URL kept in the config never carries it. Without
    one, libpq's usual sources apply (`PGPASSWORD`, `~/.pgpass`).
    """

    url: str
    schemas: tuple[str, ...] = ()
    password: SecretStr | None = None
    connect_timeout: int = 10
    #: Seconds to wait for a table another session holds an ACCESS EXCLUSIVE lock on
    #: (PostgreSQL's functions that print definitions take a share lock, like pg_dump).
    lock_timeout: int = 10
    #: Unix socket directory -> the name its server is recorded under (steward.toml
    #: `[postgres.sockets]`): a host (`db.internal`, port: the socket's) or a namespace.
    sockets: dict[str, str] = Field(default_factory=dict)
    #: Layouts of vector stores that keep logical collections in tables
    #: (steward.toml `[[postgres.layouts]]`), tried before the built-in ones.
    layouts: tuple[Layout, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _take_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("url"), str):
            url, password = _password_from_url(data["url"])
            if password is not None:
                data = {**data, "url": url}
                data.setdefault("password", password)
        return data

    @field_validator("sockets")
    @classmethod
    def _sockets(cls, value: dict[str, str]) -> dict[str, str]:
        out = {}
        for directory, name in value.items():
            if not directory.startswith("/"):
                raise ValueError(f"{directory!r} is not an absolute socket directory")
            if not name.strip():
                raise ValueError(f"the name of socket directory {directory!r} is empty")
            out[directory.rstrip("/") or "/"] = name.strip()
        return out

    @field_validator("schemas")
    @classmethod
    def _schemas(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for schema in value:
            if not schema:
                raise ValueError("a schema name is empty")
        return tuple(dict.fromkeys(value))


@dataclass(frozen=True)
class Target:
    """Where to connect (libpq keywords, no password) and what to call it."""

    params: dict[str, str]
    namespace: str
    shown: str


def parse_target(config: PostgresConfig) -> Target:
    """libpq parameters and the asset namespace for the configured URL.

    The URL is read by libpq itself (`psycopg.conninfo`), so it means exactly
    what it means to psql: a `?host=/path/to/socket` query parameter wins
    over the URL's host, percent-escapes are decoded, IPv6 hosts are bracketed.
    """
    url = config.url.strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in PostgresConnector.schemes:
        raise InvalidInput(f"{url!r} is not a postgres:// URL")
    try:
        params: dict[str, str] = {
            k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None
        }
    except psycopg.ProgrammingError as err:
        unknown_param = re.search(r'invalid URI query parameter: "(.*)"', str(err))
        if unknown_param:
            raise InvalidInput(
                f"unknown connection parameter {unknown_param.group(1)!r} in the URL"
            ) from None
        raise InvalidInput(f"{url!r} is not a valid PostgreSQL URL: {_first_line(err)}") from None
    if "password" in params:
        raise InvalidInput(
            "a password in the URL's query string is not accepted",
            hint="give it as postgres://USER:PASSWORD@HOST/DB or in $PGPASSWORD",
        )
    unknown = sorted(set(params) - ALLOWED_PARAMS)
    if unknown:
        raise InvalidInput(f"unknown connection parameter {unknown[0]!r} in the URL")
    # Several hosts (libpq tries them in order): the first one names the source.
    host = params.get("host", "").split(",")[0]
    port_text = params.get("port", "").split(",")[0] or str(DEFAULT_PORT)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidInput(f"{url!r} is not a valid PostgreSQL URL: port {port_text!r}")
    port = int(port_text)
    params["port"] = params.get("port") or str(port)
    dbname = params.get("dbname", "")
    params.setdefault("connect_timeout", str(config.connect_timeout))
    params.setdefault("application_name", "steward")
    if not host:
        # libpq's default Unix socket: which directory is known once connected.
        where = f"the local socket (port {port})" + (f", database {dbname}" if dbname else "")
        return Target(params, "", where)
    return _target(params, host, port, dbname, config.sockets)


def _target(
    params: dict[str, str], host: str, port: int, dbname: str, sockets: dict[str, str]
) -> Target:
    """The target for the server at `host` (a name, an address or a socket directory).

    A server reached through a Unix socket is named by its socket directory
    (percent-encoded, as libpq writes it in a URL), or by the name declared for
    that directory; never by a TCP address it was not reached by.
    """
    if host.startswith("/"):
        declared = sockets.get(host.rstrip("/") or "/")
        if declared is None:
            namespace = normalize_namespace(f"postgres://{socket_host(host)}:{port}")
        elif "://" in declared:
            namespace = normalize_namespace(declared)
        else:
            namespace = normalize_namespace(f"postgres://{_bracket(declared)}:{port}")
    else:
        namespace = normalize_namespace(f"postgres://{_bracket(host)}:{port}")
    shown = f"{namespace}/{dbname}" if dbname else namespace
    return Target(params, namespace, shown)


def reached(target: Target, conn: psycopg.Connection[Any], sockets: dict[str, str]) -> Target:
    """`target` named after the server the connection reached (libpq's default socket)."""
    if target.namespace:
        return target
    info = conn.info
    return _target(target.params, info.host, int(info.port), info.dbname, sockets)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def describe_connect_error(err: BaseException, target: Target, secret: str | None) -> str:
    """One line naming why the connection failed, without any credential in it."""
    text = " ".join(str(err).split())
    if secret:
        text = text.replace(secret, "***")
    low = text.lower()
    user = target.params.get("user", "(default user)")
    db = target.params.get("dbname", "(default database)")
    if "password authentication failed" in low or "authentication failed" in low:
        cause = f"authentication failed for user {user!r}"
    elif re.search(r'role ".*" does not exist', low):
        cause = f"authentication failed: role {user!r} does not exist"
    elif "no password supplied" in low or "fe_sendauth" in low:
        cause = f"authentication failed: the server wants a password for user {user!r}"
    elif re.search(r'database ".*" does not exist', low):
        cause = f"database {db!r} does not exist"
    elif "permission denied for database" in low:
        cause = f"permission denied: user {user!r} may not connect to database {db!r}"
    elif "no pg_hba.conf entry" in low:
        cause = f"permission denied: the server's pg_hba.conf admits no connection for {user!r}"
    elif "connection refused" in low:
        cause = "host unreachable: connection refused (is the server running on that port?)"
    elif "could not translate host name" in low or "name or service not known" in low:
        cause = "host unreachable: unknown host name"
    elif "timeout expired" in low or "timed out" in low:
        cause = "host unreachable: connection timed out"
    elif "no such file or directory" in low:
        cause = "host unreachable: no server socket there"
    elif "no route to host" in low or "network is unreachable" in low:
        cause = "host unreachable: no route to host"
    else:
        cause = text.split(" DETAIL:")[0] or type(err).__name__
    return f"cannot connect to {target.shown}: {cause}"


class PostgresConnector(Connector[PostgresConfig]):
    """Tables, partitioned tables, views, materialized views and pgvector columns."""

    kind: ClassVar[str] = "postgres"
    schemes: ClassVar[tuple[str, ...]] = ("postgres", "postgresql")
    config_class: ClassVar[type[ConnectorConfig]] = PostgresConfig

    def __init__(self, config: PostgresConfig) -> None:
        super().__init__(config)
        #: Relations with dense vector columns, by asset name, as of the last scan.
        self._vectors: dict[str, VectorRelation] = {}

    def sample_vectors(self, asset_name: str, size: int, seed: int) -> list[VectorSample]:
        """A reproducible uniform sample of each dense vector column of a scanned table."""
        rel = self._vectors.get(asset_name)
        if rel is None:
            return []
        target = parse_target(self.config)
        with self._connect(target) as conn:
            try:
                with conn.transaction():
                    conn.execute(
                        sql.SQL("SET LOCAL lock_timeout = {}").format(
                            f"{self.config.lock_timeout * 1000}ms"
                        )
                    )
                    return sample_relation(conn, rel, size, seed)
            except psycopg.Error as err:
                raise SourceUnavailable(
                    f"cannot sample {asset_name} at {target.shown}: {_first_line(err)}"
                ) from None

    def scan(self, progress: Progress | None = None) -> Scan:
        config = self.config
        target = parse_target(config)

        def step(name: str) -> None:
            if progress is not None:
                progress(STEPS.index(name), len(STEPS), name)

        step("connecting")
        with self._connect(target) as conn:
            target = reached(target, conn, config.sockets)
            try:
                snapshot, warnings, covered = self._read(conn, target, step)
            except psycopg.errors.LockNotAvailable:
                raise SourceUnavailable(
                    f"cannot scan {target.shown}: a table or view is locked by another session"
                    f" (waited {config.lock_timeout} s); try again once it is released"
                ) from None
            except psycopg.errors.InsufficientPrivilege as err:
                raise SourceUnavailable(
                    f"cannot scan {target.shown}: permission denied: {_first_line(err)}"
                ) from None
            except psycopg.OperationalError as err:
                raise SourceUnavailable(f"cannot scan {target.shown}: {_first_line(err)}") from None
        step("specs")
        specs, more = build_specs(snapshot)
        self._vectors = vector_relations(snapshot)
        if progress is not None:
            progress(len(STEPS), len(STEPS), "done")
        return Scan(
            specs=specs,
            scopes=[Scope(target.namespace, covered, SCOPE_KINDS)],
            origin=f"scan {target.namespace}/{snapshot.database}",
            warnings=warnings + more,
        )

    @contextmanager
    def _connect(self, target: Target) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        config = self.config
        secret = config.password.get_secret_value() if config.password else None
        params: dict[str, Any] = dict(target.params)
        if secret is not None:
            params["password"] = secret
        try:
            conn = psycopg.connect(row_factory=dict_row, autocommit=False, **params)
        except psycopg.Error as err:
            raise SourceUnavailable(describe_connect_error(err, target, secret)) from None
        try:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            yield conn
        finally:
            conn.close()

    def _read(
        self,
        conn: psycopg.Connection[dict[str, Any]],
        target: Target,
        step: Callable[[str], None],
    ) -> tuple[Snapshot, list[str], tuple[str, ...]]:
        config = self.config
        warnings: list[str] = []
        with conn.transaction():
            # Types and expressions print relative to the search path: pin it.
            conn.execute(sql.SQL("SET LOCAL search_path TO public"))
            conn.execute(
                sql.SQL("SET LOCAL lock_timeout = {}").format(f"{config.lock_timeout * 1000}ms")
            )
            info = conn.execute(queries.DATABASE).fetchone()
            assert info is not None
            database: str = info["database"]
            vector_types = {r["oid"]: r["typname"] for r in conn.execute(queries.VECTOR_TYPES)}
            step("schemas")
            schemas = conn.execute(queries.SCHEMAS).fetchall()
            by_name = {row["name"]: row for row in schemas}
            wanted = list(config.schemas) or list(by_name)
            oids: list[int] = []
            covered: list[str] = []
            for name in wanted:
                row = by_name.get(name)
                if row is None:
                    warnings.append(
                        f"schema {name!r} does not exist in database {database!r}; "
                        "its assets in the catalog are marked deleted"
                    )
                    covered.append(f"{database}.{name}.")
                elif not row["usable"]:
                    warnings.append(
                        f"permission denied for schema {name!r} (no USAGE privilege): skipped"
                    )
                else:
                    oids.append(row["oid"])
                    covered.append(f"{database}.{name}.")
            if not config.schemas and len(oids) == len(schemas):
                # Every schema was read: the whole database is covered, so the
                # assets of schemas dropped since the last scan are deleted too.
                covered = [f"{database}."]
            args: dict[str, Any] = {"schemas": oids, "relkinds": queries.RELKINDS}
            step("relations")
            relations = conn.execute(queries.RELATIONS, args).fetchall()
            step("columns")
            columns = conn.execute(queries.COLUMNS, args).fetchall()
            step("keys")
            constraints = conn.execute(queries.CONSTRAINTS, args).fetchall()
            step("indexes")
            indexes = conn.execute(queries.INDEXES, args).fetchall()
            step("views")
            views = [r["oid"] for r in relations if r["relkind"] in ("v", "m")]
            view_args = {"views": views, "relkinds": queries.RELKINDS}
            dependencies = conn.execute(queries.VIEW_DEPENDENCIES, view_args).fetchall()
            view_queries = conn.execute(queries.VIEW_QUERIES, view_args).fetchall()
            step("contents")
            matches, groups = read_contents(
                conn,
                database,
                relations,
                columns,
                vector_types,
                [*config.layouts, *BUILT_IN],
                warnings,
            )
        snapshot = Snapshot(
            namespace=target.namespace,
            database=database,
            relations=relations,
            columns=columns,
            constraints=constraints,
            indexes=indexes,
            view_dependencies=dependencies,
            view_queries=view_queries,
            vector_types=vector_types,
            matches=matches,
            groups=groups,
        )
        return snapshot, warnings, tuple(covered)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
