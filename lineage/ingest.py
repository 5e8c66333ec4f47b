"""OpenLineage ingestion: the raw log, deduplication and the projections, in chunks.

Every event received is written to `raw_event` (valid or not, with its
status, error and warnings) in the same transaction as its projection, so
nothing a producer sent is lost and `rebuild` can replay the log. An event
whose canonical JSON digest was accepted before is a duplicate: it is logged
and changes nothing else. The server and `steward ingest` both write here.
"""

from __future__ import annotations

import gc
import gzip
import io
import json
import logging
import multiprocessing
import pickle
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.exc import IntegrityError, OperationalError

from catalog.db import Store, insert_rows, update_by_id
from catalog.errors import CatalogUnavailable, InvalidInput
from catalog.models import (
    RawEvent,
    Run,
    RunDataset,
    utcnow,
)
from catalog.versioning import sha256_held
from catalog.writes import forget_projection
from lineage.chunk import ORIGIN
from lineage.openlineage import (
    DecodeFailed,
    EventRejected,
    ParsedEvent,
    digest_of,
    loads,
    parse_event,
    split_documents,
)
from lineage.project import Projector
from lineage.rows import RAW_W, db_time, dumps

log = logging.getLogger(__name__)

RAW = RawEvent.__table__  # type: ignore[attr-defined]
#: The digests among `keys` of events accepted before.
_ACCEPTED = (
    select(RAW.c.digest)
    .where(RAW.c.digest.in_(bindparam("keys", expanding=True)))
    .where(RAW.c.status == "accepted")
)
CHUNK_SIZE = 10000
LOCK_RETRIES = 5
#: Files read from a directory (a file named on the command line is always read).
EVENT_SUFFIXES = frozenset({".json", ".jsonl", ".ndjson", ".log", ".gz"})
#: Credentials inside a body (a namespace with a password, a token parameter) are masked.
_USERINFO = re.compile(r"([A-Za-z][\w+.-]*://[^\s/@:\"']*):[^\s/@\"']*@")
_SECRET = re.compile(r"(password|passwd|pwd|secret|token|api[_-]?key)=[^&\s;\"',]*", re.I)

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

    def add(self, result: Result, source: str | None = None) -> None:
        if result.status == "accepted":
            self.accepted += 1
        elif result.status == "duplicate":
            self.duplicates += 1
        else:
            self.rejected += 1
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


def redact_body(text: str) -> str:
    """The body with credentials masked: never stored, whatever a producer sends."""
    if "@" in text:
        text = _USERINFO.sub(r"\1:***@", text)
    if "=" in text:
        text = _SECRET.sub(lambda m: f"{m.group(1)}=***", text)
    if "\x00" in text:  # only in a body that is not JSON; PostgreSQL text cannot hold it
        text = text.replace("\x00", "\ufffd")
    return text


def evaluate(raw: str, value: Any, masked: str | None = None) -> tuple[ParsedEvent | None, Result]:
    """Parse one document: the event (if valid) and its provisional result.

    `masked` is `redact_body(raw)` when the caller has it already.
    """
    if isinstance(value, DecodeFailed):
        digest = sha256_held(raw.encode("utf-8", "replace"))
        return None, Result("rejected", digest, value.reason, "(body)", 400)
    if (redact_body(raw) if masked is None else masked) != raw:
        # Credentials in the body (a parent job's or a facet's URL): the event is
        # projected without them, as it is stored and as `rebuild` reads it back.
        with suppress(RecursionError):  # too deep to be an event: parse_event refuses it
            value = _redacted(value)
    try:
        parsed = parse_event(value)
    except EventRejected as err:
        try:
            digest = digest_of(value)
        except EventRejected:  # nested too deeply to be written: the text's digest
            digest = sha256_held(raw.encode("utf-8", "replace"))
        return None, Result("rejected", digest, str(err), err.field, err.status)
    return parsed, Result("accepted", parsed.digest, warnings=parsed.warnings)


