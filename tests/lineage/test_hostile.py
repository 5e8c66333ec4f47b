"""Hostile input: nasty events through the parser, the ingester and a real `steward serve`.

A corpus of hand-written nasty events (huge strings, deep nesting, NaN and
Infinity, invalid UTF-8, wrong JSON types in every position, 5,000 datasets,
duplicate keys, huge integers, empty strings, NUL characters, lone
surrogates) goes through `split_documents`, `read_path` and `parse_event`,
through `Ingester` on both backends, and through a real `steward serve` on
both backends. Whatever arrives: never a 500, never a crash, and never a
partial write (a rejected event adds its raw row and nothing else, an
accepted one is fully projected). A hypothesis test mutates a valid event,
and the server's memory is checked against its body limit.
"""

from __future__ import annotations

import gzip
import json
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, uuid4, uuid5

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, text
from sqlmodel import SQLModel

from catalog.db import Store
from lineage.ingest import Ingester, read_path
from lineage.openlineage import (
    MAX_DATASETS,
    DecodeFailed,
    EventRejected,
    loads,
    parse_event,
    split_documents,
)
from lineage.server import MAX_BATCH
from tests.serving import Served, steward_serve

PRODUCER = "https://example.com/steward-hostile"
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
DATASET_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent"
PARENT_RUN = "0c3e2a55-8a64-4f0e-9d52-7d7b1c2a1e01"
TOKEN = "hostile-token"
MB = 1024 * 1024
#: What `POST /api/v1/lineage` may answer, whatever it is sent.
ALLOWED = {201, 400, 413, 422}
TABLES = [t.name for t in SQLModel.metadata.sorted_tables]


# -- the corpus ---------------------------------------------------------------------------


