"""The byte-bounded LRU map keeps and evicts exactly what `cachetools.LRUCache` would."""

from __future__ import annotations

from cachetools import LRUCache
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage.lru import ENTRY_OVERHEAD, ByteLRU, Shared

BUDGET = 8 * 1024

operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 30), st.integers(0, 1400)),
        st.tuples(st.just("get"), st.integers(0, 30), st.just(0)),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_it_evicts_as_lrucache_does(ops: list[tuple[str, int, int]]) -> None:
    ours: ByteLRU[int, str] = ByteLRU(BUDGET)
    theirs: LRUCache[int, tuple[str, int]] = LRUCache(BUDGET, getsizeof=lambda item: item[1])
    for n, (op, key, size) in enumerate(ops):
        if op == "put":
            ours.put(key, f"v{n}", size)
            cost = size + ENTRY_OVERHEAD
            if cost <= BUDGET // 8:
                theirs[key] = (f"v{n}", cost)
        else:
            found = theirs.get(key)
            assert ours.get(key, "absent") == (found[0] if found else "absent")
        assert ours.size == theirs.currsize <= BUDGET
        assert len(ours) == len(theirs)
        assert all(k in ours for k in theirs)


def test_an_entry_over_an_eighth_of_the_budget_is_not_kept() -> None:
    lru: ByteLRU[str, int] = ByteLRU(8000)
    lru.put("small", 1, 100)
    lru.put("large", 2, 1000)
    assert lru.get("small") == 1
    assert lru.get("large") is None
    assert "large" not in lru


def test_a_stored_none_is_told_from_an_absent_key() -> None:
    lru: ByteLRU[str, None] = ByteLRU(8000)
    lru.put("known", None, 10)
    assert lru.get("known", "absent") is None
    assert lru.get("unknown", "absent") == "absent"
    lru.clear()
    assert len(lru) == 0 and lru.size == 0


def test_shared_gives_one_object_for_equal_keys_and_starts_again_when_full() -> None:
    shared = Shared(3)
    first = ("ns", "table", "col")
    again = tuple(["ns", "table", "col"])  # equal, another object
    assert again is not first
    assert shared.one(first, first) is first
    assert shared.one(again, again) is first
    kinds = [{"type": "DIRECT"}]
    assert shared.one((("type", "DIRECT"),), kinds) is kinds
    assert shared.one((("type", "DIRECT"),), [{"type": "DIRECT"}]) is kinds
    # Unhashable (a producer's object where text was due): kept as it is, not shared.
    odd = [{"type": {"nested": 1}}]
    assert shared.one(((("type", {"nested": 1}),),), odd) is odd
    assert len(shared) == 2
    shared.one("c", "c")
    assert len(shared) == 3
    fourth = "d"
    assert shared.one(fourth, fourth) is fourth
    assert len(shared) == 1  # full: started again
    assert shared.one(again, again) is again  # what it gave before stays valid; new ones differ