def _redacted(value: Any) -> Any:
    """A decoded body with credentials masked in every string (keys too)."""
    if isinstance(value, str):
        return redact_body(value)
    if isinstance(value, dict):
        return {redact_body(k): _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


@dataclass
class _Item:
    #: The body as stored: with credentials masked (`redact_body`).
    raw: str
    source: str | None
    event: ParsedEvent | None
    result: Result
    raw_id: int | None = None


class Ingester:
    """Writes events to one catalog; keeps caches across chunks (one per process)."""

    def __init__(self, store: Store, chunk_size: int = CHUNK_SIZE) -> None:
        self.store = store
        self.chunk_size = chunk_size
        self.projector = Projector()

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
        with _gc_paused():
            return self._ingest_chunks(_evaluated(documents, self.chunk_size), on_result)

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
        if path == "-" or not sys.platform.startswith("linux"):
            return self.ingest_stream(read_path(path, stdin), on_result)
        with _gc_paused():
            return self._ingest_chunks(_read_in_a_process(path, self.chunk_size), on_result)

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
        return summary

    def _write(self, batch: list[_Item]) -> None:
        for attempt in range(LOCK_RETRIES):
            try:
                # Every id a chunk writes was read or created in its own transaction.
                with self.store.write(checked=False) as conn:
                    on_commit = self._process(conn, batch)
                on_commit()
                self.store.checkpoint_soon()
                return
            except OperationalError as err:
                if "locked" not in str(err.orig) or attempt == LOCK_RETRIES - 1:
                    raise CatalogUnavailable(f"catalog is busy: {err.orig}") from err
                time.sleep(0.2 * (attempt + 1))
                self._reset(batch)
            except IntegrityError:
                # Another writer (a second server, a scan) created the same asset or
                # run first: the next attempt reads it and goes on from there.
                self._reset(batch)
                if attempt == LOCK_RETRIES - 1:
                    self._one_by_one(batch)
                    return
                log.info("write conflict with another writer; retrying the chunk")
            except CatalogUnavailable:
                raise
            except Exception:
                self._reset(batch)
                self._one_by_one(batch)
                return

    def _one_by_one(self, batch: list[_Item]) -> None:
        """One event breaks the chunk: write them one by one to find it."""
        if len(batch) == 1:
            raise
        log.exception("chunk of %d events failed; writing them one by one", len(batch))
        for item in batch:
            self._write_alone(item)

    def _write_alone(self, item: _Item) -> None:
        try:
            self._write([item])
        except CatalogUnavailable:
            raise
        except Exception as err:
            log.exception("event %s could not be projected", item.result.digest)
            item.event = None
            item.result = Result(
                "rejected",
                item.result.digest,
                f"not projected (internal error {type(err).__name__}); kept raw for --rebuild",
                None,
                500,
                item.result.warnings,
            )
            with self.store.write() as conn:
                self._log_raw(conn, [item])

    @staticmethod
    def _reset(batch: list[_Item]) -> None:
        for item in batch:
            if item.result.status == "duplicate":
                item.result.status = "accepted"

    def _process(
        self, conn: Connection, batch: list[_Item], replay: bool = False
    ) -> Callable[[], None]:
        candidates = [i for i in batch if i.event is not None]
        seen: set[str] = set()
        if not replay:
            digests = sorted({i.result.digest for i in candidates})
            for start in range(0, len(digests), 900):
                rows = conn.execute(_ACCEPTED, {"keys": digests[start : start + 900]})
                seen.update(r.digest for r in rows)
        else:
            seen = self._replay_seen
        events: list[ParsedEvent] = []
        for item in candidates:
            if item.result.digest in seen:
                item.result.status = "duplicate"
                continue
            seen.add(item.result.digest)
            assert item.event is not None
            events.append(item.event)
        on_commit = self.projector.project(conn, events) if events else (lambda: None)
        self._log_raw(conn, batch)
        return on_commit

    def _log_raw(self, conn: Connection, batch: list[_Item]) -> None:
        now = utcnow()
        fresh = [i for i in batch if i.raw_id is None]
        if fresh:
            at = db_time(conn, now)
            insert_rows(
                conn,
                "raw_event",
                ("digest", "received_at", "body", "status", "error", "warnings", "source"),
                [
                    (
                        i.result.digest,
                        at,
                        i.raw,
                        i.result.status,
                        i.result.error,
                        dumps(i.result.warnings),
                        i.source,
                    )
                    for i in fresh
                ],
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
        self.projector = Projector()
        with self.store.write() as conn:
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
                    event, result = evaluate(row.body, value)
                    batch.append(_Item(row.body, row.source, event, result, raw_id=row.id))
                self._process(conn, batch, replay=True)
                for item in batch:
                    summary.add(item.result, item.source)
                    if on_result is not None:
                        on_result(item.result, item.source)
        return summary


def _evaluated(documents: Iterable[Document], size: int) -> Iterator[list[_Item]]:
    """The documents parsed, in chunks of `size`."""
    batch: list[_Item] = []
    for raw, value, source in documents:
        masked = redact_body(raw)  # what is stored: credentials never are
        event, result = evaluate(raw, value, masked)
        batch.append(_Item(masked, source, event, result))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class _End:
    """The reader is done; with the error that ended it, if one did."""

    error: BaseException | None


def _read_in_a_process(path: str, size: int) -> Iterator[list[_Item]]:
    """The chunks of `read_path(path)`, parsed by a forked process, in order.

    The pipe holds about one chunk: the reader is never more than one ahead.
    Its errors (an unreadable file) are raised here, in their place. When
    this side stops early or dies, the reader's next send fails and it ends.
    """
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    reader = context.Process(
        target=_reader, args=(path, size, sending, receiving), name="steward-read", daemon=True
    )
    reader.start()
    sending.close()
    try:
        while True:
            try:
                item = pickle.loads(receiving.recv_bytes())
            except EOFError:
                raise CatalogUnavailable(
                    f"{path}: the reading process ended unexpectedly "
                    f"(exit code {reader.exitcode}); nothing after the last chunk was written"
                ) from None
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        receiving.close()
        reader.join(timeout=5)
        if reader.is_alive():
            reader.kill()
            reader.join()


def _reader(path: str, size: int, sending: Any, receiving: Any) -> None:
    """In the forked process: read, parse and send the chunks, then `_End`."""
    # Its copy of the reading end is closed: once the writing process is gone
    # (killed even), the next send fails and this process ends.
    receiving.close()
    gc.disable()  # what it parses holds no cycles; it lives only as long as the file
    try:
        try:
            for chunk in _evaluated(read_path(path), size):
                sending.send_bytes(pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL))
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


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a chunk is held: its many live dicts would
    make every collection walk them all (the events create no cycles to collect)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _reset_projections(conn: Connection) -> None:
    conn.execute(delete(RunDataset.__table__))  # type: ignore[attr-defined]
    conn.execute(delete(Run.__table__))  # type: ignore[attr-defined]
    forget_projection(conn, ORIGIN)


# -- reading files ----------------------------------------------------------------------


def _open(path: Path) -> IO[str]:
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def _documents(stream: IO[str], source: str) -> Iterator[Document]:
    """Events from a stream: one JSON value, an array, or JSON lines (read line by line)."""
    first = stream.readline()
    while first and not first.strip():
        first = stream.readline()
    head = first.strip()
    ndjson = False
    if head.startswith("{") and head.endswith("}"):
        try:
            value = loads(head)
            ndjson = True
        except (json.JSONDecodeError, RecursionError):
            pass
    if not ndjson:
        text = first + stream.read()
        for raw, value in split_documents(text):
            yield raw, value, source
        return
    yield head, value, source
    for line in stream:
        line = line.strip()
        if line:
            for raw, value in split_documents(line):
                yield raw, value, source


def read_path(path: str, stdin: IO[bytes] | None = None) -> Iterator[Document]:
    """The events in a file, a directory of files (recursively, sorted), or `-` (stdin)."""
    if path == "-":
        data = (stdin or io.BytesIO()).read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        yield from _documents(io.StringIO(data.decode("utf-8", "replace")), "-")
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
            with _open(file) as stream:
                yield from _documents(stream, str(file))
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            raise InvalidInput(f"{file}: cannot read: {err}") from err
