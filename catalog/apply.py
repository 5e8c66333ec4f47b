"""The one write path for assets: `plan(specs)` shows, `apply(specs)` writes.

Both compute the same list of changes. A spec whose fingerprint matches the
asset's current version is unchanged and writes nothing; a changed one gets a
new version row with a classified diff; an asset that a full scan (`Scope`)
no longer finds is marked deleted, and comes back as a new version if it
reappears. `apply` runs in one transaction: it writes everything or nothing;
on PostgreSQL one that conflicts with a concurrent writer is computed again.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import col

from catalog.db import (
    CHUNK,
    Store,
    db_time,
    insert_returning,
    insert_rows,
    json_text,
    update_by_id,
)
from catalog.errors import InvalidInput
from catalog.evidence import Assertion, Merged, merge, restate, supersedes
from catalog.identity import AssetKey, asset_uri, kind_uri
from catalog.merge import keeper, merge_assets
from catalog.models import (
    EDGE_COLUMNS,
    EDGE_JSON,
    Alias,
    Asset,
    AssetEvidence,
    AssetField,
    AssetVersion,
    Edge,
    key_hash,
    utcnow,
)
from catalog.specs import AssetSpec
from catalog.versioning import diff_definitions, fingerprint

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Attempts at a write that conflicts with a concurrent writer (PostgreSQL).
CONFLICT_RETRIES = 8
#: unique_violation, deadlock_detected, serialization_failure.
_CONFLICT_STATES = frozenset({"23505", "40P01", "40001"})

ASSET = Asset.__table__  # type: ignore[attr-defined]
VERSION = AssetVersion.__table__  # type: ignore[attr-defined]
FIELD = AssetField.__table__  # type: ignore[attr-defined]
ALIAS = Alias.__table__  # type: ignore[attr-defined]
EDGE = Edge.__table__  # type: ignore[attr-defined]
EVIDENCE = AssetEvidence.__table__  # type: ignore[attr-defined]
#: What a caller may say of each spec it applies: which source asserts it, and when.
Sources = dict[str, tuple[str, datetime]]


@dataclass(frozen=True)
class Scope:
    """What a full scan covers: the assets in it that the scan no longer finds are deleted.

    `prefixes` narrows the namespace to names starting with one of them (a
    database, a schema); `kinds` to some kinds of asset. Empty means all.
    """

    namespace: str
    prefixes: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    def covers(self, namespace: str, name: str, kind: str) -> bool:
        if namespace != self.namespace:
            return False
        if self.prefixes and not name.startswith(self.prefixes):
            return False
        return not self.kinds or kind in self.kinds


@dataclass
class Change:
    """What applying a spec does (or did) to one asset."""

    action: str  # create | update | restore | delete | unchanged
    uri: str
    kind: str
    version: int
    previous: int | None = None
    fingerprint: str | None = None
    diff: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action,
            "uri": self.uri,
            "kind": self.kind,
            "version": self.version,
            "previous_version": self.previous,
            "fingerprint": self.fingerprint,
        }
        if self.diff is not None:
            out["diff"] = self.diff
        return out


@dataclass
class Plan:
    """The changes a set of specs makes; `summary()` counts them."""

    changes: list[Change] = field(default_factory=list)
    applied: bool = False
    #: Runs written (inserted or changed) with the changes, where the source tracks runs.
    runs: int | None = None
    #: Once applied: the id of each spec's asset, by its URI (created ones included).
    ids: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        counts = {"created": 0, "changed": 0, "unchanged": 0, "deleted": 0}
        names = {
            "create": "created",
            "update": "changed",
            "restore": "changed",
            "delete": "deleted",
            "unchanged": "unchanged",
        }
        for change in self.changes:
            counts[names[change.action]] += 1
        return counts

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "unchanged"]

    def to_json(self) -> dict[str, Any]:
        out = {
            "applied": self.applied,
            "summary": self.summary(),
            "changes": [c.to_json() for c in self.pending],
        }
        if self.runs is not None:
            out["runs_written"] = self.runs
        return out


@dataclass
class _Existing:
    id: int
    kind: str
    version: int
    fingerprint: str | None
    deleted: bool
    unresolved: bool
    observed: dict[str, Any]
    description: str | None


@dataclass
class _Work:
    """The computed plan plus what `apply` needs to write it."""

    plan: Plan
    specs: dict[str, AssetSpec]
    existing: dict[str, _Existing]
    fingerprints: dict[str, str]
    #: The merged definition of each spec's asset (what a new version holds).
    definitions: dict[str, dict[str, Any]]
    observed_only: list[str]
    deletions: list[tuple[int, Change]]
    #: The merged observations and description of each spec's asset.
    merged: dict[str, Merged] = field(default_factory=dict)
    #: The assertion each spec's source makes now, to record (None: nothing new).
    assertions: dict[str, Assertion] = field(default_factory=dict)
    #: Evidence rows the new assertions replace.
    replaced: list[int] = field(default_factory=list)
    #: Assets whose edges the applied spec declares (its source is the authority).
    declares_edges: set[str] = field(default_factory=set)
    #: What each spec's source says now (its time is the new version's `valid_from`).
    said: dict[str, Assertion] = field(default_factory=dict)
    #: Assertions older than their source's last: (uri, asset id, definition then, time).
    late: list[tuple[str, int, dict[str, Any], datetime]] = field(default_factory=list)
    #: The highest version number of each changed asset (late versions count).
    tops: dict[int, int] = field(default_factory=dict)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _dedupe(specs: Iterable[AssetSpec]) -> dict[str, AssetSpec]:
    out: dict[str, AssetSpec] = {}
    for spec in specs:
        uri = spec.uri
        if uri in out and out[uri] != spec:
            raise InvalidInput(f"asset {uri} is described twice, differently, in one apply")
        out[uri] = spec
    return out


def _existing(row: Any) -> _Existing:
    return _Existing(
        row.id,
        row.kind,
        row.current_version,
        row.fingerprint,
        row.deleted,
        row.unresolved,
        row.observed or {},
        row.description,
    )


def _load_existing(conn: Connection, uris: Sequence[str]) -> dict[str, _Existing]:
    """Current state of the assets with these URIs (or aliases), by URI."""
    hashes = {key_hash(uri): uri for uri in uris}
    found: dict[str, _Existing] = {}
    columns = (
        ASSET.c.id,
        ASSET.c.key_hash,
        ASSET.c.kind,
        ASSET.c.current_version,
        ASSET.c.fingerprint,
        ASSET.c.deleted,
        ASSET.c.unresolved,
        ASSET.c.observed,
        ASSET.c.description,
    )
    for chunk in _chunks(list(hashes)):
        for row in conn.execute(select(*columns).where(ASSET.c.key_hash.in_(chunk))):
            found[hashes[row.key_hash]] = _existing(row)
    missing = [h for h, uri in hashes.items() if uri not in found]
    alias_ids: dict[str, int] = {}
    for chunk in _chunks(missing):
        for row in conn.execute(
            select(ALIAS.c.key_hash, ALIAS.c.asset_id).where(ALIAS.c.key_hash.in_(chunk))
        ):
            alias_ids[hashes[row.key_hash]] = row.asset_id
    if alias_ids:
        rows = conn.execute(select(*columns).where(ASSET.c.id.in_(set(alias_ids.values()))))
        by_id = {row.id: _existing(row) for row in rows}
        for uri, asset_id in alias_ids.items():
            found[uri] = by_id[asset_id]
    return found


def _definitions(conn: Connection, asset_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The definition of each asset's latest version."""
    out: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(list(asset_ids)):
        rows = conn.execute(
            select(VERSION.c.asset_id, VERSION.c.definition)
            .join(ASSET, ASSET.c.id == VERSION.c.asset_id)
            .where(VERSION.c.asset_id.in_(chunk))
            .where(VERSION.c.version == ASSET.c.current_version)
        )
        out.update({row.asset_id: row.definition for row in rows})
    return out


