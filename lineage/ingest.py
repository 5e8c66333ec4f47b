"""OpenLineage ingestion: the raw log, deduplication and the projections, in chunks.

Every event received is written to `raw_event` (valid or not, with its
status, error and warnings) in the same transaction as its projection, so
nothing a producer sent is lost and `rebuild` can replay the log. An event
whose canonical JSON digest was accepted before is a duplicate: it is logged
and changes nothing else. The server and `steward ingest` both write here.

Any number of servers and ingests may share one catalog. A chunk first
claims its events: it inserts their raw rows as `accepted` with `ON
CONFLICT DO NOTHING` against the unique index on accepted digests, and
projects only the events it claimed; the others are duplicates. A claim
held by another transaction makes this one wait for it to commit (then it
is a duplicate here) or roll back (then it is ours). On PostgreSQL the
projections of chunks are also taken in turn (a transaction-level advisory
lock): a chunk reads the state it updates (runs, jobs' inputs and outputs,
current versions), and two chunks reading it at once would each write back
their own.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import io
import json
import logging
import multiprocessing
import os
import pickle
import random
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from catalog.apply import CONFLICT_RETRIES, is_conflict
from catalog.db import (
    BULK_CHECKPOINT_EVERY,
    CHECKPOINT_EVERY,
    Store,
    insert_returning,
    insert_rows,
    take_projection_lock,
    update_by_id,
    write_failure,
)
from catalog.errors import CatalogUnavailable, InvalidInput
from catalog.models import (
    RawEvent,
    Run,
    RunDataset,
    pack_body,
    utcnow,
)
from catalog.secrets import mask_text, mask_value, may_hold_secrets
from catalog.versioning import sha256_held
from catalog.writes import forget_projection
from lineage.chunk import ORIGIN, chunks
from lineage.collector import cycle_collection_paused
from lineage.openlineage import (
    MAX_DATASETS,
    DecodeFailed,
    EventRejected,
    ParsedEvent,
    digest_of,
    loads,
    parse_event,
    split_documents,
)
from lineage.project import Projector
from lineage.refpickle import RefReceiver, RefSender
from lineage.rows import RAW_W, db_time, dumps

log = logging.getLogger(__name__)

RAW = RawEvent.__table__  # type: ignore[attr-defined]
RAW_COLUMNS = ("digest", "received_at", "body", "status", "error", "warnings", "source")
#: The `ON CONFLICT` target of a claim: the unique index on accepted digests.
_CLAIM = "(digest) WHERE status = 'accepted'"
CHUNK_SIZE = 10000
#: Characters of events (as received) a chunk holds at most, by default: what bounds
#: the memory of an ingest, whatever the events weigh (a chunk's decoded events take
#: several times their text; the reading process holds the next one meanwhile).
CHUNK_BYTES = 4 * 1024 * 1024
#: A file's first chunk is this part of a chunk, the next twice as large, and so on:
#: the writer waits for the first one alone, while the reading process parses it.
#: Its last chunks are smaller too, down to that part: once less than two chunks are
#: left of the file (about: its size against the characters read), each takes half of
#: what is left. The writer projects the last chunk alone, once the reader is done: a
#: whole chunk was 0.07 to 0.23 s alone at the end of a heavy ingest of 2.5 to 2.8.
FIRST_CHUNK_PART = 16
#: Bytes the projection caches of one ingester may hold, by default.
CACHE_SIZE = 64 * 1024 * 1024
#: The largest document read from a file or stdin (decompressed), by default.
MAX_DOCUMENT = 256 * 1024 * 1024
LOCK_RETRIES = 5
#: Files read from a directory (a file named on the command line is always read).
EVENT_SUFFIXES = frozenset({".json", ".jsonl", ".ndjson", ".log", ".gz"})

#: (raw text, decoded value or DecodeFailed, source label)
Document = tuple[str, Any, str | None]


@dataclass
class Result:
    """What became of one event."""

    status: str  # accepted | duplicate | rejected
    digest: str
    error: str | None = None
    field: str | None = None
    http_status: int = 201
    warnings: list[str] = dc_field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "digest": self.digest}
        if self.error is not None:
            out["error"] = self.error
            out["field"] = self.field
        out["warnings"] = self.warnings
        return out


@dataclass
class Summary:
    """Counts over many events, with the first reasons for rejection."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    warnings: int = 0
    reasons: list[str] = dc_field(default_factory=list)
    #: Rejected not for what they say but because the catalog failed to write them.
    failed: int = 0
    first_failure: str | None = None

    def add(self, result: Result, source: str | None = None) -> None:
        if result.status == "accepted":
            self.accepted += 1
        elif result.status == "duplicate":
            self.duplicates += 1
        else:
            self.rejected += 1
            if result.http_status >= 500:
                self.failed += 1
                self.first_failure = self.first_failure or result.error
            if len(self.reasons) < 5:
                self.reasons.append(f"{source}: {result.error}" if source else str(result.error))
        self.warnings += bool(result.warnings)

    @property
    def total(self) -> int:
        return self.accepted + self.duplicates + self.rejected

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "with_warnings": self.warnings,
            "first_rejections": self.reasons,
        }


