"""What the parser and the refs' tables keep between events: shared where equal, and no
more memory than they count against their budgets (the budgets are what bound a file
ingest's memory, so a count below the truth lets the memory grow past the setting)."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks.heavy import generate
from lineage import openlineage
from lineage.ingest import _evaluated, read_path
from lineage.lru import ByteLRU
from lineage.openlineage import parse_event
from lineage.refpickle import RefReceiver, RefSender


@pytest.fixture(scope="module")
def heavy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Events of the heavy mix, built with openlineage-python's own classes."""
    path = tmp_path_factory.mktemp("heavy") / "events.ndjson"
    generate(path, 600)
    return path


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[ByteLRU[bytes, Any]]:
    """The parser's cache of datasets, empty and large enough for every dataset here."""
    cache: ByteLRU[bytes, Any] = ByteLRU(1 << 30)
    monkeypatch.setattr(openlineage, "_SEEN", cache)
    yield cache


def _held(work: Any) -> int:
    """Bytes still allocated after `work()` returns and its garbage is collected."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_the_datasets_cached_take_no_more_memory_than_they_are_counted(
    heavy: Path, fresh_cache: ByteLRU[bytes, Any]
) -> None:
    """Every event parsed, its value then let go: what stays is the datasets the cache
    keeps (the caches of checked schemas, fingerprints and shared names were filled by
    a first pass). It is no more than the cache counts: with the JSON's length times 3
    it counted 7.6 KB for a heavy dataset that held 12.4 KB."""
    lines = heavy.read_bytes().splitlines()
    for line in lines:
        parse_event(orjson.loads(line))
    fresh_cache.clear()

    def parse_all() -> None:
        for line in lines:
            parse_event(orjson.loads(line))

    held = _held(parse_all)
    assert len(fresh_cache) > 300
    assert held <= fresh_cache.size, f"{held} bytes held, {fresh_cache.size} counted"
    # ...and not wildly more: the count keeps as many as the budget can hold.
    assert fresh_cache.size < 2 * held


def test_the_refs_received_take_no_more_memory_than_the_sender_counts(
    heavy: Path, fresh_cache: ByteLRU[bytes, Any]
) -> None:
    """The writing process's table of refs mirrors the sender's, which counts it against
    the budget: the refs received (without their facets) take no more than that."""
    sender = RefSender(1 << 30)
    sent = [
        bytes(sender.dumps(chunk))
        for chunk in _evaluated(read_path(str(heavy)), 10_000, chunk_bytes=256 * 1024)
    ]
    receiver = RefReceiver()

    def receive_all() -> None:
        for data in sent:
            receiver.loads(data)

    held = _held(receive_all)
    assert len(receiver.table) > 300
    assert held <= sender.held, f"{held} bytes held, {sender.held} counted"
    assert sender.held < 2 * held


def test_equal_names_and_transformations_in_column_lineage_are_one_object(
    heavy: Path, fresh_cache: ByteLRU[bytes, Any]
) -> None:
    """Column lineage names its sources again for every field, and most transformations
    are alike: each equal source and each equal list of transformations is one object,
    in every dataset read."""
    refs = [
        ref
        for line in heavy.read_bytes().splitlines()
        for ref in parse_event(orjson.loads(line)).outputs
        if ref.transformations
    ]
    assert len(refs) > 20
    sources: dict[tuple[str, str, str], int] = {}
    kinds: dict[bytes, int] = {}
    names: dict[str, str] = {}
    for ref in refs:
        for out_field, mapped in ref.transformations.items():
            for source, how in mapped.items():
                assert source in ref.column_lineage[out_field]
                assert sources.setdefault(source, id(source)) == id(source)
                assert kinds.setdefault(orjson.dumps(how), id(how)) == id(how)
        for listed in ref.column_lineage.values():
            for source in listed:
                assert sources.setdefault(source, id(source)) == id(source)
                namespace, name, _ = source
                assert names.setdefault(namespace, namespace) is namespace
                assert names.setdefault(name, name) is name
    assert len(kinds) < 10 < len(sources)