@dataclass
class _Evidence:
    row_id: int
    fingerprint: str
    assertion: Assertion
    #: False while `assertion.definition` still is to be read from the versions.
    complete: bool


def _load_evidence(conn: Connection, asset_ids: Sequence[int]) -> dict[int, dict[str, _Evidence]]:
    """Each asset's sources' latest assertions, by source (definitions may be left out)."""
    out: dict[int, dict[str, _Evidence]] = {}
    columns = (
        EVIDENCE.c.id,
        EVIDENCE.c.asset_id,
        EVIDENCE.c.source,
        EVIDENCE.c.fingerprint,
        EVIDENCE.c.definition,
        EVIDENCE.c.observed,
        EVIDENCE.c.description,
        EVIDENCE.c.asserted_at,
    )
    for chunk in _chunks(list(asset_ids)):
        for row in conn.execute(select(*columns).where(EVIDENCE.c.asset_id.in_(chunk))):
            assertion = Assertion(
                row.source,
                _aware(row.asserted_at),
                row.definition or {},
                row.observed or {},
                row.description,
            )
            out.setdefault(row.asset_id, {})[row.source] = _Evidence(
                row.id,
                row.fingerprint,
                assertion,
                row.definition is not None or not row.fingerprint,
            )
    return out


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _complete(conn: Connection, evidence: dict[int, dict[str, _Evidence]], ids: set[int]) -> None:
    """Read the definitions the evidence of these assets keeps by fingerprint."""
    wanted = {
        (asset_id, ev.fingerprint)
        for asset_id in ids
        for ev in evidence.get(asset_id, {}).values()
        if not ev.complete
    }
    if not wanted:
        return
    found: dict[tuple[int, str], dict[str, Any]] = {}
    fps = sorted({fp for _, fp in wanted})
    for chunk in _chunks(sorted({a for a, _ in wanted})):
        for fp_chunk in _chunks(fps):
            rows = conn.execute(
                select(VERSION.c.asset_id, VERSION.c.fingerprint, VERSION.c.definition)
                .where(VERSION.c.asset_id.in_(chunk))
                .where(VERSION.c.fingerprint.in_(fp_chunk))
            )
            found.update({(r.asset_id, r.fingerprint): r.definition for r in rows})
    for asset_id in ids:
        for source, ev in evidence.get(asset_id, {}).items():
            if not ev.complete:
                definition = found.get((asset_id, ev.fingerprint)) or {}
                evidence[asset_id][source] = _Evidence(
                    ev.row_id, ev.fingerprint, replace(ev.assertion, definition=definition), True
                )


