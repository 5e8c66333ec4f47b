"""Reading MLflow's tracking side, never writing to it: experiments, runs, logged models.

A SQLite store is read from its tables (`TableStore`, read-only), a file
store or a tracking server through MLflow's client (`search_experiments`,
`search_runs`, `search_logged_models`). A re-scan reads only the runs that
started, ended or were deleted since the catalog's mark (`catalog.runs.RunMarks`),
plus the runs recorded as not finished, with MLflow's own time filters
(`attributes.start_time >= T`, `attributes.end_time >= T`); the first scan
reads every run. Params, tags or metrics logged to a run long after it ended
are seen when that run is read again (it ends, is deleted, or a full re-scan).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.mlflow.mapping import DatasetInput, RunInfo
from connectors.mlflow.tables import TableStore

#: Runs asked of a tracking server per page (MLflow allows up to 50,000).
RUN_PAGE = 1000


@dataclass
class ExperimentInfo:
    experiment_id: str
    name: str
    lifecycle_stage: str = "active"
    artifact_location: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class LoggedModelInfo:
    """An MLflow 3 logged model (`m-...`) and the run that logged it."""

    model_id: str
    name: str
    run_id: str | None
    status: str = ""


@dataclass
class Tracking:
    """What a scan read of the tracking side."""

    experiments: list[ExperimentInfo]
    runs: list[RunInfo]
    logged_models: list[LoggedModelInfo]
    #: Whether every run of the store was read (a first scan), not only what changed.
    complete: bool


def millis(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


#: MLflow's `LoggedModelStatus` as its SQLite store keeps it (an integer).
LOGGED_MODEL_STATUS = {0: "UNSPECIFIED", 1: "PENDING", 2: "READY", 3: "FAILED"}


def _status(value: Any) -> str:
    if isinstance(value, int):
        return LOGGED_MODEL_STATUS.get(value, str(value))
    return str(value or "")


# -- a SQLite store, table by table ------------------------------------------------------


def read_tables(store: TableStore, since: datetime | None, reread: list[str]) -> Tracking:
    experiments = [
        ExperimentInfo(
            str(row.experiment_id),
            row.name or "",
            getattr(row, "lifecycle_stage", None) or "active",
            getattr(row, "artifact_location", None) or "",
        )
        for row in store._rows("experiments", extra=("lifecycle_stage", "artifact_location"))
    ]
    names = {e.experiment_id: e.name for e in experiments}
    runs_table = store.tables["runs"]
    where: tuple[Any, ...] = ()
    mark = millis(since)
    if mark is not None:
        changed = (runs_table.c.start_time >= mark) | (runs_table.c.end_time >= mark)
        if "deleted_time" in runs_table.c:
            changed = changed | (runs_table.c.deleted_time >= mark)
        if reread:
            changed = changed | runs_table.c.run_uuid.in_(reread)
        where = (changed,)
    rows = store._rows("runs", *where, extra=("user_id", "lifecycle_stage"))
    ids = None if mark is None else [row.run_uuid for row in rows]
    if ids == []:
        return Tracking(experiments, [], [], complete=False)
    params: dict[str, dict[str, str]] = {}
    for row in store.of_runs("params", ids):
        params.setdefault(row.run_uuid, {})[row.key] = row.value
    tags: dict[str, dict[str, str]] = {}
    for row in store.of_runs("tags", ids):
        tags.setdefault(row.run_uuid, {})[row.key] = row.value or ""
    metrics: dict[str, dict[str, float]] = {}
    for row in store.of_runs("latest_metrics", ids):
        metrics.setdefault(row.run_uuid, {})[row.key] = row.value
    inputs = store.inputs_of(ids)
    runs = [
        RunInfo(
            run_id=row.run_uuid,
            run_name=row.name or "",
            experiment_id=str(row.experiment_id),
            experiment_name=names.get(str(row.experiment_id), ""),
            status=str(row.status or ""),
            start_time=row.start_time,
            end_time=row.end_time,
            params=params.get(row.run_uuid, {}),
            tags=tags.get(row.run_uuid, {}),
            inputs=inputs.get(row.run_uuid, []),
            user=getattr(row, "user_id", None) or "",
            lifecycle_stage=getattr(row, "lifecycle_stage", None) or "active",
            metrics=metrics.get(row.run_uuid, {}),
        )
        for row in rows
    ]
    logged: list[LoggedModelInfo] = []
    for row in store.of_runs("logged_models", ids, extra=("name", "status")):
        logged.append(
            LoggedModelInfo(
                row.model_id,
                getattr(row, "name", "") or "",
                row.source_run_id or None,
                _status(getattr(row, "status", None)),
            )
        )
    return Tracking(experiments, runs, logged, complete=mark is None)


# -- a file store or a tracking server, through MLflow's client -----------------------------


def _paged(search: Any, page: int, **kwargs: Any) -> list[Any]:
    out: list[Any] = []
    token = None
    while True:
        found = search(max_results=page, page_token=token, **kwargs)
        out.extend(found)
        token = getattr(found, "token", None)
        if not token:
            return out


def _run(run: Any, names: dict[str, str]) -> RunInfo:
    inputs = [
        DatasetInput.logged(
            item.dataset.name,
            item.dataset.digest,
            item.dataset.source_type,
            item.dataset.source,
            item.dataset.schema,
            getattr(item.dataset, "profile", None),
            tags={t.key: t.value for t in item.tags or []},
        )
        for item in getattr(run.inputs, "dataset_inputs", None) or []
    ]
    info = run.info
    return RunInfo(
        run_id=info.run_id,
        run_name=info.run_name or "",
        experiment_id=str(info.experiment_id),
        experiment_name=names.get(str(info.experiment_id), ""),
        status=str(info.status or ""),
        start_time=info.start_time,
        end_time=info.end_time,
        params=dict(run.data.params or {}),
        tags=dict(run.data.tags or {}),
        inputs=inputs,
        user=info.user_id or "",
        lifecycle_stage=info.lifecycle_stage or "active",
        metrics=dict(run.data.metrics or {}),
    )


def read_client(client: Any, since: datetime | None, reread: list[str]) -> Tracking:
    from mlflow.entities import ViewType

    experiments = [
        ExperimentInfo(
            str(e.experiment_id),
            e.name,
            e.lifecycle_stage or "active",
            e.artifact_location or "",
            dict(e.tags or {}),
        )
        for e in _paged(client.search_experiments, 1000, view_type=ViewType.ALL)
    ]
    names = {e.experiment_id: e.name for e in experiments}
    ids = sorted(names)
    found: dict[str, Any] = {}
    mark = millis(since)
    if ids:
        searches: list[tuple[str, int]] = (
            [("", ViewType.ALL)]
            if mark is None
            else [
                (f"attributes.start_time >= {mark}", ViewType.ALL),
                (f"attributes.end_time >= {mark}", ViewType.ALL),
                # A deletion changes no time MLflow's client can filter by.
                ("", ViewType.DELETED_ONLY),
            ]
        )
        for text, view in searches:
            for run in _paged(
                client.search_runs,
                RUN_PAGE,
                experiment_ids=ids,
                filter_string=text,
                run_view_type=view,
            ):
                found[run.info.run_id] = run
    for run_id in reread:
        if run_id not in found:
            try:
                found[run_id] = client.get_run(run_id)
            except Exception:  # a run gone from the store: its row stays as it was
                continue
    runs = [_run(run, names) for _, run in sorted(found.items())]
    logged: list[LoggedModelInfo] = []
    wanted = set(found)
    if ids and wanted and hasattr(client, "search_logged_models"):
        try:
            models = _paged(client.search_logged_models, 1000, experiment_ids=ids)
        except Exception:  # a server of MLflow 2 has no logged models
            models = []
        logged = [
            LoggedModelInfo(m.model_id, m.name or "", m.source_run_id, str(m.status or ""))
            for m in models
            if m.source_run_id in wanted
        ]
    return Tracking(experiments, runs, logged, complete=mark is None)