def masked(raw: str, value: Any) -> tuple[str, Any]:
    """A document as it is stored and parsed: its text and value with credentials masked.

    The decoded value is masked (every string, every facet: JSON escapes are
    decoded by then), and the text is the value written again when anything
    was masked; a body that is not JSON has its text masked instead.
    """
    if isinstance(value, DecodeFailed):
        text = mask_text(raw)
        # only in a body that is not JSON; PostgreSQL text cannot hold it
        return text.replace("\x00", "\ufffd") if "\x00" in text else text, value
    if not may_hold_secrets(raw):
        return raw, value
    try:
        value_masked = mask_value(value)
    except RecursionError:  # too deep to be an event: parse_event refuses it
        return mask_text(raw), value
    if value_masked is value and mask_text(raw) == raw:
        return raw, value
    return dumps(value_masked), value_masked


def evaluate(
    raw: str, value: Any, max_datasets: int = MAX_DATASETS
) -> tuple[ParsedEvent | None, Result]:
    """Parse one document (already `masked`): the event (if valid) and its provisional result."""
    if isinstance(value, DecodeFailed):
        digest = sha256_held(raw.encode("utf-8", "replace"))
        return None, Result("rejected", digest, value.reason, "(body)", 400)
    try:
        parsed = parse_event(value, max_datasets=max_datasets)
    except EventRejected as err:
        try:
            digest = digest_of(value)
        except EventRejected:  # nested too deeply to be written: the text's digest
            digest = sha256_held(raw.encode("utf-8", "replace"))
        return None, Result("rejected", digest, mask_text(str(err)), err.field, err.status)
    return parsed, Result("accepted", parsed.digest, warnings=parsed.warnings)


@dataclass
class _Item:
    #: The body as stored: with credentials masked (`masked`); on SQLite, packed
    #: (`catalog.models.pack_body`) where it was parsed, by the reading process of a file.
    raw: str | bytes
    source: str | None
    event: ParsedEvent | None
    result: Result
    raw_id: int | None = None
    #: A stored body masked again by `rebuild` (it was written by an older release).
    rewritten: bool = False
    #: Its raw row was inserted in the current transaction (`_claim`).
    claimed: bool = False


