"""The store: engine, schema migrations and transactions for SQLite and PostgreSQL.

SQLite is opened in WAL mode with a busy timeout and foreign keys on; write
transactions start with `BEGIN IMMEDIATE` so that two writers queue instead of
deadlocking on a lock upgrade. The same code runs on PostgreSQL by URL.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from functools import cached_property
from itertools import chain
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    Engine,
    any_,
    bindparam,
    create_engine,
    event,
    text,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.types import UserDefinedType
from sqlmodel import Session

from catalog.errors import CatalogUnavailable, InvalidInput
from catalog.identity import redact_url
from catalog.secrets import scrub

log = logging.getLogger(__name__)

DEFAULT_CATALOG_URL = "sqlite:///steward.db"
#: A catalog given as a bare path with one of these suffixes is a SQLite file.
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Values in one `IN (...)` list or lookup: well under SQLite's and PostgreSQL's
#: parameter limits. The one number every chunked read and write uses.
CHUNK = 900
#: The PostgreSQL advisory lock that writers of what events and scans both update take
#: in turn, for their transaction: a chunk's projection, a scan's apply, a rebuild, a
#: gc. Each reads what it updates (runs, observations, current versions); two at once
#: could each write back their own and lose the other's.
PROJECTION_LOCK = 7263540912
#: Seconds between two background checkpoints of a SQLite catalog, at least.
CHECKPOINT_EVERY = 1.0
#: The same while a file is ingested (`Ingester.ingest_path`): the write-ahead log the
#: thread has not copied yet is copied when the catalog is closed, alone at the end of
#: the ingest; at most a second's writes were 0.4 s of a heavy ingest's 5.
BULK_CHECKPOINT_EVERY = 0.25


def parse_catalog_url(url: str) -> URL:
    """A SQLAlchemy URL for a catalog URL; `postgres://` means psycopg 3.

    A path (no `scheme://`) to an existing file, or one ending in `.db`,
    `.sqlite` or `.sqlite3`, is a SQLite catalog: `--catalog steward-demo/steward.db`;
    so is a directory holding a `steward.db`.
    """
    text_url = url.strip()
    if "://" not in text_url and text_url:
        path = Path(text_url).expanduser()
        if path.is_dir() and (path / "steward.db").is_file():  # the demo's directory, say
            path = path / "steward.db"
        if path.is_file() or path.suffix.lower() in SQLITE_SUFFIXES:
            return make_url(f"sqlite:///{path.resolve()}")
    for prefix in ("postgres://", "postgresql://"):
        if text_url.startswith(prefix):
            text_url = "postgresql+psycopg://" + text_url[len(prefix) :]
    try:
        parsed = make_url(text_url)
    except (ArgumentError, ValueError) as err:
        raise InvalidInput(
            f"catalog URL {redact_url(url)!r} is not a database URL",
            hint="use sqlite:///PATH, a PATH ending in .db, or postgresql://USER@HOST:PORT/DB",
        ) from err
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidInput(
            f"catalog URL {redact_url(url)!r}: unsupported database {parsed.get_backend_name()!r}",
            hint="use sqlite:///PATH, a PATH ending in .db, or postgresql://USER@HOST:PORT/DB",
        )
    return parsed


def _describe(err: BaseException, url: str = "") -> str:
    """The first line of a driver error about `url`, without any credentials in it
    (nor a piece of the password the driver took for the host)."""
    orig = getattr(err, "orig", None) or err
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    return scrub(lines[0], url) if lines else type(orig).__name__


_WRITE = re.compile(r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)', re.IGNORECASE)


def is_write(err: DBAPIError) -> bool:
    """Whether the statement that failed writes a table."""
    return _WRITE.match(err.statement or "") is not None


def write_failure(err: DBAPIError) -> str:
    """One line on a database error: the table being written and the driver's reason."""
    match = _WRITE.match(err.statement or "")
    what = f"writing {match.group(1)}" if match else "working"
    return f"the catalog failed while {what}: {_describe(err)}"


