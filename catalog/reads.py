"""Paged, set-wise reads of the catalog for the HTTP read APIs.

Each function answers one question with one or two indexed statements and
returns the rows as they are (SQLAlchemy rows, named like the columns); the
HTTP layer only shapes them. A page is `(rows, total)`.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, literal, or_, select, union_all

from catalog import textsearch
from catalog.db import CHUNK
from catalog.errors import InvalidInput
from catalog.identity import asset_uri, job_uri, normalize_namespace
from catalog.models import (
    COLLECTED,
    Alias,
    Asset,
    AssetField,
    AssetVersion,
    Edge,
    RawEvent,
    Run,
    RunDataset,
    key_hash,
)

ASSET = Asset.__table__  # type: ignore[attr-defined]
ALIAS = Alias.__table__  # type: ignore[attr-defined]
EDGE = Edge.__table__  # type: ignore[attr-defined]
FIELD = AssetField.__table__  # type: ignore[attr-defined]
VERSION = AssetVersion.__table__  # type: ignore[attr-defined]
RUN = Run.__table__  # type: ignore[attr-defined]
RUN_DATASET = RunDataset.__table__  # type: ignore[attr-defined]
RAW = RawEvent.__table__  # type: ignore[attr-defined]
#: Edge kinds that are field-level, not asset-level lineage.
FIELD_EDGES = ("column_lineage",)

Page = tuple[list[Any], int]


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    ordered = sorted(set(ids))
    return [ordered[i : i + CHUNK] for i in range(0, len(ordered), CHUNK)]


def _is_job(jobs: bool) -> Any:
    return ASSET.c.kind == "job" if jobs else ASSET.c.kind != "job"


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def namespaces(
    conn: Connection, limit: int, offset: int, name: str | None = None, *, datasets: bool = False
) -> Page:
    """Namespaces of live assets (only those holding datasets: a dataset's source), with
    when they were first and last seen."""
    query = (
        select(
            ASSET.c.namespace.label("name"),
            func.min(ASSET.c.created_at).label("created_at"),
            func.max(ASSET.c.updated_at).label("updated_at"),
        )
        .where(ASSET.c.deleted.is_(False))
        .group_by(ASSET.c.namespace)
    )
    if datasets:
        query = query.where(_is_job(False))
    if name is not None:
        query = query.where(ASSET.c.namespace == name)
    # One pass over the assets: the page and, beside each row, how many namespaces
    # there are (a count of its own would group every asset a second time).
    rows = conn.execute(
        query.add_columns(func.count().over().label("total"))
        .order_by(ASSET.c.namespace)
        .limit(limit)
        .offset(offset)
    ).all()
    if rows:
        return list(rows), int(rows[0].total)
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    return [], int(total)


def namespace_exists(conn: Connection, name: str) -> bool:
    """Whether a live asset or job is in namespace `name` (one index probe)."""
    found = conn.execute(
        select(ASSET.c.id)
        .where(ASSET.c.namespace == name)
        .where(ASSET.c.deleted.is_(False))
        .limit(1)
    ).first()
    return found is not None


def key_candidates(namespace: str, name: str, *, job: bool = False) -> list[str]:
    """Key hashes an API's (namespace, name) may be stored under: as given and normalised,
    in the jobs' key space or the datasets'."""
    uri = job_uri if job else asset_uri
    uris = {uri(namespace, name)}
    with contextlib.suppress(InvalidInput):
        uris.add(uri(normalize_namespace(namespace), name))
    return [key_hash(u) for u in sorted(uris)]


def asset_by_key(conn: Connection, namespace: str, name: str, *, job: bool) -> Any | None:
    """The job (or dataset) named (namespace, name) directly or by an alias; None if unknown."""
    hashes = key_candidates(namespace, name, job=job)
    row = conn.execute(
        select(ASSET).where(ASSET.c.key_hash.in_(hashes)).where(_is_job(job))
    ).first()
    if row is not None:
        return row
    return conn.execute(
        select(ASSET)
        .join(ALIAS, ALIAS.c.asset_id == ASSET.c.id)
        .where(ALIAS.c.key_hash.in_(hashes))
        .where(_is_job(job))
    ).first()


def assets_by_id(conn: Connection, ids: Sequence[int]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for part in _chunks(ids):
        out.update({r.id: r for r in conn.execute(select(ASSET).where(ASSET.c.id.in_(part)))})
    return out


def assets_page(
    conn: Connection,
    *,
    jobs: bool,
    namespace: str | None,
    limit: int,
    offset: int,
    kind: str | None = None,
    query: str | None = None,
    include_deleted: bool = False,
    order: str = "name",
) -> Page:
    """Jobs (or datasets), optionally of one namespace or kind or matching a LIKE pattern."""
    where = [_is_job(jobs)]
    if namespace is not None:
        where.append(ASSET.c.namespace == namespace)
    if kind is not None:
        where.append(ASSET.c.kind == kind)
    if query:
        where.append(textsearch.matching(conn, ASSET.c.id, ASSET.c.name, "name", query, "\\"))
    if not include_deleted:
        where.append(ASSET.c.deleted.is_(False))
    if order == "uri":
        ordering = [ASSET.c.uri]
    else:
        ordering = textsearch.name_order(conn, ASSET.c.name, ASSET.c.namespace)
    # The page's ids in order (through the index of the order where there is one),
    # then their rows; the count only when the page does not tell it.
    page = conn.execute(
        select(ASSET.c.id).where(*where).order_by(*ordering).limit(limit).offset(offset)
    ).all()
    if limit and len(page) < limit and (page or offset == 0):
        total = offset + len(page)
    else:
        total = conn.execute(select(func.count()).select_from(ASSET).where(*where)).scalar_one()
    found = assets_by_id(conn, [r.id for r in page])
    return [found[r.id] for r in page], int(total)


#: What the APIs show of a field (its attributes, JSON, are read by nobody here).
_FIELD_COLUMNS = [
    FIELD.c.version_id,
    FIELD.c.asset_id,
    FIELD.c.position,
    FIELD.c.name,
    FIELD.c.type,
    FIELD.c.description,
]


def current_fields(conn: Connection, asset_ids: Sequence[int]) -> dict[int, list[Any]]:
    """The fields (`_FIELD_COLUMNS`) of each asset's current version, in order."""
    out: dict[int, list[Any]] = defaultdict(list)
    for part in _chunks(asset_ids):
        rows = conn.execute(
            select(*_FIELD_COLUMNS)
            .join(VERSION, VERSION.c.id == FIELD.c.version_id)
            .join(ASSET, ASSET.c.id == VERSION.c.asset_id)
            .where(VERSION.c.version == ASSET.c.current_version)
            .where(ASSET.c.id.in_(part))
            .order_by(FIELD.c.asset_id, FIELD.c.position)
        )
        for f in rows:
            out[f.asset_id].append(f)
    return out


def version_fields(conn: Connection, version_ids: Sequence[int]) -> dict[int, list[Any]]:
    """The fields (`_FIELD_COLUMNS`) of each version, in order."""
    out: dict[int, list[Any]] = defaultdict(list)
    for part in _chunks(version_ids):
        rows = conn.execute(
            select(*_FIELD_COLUMNS).where(FIELD.c.version_id.in_(part)).order_by(FIELD.c.position)
        )
        for f in rows:
            out[f.version_id].append(f)
    return out


def versions(conn: Connection, asset_id: int, limit: int, offset: int) -> Page:
    """An asset's versions, newest first."""
    where = VERSION.c.asset_id == asset_id
    total = conn.execute(select(func.count()).select_from(VERSION).where(where)).scalar_one()
    rows = conn.execute(
        select(VERSION).where(where).order_by(VERSION.c.version.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), int(total)


def all_versions(conn: Connection, asset_ids: Sequence[int]) -> dict[int, list[Any]]:
    """Every version (number, created_at; no definitions) of each asset, oldest first."""
    out: dict[int, list[Any]] = defaultdict(list)
    for part in _chunks(asset_ids):
        rows = conn.execute(
            select(VERSION.c.id, VERSION.c.asset_id, VERSION.c.version, VERSION.c.created_at)
            .where(VERSION.c.asset_id.in_(part))
            .order_by(VERSION.c.asset_id, VERSION.c.version)
        )
        for v in rows:
            out[v.asset_id].append(v)
    return out


def _run_order() -> list[Any]:
    when = func.coalesce(RUN.c.started_at, RUN.c.state_time, RUN.c.created_at)
    return [when.desc(), RUN.c.id.desc()]


def latest_runs(conn: Connection, job_ids: Sequence[int]) -> dict[int, Any]:
    """Each job's latest run (by start, else state time)."""
    out: dict[int, Any] = {}
    for part in _chunks(job_ids):
        for run in conn.execute(select(RUN).where(RUN.c.job_id.in_(part))):
            best = out.get(run.job_id)
            if best is None or _run_key(run) > _run_key(best):
                out[run.job_id] = run
    return out


def _run_key(run: Any) -> tuple[datetime | None, int]:
    return (run.started_at or run.state_time or run.created_at, run.id)


def runs_of_job(conn: Connection, job_id: int, limit: int, offset: int) -> Page:
    """A job's runs, newest first."""
    where = RUN.c.job_id == job_id
    total = conn.execute(select(func.count()).select_from(RUN).where(where)).scalar_one()
    rows = conn.execute(
        select(RUN).where(where).order_by(*_run_order()).limit(limit).offset(offset)
    ).all()
    return list(rows), int(total)


def run_by_uuid(conn: Connection, run_uuid: str) -> Any | None:
    return conn.execute(select(RUN).where(RUN.c.run_uuid == run_uuid)).first()


def run_datasets(conn: Connection, run_ids: Sequence[int]) -> dict[int, list[Any]]:
    """What each run read and wrote: dataset key, version number, direction, facets."""
    out: dict[int, list[Any]] = defaultdict(list)
    for part in _chunks(run_ids):
        rows = conn.execute(
            select(
                RUN_DATASET.c.run_id,
                RUN_DATASET.c.direction,
                RUN_DATASET.c.facets,
                ASSET.c.namespace,
                ASSET.c.name,
                ASSET.c.uri,
                func.coalesce(VERSION.c.version, ASSET.c.current_version).label("version"),
            )
            .join(ASSET, ASSET.c.id == RUN_DATASET.c.asset_id)
            .outerjoin(VERSION, VERSION.c.id == RUN_DATASET.c.version_id)
            .where(RUN_DATASET.c.run_id.in_(part))
            .order_by(RUN_DATASET.c.run_id, RUN_DATASET.c.direction, ASSET.c.uri)
        )
        for r in rows:
            out[r.run_id].append(r)
    return out


def creating_runs(conn: Connection, asset_id: int, version_ids: Sequence[int]) -> dict[int, Any]:
    """The run that first wrote each of a dataset's versions (if a run did)."""
    out: dict[int, Any] = {}
    for part in _chunks(version_ids):
        rows = conn.execute(
            select(RUN, RUN_DATASET.c.version_id.label("written_version"))
            .join(RUN_DATASET, RUN_DATASET.c.run_id == RUN.c.id)
            .where(RUN_DATASET.c.asset_id == asset_id)
            .where(RUN_DATASET.c.direction == "output")
            .where(RUN_DATASET.c.version_id.in_(part))
            .order_by(RUN.c.id)
        )
        for r in rows:
            out.setdefault(r.written_version, r)
    return out


def last_modified(conn: Connection, asset_ids: Sequence[int]) -> dict[int, datetime]:
    """When a completed run last wrote each dataset."""
    out: dict[int, datetime] = {}
    for part in _chunks(asset_ids):
        rows = conn.execute(
            select(RUN_DATASET.c.asset_id, func.max(RUN.c.ended_at).label("at"))
            .join(RUN, RUN.c.id == RUN_DATASET.c.run_id)
            .where(RUN_DATASET.c.direction == "output")
            .where(RUN.c.state == "COMPLETE")
            .where(RUN_DATASET.c.asset_id.in_(part))
            .group_by(RUN_DATASET.c.asset_id)
        )
        out.update({r.asset_id: r.at for r in rows if r.at is not None})
    return out


def job_io(conn: Connection, job_ids: Sequence[int]) -> dict[int, dict[str, list[Any]]]:
    """Each job's inputs (what it reads) and outputs (what it writes), by dataset key."""
    out: dict[int, dict[str, list[Any]]] = defaultdict(lambda: {"inputs": [], "outputs": []})
    for part in _chunks(job_ids):
        ends = [
            # (the job's end of the edge, the dataset's end, which list)
            (EDGE.c.target_id, EDGE.c.source_id, "inputs"),
            (EDGE.c.source_id, EDGE.c.target_id, "outputs"),
        ]
        reads, writes = (
            select(job.label("job_id"), literal(side).label("side"), ASSET.c.namespace)
            .add_columns(ASSET.c.name)
            .join(ASSET, ASSET.c.id == dataset)
            .where(job.in_(part))
            .where(EDGE.c.kind.not_in(FIELD_EDGES))
            for job, dataset, side in ends
        )
        seen: set[tuple[int, str, str, str]] = set()
        for r in conn.execute(union_all(reads, writes)):
            key = (r.job_id, r.side, r.namespace, r.name)
            if key not in seen:
                seen.add(key)
                out[r.job_id][r.side].append(r)
    for sides in out.values():
        for rows in sides.values():
            rows.sort(key=lambda r: (r.namespace, r.name))
    return out


def edges_around(conn: Connection, ids: Sequence[int], *, field_level: bool) -> list[Any]:
    """Edges touching any of `ids`: asset-level ones, or the field-level ones."""
    kind = EDGE.c.kind.in_(FIELD_EDGES) if field_level else EDGE.c.kind.not_in(FIELD_EDGES)
    out: list[Any] = []
    for part in _chunks(ids):
        out += conn.execute(
            select(EDGE.c.source_id, EDGE.c.target_id, EDGE.c.origin_id, EDGE.c.fields)
            .where(or_(EDGE.c.source_id.in_(part), EDGE.c.target_id.in_(part)))
            .where(kind)
        ).all()
    return out


def search(
    conn: Connection,
    pattern: str,
    *,
    jobs: bool | None,
    namespace: str | None,
    before: datetime | None,
    after: datetime | None,
    by_updated: bool,
    limit: int,
) -> Page:
    """Jobs and datasets whose name matches a case-insensitive LIKE `pattern`."""
    matches = textsearch.matching(conn, ASSET.c.id, ASSET.c.name, "name", pattern)
    where = [ASSET.c.deleted.is_(False), matches]
    if jobs is not None:
        where.append(_is_job(jobs))
    if namespace is not None:
        where.append(ASSET.c.namespace == namespace)
    if before is not None:
        where.append(ASSET.c.updated_at < before)
    if after is not None:
        where.append(ASSET.c.updated_at > after)
    order = [ASSET.c.updated_at.desc()] if by_updated else [ASSET.c.name, ASSET.c.namespace]
    # One pass: the page and, beside each row, how many rows matched in all.
    rows = conn.execute(
        select(
            ASSET.c.id,
            ASSET.c.namespace,
            ASSET.c.name,
            ASSET.c.kind,
            ASSET.c.updated_at,
            func.count().over().label("total"),
        )
        .where(*where)
        .order_by(*order, ASSET.c.id)
        .limit(limit)
    ).all()
    if rows:
        return list(rows), int(rows[0].total)
    if limit:
        return [], 0
    total = conn.execute(select(func.count()).select_from(ASSET).where(*where)).scalar_one()
    return [], int(total)


def raw_events(
    conn: Connection,
    *,
    before: datetime | None,
    after: datetime | None,
    ascending: bool,
    limit: int,
    offset: int,
) -> Page:
    """Accepted events as received, by the time they were received."""
    where = [RAW.c.status == "accepted", RAW.c.body != COLLECTED]
    if before is not None:
        where.append(RAW.c.received_at < before)
    if after is not None:
        where.append(RAW.c.received_at > after)
    total = conn.execute(select(func.count()).select_from(RAW).where(and_(*where))).scalar_one()
    order = (
        [RAW.c.received_at, RAW.c.id] if ascending else [RAW.c.received_at.desc(), RAW.c.id.desc()]
    )
    rows = conn.execute(
        select(RAW.c.id, RAW.c.body, RAW.c.received_at)
        .where(and_(*where))
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), int(total)


def keys_of(conn: Connection, uris: Sequence[str]) -> dict[str, Any]:
    """The (namespace, name) of each asset URI the catalog knows."""
    wanted = {key_hash(u): u for u in uris}
    out: dict[str, Any] = {}
    hashes = sorted(wanted)
    for i in range(0, len(hashes), CHUNK):
        rows = conn.execute(
            select(ASSET.c.key_hash, ASSET.c.namespace, ASSET.c.name).where(
                ASSET.c.key_hash.in_(hashes[i : i + CHUNK])
            )
        )
        out.update({wanted[r.key_hash]: r for r in rows})
    return out


def version_row(conn: Connection, asset_id: int, number: int) -> Any | None:
    return conn.execute(
        select(VERSION).where(VERSION.c.asset_id == asset_id).where(VERSION.c.version == number)
    ).first()