def assertions_of(conn: Connection, asset_ids: Iterable[int]) -> dict[int, dict[str, Assertion]]:
    """Each asset's sources' latest assertions, by source, definitions included."""
    ids = set(asset_ids)
    evidence = _load_evidence(conn, sorted(ids))
    _complete(conn, evidence, ids)
    return {
        asset_id: {source: ev.assertion for source, ev in by_source.items()}
        for asset_id, by_source in evidence.items()
    }


def _top_versions(conn: Connection, asset_ids: Sequence[int]) -> dict[int, int]:
    """The highest version number of each asset (a late version is not its current one)."""
    out: dict[int, int] = {}
    for chunk in _chunks(sorted(set(asset_ids))):
        rows = conn.execute(
            select(VERSION.c.asset_id, func.max(VERSION.c.version))
            .where(VERSION.c.asset_id.in_(chunk))
            .group_by(VERSION.c.asset_id)
        )
        out.update({asset_id: top for asset_id, top in rows})
    return out


def _restated(conn: Connection, work: _Work, live: set[int], own_fps: dict[str, str]) -> set[str]:
    """The specs a declared source restates exactly, about assets it alone describes (a
    re-scan of an unchanged source): unchanged, nothing to merge or write. Told from the
    sources' fingerprints alone, without reading their assertions."""
    candidates = {
        uri: old
        for uri, old in work.existing.items()
        if uri in work.said and old.id in live and not old.deleted and work.said[uri].declared
    }
    if not candidates:
        return set()
    sources: dict[int, dict[str, str]] = {}
    for chunk in _chunks(sorted({old.id for old in candidates.values()})):
        rows = conn.execute(
            select(EVIDENCE.c.asset_id, EVIDENCE.c.source, EVIDENCE.c.fingerprint).where(
                EVIDENCE.c.asset_id.in_(chunk)
            )
        )
        for asset_id, source, fp in rows:
            sources.setdefault(asset_id, {})[source] = fp
    quick = set()
    for uri, old in candidates.items():
        said, spec = work.said[uri], work.specs[uri]
        fp = own_fps[uri] = fingerprint(said.definition)
        if (
            fp == old.fingerprint
            and sources.get(old.id) == {said.source: fp}
            and spec.observed == old.observed
            and (spec.description or None) == old.description
        ):
            quick.add(uri)
            work.plan.changes.append(
                Change("unchanged", uri, old.kind, old.version, old.version, fp)
            )
    return quick


def _needs_definitions(said: Assertion, evidence: dict[str, _Evidence]) -> bool:
    others = len(evidence) - (said.source in evidence)
    # An event's own last schema matters to `restate` (partial and untyped fields) only.
    restates = not said.declared and bool(said.definition.get("fields"))
    return others > 0 or (restates and said.source in evidence)


