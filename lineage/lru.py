"""Caches bounded by the bytes they hold (least recently used out first).

The projection's caches (datasets and schemas already read, fingerprints,
version ids) keep what producers send again and again; a server that runs
for months must not keep all of it. Each is an LRU map with a byte budget,
counting its keys too (a key is often the JSON it stands for).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
#: What one entry costs beside its key and value (the map's own bookkeeping).
ENTRY_OVERHEAD = 200


class ByteLRU(Generic[K, V]):
    """A map of at most `budget` bytes; an entry over an eighth of it is not kept.

    Written on `OrderedDict` (its recency moves are in C) rather than on
    `cachetools.LRUCache`, whose pure-Python `get` was a tenth of an ingest's
    time: these maps are read several times per dataset of every event. It
    evicts as `LRUCache` does (`tests/lineage/test_lru.py` holds it to that).
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._held = 0

    def get(self, key: K, default: Any = None) -> V | Any:
        item = self._data.get(key)
        if item is None:
            return default
        try:  # noqa: SIM105 (a `try` costs nothing here; `suppress` is a call on the hot path)
            self._data.move_to_end(key)
        except KeyError:  # put away by another thread meanwhile: still the value read
            pass
        return item[0]

    def put(self, key: K, value: V, size: int) -> None:
        """Keep `value` under `key`; `size` is what both take (bytes, estimated)."""
        cost = size + ENTRY_OVERHEAD
        if cost > self.budget // 8:
            return
        data = self._data
        old = data.pop(key, None)
        if old is not None:
            self._held -= old[1]
        while data and self._held + cost > self.budget:
            try:
                self._held -= data.popitem(last=False)[1][1]
            except KeyError:  # emptied by another thread meanwhile
                break
        data[key] = (value, cost)
        self._held += cost

    def update(self, items: dict[K, V], size: int) -> None:
        for key, value in items.items():
            self.put(key, value, size)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    @property
    def size(self) -> int:
        """The bytes held, as counted."""
        return self._held

    def clear(self) -> None:
        self._data.clear()
        self._held = 0


class Shared:
    """One object for values that are equal: what a parse keeps of many events (column
    lineage names the same namespaces, datasets and transformations again and again)
    is one object each, not one per place it was read at.

    `one(key, value)` gives the value first kept under `key`, else keeps `value` and
    gives it; a key that cannot be hashed keeps nothing. At most `limit` values are
    kept: when full, it starts again (what it gave out stays valid; later ones are
    new objects). The values it gives are shared: never to be changed in place.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._data: dict[Any, Any] = {}

    def one(self, key: Any, value: Any) -> Any:
        data = self._data
        try:
            found = data.get(key)
        except TypeError:  # an unhashable part (a producer's object where text was due)
            return value
        if found is not None:
            return found
        if len(data) >= self.limit:
            data.clear()
        data[key] = value
        return value

    def __len__(self) -> int:
        return len(self._data)