class Ingester:
    """Writes events to one catalog; keeps caches across chunks (one per process)."""

    def __init__(
        self,
        store: Store,
        chunk_size: int = CHUNK_SIZE,
        *,
        chunk_bytes: int = CHUNK_BYTES,
        cache_size: int = CACHE_SIZE,
        max_datasets: int = MAX_DATASETS,
        max_document: int = MAX_DOCUMENT,
    ) -> None:
        self.store = store
        self.chunk_size = chunk_size
        self.chunk_bytes = chunk_bytes
        self.cache_size = cache_size
        self.max_datasets = max_datasets
        self.max_document = max_document
        self.projector = Projector(cache_size)
        #: Bytes of SQLite's page cache a chunk's connection keeps (None: the store's).
        self.page_cache: int | None = None
        #: Seconds from a chunk's commit to the checkpoint it asks for (SQLite).
        self.checkpoint_within = CHECKPOINT_EVERY
        #: Bodies are packed where they are parsed when the catalog stores them packed.
        self.pack = store.dialect == "sqlite"

    def ingest(self, documents: Iterable[Document]) -> list[Result]:
        """Ingest documents (a request's, say); one result each, in order."""
        results: list[Result] = []
        self.ingest_stream(documents, lambda r, _s: results.append(r))
        return results

    def ingest_stream(
        self,
        documents: Iterable[Document],
        on_result: Callable[[Result, str | None], None] | None = None,
    ) -> Summary:
        """Ingest documents in chunks, one transaction each; returns the summary.

        (Reading the next chunk in a second thread meanwhile was tried and is
        slower: the driver lets go of the interpreter lock for every row it
        writes, and each time waits for the reading thread to give it back.)
        """
        with cycle_collection_paused():
            return self._ingest_chunks(
                _evaluated(
                    documents,
                    self.chunk_size,
                    self.max_datasets,
                    self.chunk_bytes,
                    pack=self.pack,
                ),
                on_result,
            )

    def ingest_path(
        self,
        path: str,
        stdin: IO[bytes] | None = None,
        on_result: Callable[[Result, str | None], None] | None = None,
    ) -> Summary:
        """Ingest the events of a file or directory (`-`: stdin); returns the summary.

        On Linux the files are read and parsed by a second process (forked)
        while this one writes: parsing is a third of the work, and a thread
        could not run beside the writer (see `ingest_stream`). Chunks come
        back pickled; every dataset an event names is pickled once a chunk.
        """
        if path != "-":
            refuse_what_is_not_json(Path(path))
        known = self.projector.known
        known.enabled = True  # this process writes alone while it reads the file
        # SQLite's page cache (64 MiB a connection elsewhere) within the cache budget too:
        # a file's peak memory is the chunks', the caches' and this, whatever its size.
        self.page_cache = self.cache_size // 4
        self.checkpoint_within = BULK_CHECKPOINT_EVERY
        try:
            if path == "-" or not sys.platform.startswith("linux"):
                return self.ingest_stream(read_path(path, stdin, self.max_document), on_result)
            with cycle_collection_paused():
                chunks = _read_in_a_process(
                    path,
                    self.chunk_size,
                    self.max_datasets,
                    self.max_document,
                    self.chunk_bytes,
                    pack=self.pack,
                )
                try:
                    return self._ingest_chunks(chunks, on_result)
                finally:
                    # Stopped by an error (or Ctrl-C): the reading process is stopped now,
                    # not when the generator is collected (its traceback holds it).
                    chunks.close()
        finally:
            known.enabled = False
            known.clear()
            self.page_cache = None
            self.checkpoint_within = CHECKPOINT_EVERY

    def _ingest_chunks(
        self,
        chunks: Iterable[list[_Item]],
        on_result: Callable[[Result, str | None], None] | None,
    ) -> Summary:
        summary = Summary()
        for batch in chunks:
            self._write(batch)
            for item in batch:
                summary.add(item.result, item.source)
                if on_result is not None:
                    on_result(item.result, item.source)
            # Let the chunk go before the next is read: two at once were the peak.
            batch.clear()
        return summary

    def _write(self, batch: list[_Item], alone: bool = False) -> None:
        for attempt in range(CONFLICT_RETRIES):
            last = attempt == CONFLICT_RETRIES - 1
            try:
                # Every id a chunk writes was read or created in its own transaction.
                with self.store.write(checked=False) as conn:
                    if self.page_cache is not None and conn.dialect.name == "sqlite":
                        conn.exec_driver_sql(f"PRAGMA cache_size = -{self.page_cache // 1024}")
                    on_commit = self._process(conn, batch)
                on_commit()
                self.store.checkpoint_soon(self.checkpoint_within)
                return
            except OperationalError as err:
                self._reset(batch)
                if is_conflict(self.store, err) and not last:  # a deadlock with a scan, say
                    log.info("write conflict with another writer; retrying the chunk")
                    time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
                    continue
                if "locked" not in str(err.orig) or attempt >= LOCK_RETRIES - 1:
                    raise CatalogUnavailable(f"catalog is busy: {err.orig}") from err
                time.sleep(0.2 * (attempt + 1))
            except IntegrityError:
                # Another writer (a scan) created the same asset first: the next
                # attempt reads it and goes on from there.
                self._reset(batch)
                if last:
                    self._one_by_one(batch, alone)
                    return
                log.info("write conflict with another writer; retrying the chunk")
            except CatalogUnavailable:
                raise
            except Exception:
                self._reset(batch)
                self._one_by_one(batch, alone)
                return

    def _one_by_one(self, batch: list[_Item], alone: bool) -> None:
        """One event breaks the chunk: write them one by one to find it."""
        if alone:
            raise
        if len(batch) > 1:
            log.warning("chunk of %d events failed; writing them one by one", len(batch))
            log.debug("the chunk's error", exc_info=True)
        for item in batch:
            self._write_alone(item)

    def _write_alone(self, item: _Item) -> None:
        try:
            self._write([item], alone=True)
        except CatalogUnavailable:
            raise
        except Exception as err:
            why = write_failure(err) if isinstance(err, DBAPIError) else type(err).__name__
            log.error("event %s could not be projected: %s", item.result.digest, why)
            log.debug("the event's error", exc_info=True)
            item.event = None
            item.result = Result(
                "rejected",
                item.result.digest,
                f"not projected (internal error: {why}); kept raw for --rebuild",
                None,
                500,
                item.result.warnings,
            )
            with self.store.write() as conn:
                self._log_raw(conn, [item])

    @staticmethod
    def _reset(batch: list[_Item]) -> None:
        """The batch as before a rolled-back attempt: nothing claimed, nothing a duplicate."""
        for item in batch:
            if item.claimed:  # its row was rolled back
                item.claimed = False
                item.raw_id = None
            if item.result.status == "duplicate":
                item.result.status = "accepted"

    def _process(
        self, conn: Connection, batch: list[_Item], replay: bool = False
    ) -> Callable[[], None]:
        take_projection_lock(conn)
        begun = self.projector.known.begin(conn)  # before this transaction writes anything
        if replay:
            fresh = self._replayed([i for i in batch if i.event is not None])
        else:
            fresh = self._claim(conn, batch)
        events = [i.event for i in fresh if i.event is not None]
        warned = [len(i.result.warnings) for i in fresh]
        on_commit = self.projector.project(conn, events, begun)
        if replay:
            self._log_raw(conn, batch)
        else:
            # Projecting may add a warning (a run of another job) to a claimed row.
            grown = [i for i, n in zip(fresh, warned, strict=True) if len(i.result.warnings) > n]
            self._log_raw(conn, [i for i in batch if not i.claimed] + grown)
        return on_commit

    def _replayed(self, candidates: list[_Item]) -> list[_Item]:
        """The events of a rebuild that were not accepted earlier in the replay."""
        fresh = []
        for item in candidates:
            if item.result.digest in self._replay_seen:
                item.result.status = "duplicate"
                continue
            self._replay_seen.add(item.result.digest)
            fresh.append(item)
        return fresh

    def _claim(self, conn: Connection, batch: list[_Item]) -> list[_Item]:
        """Insert the batch's raw rows, in order, the valid events' as accepted unless
        their digest already is (the unique index decides, whoever inserted it);
        the items whose accepted row was inserted, to be projected.

        An event whose claim lost is a duplicate, logged after the others.
        """
        seen: set[str] = set()
        for item in batch:
            if item.event is None:
                continue
            if item.result.digest in seen:
                item.result.status = "duplicate"
            seen.add(item.result.digest)
        at = db_time(conn, utcnow())
        if conn.dialect.name == "sqlite":
            ids = _claim_alone(conn, batch, at)
        else:
            won = insert_returning(
                conn,
                "raw_event",
                RAW_COLUMNS,
                [_raw_row(item, at) for item in batch],
                ("id", "digest", "status"),
                frozenset({"warnings"}),
                _CLAIM,
            )
            ids = {row.digest: row.id for row in won if row.status == "accepted"}
        fresh = []
        for item in batch:
            if item.event is None or item.result.status != "accepted":
                item.claimed = True  # its row is written
            elif item.result.digest in ids:
                item.claimed = True
                item.raw_id = ids[item.result.digest]
                fresh.append(item)
            else:
                item.result.status = "duplicate"
        return fresh

    def _log_raw(self, conn: Connection, batch: list[_Item]) -> None:
        """Write the raw rows of `batch`: new ones inserted, the others updated."""
        fresh = [i for i in batch if i.raw_id is None]
        if fresh:
            at = db_time(conn, utcnow())
            insert_rows(
                conn,
                "raw_event",
                RAW_COLUMNS,
                [_raw_row(i, at) for i in fresh],
                frozenset({"warnings"}),
            )
        old = [i for i in batch if i.raw_id is not None]
        if old:
            update_by_id(
                conn,
                RAW_W,
                [
                    {
                        "id": i.raw_id,
                        "digest": i.result.digest,
                        "status": i.result.status,
                        "error": i.result.error,
                        "warnings": dumps(i.result.warnings),
                    }
                    for i in old
                ],
            )
            bodies = [{"id": i.raw_id, "body": i.raw} for i in old if i.rewritten]
            update_by_id(conn, RAW_W, bodies)

    # -- rebuild ------------------------------------------------------------------------

    def rebuild(self, on_result: Callable[[Result, str | None], None] | None = None) -> Summary:
        """Drop the OpenLineage projections and replay the raw log into them, in one transaction.

        Every raw event is parsed again (an event rejected by an older release
        may be accepted now); statuses, errors and warnings are rewritten.
        Assets that events created are kept (their ids may be referenced) but
        reset to unresolved placeholders before the replay.
        """
        summary = Summary()
        self._replay_seen: set[str] = set()
        self.projector = Projector(self.cache_size)
        with self.store.write() as conn:
            take_projection_lock(conn)  # not beside a server's chunk, a scan or a gc
            _refuse_a_collected_log(conn)
            _reset_projections(conn)
            last = 0
            while True:
                rows = conn.execute(
                    select(RAW.c.id, RAW.c.body, RAW.c.source)
                    .where(RAW.c.id > last)
                    .order_by(RAW.c.id)
                    .limit(self.chunk_size)
                ).all()
                if not rows:
                    break
                last = rows[-1].id
                batch = []
                for row in rows:
                    value: Any
                    try:
                        value = loads(row.body)
                    except (json.JSONDecodeError, RecursionError) as err:
                        value = DecodeFailed(f"not valid JSON: {getattr(err, 'msg', err)}")
                    body, value = masked(row.body, value)
                    event, result = evaluate(body, value, self.max_datasets)
                    item = _Item(body, row.source, event, result, raw_id=row.id)
                    item.rewritten = body != row.body
                    batch.append(item)
                self._process(conn, batch, replay=True)
                for item in batch:
                    summary.add(item.result, item.source)
                    if on_result is not None:
                        on_result(item.result, item.source)
        return summary


