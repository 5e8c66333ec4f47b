"""Reading OpenML through openml-python: the connector, its config and the client's state.

openml-python reads a dataset, task or run from its cache when it has it
(never asking the server again) and from the server otherwise. The
connector says which objects came from the cache, and when the server
cannot be reached for one that is not cached, says that in one line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from catalog.errors import InvalidInput, SourceUnavailable
from catalog.identity import normalize_namespace
from connectors.base import Connector, ConnectorConfig, Progress, Scan
from connectors.openml.mapping import (
    DATASET,
    RUN,
    TASK,
    DatasetInfo,
    Feature,
    RunInfo,
    TaskInfo,
    dataset_spec,
    parse_refs,
    run_spec,
    task_spec,
    unique,
)

log = logging.getLogger(__name__)

#: scheme -> (the server's host, its API)
SERVERS = {
    "openml": ("www.openml.org", "https://www.openml.org/api/v1/xml"),
    "openml+test": ("test.openml.org", "https://test.openml.org/api/v1/xml"),
}
#: Where openml-python caches each kind of object, below the server's cache directory.
CACHED = {
    DATASET: "datasets/{}/description.xml",
    TASK: "tasks/{}/task.xml",
    RUN: "runs/{}/description.xml",
}
WHAT = {DATASET: "dataset", TASK: "task", RUN: "run"}


class OpenmlConfig(ConnectorConfig):
    """Which OpenML server and objects, and where openml-python keeps its cache."""

    url: str
    cache_dir: Path | None = None

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0].lower()

    @property
    def refs(self) -> list[tuple[str, int]]:
        return unique(parse_refs(self.url.split("://", 1)[1]))

    @property
    def namespace(self) -> str:
        return normalize_namespace(f"{self.scheme}://{SERVERS[self.scheme][0]}")

    @property
    def site(self) -> str:
        """The server's web address: a dataset's page is `SITE/d/ID`."""
        return f"https://{SERVERS[self.scheme][0]}"


def import_openml() -> Any:
    try:
        import openml
    except ImportError as err:
        raise InvalidInput(
            "openml-python is not installed", hint="pip install 'ai-steward[openml]'"
        ) from err
    return openml


class OpenmlConnector(Connector[OpenmlConfig]):
    """Datasets, tasks and runs of an OpenML server."""

    kind: ClassVar[str] = "openml"
    schemes: ClassVar[tuple[str, ...]] = tuple(SERVERS)
    config_class: ClassVar[type[ConnectorConfig]] = OpenmlConfig

    def __init__(self, config: OpenmlConfig) -> None:
        super().__init__(config)
        self.refs = config.refs  # validated before anything is read
        self.namespace = config.namespace
        self.server = SERVERS[config.scheme][1]

    @contextmanager
    def _client(self) -> Iterator[tuple[Any, Path]]:
        """openml-python pointed at this server (and cache), its global state restored after."""
        openml = import_openml()
        config = openml.config
        saved = (config.server, config._root_cache_directory)
        try:
            config.server = self.server
            if self.config.cache_dir is not None:
                if not self.config.cache_dir.is_dir():
                    raise InvalidInput(
                        f"--cache-dir {self.config.cache_dir}: no such directory",
                        hint="give openml-python's cache directory (the one holding org/)",
                    )
                config.set_root_cache_directory(self.config.cache_dir.resolve())
            yield openml, Path(config.get_cache_directory())
        finally:
            config.server, config._root_cache_directory = saved

    def _get(self, openml: Any, kind: str, oid: int, cache: Path, cached: list[str]) -> Any:
        """One object, through openml-python; failures as one-line errors."""
        import requests
        from openml.exceptions import OpenMLServerException, PyOpenMLError

        in_cache = (cache / CACHED[kind].format(oid)).is_file()
        what = f"{WHAT[kind]} {oid}"
        try:
            value = _read(openml, kind, oid)
        except OpenMLServerException as err:
            raise SourceUnavailable(
                f"OpenML at {self.server} answered for {what}: {err.message} (code {err.code})"
            ) from None
        except (requests.RequestException, OSError) as err:
            raise SourceUnavailable(
                f"cannot reach OpenML at {self.server} for {what}, and it is not in "
                f"openml-python's cache at {cache}: {type(err).__name__}",
                hint="connect, or point --cache-dir at a cache that holds it",
            ) from None
        except PyOpenMLError as err:
            raise SourceUnavailable(f"cannot read {what} from OpenML: {err}") from None
        if in_cache:
            cached.append(what)
        return value

    def scan(self, progress: Progress | None = None) -> Scan:
        warnings: list[str] = []
        cached: list[str] = []
        datasets: list[DatasetInfo] = []
        tasks: dict[int, TaskInfo] = {}
        runs: list[RunInfo] = []
        with self._client() as (openml, cache):
            for done, (kind, oid) in enumerate(self.refs):
                if progress is not None:
                    progress(done, len(self.refs), f"{WHAT[kind]} {oid}")
                raw = self._get(openml, kind, oid, cache, cached)
                if kind == DATASET:
                    datasets.append(dataset_info(raw))
                elif kind == TASK:
                    tasks[oid] = task_info(raw)
                else:
                    run = run_info(raw)
                    if run.id != oid:
                        warnings.append(f"run {oid}: OpenML's answer describes run {run.id}")
                    runs.append(run)
        if cached:
            warnings.append(
                f"read from openml-python's cache at {cache} (the server was not asked): "
                + ", ".join(cached)
            )
        specs = [dataset_spec(self.namespace, self.config.site, d, warnings) for d in datasets]
        specs += [task_spec(self.namespace, t) for _, t in sorted(tasks.items())]
        specs += [run_spec(self.namespace, r, tasks) for r in runs]
        if progress is not None:
            progress(len(self.refs), len(self.refs), "done")
        # Only the objects named were read: nothing else in the namespace is deleted.
        return Scan(
            specs=specs,
            scopes=[],
            origin=f"scan {self.config.scheme}://{','.join(_ref(k, i) for k, i in self.refs)}",
            warnings=warnings,
        )


def _read(openml: Any, kind: str, oid: int) -> Any:
    if kind == DATASET:
        return openml.datasets.get_dataset(
            oid, download_data=False, download_qualities=True, download_features_meta_data=True
        )
    if kind == TASK:
        # The task's description alone: `get_task` would fetch its dataset too.
        from openml.tasks.functions import _get_task_description

        return _get_task_description(oid)
    return openml.runs.get_run(oid)


def _ref(kind: str, oid: int) -> str:
    return {DATASET: "d", TASK: "t", RUN: "r"}[kind] + f"/{oid}"


# --- openml-python objects -> plain data -------------------------------------------------


def dataset_info(d: Any) -> DatasetInfo:
    features = [
        Feature(
            index=int(f.index),
            name=str(f.name),
            data_type=str(f.data_type),
            nominal_values=list(f.nominal_values) if f.nominal_values else None,
            missing=int(f.number_missing_values) if f.number_missing_values is not None else None,
            target=str(f.name) == (d.default_target_attribute or ""),
            ignore=str(f.name) in (d.ignore_attribute or []),
            row_id=str(f.name) == (d.row_id_attribute or ""),
        )
        for f in (d.features or {}).values()
    ]
    qualities = {
        str(k): (float(v) if v is not None and v == v else None)
        for k, v in (d.qualities or {}).items()
    }
    ignore = d.ignore_attribute or []
    return DatasetInfo(
        id=int(d.dataset_id),
        name=str(d.name),
        version=int(d.version),
        format=d.format,
        licence=d.licence,
        checksum=d.md5_checksum,
        default_target=d.default_target_attribute,
        row_id_attribute=d.row_id_attribute,
        ignore_attributes=[ignore] if isinstance(ignore, str) else list(ignore),
        upload_date=d.upload_date,
        file_url=d.url,
        original_data_url=d.original_data_url,
        version_label=d.version_label,
        citation=d.citation,
        creator=d.creator if isinstance(d.creator, str) else None,
        tags=list(getattr(d, "tag", None) or []),
        features=features,
        qualities=qualities,
    )


def task_info(t: Any) -> TaskInfo:
    return TaskInfo(
        id=int(t.task_id),
        task_type=str(t.task_type),
        dataset_id=int(t.dataset_id),
        target=getattr(t, "target_name", None),
        estimation_procedure=dict(t.estimation_procedure or {}),
        evaluation_measure=getattr(t, "evaluation_measure", None),
    )


def run_info(r: Any) -> RunInfo:
    parameters = {
        str(p.get("oml:name")): str(p.get("oml:value"))
        for p in (r.parameter_settings or [])
        if isinstance(p, dict)
    }
    evaluations = {
        str(k): float(v) for k, v in (r.evaluations or {}).items() if isinstance(v, int | float)
    }
    return RunInfo(
        id=int(r.run_id),
        task_id=int(r.task_id),
        flow_id=int(r.flow_id),
        flow_name=str(r.flow_name),
        setup_id=int(r.setup_id) if r.setup_id is not None else None,
        setup_string=r.setup_string,
        parameters=parameters,
        dataset_id=int(r.dataset_id) if r.dataset_id is not None else None,
        uploader=r.uploader_name,
        evaluations=evaluations,
        tags=list(r.tags or []),
    )