def json_text(value: Any) -> str:
    """What a JSON column holds: orjson's text, or the standard library's for what
    orjson refuses (an integer over 64 bits, which it then reads back exactly). The
    standard library's took 3% of a heavy file ingest's writing process (some 30,000
    columns), orjson's a tenth of that. A NaN is written as null (the standard
    library wrote `NaN`, which is not JSON: PostgreSQL refused it)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value)


def make_engine(url: str) -> Engine:
    parsed = parse_catalog_url(url)
    shown = redact_url(url)
    # Read by the standard library still: orjson reads an integer over 64 bits as a
    # float, and a definition read back must equal the one written.
    kwargs: dict[str, Any] = {"json_serializer": json_text}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            parent = Path(database).expanduser().resolve().parent
            if not parent.is_dir():
                raise CatalogUnavailable(
                    f"cannot open catalog {shown}: directory {parent} does not exist"
                )
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs["connect_args"] = {"connect_timeout": 10}
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError) as err:
        raise InvalidInput(f"catalog URL {shown!r}: {_describe(err, url)}") from err
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    return engine


def _use_wal(cursor: Any) -> None:
    """Switch the database to WAL mode, waiting while another process holds it.

    SQLite answers "database is locked" at once, without its busy handler,
    when the switch meets another connection's lock: two processes opening a
    new catalog together (two `steward scan` at once). The mode is kept in
    the file, so this waits only while the very first connections race.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # A 64 MiB page cache (the default is 2 MiB): bulk writes touch index
        # pages all over the catalog. Checkpoint the WAL every ~40 MB rather
        # than every 4 MB, so a page rewritten by many chunks is copied once.
        cursor.execute("PRAGMA cache_size = -65536")
        cursor.execute("PRAGMA wal_autocheckpoint = 10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("steward_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def _alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


class Store:
    """The catalog database: opened (and migrated) on first use."""

    def __init__(self, url: str = DEFAULT_CATALOG_URL, *, migrate: bool = True) -> None:
        self.url = url
        self.shown_url = redact_url(url)
        self.engine = make_engine(url)
        self._checkpointer: _Checkpointer | None = None
        #: True when this store created the catalog (it had no schema before).
        self.created = False
        if migrate:
            self.migrate()

    @cached_property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _unavailable(self, err: BaseException) -> CatalogUnavailable:
        described = _describe(err, self.url)
        hint = None
        if "does not exist" in described and "database" in described:
            url = self.engine.url
            hint = (
                f"create it first: createdb -h {url.host or 'localhost'} -p {url.port or 5432}"
                f" -U {url.username or 'postgres'} {url.database}; steward creates its tables"
            )
        return CatalogUnavailable(f"cannot open catalog {self.shown_url}: {described}", hint=hint)

    def current_revision(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        except DBAPIError as err:
            raise self._unavailable(err) from err

    def migrate(self) -> None:
        """Bring the catalog's schema to the newest migration (creating it if new)."""
        head = head_revision()
        current = self.current_revision()
        if current == head:
            return
        self.created = current is None
        try:
            with self.write() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(7263540911)"))
                if MigrationContext.configure(conn).get_current_revision() != head:
                    command.upgrade(_alembic_config(conn), "head")
        except DBAPIError as err:
            raise self._unavailable(err) from err

    def change_stamp(self) -> tuple[Any, ...]:
        """A value that changes whenever the catalog does (rows added, removed or
        updated in any table): what a cache of something rendered from it keys on."""
        from sqlalchemy import func, select
        from sqlmodel import SQLModel

        parts: list[Any] = []
        try:
            with self.engine.connect() as conn:
                for table in SQLModel.metadata.sorted_tables:
                    columns: list[Any] = [func.count()]
                    for name in ("id", "updated_at", "last_seen", "resolved_at"):
                        if name in table.c:
                            columns.append(func.max(table.c[name]))
                    parts.extend(conn.execute(select(*columns).select_from(table)).one())
        except DBAPIError as err:
            raise self._unavailable(err) from err
        return tuple(parts)

    @contextmanager
    def write(self, *, checked: bool = True, snapshot: bool = False) -> Iterator[Connection]:
        """One write transaction: committed when the block ends, rolled back on error.

        `checked=False` is for bulk writers whose rows only reference ids read
        or created in the same transaction (the OpenLineage ingester): SQLite
        then skips its per-row foreign-key lookups, which cost a tenth of an
        ingest. PostgreSQL always checks.

        `snapshot=True` makes every read of the transaction see one snapshot
        on PostgreSQL (REPEATABLE READ), for writers that compute from several
        reads and retry on a conflict: under READ COMMITTED a commit landing
        between two reads mixes two states of the catalog. SQLite transactions
        see one state already. Such a writer (a scan's apply) also holds
        `PROJECTION_LOCK`, so that it never runs beside an ingest's chunk.
        """
        engine = self.engine.execution_options(steward_write=True)
        if snapshot and self.dialect == "postgresql":
            engine = engine.execution_options(isolation_level="REPEATABLE READ")
            with engine.connect() as conn:
                # `PROJECTION_LOCK` for the session, taken before the transaction's
                # snapshot: a lock taken inside it would leave the snapshot older than
                # what the holder committed, and every write conflict with it.
                conn.exec_driver_sql("SELECT pg_advisory_lock(%s)", (PROJECTION_LOCK,))
                conn.commit()
                try:
                    with conn.begin():
                        yield conn
                finally:
                    # A lost connection, or one SQLAlchemy closed (interrupted), has
                    # released it; the unlock must not raise over the error that closed it.
                    if not conn.invalidated:
                        with suppress(DBAPIError):
                            conn.exec_driver_sql(
                                "SELECT pg_advisory_unlock(%s)", (PROJECTION_LOCK,)
                            )
                            conn.commit()
            return
        if checked or self.dialect != "sqlite":
            with engine.begin() as conn:
                yield conn
            return
        with engine.connect() as conn:
            driver: Any = conn.connection.driver_connection
            driver.execute("PRAGMA foreign_keys = OFF")  # only outside a transaction
            try:
                with conn.begin():
                    yield conn
            finally:
                # Not on a connection SQLAlchemy has closed (it closes one interrupted by
                # Ctrl-C, say): the error that closed it is what the caller must see. The
                # PRAGMA's own ("closed database"), raised over it, made an interrupted
                # ingest take its chunk for a bad one and carry on.
                if not conn.invalidated:
                    driver.execute("PRAGMA foreign_keys = ON")

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads, each statement seeing what is committed when it starts.

        That is what PostgreSQL's READ COMMITTED gives a transaction too, so on
        PostgreSQL the connection is in autocommit: a request's reads then cost no
        BEGIN and no ROLLBACK, two round trips to the server. On SQLite a
        transaction costs no round trip and makes the reads see one state: kept.
        """
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @contextmanager
    def session(self, *, reading: bool = False) -> Iterator[Session]:
        """A read session; `reading=True`: on a connection of `reading`."""
        try:
            if reading:
                with self.reading() as conn, Session(conn) as session:
                    yield session
                return
            with Session(self.engine) as session:
                yield session
        except DBAPIError as err:
            if isinstance(err.orig, Exception) and "connect" in type(err.orig).__name__.lower():
                raise self._unavailable(err) from err
            raise

    def emptiness(self) -> str | None:
        """Why the catalog has nothing to show ("is new ...", "holds no assets"), or None."""
        if self.created:
            return "is new: it was created just now and holds nothing yet"
        with self.engine.connect() as conn:
            if conn.execute(text("SELECT 1 FROM asset LIMIT 1")).first() is None:
                return "holds no assets yet"
        return None

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        self.engine.dispose()

    def checkpoint_soon(self, within: float = CHECKPOINT_EVERY) -> None:
        """After a bulk commit: on SQLite, ask a thread of the store's own to copy the
        write-ahead log into the database (a passive checkpoint, which never
        blocks a writer) `within` seconds. The copying then runs on another core
        while the writer goes on, instead of inside a later commit. Elsewhere it
        does nothing."""
        if self.dialect != "sqlite":
            return
        if self._checkpointer is None:
            self._checkpointer = _Checkpointer(self.engine)
        self._checkpointer.request(within)


class _Checkpointer:
    """A thread with its own connection that runs `PRAGMA wal_checkpoint(PASSIVE)`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.wanted = threading.Event()
        self.closing = threading.Event()
        #: Seconds from a request to its checkpoint (the latest request's).
        self.within = CHECKPOINT_EVERY
        self.thread = threading.Thread(target=self._run, name="steward-checkpoint", daemon=True)
        self.thread.start()

    def request(self, within: float) -> None:
        self.within = within
        self.wanted.set()

    def close(self) -> None:
        self.closing.set()
        self.wanted.set()
        self.thread.join(timeout=60)

    def _run(self) -> None:
        raw = self.engine.raw_connection()
        try:
            while True:
                self.wanted.wait()
                # At most one checkpoint a second (a quarter while a file is ingested):
                # small commits (a server's single events) would otherwise each cost a
                # checkpoint and its fsync. Closing ends the wait at once (the last
                # connection's close checkpoints anyway): it took a quarter of a second
                # at the end of a file's ingest.
                if self.closing.wait(self.within):
                    return
                self.wanted.clear()
                if self.closing.is_set():  # closed just before the clear, which undid its set
                    return
                try:
                    raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
                except Exception:  # a busy or closed database: the next commit checkpoints
                    log.debug("background checkpoint failed", exc_info=True)
        finally:
            raw.close()


def id_batches(ids: Iterable[int]) -> list[list[int]]:
    """Ids sorted and cut into batches small enough for one `IN (...)` on either dialect."""
    ordered = sorted(set(ids))
    return [ordered[i : i + CHUNK] for i in range(0, len(ordered), CHUNK)]


class IdArray(str):
    """Ids as a PostgreSQL array literal (`{1,2,3}`), passed as an `int8[]` parameter.

    The driver adapts a list an element at a time (about a second per million ids)
    and a string at once; typed as an array, not as text cast in the query, the
    parameter is a constant to the planner, which then knows how many ids there are
    (cast from text, it guessed, and chose plans hundreds of times slower).
    """


@functools.cache
def _id_array_dumper() -> type:
    """psycopg's dumper of an `IdArray`: its text, typed `int8[]` (made once psycopg is
    loaded: only a PostgreSQL catalog needs it)."""
    import psycopg
    from psycopg.adapt import Dumper

    class IdArrayDumper(Dumper):
        oid = psycopg.postgres.types["int8"].array_oid

        def dump(self, obj: Any) -> bytes:
            return str(obj).encode()

    return IdArrayDumper


def _dump_id_arrays(conn: Connection) -> None:
    """Teach this connection's psycopg to pass an `IdArray` as `int8[]`."""
    adapters = conn.connection.driver_connection.adapters  # type: ignore[union-attr]
    adapters.register_dumper(IdArray, _id_array_dumper())


class _IdArrayType(UserDefinedType[str]):
    """An `IdArray` parameter as it is (SQLAlchemy's ARRAY would make a list of its
    characters), typed by its dumper."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "BIGINT[]"

    def bind_processor(self, dialect: Any) -> None:
        return None


def among(conn: Connection, column: Any, ids: Iterable[int]) -> list[Any]:
    """Conditions that `column` is one of `ids`, a query each: on PostgreSQL one
    `= ANY(array)` with the ids as one parameter (an `IN` of thousands of
    parameters takes longer to compile than to run), elsewhere `IN` batches."""
    if conn.dialect.name == "postgresql":
        ordered = sorted(set(map(int, ids)))
        if not ordered:
            return []
        _dump_id_arrays(conn)
        literal = IdArray("{" + ",".join(map(str, ordered)) + "}")
        return [column == any_(bindparam(None, literal, type_=_IdArrayType()))]
    return [column.in_(batch) for batch in id_batches(ids)]


def rows_among(
    conn: Connection, query: Any, column: Any, ids: Collection[int] | None
) -> Iterable[Any]:
    """The rows of `query`: all of them, or (`ids` given) those whose `column` is one of
    `ids` (`among`)."""
    if ids is None:
        return _fetched(conn.execute(query))
    return (
        r for where in among(conn, column, ids) for r in _fetched(conn.execute(query.where(where)))
    )


def plain_rows(
    conn: Connection, query: Any, column: Any, ids: Collection[int]
) -> Iterator[tuple[Any, ...]]:
    """`rows_among`'s rows as the driver gives them: plain tuples, no SQLAlchemy row
    made and no type processing (a SQLite boolean is 0 or 1), for walks over a
    million rows."""
    for where in among(conn, column, ids):
        result = conn.execute(query.where(where))
        try:
            yield from _fetched(result.cursor)
        finally:
            result.close()


def _fetched(result: Any, size: int = 10_000) -> Iterator[Any]:
    """A result's rows, fetched `size` at a time (a row at a time costs the driver
    about as much as making the row)."""
    while rows := result.fetchmany(size):
        yield from rows


def update_by_id(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """One executemany UPDATE: each row has `id` and the new values of the same columns."""
    if not rows:
        return
    columns = [c for c in rows[0] if c != "id"]
    statement = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values({c: bindparam(f"b_{c}") for c in columns})
    )
    conn.execute(statement, [{f"b_{k}": v for k, v in row.items()} for row in rows])


def db_time(conn: Connection, value: datetime) -> Any:
    """A timestamp as the catalog stores it (naive UTC; SQLite: SQLAlchemy's text form)."""
    naive = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if conn.dialect.name == "sqlite":
        return naive.isoformat(" ", "microseconds")
    return naive


def insert_rows(
    conn: Connection,
    table: str,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    json_columns: frozenset[str] = frozenset(),
) -> None:
    """`executemany` straight to the driver: no per-value type processing.

    For the bulk of an apply (field rows) and the hot tables of the ingester,
    where SQLAlchemy's per-row parameter processing costs more than the insert.
    Values must be ready for the driver: JSON as text, timestamps naive UTC.
    """
    if not rows:
        return
    postgres = conn.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    names = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join(
        f"CAST({mark} AS JSON)" if postgres and c in json_columns else mark for c in columns
    )
    conn.exec_driver_sql(f'INSERT INTO "{table}" ({names}) VALUES ({values})', rows)


def update_rows(
    conn: Connection, table: str, columns: dict[str, bool], rows: list[tuple[Any, ...]]
) -> None:
    """`executemany` of an UPDATE by id straight to the driver. `columns` are those set,
    each with whether it is JSON; each row is their new values, then the id. Values
    must be ready for the driver, as for `insert_rows`."""
    if not rows:
        return
    postgres = conn.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    values = ", ".join(
        f'"{c}" = CAST({mark} AS JSON)' if postgres and json else f'"{c}" = {mark}'
        for c, json in columns.items()
    )
    conn.exec_driver_sql(f'UPDATE "{table}" SET {values} WHERE id = {mark}', rows)


def insert_returning(
    conn: Connection,
    table: str,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    returning: tuple[str, ...] = ("id",),
    json_columns: frozenset[str] = frozenset(),
    conflict: str | None = None,
) -> list[Any]:
    """Insert rows straight to the driver; the `returning` columns of each, in no set
    order (match them by a column returned).

    Values must be ready for the driver, as for `insert_rows`. The same SQL on
    SQLite (3.35 and newer) and PostgreSQL; rows go in multi-row `VALUES` of
    `CHUNK` parameters or fewer. With `conflict`, the `ON CONFLICT` target (e.g.
    `(digest) WHERE status = 'accepted'` for a partial unique index), the rows that
    conflict with one already committed (or being committed by another transaction,
    which this waits for) are left out, and so are their `returning` values.
    """
    if not rows:
        return []
    postgres = conn.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    names = ", ".join(f'"{c}"' for c in columns)
    one = ", ".join(
        f"CAST({mark} AS JSON)" if postgres and c in json_columns else mark for c in columns
    )
    per_statement = max(1, CHUNK // len(columns))
    on_conflict = f" ON CONFLICT {conflict} DO NOTHING" if conflict is not None else ""
    inserted: list[Any] = []
    for start in range(0, len(rows), per_statement):
        part = rows[start : start + per_statement]
        values = ", ".join(f"({one})" for _ in part)
        statement = (
            f'INSERT INTO "{table}" ({names}) VALUES {values}'
            f"{on_conflict} RETURNING {', '.join(returning)}"
        )
        params = tuple(chain.from_iterable(part))
        inserted.extend(conn.exec_driver_sql(statement, params).all())
    return inserted


def take_projection_lock(conn: Connection) -> None:
    """Wait for `PROJECTION_LOCK`, held until `conn`'s transaction ends (PostgreSQL only:
    SQLite writers queue on `BEGIN IMMEDIATE` already)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PROJECTION_LOCK})
