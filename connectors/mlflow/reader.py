"""Reading an MLflow registry, never writing to it (the `mlflow` extra).

Where the registry is (`Location`), checked before MLflow touches it: MLflow
creates a missing file store or SQLite database, and retries an unreachable
server for minutes, so a wrong URL would either write to the user's disk or
hang. A SQLite store is read table by table through a read-only connection
(`connectors.mlflow.tables`: MLflow's own store would migrate it); a file
store or a tracking server through MLflow's client, which only reads them.
Then the registered models, their versions, the latest version's source run
(params, tags, logged input datasets, experiment; an MLflow 3 logged model,
`models:/m-...`, resolved to the run that logged it) and its signature (from
the model's `MLmodel` file) become the plain dataclasses of
`connectors.mlflow.mapping`.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from catalog.errors import InvalidInput, SourceUnavailable, StewardError
from catalog.identity import normalize_namespace, redact_url
from connectors.base import Progress
from connectors.mlflow.mapping import (
    DatasetInput,
    ModelInfo,
    RunInfo,
    VersionInfo,
    latest_version,
)
from connectors.mlflow.tables import TableStore
from connectors.mlflow.tracking import Tracking, read_client, read_tables

EXTRA_HINT = "pip install 'ai-steward[mlflow]'"
#: Seconds to wait for a tracking server to accept a connection.
CONNECT_TIMEOUT = 5.0
PAGE = 500


def import_mlflow() -> Any:
    """The mlflow package, or a one-line error naming the extra to install."""
    try:
        import mlflow
    except ImportError:
        raise InvalidInput("reading MLflow registries needs MLflow", hint=EXTRA_HINT) from None
    return mlflow


@dataclass(frozen=True)
class Location:
    """Where a registry is: its tracking URI for MLflow and its steward namespace."""

    kind: str  # file | sqlite | server
    tracking_uri: str
    namespace: str
    #: How the registry is shown in messages and the scan's origin (no credentials).
    shown: str
    host: str = ""
    port: int = 0
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)


def _local_path(url: str, scheme: str) -> Path:
    if not url.lower().startswith(f"{scheme}://"):
        raise InvalidInput(f"{url!r}: write {scheme}:///ABS/PATH")
    rest = url[len(scheme) + 3 :]
    if not rest:
        raise InvalidInput(f"{scheme}:// needs a path", hint=f"{scheme}:///ABS/PATH")
    if rest.startswith("//"):
        rest = "/" + rest.lstrip("/")
    return Path(unquote(rest)).expanduser().resolve()


def _looks_like_file_store(path: Path) -> bool:
    if (path / ".trash").is_dir() or (path / "models").is_dir():
        return True
    return any(p.is_file() for p in path.glob("*/meta.yaml"))


def _check_sqlite(path: Path) -> None:
    """A SQLite file holding MLflow's registry tables, opened read-only."""
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise SourceUnavailable(f"{path}: not a readable SQLite database: {err}") from None
    tables = {row[0] for row in rows}
    if not {"registered_models", "model_versions", "alembic_version"} <= tables:
        raise InvalidInput(f"{path}: not an MLflow database (no model registry tables)")


