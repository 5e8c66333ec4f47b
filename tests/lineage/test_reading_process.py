"""The file ingest's reading process: its chunks arrive in order, received ahead of their
use, and it is stopped with nothing left behind when the writer stops early."""

from __future__ import annotations

import multiprocessing
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.bench_ingest import generate
from lineage import ingest
from lineage.ingest import (
    FIRST_CHUNK_PART,
    PIPE_BYTES,
    _evaluated,
    _plain_size,
    _read_in_a_process,
    _Received,
    _widen,
    read_path,
)
from lineage.openlineage import MAX_DATASETS
from tests.lineage.test_refpickle import _carried

#: Small chunks, so that the file is many of them and the reader can run ahead.
CHUNK_BYTES = 32 * 1024


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reading") / "events.ndjson"
    generate(path, 3_000)
    return path


def _readers() -> list[Any]:
    return [p for p in multiprocessing.active_children() if p.name == "steward-read"]


def _receivers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "steward-receive"]


def _chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Generator[list[Any], None, None]:
    return _read_in_a_process(str(path), 10_000, MAX_DATASETS, 1 << 24, chunk_bytes)


def test_the_chunks_are_the_ones_read_in_place(events: Path) -> None:
    """What arrives from the reading process, through the receiving thread, is what the
    same file parsed in this process gives, chunk for chunk; nothing is left running."""
    first = CHUNK_BYTES // FIRST_CHUNK_PART
    size = _plain_size(str(events))
    assert size == events.stat().st_size
    documents = read_path(str(events))
    here = list(_evaluated(documents, 10_000, MAX_DATASETS, CHUNK_BYTES, False, first, size))
    there = list(_chunks(events))
    assert len(there) == len(here) > 100
    for ours, theirs in zip(there, here, strict=True):
        assert [i.raw for i in ours] == [i.raw for i in theirs]
        assert [i.result for i in ours] == [i.result for i in theirs]
        assert _carried([i.event for i in ours]) == _carried([i.event for i in theirs])
    assert not _readers()
    assert not _receivers()