def _compute(
    conn: Connection,
    specs: Iterable[AssetSpec],
    scopes: Sequence[Scope],
    origin: str | None = None,
    sources: Sources | None = None,
    fingerprints: Mapping[str, str] | None = None,
    definitions: Mapping[str, dict[str, Any]] | None = None,
) -> _Work:
    by_uri = _dedupe(specs)
    built = definitions or {}
    existing = _load_existing(conn, list(by_uri))
    plan = Plan()
    work = _Work(plan, by_uri, existing, {}, {}, [], [])
    now = utcnow()
    live = {old.id for old in existing.values() if not (old.unresolved or old.version == 0)}
    said: dict[str, Assertion] = {}
    for uri, spec in by_uri.items():
        source, at = (sources or {}).get(uri) or (origin or "unknown", now)
        definition = built[uri] if uri in built else spec.definition()
        said[uri] = Assertion(source, at, definition, {}, spec.description)
    work.said = said
    # The fingerprints of the specs' own definitions (`said`), where known.
    own_fps: dict[str, str] = dict(fingerprints or {})
    quick = _restated(conn, work, live, own_fps)
    full = {old.id for uri, old in existing.items() if old.id in live and uri not in quick}
    evidence = _load_evidence(conn, sorted(full)) if full else {}
    # The definitions a merge needs: other sources' and an event source's own last one.
    _complete(
        conn,
        evidence,
        {
            old.id
            for uri, old in existing.items()
            if uri in said and _needs_definitions(said[uri], evidence.get(old.id, {}))
        },
    )
    to_diff: list[tuple[str, AssetSpec, _Existing]] = []

    for uri, spec in by_uri.items():
        if uri in quick:
            continue
        new = said[uri]
        declared = new.declared
        events_observed = (spec.observed if not declared else {}).get("openlineage")
        if declared:
            new = replace(new, observed=spec.observed)
        old = existing.get(uri)
        if old is None or old.unresolved or old.version == 0:
            definition = new.definition  # the spec's own: `said`'s, observed aside
            fp = own_fps.get(uri) or fingerprint(definition)
            work.fingerprints[uri], work.definitions[uri] = fp, definition
            work.merged[uri] = Merged(definition, new.source, spec.observed, spec.description)
            work.assertions[uri] = new
            work.declares_edges.add(uri)
            plan.changes.append(Change("create", uri, spec.kind, 1, None, fp, None))
            continue
        mine = evidence.get(old.id, {})
        prev = mine.get(new.source)
        if prev is not None and not supersedes(prev.assertion, new):
            # Older than what this source said last: recorded at its time, never current.
            plan.changes.append(Change("unchanged", uri, old.kind, old.version, old.version))
            others = [ev.assertion for source, ev in mine.items() if source != new.source]
            then = merge([*others, new]).definition if others else new.definition
            if fingerprint(then) != old.fingerprint:
                work.late.append((uri, old.id, then, new.asserted_at))
            continue
        new = restate(prev.assertion if prev else None, new)
        others = [ev.assertion for source, ev in mine.items() if source != new.source]
        if events_observed is None:
            events_observed = old.observed.get("openlineage")
        if not others:
            observed = dict(new.observed)
            if events_observed:
                observed["openlineage"] = events_observed
            merged = Merged(new.definition, new.source, observed, new.description)
        else:
            merged = merge([*others, new], events_observed)
        definition = merged.definition
        if definition is said[uri].definition and uri in own_fps:
            fp = own_fps[uri]
        else:
            fp = fingerprint(definition)
        work.fingerprints[uri], work.definitions[uri], work.merged[uri] = fp, definition, merged
        if definition is new.definition:
            own_fp = fp
        elif new.definition is said[uri].definition and uri in own_fps:
            own_fp = own_fps[uri]
        else:
            own_fp = fingerprint(new.definition)
        if (
            prev is None
            or prev.fingerprint != own_fp
            or prev.assertion.observed != new.observed
            or prev.assertion.description != new.description
        ):
            work.assertions[uri] = new
            if prev is not None:
                work.replaced.append(prev.row_id)
        if merged.authority == new.source:
            work.declares_edges.add(uri)
        # An event never brings back what a scan no longer finds.
        revives = declared or not any(a.declared and a.definition for a in others)
        if (old.deleted and revives) or (not old.deleted and old.fingerprint != fp):
            to_diff.append((uri, spec, old))
        else:
            plan.changes.append(Change("unchanged", uri, old.kind, old.version, old.version, fp))
            if merged.observed != old.observed or (merged.description or None) != old.description:
                work.observed_only.append(uri)

    old_definitions = _definitions(conn, [old.id for _, _, old in to_diff])
    work.tops = _top_versions(
        conn, [old.id for _, _, old in to_diff] + [a for _, a, _, _ in work.late]
    )
    for uri, _spec, old in to_diff:
        definition = work.definitions[uri]
        diff = diff_definitions(old_definitions.get(old.id), definition)
        action = "restore" if old.deleted else "update"
        kind = definition.get("kind", old.kind)
        number = work.tops.get(old.id, old.version) + 1
        plan.changes.append(
            Change(action, uri, kind, number, old.version, work.fingerprints[uri], diff)
        )

    claimed = {old.id for old in existing.values()}
    for namespace in sorted({scope.namespace for scope in scopes}):
        rows = conn.execute(
            select(
                ASSET.c.id,
                ASSET.c.name,
                ASSET.c.uri,
                ASSET.c.kind,
                ASSET.c.current_version,
                ASSET.c.fingerprint,
            )
            .where(ASSET.c.namespace == namespace)
            .where(ASSET.c.deleted.is_(False))
            .where(ASSET.c.unresolved.is_(False))
        )
        for row in rows:
            if row.id in claimed or not any(
                s.covers(namespace, row.name, row.kind) for s in scopes
            ):
                continue
            claimed.add(row.id)
            change = Change(
                "delete",
                row.uri,
                row.kind,
                row.current_version,
                row.current_version,
                row.fingerprint,
            )
            work.deletions.append((row.id, change))
            plan.changes.append(change)

    plan.changes.sort(key=lambda c: (c.uri, c.action))
    return work


