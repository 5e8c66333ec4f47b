"""The governance rules: pure functions from `Facts` to findings.

Each rule returns `Finding`s with a stable id (the rule and what it is
about), a severity (info / warning / error), the assets involved, the
evidence (numbers, versions, the test and its p-value) and a one-line
remedy. Storing them, resolving the ones no longer found and marking what
is at risk downstream is `lineage.findings`' job.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from catalog.coverage import find_gaps
from catalog.profiles import BASELINE, StoredSample
from catalog.querying import resolve_query
from catalog.versioning import diff_definitions
from lineage.below import Below
from lineage.drift import drift_test
from lineage.facts import AssetFacts, Facts
from lineage.graph import LineageGraph
from lineage.skew import DEFAULT_THRESHOLD, feature_skew

SEVERITIES = ("info", "warning", "error")
#: Distance spellings across Qdrant, pgvector and the model registry.
DISTANCE_ALIASES = {
    "cosine": "cosine",
    "dot": "dot",
    "inner_product": "dot",
    "ip": "dot",
    "euclid": "euclid",
    "euclidean": "euclid",
    "l2": "euclid",
    "manhattan": "manhattan",
    "l1": "manhattan",
}
VECTOR_KINDS = ("collection", "table", "view", "materialized_view", "dataset")
#: The assets an error's `at_risk` lists at most, nearest first, each with its path;
#: `at_risk_count` says how many are at risk in all. What lies below an asset can be
#: most of a catalog: a million assets' paths for each error would not fit in memory.
AT_RISK_SHOWN = 50


@dataclass
class Finding:
    rule: str
    severity: str
    assets: list[str]
    title: str
    evidence: dict[str, Any]
    remedy: str
    #: What distinguishes this finding from others of its rule on the same assets.
    key: str = ""
    #: The nearest of the assets it puts at risk (`AT_RISK_SHOWN` at most), with a path each.
    at_risk: list[dict[str, Any]] = field(default_factory=list)
    #: How many assets it puts at risk in all.
    at_risk_count: int = 0
    #: The acknowledgement that holds for it (who, when, why, until), once recorded.
    acknowledged: dict[str, Any] | None = None
    #: The assets that identify the finding, when not all of `assets` do (a breaking
    #: change is the changed asset's, whichever readers it has now): the id stays the
    #: same for as long as the condition lasts.
    identity: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        text = "\x1f".join([self.rule, self.key, *(self.identity or self.assets)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "severity": self.severity,
            "title": self.title,
            "assets": self.assets,
            "evidence": self.evidence,
            "remedy": self.remedy,
            "at_risk": self.at_risk,
            "at_risk_count": self.at_risk_count,
            "acknowledged": self.acknowledged,
        }


@dataclass(frozen=True)
class Settings:
    alpha: float = 0.01
    skew_threshold: float = DEFAULT_THRESHOLD
    #: A rule's findings at another severity than its own (`check --severity RULE=LEVEL`).
    severities: dict[str, str] = field(default_factory=dict)


# -- helpers --------------------------------------------------------------------


def _vector_fields(asset: AssetFacts) -> dict[str, dict[str, Any]]:
    return {
        f["name"]: f.get("attributes", {})
        for f in asset.definition.get("fields", [])
        if f.get("attributes", {}).get("vector")
    }


def _part_attributes(asset: AssetFacts, part: str) -> tuple[str, dict[str, Any]] | None:
    fields = _vector_fields(asset)
    if part in fields:
        return part, fields[part]
    if not part and len(fields) == 1:
        return next(iter(fields.items()))
    return None


def _distance(value: Any) -> str | None:
    return DISTANCE_ALIASES.get(str(value).lower()) if value else None


def _where(asset: AssetFacts, part: str) -> str:
    return f"{asset.uri} ({part})" if part else asset.uri


# -- 1. stale embeddings ---------------------------------------------------------


def _percent(share: float) -> str:
    return f"{share * 100:.0f}%"


def stale_embeddings(facts: Facts, settings: Settings) -> list[Finding]:
    """Vectors built by something other than what their queries use, whatever the names.

    What queries a part is its index binding, its purpose's model or (legacy)
    the revision in use of the model that built it; an index whose points mix
    several models or revisions is stale even when nothing names its queries.
    """
    out = []
    in_use = {name: m.in_use for name, m in facts.models.items() if m.in_use}
    for uri, bindings in sorted(facts.bindings.items()):
        asset = facts.assets.get(uri)
        if asset is None:
            continue
        for part in sorted({b.part for b in bindings}):
            built = [b for b in bindings if b.part == part]
            by_name: dict[str, float] = {}
            for b in built:
                by_name[b.model] = by_name.get(b.model, 0.0) + b.share
            query = resolve_query(facts.queries, uri, part, by_name, in_use)
            refs = sorted({(b.model, b.revision) for b in built})
            mixed = len(refs) > 1
            queried = (query.model, query.revision) if query is not None else None
            stale = [b for b in built if (b.model, b.revision) != queried]
            if not stale or (query is None and not mixed):
                continue
            share_queried = round(
                sum(b.share for b in built if (b.model, b.revision) == queried), 4
            )
            shares = {f"{b.model}@{b.revision}": round(b.share, 4) for b in built}
            shown = ", ".join(
                f"{_percent(b.share)} {b.model}@{b.revision}"
                for b in sorted(built, key=lambda b: (-b.share, b.model, b.revision))
            )
            if mixed:
                several = "revisions" if len({m for m, _ in refs}) == 1 else "models"
                what = f"mixes vectors of several {several} ({shown})"
            else:
                what = f"is built with {built[0].model}@{built[0].revision}"
            if query is not None:
                uses = f"queries use {query.ref}"
                remedy = f"Re-embed {asset.name} with {query.ref}" + (
                    ", or query it with the model that built it."
                    if not mixed
                    else f" (the {_percent(1 - share_queried)} built otherwise)."
                )
            else:
                uses = "no model is bound to its queries"
                remedy = (
                    f"Re-embed {asset.name} with one model, and say which one queries it: "
                    f"steward models use NAME REV --index {asset.name}"
                )
            model = facts.models.get(query.model) if query is not None else None
            out.append(
                Finding(
                    rule="stale_embeddings",
                    severity="error",
                    assets=[uri, *([model.uri] if model is not None else [])],
                    key=part,
                    title=f"{_where(asset, part)} {what}; {uses}",
                    evidence={
                        "part": part,
                        "model": query.model if query is not None else None,
                        "in_use": query.revision if query is not None else None,
                        "queries": query.ref if query is not None else None,
                        "queries_via": query.via if query is not None else None,
                        "built_with": [f"{m}@{r}" for m, r in refs],
                        "shares": shares,
                        "origin": built[0].origin,
                        "mixed": mixed,
                        "partial_reindex": mixed and share_queried > 0,
                        "share_in_use": share_queried,
                    },
                    remedy=remedy,
                )
            )
    return out


# -- 2. dimension / distance mismatch ------------------------------------------------


def mixed_dimensions(facts: Facts) -> list[Finding]:
    """Vector fields whose vectors have several dimensions (an unsized pgvector column):
    no one model built them, and a query of one dimension cannot rank the others."""
    out = []
    for uri, asset in sorted(facts.assets.items()):
        if asset.kind not in VECTOR_KINDS:
            continue
        for part, attrs in sorted(_vector_fields(asset).items()):
            dims = attrs.get("dims")
            if not isinstance(dims, list) or len(dims) < 2:
                continue
            shares = (asset.observed.get("vector_dims") or {}).get(part) or {}
            shown = ", ".join(
                f"{d}" + (f" ({_percent(shares[str(d)])})" if str(d) in shares else "")
                for d in dims
            )
            out.append(
                Finding(
                    rule="embedding_mismatch",
                    severity="error",
                    assets=[uri],
                    key=f"{part}|dims",
                    title=f"{_where(asset, part)} mixes vectors of several dimensions: {shown}",
                    evidence={"part": part, "dims": dims, "shares": shares},
                    remedy=f"Re-embed {asset.name} with one model, or keep each model's vectors "
                    "apart (a collection or a sized vector(N) column each).",
                )
            )
    return out


def embedding_mismatch(facts: Facts, settings: Settings) -> list[Finding]:
    """An index that does not fit the model that built it (dimension, distance), and an
    index whose vectors have several dimensions."""
    out = mixed_dimensions(facts)
    for uri, bindings in sorted(facts.bindings.items()):
        asset = facts.assets.get(uri)
        if asset is None:
            continue
        for b in bindings:
            model = facts.models.get(b.model)
            if model is None:
                continue
            props = model.revisions.get(b.revision) or model.revisions.get(model.in_use or "")
            located = _part_attributes(asset, b.part)
            if props is None or located is None:
                continue
            part, attrs = located
            problems = {}
            if attrs.get("dim") and props.get("dim") and int(attrs["dim"]) != int(props["dim"]):
                problems["dimension"] = {"index": attrs["dim"], "model": props["dim"]}
            index_d, model_d = _distance(attrs.get("distance")), _distance(props.get("distance"))
            equivalent = {index_d, model_d} == {"cosine", "dot"} and props.get("normalized")
            if index_d and model_d and index_d != model_d and not equivalent:
                problems["distance"] = {"index": index_d, "model": model_d}
            if not problems:
                continue
            out.append(
                Finding(
                    rule="embedding_mismatch",
                    severity="error",
                    assets=[uri, model.uri],
                    key=f"{part}|{b.model}@{b.revision}",
                    title=f"{_where(asset, part)} does not fit {b.model}@{b.revision}: "
                    + "; ".join(
                        f"{what} {p['index']}, model expects {p['model']}"
                        for what, p in problems.items()
                    ),
                    evidence={"part": part, "model": f"{b.model}@{b.revision}", **problems},
                    remedy="Rebuild the index with the model's dimension and distance, or bind "
                    "the model that built it.",
                )
            )
    return out


# -- 3. distribution drift -----------------------------------------------------------


def _baseline_and_current(samples: list[StoredSample]) -> tuple[StoredSample, StoredSample] | None:
    """The part's baseline and its newest sample (None when there is nothing to compare).

    The baseline is the newest sample marked so (the first one taken, or a
    re-baseline); samples of older catalogs, unmarked, fall back to the first
    sample of the current version, else the last one of an earlier version.
    """
    if len(samples) < 2:
        return None
    current = samples[-1]
    if current.stats.get("role") == BASELINE:
        return None
    marked = [s for s in samples[:-1] if s.stats.get("role") == BASELINE]
    if marked:
        return marked[-1], current
    same_version = [s for s in samples[:-1] if s.version == current.version]
    earlier = [s for s in samples[:-1] if s.version != current.version]
    if same_version:
        return same_version[0], current
    return (earlier[-1], current) if earlier else None


def _unit(vectors: Any) -> Any:
    """Rows scaled to unit length: what a cosine index ranks by (some stores keep raw rows)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _shown(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("models"), list):
        return ", ".join(
            f"{m.get('model')}@{m.get('revision')}" for m in value["models"] if isinstance(m, dict)
        )
    text = "none" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _version_changes(asset: AssetFacts, baseline: int | None, current: int | None) -> str:
    """What the current version changed, when the baseline is of the version before it."""
    if baseline is None or current != asset.version or baseline != current - 1:
        return ""
    out = []
    for c in asset.diff.get("changed", []):
        name = ".".join(str(x) for x in (c.get("field"), c.get("key")) if x)
        out.append(f"{name or c.get('change')}: {_shown(c.get('from'))} -> {_shown(c.get('to'))}")
    out += [f"added {f.get('name')}" for f in asset.diff.get("added", [])]
    out += [f"removed {f.get('name')}" for f in asset.diff.get("removed", [])]
    return "; ".join(out[:3])