def test_a_files_first_chunks_are_smaller_so_the_writer_starts_sooner(events: Path) -> None:
    """The writer waits alone for a file's first chunk: it is a sixteenth of a chunk, and
    each next one may hold twice as much, up to a whole chunk. The events are the file's,
    in order, once each."""
    chunks = list(_chunks(events))
    held = [sum(len(i.raw) for i in chunk) for chunk in chunks]
    limits = [min(CHUNK_BYTES, (CHUNK_BYTES // FIRST_CHUNK_PART) << n) for n in range(len(held))]
    assert limits[:5] == [2048, 4096, 8192, 16384, 32768]
    # A chunk ends with the event that reaches its limit: over it by less than one event.
    longest = max(len(line) for line in events.read_text().splitlines())
    # (while two chunks or more are left of the file: the last ones, the next test)
    lines = [sum(len(i.raw) + 1 for i in chunk) for chunk in chunks]
    early = [n for n in range(len(chunks)) if sum(lines[n:]) >= 2 * CHUNK_BYTES]
    assert len(early) > 10
    for n in early:
        assert limits[n] <= held[n] < limits[n] + longest
    whole = _evaluated(read_path(str(events)), 10_000, MAX_DATASETS, CHUNK_BYTES)
    assert [i.result.digest for chunk in chunks for i in chunk] == [
        i.result.digest for chunk in whole for i in chunk
    ]


def test_a_files_last_chunks_are_smaller_so_the_writer_ends_sooner(events: Path) -> None:
    """The writer projects a file's last chunk alone: once less than two chunks are left
    of the file, each chunk takes about half of what is left, down to the first chunk's
    size. The events are the file's, in order, once each."""
    chunks = list(_chunks(events))
    held = [sum(len(i.raw) + 1 for i in chunk) for chunk in chunks]
    smallest = CHUNK_BYTES // FIRST_CHUNK_PART
    longest = max(len(line) + 1 for line in events.read_text().splitlines())
    whole = held.index(max(held))  # the ramp up is over: chunks are whole, then less
    assert held[whole] >= CHUNK_BYTES
    tail = held[whole + 1 :]
    assert len(tail) >= 4
    for n, size in enumerate(tail[:-1]):
        left = sum(held[whole + 1 + n :])  # what was left of the file when it began
        if left >= 2 * CHUNK_BYTES:
            assert CHUNK_BYTES <= size < CHUNK_BYTES + longest
        else:
            assert max(smallest, left // 2) <= size < max(smallest, left // 2) + longest
    assert tail[-1] < smallest + longest
    here = _evaluated(read_path(str(events)), 10_000, MAX_DATASETS, CHUNK_BYTES)
    assert [i.result.digest for chunk in chunks for i in chunk] == [
        i.result.digest for chunk in here for i in chunk
    ]


def test_a_size_told_too_small_only_makes_a_few_chunks_smaller(events: Path) -> None:
    """A file's size is only about how many characters its events hold: told a quarter
    of the truth, the chunks shrink for a while, then are whole again, and no event is
    lost or read twice."""
    first = CHUNK_BYTES // FIRST_CHUNK_PART

    def chunked(total: int | None) -> list[list[Any]]:
        documents = read_path(str(events))
        return list(_evaluated(documents, 10_000, MAX_DATASETS, CHUNK_BYTES, False, first, total))

    unknown, wrong = chunked(None), chunked(events.stat().st_size // 4)
    assert [i.raw for c in wrong for i in c] == [i.raw for c in unknown for i in c]
    assert 2 <= len(wrong) - len(unknown) <= 8
    held = [sum(len(i.raw) for i in c) for c in wrong]
    past = len(held) // 2  # the told size is spent well before: whole chunks again
    assert all(size >= CHUNK_BYTES for size in held[past:-1])


def _closed_in_time(chunks: Generator[list[Any], None, None]) -> None:
    """Closes the generator on a thread: a close that hangs fails the test instead."""
    closing = threading.Thread(target=chunks.close, daemon=True)
    closing.start()
    closing.join(timeout=60)
    assert not closing.is_alive(), "closing the chunks hung"


def test_a_writer_that_stops_early_stops_the_reader(
    events: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer takes one chunk and stops (an error while projecting, say), while the
    receiving thread holds all the chunks it may and waits to hand over one more: the
    reader, still chunks from the end, is stopped, and the thread has ended."""
    monkeypatch.setattr(ingest, "AHEAD_BYTES", 4 * CHUNK_BYTES)
    chunks = _chunks(events)
    first = next(chunks)
    assert first
    [reader] = _readers()
    assert len(_receivers()) == 1
    time.sleep(0.5)  # the reader parses a small chunk in milliseconds: the queue fills
    _closed_in_time(chunks)
    assert reader.exitcode == -signal.SIGKILL
    assert not _readers()
    assert not _receivers()


@pytest.mark.parametrize("chunk_bytes", [CHUNK_BYTES, 5 * PIPE_BYTES // 4], ids=["small", "large"])
def test_a_reader_that_dies_is_an_error_in_the_writer(
    events: Path, chunk_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reading process killed from outside: the writer is told, in one line, that
    nothing after the last chunk was written, and nothing is left running. With large
    chunks the reader is killed in the middle of a message (a chunk is more than the pipe
    holds, and the receiving thread holds one it cannot queue yet), which the writer's
    side reads as "end of file during message" rather than as the end of the pipe."""
    from catalog.errors import CatalogUnavailable

    # More chunks than the writer, the queue (a pickled chunk is larger than its text)
    # and the thread take, and one to be in the middle of: the reader is still busy.
    monkeypatch.setattr(ingest, "AHEAD_BYTES", 4 * chunk_bytes)
    assert events.stat().st_size > 8 * chunk_bytes
    chunks = _chunks(events, chunk_bytes)
    next(chunks)
    [reader] = _readers()
    time.sleep(0.5)  # the reader parses and sends what the pipe and the thread take
    reader.kill()
    reader.join()
    with pytest.raises(CatalogUnavailable, match="ended unexpectedly"):
        for _ in chunks:
            pass  # the chunks already received come first
    assert not _readers()
    assert not _receivers()


def test_a_file_ingest_asks_for_checkpoints_sooner_and_they_happen(
    events: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a file is ingested, each chunk asks for a checkpoint within a quarter second
    (what is left is copied when the catalog closes, at the end, alone); other writes
    (a server's) keep the second. The checkpoints do happen: the database file holds
    the pages while the catalog is still open."""
    from catalog.db import BULK_CHECKPOINT_EVERY, CHECKPOINT_EVERY, Store
    from lineage.ingest import Ingester

    db = tmp_path / "catalog.db"
    store = Store(f"sqlite:///{db}")
    asked: list[float] = []
    ask = store.checkpoint_soon

    def asking(within: float) -> None:
        asked.append(within)
        ask(within)

    monkeypatch.setattr(store, "checkpoint_soon", asking)
    ingester = Ingester(store, chunk_bytes=256 * 1024)
    summary = ingester.ingest_path(str(events))
    assert summary.accepted == 3_000
    assert len(asked) > 4 and set(asked) == {BULK_CHECKPOINT_EVERY}
    asked.clear()
    ingester.ingest(read_path(str(events)))  # everything again, as a server gets it
    assert asked and set(asked) == {CHECKPOINT_EVERY}
    size = db.stat().st_size
    deadline = time.monotonic() + 30
    while db.stat().st_size < 1 << 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert db.stat().st_size >= 1 << 20, f"no checkpoint copied the log ({size} bytes)"
    store.dispose()


def test_closing_the_catalog_does_not_wait_for_a_checkpoint_asked_for(tmp_path: Path) -> None:
    """A checkpoint asked for within an hour: closing the catalog ends its thread at once
    (it slept out the interval first, a quarter of a second at the end of every file's
    ingest), and the catalog is whole afterwards (the last close copies the log)."""
    from catalog.db import Store

    db = tmp_path / "catalog.db"
    store = Store(f"sqlite:///{db}")
    with store.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x TEXT)")
        conn.exec_driver_sql("INSERT INTO t VALUES ('kept')")
    store.checkpoint_soon(3600)
    checkpointer = store._checkpointer
    assert checkpointer is not None
    time.sleep(0.5)  # the thread is waiting out the interval by now
    store.dispose()  # joins the thread for up to a minute
    assert not checkpointer.thread.is_alive()
    assert not (tmp_path / "catalog.db-wal").exists()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [("kept",)]


def test_a_close_that_lands_as_a_checkpoint_is_due_still_ends_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog is closed just as the thread, its interval over, clears its request:
    the clear undoes the close's wake-up, and the thread, had it not looked at the
    close again, would wait for a request that never comes (and `dispose` for it, a
    minute). The close is made to land there, every time."""
    from catalog import db

    store = db.Store(f"sqlite:///{tmp_path / 'catalog.db'}")
    made: list[db._Checkpointer] = []

    class ClosedAtTheClear(threading.Event):
        def clear(self) -> None:
            made[0].closing.set()
            self.set()
            super().clear()

    with monkeypatch.context() as patched:
        patched.setattr(db.threading, "Event", ClosedAtTheClear)
        made.append(db._Checkpointer(store.engine))
    checkpointer = made[0]
    checkpointer.request(0)
    checkpointer.thread.join(timeout=30)
    assert not checkpointer.thread.is_alive()
    store.dispose()


def test_an_interrupted_ingest_stops_and_keeps_what_it_committed(
    events: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C lands just as a chunk's commit returns (SQLAlchemy then closes the
    connection): the ingest stops with the interrupt, reading process and thread gone.
    Before, a "closed database" error raised over the interrupt made the ingest take
    the chunk for a bad one, write its events again one by one as duplicates, and go on
    to the end (or wait for a lock). The catalog holds the committed chunks, once; the
    same command again accepts the rest."""
    from sqlalchemy import text

    from catalog.db import Store
    from lineage.ingest import Ingester

    store = Store(f"sqlite:///{tmp_path / 'catalog.db'}")
    commits = 0
    commit = store.engine.dialect.do_commit

    def interrupted(dbapi_connection: Any) -> None:
        nonlocal commits
        commit(dbapi_connection)
        commits += 1
        if commits == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(store.engine.dialect, "do_commit", interrupted)
    ingester = Ingester(store, chunk_bytes=256 * 1024)
    with pytest.raises(KeyboardInterrupt):
        ingester.ingest_path(str(events))
    assert not _readers()
    assert not _receivers()
    monkeypatch.undo()
    with store.engine.connect() as conn:
        statuses: dict[str, int] = dict(
            conn.execute(text("SELECT status, count(*) FROM raw_event GROUP BY status")).all()
        )
    kept = statuses["accepted"]
    assert set(statuses) == {"accepted"} and 0 < kept < 3_000
    again = Ingester(store).ingest_path(str(events))
    assert (again.accepted, again.duplicates) == (3_000 - kept, kept)
    store.dispose()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipe capacity is Linux's")
def test_the_pipe_holds_a_megabyte() -> None:
    """The receiving thread reads a pipeful per turn at the interpreter lock: the pipe is
    widened from Linux's 64 KB so that a chunk takes a few turns, not dozens."""
    import fcntl

    receiving, sending = multiprocessing.get_context("fork").Pipe(duplex=False)
    try:
        assert fcntl.fcntl(receiving.fileno(), fcntl.F_GETPIPE_SZ) < PIPE_BYTES
        _widen(receiving)
        assert fcntl.fcntl(receiving.fileno(), fcntl.F_GETPIPE_SZ) == PIPE_BYTES
    finally:
        receiving.close()
        sending.close()


def test_the_chunks_received_ahead_are_bounded_by_their_bytes() -> None:
    """The receiving thread queues messages while they fit in its bytes, one however large
    when none waits, and waits to queue the next; they come out in order."""
    receiving, sending = multiprocessing.get_context("fork").Pipe(duplex=False)
    received = _Received(receiving, ahead=100)
    try:
        sent = [b"a" * 40, b"b" * 40, b"c" * 40, b"d" * 500, b"e" * 10]
        for message in sent:
            sending.send_bytes(message)
        deadline = time.monotonic() + 10
        while received.held < 80 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # time enough to queue a third one, if it would
        assert list(received.messages) == sent[:2] and received.held == 80
        assert received.recv_bytes() == sent[0]
        assert received.recv_bytes() == sent[1]
        assert received.recv_bytes() == sent[2]
        while not received.messages and time.monotonic() < deadline:
            time.sleep(0.01)
        assert list(received.messages) == [sent[3]]  # alone, over the bound: taken
        assert [received.recv_bytes() for _ in sent[3:]] == sent[3:]
        sending.close()
        with pytest.raises(EOFError):
            received.recv_bytes()
    finally:
        received.stopping.set()
        sending.close()
        received.thread.join(timeout=10)
        receiving.close()
    assert not received.thread.is_alive()
