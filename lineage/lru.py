"""Caches bounded by the bytes they hold (least recently used out first).

The projection's caches (datasets and schemas already read, fingerprints,
version ids) keep what producers send again and again; a server that runs
for months must not keep all of it. Each is an LRU map with a byte budget,
counting its keys too (a key is often the JSON it stands for).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from cachetools import LRUCache

K = TypeVar("K")
V = TypeVar("V")
#: What one entry costs beside its key and value (the map's own bookkeeping).
ENTRY_OVERHEAD = 200
_MISSING = object()


class ByteLRU(Generic[K, V]):
    """A map of at most `budget` bytes; an entry over an eighth of it is not kept."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._data: LRUCache[K, tuple[V, int]] = LRUCache(
            maxsize=max(budget, 1), getsizeof=lambda item: item[1]
        )

    def get(self, key: K, default: Any = None) -> V | Any:
        item = self._data.get(key, _MISSING)
        return default if item is _MISSING else item[0]  # type: ignore[index]

    def put(self, key: K, value: V, size: int) -> None:
        """Keep `value` under `key`; `size` is what both take (bytes, estimated)."""
        cost = size + ENTRY_OVERHEAD
        if cost <= self.budget // 8:
            self._data[key] = (value, cost)

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
        return int(self._data.currsize)

    def clear(self) -> None:
        self._data.clear()
