"""Helpers shared by the benchmarks: timing, the figure/ratio line, a scratch catalog."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from catalog.db import Store

#: The local PostgreSQL server's maintenance database, to create and drop scratch ones.
ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Seconds taken by `fn()` (wall clock) and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def report(label: str, seconds: float, baseline: float | None = None, note: str = "") -> None:
    """One figure line: `label  1.234 s  (2.10x baseline)`."""
    ratio = f"  ({seconds / baseline:.2f}x baseline)" if baseline else ""
    extra = f"  {note}" if note else ""
    print(f"{label:<48} {seconds:8.3f} s{ratio}{extra}", flush=True)


@contextmanager
def scratch_catalog(backend: str, tmp: Path, name: str) -> Iterator[Store]:
    """An empty catalog for one benchmark: a SQLite file in `tmp`, or a PostgreSQL
    database of its own on the local server (`steward_bench_NAME_...`), dropped after."""
    import psycopg

    from catalog.db import Store

    if backend == "sqlite":
        store = Store(f"sqlite:///{tmp / f'{name}.db'}")
        try:
            yield store
        finally:
            store.dispose()
        return
    database = f"steward_bench_{name}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    store = Store(f"postgresql://postgres@127.0.0.1:5432/{database}")
    try:
        yield store
    finally:
        store.dispose()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
