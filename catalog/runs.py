"""Runs a tracking system reports (MLflow's), written to the same tables as OpenLineage's.

A run is a run of a job (`run`), with what it read and wrote (`run_dataset`):
the OpenLineage ingester fills them from events, `record_runs` from a
connector's `RunSpec`s, so the same views, API and report serve both.
Recording is idempotent: a run whose state, times, facets and datasets are
unchanged is not written again, so an unchanged re-scan writes nothing.
`run_marks` tells a connector where its last scan stopped, so that a re-scan
reads only what changed since.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from catalog.apply import ensure_assets
from catalog.db import CHUNK, update_by_id
from catalog.identity import AssetKey, job_uri, kind_uri
from catalog.models import Asset, Run, RunDataset, utcnow
from catalog.specs import RunIOSpec, RunSpec

ASSET = Asset.__table__  # type: ignore[attr-defined]
RUN = Run.__table__  # type: ignore[attr-defined]
RUN_DATASET = RunDataset.__table__  # type: ignore[attr-defined]
#: States of a run that can still change.
OPEN_STATES = ("START", "RUNNING", "OTHER")


@dataclass
class RunMarks:
    """Where the last scan of a namespace's runs stopped."""

    #: The latest start or end time of a run recorded there (None: never scanned).
    since: datetime | None = None
    #: Runs recorded as not finished yet: read again whatever their times.
    open_runs: list[str] = field(default_factory=list)
    #: How many runs are recorded there.
    known: int = 0


def run_marks(conn: Connection, namespace: str) -> RunMarks:
    """The marks of the runs of the jobs in `namespace`."""
    jobs = select(ASSET.c.id).where(ASSET.c.namespace == namespace).where(ASSET.c.kind == "job")
    mine = RUN.c.job_id.in_(jobs.scalar_subquery())
    row = conn.execute(
        select(func.max(RUN.c.started_at), func.max(RUN.c.ended_at), func.count()).where(mine)
    ).one()
    times = [t for t in (row[0], row[1]) if t is not None]
    open_runs = [
        r.run_uuid
        for r in conn.execute(
            select(RUN.c.run_uuid).where(mine).where(RUN.c.state.in_(OPEN_STATES))
        )
    ]
    return RunMarks(max(times) if times else None, sorted(open_runs), int(row[2]))


def _io_uri(io: RunIOSpec) -> str:
    return kind_uri(io.namespace, io.name, io.kind)


def record_runs(conn: Connection, runs: Sequence[RunSpec]) -> int:
    """Insert or update runs and their datasets; the number of runs written.

    Jobs and datasets a run names that the catalog lacks become unresolved
    placeholders (`ensure_assets`), as OpenLineage's references do.
    """
    if not runs:
        return 0
    by_kind: dict[str, dict[str, AssetKey]] = defaultdict(dict)
    for run in runs:
        by_kind["job"][job_uri(*run.job)] = run.job
        for io in (*run.inputs, *run.outputs):
            by_kind[io.kind][_io_uri(io)] = io.key
    ids: dict[str, int] = {}
    for kind, keys in sorted(by_kind.items()):
        ids.update(ensure_assets(conn, keys.values(), kind=kind))
    existing: dict[str, Any] = {}
    uuids = [r.run_uuid for r in runs]
    for start in range(0, len(uuids), CHUNK):
        part = uuids[start : start + CHUNK]
        existing.update(
            {r.run_uuid: r for r in conn.execute(select(RUN).where(RUN.c.run_uuid.in_(part)))}
        )
    links: dict[int, set[tuple[int, str, str]]] = defaultdict(set)
    ids_of_existing = [r.id for r in existing.values()]
    for start in range(0, len(ids_of_existing), CHUNK):
        part = ids_of_existing[start : start + CHUNK]
        for row in conn.execute(select(RUN_DATASET).where(RUN_DATASET.c.run_id.in_(part))):
            links[row.run_id].add((row.asset_id, row.direction, _canon(row.facets)))
    now = utcnow()
    fresh, changed, relink = [], [], []
    new_ids: dict[str, int] = {}
    for run in runs:
        values = {
            "job_id": ids[job_uri(*run.job)],
            "state": run.state,
            "state_time": run.ended_at or run.started_at,
            "started_at": run.started_at,
            "ended_at": run.ended_at,
            "facets": run.facets,
        }
        wanted = _wanted_links(run, ids)
        old = existing.get(run.run_uuid)
        if old is None:
            fresh.append((run, values, wanted))
            continue
        same = all(_same(getattr(old, k), v) for k, v in values.items())
        if not same:
            changed.append({"id": old.id, **values, "updated_at": now})
        if {(a, d, _canon(f)) for a, d, f in wanted} != links.get(old.id, set()):
            relink.append((old.id, wanted))
    if fresh:
        rows = [
            {"run_uuid": run.run_uuid, "created_at": now, "updated_at": now, **values}
            for run, values, _ in fresh
        ]
        conn.execute(insert(RUN), rows)
        fresh_uuids = [run.run_uuid for run, _, _ in fresh]
        for start in range(0, len(fresh_uuids), CHUNK):
            part = fresh_uuids[start : start + CHUNK]
            new_ids.update(
                dict(
                    conn.execute(
                        select(RUN.c.run_uuid, RUN.c.id).where(RUN.c.run_uuid.in_(part))
                    ).all()
                )
            )
        relink += [(new_ids[run.run_uuid], wanted) for run, _, wanted in fresh if wanted]
    if changed:
        update_by_id(conn, RUN, changed)
    if relink:
        stale = [run_id for run_id, _ in relink]
        for start in range(0, len(stale), CHUNK):
            part = stale[start : start + CHUNK]
            conn.execute(delete(RUN_DATASET).where(RUN_DATASET.c.run_id.in_(part)))
        rows = [
            {"run_id": run_id, "asset_id": a, "version_id": None, "direction": d, "facets": f}
            for run_id, wanted in relink
            for a, d, f in wanted
        ]
        if rows:
            conn.execute(insert(RUN_DATASET), rows)
    touched = {c["id"] for c in changed} | {run_id for run_id, _ in relink}
    return len(fresh) + len(touched - set(new_ids.values()))


def _wanted_links(run: RunSpec, ids: dict[str, int]) -> list[tuple[int, str, dict[str, Any]]]:
    """(asset id, direction, facets) of a run's datasets, one per asset and direction."""
    out: dict[tuple[int, str], dict[str, Any]] = {}
    for direction, ios in (("input", run.inputs), ("output", run.outputs)):
        for io in ios:
            out.setdefault((ids[_io_uri(io)], direction), {}).update(io.facets)
    return [(a, d, f) for (a, d), f in sorted(out.items())]


def _canon(value: Any) -> str:
    return json.dumps(value or {}, sort_keys=True, default=str)


def _same(old: Any, new: Any) -> bool:
    if isinstance(new, dict) or isinstance(old, dict):
        return _canon(old) == _canon(new)
    if isinstance(old, datetime) and isinstance(new, datetime):
        return old == new
    return bool(old == new)
