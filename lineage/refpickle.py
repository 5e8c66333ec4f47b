"""Chunks pickled from the reading process to the writing one, each dataset sent once.

A file ingest parses in a forked process and sends the writer its chunks
pickled (`lineage.ingest`). Producers name the same datasets with the same
facets again and again, and the parser already shares one `DatasetRef` per
dataset (and place in the event) while it is cached; pickling sent each
one's schema and facets again in every chunk, and pickling and unpickling
them was a third of a light ingest's work. Here both ends keep a table of
the refs sent: a ref already sent is a slot number (and its input/output
facets, which differ from event to event), one sent for the first time is
sent whole and given a slot.

The sender decides everything: which ref takes which slot, and which one
is let go when its byte budget is spent (least recently sent first). The
receiver replays the same decisions in the same order, since unpickling
rebuilds objects in the order they were pickled; its table holds the same
refs as the sender's, so it is bounded by the same budget.

Hand-written over `pickle`'s own hooks (`Pickler.reducer_override`,
`Unpickler.find_class`): no library offers a dictionary shared by two ends
of a stream of pickles.
"""

from __future__ import annotations

import io
import operator
import pickle
from collections import OrderedDict
from typing import Any

import orjson

from lineage.openlineage import DatasetRef, ParentRef, ParsedEvent

#: Bytes of refs (estimated) each end keeps, by default: the heavy mix's 4,009 refs
#: take 29 MB once received (7.3 KB each, measured with tracemalloc), and with most
#: of them kept, a ref is sent whole once (14,510 whole of its 49,952 at 8 MB, 4,009).
BUDGET = 32 * 1024 * 1024
#: What a ref costs beside its objects: those take some 3.8 times the JSON it was read
#: from (its `size`), counted as 4.
REF_OVERHEAD = 1024
REF_PER_BYTE = 4

# Every field of a ref but its input/output facets, in the constructor's order.
_FIELDS = tuple(f for f in DatasetRef.__slots__ if f != "io_facets")
_IO_AT = DatasetRef.__slots__.index("io_facets")
_FACETS_AT = DatasetRef.__slots__.index("facets")
#: The fields of a ref as a tuple, in one call each (a generator of `getattr` was a
#: tenth of the reading process's time).
_shared = operator.attrgetter(*_FIELDS)
#: What is sent of a ref in a table: every field but its `facets`.
_sent_fields = operator.attrgetter(*(f for f in DatasetRef.__slots__ if f != "facets"))


class Unsent(dict[str, Any]):
    """A received ref's `facets`: not sent. The writer reads only what the parser took
    out of them (fields, described facets, column lineage, ...); sending them too
    (a column lineage facet twice, raw and parsed) was a fifth of the bytes of the
    refs a heavy ingest sends and half the time to unpickle them. Any read of them
    fails loudly."""

    def _refuse(self, *_args: Any, **_kwargs: Any) -> Any:
        raise TypeError("a received DatasetRef has no facets: use what was parsed from them")

    __getitem__ = __iter__ = __len__ = __contains__ = get = keys = values = items = _refuse
    __eq__ = __reduce_ex__ = copy = _refuse


UNSENT = Unsent()


def _sent(*_args: Any) -> DatasetRef:
    """Stands for the receiver's table in a pickle; only `RefReceiver` can read one."""
    raise pickle.UnpicklingError("a chunk of refs is read by RefReceiver.loads only")


def _again(*_args: Any) -> DatasetRef:
    """Stands for a ref already in the receiver's table (see `_sent`)."""
    raise pickle.UnpicklingError("a chunk of refs is read by RefReceiver.loads only")


def _cost(ref: DatasetRef) -> int:
    if ref.size:  # the length of its JSON, as the parser read it (its cache key)
        return REF_OVERHEAD + REF_PER_BYTE * ref.size
    try:
        return REF_OVERHEAD + REF_PER_BYTE * len(orjson.dumps(ref.facets))
    except (orjson.JSONEncodeError, TypeError):
        return REF_OVERHEAD + REF_PER_BYTE * len(repr(ref.facets))


class RefSender:
    """The sending end: pickles values, each ref's contents once while both ends hold it."""

    def __init__(self, budget: int = BUDGET) -> None:
        self.budget = budget
        self.held = 0
        #: id(ref.facets) -> (slot, the ref sent, its cost). A ref's input/output
        #: variants share its `facets`, so they find it here too.
        self.table: OrderedDict[int, tuple[int, DatasetRef, int]] = OrderedDict()
        self.free: list[int] = []
        self.slots = 0

    def dumps(self, value: Any) -> memoryview:
        buffer = io.BytesIO()
        _Pickler(buffer, self).dump(value)
        return buffer.getbuffer()  # not a copy of it

    def reduce(self, ref: DatasetRef) -> Any:
        key = id(ref.facets)
        entry = self.table.get(key)
        if entry is not None:
            slot, base, _ = entry
            if all(map(operator.is_, _shared(ref), _shared(base))):
                self.table.move_to_end(key)
                return _again, (slot, ref.io_facets)
            return NotImplemented  # shares the facets only: sent whole
        cost = _cost(ref)
        if cost > self.budget // 8:
            return NotImplemented
        while self.table and self.held + cost > self.budget:
            _, (gone, _, spent) = self.table.popitem(last=False)
            self.free.append(gone)
            self.held -= spent
        if self.free:
            slot = self.free.pop()
        else:
            slot, self.slots = self.slots, self.slots + 1
        self.table[key] = (slot, ref, cost)
        self.held += cost
        return _sent, (slot, *_sent_fields(ref))


class RefReceiver:
    """The receiving end: reads what a `RefSender` pickled, in the order it was sent."""

    def __init__(self) -> None:
        #: slot -> (the ref, its fields before and after its input/output facets)
        self.table: dict[int, tuple[DatasetRef, tuple[Any, ...], tuple[Any, ...]]] = {}

    def loads(self, data: bytes | memoryview) -> Any:
        return _Unpickler(io.BytesIO(data), self).load()

    def sent(self, slot: int, *sent: Any) -> DatasetRef:
        fields = (*sent[:_FACETS_AT], UNSENT, *sent[_FACETS_AT:])
        ref = DatasetRef(*fields)
        self.table[slot] = (ref, fields[:_IO_AT], fields[_IO_AT + 1 :])
        return ref

    def again(self, slot: int, io_facets: dict[str, Any]) -> DatasetRef:
        ref, before, after = self.table[slot]
        if io_facets == ref.io_facets:
            return ref  # refs are read-only: one object serves every event
        return DatasetRef(*before, io_facets, *after)  # type: ignore[call-arg]


#: Read-only dataclasses (slots, every field in the constructor) sent by position.
_BY_POSITION = {kind: operator.attrgetter(*kind.__slots__) for kind in (ParsedEvent, ParentRef)}


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, sender: RefSender) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.sender = sender

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is DatasetRef:
            return self.sender.reduce(obj)
        if kind in _BY_POSITION:
            # A dataclass with slots pickles its state through a Python `__getstate__`
            # and `__setstate__`, a field at a time; its constructor takes them at once.
            return kind, _BY_POSITION[kind](obj)
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, receiver: RefReceiver) -> None:
        super().__init__(file)
        self.receiver = receiver

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__:
            if name == "_sent":
                return self.receiver.sent
            if name == "_again":
                return self.receiver.again
        return super().find_class(module, name)