def embedding_drift(facts: Facts, settings: Settings) -> list[Finding]:
    out = []
    for uri, samples in sorted(facts.vector_samples.items()):
        for part in sorted({s.part for s in samples}):
            pair = _baseline_and_current([s for s in samples if s.part == part])
            if pair is None:
                continue
            baseline, current = pair
            asset = facts.assets[uri]
            located = _part_attributes(asset, part)
            cosine = located is not None and _distance(located[1].get("distance")) == "cosine"
            result = drift_test(
                _unit(baseline.vectors) if cosine else baseline.vectors,
                _unit(current.vectors) if cosine else current.vectors,
                alpha=settings.alpha,
                seed=current.id,
            )
            if not result.alarm:
                continue
            changed = _version_changes(asset, baseline.version, current.version)
            since = f" since v{baseline.version}" if baseline.version != current.version else ""
            because = f"; v{current.version} changed {changed}" if changed else ""
            evidence = {
                "part": part,
                "version_changes": changed,
                "baseline_by": baseline.stats.get("rebaselined_by"),
                "baseline_version": baseline.version,
                "current_version": current.version,
                "baseline_taken": str(baseline.created_at),
                "current_taken": str(current.created_at),
                **result.to_evidence(),
            }
            out.append(
                Finding(
                    rule="embedding_drift",
                    severity=result.severity or "warning",
                    assets=[uri],
                    key=part,
                    title=f"vectors of {_where(asset, part)} have drifted from their baseline"
                    f"{since}: {result.describe()}"
                    + (f" (p={result.p_value:.2g})" if result.p_value is not None else "")
                    + because,
                    evidence=evidence,
                    remedy="Check what re-embedded or changed the vectors; once it is intended, "
                    f"re-baseline: steward models rebaseline {asset.name}",
                )
            )
    return out


