"""Catalog rows shaped as Marquez answers them: datasets, jobs, runs, versions.

Pure functions over the rows `catalog.reads` returns. Marquez's field names
and enum values are kept as they are; what steward knows beyond them is
added under names Marquez does not use (`kind`, `uri`, `stewardVersion`,
`diff`, ...). Where Marquez has a UUID and the catalog has none (dataset and
job versions, jobs), it is a UUID5 of the key, so it never changes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

#: OpenLineage event types (as stored) -> Marquez run states.
RUN_STATES = {
    "START": "RUNNING",
    "RUNNING": "RUNNING",
    "COMPLETE": "COMPLETED",
    "ABORT": "ABORTED",
    "FAIL": "FAILED",
}
_SPACE = uuid.UUID("6f1b8e8a-2d0e-5d1e-9a55-7e3a1c0d5e11")


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def stable_uuid(*parts: object) -> str:
    """A UUID5 of the parts: the same key always gives the same UUID."""
    return str(uuid.uuid5(_SPACE, "\x1f".join(str(p) for p in parts)))


def version_uuid(uri: str, version: int) -> str:
    return stable_uuid("version", uri, version)


def job_uuid(namespace: str, name: str) -> str:
    return stable_uuid("job", namespace, name)


def node_id(kind: str, namespace: str, name: str) -> str:
    return f"{'job' if kind == 'job' else 'dataset'}:{namespace}:{name}"


def run_state(state: str) -> str:
    return RUN_STATES.get(state, "NEW")


def facets_of(asset: Any) -> dict[str, Any]:
    return dict((asset.observed or {}).get("openlineage") or {})


def field_json(f: Any) -> dict[str, Any]:
    return {"name": f.name, "type": f.type or None, "tags": [], "description": f.description}


def dataset_json(
    a: Any, fields: list[Any], last_modified: datetime | None = None
) -> dict[str, Any]:
    """A dataset as Marquez's `Dataset` (and the data of a lineage node)."""
    facets = facets_of(a)
    description = a.description or (facets.get("documentation") or {}).get("description")
    lifecycle = (facets.get("lifecycleStateChange") or {}).get("lifecycleStateChange")
    return {
        "id": {"namespace": a.namespace, "name": a.name},
        "type": "DB_TABLE",
        "name": a.name,
        "physicalName": a.name,
        "createdAt": iso(a.created_at),
        "updatedAt": iso(a.updated_at),
        "namespace": a.namespace,
        "sourceName": a.namespace,
        "fields": [field_json(f) for f in fields],
        "tags": [],
        "lastModifiedAt": iso(last_modified),
        "lastLifecycleState": lifecycle,
        "description": description,
        "facets": facets,
        "currentVersion": version_uuid(a.uri, a.current_version) if a.current_version else None,
        "deleted": a.deleted,
        # steward's own
        "uri": a.uri,
        "kind": a.kind,
        "stewardVersion": a.current_version,
        "unresolved": a.unresolved,
    }


def dataset_version_json(
    a: Any, v: Any, fields: list[Any], created_by: dict[str, Any] | None
) -> dict[str, Any]:
    """One version of a dataset as Marquez's `DatasetVersion`, with steward's diff."""
    version = version_uuid(a.uri, v.version)
    definition = v.definition or {}
    facets = facets_of(a)
    return {
        "id": {"namespace": a.namespace, "name": a.name, "version": version},
        "type": "DB_TABLE",
        "name": a.name,
        "physicalName": a.name,
        "createdAt": iso(v.created_at),
        "version": version,
        "namespace": a.namespace,
        "sourceName": a.namespace,
        "fields": [field_json(f) for f in fields],
        "tags": [],
        "lifecycleState": (facets.get("lifecycleStateChange") or {}).get("lifecycleStateChange"),
        "description": definition.get("description") or a.description,
        "createdByRun": created_by,
        "facets": facets if v.version == a.current_version else {},
        # steward's own
        "stewardVersion": v.version,
        "fingerprint": v.fingerprint,
        "origin": v.origin,
        "breaking": v.breaking,
        "restored": v.restored,
        "diff": v.diff,
    }


def job_version_at(versions: list[Any], when: datetime | None) -> int | None:
    """The job version in force at `when`: the newest created no later than it."""
    if not versions:
        return None
    chosen = versions[0].version
    for v in versions:
        if when is None or v.created_at <= when:
            chosen = v.version
    return int(chosen)