def plan(
    store: Store,
    specs: Iterable[AssetSpec],
    scopes: Sequence[Scope] = (),
    origin: str | None = None,
) -> Plan:
    """What applying `specs` would change; writes nothing.

    `scopes` are the parts of the catalog the specs describe in full: assets
    there that the specs leave out are deleted. `origin` is the source that
    asserts them (`scan URL`): its assertion is merged with other sources'.
    """
    with store.engine.connect() as conn:
        return _compute(conn, specs, scopes, origin).plan


def apply(
    store: Store,
    specs: Iterable[AssetSpec],
    scopes: Sequence[Scope] = (),
    origin: str | None = None,
) -> Plan:
    """Write the changes `specs` make, in one transaction; returns the applied plan."""
    specs = list(specs)
    return write_retrying(store, lambda conn: apply_in(conn, specs, scopes, origin))


def write_retrying(store: Store, work: Callable[[Connection], T]) -> T:
    """`work` in one write transaction, run again from the start after a write conflict.

    On PostgreSQL two writers (two scans of one source, a scan and the
    ingester) both read the catalog before either commits; the one that then
    creates an asset, a version or a binding the other has just committed
    gets a unique violation (or a deadlock). Its transaction is rolled back
    and `work` computed again from what is committed now, so nothing is
    written twice and no version number is taken twice. Every read of one
    attempt sees one snapshot: under READ COMMITTED, a commit landing between
    two of its reads (the current versions, then the highest version numbers)
    had a scan write a version restating the other scan's, with no conflict.
    SQLite writers queue on `BEGIN IMMEDIATE` and never conflict: there any
    error is raised.
    """
    for attempt in range(CONFLICT_RETRIES):
        try:
            with store.write(snapshot=True) as conn:
                return work(conn)
        except (IntegrityError, OperationalError) as err:
            if not is_conflict(store, err) or attempt == CONFLICT_RETRIES - 1:
                raise
            log.info("write conflict with another writer; trying again: %s", err.orig)
            time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
    raise AssertionError("unreachable")


def is_conflict(store: Store, err: DBAPIError) -> bool:
    """A unique violation, deadlock or serialization failure on PostgreSQL."""
    if store.dialect != "postgresql":
        return False
    return getattr(err.orig, "sqlstate", None) in _CONFLICT_STATES


def apply_in(
    conn: Connection,
    specs: Iterable[AssetSpec],
    scopes: Sequence[Scope] = (),
    origin: str | None = None,
    sources: Sources | None = None,
    fingerprints: Mapping[str, str] | None = None,
    definitions: Mapping[str, dict[str, Any]] | None = None,
) -> Plan:
    """`apply` inside a transaction the caller holds (for ingesters and connectors).

    `sources` says, by URI, which source asserts a spec and when (an event's
    job and time); the others are asserted by `origin`, now. `fingerprints`
    gives, by URI, the fingerprint of a spec's definition where the caller
    has it already (an event's schema, fingerprinted where it was parsed), and
    `definitions` the definition itself, where the caller built it: that spec's
    fields are then not read.
    """
    work = _compute(conn, specs, scopes, origin, sources, fingerprints, definitions)
    _write(conn, work, origin)
    work.plan.applied = True
    return work.plan