def locate(url: str) -> Location:
    """Parse and check a registry URL; nothing is created, nothing is written."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "mlflow+file":
        path = _local_path(url, scheme)
        if not path.exists():
            raise InvalidInput(f"{path}: no such directory")
        if not path.is_dir() or not _looks_like_file_store(path):
            raise InvalidInput(f"{path}: not an MLflow file store (mlruns directory)")
        return Location("file", path.as_uri(), f"mlflow+file://{path}", f"mlflow+file://{path}")
    if scheme == "mlflow+sqlite":
        path = _local_path(url, scheme)
        if not path.is_file():
            raise InvalidInput(f"{path}: no such file")
        _check_sqlite(path)
        return Location(
            "sqlite", f"sqlite:///{path}", f"mlflow+sqlite://{path}", f"mlflow+sqlite://{path}"
        )
    if scheme in ("mlflow", "mlflows"):
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            raise InvalidInput(f"{redact_url(url)}: invalid port") from None
        if not parts.hostname:
            raise InvalidInput(f"{redact_url(url)}: no host", hint=f"{scheme}://HOST:PORT")
        namespace = normalize_namespace(f"{scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}")
        host = parts.hostname
        port = port or (443 if scheme == "mlflows" else 5000)
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        http = "https" if scheme == "mlflows" else "http"
        return Location(
            "server",
            f"{http}://{netloc}{parts.path.rstrip('/')}",
            namespace,
            namespace,
            host,
            port,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )
    raise InvalidInput(f"{redact_url(url)} is not an MLflow registry URL")


def check_reachable(location: Location) -> None:
    """Fail fast, in one line, when a tracking server does not accept connections."""
    if location.kind != "server":
        return
    try:
        socket.create_connection((location.host, location.port), timeout=CONNECT_TIMEOUT).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise SourceUnavailable(
            f"cannot reach the MLflow server {location.shown}: {reason}"
        ) from None


@contextmanager
def mlflow_environment(location: Location) -> Iterator[None]:
    """MLflow's settings for one scan, restored afterwards.

    The file store is allowed (MLflow 3 refuses it unless asked), progress
    bars are off, a server is retried twice at most, and credentials from the
    URL are handed to MLflow the way it reads them (never stored or printed).
    Settings the user gave in the environment are kept.
    """
    wanted = {
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    }
    forced: dict[str, str] = {}
    if location.username is not None:
        forced["MLFLOW_TRACKING_USERNAME"] = location.username
    if location.password is not None:
        forced["MLFLOW_TRACKING_PASSWORD"] = location.password
    saved = {k: os.environ.get(k) for k in (*wanted, *forced)}
    logger = logging.getLogger("mlflow")
    level = logger.level
    try:
        for key, value in wanted.items():
            os.environ.setdefault(key, value)
        os.environ.update(forced)
        logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def first_line(err: BaseException) -> str:
    """The first line of an error, without the HTTP response body MLflow appends."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return line.split(" Response body:", 1)[0]


def _pages(search: Callable[..., Any], **kwargs: Any) -> list[Any]:
    out: list[Any] = []
    token = None
    while True:
        page = search(max_results=PAGE, page_token=token, **kwargs)
        out.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return out