# -- 4. source newer than index ------------------------------------------------------


def source_newer_than_index(facts: Facts, settings: Settings) -> list[Finding]:
    out = []
    for asset in sorted(facts.assets.values(), key=lambda a: a.uri):
        if asset.unresolved or asset.version_created_at is None or asset.uri not in facts.graph:
            continue
        for edge in facts.graph.edges_into(asset.uri, "embedded_from"):
            source = facts.assets.get(edge.source)
            if source is None or source.unresolved or source.version_created_at is None:
                continue
            # The index was built from the source version current at the time (v1 when
            # the source was first described later): only a later version is newer.
            if source.version < 2 or source.version_created_at <= asset.version_created_at:
                continue
            out.append(
                Finding(
                    rule="source_newer_than_index",
                    severity="warning",
                    assets=[asset.uri, source.uri],
                    title=f"{source.uri} has changed since {asset.uri} was built from it",
                    evidence={
                        "index_version": asset.version,
                        "index_built": str(asset.version_created_at),
                        "source_version": source.version,
                        "source_changed": str(source.version_created_at),
                    },
                    remedy=f"Re-embed {asset.name} from the current {source.name}.",
                )
            )
    return out


# -- 5. feature definition skew -------------------------------------------------------


def _changed_features(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    diff = diff_definitions(old, new)
    names = {f["name"] for f in diff["added"]} | {f["name"] for f in diff["removed"]}
    names |= {c["field"] for c in diff["changed"] if c["field"]}
    return sorted(names)


def feature_definition_skew(facts: Facts, settings: Settings) -> list[Finding]:
    out = []
    for asset in sorted(facts.assets.values(), key=lambda a: a.uri):
        if asset.kind == "feature_set":
            for f in asset.definition.get("fields", []):
                attrs = f.get("attributes", {})
                off, on = attrs.get("offline"), attrs.get("online")
                if off and on and off != on:
                    out.append(
                        Finding(
                            rule="feature_definition_skew",
                            severity="error",
                            assets=[asset.uri],
                            key=f"sides|{f['name']}",
                            title=f"{asset.name}.{f['name']} is computed differently offline "
                            "and online",
                            evidence={
                                "feature": f["name"],
                                "offline": off,
                                "online": on,
                                "version": asset.version,
                            },
                            remedy=f"Make the online transformation of {f['name']} the same as "
                            "the offline one (or retrain on what serving computes).",
                        )
                    )
        trained = asset.definition.get("properties", {}).get("trained_on")
        if not isinstance(trained, dict):
            continue
        for fs_uri, version in sorted(trained.items()):
            fs = facts.assets.get(fs_uri)
            if fs is None or fs.unresolved or not isinstance(version, int):
                continue
            if version == fs.version:
                continue
            old = facts.old_definitions.get((fs_uri, version))
            changed = _changed_features(old, fs.definition) if old else []
            out.append(
                Finding(
                    rule="feature_definition_skew",
                    severity="error",
                    assets=[asset.uri, fs_uri],
                    key=f"version|{fs_uri}",
                    title=f"{asset.name} was trained on {fs.name} v{version}; serving reads "
                    f"v{fs.version}" + (f" ({', '.join(changed)} changed)" if changed else ""),
                    evidence={
                        "trained_on_version": version,
                        "serving_version": fs.version,
                        "changed_features": changed,
                        "training_version_known": old is not None,
                    },
                    remedy=f"Retrain {asset.name} on {fs.name} v{fs.version}, or serve it "
                    f"v{version}.",
                )
            )
    return out


# -- 6. feature value skew ---------------------------------------------------------------


def _keyed(keys: dict[str, list[Any]], values: list[Any]) -> dict[Any, Any] | list[Any]:
    if not keys:
        return values
    columns = [keys[k] for k in sorted(keys)]
    rows = list(zip(*columns, strict=True))
    keyed = [r[0] if len(r) == 1 else r for r in rows]
    if len(set(map(repr, keyed))) != len(keyed):
        return values  # keys repeat: compare as distributions only
    return dict(zip(keyed, values, strict=True))


def feature_value_skew(facts: Facts, settings: Settings) -> list[Finding]:
    out = []
    for uri, samples in sorted(facts.feature_samples.items()):
        offline, online = samples.get("offline"), samples.get("online")
        asset = facts.assets.get(uri)
        if offline is None or online is None or asset is None:
            continue
        for name in sorted(set(offline.features) & set(online.features)):
            result = feature_skew(
                _keyed(offline.keys, offline.features[name]),
                _keyed(online.keys, online.features[name]),
                threshold=settings.skew_threshold,
                alpha=settings.alpha,
            )
            if not result.alarm:
                continue
            out.append(
                Finding(
                    rule="feature_value_skew",
                    severity="warning",
                    assets=[uri],
                    key=name,
                    title=f"{asset.name}.{name}: offline and online values differ "
                    f"({result.metric} {result.distance:.3f})",
                    evidence={"feature": name, **result.to_evidence()},
                    remedy=f"Compare how training and serving compute {name}; refresh stale "
                    "online values.",
                )
            )
    return out


# -- 7. breaking schema change -------------------------------------------------------------


def _broken_fields(diff: dict[str, Any]) -> dict[str, str]:
    broken = {f["name"]: "removed" for f in diff.get("removed", [])}
    for c in diff.get("changed", []):
        if c.get("breaking") and c.get("field"):
            broken.setdefault(c["field"], c["change"])
    return broken


def _within(name: str, parent: str) -> bool:
    """Whether field `name` is `parent` or nested in it (`address.zip` in `address`)."""
    return name == parent or name.startswith(parent + ".")


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w$]){re.escape(name.lower())}(?![\w$])", text.lower()) is not None


