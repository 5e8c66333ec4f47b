"""Reading an MLflow registry through MLflow's own client (the `mlflow` extra).

Where the registry is (`Location`), checked before MLflow touches it: MLflow
creates a missing file store or SQLite database, and retries an unreachable
server for minutes, so a wrong URL would either write to the user's disk or
hang. Then the registered models, their versions, the latest version's
source run (params, tags, logged input datasets, experiment) and its
signature (from the model's `MLmodel` file) become the plain dataclasses of
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
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from catalog.errors import InvalidInput, SourceUnavailable, StewardError
from catalog.identity import normalize_namespace, redact_url
from connectors.base import Progress
from connectors.mlflow.mapping import (
    CONTEXT_TAG,
    DatasetInput,
    ModelInfo,
    RunInfo,
    VersionInfo,
    latest_version,
)

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
    )


class Reader:
    """The registry at one location, read with an `MlflowClient`."""

    def __init__(self, location: Location) -> None:
        mlflow = import_mlflow()
        self.mlflow = mlflow
        self.location = location
        try:
            self.client = mlflow.MlflowClient(
                tracking_uri=location.tracking_uri, registry_uri=location.tracking_uri
            )
        except Exception as err:  # MLflow raises many kinds for a store it cannot open
            raise self.error(err) from None
        self.warnings: list[str] = []
        self._experiments: dict[str, str] = {}

    def error(self, err: BaseException) -> SourceUnavailable:
        return SourceUnavailable(
            f"{self.location.shown}: MLflow cannot read the registry: {first_line(err)}"
        )

    def models(self, progress: Progress | None = None) -> list[ModelInfo]:
        """Every registered model with its versions, latest run and signature."""
        try:
            registered = _pages(self.client.search_registered_models)
            versions: dict[str, list[VersionInfo]] = {}
            for mv in _pages(self.client.search_model_versions):
                versions.setdefault(mv.name, []).append(_version(mv))
        except StewardError:
            raise
        except Exception as err:
            raise self.error(err) from None
        out = []
        total = len(registered)
        for done, rm in enumerate(sorted(registered, key=lambda m: m.name)):
            if progress is not None:
                progress(done, total, rm.name)
            info = ModelInfo(
                name=rm.name,
                description=rm.description or None,
                tags=dict(rm.tags or {}),
                aliases=_aliases(rm.aliases),
                versions=versions.get(rm.name, []),
            )
            latest = latest_version(info.versions)
            if latest is not None:
                if latest.run_id:
                    info.run = self.run(latest.run_id, f"{rm.name} v{latest.version}")
                info.signature = self.signature(rm.name, latest.version)
            out.append(info)
        if progress is not None:
            progress(total, total, "")
        return out

    def run(self, run_id: str, where: str) -> RunInfo | None:
        try:
            run = self.client.get_run(run_id)
        except Exception as err:
            self.warnings.append(f"{where}: source run {run_id} not readable: {first_line(err)}")
            return None
        inputs = []
        for item in getattr(run.inputs, "dataset_inputs", None) or []:
            ds = item.dataset
            tags = {t.key: t.value for t in item.tags or []}
            inputs.append(
                DatasetInput(
                    name=ds.name,
                    digest=ds.digest,
                    source_type=ds.source_type,
                    source=ds.source,
                    schema=ds.schema or None,
                    context=tags.get(CONTEXT_TAG, ""),
                    tags=tags,
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

    def signature(self, name: str, version: int) -> dict[str, Any] | None:
        """The version's signature from its MLmodel file (None, with a warning, if unreadable)."""
        try:
            uri = self.client.get_model_version_download_uri(name, str(version))
            with tempfile.TemporaryDirectory(prefix="steward-mlflow-") as tmp:
                path = self.mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{str(uri).rstrip('/')}/MLmodel",
                    dst_path=tmp,
                    tracking_uri=self.location.tracking_uri,
                )
                model = self.mlflow.models.Model.load(path)
        except Exception as err:
            self.warnings.append(f"{name} v{version}: no readable MLmodel: {first_line(err)}")
            return None
        if model.signature is None:
            return None
        return dict(model.signature.to_dict())
