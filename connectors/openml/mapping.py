"""OpenML datasets, tasks and runs -> asset specs: pure functions over plain data.

Names follow OpenML's own addresses (`https://www.openml.org/d/2`, `/t/1`,
`/r/100`): a dataset is `d/ID` (kind `dataset`), a task `t/ID` (kind `task`),
a run `r/ID` (kind `model`: the run's flow, fitted on its task's data). A
dataset's definition is what OpenML fixes for that id and version (name,
version, format, licence, checksum, default target, row id and ignored
attributes, features with their types and nominal values); missing counts,
qualities, tags and status are observations. The dataset's OpenML page and
its file URL are aliases, so a model elsewhere that names either (an MLflow
`log_input` source, an OpenLineage dataset) resolves to the same asset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from catalog.errors import InvalidInput
from catalog.identity import AssetKey, parse_uri
from catalog.specs import AssetSpec, EdgeSpec, FieldSpec

DATASET, TASK, RUN = "dataset", "task", "model"


@dataclass
class Feature:
    index: int
    name: str
    data_type: str
    nominal_values: list[str] | None = None
    missing: int | None = None
    target: bool = False
    ignore: bool = False
    row_id: bool = False


@dataclass
class DatasetInfo:
    """What openml-python says of one dataset (`OpenMLDataset` as plain data)."""

    id: int
    name: str
    version: int
    format: str | None = None
    licence: str | None = None
    checksum: str | None = None
    default_target: str | None = None
    row_id_attribute: str | None = None
    ignore_attributes: list[str] = field(default_factory=list)
    upload_date: str | None = None
    file_url: str | None = None
    original_data_url: str | None = None
    version_label: str | None = None
    description: str | None = None
    citation: str | None = None
    creator: str | None = None
    tags: list[str] = field(default_factory=list)
    features: list[Feature] = field(default_factory=list)
    qualities: dict[str, float | None] = field(default_factory=dict)


@dataclass
class TaskInfo:
    id: int
    task_type: str
    dataset_id: int
    target: str | None = None
    estimation_procedure: dict[str, Any] = field(default_factory=dict)
    evaluation_measure: str | None = None


@dataclass
class RunInfo:
    id: int
    task_id: int
    flow_id: int
    flow_name: str
    setup_id: int | None = None
    setup_string: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    dataset_id: int | None = None
    uploader: str | None = None
    evaluations: dict[str, float] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


def key(namespace: str, kind: str, oid: int) -> AssetKey:
    """`d/ID`, `t/ID` or `r/ID` in the server's namespace."""
    prefix = {DATASET: "d", TASK: "t", RUN: "r"}[kind]
    return AssetKey.of(namespace, f"{prefix}/{oid}")


def _aliases(site: str, dataset: DatasetInfo, warnings: list[str], where: str) -> list[AssetKey]:
    """The dataset's OpenML page (`https://www.openml.org/d/ID`) and its file URL."""
    out = [AssetKey.of(site, f"d/{dataset.id}")]
    if dataset.file_url:
        try:
            out.append(parse_uri(dataset.file_url))
        except InvalidInput as err:
            warnings.append(f"{where}: file URL not kept as an alias: {err}")
    return out


def feature_field(feature: Feature) -> FieldSpec:
    attributes: dict[str, Any] = {"index": feature.index}
    if feature.nominal_values is not None:
        attributes["nominal_values"] = list(feature.nominal_values)
    for flag in ("target", "ignore", "row_id"):
        if getattr(feature, flag):
            attributes[flag] = True
    return FieldSpec(
        name=feature.name,
        type=feature.data_type,
        nullable=bool(feature.missing),
        attributes=attributes,
    )