def _reads(
    reader: AssetFacts | None, edge_fields: dict[str, list[str]], broken: dict[str, str]
) -> tuple[list[str], bool] | None:
    """The broken fields a reader uses, and whether that is known (field-level lineage,
    a transformation naming them) or assumed (a whole-asset edge); None when it uses
    none of them."""
    if edge_fields:
        named = {f for sources in edge_fields.values() for f in sources}
        used = sorted(b for b in broken if any(_within(b, f) or _within(f, b) for f in named))
        return (used, True) if used else None
    if reader is not None and reader.kind == "feature_set":
        text = " ".join(
            str(v)
            for f in reader.definition.get("fields", [])
            for k, v in f.get("attributes", {}).items()
            if k in ("offline", "online")
        )
        if text:
            used = sorted(name for name in broken if _mentions(text, name))
            return (used, True) if used else None
    return sorted(broken), False  # no field-level lineage: assume it reads the whole asset


def breaking_schema_change(facts: Facts, settings: Settings) -> list[Finding]:
    out = []
    for asset in sorted(facts.assets.values(), key=lambda a: a.uri):
        if asset.version < 2 or not asset.diff.get("breaking") or asset.uri not in facts.graph:
            continue
        broken = _broken_fields(asset.diff)
        if not broken:
            continue
        readers: list[dict[str, Any]] = []
        edges = facts.graph.edges_out_of(asset.uri)
        # Where OpenLineage gave column lineage, it says which fields the jobs use: a
        # job's bare `reads` edge then adds nothing.
        column_level = any(e.kind == "column_lineage" for e in edges)
        for edge in edges:
            reader = facts.assets.get(edge.target)
            if column_level and reader is not None and reader.kind == "job" and not edge.fields:
                continue
            if (
                reader is not None
                and reader.version_created_at
                and asset.version_created_at
                and reader.version_created_at >= asset.version_created_at
                and reader.kind != "job"
            ):
                continue  # redefined with the change or after it: it reads the new shape
            reads = _reads(reader, edge.fields, broken)
            if reads:
                used, known = reads
                readers.append(
                    {"uri": edge.target, "via": edge.kind, "fields": used, "known": known}
                )
        if not readers:
            continue
        out.append(
            Finding(
                rule="breaking_schema_change",
                severity="error",
                assets=[asset.uri, *sorted({r["uri"] for r in readers})],
                key=str(asset.version),
                identity=(asset.uri,),
                title=f"{asset.uri} v{asset.version} "
                + ", ".join(f"{how} {name}" for name, how in sorted(broken.items()))
                + f", which {len(readers)} downstream reader(s) use",
                evidence={"version": asset.version, "broken_fields": broken, "readers": readers},
                remedy="Restore the fields or update the readers: "
                + ", ".join(r["uri"] for r in readers[:5]),
            )
        )
    return out


