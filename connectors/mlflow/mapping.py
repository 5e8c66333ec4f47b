"""From what an MLflow registry holds to asset specs: pure functions over plain data.

The reader (`connectors.mlflow.reader`) turns MLflow's entities into the
dataclasses below; everything here is deterministic and testable without
MLflow.

A registered model is one asset of kind `model`. Its definition is the
*latest* model version (highest version number that is READY): the fields
are that version's signature (inputs, outputs, params), the properties list
every version with its source run (so a new MLflow version is a new steward
version) and the lineage of the latest version's source run: the datasets it
logged as inputs, the feature sets and the embedding model its tags name.
Aliases, stages, statuses, tags and descriptions change without a new model
being trained: they are observations, kept but not versioned.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from catalog.embeddings import parse_model_ref
from catalog.errors import InvalidInput
from catalog.identity import AssetKey
from catalog.provenance import split_dataset_uri
from catalog.specs import AssetSpec, EdgeSpec, FieldSpec

#: Run tags (or params) of the convention; see docs/sections/mlflow.md.
FEATURE_SET_TAG = "steward.feature_set"
FEATURE_SET_PREFIX = "steward.feature_set."
FEATURE_NAMESPACE_TAG = "steward.feature_set_namespace"
EMBEDDING_TAG = "steward.embedding_model"
#: Input tag on a logged dataset: the dataset URI, when MLflow's source cannot say it.
SOURCE_TAG = "steward.source"
CONTEXT_TAG = "mlflow.data.context"

TRAINING_CONTEXTS = frozenset({"", "train", "training"})
EVALUATION_CONTEXTS = frozenset({"eval", "evaluation", "validation", "valid", "test", "testing"})
FEATURE_SCHEMES = ("features://", "feast://")


@dataclass
class DatasetInput:
    """One dataset a run logged with `mlflow.log_input`."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    #: What MLflow computed about the data when it was logged (JSON, e.g. `num_rows`).
    profile: str | None = None
    context: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def logged(cls, *described: str | None, tags: dict[str, str]) -> DatasetInput:
        """From (name, digest, source type, source, schema, profile) and the input's tags."""
        name, digest, source_type, source, schema, profile = described
        return cls(
            name=name or "",
            digest=digest or "",
            source_type=source_type or "",
            source=source or "",
            schema=schema or None,
            profile=profile or None,
            context=tags.get(CONTEXT_TAG, ""),
            tags=tags,
        )


@dataclass
class RunInfo:
    """A model version's source run, with its experiment."""

    run_id: str
    run_name: str = ""
    experiment_id: str = ""
    experiment_name: str = ""
    status: str = ""
    start_time: int | None = None
    end_time: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    inputs: list[DatasetInput] = field(default_factory=list)
    #: Who ran it, where MLflow has it.
    user: str = ""
    #: `active` or `deleted` (MLflow keeps a deleted run until garbage-collected).
    lifecycle_stage: str = "active"
    #: The latest value of each metric.
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class VersionInfo:
    """One model version."""

    version: int
    status: str = "READY"
    stage: str | None = None
    run_id: str | None = None
    source: str = ""
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    created_ms: int | None = None
    aliases: list[str] = field(default_factory=list)
    #: Where the version's files are, when the registry says (MLflow >= 2.9).
    storage_location: str | None = None
    #: The run that trained it: its own run id, else its logged model's (MLflow 3).
    source_run: str | None = None


@dataclass
class ModelInfo:
    """A registered model, its versions, and what its latest version came from."""

    name: str
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    versions: list[VersionInfo] = field(default_factory=list)
    #: The latest version's source run (None if it has none or it could not be read).
    run: RunInfo | None = None
    #: The latest version's signature as MLflow writes it: inputs/outputs/params (JSON).
    signature: dict[str, Any] | None = None


def latest_version(versions: list[VersionInfo]) -> VersionInfo | None:
    """The version that defines the model: the highest READY one (else the highest)."""
    if not versions:
        return None
    ready = [v for v in versions if v.status.upper() == "READY"]
    return max(ready or versions, key=lambda v: v.version)


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as an ISO 8601 UTC time."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


# -- signature -> fields -------------------------------------------------------------


def _specs(raw: Any) -> list[Mapping[str, Any]]:
    if raw is None:
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return []
    if isinstance(raw, Mapping):
        raw = raw.get("mlflow_colspec") or raw.get("mlflow_tensorspec") or []
    return [s for s in raw if isinstance(s, Mapping)] if isinstance(raw, list) else []