def dataset_spec(namespace: str, site: str, dataset: DatasetInfo, warnings: list[str]) -> AssetSpec:
    """One dataset: its definition for this id and version, the rest observed."""
    where = f"{namespace}/d/{dataset.id}"
    properties: dict[str, Any] = {
        "openml_id": dataset.id,
        "name": dataset.name,
        "version": dataset.version,
    }
    for name in (
        "version_label",
        "format",
        "licence",
        "checksum",
        "default_target",
        "row_id_attribute",
        "upload_date",
        "file_url",
        "original_data_url",
    ):
        value = getattr(dataset, name)
        if value is not None:
            properties[name] = value
    if dataset.ignore_attributes:
        properties["ignore_attributes"] = sorted(dataset.ignore_attributes)
    observed: dict[str, Any] = {
        "missing": {f.name: f.missing for f in dataset.features if f.missing is not None},
        "qualities": dict(sorted(dataset.qualities.items())),
    }
    if dataset.tags:
        observed["tags"] = sorted(dataset.tags)
    for name in ("creator", "citation"):
        if getattr(dataset, name):
            observed[name] = getattr(dataset, name)
    return AssetSpec(
        namespace=namespace,
        name=f"d/{dataset.id}",
        kind=DATASET,
        description=f"{dataset.name} (version {dataset.version})",
        fields=[feature_field(f) for f in sorted(dataset.features, key=lambda f: f.index)],
        properties=properties,
        observed=observed,
        aliases=_aliases(site, dataset, warnings, where),
    )


def task_spec(namespace: str, task: TaskInfo) -> AssetSpec:
    """A task: a dataset, a target and how models are evaluated on it."""
    source = key(namespace, DATASET, task.dataset_id)
    properties: dict[str, Any] = {
        "openml_id": task.id,
        "task_type": task.task_type,
        "dataset": source.uri,
        "estimation_procedure": task.estimation_procedure,
    }
    if task.target:
        properties["target"] = task.target
    if task.evaluation_measure:
        properties["evaluation_measure"] = task.evaluation_measure
    return AssetSpec(
        namespace=namespace,
        name=f"t/{task.id}",
        kind=TASK,
        description=f"{task.task_type} on dataset {task.dataset_id}",
        properties=properties,
        edges=[EdgeSpec(source_namespace=source.namespace, source_name=source.name)],
    )


def run_spec(namespace: str, run: RunInfo, tasks: Mapping[int, TaskInfo]) -> AssetSpec:
    """A run: its flow trained on its task's dataset (the run's input data, else the task's)."""
    task = tasks.get(run.task_id)
    dataset_id = run.dataset_id if run.dataset_id is not None else (task and task.dataset_id)
    task_key = key(namespace, TASK, run.task_id)
    properties: dict[str, Any] = {
        "openml_id": run.id,
        "flow": {"id": run.flow_id, "name": run.flow_name},
        "task": task_key.uri,
        "parameters": dict(sorted(run.parameters.items())),
    }
    if run.setup_id is not None:
        properties["setup_id"] = run.setup_id
    if run.setup_string:
        properties["setup_string"] = run.setup_string
    edges = [EdgeSpec(source_namespace=task_key.namespace, source_name=task_key.name)]
    if dataset_id:
        data = key(namespace, DATASET, int(dataset_id))
        edges.append(
            EdgeSpec(source_namespace=data.namespace, source_name=data.name, kind="trained_on")
        )
    observed: dict[str, Any] = {"evaluations": dict(sorted(run.evaluations.items()))}
    if run.uploader:
        observed["uploader"] = run.uploader
    if run.tags:
        observed["tags"] = sorted(run.tags)
    return AssetSpec(
        namespace=namespace,
        name=f"r/{run.id}",
        kind=RUN,
        description=f"{run.flow_name} on task {run.task_id}",
        properties=properties,
        observed=observed,
        edges=edges,
    )


def parse_refs(text: str) -> list[tuple[str, int]]:
    """`2,d/61,t/1,r/100` -> [(dataset, 2), (dataset, 61), (task, 1), (model, 100)]."""
    kinds = {"d": DATASET, "t": TASK, "r": RUN}
    out: list[tuple[str, int]] = []
    for raw in (part.strip() for part in text.split(",")):
        prefix, _, number = raw.rpartition("/")
        if prefix not in ("", *kinds) or not number.isdigit() or int(number) == 0:
            raise InvalidInput(
                f"{raw or text!r} is not an OpenML reference",
                hint="give dataset ids (2 or d/2), tasks (t/1) or runs (r/100), comma-separated",
            )
        out.append((kinds.get(prefix or "d", DATASET), int(number)))
    return out


def unique(refs: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    return sorted(set(refs), key=lambda r: ((DATASET, TASK, RUN).index(r[0]), r[1]))