# -- 8. unresolved references ----------------------------------------------------------------


def unresolved_reference(facts: Facts, settings: Settings) -> list[Finding]:
    out = []
    for asset in sorted(facts.assets.values(), key=lambda a: a.uri):
        if not asset.unresolved or asset.uri not in facts.graph:
            continue
        users = sorted(
            {e.target for e in facts.graph.edges_out_of(asset.uri)}
            | {e.source for e in facts.graph.edges_into(asset.uri)}
        )
        if not users:
            continue
        evidence: dict[str, Any] = {"referenced_by": users}
        remedy = "Scan its source, or send the events of the job that writes it."
        spellings = other_spellings(asset, facts.assets.values())
        if spellings:
            evidence["same_name_elsewhere"] = spellings
            remedy = (
                f"{spellings[0]} has the same name under another spelling of the host; if it "
                "is the same source, name it as that asset does (same host spelling), "
                "else scan this one's source."
            )
        out.append(
            Finding(
                rule="unresolved_reference",
                severity="info",
                assets=[asset.uri],
                title=f"{asset.uri} is referenced but no connector or event describes it",
                evidence=evidence,
                remedy=remedy,
            )
        )
    return out


#: Host spellings of this machine: one server, several namespaces.
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


def other_spellings(asset: AssetFacts, assets: Iterable[AssetFacts]) -> list[str]:
    """Described assets of the same name whose namespace differs only in the host
    (`localhost` and `127.0.0.1`, a host name and its address): loopback spellings
    first."""
    mine = urlsplit(asset.uri[: -len(asset.name) - 1] if asset.uri.endswith(asset.name) else "")
    try:
        my_port = mine.port
    except ValueError:
        return []
    if not mine.scheme or not mine.hostname:
        return []
    found = []
    for other in assets:
        if other.unresolved or other.deleted or other.name != asset.name or other is asset:
            continue
        theirs = urlsplit(other.uri[: -len(other.name) - 1])
        try:
            same_port = theirs.port == my_port
        except ValueError:
            continue
        if theirs.scheme == mine.scheme and same_port and theirs.hostname != mine.hostname:
            loopback = {theirs.hostname, mine.hostname} <= LOOPBACK
            found.append((not loopback, other.uri))
    return [uri for _, uri in sorted(found)]