def run_json(
    run: Any,
    job: Any,
    io: list[Any],
    job_version: int | None,
) -> dict[str, Any]:
    """A run as Marquez's `Run`: state, times, job version, dataset versions, facets."""
    duration = None
    if run.started_at is not None and run.ended_at is not None:
        duration = int((run.ended_at - run.started_at).total_seconds() * 1000)
    facets = run.facets or {}
    nominal = facets.get("nominalTime") or {}
    out: dict[str, Any] = {
        "id": run.run_uuid,
        "createdAt": iso(run.created_at),
        "updatedAt": iso(run.updated_at),
        "nominalStartTime": nominal.get("nominalStartTime"),
        "nominalEndTime": nominal.get("nominalEndTime"),
        "state": run_state(run.state),
        "startedAt": iso(run.started_at),
        "endedAt": iso(run.ended_at),
        "durationMs": duration,
        "args": {},
        "jobVersion": {
            "namespace": job.namespace,
            "name": job.name,
            "version": version_uuid(job.uri, job_version) if job_version else None,
        },
        "inputDatasetVersions": _io(io, "input"),
        "outputDatasetVersions": _io(io, "output"),
        "context": {},
        "facets": facets,
        # steward's own
        "parentRunId": run.parent_run_uuid,
    }
    return out


def _io(io: list[Any], direction: str) -> list[dict[str, Any]]:
    return [
        {
            "datasetVersionId": {
                "namespace": r.namespace,
                "name": r.name,
                "version": version_uuid(r.uri, r.version) if r.version else None,
            },
            "facets": r.facets or {},
        }
        for r in io
        if r.direction == direction
    ]


def job_type(facets: dict[str, Any]) -> str:
    processing = str((facets.get("jobType") or {}).get("processingType") or "").upper()
    return "STREAM" if processing == "STREAMING" else "BATCH"


def parent_job(run: Any) -> tuple[str, str] | None:
    parent = ((run.facets or {}).get("parent") or {}) if run is not None else {}
    job = parent.get("job") if isinstance(parent, dict) else None
    if isinstance(job, dict) and isinstance(job.get("name"), str):
        return str(job.get("namespace") or ""), job["name"]
    return None


def job_json(
    a: Any,
    io: dict[str, list[Any]],
    latest: dict[str, Any] | None,
    latest_run: Any,
) -> dict[str, Any]:
    """A job as Marquez's `Job` (and the data of a lineage node)."""
    facets = facets_of(a)
    parent = parent_job(latest_run)
    current = version_uuid(a.uri, a.current_version) if a.current_version else None
    return {
        "id": {"namespace": a.namespace, "name": a.name},
        "type": job_type(facets),
        "name": a.name,
        "simpleName": a.name.rsplit(".", 1)[-1],
        "parentJobName": parent[1] if parent else None,
        "parentJobUuid": job_uuid(*parent) if parent else None,
        "createdAt": iso(a.created_at),
        "updatedAt": iso(a.updated_at),
        "namespace": a.namespace,
        "inputs": [{"namespace": r.namespace, "name": r.name} for r in io.get("inputs", [])],
        "outputs": [{"namespace": r.namespace, "name": r.name} for r in io.get("outputs", [])],
        "location": (facets.get("sourceCodeLocation") or {}).get("url"),
        "context": {},
        "description": a.description or (facets.get("documentation") or {}).get("description"),
        "latestRun": latest,
        "latestRuns": [latest] if latest else [],
        "facets": facets,
        "currentVersion": current,
        "version": current,
        "tags": [],
        "labels": [],
        # steward's own
        "uri": a.uri,
        "uuid": job_uuid(a.namespace, a.name),
        "stewardVersion": a.current_version,
    }


def job_version_json(
    a: Any, v: Any, latest: dict[str, Any] | None, known: dict[str, Any]
) -> dict[str, Any]:
    """One version of a job as Marquez's `JobVersion`; `known` maps URIs to keys."""
    version = version_uuid(a.uri, v.version)
    props = (v.definition or {}).get("properties") or {}

    def keys(uris: list[str]) -> list[dict[str, str]]:
        found = [known[u] for u in uris or [] if u in known]
        return [{"namespace": k.namespace, "name": k.name} for k in found]

    return {
        "id": {"namespace": a.namespace, "name": a.name, "version": version},
        "name": a.name,
        "version": version,
        "createdAt": iso(v.created_at),
        "namespace": a.namespace,
        "inputs": keys(props.get("inputs", [])),
        "outputs": keys(props.get("outputs", [])),
        "location": (facets_of(a).get("sourceCodeLocation") or {}).get("url"),
        "context": {},
        "latestRun": latest,
        "facets": {},
        # steward's own
        "stewardVersion": v.version,
        "fingerprint": v.fingerprint,
        "diff": v.diff,
    }