def facet(**body: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": "https://example.com/facet.json", **body}


def event(tag: str) -> dict[str, Any]:
    """A valid RunEvent using every standard part, its run, job and output unique to `tag`."""
    orders = {"namespace": "postgres://db:5432", "name": "shop.public.orders"}
    return {
        "eventType": "COMPLETE",
        "eventTime": "2024-06-01T12:00:00.000Z",
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT,
        "run": {
            "runId": str(uuid5(NAMESPACE_URL, tag)),
            "facets": {
                "parent": facet(
                    run={"runId": PARENT_RUN}, job={"namespace": "scheduler", "name": "dag"}
                ),
                "nominalTime": facet(nominalStartTime="2024-06-01T00:00:00Z"),
            },
        },
        "job": {
            "namespace": "scheduler",
            "name": f"job {tag}",
            "facets": {"sql": facet(query="SELECT id, total FROM orders")},
        },
        "inputs": [
            {
                **orders,
                "facets": {
                    "schema": facet(
                        fields=[{"name": "id", "type": "int"}, {"name": "total", "type": "numeric"}]
                    ),
                    "symlinks": facet(
                        identifiers=[{"namespace": "hive://meta:9083", "name": "shop.orders"}]
                    ),
                },
                "inputFacets": {"dataQualityMetrics": facet(rowCount=3, columnMetrics={})},
            }
        ],
        "outputs": [
            {
                "namespace": "s3://curated",
                "name": f"out {tag}",
                "facets": {
                    "schema": facet(fields=[{"name": "id", "type": "int"}]),
                    "columnLineage": facet(
                        fields={"id": {"inputFields": [{**orders, "field": "id"}]}}
                    ),
                },
                "outputFacets": {"outputStatistics": facet(rowCount=3)},
            }
        ],
    }


@dataclass(frozen=True)
class Nasty:
    """One hostile body, with what must become of it where that is fixed."""

    name: str
    body: bytes
    #: The status `POST /api/v1/lineage` answers (None: any of `ALLOWED`).
    status: int | None = None
    #: Whether the event is accepted when read from a file (None: either).
    accepted: bool | None = None
    #: Sent again in a batch (items nested near the parsers' limits are not: one level more).
    in_batch: bool = True


def dump(value: Any) -> bytes:
    """JSON as Python writes it: NaN and Infinity literals, \\u escapes for the rest."""
    return json.dumps(value).encode("utf-8")


def put(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """`value` with the node at `path` replaced by `new` (in place)."""
    node = value
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return value


def at(tag: str, path: tuple[Any, ...], new: Any) -> dict[str, Any]:
    return put(event(tag), path, new)


def positions(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every node of a JSON value, the root excepted."""
    items: Any = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        yield (*path, key)
        if isinstance(child, dict | list):
            yield from positions(child, (*path, key))


def wrong_values(value: Any) -> list[Any]:
    """Values of other JSON types than `value`'s (and an empty string for a string)."""
    if isinstance(value, dict):
        return [None, "x", [], 7]
    if isinstance(value, list):
        return [None, "x", {}, 7]
    if isinstance(value, str):
        return [None, 7, [], {}, ""]
    return [None, "7", 1.5, True]


def wrong_types(per_position: int | None = None) -> list[Nasty]:
    """Every position of a RunEvent holding a value of every wrong type (or of
    `per_position` of them, the types taken in turn from one position to the next)."""
    out = []
    for number, path in enumerate(positions(event("base"))):
        node: Any = event("base")
        for key in path:
            node = node[key]
        values = wrong_values(node)
        if per_position is not None:
            values = [values[(number + k) % len(values)] for k in range(per_position)]
        for new in values:
            tag = f"wrong {'.'.join(map(str, path))} = {json.dumps(new)}"
            out.append(Nasty(tag, dump(at(tag, path, new))))
    return out


def deep(levels: int, leaf: str = "1") -> str:
    return '{"a":' * levels + leaf + "}" * levels


def spliced(tag: str, path: tuple[Any, ...], raw: str) -> bytes:
    """The event with raw JSON text (not a value) at `path`."""
    return dump(at(tag, path, "@@RAW@@")).replace(b'"@@RAW@@"', raw.encode("utf-8"))


def hand_written() -> list[Nasty]:
    big = "".join(random.Random(7).choices("abcdefghijklmnopqrstuvwxyz0123456789", k=2 * MB))
    noise = "".join(random.Random(8).choices("abcdefghijklmnopqrstuvwxyz", k=3000))
    many = at("most inputs", ("inputs",), [])
    many["inputs"] = [
        {"namespace": "postgres://db:5432", "name": f"shop.public.t{i}"}
        for i in range(MAX_DATASETS - 1)  # and one output: at the limit
    ]
    too_many = at("too many", ("inputs",), many["inputs"] + [{"namespace": "a", "name": "b"}])
    dataset_event = {
        "eventTime": "2024-06-01T12:00:00Z",
        "producer": PRODUCER,
        "schemaURL": DATASET_EVENT,
        "dataset": {"namespace": "s3://curated", "name": "dataset event"},
    }
    nan = at("nan", ("inputs", 0, "facets", "stats"), facet(mean=float("nan")))
    put(nan, ("run", "facets", "stats"), facet(inf=float("inf"), ninf=float("-inf")))
    put(nan, ("job", "facets", "stats"), facet(v=float("nan")))
    put(nan, ("outputs", 0, "outputFacets", "stats"), facet(v=[float("inf")]))
    put(
        nan,
        ("outputs", 0, "facets", "schema", "fields"),
        [{"name": "id", "type": "int", "precision": float("nan"), "fields": [{"name": "x"}]}],
    )
    good = dump(event("duplicate keys")).decode()
    assert good.startswith('{"eventType": "COMPLETE"')
    return [
        # huge strings, under the body limit
        Nasty("huge job name", dump(at("huge job name", ("job", "name"), big)), 201, True),
        Nasty("huge dataset name", dump(at("huge ds", ("outputs", 0, "name"), big)), 201, True),
        Nasty(
            "huge facet string",
            dump(at("huge facet", ("outputs", 0, "facets", "big"), facet(text=big))),
            201,
            True,
        ),
        Nasty("huge run facet", dump(at("huge run", ("run", "facets", "big"), {"v": big})), 201),
        Nasty("huge facet key", dump(at("huge key", ("job", "facets", big), facet())), 201, True),
        Nasty("long job namespace", dump(at("long ns", ("job", "namespace"), noise)), 400, False),
        Nasty(
            "long dataset namespace",
            dump(at("long ds ns", ("inputs", 0, "namespace"), f"s3://{noise}")),
            400,
            False,
        ),
        Nasty(
            "long symlink namespace",
            dump(
                at(
                    "long symlink",
                    ("inputs", 0, "facets", "symlinks", "identifiers", 0, "namespace"),
                    f"hive://{noise}",
                )
            ),
            201,
            True,
        ),
        Nasty(
            "long column lineage namespace",
            dump(
                at(
                    "long lineage",
                    ("outputs", 0, "facets", "columnLineage", "fields", "id", "inputFields"),
                    [{"namespace": noise, "name": "t", "field": "id"}],
                )
            ),
            201,
            True,
        ),
        Nasty(
            "long parent namespace",
            dump(at("long parent", ("run", "facets", "parent", "job", "namespace"), noise)),
            201,
            True,
        ),
        # deep nesting
        Nasty(
            "nesting 100 deep in a facet",
            spliced("deep 100", ("outputs", 0, "facets", "deep"), deep(100)),
            201,
            True,
        ),
        Nasty(
            "nesting 900 deep in a facet",
            spliced("deep 900", ("outputs", 0, "facets", "deep"), deep(900)),
            400,
            False,
            False,
        ),
        Nasty(
            "nesting 1020 deep in a run facet",
            spliced("deep 1020", ("run", "facets", "deep"), deep(1020)),
            400,
            False,
            False,
        ),
        Nasty(
            "nesting 5000 deep in a facet",
            spliced("deep 5000", ("outputs", 0, "facets", "deep"), deep(5000)),
            400,
            False,
        ),
        Nasty("nesting 100000 deep, objects", deep(100_000).encode(), 400, False),
        Nasty("nesting 100000 deep, arrays", b"[" * 100_000 + b"]" * 100_000, 400, False),
        Nasty("nesting 900 deep, arrays", b"[" * 900 + b"]" * 900, 422, False),
        # NaN and Infinity, as Python's json writes them
        Nasty("NaN and Infinity in facets", dump(nan), 201, True),
        Nasty("a huge float in a facet", spliced("1e999", ("job", "facets", "f"), "1e999"), 201),
        Nasty("NaN as runId", dump(at("nan id", ("run", "runId"), float("nan"))), 422, False),
        Nasty("Infinity as eventTime", dump(at("inf", ("eventTime",), float("inf"))), 422, False),
        Nasty("-Infinity as name", dump(at("-inf", ("job", "name"), float("-inf"))), 422, False),
        # invalid UTF-8 (read with replacement from files)
        Nasty(
            "invalid UTF-8 in a name",
            dump(at("bad utf8", ("job", "name"), "@@")).replace(b"@@", b"caf\xe9 \xff\xfe"),
            400,
            True,
        ),
        Nasty(
            "overlong and surrogate UTF-8",
            dump(at("overlong", ("outputs", 0, "name"), "@@")).replace(b"@@", b"\xc0\xaf\xed\xa0"),
            400,
            True,
        ),
        Nasty("invalid UTF-8 outside strings", b'{"eventType": \xff\xfe}', 400, False),
        Nasty("a truncated UTF-8 sequence", dump(event("truncated"))[:-3] + b"\xe2\x82", 400),
        # duplicate keys: the last one wins, as in every JSON parser producers use
        Nasty(
            "duplicate eventType",
            ('{"eventType": "START", ' + good[1:]).encode(),
            201,
            True,
        ),
        Nasty(
            "duplicate runId, the valid one last",
            dump(event("dup run")).replace(b'"runId": ', b'"runId": "nope", "runId": '),
            201,
            True,
        ),
        Nasty(
            "duplicate runId, the invalid one last",
            dump(event("dup run 2")).replace(
                b', "facets": {"parent"', b', "runId": "nope", "facets": {"parent"'
            ),
            422,
            False,
        ),
        # huge integers
        Nasty(
            "a 70-bit rowCount",
            dump(
                at("70 bits", ("outputs", 0, "outputFacets", "outputStatistics", "rowCount"), 2**70)
            ),
            201,
            True,
        ),
        Nasty(
            "a 400-digit integer in a facet",
            spliced("400 digits", ("outputs", 0, "facets", "n"), "9" * 400),
            201,
            True,
        ),
        Nasty(
            "a 5000-digit integer in a facet",
            spliced("5000 digits", ("outputs", 0, "facets", "n"), "9" * 5000),
            201,
            True,
        ),
        Nasty("a huge integer as runId", spliced("int id", ("run", "runId"), "9" * 30), 422, False),
        # empty strings
        Nasty("empty body", b"", 400, None),
        Nasty("empty object", b"{}", 422, False),
        Nasty("empty job name", dump(at("empty name", ("job", "name"), "")), 422, False),
        Nasty("blank namespace", dump(at("blank ns", ("job", "namespace"), "  ")), 422, False),
        Nasty("empty runId", dump(at("empty run", ("run", "runId"), "")), 422, False),
        Nasty("empty eventTime", dump(at("empty time", ("eventTime",), "")), 400, False),
        Nasty("empty eventType", dump(at("empty type", ("eventType",), "")), 201, True),
        Nasty("empty dataset name", dump(at("empty ds", ("inputs", 0, "name"), "")), 422, False),
        Nasty(
            "empty field name",
            dump(at("empty field", ("inputs", 0, "facets", "schema", "fields", 0, "name"), "")),
            201,
            True,
        ),
        Nasty("empty facet name", dump(at("empty facet", ("job", "facets", ""), facet())), 201),
        # NUL characters
        Nasty("NUL in a job name", dump(at("nul job", ("job", "name"), "a\x00b")), 422, False),
        Nasty("NUL in a namespace", dump(at("nul ns", ("job", "namespace"), "ns\x00")), 400, False),
        Nasty(
            "NUL in a dataset name",
            dump(at("nul ds", ("outputs", 0, "name"), "out\x00put")),
            422,
            False,
        ),
        Nasty(
            "NUL in a field name",
            dump(at("nul field", ("inputs", 0, "facets", "schema", "fields", 0, "name"), "i\x00d")),
            201,
            True,
        ),
        Nasty(
            "NUL in a field type",
            dump(at("nul type", ("outputs", 0, "facets", "schema", "fields", 0, "type"), "\x00")),
            201,
            True,
        ),
        Nasty(
            "NUL in a symlink name",
            dump(
                at(
                    "nul symlink",
                    ("inputs", 0, "facets", "symlinks", "identifiers", 0, "name"),
                    "x\x00",
                )
            ),
            201,
            True,
        ),
        Nasty(
            "NUL in a column lineage field",
            dump(
                at(
                    "nul lineage",
                    ("outputs", 0, "facets", "columnLineage", "fields", "id", "inputFields"),
                    [{"namespace": "ns", "name": "t\x00", "field": "id\x00"}],
                )
            ),
            201,
            True,
        ),
        Nasty(
            "NUL in the parent job",
            dump(at("nul parent", ("run", "facets", "parent", "job", "name"), "d\x00g")),
            201,
            True,
        ),
        Nasty(
            "NUL in a facet value and key",
            dump(at("nul facet", ("job", "facets", "n\x00"), facet(v="\x00"))),
            201,
            True,
        ),
        Nasty("a raw NUL byte", dump(event("raw nul")).replace(b"job ", b"job \x00"), 400, False),
        Nasty("only NUL bytes", b"\x00" * 64, 400, False),
        # lone surrogates (escaped; as UTF-8 bytes they are invalid UTF-8, above)
        Nasty(
            "a lone high surrogate in a name",
            spliced("hi surrogate", ("job", "name"), '"job \\ud800"'),
            400,
            False,
        ),
        Nasty(
            "a lone low surrogate in a facet",
            spliced("lo surrogate", ("outputs", 0, "facets", "s"), '{"v": "\\udfff"}'),
            400,
            False,
        ),
        Nasty(
            "a lone surrogate in a key",
            spliced("key surrogate", ("job", "facets"), '{"\\ud800": {}}'),
            400,
            False,
        ),
        Nasty(
            "a surrogate pair (an emoji) in a name",
            spliced("pair", ("job", "name"), '"job \\ud83d\\ude00"'),
            201,
            True,
        ),
        Nasty(
            "an escaped backslash before u-d800 (no surrogate)",
            spliced("backslash", ("job", "name"), '"job \\\\ud800"'),
            201,
            True,
        ),
        # times at the ends of the calendar
        Nasty(
            "eventTime before year 1 in UTC",
            dump(at("min time", ("eventTime",), "0001-01-01T00:00:00+01:00")),
            400,
            False,
        ),
        Nasty(
            "eventTime after year 9999 in UTC",
            dump(at("max time", ("eventTime",), "9999-12-31T23:59:59-01:00")),
            400,
            False,
        ),
        Nasty(
            "eventTime in year 1",
            dump(at("year 1", ("eventTime",), "0001-01-01T00:00:00Z")),
            201,
            True,
        ),
        Nasty(
            "nominalTime out of range",
            dump(
                at(
                    "nominal",
                    ("run", "facets", "nominalTime", "nominalStartTime"),
                    "0001-01-01T00:00:00+05:00",
                )
            ),
            201,
            True,
        ),
        # not a RunEvent
        Nasty("a DatasetEvent", dump(dataset_event), 201, True),
        Nasty(
            "a DatasetEvent without a dataset",
            dump({**dataset_event, "dataset": "x"}),
            422,
            False,
        ),
        Nasty("a JSON string", b'"event"', 422, False),
        Nasty("JSON null", b"null", 422, False),
        # sizes (last: the catalog is larger after it)
        Nasty("one dataset over the limit", dump(too_many), 413, False),
        Nasty(f"{MAX_DATASETS} datasets", dump(many), 201, True),
    ]


#: Every nasty body, for the parser.
EVERY = wrong_types() + hand_written()
#: What goes through a catalog: the hand-written ones, and one wrong type in every position.
CORPUS = wrong_types(per_position=1) + hand_written()


# -- what the catalog holds ---------------------------------------------------------------


def counts(store: Store) -> dict[str, int]:
    """Rows of every table of the catalog."""
    union = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in TABLES)
    with store.engine.connect() as conn:
        return {name: int(n) for name, n in conn.execute(text(union)).all()}


def grown(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {t: after[t] - before[t] for t in TABLES if after[t] != before[t]}


def asset_ids(store: Store, uris: set[str]) -> dict[str, int]:
    """The asset each URI names, directly or as an alias."""
    found: dict[str, int] = {}
    ordered = sorted(uris)
    with store.engine.connect() as conn:
        for start in range(0, len(ordered), 500):
            part = ordered[start : start + 500]
            for table, column in (("asset", "id"), ("alias", "asset_id")):
                rows = conn.execute(
                    text(f"SELECT uri, {column} FROM {table} WHERE uri IN :uris").bindparams(
                        bindparam("uris", expanding=True)
                    ),
                    {"uris": part},
                )
                found.update({uri: asset_id for uri, asset_id in rows})
    return found


def assert_projected(store: Store, value: Any) -> None:
    """Everything the accepted event says is in the catalog: job, run, datasets, links, fields."""
    parsed = parse_event(value)
    refs = [("input", r) for r in parsed.inputs] + [("output", r) for r in parsed.outputs]
    uris = {r.uri for _, r in refs} | ({parsed.job_uri} if parsed.job_uri else set())
    ids = asset_ids(store, uris)
    assert uris <= set(ids), sorted(uris - set(ids))[:3]
    with store.engine.connect() as conn:
        if parsed.job_uri is not None:
            version = conn.execute(
                text("SELECT current_version FROM asset WHERE id = :i"), {"i": ids[parsed.job_uri]}
            ).scalar_one()
            assert version >= 1
        if parsed.run_id is not None:
            run = conn.execute(
                text("SELECT id, job_id FROM run WHERE run_uuid = :u"), {"u": parsed.run_id}
            ).one()
            assert run.job_id == ids[parsed.job_uri or ""]
            links = set(
                conn.execute(
                    text("SELECT asset_id, direction FROM run_dataset WHERE run_id = :r"),
                    {"r": run.id},
                ).all()
            )
            assert {(ids[r.uri], d) for d, r in refs} <= links
        for _, ref in refs:
            if ref.fields is None:
                continue
            fields = conn.execute(
                text(
                    "SELECT f.name, f.type FROM asset a JOIN asset_version v"
                    " ON v.asset_id = a.id AND v.version = a.current_version"
                    " JOIN asset_field f ON f.version_id = v.id WHERE a.id = :i"
                    " ORDER BY f.position"
                ),
                {"i": ids[ref.uri]},
            ).all()
            # Every field the event names is there, with the event's type where it gives
            # one (an untyped field never retypes what another event typed, and a partial
            # schema removes nothing: README, Sources and evidence).
            stored = {name: type_ for name, type_ in fields}
            for f in ref.fields:
                assert f["name"] in stored
                if f.get("type"):
                    assert stored[f["name"]] == f["type"]


def assert_written_whole(
    store: Store, before: dict[str, int], value: Any, status: str, stored: bool = True
) -> dict[str, int]:
    """A rejected event (or a duplicate) added its raw row only; an accepted one, everything.
    Returns the rows of every table now."""
    after = counts(store)
    added = grown(before, after)
    if status != "accepted":
        assert added == ({"raw_event": 1} if stored else {}), added
        return after
    assert added.get("raw_event") == 1, added
    assert_projected(store, value)
    return after


def verdict(value: Any) -> bool:
    """Whether the parser accepts a decoded value; it never raises anything but EventRejected."""
    try:
        parse_event(value)
    except EventRejected as err:
        assert err.status in (400, 413, 422)
        return False
    return True


# -- the parser and the ingester ----------------------------------------------------------


def test_the_parser_answers_every_nasty_body_with_an_event_or_a_rejection(tmp_path: Path) -> None:
    for item in EVERY:
        docs = list(split_documents(item.body.decode("utf-8", "replace")))
        path = tmp_path / "event.json"
        path.write_bytes(item.body)
        from_file = [(raw, value) for raw, value, _ in read_path(str(path))]
        assert len(docs) == len(from_file) <= 1, item.name
        if not docs:
            assert item.accepted is None, item.name
            continue
        (_, value), (_, file_value) = docs[0], from_file[0]
        accepted = not isinstance(value, DecodeFailed) and verdict(value)
        assert accepted == (not isinstance(file_value, DecodeFailed) and verdict(file_value))
        if item.accepted is not None:
            assert accepted == item.accepted, item.name
        try:
            strict = loads(item.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            continue
        assert verdict(strict) == accepted, item.name


def test_the_ingester_writes_each_nasty_event_whole_or_only_its_raw_row(
    store: Store, tmp_path: Path
) -> None:
    ingester = Ingester(store)
    before = counts(store)
    for item in CORPUS:
        path = tmp_path / "event.json"
        path.write_bytes(item.body)
        documents = list(read_path(str(path)))
        results = ingester.ingest(documents)
        if not documents:
            assert counts(store) == before
            continue
        [(_, value, _)] = documents
        [result] = results
        assert result.http_status in ALLOWED, (item.name, result.error)
        if item.accepted is not None:
            assert (result.status == "accepted") == item.accepted, (item.name, result.error)
        before = assert_written_whole(store, before, value, result.status)
        if result.status == "rejected":
            with store.engine.connect() as conn:
                error = conn.execute(
                    text("SELECT error FROM raw_event ORDER BY id DESC LIMIT 1")
                ).scalar_one()
            assert error == result.error


# -- the endpoint ---------------------------------------------------------------------------


@pytest.fixture
def served_big(catalog_url: str, tmp_path: Path) -> Iterator[tuple[Served, Store]]:
    """`steward serve` with an 8 MB body limit, and the catalog it writes to."""
    store = Store(catalog_url)
    try:
        with steward_serve(
            catalog_url, tmp_path / "serve.log", "--max-body", "8MB", token=TOKEN
        ) as server:
            yield server, store
    finally:
        store.dispose()


@pytest.mark.slow
def test_steward_serve_answers_every_nasty_event_without_a_500_or_a_partial_write(
    served_big: tuple[Served, Store],
) -> None:
    server, store = served_big
    headers = {"Authorization": f"Bearer {TOKEN}"}
    single: dict[str, str] = {}
    before = counts(store)
    with httpx.Client(base_url=server.base, headers=headers, timeout=60) as http:
        for item in CORPUS:
            response = http.post("/api/v1/lineage", content=item.body)
            assert response.status_code in ALLOWED, (item.name, response.text[:300])
            if item.status is not None:
                assert response.status_code == item.status, (item.name, response.text[:300])
            answer = response.json()
            undecodable = answer.get("field") == "(body)"
            status = answer.get("status", "rejected")
            single[item.name] = status
            value = loads(item.body.decode("utf-8")) if status == "accepted" else None
            before = assert_written_whole(store, before, value, status, stored=not undecodable)
            if status == "accepted":
                assert response.status_code == 201
        assert http.get("/health").json() == {"status": "ok"}

        # The same events in one batch: the same outcome each, none an internal error.
        batch = [
            item
            for item in CORPUS
            if item.in_batch and len(item.body) < 100_000 and _decodes(item.body)
        ]
        response = http.post(
            "/api/v1/lineage/batch", content=b"[" + b",".join(i.body for i in batch) + b"]"
        )
        assert response.status_code == 200, response.text[:300]
        results = response.json()["results"]
        assert len(results) == len(batch)
        for item, result in zip(batch, results, strict=True):
            expected = "duplicate" if single[item.name] != "rejected" else "rejected"
            assert result["status"] == expected, (item.name, result)
        assert http.get("/health").json() == {"status": "ok"}
    assert "Traceback" not in server.log.read_text(errors="replace")


def _decodes(body: bytes) -> bool:
    try:
        loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return True


# -- random mutations of a valid event ----------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.lists(st.characters() | st.characters(categories=["Cs"]), max_size=8).map("".join),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
PATHS = list(positions(event("base")))
#: The run id of every mutated event, made unique per example by the test.
MUTATED_RUN = str(uuid5(NAMESPACE_URL, "mutated"))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A valid event with a few subtrees replaced by arbitrary JSON or dropped, as JSON text."""
    value = event("mutated")
    for path in draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=3)):
        parent: Any = value
        try:
            for key in path[:-1]:
                parent = parent[key]
            if draw(st.booleans()):
                parent[path[-1]] = draw(JSON)
            elif isinstance(parent, dict):
                parent.pop(path[-1], None)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    return json.dumps(value)


@pytest.fixture(scope="module")
def sqlite_ingester(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Ingester]]:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('hypothesis') / 'c.db'}")
    yield store, Ingester(store)
    store.dispose()


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=mutated())
def test_a_mutated_event_is_parsed_or_rejected_and_ingested_whole(
    sqlite_ingester: tuple[Store, Ingester], body: str
) -> None:
    store, ingester = sqlite_ingester
    body = body.replace(MUTATED_RUN, str(uuid4()))  # a run of its own, whatever came before
    try:
        value = loads(body)
    except ValueError:
        return  # a lone surrogate: not Unicode text, the body is refused before parsing
    accepted = verdict(value)
    before = counts(store)
    [result] = ingester.ingest([(body, value, "hypothesis")])
    assert result.http_status in ALLOWED, result.error
    assert result.status in (("accepted", "duplicate") if accepted else ("rejected",))
    assert_written_whole(store, before, value, result.status)


# -- memory and the body limit ------------------------------------------------------------


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def padded(tag: str, size: int, where: str) -> bytes:
    """An event of exactly `size` bytes, its padding in a facet, a schema field or a name."""
    path, value = {
        "facet": (("outputs", 0, "facets", "pad"), facet(text="@@")),
        "schema": (("outputs", 0, "facets", "schema", "fields"), [{"name": "@@"}]),
        "name": (("outputs", 0, "name"), "@@"),
    }[where]
    body = dump(at(tag, path, value))
    return body.replace(b"@@", b"x" * (size - len(body) + 2))


def test_memory_stays_bounded_by_the_body_limit(tmp_path: Path) -> None:
    """With a 1 MB limit: bodies at it (distinct big events, a batch at its most events,
    350,000 tiny objects) and far over it (plain, chunked, gzip and deflate bombs).
    Over-limit bodies get 413, and the server's peak RSS grows by a bounded multiple of
    the limit (beside SQLite's page cache), however many large events it has read."""
    limit = MB
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    store = Store(catalog)
    with store.engine.connect() as conn:
        pages = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
    store.dispose()
    page_cache = -pages * 1024 if pages < 0 else pages * 4096  # KiB when negative
    at_limit = [
        padded(f"at limit {i}", limit, ("facet", "schema", "name")[i % 3]) for i in range(24)
    ]
    assert {len(body) for body in at_limit} == {limit}
    tiny = b"[" + b",".join([b"{}"] * ((limit - 2) // 3)) + b"]"
    assert len(tiny) <= limit
    full_batch = b"[" + b",".join([b"{}"] * MAX_BATCH) + b"]"
    huge = 64 * MB
    bomb = gzip.compress(b" " * huge + b"{}", 9)
    deflate_bomb = zlib.compress(b"[" + b"{}," * (huge // 3) + b"{}]", 9)
    assert len(bomb) < limit and len(deflate_bomb) < limit
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        steward_serve(catalog, tmp_path / "serve.log", "--max-body", "1MB", token=TOKEN) as server,
        httpx.Client(base_url=server.base, headers=headers, timeout=60) as http,
    ):
        assert http.post("/api/v1/lineage", content=dump(event("warm up"))).status_code == 201
        start = peak_rss(server.pid)

        def post(body: bytes | Iterator[bytes], path: str = "", encoding: str = "") -> int:
            extra = {"Content-Encoding": encoding} if encoding else {}
            return http.post(f"/api/v1/lineage{path}", content=body, headers=extra).status_code

        assert [post(body) for body in at_limit] == [201] * len(at_limit)
        assert post(gzip.compress(at_limit[0] + b" ", 1), encoding="gzip") == 413
        assert post(at_limit[1] + b" ") == 413
        assert post(tiny) == 422  # not an object
        assert post(tiny, "/batch") == 413  # more events than a batch may hold
        assert post(full_batch, "/batch") == 200
        assert post(b"x" * huge) == 413
        assert post(_chunks(huge)) == 413  # no Content-Length to refuse it by
        assert post(bomb, encoding="gzip") == 413
        assert post(deflate_bomb, "/batch", encoding="deflate") == 413
        assert http.get("/health").status_code == 200
        growth = peak_rss(server.pid) - start
    # Decoding is what costs most: 3 bytes of `{},` become a 64-byte dict, so the body of
    # 350,000 of them takes some 50 MB; everything else (two bombs, a batch of 10,000
    # events, 24 MB of distinct large events) must fit beside it.
    assert growth < 100 * limit + page_cache, f"peak RSS grew by {growth / MB:.0f} MB"


def _chunks(size: int) -> Iterator[bytes]:
    """A body sent chunked, with no Content-Length to refuse it by."""
    block = b"x" * MB
    for _ in range(size // MB):
        yield block


# -- names that would drive a terminal ----------------------------------------------------

ESCAPES = ["\x1b]0;owned\x07", "\x1b[2J", "\x1b]52;c;ZXZpbA==\x07", "\x9b31m", "\u202e"]


def test_names_with_terminal_escapes_are_printed_escaped(tmp_path: Path) -> None:
    """A dataset and a job named with escape sequences (a title change, a screen
    clear, an OSC 52 clipboard write, a C1 CSI, a bidi override): no command prints
    one raw, in tables, in `show`, in `lineage`, in `check`, or as JSON."""
    from click.testing import CliRunner

    from catalog.cli import cli

    name = "shop.public.evil" + "".join(ESCAPES)
    value = event("escapes")
    value["job"]["name"] = "job" + ESCAPES[0]
    value["outputs"][0]["name"] = name
    path = tmp_path / "e.json"
    path.write_text(json.dumps(value))
    catalog = ["--catalog", f"sqlite:///{tmp_path / 'c.db'}"]
    runner = CliRunner()
    assert runner.invoke(cli, [*catalog, "ingest", str(path)]).exit_code == 0
    outputs = []
    for args in (
        ["assets"],
        ["assets", "--json"],
        ["show", "evil"],
        ["show", "evil", "--json"],
        ["lineage", "upstream", "evil"],
        ["lineage", "downstream", "shop.public.orders"],
        ["check"],
        ["findings"],
        ["show", "nothing-called-this" + ESCAPES[1]],
    ):
        result = runner.invoke(cli, [*catalog, *args])
        assert result.exit_code in (0, 1, 2), (args, result.output)
        outputs.append(result.stdout + result.stderr)
    text = "\n".join(outputs)
    assert "evil" in text and "\\x1b" in text
    assert not any(escape in text for escape in ("\x1b", "\x07", "\x9b", "\u202e")), text[:2000]
