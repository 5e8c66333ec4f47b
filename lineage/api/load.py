"""Load what a page of datasets, jobs or runs needs, in a few set-wise reads, and shape it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from catalog import reads
from lineage.api.shapes import dataset_json, job_json, job_version_at, run_json


def datasets(conn: Connection, rows: list[Any]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    fields = reads.current_fields(conn, ids)
    modified = reads.last_modified(conn, ids)
    return [dataset_json(r, fields.get(r.id, []), modified.get(r.id)) for r in rows]


def runs(
    conn: Connection, rows: list[Any], jobs: dict[int, Any] | None = None
) -> list[dict[str, Any]]:
    """Runs shaped with their job's version at the time and the dataset versions they saw."""
    if not rows:
        return []
    jobs = jobs if jobs is not None else reads.assets_by_id(conn, [r.job_id for r in rows])
    io = reads.run_datasets(conn, [r.id for r in rows])
    versions = reads.all_versions(conn, list({r.job_id for r in rows}))
    return [
        run_json(
            r,
            jobs[r.job_id],
            io.get(r.id, []),
            job_version_at(versions.get(r.job_id, []), r.updated_at),
        )
        for r in rows
    ]


def jobs(conn: Connection, rows: list[Any]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    io = reads.job_io(conn, ids)
    latest = reads.latest_runs(conn, ids)
    shaped = dict(
        zip(
            [r.job_id for r in latest.values()],
            runs(conn, list(latest.values()), {r.id: r for r in rows}),
            strict=True,
        )
    )
    return [job_json(r, io.get(r.id, {}), shaped.get(r.id), latest.get(r.id)) for r in rows]