def _aliases(raw: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    items = raw.items() if isinstance(raw, dict) else ((a.alias, a.version) for a in raw or [])
    for alias, version in items:
        try:
            out[str(alias)] = int(version)
        except (TypeError, ValueError):
            continue
    return out


def _version(mv: Any) -> VersionInfo:
    stage = mv.current_stage if mv.current_stage and mv.current_stage != "None" else None
    return VersionInfo(
        version=int(mv.version),
        status=str(mv.status or ""),
        stage=stage,
        run_id=mv.run_id or None,
        source=str(mv.source or ""),
        description=mv.description or None,
        tags=dict(mv.tags or {}),
        created_ms=mv.creation_timestamp,
        aliases=sorted(mv.aliases or []),
        storage_location=getattr(mv, "storage_location", None) or None,
    )


def logged_model_id(source: str) -> str | None:
    """The logged model an MLflow 3 source names (`models:/m-...`), else None."""
    if not source.startswith("models:/"):
        return None
    model_id = source[len("models:/") :].strip("/").split("/", 1)[0]
    return model_id if model_id.startswith("m-") else None


class ClientStore:
    """A file store or a tracking server, read through MLflow's own client.

    MLflow's file stores create the folders a store lacks when opened
    (`models/`, `.trash/`): a store without `models/` has no registered model
    and is not opened at all. (Every store MLflow wrote has `.trash/`; one
    copied without its empty folders would get it back.)
    """

    def __init__(self, location: Location, mlflow: Any) -> None:
        self.location = location
        try:
            self.client = mlflow.MlflowClient(
                tracking_uri=location.tracking_uri, registry_uri=location.tracking_uri
            )
        except Exception as err:  # MLflow raises many kinds for a store it cannot open
            raise unreadable(location, err) from None
        self._experiments: dict[str, str] = {}

    def registered(self) -> list[ModelInfo]:
        path = local_path(self.location.tracking_uri) if self.location.kind == "file" else None
        if path is not None and not (path / "models").is_dir():
            # No model was ever registered there; MLflow's registry would create the folder.
            return []
        registered = _pages(self.client.search_registered_models)
        versions: dict[str, list[VersionInfo]] = {}
        for mv in _pages(self.client.search_model_versions):
            versions.setdefault(mv.name, []).append(_version(mv))
        return [
            ModelInfo(
                name=rm.name,
                description=rm.description or None,
                tags=dict(rm.tags or {}),
                aliases=_aliases(rm.aliases),
                versions=versions.get(rm.name, []),
            )
            for rm in registered
        ]

    def logged_model(self, model_id: str) -> tuple[str | None, str | None]:
        """(source run id, artifact location) of an MLflow 3 logged model."""
        try:
            model = self.client.get_logged_model(model_id)
        except Exception:  # a deleted logged model; a server of MLflow 2 has none
            return None, None
        return model.source_run_id or None, model.artifact_location or None

    def run(self, run_id: str) -> RunInfo | None:
        run = self.client.get_run(run_id)
        inputs = []
        for item in getattr(run.inputs, "dataset_inputs", None) or []:
            ds = item.dataset
            inputs.append(
                DatasetInput.logged(
                    ds.name,
                    ds.digest,
                    ds.source_type,
                    ds.source,
                    ds.schema,
                    getattr(ds, "profile", None),
                    tags={t.key: t.value for t in item.tags or []},
                )
            )
        experiment_id = str(run.info.experiment_id)
        return RunInfo(
            run_id=run_id,
            run_name=run.info.run_name or "",
            experiment_id=experiment_id,
            experiment_name=self.experiment(experiment_id),
            status=str(run.info.status or ""),
            start_time=run.info.start_time,
            end_time=run.info.end_time,
            params=dict(run.data.params or {}),
            tags=dict(run.data.tags or {}),
            inputs=inputs,
        )

    def experiment(self, experiment_id: str) -> str:
        if experiment_id not in self._experiments:
            try:
                self._experiments[experiment_id] = self.client.get_experiment(experiment_id).name
            except Exception:
                self._experiments[experiment_id] = ""
        return self._experiments[experiment_id]

    def artifact_uri(self, name: str, version: VersionInfo) -> str:
        return str(self.client.get_model_version_download_uri(name, str(version.version)))


def unreadable(location: Location, err: BaseException) -> SourceUnavailable:
    reason = first_line(err)
    return SourceUnavailable(f"{location.shown}: MLflow cannot read the registry: {reason}")


def table_artifact_uri(store: TableStore, version: VersionInfo) -> str:
    """Where a version's files are, resolved from the store's own tables.

    `runs:/RUN/PATH` is the run's artifact root + PATH and `models:/m-...`
    MLflow 3's logged model's location: never handed to MLflow, whose
    resolution would open a tracking store of its own.
    """
    uri = version.storage_location or version.source
    model_id = logged_model_id(uri)
    if model_id is not None:
        location = store.logged_model(model_id)[1]
        if location:
            return location
    if uri.startswith("runs:/"):
        run_id, _, path = uri[len("runs:/") :].strip("/").partition("/")
        root = store.run_artifact_uri(run_id)
        if root:
            return f"{root.rstrip('/')}/{path}" if path else root
    return uri


def local_path(uri: str) -> Path | None:
    """The local path of an absolute path or `file:` URI, else None."""
    if uri.startswith("/"):
        return Path(uri)
    if uri.lower().startswith("file:"):
        parts = urlsplit(uri)
        if parts.netloc in ("", "localhost"):
            return Path(unquote(parts.path))
    return None


class Reader:
    """The registry at one location: a SQLite store's tables, or MLflow's client."""

    def __init__(self, location: Location) -> None:
        self.mlflow = import_mlflow()
        self.location = location
        self.store: TableStore | ClientStore = (
            TableStore(Path(location.tracking_uri.removeprefix("sqlite:///")), location.shown)
            if location.kind == "sqlite"
            else ClientStore(location, self.mlflow)
        )
        self.warnings: list[str] = []

    def models(self, progress: Progress | None = None) -> list[ModelInfo]:
        """Every registered model with its versions, latest run and signature."""
        try:
            registered = self.store.registered()
        except StewardError:
            raise
        except Exception as err:
            raise unreadable(self.location, err) from None
        total = len(registered)
        out = sorted(registered, key=lambda m: m.name)
        for done, info in enumerate(out):
            if progress is not None:
                progress(done, total, info.name)
            for version in info.versions:
                version.source_run = version.run_id
                model_id = logged_model_id(version.source)
                if not version.run_id and model_id is not None:
                    version.source_run = self.store.logged_model(model_id)[0]
            latest = latest_version(info.versions)
            if latest is not None:
                if latest.source_run:
                    info.run = self.run(latest.source_run, f"{info.name} v{latest.version}")
                info.signature = self.signature(info.name, latest)
        if progress is not None:
            progress(total, total, "")
        return out

    def tracking(self, since: datetime | None, reread: list[str]) -> Tracking:
        """Experiments, and the runs changed since `since` (all when None), with their models."""
        try:
            if isinstance(self.store, TableStore):
                return read_tables(self.store, since, reread)
            return read_client(self.store.client, since, reread)
        except StewardError:
            raise
        except Exception as err:
            raise unreadable(self.location, err) from None

    def run(self, run_id: str, where: str) -> RunInfo | None:
        try:
            run = self.store.run(run_id)
        except Exception as err:
            self.warnings.append(f"{where}: source run {run_id} not readable: {first_line(err)}")
            return None
        if run is None:
            self.warnings.append(f"{where}: source run {run_id} not in the store")
        return run

    def signature(self, name: str, version: VersionInfo) -> dict[str, Any] | None:
        """The version's signature from its MLmodel file (None, with a warning, if unreadable)."""
        where = f"{name} v{version.version}"
        try:
            model = self._mlmodel(name, version)
        except Exception as err:
            self.warnings.append(f"{where}: no readable MLmodel: {first_line(err)}")
            return None
        if model is None or model.signature is None:
            return None
        return dict(model.signature.to_dict())

    def _mlmodel(self, name: str, version: VersionInfo) -> Any:
        load = self.mlflow.models.Model.load
        if isinstance(self.store, TableStore):
            uri = table_artifact_uri(self.store, version)
            path = local_path(uri)
            if path is not None:
                return load(str(path / "MLmodel"))
            if urlsplit(uri).scheme in ("", "runs", "models", "mlflow-artifacts"):
                self.warnings.append(
                    f"{name} v{version.version}: {uri} is read through a tracking server;"
                    " scan the server (mlflow://HOST:PORT) for its signature"
                )
                return None
            tracking_uri = None
        else:
            uri = self.store.artifact_uri(name, version)
            tracking_uri = self.location.tracking_uri
        with tempfile.TemporaryDirectory(prefix="steward-mlflow-") as tmp:
            path = self.mlflow.artifacts.download_artifacts(
                artifact_uri=f"{str(uri).rstrip('/')}/MLmodel",
                dst_path=tmp,
                tracking_uri=tracking_uri,
            )
            return load(path)
