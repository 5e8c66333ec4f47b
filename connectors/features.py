"""Native feature definitions: `steward scan features.toml` (or a directory of them).

For teams without a feature store. A file declares feature sets (entities, a
source dataset, features with their offline and online transformations) and
the models that read them. Parsed with the standard library's tomllib and
validated key by key: any problem is one error naming the file, the table and
the key, and nothing is applied.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from catalog.apply import Scope
from catalog.errors import InvalidInput
from catalog.identity import AssetKey, parse_uri
from catalog.specs import AssetSpec, EdgeSpec, FieldSpec
from connectors.base import Connector, ConnectorConfig, Progress, Scan

TOP_KEYS = frozenset({"feature_sets", "models", "entities"})
ENTITY_KEYS = frozenset({"join_keys", "dtype", "description"})
FEATURE_SET_KEYS = frozenset({"entities", "source", "owner", "description", "features", "tags"})
FEATURE_KEYS = frozenset({"dtype", "offline", "online", "description"})
MODEL_KEYS = frozenset({"features", "trained_on", "owner", "description"})

#: SQL-ish tokens: quoted literals and identifiers are kept exactly.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\s+|[A-Za-z0-9_$.]+|.", re.S)


def normalize_transformation(text: str) -> str:
    """A canonical form of a transformation: white space and keyword case do not count.

    Quoted strings and identifiers are kept as written; everything else is
    lowercased and white space is kept only where it separates two words.
    """
    out: list[str] = []
    pending_space = False
    for token in _TOKEN.findall(text):
        if token.isspace():
            pending_space = True
            continue
        quoted = token[0] in "'\""
        word = quoted or token[0].isalnum() or token[0] in "_$."
        if pending_space and out and word and (out[-1][-1].isalnum() or out[-1][-1] in "_'\""):
            out.append(" ")
        out.append(token if quoted else token.lower())
        pending_space = False
    return "".join(out)


def features_namespace(path: Path) -> str:
    return f"features://{path.resolve()}"


class FeaturesConfig(ConnectorConfig):
    pass


@dataclass
class _Where:
    path: Path

    def error(self, table: str, message: str) -> InvalidInput:
        return InvalidInput(f"{self.path}: [{table}] {message}")


def _table(where: _Where, name: str, value: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise where.error(name, "must be a table")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise where.error(
            name, f"unknown key '{unknown[0]}' (known keys: {', '.join(sorted(allowed))})"
        )
    return value


def _string(
    where: _Where, table: str, data: dict[str, Any], key: str, required: bool
) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise where.error(table, f"missing key '{key}'")
        return None
    if not isinstance(value, str) or not value.strip():
        raise where.error(table, f"'{key}' must be a non-empty string")
    return value


def _names(where: _Where, table: str, data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if value is None:
        raise where.error(table, f"missing key '{key}'")
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise where.error(table, f"'{key}' must be a non-empty list of names")
    return value


@dataclass
class _File:
    path: Path
    namespace: str
    entities: dict[str, dict[str, Any]] | None
    feature_sets: dict[str, dict[str, Any]]
    models: dict[str, dict[str, Any]]
    warnings: list[str] = field(default_factory=list)


def read_file(path: Path) -> _File:
    """Parse and validate one definitions file (no cross-file checks)."""
    where = _Where(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InvalidInput(f"{path}: cannot read: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise InvalidInput(f"{path}: not UTF-8 text") from err
    except tomllib.TOMLDecodeError as err:
        raise InvalidInput(f"{path}: not valid TOML: {err}") from err
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise InvalidInput(
            f"{path}: unknown table [{unknown[0]}]", hint="known: entities, feature_sets, models"
        )
    entities = _entities(where, data["entities"]) if "entities" in data else None
    warnings: list[str] = []
    feature_sets: dict[str, dict[str, Any]] = {}
    for name, raw in _tables(where, "feature_sets", data.get("feature_sets", {})).items():
        table = f"feature_sets.{name}"
        fs = _table(where, table, raw, FEATURE_SET_KEYS)
        ents = _names(where, table, fs, "entities")
        if entities is not None:
            for entity in ents:
                if entity not in entities:
                    raise where.error(table, f"'entities' names undefined entity '{entity}'")
        source = _string(where, table, fs, "source", required=False)
        if source is not None:
            try:
                parse_uri(source)
            except InvalidInput as err:
                raise where.error(table, f"'source': {err}") from None
        features = _tables(where, f"{table}.features", fs.get("features"))
        if not features:
            raise where.error(table, "missing key 'features' (at least one feature)")
        for fname, fraw in features.items():
            ftable = f"{table}.features.{fname}"
            feature = _table(where, ftable, fraw, FEATURE_KEYS)
            _dtype(where, ftable, _string(where, ftable, feature, "dtype", required=True))
            for side in ("offline", "online", "description"):
                _string(where, ftable, feature, side, required=False)
        if not any(f.get("online") for f in features.values()):
            warnings.append(
                f"{path}: [{table}] no feature has an 'online' transformation: what serving "
                "computes is unknown, so feature definition skew cannot be checked for it"
            )
        _string(where, table, fs, "owner", required=False)
        _string(where, table, fs, "description", required=False)
        feature_sets[name] = fs
    models: dict[str, dict[str, Any]] = {}
    for name, raw in _tables(where, "models", data.get("models", {})).items():
        table = f"models.{name}"
        model = _table(where, table, raw, MODEL_KEYS)
        reads = _names(where, table, model, "features")
        trained = model.get("trained_on", {})
        if not isinstance(trained, dict):
            raise where.error(table, "'trained_on' must be a table of feature set = version")
        for fs_name, version in trained.items():
            if fs_name not in reads:
                raise where.error(table, f"'trained_on' names '{fs_name}', not in 'features'")
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise where.error(table, f"'trained_on.{fs_name}' must be a version number >= 1")
        _string(where, table, model, "owner", required=False)
        _string(where, table, model, "description", required=False)
        models[name] = model
    return _File(path, features_namespace(path), entities, feature_sets, models, warnings)


#: Feature value types (Feast's, in lower case); `array<T>` or `list<T>` of them too.
DTYPES = (
    "bool",
    "bytes",
    "float32",
    "float64",
    "int32",
    "int64",
    "string",
    "unix_timestamp",
)
#: What people write for them.
DTYPE_SYNONYMS = {
    "int": "int64",
    "integer": "int64",
    "bigint": "int64",
    "long": "int64",
    "float": "float64",
    "double": "float64",
    "str": "string",
    "text": "string",
    "varchar": "string",
    "boolean": "bool",
    "timestamp": "unix_timestamp",
    "datetime": "unix_timestamp",
}


def _dtype(where: _Where, table: str, dtype: str | None) -> None:
    text = (dtype or "").strip().lower()
    for wrapper in ("array<", "list<"):
        if text.startswith(wrapper) and text.endswith(">"):
            text = text[len(wrapper) : -1].strip()
    if text in DTYPES:
        return
    guess = DTYPE_SYNONYMS.get(text)
    hint = f"did you mean '{guess}'? " if guess else ""
    raise where.error(
        table,
        f"'dtype' {dtype!r} is not a feature type ({hint}types: {', '.join(DTYPES)}, "
        "or array<TYPE>)",
    )


def _tables(where: _Where, name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise where.error(name, "must be a table")
    return value


def _entities(where: _Where, value: Any) -> dict[str, dict[str, Any]]:
    return {
        name: _table(where, f"entities.{name}", raw, ENTITY_KEYS)
        for name, raw in _tables(where, "entities", value).items()
    }


def _feature_set_spec(file: _File, name: str, fs: dict[str, Any]) -> AssetSpec:
    features = fs["features"]
    fields = []
    raw: dict[str, dict[str, str]] = {}
    descriptions: dict[str, str] = {}
    for fname, feature in features.items():
        attributes = {
            side: normalize_transformation(feature[side])
            for side in ("offline", "online")
            if feature.get(side)
        }
        fields.append(FieldSpec(name=fname, type=feature["dtype"], attributes=attributes))
        raw[fname] = {side: feature[side] for side in ("offline", "online") if feature.get(side)}
        if feature.get("description"):
            descriptions[fname] = feature["description"]
    edges = []
    properties: dict[str, Any] = {"entities": fs["entities"]}
    if fs.get("source"):
        key = parse_uri(fs["source"])
        properties["source"] = key.uri
        edges.append(
            EdgeSpec(source_namespace=key.namespace, source_name=key.name, kind="feature_source")
        )
    if file.entities is not None:
        properties["join_keys"] = {
            e: file.entities[e].get("join_keys", [e]) for e in fs["entities"]
        }
    observed: dict[str, Any] = {"transformations": raw}
    if fs.get("owner"):
        observed["owner"] = fs["owner"]
    if descriptions:
        observed["feature_descriptions"] = descriptions
    if fs.get("tags"):
        observed["tags"] = fs["tags"]
    return AssetSpec(
        namespace=file.namespace,
        name=name,
        kind="feature_set",
        description=fs.get("description"),
        fields=fields,
        properties=properties,
        observed=observed,
        edges=edges,
    )


def _model_spec(file: _File, name: str, model: dict[str, Any], where: dict[str, str]) -> AssetSpec:
    reads = [AssetKey(where[fs], fs) for fs in model["features"]]
    trained = {AssetKey(where[fs], fs).uri: v for fs, v in model.get("trained_on", {}).items()}
    observed = {"owner": model["owner"]} if model.get("owner") else {}
    return AssetSpec(
        namespace=file.namespace,
        name=name,
        kind="model",
        description=model.get("description"),
        properties={"features": sorted(k.uri for k in reads), "trained_on": trained},
        observed=observed,
        edges=[
            EdgeSpec(source_namespace=k.namespace, source_name=k.name, kind="feature_input")
            for k in reads
        ],
    )


def definition_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.toml") if p.is_file())
        if not files:
            raise InvalidInput(f"{path}: no .toml feature definitions in this directory")
        return files
    if not path.exists():
        raise InvalidInput(f"{path}: no such file or directory")
    return [path]


def read_definitions(path: Path, warnings: list[str] | None = None) -> list[AssetSpec]:
    """Every feature set and model the file (or directory) defines, checked across files.

    What is accepted but limits the checks is appended to `warnings`."""
    files = [read_file(p) for p in definition_files(path)]
    if warnings is not None:
        warnings += [w for file in files for w in file.warnings]
    where: dict[str, str] = {}
    for file in files:
        for name in file.feature_sets:
            if name in where:
                raise InvalidInput(
                    f"{file.path}: [feature_sets.{name}] is also defined in "
                    f"{where[name].removeprefix('features://')}"
                )
            where[name] = file.namespace
    specs: list[AssetSpec] = []
    for file in files:
        specs += [_feature_set_spec(file, n, fs) for n, fs in file.feature_sets.items()]
        for name, model in file.models.items():
            for fs in model["features"]:
                if fs not in where:
                    raise InvalidInput(
                        f"{file.path}: [models.{name}] 'features' names undefined feature set "
                        f"'{fs}'"
                    )
            specs.append(_model_spec(file, name, model, where))
    return specs


def _path_of(url: str) -> Path:
    if url.startswith("features://"):
        return Path(urlsplit(url).path)
    return Path(url).expanduser()


class FeaturesConnector(Connector[FeaturesConfig]):
    """Feature sets and models from native TOML definition files."""

    kind = "features"
    schemes = ("features",)
    config_class = FeaturesConfig

    @classmethod
    def accepts(cls, url: str) -> bool:
        if url.startswith("features://"):
            return True
        if "://" in url:
            return False
        path = Path(url).expanduser()
        return url.endswith(".toml") or path.is_dir()

    def scan(self, progress: Progress | None = None) -> Scan:
        path = _path_of(self.config.url)
        files = definition_files(path)
        warnings: list[str] = []
        specs = read_definitions(path, warnings)
        return Scan(
            specs=specs,
            scopes=[Scope(features_namespace(p)) for p in files],
            origin=f"scan {path.resolve()}",
            warnings=warnings,
        )
