"""Marquez's read API under `/api/v1`, as Marquez's `openapi.yml` describes it.

Every route only parses, asks `catalog.reads` and shapes the rows
(`lineage.api.shapes`); Marquez's names, enum values, paging
(`limit`, `offset`, `totalCount`) and error shape (`{"code", "message"}`)
are kept. Namespaces and names in the path are percent-encoded by clients
(`postgres%3A%2F%2Fdb%3A5432`): they are decoded once, here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import Connection

from catalog import reads
from catalog.db import Store
from catalog.errors import InvalidInput, NotFound
from catalog.identity import normalize_namespace
from lineage.api import load
from lineage.api.columns import column_lineage
from lineage.api.common import (
    ApiError,
    choice,
    integer,
    json_response,
    paging,
    path_value,
    timestamp,
)
from lineage.api.shapes import (
    dataset_version_json,
    iso,
    job_version_json,
    node_id,
    version_uuid,
)

PREFIX = "/api/v1"
SEARCH_LIMIT = 10
TAG = "Marquez"


def marquez_router(store: Store) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=[TAG])

    @contextmanager
    def connect() -> Iterator[Connection]:
        with store.reading() as conn:
            yield conn

    def namespace_names(conn: Connection, raw: str) -> list[str]:
        """The stored namespaces a path's namespace names (as given, or normalised)."""
        given = path_value(raw)
        found = [n for n in _spellings(given) if reads.namespace_exists(conn, n)]
        if not found:
            raise ApiError(404, f"Namespace '{given[:200]}' not found.", "namespace")
        return found

    def dataset_row(conn: Connection, namespace: str, dataset: str) -> Any:
        ns, name = path_value(namespace), path_value(dataset)
        row = reads.asset_by_key(conn, ns, name, job=False)
        if row is None:
            raise ApiError(404, f"Dataset '{name[:200]}' not found in '{ns[:200]}'.", "dataset")
        return row

    def job_row(conn: Connection, namespace: str, job: str) -> Any:
        ns, name = path_value(namespace), path_value(job)
        row = reads.asset_by_key(conn, ns, name, job=True)
        if row is None:
            raise ApiError(404, f"Job '{name[:200]}' not found in '{ns[:200]}'.", "job")
        return row

    @router.get("/namespaces", summary="List all namespaces")
    def get_namespaces(limit: str | None = None, offset: str | None = None) -> Response:
        size, skip = paging(limit, offset)
        with connect() as conn:
            rows, total = reads.namespaces(conn, size, skip)
        return json_response({"namespaces": [_namespace(r) for r in rows], "totalCount": total})

    @router.get("/namespaces/{namespace}", summary="Retrieve a namespace")
    def get_namespace(namespace: str) -> Response:
        with connect() as conn:
            name = namespace_names(conn, namespace)[0]
            rows, _ = reads.namespaces(conn, 1, 0, name=name)
        return json_response(_namespace(rows[0]))

    @router.get("/sources", summary="List all sources")
    def get_sources(limit: str | None = None, offset: str | None = None) -> Response:
        size, skip = paging(limit, offset)
        with connect() as conn:
            rows, total = reads.namespaces(conn, size, skip, datasets=True)
        return json_response({"sources": [_source(r) for r in rows], "totalCount": total})

    @router.get("/sources/{source}", summary="Retrieve a source")
    def get_source(source: str) -> Response:
        given = path_value(source)
        with connect() as conn:
            for candidate in _spellings(given):
                rows, _ = reads.namespaces(conn, 1, 0, name=candidate, datasets=True)
                if rows:
                    return json_response(_source(rows[0]))
        raise ApiError(404, f"Source '{given[:200]}' not found.", "source")

    @router.get("/namespaces/{namespace}/datasets", summary="List all datasets")
    def get_datasets(
        namespace: str, limit: str | None = None, offset: str | None = None
    ) -> Response:
        size, skip = paging(limit, offset)
        with connect() as conn:
            names = namespace_names(conn, namespace)
            rows, total = reads.assets_page(
                conn, jobs=False, namespace=names[0], limit=size, offset=skip
            )
            return json_response({"datasets": load.datasets(conn, rows), "totalCount": total})

    @router.get("/namespaces/{namespace}/datasets/{dataset}", summary="Retrieve a dataset")
    def get_dataset(namespace: str, dataset: str) -> Response:
        with connect() as conn:
            row = dataset_row(conn, namespace, dataset)
            return json_response(load.datasets(conn, [row])[0])

    def shaped_versions(conn: Connection, row: Any, versions: list[Any]) -> list[dict[str, Any]]:
        fields = reads.version_fields(conn, [v.id for v in versions])
        creators = reads.creating_runs(conn, row.id, [v.id for v in versions])
        runs = dict(
            zip(
                creators,
                load.runs(conn, list(creators.values())),
                strict=True,
            )
        )
        return [
            dataset_version_json(row, v, fields.get(v.id, []), runs.get(v.id)) for v in versions
        ]

    Shape = Callable[[Connection, Any, list[Any]], list[Any]]

    def versions_page(
        find: Callable[[Connection], Any], shape: Shape, limit: str | None, offset: str | None
    ) -> Response:
        size, skip = paging(limit, offset)
        with connect() as conn:
            row = find(conn)
            versions, total = reads.versions(conn, row.id, size, skip)
            return json_response({"versions": shape(conn, row, versions), "totalCount": total})

    def one_version(
        find: Callable[[Connection], Any], shape: Shape, what: str, version: str
    ) -> Response:
        wanted = path_value(version).lower()
        with connect() as conn:
            row = find(conn)
            found = _version_by_uuid(conn, row, wanted)
            if found is None:
                raise ApiError(404, f"{what} version '{wanted[:64]}' not found.", "version")
            return json_response(shape(conn, row, [found])[0])

    @router.get(
        "/namespaces/{namespace}/datasets/{dataset}/versions",
        summary="List all versions for a dataset",
    )
    def get_dataset_versions(
        namespace: str, dataset: str, limit: str | None = None, offset: str | None = None
    ) -> Response:
        return versions_page(
            lambda conn: dataset_row(conn, namespace, dataset), shaped_versions, limit, offset
        )

    @router.get(
        "/namespaces/{namespace}/datasets/{dataset}/versions/{version}",
        summary="Retrieve a version for a dataset",
    )
    def get_dataset_version(namespace: str, dataset: str, version: str) -> Response:
        return one_version(
            lambda conn: dataset_row(conn, namespace, dataset), shaped_versions, "Dataset", version
        )

    @router.get("/namespaces/{namespace}/jobs", summary="List all jobs")
    def get_jobs(namespace: str, limit: str | None = None, offset: str | None = None) -> Response:
        size, skip = paging(limit, offset)
        with connect() as conn:
            names = namespace_names(conn, namespace)
            rows, total = reads.assets_page(
                conn, jobs=True, namespace=names[0], limit=size, offset=skip
            )
            return json_response({"jobs": load.jobs(conn, rows), "totalCount": total})

    @router.get("/namespaces/{namespace}/jobs/{job}", summary="Retrieve a job")
    def get_job(namespace: str, job: str) -> Response:
        with connect() as conn:
            row = job_row(conn, namespace, job)
            return json_response(load.jobs(conn, [row])[0])

    def shaped_job_versions(conn: Connection, row: Any, versions: list[Any]) -> list[Any]:
        uris: list[str] = []
        for v in versions:
            props = (v.definition or {}).get("properties") or {}
            uris += [*props.get("inputs", []), *props.get("outputs", [])]
        known = reads.keys_of(conn, uris)
        latest = reads.latest_runs(conn, [row.id]).get(row.id)
        run = load.runs(conn, [latest], {row.id: row})[0] if latest is not None else None
        current = row.current_version
        return [
            job_version_json(row, v, run if v.version == current else None, known) for v in versions
        ]

    @router.get(
        "/namespaces/{namespace}/jobs/{job}/versions", summary="List all versions for a job"
    )
    def get_job_versions(
        namespace: str, job: str, limit: str | None = None, offset: str | None = None
    ) -> Response:
        return versions_page(
            lambda conn: job_row(conn, namespace, job), shaped_job_versions, limit, offset
        )

    @router.get(
        "/namespaces/{namespace}/jobs/{job}/versions/{version}",
        summary="Retrieve a version for a job",
    )
    def get_job_version(namespace: str, job: str, version: str) -> Response:
        return one_version(
            lambda conn: job_row(conn, namespace, job), shaped_job_versions, "Job", version
        )

    @router.get("/namespaces/{namespace}/jobs/{job}/runs", summary="List all runs")
    def get_runs(
        namespace: str, job: str, limit: str | None = None, offset: str | None = None
    ) -> Response:
        size, skip = paging(limit, offset)
        with connect() as conn:
            row = job_row(conn, namespace, job)
            rows, total = reads.runs_of_job(conn, row.id, size, skip)
            return json_response(
                {"runs": load.runs(conn, rows, {row.id: row}), "totalCount": total}
            )

    def run_row(conn: Connection, run_id: str) -> Any:
        wanted = path_value(run_id)
        run = reads.run_by_uuid(conn, wanted) if len(wanted) <= 64 else None
        if run is None:
            raise ApiError(404, f"Run '{wanted[:64]}' not found.", "id")
        return run

    @router.get("/jobs/runs/{id}", summary="Retrieve a run")
    def get_run(id: str) -> Response:
        with connect() as conn:
            return json_response(load.runs(conn, [run_row(conn, id)])[0])

    @router.get("/jobs/runs/{id}/facets", summary="Retrieve run or job facets for a run")
    def get_run_facets(id: str, type: str | None = None) -> Response:
        kind = choice(type, "type", ("run", "job"))
        if kind is None:
            raise ApiError(400, "type is required: run or job", "type")
        with connect() as conn:
            run = run_row(conn, id)
            if kind == "run":
                facets = run.facets or {}
            else:
                job = reads.assets_by_id(conn, [run.job_id])[run.job_id]
                facets = (job.observed or {}).get("openlineage") or {}
        return json_response({"runId": run.run_uuid, "facets": facets})

    @router.get("/column-lineage", summary="Get a column lineage graph")
    def get_column_lineage(
        nodeId: str | None = None,
        depth: str | None = None,
        withDownstream: str | None = None,
    ) -> Response:
        if not nodeId or len(nodeId) > 4000:
            raise ApiError(
                400,
                "nodeId is required: dataset:NS:NAME, datasetField:NS:NAME:FIELD or job:NS:NAME",
                "nodeId",
            )
        hops = integer(depth, "depth", 20, high=100)
        downstream = choice(withDownstream, "withDownstream", ("true", "false")) == "true"
        with connect() as conn:
            try:
                graph = column_lineage(conn, nodeId, hops, downstream)
            except NotFound as err:
                raise ApiError(404, str(err), "nodeId") from None
            except InvalidInput as err:
                raise ApiError(400, str(err), "nodeId") from None
        return json_response({"graph": graph})

    @router.get("/search", summary="Query all datasets and jobs")
    def search(
        q: str | None = None,
        filter: str | None = None,
        sort: str | None = None,
        limit: str | None = None,
        namespace: str | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> Response:
        if q is None or not q.strip() or len(q) > 1024:
            raise ApiError(400, "q is required (at most 1024 characters)", "q")
        kind = choice(filter, "filter", ("dataset", "job"))
        order = choice(sort, "sort", ("name", "updated_at", "update_at"))
        size = integer(limit, "limit", SEARCH_LIMIT)
        with connect() as conn:
            rows, total = reads.search(
                conn,
                f"%{q.strip()}%",
                jobs=None if kind is None else kind == "job",
                namespace=namespace or None,
                before=timestamp(before, "before"),
                after=timestamp(after, "after"),
                by_updated=order in ("updated_at", "update_at"),
                limit=size,
            )
        return json_response(
            {
                "totalCount": total,
                "results": [
                    {
                        "type": "JOB" if r.kind == "job" else "DATASET",
                        "name": r.name,
                        "updatedAt": iso(r.updated_at),
                        "namespace": r.namespace,
                        "nodeId": node_id(r.kind, r.namespace, r.name),
                    }
                    for r in rows
                ],
            }
        )

    @router.get("/tags", summary="List all tags")
    def get_tags(limit: str | None = None, offset: str | None = None) -> Response:
        paging(limit, offset)
        return json_response({"tags": [], "totalCount": 0})

    @router.get("/events/lineage", summary="List all received OpenLineage events")
    def get_events(
        sortDirection: str | None = None,
        before: str | None = None,
        after: str | None = None,
        limit: str | None = None,
        offset: str | None = None,
    ) -> Response:
        size, skip = paging(limit, offset)
        direction = choice(sortDirection, "sortDirection", ("asc", "desc")) or "desc"
        with connect() as conn:
            rows, total = reads.raw_events(
                conn,
                before=timestamp(before, "before"),
                after=timestamp(after, "after"),
                ascending=direction == "asc",
                limit=size,
                offset=skip,
            )
        return json_response({"events": [_event(r.body) for r in rows], "totalCount": total})

    return router


def _spellings(namespace: str) -> list[str]:
    """A namespace as given and as the catalog normalises it."""
    out = [namespace]
    with suppress(InvalidInput):
        out.append(normalize_namespace(namespace))
    return list(dict.fromkeys(out))


def _version_by_uuid(conn: Connection, row: Any, wanted: str) -> Any:
    for number in range(1, row.current_version + 1):
        if version_uuid(row.uri, number) == wanted:
            return reads.version_row(conn, row.id, number)
    return None


def _namespace(r: Any) -> dict[str, Any]:
    return {
        "name": r.name,
        "createdAt": iso(r.created_at),
        "updatedAt": iso(r.updated_at),
        "ownerName": "anonymous",
        "description": None,
        "isHidden": False,
    }


def _source(r: Any) -> dict[str, Any]:
    scheme = r.name.split("://", 1)[0] if "://" in r.name else r.name
    return {
        "type": scheme.upper(),
        "name": r.name,
        "createdAt": iso(r.created_at),
        "updatedAt": iso(r.updated_at),
        "connectionUrl": r.name,
        "description": None,
    }


def _event(body: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