def _write(conn: Connection, work: _Work, origin: str | None) -> None:
    now = utcnow()
    at = db_time(conn, now)  # as the rows written straight to the driver take it
    changes = [c for c in work.plan.changes if c.action in ("create", "update", "restore")]

    def source(uri: str) -> str | None:
        said = work.assertions.get(uri)
        return said.source if said is not None else origin

    # New assets first, so that versions and edges can point at them.
    fresh = [c for c in changes if c.action == "create" and c.uri not in work.existing]
    ids: dict[str, int] = {uri: old.id for uri, old in work.existing.items()}
    if fresh:
        rows = [
            _asset_row(work.specs[c.uri], work.fingerprints[c.uri], source(c.uri), at)
            for c in fresh
        ]
        ids.update(_insert_returning_ids(conn, rows))
    work.plan.ids = ids

    if changes:
        version_rows = [
            (
                ids[c.uri],
                c.version,
                c.fingerprint,
                json_text(work.definitions[c.uri]),
                json_text(c.diff or diff_definitions(None, work.definitions[c.uri])),
                bool(c.diff and c.diff.get("breaking")),
                c.action == "restore",
                source(c.uri),
                db_time(conn, work.said[c.uri].asserted_at) if c.uri in work.said else at,
                at,
            )
            for c in changes
        ]
        # One version an asset: matched by asset, in any order.
        version_of = {
            asset_id: version_id
            for version_id, asset_id in insert_returning(
                conn, "asset_version", _VERSION_COLUMNS, version_rows, ("id", "asset_id"), _JSONS
            )
        }
        assert len(version_of) == len(changes), "one new version an asset"
        field_rows = [
            row
            for c in changes
            for row in _field_rows(version_of[ids[c.uri]], ids[c.uri], work.definitions[c.uri])
        ]
        insert_rows(conn, "asset_field", _FIELD_COLUMNS, field_rows, frozenset({"attributes"}))

        updated = [c for c in changes if c.uri in work.existing]
        if updated:
            update_by_id(
                conn,
                ASSET,
                [
                    {
                        "id": ids[c.uri],
                        "kind": c.kind,
                        "current_version": c.version,
                        "fingerprint": c.fingerprint,
                        "description": work.merged[c.uri].description,
                        "observed": work.merged[c.uri].observed,
                        "observed_at": now,
                        "deleted": False,
                        "unresolved": False,
                        "origin": source(c.uri),
                        "updated_at": now,
                    }
                    for c in updated
                ],
            )
        _sync_edges(
            conn, work, [c.uri for c in changes if c.uri in work.declares_edges], ids, origin, now
        )

    if work.observed_only:
        update_by_id(
            conn,
            ASSET,
            [
                {
                    "id": ids[uri],
                    "observed": work.merged[uri].observed,
                    "description": work.merged[uri].description,
                    "observed_at": now,
                }
                for uri in work.observed_only
            ],
        )

    if work.deletions:
        mark_deleted(conn, [asset_id for asset_id, _ in work.deletions], now)

    _record_evidence(conn, work, ids, now)
    _record_late(conn, work, now)
    _add_aliases(conn, work, ids, now)


def _record_late(conn: Connection, work: _Work, now: datetime) -> None:
    """A version as late assertions say it was, at their time: history, not current.

    Its diff is against the version that was true just before that time.
    """
    for uri, asset_id, definition, at in work.late:
        before = conn.execute(
            select(VERSION.c.definition)
            .where(VERSION.c.asset_id == asset_id)
            .where(VERSION.c.valid_from <= at)
            .order_by(VERSION.c.valid_from.desc(), VERSION.c.version.desc())
            .limit(1)
        ).scalar()
        diff = diff_definitions(before, definition)
        version_id = conn.execute(
            insert(VERSION).returning(VERSION.c.id),
            {
                "asset_id": asset_id,
                "version": work.tops.get(asset_id, 0) + 1,
                "fingerprint": fingerprint(definition),
                "definition": definition,
                "diff": diff,
                "breaking": bool(diff.get("breaking")),
                "restored": False,
                "origin": work.said[uri].source,
                "valid_from": at,
                "created_at": now,
            },
        ).scalar_one()
        rows = _field_rows(version_id, asset_id, definition)
        insert_rows(conn, "asset_field", _FIELD_COLUMNS, rows, frozenset({"attributes"}))


def _field_rows(
    version_id: int, asset_id: int, definition: dict[str, Any]
) -> list[tuple[Any, ...]]:
    """The `asset_field` rows (`_FIELD_COLUMNS`) of one version's definition."""
    return [
        (
            version_id,
            asset_id,
            position,
            f["name"],
            f.get("type", ""),
            f.get("nullable", True),
            f.get("default"),
            f.get("description"),
            _json(f.get("attributes") or {}),
        )
        for position, f in enumerate(definition.get("fields", []))
    ]


def mark_deleted(conn: Connection, asset_ids: Sequence[int], now: datetime) -> None:
    """Mark assets deleted (a full scan no longer finds them, an event dropped them).

    Their history stays; the edges they declared go; the edges of what reads
    them stay, so the readers can be told they are at risk.
    """
    for chunk in _chunks(list(asset_ids)):
        conn.execute(
            update(ASSET).where(ASSET.c.id.in_(chunk)).values(deleted=True, updated_at=now)
        )
        conn.execute(delete(EDGE).where(EDGE.c.origin_id.in_(chunk)))