# -- 9. dropped but still read ----------------------------------------------------------------


def dropped_dataset_read(facts: Facts, settings: Settings) -> list[Finding]:
    """A dataset dropped (OpenLineage `lifecycleStateChange: DROP`, or gone from a full
    scan) that live jobs or assets still read: they are at risk."""
    return [
        Finding(
            rule="dropped_dataset_read",
            severity="error",
            assets=[uri, *readers],
            title=f"{uri} was dropped, and {len(readers)} reader(s) still read it",
            evidence={"dropped": uri, "readers": readers},
            remedy="Recreate it, or point the readers elsewhere: " + ", ".join(readers[:5]),
            identity=(uri,),
        )
        for uri, readers in facts.dropped_readers.items()
    ]


# -- 10. untracked lineage -----------------------------------------------------------------


def untracked_lineage(facts: Facts, settings: Settings) -> list[Finding]:
    """What steward cannot say the origin of (`catalog.coverage.find_gaps`)."""
    if facts.coverage is None:
        return []
    return [
        Finding(
            rule="untracked_lineage",
            severity="warning",
            assets=[gap.uri, *gap.also],
            identity=(gap.uri,),
            key=gap.key,
            title=gap.title,
            evidence={"missing": gap.missing, **gap.evidence},
            remedy=gap.remedy,
        )
        for gap in find_gaps(facts.coverage)
    ]