def spec_type(spec: Mapping[str, Any]) -> str:
    """A readable type for one MLflow column, tensor or param spec."""
    kind = str(spec.get("type", ""))
    if kind == "tensor":
        tensor = spec.get("tensor-spec") or {}
        return f"tensor({tensor.get('dtype', '')}, {list(tensor.get('shape') or [])})"
    rest = {k: v for k, v in spec.items() if k not in ("name", "required", "default", "shape")}
    if set(rest) - {"type"}:
        return json.dumps(rest, sort_keys=True, separators=(",", ":"))
    return kind


def signature_fields(signature: Mapping[str, Any] | None) -> list[FieldSpec]:
    """Signature inputs, outputs and params as fields (attribute `signature` says which).

    Inputs keep their names; an output or param whose name an input already
    has, or an unnamed spec, is named `output.NAME`, `output_1`, etc.
    """
    if not signature:
        return []
    out: list[FieldSpec] = []
    taken: set[str] = set()
    for role in ("inputs", "outputs", "params"):
        specs = _specs(signature.get(role))
        prefix = role[:-1]
        for i, spec in enumerate(specs):
            name = str(spec.get("name") or "")
            if not name:
                name = prefix if len(specs) == 1 else f"{prefix}_{i}"
            if name in taken:
                name = f"{prefix}.{name}"
            taken.add(name)
            attributes: dict[str, Any] = {"signature": role}
            if spec.get("type") == "tensor":
                attributes["shape"] = list((spec.get("tensor-spec") or {}).get("shape") or [])
            if spec.get("shape") is not None:
                attributes["shape"] = spec["shape"]
            default = spec.get("default")
            out.append(
                FieldSpec(
                    name=name,
                    type=spec_type(spec),
                    nullable=not spec.get("required", True) if role != "params" else True,
                    default=None if default is None else json.dumps(default),
                    attributes=attributes,
                )
            )
    return out


# -- datasets ------------------------------------------------------------------------


def dataset_key(source_type: str, source: str, tags: Mapping[str, str]) -> AssetKey | None:
    """The asset key of a logged dataset, keyed like steward's other connectors.

    An input tag `steward.source` wins; otherwise the source's `uri`, `url` or
    `path`: an absolute path or `file://` URI is a file (`file` + path), a URI
    with a host is `SCHEME://HOST:PORT` + the rest of its path (a PostgreSQL
    table: `postgres://HOST:PORT/DB.SCHEMA.TABLE`). Anything else (code, a
    relative path, a Spark table without a host) has no key.
    """
    candidates: list[str] = []
    if tags.get(SOURCE_TAG):
        candidates.append(tags[SOURCE_TAG])
    try:
        parsed = json.loads(source) if source else {}
    except json.JSONDecodeError:
        parsed = source
    if isinstance(parsed, str):
        candidates.append(parsed)
    elif isinstance(parsed, Mapping):
        candidates += [str(parsed[k]) for k in ("uri", "url", "path") if parsed.get(k)]
    for raw in candidates:
        key = uri_key(raw)
        if key is not None:
            return key
    return None


def uri_key(raw: str) -> AssetKey | None:
    text = raw.strip()
    if text.startswith("/"):
        return AssetKey("file", text)
    if text.lower().startswith("file:"):
        path = text.split(":", 1)[1]
        path = "/" + path.lstrip("/") if path.startswith("//") else path
        return AssetKey("file", path) if path.startswith("/") and path != "/" else None
    if "://" not in text or not text.split("://", 1)[1].split("/", 1)[0]:
        return None  # no host: not something another connector could name
    try:
        return split_dataset_uri(text)
    except InvalidInput:
        return None


def registry_dataset_key(namespace: str, ds: DatasetInput) -> AssetKey:
    """A logged dataset no other connector names: `datasets/NAME@DIGEST` in the registry.

    Registered model names cannot hold a `/`, so this never meets a model.
    """
    return AssetKey(namespace, f"datasets/{ds.name}@{ds.digest}")