def _claim_alone(conn: Connection, batch: list[_Item], at: Any) -> dict[str, int]:
    """`_claim`'s insert on SQLite, where a write transaction has the catalog to itself
    (`BEGIN IMMEDIATE`): the accepted digests already there are looked up, the other
    rows inserted in one `executemany` (what the unique index would have let in), and
    their ids worked out: SQLite gives a new row of a table without AUTOINCREMENT one
    more than the largest id, so the rows have the ids after the largest before, in order.
    When the largest id after is not where that puts it (a table whose largest id is
    the largest SQLite allows gets random ones), the ids are read back by digest. The
    same rows as `insert_returning` with `_CLAIM`, at a fraction of its cost: one
    statement, no rows returned through the driver one statement at a time. The lookups
    go straight to the driver: SQLAlchemy's processing of a thousand bound keys cost
    more than them."""
    accepted = [i.result.digest for i in batch if i.event is not None and _accepted(i)]
    taken = set(_accepted_ids(conn, accepted))
    kept = [i for i in batch if not (_accepted(i) and i.result.digest in taken)]
    before = conn.exec_driver_sql(_LARGEST_RAW_ID).scalar_one()
    insert_rows(conn, "raw_event", RAW_COLUMNS, [_raw_row(i, at) for i in kept])
    claimed = [
        (n, i.result.digest) for n, i in enumerate(kept, 1) if i.event is not None and _accepted(i)
    ]
    last = conn.exec_driver_sql(_LARGEST_RAW_ID).scalar_one()
    if last == before + len(kept):
        return {digest: before + n for n, digest in claimed}
    return _accepted_ids(conn, [digest for _, digest in claimed])