def mark_live(conn: Connection, asset_ids: Sequence[int], now: datetime) -> None:
    """Mark deleted assets live again (an event wrote one after it was dropped)."""
    for chunk in _chunks(list(asset_ids)):
        conn.execute(
            update(ASSET)
            .where(ASSET.c.id.in_(chunk))
            .where(ASSET.c.deleted.is_(True))
            .values(deleted=False, updated_at=now)
        )


def _record_evidence(conn: Connection, work: _Work, ids: dict[str, int], now: datetime) -> None:
    """Each source's new assertion replaces its last one (kept by fingerprint when it
    is the definition just versioned, so a scan does not store it twice)."""
    for chunk in _chunks(work.replaced):
        conn.execute(delete(EVIDENCE).where(EVIDENCE.c.id.in_(chunk)))
    rows = []
    for uri, said in work.assertions.items():
        merged_fp = work.fingerprints[uri]
        same = said.definition is work.definitions[uri]
        fp = merged_fp if same else (fingerprint(said.definition) if said.definition else "")
        rows.append(
            (
                ids[uri],
                said.source,
                key_hash(said.source),
                fp,
                None if same else _json_or_null(said.definition),
                _json(said.observed),
                said.description,
                db_time(conn, said.asserted_at),
                db_time(conn, now),
            )
        )
    insert_rows(conn, "asset_evidence", _EVIDENCE_COLUMNS, rows, _EVIDENCE_JSON)


def record_restatements(
    conn: Connection, restated: Iterable[tuple[int, str, str, datetime]], now: datetime
) -> None:
    """Sources that say an asset's current definition exactly (`asset_id`, source,
    that definition's fingerprint, when they said it): a second job that writes a
    table as it is. Each becomes a source of it: its assertion replaces its last one
    unless that one is newer or says the same (kept with its own time, as any source's
    assertion said again unchanged is). Nothing else changes: an assertion of the
    current definition changes no merge, so no version is written and nothing is
    merged. It is kept by fingerprint (the current version's definition), as a
    definition just versioned is."""
    postgres = conn.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    at = db_time(conn, now)
    rows = [
        (asset_id, source, key_hash(source), fp, db_time(conn, when), at)
        for asset_id, source, fp, when in restated
    ]
    if not rows:
        return
    conn.exec_driver_sql(
        "INSERT INTO asset_evidence (asset_id, source, source_hash, fingerprint, definition,"
        " observed, description, asserted_at, recorded_at)"
        f" VALUES ({mark}, {mark}, {mark}, {mark}, NULL, '{{}}', NULL, {mark}, {mark})"
        " ON CONFLICT (asset_id, source_hash) DO UPDATE SET"
        " fingerprint = excluded.fingerprint, definition = NULL, observed = excluded.observed,"
        " description = NULL, asserted_at = excluded.asserted_at,"
        " recorded_at = excluded.recorded_at"
        " WHERE asset_evidence.asserted_at <= excluded.asserted_at"
        " AND asset_evidence.fingerprint <> excluded.fingerprint",
        rows,
    )


_EVIDENCE_COLUMNS = (
    "asset_id",
    "source",
    "source_hash",
    "fingerprint",
    "definition",
    "observed",
    "description",
    "asserted_at",
    "recorded_at",
)
_EVIDENCE_JSON = frozenset({"definition", "observed"})


def _json_or_null(value: dict[str, Any]) -> str | None:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False) if value else None


_FIELD_COLUMNS = (
    "version_id",
    "asset_id",
    "position",
    "name",
    "type",
    "nullable",
    "default",
    "description",
    "attributes",
)


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False) if value else "{}"


def _asset_row(spec: AssetSpec, fp: str, origin: str | None, at: Any) -> tuple[Any, ...]:
    """A new asset's values (`_ASSET_COLUMNS`); `at` is now, as `db_time` gives it."""
    return (
        key_hash(spec.uri),
        spec.namespace,
        spec.name,
        spec.uri,
        spec.kind,
        spec.description,
        1,
        fp,
        False,
        False,
        origin,
        json_text(spec.observed),
        at if spec.observed else None,
        at,
        at,
    )


_ASSET_COLUMNS = (
    "key_hash",
    "namespace",
    "name",
    "uri",
    "kind",
    "description",
    "current_version",
    "fingerprint",
    "deleted",
    "unresolved",
    "origin",
    "observed",
    "observed_at",
    "created_at",
    "updated_at",
)
_VERSION_COLUMNS = (
    "asset_id",
    "version",
    "fingerprint",
    "definition",
    "diff",
    "breaking",
    "restored",
    "origin",
    "valid_from",
    "created_at",
)
#: The JSON columns among those.
_JSONS = frozenset({"observed", "definition", "diff"})


