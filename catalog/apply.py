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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import col

from catalog.db import Store, insert_rows, update_by_id
from catalog.errors import InvalidInput
from catalog.identity import AssetKey, asset_uri
from catalog.models import Alias, Asset, AssetField, AssetVersion, Edge, key_hash, utcnow
from catalog.specs import AssetSpec
from catalog.versioning import diff_definitions, fingerprint

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Rows per `IN (...)` lookup: well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 900
#: Attempts at a write that conflicts with a concurrent writer (PostgreSQL).
CONFLICT_RETRIES = 8
#: unique_violation, deadlock_detected, serialization_failure.
_CONFLICT_STATES = frozenset({"23505", "40P01", "40001"})

ASSET = Asset.__table__  # type: ignore[attr-defined]
VERSION = AssetVersion.__table__  # type: ignore[attr-defined]
FIELD = AssetField.__table__  # type: ignore[attr-defined]
ALIAS = Alias.__table__  # type: ignore[attr-defined]
EDGE = Edge.__table__  # type: ignore[attr-defined]


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
        return {
            "applied": self.applied,
            "summary": self.summary(),
            "changes": [c.to_json() for c in self.pending],
        }


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
    definitions: dict[str, dict[str, Any]]
    observed_only: list[str]
    deletions: list[tuple[int, Change]]


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


def _compute(conn: Connection, specs: Iterable[AssetSpec], scopes: Sequence[Scope]) -> _Work:
    by_uri = _dedupe(specs)
    existing = _load_existing(conn, list(by_uri))
    plan = Plan()
    fingerprints: dict[str, str] = {}
    definitions: dict[str, dict[str, Any]] = {}
    observed_only: list[str] = []
    to_diff: list[tuple[str, AssetSpec, _Existing]] = []

    for uri, spec in by_uri.items():
        definition = spec.definition()
        fp = fingerprint(definition)
        fingerprints[uri] = fp
        definitions[uri] = definition
        old = existing.get(uri)
        if old is None or old.unresolved or old.version == 0:
            plan.changes.append(Change("create", uri, spec.kind, 1, None, fp, None))
        elif old.deleted or old.fingerprint != fp:
            to_diff.append((uri, spec, old))
        else:
            plan.changes.append(Change("unchanged", uri, spec.kind, old.version, old.version, fp))
            if spec.observed != old.observed or (spec.description or None) != old.description:
                observed_only.append(uri)

    old_definitions = _definitions(conn, [old.id for _, _, old in to_diff])
    for uri, spec, old in to_diff:
        diff = diff_definitions(old_definitions.get(old.id), definitions[uri])
        action = "restore" if old.deleted else "update"
        plan.changes.append(
            Change(action, uri, spec.kind, old.version + 1, old.version, fingerprints[uri], diff)
        )

    deletions: list[tuple[int, Change]] = []
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
            deletions.append((row.id, change))
            plan.changes.append(change)

    plan.changes.sort(key=lambda c: (c.uri, c.action))
    return _Work(plan, by_uri, existing, fingerprints, definitions, observed_only, deletions)


