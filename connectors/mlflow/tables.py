"""An MLflow SQLite store read table by table, read-only, whichever MLflow wrote it.

MLflow's own store (`SqlAlchemyStore`) is no way to *read* a team's
database: when the installed MLflow knows a table the database lacks, opening
it creates the table and runs every Alembic migration up to the installed
MLflow's head (the team's older MLflow then refuses its own store), and when
the revisions differ otherwise it refuses to open. So steward reads the few
tables it needs directly, through a SQLite connection opened read-only
(`mode=ro`: nothing can be written, by steward or by a library under it).
Those tables (registered models and versions, runs, params, tags,
experiments, logged datasets, MLflow 3's logged models) have kept their
columns from MLflow 2.x to 3.x; tables an older store lacks (aliases before
2.3, datasets before 2.4, logged models before 3.0) are read as empty. A store
whose tables lack a column steward needs is refused in one line that names
both schema revisions, and left as it was.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, MetaData, Table, create_engine, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from catalog.errors import SourceUnavailable
from connectors.mlflow.mapping import DatasetInput, ModelInfo, RunInfo, VersionInfo

#: Rows read per `IN (...)` list (under SQLite's oldest limit of 999 variables).
CHUNK = 500
#: The column naming the run, where it is not `run_uuid`.
_RUN_COLUMN = {"inputs": "destination_id", "logged_models": "source_run_id"}
#: MLflow marks a deleted model version with this stage instead of deleting its row.
DELETED_STAGE = "Deleted_Internal"
#: The columns steward reads, by table; a table marked optional may be absent (older stores).
COLUMNS: dict[str, tuple[str, ...]] = {
    "registered_models": ("name", "description"),
    "model_versions": (
        "name",
        "version",
        "creation_time",
        "description",
        "current_stage",
        "source",
        "run_id",
        "status",
    ),
    "registered_model_tags": ("name", "key", "value"),
    "model_version_tags": ("name", "version", "key", "value"),
    "registered_model_aliases": ("name", "alias", "version"),
    "experiments": ("experiment_id", "name"),
    "runs": (
        "run_uuid",
        "name",
        "status",
        "start_time",
        "end_time",
        "experiment_id",
        "artifact_uri",
    ),
    "params": ("run_uuid", "key", "value"),
    "tags": ("run_uuid", "key", "value"),
    "datasets": (
        "dataset_uuid",
        "name",
        "digest",
        "dataset_source_type",
        "dataset_source",
        "dataset_schema",
    ),
    "inputs": ("input_uuid", "source_type", "source_id", "destination_type", "destination_id"),
    "input_tags": ("input_uuid", "name", "value"),
    "logged_models": ("model_id", "source_run_id", "artifact_location"),
    "latest_metrics": ("run_uuid", "key", "value"),
}
#: Tables MLflow 3 splits by workspace; without workspaces it reads the default one.
WORKSPACED = frozenset(
    {
        "registered_models",
        "model_versions",
        "registered_model_tags",
        "model_version_tags",
        "registered_model_aliases",
    }
)
DEFAULT_WORKSPACE = "default"
OPTIONAL = frozenset(
    {
        "registered_model_aliases",
        "datasets",
        "inputs",
        "input_tags",
        "logged_models",
        "latest_metrics",
    }
)


def read_only_engine(path: Path) -> Engine:
    """An engine on the SQLite file that cannot write to it (SQLite's `mode=ro`)."""
    uri = f"file:{quote(str(path))}?mode=ro"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    return create_engine("sqlite://", creator=connect, poolclass=NullPool)


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def installed_schema() -> tuple[str, str]:
    """(the installed MLflow's version, the newest schema revision it knows), or ''s."""
    try:
        import mlflow
        from alembic.script import ScriptDirectory

        scripts = ScriptDirectory(str(Path(mlflow.__file__).parent / "store" / "db_migrations"))
        return str(mlflow.__version__), str(scripts.get_current_head() or "")
    except Exception:  # only used to word an error
        return "", ""


class TableStore:
    """The registry and tracking tables of one MLflow SQLite store."""

    def __init__(self, path: Path, shown: str) -> None:
        self.path, self.shown = path, shown
        self.engine = read_only_engine(path)
        try:
            inspector = inspect(self.engine)
            present = set(inspector.get_table_names())
            self.revision = self._revision(present)
            missing = []
            for table, columns in COLUMNS.items():
                if table not in present:
                    missing += [] if table in OPTIONAL else [f"{table} table"]
                    continue
                have = {c["name"] for c in inspector.get_columns(table)}
                missing += [f"{table}.{c}" for c in columns if c not in have]
            if missing:
                raise self.unreadable(missing)
            meta = MetaData()
            meta.reflect(self.engine, only=sorted(set(COLUMNS) & present))
        except SQLAlchemyError as err:
            reason = first_line(getattr(err, "orig", None) or err)
            raise SourceUnavailable(f"{shown}: cannot read the database: {reason}") from None
        self.tables: dict[str, Table] = dict(meta.tables)

    def _revision(self, present: set[str]) -> str:
        if "alembic_version" not in present:
            return "?"
        with self.engine.connect() as conn:
            row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
        return str(row[0]) if row else "?"

    def unreadable(self, missing: list[str]) -> SourceUnavailable:
        version, head = installed_schema()
        known = f"steward's MLflow {version} writes revision {head}" if version else ""
        shown = ", ".join(missing[:4]) + (" ..." if len(missing) > 4 else "")
        return SourceUnavailable(
            f"{self.shown}: an MLflow store at schema revision {self.revision}"
            f"{' (' + known + ')' if known else ''} lacks {shown}; steward reads stores as they"
            " are and never migrates them, so nothing was changed",
            hint="scan it through the team's own MLflow tracking server (mlflow://HOST:PORT),"
            " or upgrade steward's MLflow: pip install -U 'ai-steward[mlflow]'",
        )

    def _rows(self, table: str, *where: Any, extra: tuple[str, ...] = ()) -> list[Any]:
        """The rows of `table` (of the default workspace, as MLflow's own store reads them)."""
        if table not in self.tables:
            return []
        t = self.tables[table]
        if "workspace" in t.c and table in WORKSPACED:
            where = (*where, t.c.workspace == DEFAULT_WORKSPACE)
        columns = [t.c[c] for c in (*COLUMNS[table], *extra) if c in t.c]
        with self.engine.connect() as conn:
            return list(conn.execute(select(*columns).where(*where)))

    def registered(self) -> list[ModelInfo]:
        """Every registered model with its versions, tags and aliases (no runs yet)."""
        mv = self.tables["model_versions"]
        versions = self._rows(
            "model_versions",
            (mv.c.current_stage != DELETED_STAGE) | mv.c.current_stage.is_(None),
            extra=("storage_location",),
        )
        model_tags: dict[str, dict[str, str]] = defaultdict(dict)
        for row in self._rows("registered_model_tags"):
            model_tags[row.name][row.key] = row.value or ""
        version_tags: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
        for row in self._rows("model_version_tags"):
            version_tags[(row.name, int(row.version))][row.key] = row.value or ""
        aliases: dict[str, dict[str, int]] = defaultdict(dict)
        for row in self._rows("registered_model_aliases"):
            aliases[row.name][row.alias] = int(row.version)
        by_model: dict[str, list[VersionInfo]] = defaultdict(list)
        for row in versions:
            number = int(row.version)
            stage = row.current_stage if row.current_stage not in (None, "", "None") else None
            by_model[row.name].append(
                VersionInfo(
                    version=number,
                    status=str(row.status or ""),
                    stage=stage,
                    run_id=row.run_id or None,
                    source=str(row.source or ""),
                    description=row.description or None,
                    tags=version_tags.get((row.name, number), {}),
                    created_ms=row.creation_time,
                    aliases=sorted(a for a, v in aliases.get(row.name, {}).items() if v == number),
                    storage_location=getattr(row, "storage_location", None) or None,
                )
            )
        return [
            ModelInfo(
                name=row.name,
                description=row.description or None,
                tags=model_tags.get(row.name, {}),
                aliases=aliases.get(row.name, {}),
                versions=by_model.get(row.name, []),
            )
            for row in self._rows("registered_models")
        ]

    def logged_model(self, model_id: str) -> tuple[str | None, str | None]:
        """(source run id, artifact location) of an MLflow 3 logged model."""
        if "logged_models" not in self.tables:
            return None, None
        rows = self._rows("logged_models", self.tables["logged_models"].c.model_id == model_id)
        return (rows[0].source_run_id or None, rows[0].artifact_location) if rows else (None, None)

    def run(self, run_id: str) -> RunInfo | None:
        """A run with its params, tags, experiment and logged datasets (None if absent)."""
        runs = self._of_run("runs", run_id)
        if not runs:
            return None
        run = runs[0]
        experiments = self._rows(
            "experiments", self.tables["experiments"].c.experiment_id == run.experiment_id
        )
        return RunInfo(
            run_id=run_id,
            run_name=run.name or "",
            experiment_id=str(run.experiment_id),
            experiment_name=experiments[0].name if experiments else "",
            status=str(run.status or ""),
            start_time=run.start_time,
            end_time=run.end_time,
            params={r.key: r.value for r in self._of_run("params", run_id)},
            tags={r.key: r.value or "" for r in self._of_run("tags", run_id)},
            inputs=self._inputs(run_id),
        )

    def _of_run(self, table: str, run_id: str) -> list[Any]:
        return self._rows(table, self.tables[table].c.run_uuid == run_id)

    def run_artifact_uri(self, run_id: str) -> str | None:
        runs = self._of_run("runs", run_id)
        return runs[0].artifact_uri if runs else None

    def _inputs(self, run_id: str) -> list[DatasetInput]:
        return self.inputs_of([run_id]).get(run_id, [])

    def of_runs(
        self, table: str, run_ids: list[str] | None, *where: Any, extra: tuple[str, ...] = ()
    ) -> list[Any]:
        """The rows of `table` of these runs (of every run: None), read in chunks."""
        if table not in self.tables:
            return []
        column = self.tables[table].c[_RUN_COLUMN.get(table, "run_uuid")]
        if run_ids is None:
            return self._rows(table, *where, extra=extra)
        out: list[Any] = []
        for start in range(0, len(run_ids), CHUNK):
            part = run_ids[start : start + CHUNK]
            out += self._rows(table, column.in_(part), *where, extra=extra)
        return out

    def inputs_of(self, run_ids: list[str] | None) -> dict[str, list[DatasetInput]]:
        """The datasets each run logged (`log_input`), by run id (of every run: None)."""
        if not {"datasets", "inputs"} <= set(self.tables):
            return {}
        inputs = self.tables["inputs"]
        links = self.of_runs(
            "inputs",
            run_ids,
            inputs.c.destination_type == "RUN",
            inputs.c.source_type == "DATASET",
        )
        if not links:
            return {}
        wanted = sorted({link.source_id for link in links})
        datasets = self.tables["datasets"]
        found: dict[str, Any] = {}
        for start in range(0, len(wanted), CHUNK):
            part = wanted[start : start + CHUNK]
            rows = self._rows(
                "datasets", datasets.c.dataset_uuid.in_(part), extra=("dataset_profile",)
            )
            found.update({row.dataset_uuid: row for row in rows})
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        input_ids = [link.input_uuid for link in links]
        for start in range(0, len(input_ids), CHUNK):
            for row in self._input_tags(input_ids[start : start + CHUNK]):
                tags[row.input_uuid][row.name] = row.value
        out: dict[str, list[DatasetInput]] = defaultdict(list)
        for link in links:
            ds = found.get(link.source_id)
            if ds is None:
                continue
            out[link.destination_id].append(
                DatasetInput.logged(
                    ds.name,
                    ds.digest,
                    ds.dataset_source_type,
                    ds.dataset_source,
                    ds.dataset_schema,
                    getattr(ds, "dataset_profile", None),
                    tags=tags.get(link.input_uuid, {}),
                )
            )
        return out

    def _input_tags(self, input_ids: Iterable[str]) -> list[Any]:
        if "input_tags" not in self.tables:
            return []
        return self._rows("input_tags", self.tables["input_tags"].c.input_uuid.in_(list(input_ids)))