RULES: dict[str, Callable[[Facts, Settings], list[Finding]]] = {
    "stale_embeddings": stale_embeddings,
    "embedding_mismatch": embedding_mismatch,
    "embedding_drift": embedding_drift,
    "source_newer_than_index": source_newer_than_index,
    "feature_definition_skew": feature_definition_skew,
    "feature_value_skew": feature_value_skew,
    "breaking_schema_change": breaking_schema_change,
    "unresolved_reference": unresolved_reference,
    "dropped_dataset_read": dropped_dataset_read,
    "untracked_lineage": untracked_lineage,
}


def run_rules(
    facts: Facts, rules: list[str] | None = None, settings: Settings | None = None
) -> list[Finding]:
    """Run the named rules (all by default); mark what errors put at risk downstream."""
    findings = evaluate(facts, rules, settings)
    mark_at_risk(findings, facts.graph)
    return sort_findings(findings)


def evaluate(
    facts: Facts, rules: list[str] | None = None, settings: Settings | None = None
) -> list[Finding]:
    """The findings of the named rules, at the severities `settings` asks for."""
    settings = settings or Settings()
    findings = [f for name in (rules or list(RULES)) for f in RULES[name](facts, settings)]
    for finding in findings:
        finding.severity = settings.severities.get(finding.rule, finding.severity)
    return findings


def risk_starts(finding: Finding, graph: LineageGraph | Below) -> list[str]:
    """Where what an error finding puts at risk starts.

    What the finding is about is its first asset; the others are context (a
    model that built many indexes does not put them all at risk). A dropped
    asset is not in the graph: what reads it is where the risk starts.
    """
    start = finding.assets[:1] if finding.assets[0] in graph else finding.assets[1:]
    return [a for a in start if a in graph]


def at_risk_of(
    findings: list[Finding], graph: LineageGraph | Below
) -> list[tuple[int, list[dict[str, Any]]]]:
    """For each of `findings` (errors): how many assets it puts at risk, and the nearest
    of them (then by URI), `AT_RISK_SHOWN` at most, each with a shortest path from
    what the error is about. Counted together (what lies below many errors is shared:
    `lineage.below.count_reached`)."""
    starts = [risk_starts(f, graph) for f in findings]
    counts = graph.downstream_counts([(s, f.assets) for s, f in zip(starts, findings, strict=True)])
    return [
        (
            count,
            [
                {"uri": uri, "path": path}
                for uri, path in graph.nearest(s, AT_RISK_SHOWN, skip=f.assets)
            ],
        )
        for s, f, count in zip(starts, findings, counts, strict=True)
    ]


def at_risk_total(count: int | None, entries: list[Any] | None) -> int:
    """How many assets a finding puts at risk: its `at_risk_count`, or the length of its
    `at_risk` list where that is longer (the list lists the nearest of them)."""
    return max(int(count or 0), len(entries or []))


def shown_at_risk(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An `at_risk` list as it is shown: nearest first, `AT_RISK_SHOWN` at most (a
    finding recorded before the list was bounded lists every asset, by URI)."""
    if len(entries) <= 1:
        return list(entries)
    ordered = sorted(entries, key=lambda r: (len(r.get("path") or []), r.get("uri") or ""))
    return ordered[:AT_RISK_SHOWN]


def mark_at_risk(findings: list[Finding], graph: LineageGraph) -> None:
    errors = [f for f in findings if f.severity == "error"]
    for finding, (count, nearest) in zip(errors, at_risk_of(errors, graph), strict=True):
        finding.at_risk_count, finding.at_risk = count, nearest


def sort_findings(findings: list[Finding]) -> list[Finding]:
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    return sorted(findings, key=lambda f: (order[f.severity], f.rule, f.assets))