_LARGEST_RAW_ID = "SELECT coalesce(max(id), 0) FROM raw_event"


def _accepted_ids(conn: Connection, digests: list[str]) -> dict[str, int]:
    """The ids of the accepted raw rows of `digests` (SQLite), by digest."""
    ids: dict[str, int] = {}
    for part in chunks(digests):
        marks = ", ".join("?" * len(part))
        ids.update(
            (digest, row_id)
            for row_id, digest in conn.exec_driver_sql(
                "SELECT id, digest FROM raw_event"
                f" WHERE status = 'accepted' AND digest IN ({marks})",
                tuple(part),
            )
        )
    return ids


def _accepted(item: _Item) -> bool:
    return item.result.status == "accepted"


def _raw_row(item: _Item, at: Any) -> tuple[Any, ...]:
    """The values of `RAW_COLUMNS` for an item's raw row."""
    result = item.result
    return (
        result.digest,
        at,
        item.raw,
        result.status,
        result.error,
        dumps(result.warnings),
        item.source,
    )


def _evaluated(
    documents: Iterable[Document],
    size: int,
    max_datasets: int = MAX_DATASETS,
    chunk_bytes: int = CHUNK_BYTES,
    pack: bool = False,
    first_bytes: int | None = None,
    total: int | None = None,
) -> Iterator[list[_Item]]:
    """The documents parsed, in chunks of `size` documents or `chunk_bytes` characters;
    with `pack`, each body packed as a SQLite catalog stores it (`pack_body`). With
    `first_bytes`, the first chunk ends there and each next one may hold twice as much,
    up to `chunk_bytes`. With `total` too (about how many characters the documents
    hold, with a line end each), once less than two chunks are left each chunk takes
    half of what is left, down to `first_bytes` (`FIRST_CHUNK_PART`). A `total` told
    too small does no harm: once it is spent, chunks are whole again."""
    batch: list[_Item] = []
    held = 0
    smallest = min(first_bytes or chunk_bytes, chunk_bytes)
    limit = smallest
    left = total
    for raw, value, source in documents:
        body, value = masked(raw, value)  # what is stored and parsed: never credentials
        event, result = evaluate(body, value, max_datasets)
        batch.append(_Item(pack_body(body) if pack else body, source, event, result))
        held += len(body)
        if left is not None:
            left -= len(raw) + 1
        if len(batch) >= size or held >= limit:
            yield batch
            batch = []
            held = 0
            limit = min(2 * limit, chunk_bytes)
            if left is not None and 0 < left < 2 * limit:
                limit = max(smallest, left // 2)
    if batch:
        yield batch


@dataclass
class _End:
    """The reader is done; with the error that ended it, if one did."""

    error: BaseException | None


def _read_in_a_process(
    path: str,
    size: int,
    max_datasets: int,
    max_document: int,
    chunk_bytes: int = CHUNK_BYTES,
    pack: bool = False,
) -> Generator[list[_Item], None, None]:
    """The chunks of `read_path(path)`, parsed by a forked process, in order.

    The reader runs at most a few chunks ahead (`_Received`). Its errors
    (an unreadable file) are raised here, in their place. When this side stops
    early, the reader is stopped; when it dies, its next send fails and it ends.
    """
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    _widen(receiving)
    reader = context.Process(
        target=_reader,
        args=(path, (size, chunk_bytes), max_datasets, max_document, pack, sending, receiving),
        name="steward-read",
        daemon=True,
    )
    reader.start()
    sending.close()
    received = _Received(receiving, AHEAD_BYTES)
    refs = RefReceiver()
    finished = False
    try:
        while True:
            try:
                item = refs.loads(received.recv_bytes())
            except (EOFError, OSError):  # gone between messages, or in the middle of one
                raise CatalogUnavailable(
                    f"{path}: the reading process ended unexpectedly "
                    f"(exit code {reader.exitcode}); nothing after the last chunk was written"
                ) from None
            if isinstance(item, _End):
                finished = True
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        received.stopping.set()
        if not finished and reader.is_alive():
            reader.kill()  # stopped early: nothing more is wanted of it
        reader.join(timeout=5)
        if reader.is_alive():
            reader.kill()
            reader.join()
        # The pipe's other end is closed now (the reader is gone): the thread's read
        # has returned or returns at once, and only then is its connection closed.
        received.thread.join()
        receiving.close()


#: Bytes of pickled chunks the writing process holds received, besides the one it
#: projects and the one its thread is receiving; one chunk is always taken, however
#: large. Into SQLite, bodies packed, a chunk is some 1.5 to 2 MB: four or five fit.
#: A heavy file's first chunks take the writer longer than the reader (new assets
#: and versions), its later ones shorter: with one chunk ahead the reader waited 0.4
#: to 0.6 s of a heavy ingest in the first half and the writer as long in the second;
#: with four, under 0.1 s and about 0.3 s (the first chunk, the last ones), and the
#: ingest took 8% less time. Unpacked (PostgreSQL) a chunk is some 5 MB: one fits, as
#: before; four chunks would have held 20 MB more there at the defaults, and 25 to 45 MB
#: more with `--chunk-size 8MB` (measured).
AHEAD_BYTES = 8 * 1024 * 1024
#: The pipe's capacity asked for (Linux's default is 64 KB; 1 MB is what any process may
#: ask unless `/proc/sys/fs/pipe-max-size` says less). The receiving thread reads a
#: message a pipeful at a time, and each read waits for the interpreter lock, which the
#: writer's own thread lets go every 5 ms: 64 KB at a time, receiving a chunk could take
#: longer than parsing it.
PIPE_BYTES = 1 << 20


def _widen(connection: Any) -> None:
    """The pipe under `connection` given `PIPE_BYTES` of capacity, where Linux allows it."""
    import fcntl  # not on every platform; the reading process runs on Linux only

    with contextlib.suppress(AttributeError, OSError):  # an older kernel; a lower limit
        fcntl.fcntl(connection.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


class _Received:
    """The reading process's messages, received by a thread of their own as they come.

    The pipe holds less than a chunk, so the reader could send a chunk only
    once the writer asked for it, and then had one chunk to parse while the
    writer projected the last: a chunk that took the reader longer (while
    another thread had its core) left the writer, the slower of the two,
    waiting. It waited 0.5 to 1 s of a heavy ingest's 6. Here chunks wait as
    bytes, up to `ahead` bytes of them (`AHEAD_BYTES`), while another is
    received; they are unpickled in order by the writer's own thread (the refs'
    table is read in the order it was written).

    The thread reads until the reader is gone (EOF); its connection is closed
    only after it has ended, never under a read in progress (a descriptor
    closed under a blocked read may be reused by the next file opened).
    """

    def __init__(self, connection: Any, ahead: int) -> None:
        self.connection = connection
        self.ahead = ahead
        self.messages: deque[bytes | BaseException] = deque()
        #: Bytes of the messages waiting.
        self.held = 0
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="steward-receive", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            message: bytes | BaseException
            try:
                message = self.connection.recv_bytes()
            except BaseException as err:  # EOFError once the reader is gone
                message = err
            size = len(message) if isinstance(message, bytes) else 0
            with self.changed:
                # The stop flag is looked at every 0.1 s while the messages do not fit.
                while self.messages and self.held + size > self.ahead:
                    if self.stopping.is_set():
                        return
                    self.changed.wait(0.1)
                self.messages.append(message)
                self.held += size
                self.changed.notify_all()
            if isinstance(message, BaseException):
                return

    def recv_bytes(self) -> bytes:
        """The next message, as `Connection.recv_bytes` gives it (or its error)."""
        with self.changed:
            while not self.messages:
                self.changed.wait()
            message = self.messages.popleft()
            if isinstance(message, bytes):
                self.held -= len(message)
            self.changed.notify_all()
        if isinstance(message, BaseException):
            raise message
        return message


def _reader(
    path: str,
    size: tuple[int, int],
    max_datasets: int,
    max_document: int,
    pack: bool,
    sending: Any,
    receiving: Any,
) -> None:
    """In the forked process: read, parse and send the chunks, then `_End`."""
    # Its copy of the reading end is closed: once the writing process is gone
    # (killed even), the next send fails and this process ends.
    receiving.close()
    gc.disable()  # what it parses holds no cycles; it lives only as long as the file
    try:
        try:
            documents = read_path(path, None, max_document)
            refs = RefSender()
            chunked = _evaluated(
                documents,
                size[0],
                max_datasets,
                size[1],
                pack,
                size[1] // FIRST_CHUNK_PART,
                _plain_size(path),
            )
            for chunk in chunked:
                data = refs.dumps(chunk)
                # The chunk is let go while the writer is still busy with the one before.
                chunk.clear()
                sending.send_bytes(data)
                del data
        except (BrokenPipeError, KeyboardInterrupt):
            return
        except BaseException as err:  # raised again in the writing process
            try:
                sending.send_bytes(pickle.dumps(_End(err)))
            except Exception:
                sending.send_bytes(pickle.dumps(_End(InvalidInput(f"{path}: {err}"))))
            return
        sending.send_bytes(pickle.dumps(_End(None)))
    except BrokenPipeError:
        return
    finally:
        sending.close()


def _plain_size(path: str) -> int | None:
    """The size of a file read as it is (not gzip): about how many characters its events
    hold. None for a gzip file, a directory, stdin, or one that cannot be read."""
    try:
        with open(path, "rb") as raw:
            if raw.read(2) == b"\x1f\x8b":
                return None
            return os.fstat(raw.fileno()).st_size
    except OSError:
        return None


def _refuse_a_collected_log(conn: Connection) -> None:
    """A rebuild drops every projection first: refused when `steward gc` dropped the bodies
    of accepted events, whose projections it could not bring back."""
    from lineage.retention import collected_bodies

    count, newest = collected_bodies(conn)
    if count:
        raise InvalidInput(
            f"the raw log no longer holds {count} accepted events (collected by steward gc, "
            f"received up to {newest}): a rebuild would drop what they projected; "
            "nothing was changed",
            hint="a rebuild needs the whole log; restore the catalog from a backup taken "
            "before the gc to rebuild it",
        )


def _reset_projections(conn: Connection) -> None:
    conn.execute(delete(RunDataset.__table__))  # type: ignore[attr-defined]
    conn.execute(delete(Run.__table__))  # type: ignore[attr-defined]
    forget_projection(conn, ORIGIN)


# -- reading files ----------------------------------------------------------------------


class _Prefixed(io.RawIOBase):
    """A byte stream with `head` (already read from it, to sniff gzip) put back."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head = head
        self.rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _text(raw: IO[bytes]) -> IO[str]:
    """A byte stream as text, gunzipped (streaming) when it starts with gzip's magic."""
    head = raw.read(2)
    stream: IO[bytes] = io.BufferedReader(_Prefixed(head, raw))
    if head == b"\x1f\x8b":
        stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
    return io.TextIOWrapper(stream, encoding="utf-8", errors="replace")


def _too_long(source: str, limit: int) -> InvalidInput:
    return InvalidInput(
        f"{source}: a document (a JSON line, or a whole file holding one JSON value) is "
        f"over {limit} characters after decompression",
        hint="split it into JSON lines, or raise --max-document",
    )


def _documents(stream: IO[str], source: str, limit: int = MAX_DOCUMENT) -> Iterator[Document]:
    """Events from a stream: one JSON value, an array, or JSON lines (read line by line).

    No document held at once is longer than `limit` (a gzip bomb, `/dev/zero`)."""

    def line() -> str:
        text = stream.readline(limit + 1)
        if len(text) > limit:
            raise _too_long(source, limit)
        return text

    first = line()
    while first and not first.strip():
        first = line()
    head = first.strip()
    ndjson = False
    if head.startswith("{") and head.endswith("}"):
        try:
            value = loads(head)
            ndjson = True
        except (json.JSONDecodeError, RecursionError):
            pass
    if not ndjson:
        text = first + stream.read(limit + 1 - len(first))
        if len(text) > limit:
            raise _too_long(source, limit)
        for raw, value in split_documents(text):
            yield raw, value, source
        return
    yield head, value, source
    while True:
        text = line()
        if not text:
            return
        text = text.strip()
        if text:
            for raw, value in split_documents(text):
                yield raw, value, source


def refuse_what_is_not_json(path: Path) -> None:
    """A file named on the command line that is not JSON at all (a TOML or YAML file, a
    binary) is refused before anything is stored: it is a wrong path, not an event."""
    if not path.is_file():
        return
    try:
        with path.open("rb") as raw, _text(raw) as stream:
            head = stream.read(4096).lstrip("\ufeff \t\r\n")
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise InvalidInput(f"{path}: cannot read: {err}") from err
    after_bracket = head[1:].lstrip()[:1] if head.startswith("[") else ""
    # `[steward]`, `[tool.x]`: a TOML table, not a JSON array of events.
    if (head and head[0] not in "{[") or (after_bracket and after_bracket not in '{[]"-0123456789'):
        raise InvalidInput(
            f"{path}: not JSON (it starts with {head[:20]!r}); nothing was ingested",
            hint="OpenLineage events are JSON, a JSON array or JSON lines, gzip or not",
        )


def read_path(
    path: str, stdin: IO[bytes] | None = None, max_document: int = MAX_DOCUMENT
) -> Iterator[Document]:
    """The events in a file, a directory of files (recursively, sorted), or `-` (stdin)."""
    if path == "-":
        try:
            yield from _documents(_text(stdin or io.BytesIO()), "-", max_document)
        except (OSError, EOFError, zlib.error) as err:
            raise InvalidInput(f"stdin: cannot read: {err}") from err
        return
    root = Path(path)
    if root.is_dir():
        files = sorted(
            p
            for p in root.rglob("*")
            if p.is_file()
            and p.suffix.lower() in EVENT_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
    elif root.is_file():
        files = [root]
    else:
        raise InvalidInput(f"{path}: no such file or directory")
    for file in files:
        try:
            with file.open("rb") as raw, _text(raw) as stream:
                yield from _documents(stream, str(file), max_document)
        except (OSError, EOFError, zlib.error) as err:
            raise InvalidInput(f"{file}: cannot read: {err}") from err