def plan(store: Store, specs: Iterable[AssetSpec], scopes: Sequence[Scope] = ()) -> Plan:
    """What applying `specs` would change; writes nothing.

    `scopes` are the parts of the catalog the specs describe in full: assets
    there that the specs leave out are deleted.
    """
    with store.engine.connect() as conn:
        return _compute(conn, specs, scopes).plan


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
    written twice and no version number is taken twice. SQLite writers queue
    on `BEGIN IMMEDIATE` and never conflict: there any error is raised.
    """
    for attempt in range(CONFLICT_RETRIES):
        try:
            with store.write() as conn:
                return work(conn)
        except (IntegrityError, OperationalError) as err:
            if not _conflict(store, err) or attempt == CONFLICT_RETRIES - 1:
                raise
            log.info("write conflict with another writer; trying again: %s", err.orig)
            time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
    raise AssertionError("unreachable")


def _conflict(store: Store, err: DBAPIError) -> bool:
    """A unique violation, deadlock or serialization failure on PostgreSQL."""
    if store.dialect != "postgresql":
        return False
    return getattr(err.orig, "sqlstate", None) in _CONFLICT_STATES


def apply_in(
    conn: Connection,
    specs: Iterable[AssetSpec],
    scopes: Sequence[Scope] = (),
    origin: str | None = None,
) -> Plan:
    """`apply` inside a transaction the caller holds (for ingesters and connectors)."""
    work = _compute(conn, specs, scopes)
    _write(conn, work, origin)
    work.plan.applied = True
    return work.plan


def _write(conn: Connection, work: _Work, origin: str | None) -> None:
    now = utcnow()
    changes = [c for c in work.plan.changes if c.action in ("create", "update", "restore")]

    # New assets first, so that versions and edges can point at them.
    fresh = [c for c in changes if c.action == "create" and c.uri not in work.existing]
    ids: dict[str, int] = {uri: old.id for uri, old in work.existing.items()}
    if fresh:
        rows = [_asset_row(work.specs[c.uri], work.fingerprints[c.uri], origin, now) for c in fresh]
        ids.update(_insert_returning_ids(conn, rows))

    if changes:
        version_rows = [
            {
                "asset_id": ids[c.uri],
                "version": c.version,
                "fingerprint": c.fingerprint,
                "definition": work.definitions[c.uri],
                "diff": c.diff or diff_definitions(None, work.definitions[c.uri]),
                "breaking": bool(c.diff and c.diff.get("breaking")),
                "restored": c.action == "restore",
                "origin": origin,
                "created_at": now,
            }
            for c in changes
        ]
        version_ids = conn.execute(
            insert(VERSION).returning(
                VERSION.c.id, VERSION.c.asset_id, sort_by_parameter_order=True
            ),
            version_rows,
        ).all()
        field_rows = [
            (
                version_id,
                asset_id,
                position,
                f.name,
                f.type,
                f.nullable,
                f.default,
                f.description,
                _json(f.attributes),
            )
            for (version_id, asset_id), c in zip(version_ids, changes, strict=True)
            for position, f in enumerate(work.specs[c.uri].fields)
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
                        "description": work.specs[c.uri].description,
                        "observed": work.specs[c.uri].observed,
                        "observed_at": now,
                        "deleted": False,
                        "unresolved": False,
                        "origin": origin,
                        "updated_at": now,
                    }
                    for c in updated
                ],
            )
        _sync_edges(conn, work, [c.uri for c in changes], ids, origin, now)

    if work.observed_only:
        update_by_id(
            conn,
            ASSET,
            [
                {
                    "id": ids[uri],
                    "observed": work.specs[uri].observed,
                    "description": work.specs[uri].description,
                    "observed_at": now,
                }
                for uri in work.observed_only
            ],
        )

    if work.deletions:
        deleted_ids = [asset_id for asset_id, _ in work.deletions]
        for chunk in _chunks(deleted_ids):
            conn.execute(
                update(ASSET).where(ASSET.c.id.in_(chunk)).values(deleted=True, updated_at=now)
            )
            conn.execute(delete(EDGE).where(EDGE.c.origin_id.in_(chunk)))

    _add_aliases(conn, work, ids, now)


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


def _asset_row(spec: AssetSpec, fp: str, origin: str | None, now: Any) -> dict[str, Any]:
    return {
        "key_hash": key_hash(spec.uri),
        "namespace": spec.namespace,
        "name": spec.name,
        "uri": spec.uri,
        "kind": spec.kind,
        "description": spec.description,
        "current_version": 1,
        "fingerprint": fp,
        "deleted": False,
        "unresolved": False,
        "origin": origin,
        "observed": spec.observed,
        "observed_at": now if spec.observed else None,
        "created_at": now,
        "updated_at": now,
    }


def _insert_returning_ids(conn: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    result = conn.execute(
        insert(ASSET).returning(ASSET.c.id, ASSET.c.uri, sort_by_parameter_order=True), rows
    )
    return {row.uri: row.id for row in result}


def ensure_assets(
    conn: Connection, keys: Iterable[AssetKey], kind: str = "dataset", origin: str | None = None
) -> dict[str, int]:
    """Ids of the assets with these keys, creating unresolved placeholders for unseen ones.

    A reference to something never described is kept as an explicit
    unresolved asset (version 0), never dropped: the checks report it.
    """
    uris = {asset_uri(k.namespace, k.name): k for k in keys}
    existing = _load_existing(conn, list(uris))
    ids = {uri: old.id for uri, old in existing.items()}
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "key_hash": key_hash(uri),
            "namespace": key.namespace,
            "name": key.name,
            "uri": uri,
            "kind": kind,
            "current_version": 0,
            "deleted": False,
            "unresolved": True,
            "origin": origin,
            "observed": {},
            "created_at": now,
            "updated_at": now,
        }
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
    rows: dict[tuple[int, int, str], dict[str, Any]] = {}
    for uri in declaring:
        for e in work.specs[uri].edges:
            source_id = source_ids[asset_uri(e.source_namespace, e.source_name)]
            row = rows.setdefault(
                (source_id, ids[uri], e.kind),
                {
                    "source_id": source_id,
                    "target_id": ids[uri],
                    "kind": e.kind,
                    "origin_id": ids[uri],
                    "fields": {},
                    "created_at": now,
                },
            )
            row["fields"] = _merge_fields(row["fields"], e.fields)
    if rows:
        conn.execute(insert(EDGE), list(rows.values()))


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
        key.uri: (ids[uri], key)
        for uri, spec in work.specs.items()
        for key in spec.aliases
        if key.uri != uri
    }
    if not wanted:
        return
    known = _load_existing(conn, list(wanted))
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