def _insert_returning_ids(conn: Connection, rows: list[tuple[Any, ...]]) -> dict[str, int]:
    """Insert new assets (`_ASSET_COLUMNS`); their ids by URI. Straight to the driver:
    SQLAlchemy's processing of each value (times, JSON) was a third of the insert's cost."""
    inserted = insert_returning(conn, "asset", _ASSET_COLUMNS, rows, ("id", "uri"), _JSONS)
    return {uri: asset_id for asset_id, uri in inserted}


def ensure_assets(
    conn: Connection, keys: Iterable[AssetKey], kind: str = "dataset", origin: str | None = None
) -> dict[str, int]:
    """Ids of the assets with these keys, creating unresolved placeholders for unseen ones.

    A reference to something never described is kept as an explicit
    unresolved asset (version 0), never dropped: the checks report it. The ids
    are by URI, a job's its own (`kind_uri`).
    """
    uris = {kind_uri(k.namespace, k.name, kind): k for k in keys}
    existing = _load_existing(conn, list(uris))
    ids = {uri: old.id for uri, old in existing.items()}
    at = db_time(conn, utcnow())
    rows = [
        (
            key_hash(uri),
            key.namespace,
            key.name,
            uri,
            kind,
            None,
            0,
            None,
            False,
            True,
            origin,
            "{}",
            None,
            at,
            at,
        )
        for uri, key in uris.items()
        if uri not in ids
    ]
    if rows:
        ids.update(_insert_returning_ids(conn, rows))
    return ids


def _sync_edges(
    conn: Connection,
    work: _Work,
    uris: list[str],
    ids: dict[str, int],
    origin: str | None,
    now: Any,
) -> None:
    """Make the edges each changed asset declares exactly those of its spec.

    A spec's edges are a set: one edge reached by two paths (declared twice,
    or through two names of one source) is written once, field mappings united.
    """
    declaring = [uri for uri in uris if work.specs[uri].edges or uri in work.existing]
    if not declaring:
        return
    sources = {e.source for uri in declaring for e in work.specs[uri].edges}
    source_ids = ensure_assets(conn, sources, origin=origin) if sources else {}
    targets = [ids[uri] for uri in declaring]
    for chunk in _chunks(targets):
        conn.execute(delete(EDGE).where(col(EDGE.c.origin_id).in_(chunk)))
    fields: dict[tuple[int, int, str], dict[str, list[str]]] = {}
    for uri in declaring:
        for e in work.specs[uri].edges:
            source_id = source_ids[asset_uri(e.source_namespace, e.source_name)]
            pair = (source_id, ids[uri], e.kind)
            fields[pair] = _merge_fields(fields.get(pair, {}), e.fields)
    # Straight to the driver; an edge declared by its target has no transformations
    # (SQL's NULL, as when the column was left out).
    at = db_time(conn, now)
    rows = [
        (source_id, target_id, kind, target_id, json_text(mapping), None, at)
        for (source_id, target_id, kind), mapping in fields.items()
    ]
    insert_rows(conn, "edge", EDGE_COLUMNS, rows, EDGE_JSON)


def _merge_fields(
    mapping: dict[str, list[str]], more: dict[str, list[str]]
) -> dict[str, list[str]]:
    """Two paths to one edge are one edge: their field mappings are united."""
    out = {target: list(sources) for target, sources in mapping.items()}
    for target, sources in more.items():
        out[target] = list(dict.fromkeys([*out.get(target, []), *sources]))
    return out


def _add_aliases(conn: Connection, work: _Work, ids: dict[str, int], now: Any) -> None:
    wanted = {
        kind_uri(*key, spec.kind): (ids[uri], key)
        for uri, spec in work.specs.items()
        for key in spec.aliases
        if kind_uri(*key, spec.kind) != uri
    }
    if not wanted:
        return
    known = _load_existing(conn, list(wanted))
    for alias_uri in list(wanted):
        asset_id, _key = wanted[alias_uri]
        other = known.get(alias_uri)
        if other is not None and other.id != asset_id:
            # Both names were assets of their own: one thing, merged.
            keep, gone = keeper(conn, asset_id, other.id)
            merge_assets(conn, keep, gone, now)
            wanted = {u: (keep if a == gone else a, k) for u, (a, k) in wanted.items()}
    rows = [
        {
            "asset_id": asset_id,
            "key_hash": key_hash(alias_uri),
            "namespace": key.namespace,
            "name": key.name,
            "uri": alias_uri,
            "created_at": now,
        }
        for alias_uri, (asset_id, key) in wanted.items()
        if alias_uri not in known
    ]
    if rows:
        conn.execute(insert(ALIAS), rows)