def _json_object(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def dataset_spec(key: AssetKey, ds: DatasetInput) -> AssetSpec:
    """A logged dataset as an asset: its schema as fields, its profile observed.

    Its definition is what MLflow's digest stands for (name, digest, source,
    schema); the profile (`num_rows`, ...) is an observation.
    """
    try:
        source: Any = json.loads(ds.source) if ds.source else None
    except json.JSONDecodeError:
        source = ds.source
    fields = [
        FieldSpec(
            name=str(spec.get("name") or f"column_{i}"),
            type=spec_type(spec),
            nullable=not spec.get("required", True),
        )
        for i, spec in enumerate(_specs(ds.schema))
    ]
    observed: dict[str, Any] = {"registry": "mlflow"}
    profile = _json_object(ds.profile)
    if profile:
        observed["profile"] = profile
    return AssetSpec(
        namespace=key.namespace,
        name=key.name,
        kind="dataset",
        fields=fields,
        properties={
            "name": ds.name,
            "digest": ds.digest,
            "source_type": ds.source_type,
            "source": source,
        },
        observed=observed,
    )


def edge_kind(context: str, key: AssetKey) -> str:
    """`trained_on`, `evaluated_on`, `feature_input` (a feature set) or `reads`."""
    if key.namespace.startswith(FEATURE_SCHEMES):
        return "feature_input"
    context = context.strip().lower()
    if context in TRAINING_CONTEXTS:
        return "trained_on"
    if context in EVALUATION_CONTEXTS:
        return "evaluated_on"
    return "reads"


def _schema(raw: str | None) -> list[dict[str, str]] | None:
    specs = _specs(raw)
    if not specs:
        return None
    return [{"name": str(s.get("name", "")), "type": spec_type(s)} for s in specs]


def dataset_entry(ds: DatasetInput, key: AssetKey) -> dict[str, Any]:
    """How a logged dataset is kept in the model's properties."""
    try:
        source: Any = json.loads(ds.source) if ds.source else None
    except json.JSONDecodeError:
        source = ds.source
    entry: dict[str, Any] = {
        "name": ds.name,
        "digest": ds.digest,
        "context": ds.context or None,
        "source_type": ds.source_type,
        "source": source,
        "uri": key.uri,
    }
    schema = _schema(ds.schema)
    if schema:
        entry["schema"] = schema
    return entry


# -- the tag convention ----------------------------------------------------------------


def _version(text: str, where: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise InvalidInput(f"{where}: version {text.strip()!r} is not a number") from None
    if value < 1:
        raise InvalidInput(f"{where}: version {value} must be >= 1")
    return value


def feature_set_ref(text: str, where: str) -> tuple[AssetKey, int]:
    """`NAMESPACE/NAME@VERSION` (a feature set's asset URI and version) -> key, version."""
    uri, sep, version = text.strip().rpartition("@")
    namespace, slash, name = uri.rpartition("/")
    if not sep or not slash or "://" not in namespace or not name:
        raise InvalidInput(
            f"{where}: {text.strip()!r} is not FEATURE_SET_URI@VERSION",
            hint="e.g. feast://shop/user_activity@2",
        )
    return AssetKey.of(namespace, name), _version(version, where)


def run_settings(run: RunInfo) -> dict[str, str]:
    """The run's params overlaid with its tags (a tag wins over a param of the same key)."""
    return {**run.params, **run.tags}


def feature_sets(run: RunInfo, warnings: list[str], where: str) -> dict[AssetKey, int]:
    """{feature set key: version} the run's tags (or params) say training read."""
    settings = run_settings(run)
    out: dict[AssetKey, int] = {}
    namespace = settings.get(FEATURE_NAMESPACE_TAG, "").strip()
    for key in sorted(settings):
        value = settings[key]
        try:
            if key == FEATURE_SET_TAG:
                for part in value.split(","):
                    if part.strip():
                        fs, version = feature_set_ref(part, f"{where}: {key}")
                        out[fs] = version
            elif key.startswith(FEATURE_SET_PREFIX) and len(key) > len(FEATURE_SET_PREFIX):
                name = key[len(FEATURE_SET_PREFIX) :]
                if "@" in value:
                    fs, version = feature_set_ref(value, f"{where}: {key}")
                elif namespace:
                    fs, version = AssetKey.of(namespace, name), _version(value, f"{where}: {key}")
                else:
                    warnings.append(
                        f"{where}: {key} gives a version but no {FEATURE_NAMESPACE_TAG} tag "
                        "says where the feature set is; ignored"
                    )
                    continue
                out[fs] = version
        except InvalidInput as err:
            warnings.append(f"{err}; ignored")
    return out


def embedding(run: RunInfo, warnings: list[str], where: str) -> dict[str, Any] | None:
    """`steward.embedding_model = NAME@REVISION` -> the embedding provenance property."""
    value = run_settings(run).get(EMBEDDING_TAG)
    if not value:
        return None
    try:
        model, revision = parse_model_ref(value)
    except InvalidInput as err:
        warnings.append(f"{where}: {EMBEDDING_TAG}: {err}; ignored")
        return None
    return {"origin": "metadata", "models": [{"model": model, "revision": revision}]}


# -- the asset ---------------------------------------------------------------------------


def model_specs(namespace: str, models: list[ModelInfo], warnings: list[str]) -> list[AssetSpec]:
    """The specs of every registered model and of the datasets their latest runs logged.

    A logged dataset keyed by a URI another connector uses (a file, a table)
    is only an edge: that connector describes it. Any other dataset is an
    asset of its own in the registry's namespace (see `registry_dataset_key`).
    """
    specs = [model_spec(namespace, m, warnings) for m in models]
    datasets: dict[AssetKey, AssetSpec] = {}
    for model in models:
        for ds in model.run.inputs if model.run else []:
            if dataset_key(ds.source_type, ds.source, ds.tags) is None:
                key = registry_dataset_key(namespace, ds)
                datasets.setdefault(key, dataset_spec(key, ds))
    return specs + [datasets[k] for k in sorted(datasets)]


def model_spec(namespace: str, model: ModelInfo, warnings: list[str]) -> AssetSpec:
    """The asset spec of one registered model (see the module's docstring)."""
    where = model.name
    latest = latest_version(model.versions)
    by_version: dict[int, list[str]] = {}
    for alias, number in sorted(model.aliases.items()):
        by_version.setdefault(number, []).append(alias)
    properties: dict[str, Any] = {
        "versions": [
            {
                "version": v.version,
                "run_id": v.run_id,
                "source": v.source,
                "created_at": iso(v.created_ms),
            }
            for v in sorted(model.versions, key=lambda v: v.version)
        ],
        "latest_version": latest.version if latest else None,
    }
    edges: dict[tuple[str, str], EdgeSpec] = {}
    run = model.run
    if run is not None:
        where = f"{model.name} v{latest.version if latest else '?'} (run {run.run_id})"
        properties["run_id"] = run.run_id
        properties["experiment_id"] = run.experiment_id
        datasets = []
        for ds in run.inputs:
            key = dataset_key(ds.source_type, ds.source, ds.tags) or registry_dataset_key(
                namespace, ds
            )
            datasets.append(dataset_entry(ds, key))
            kind = edge_kind(ds.context, key)
            edges[(key.uri, kind)] = EdgeSpec(
                source_namespace=key.namespace, source_name=key.name, kind=kind
            )
        properties["datasets"] = sorted(
            datasets, key=lambda d: (d["context"] or "", d["name"], d["digest"], d["uri"])
        )
        trained = feature_sets(run, warnings, where)
        properties["trained_on"] = {key.uri: version for key, version in sorted(trained.items())}
        properties["features"] = sorted(key.uri for key in trained)
        for key in trained:
            edges[(key.uri, "feature_input")] = EdgeSpec(
                source_namespace=key.namespace, source_name=key.name, kind="feature_input"
            )
        provenance = embedding(run, warnings, where)
        if provenance is not None:
            properties["embedding"] = provenance
    return AssetSpec(
        namespace=namespace,
        name=model.name,
        kind="model",
        description=model.description or None,
        fields=signature_fields(model.signature),
        properties=properties,
        observed=_observed(model, by_version),
        edges=[edges[k] for k in sorted(edges)],
    )


def _observed(model: ModelInfo, by_version: dict[int, list[str]]) -> dict[str, Any]:
    out: dict[str, Any] = {"registry": "mlflow"}
    if model.tags:
        out["tags"] = dict(sorted(model.tags.items()))
    if model.aliases:
        out["aliases"] = dict(sorted(model.aliases.items()))
    out["versions"] = [
        {
            "version": v.version,
            "status": v.status,
            "stage": v.stage,
            "aliases": sorted(set(v.aliases) | set(by_version.get(v.version, []))),
            "run_id": v.source_run,
            "tags": dict(sorted(v.tags.items())),
            "description": v.description or None,
        }
        for v in sorted(model.versions, key=lambda v: v.version)
    ]
    run = model.run
    if run is not None:
        out["run"] = {
            "run_id": run.run_id,
            "run_name": run.run_name,
            "status": run.status,
            "start_time": iso(run.start_time),
            "end_time": iso(run.end_time),
            "params": dict(sorted(run.params.items())),
            "tags": {k: v for k, v in sorted(run.tags.items()) if not k.startswith("mlflow.")},
        }
        out["experiment"] = {"id": run.experiment_id, "name": run.experiment_name}
    return out
