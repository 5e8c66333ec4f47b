"""Writing a played chunk: placeholders, versions (through `apply_in`), edges, runs."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from catalog.apply import (
    apply_in,
    ensure_assets,
    mark_deleted,
    mark_live,
    record_restatements,
)
from catalog.db import insert_returning, insert_rows, update_by_id
from catalog.identity import AssetKey
from catalog.models import (
    utcnow,
)
from catalog.writes import add_aliases, add_edges, set_observed
from lineage.chunk import (
    ASSETS_BY_ID,
    OBSERVED_BY_ID,
    ORIGIN,
    VERSION_IDS,
    AssetRow,
    AssetState,
    ChunkState,
    RunState,
    chunks,
)
from lineage.openlineage import dataset_definition
from lineage.rows import RUN_DATASET_W, RUN_W, db_time, dumps


class ChunkWriter(ChunkState):
    """Writes what a chunk's events changed, in the caller's transaction."""

    #: The rows of the assets the chunk names, as written (`KnownRows`); None to keep none.
    rows_written: dict[str, AssetRow] | None = None

    def _write(self) -> None:
        conn, now = self.conn, utcnow()
        missing: dict[str, list[AssetState]] = defaultdict(list)
        # An asset new to the catalog with a version to write is created by `apply_in`
        # with that version (`_apply_pending`); the others are unresolved placeholders.
        # (A placeholder first, loaded and updated by `apply_in` after, cost a heavy
        # file ingest's writing process some 6% more.)
        seen: set[int] = {id(a) for a, _, _ in self.pending if a.id is None}
        for asset in self.assets.values():
            if asset.id is None and id(asset) not in seen:
                seen.add(id(asset))
                missing[asset.kind].append(asset)
        for kind, assets in missing.items():
            ids = ensure_assets(
                conn, [AssetKey(a.namespace, a.name) for a in assets], kind=kind, origin=ORIGIN
            )
            for a in assets:
                a.id = ids[a.uri]
        changed = self._merge_observed()
        # Before the versions: an assertion of this chunk's, about an asset it changes,
        # is then merged with these as with any source's last one.
        record_restatements(
            conn,
            [(a, source, fp, when) for (a, source), (fp, when) in self.restatements.items()],
            now,
        )
        self._apply_pending(now)
        dropped = {a.id for a in self.assets.values() if a.dropped and a.id is not None}
        if dropped:
            mark_deleted(conn, sorted(dropped), now)
        written = {
            a.id
            for a in self.assets.values()
            if a.dropped is False and a.deleted and a.id is not None
        }
        if written:
            mark_live(conn, sorted(written), now)
        self._write_runs(now)
        set_observed(conn, [(a.id, a.observed or {}) for a in changed if a.id is not None], now)
        if self.aliases:
            add_aliases(
                conn,
                [
                    (asset.id, namespace, name, uri)
                    for uri, (asset, namespace, name) in self.aliases.items()
                    if asset.id is not None
                ],
                now,
            )
        if self.begun is not None and not self.reshaped:
            self.rows_written = self._rows_written([a for v in missing.values() for a in v])

    def _rows_written(self, created: list[AssetState]) -> dict[str, AssetRow]:
        """The rows of the assets the chunk names, by each name: read again
        where the chunk wrote them (a version, a new asset), else as loaded."""
        written = {id(a): a for a, _, _ in self.pending}
        written.update({id(a): a for a in created})
        fresh: dict[int, AssetRow] = {}
        for part in chunks(sorted({a.id for a in written.values() if a.id is not None})):
            for found in self.conn.execute(ASSETS_BY_ID, {"keys": part}):
                fresh[found.id] = AssetRow._make(found)
        rows: dict[str, AssetRow] = {}
        for uri, a in self.assets.items():
            if a.id is None:
                continue
            deleted = a.deleted if a.dropped is None else a.dropped  # once the chunk commits
            if uri in self.from_known and id(a) not in written and deleted == a.deleted:
                continue  # kept already, and as it is
            if id(a) not in written:
                rows[uri] = AssetRow(
                    a.id,
                    "",
                    a.uri,
                    a.namespace,
                    a.name,
                    a.kind,
                    a.version,
                    a.fingerprint,
                    a.origin,
                    deleted,
                )
            elif a.id in fresh:
                rows[uri] = fresh[a.id]
        return rows

    def _merge_observed(self) -> list[AssetState]:
        """Merge the facets seen into each asset's observations; the changed assets."""
        touched = {id(a): a for a in self.assets.values() if a.facets}
        touched.update({id(a): a for a, _, _ in self.pending})
        current: dict[int, dict[str, Any]] = {}
        ids = [a.id for a in touched.values() if a.id is not None]
        for part in chunks(ids):
            rows = self.conn.execute(OBSERVED_BY_ID, {"keys": part})
            current.update({r.id: dict(r.observed or {}) for r in rows})
        changed = []
        for asset in touched.values():
            before = current.get(asset.id or -1, {})
            merged = {**before.get("openlineage", {}), **asset.facets}
            asset.observed = {**before, "openlineage": merged}
            if asset.observed != before:
                changed.append(asset)
        return changed

    def _apply_pending(self, now: datetime) -> None:
        waves: list[list[tuple[AssetState, str, dict[str, Any]]]] = []
        count: dict[int, int] = defaultdict(int)
        for asset, kind, payload in self.pending:
            index = count[id(asset)]
            count[id(asset)] += 1
            if index == len(waves):
                waves.append([])
            waves[index].append((asset, kind, payload))
        for wave in waves:
            specs = [
                self._job_spec(a, p) if k == "job" else self._dataset_spec(a) for a, k, p in wave
            ]
            sources = {a.uri: p["source"] for a, k, p in wave if k == "dataset"}
            known = {a.uri: p["fingerprint"] for a, k, p in wave if k == "dataset"}
            built = {a.uri: dataset_definition(p["fields"]) for a, k, p in wave if k == "dataset"}
            plan = apply_in(
                self.conn,
                specs,
                origin=ORIGIN,
                sources=sources,
                fingerprints=known,
                definitions=built,
            )
            for asset, _, _ in wave:
                if asset.id is None:  # created by apply_in with its first version
                    asset.id = plan.ids[asset.uri]
            edges: list[dict[str, Any]] = []
            for job, kind, props in wave:
                if kind != "job":
                    continue
                for uri in props["outputs"]:
                    edges.append(self._edge(job, job, self.assets[uri], "writes", {}, now))
                by_pair: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(dict)
                for out_uri, mapping in (props.get("columnLineage") or {}).items():
                    for out_field, sources in mapping.items():
                        for src_uri, src_field in sources:
                            by_pair[(src_uri, out_uri)].setdefault(out_field, []).append(src_field)
                how: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
                for out_uri, mapping in (props.get("columnTransformations") or {}).items():
                    for out_field, sources in mapping.items():
                        for src_uri, src_field, kinds in sources:
                            pair = how[(self.assets[src_uri].uri, out_uri)]
                            pair.setdefault(out_field, {})[src_field] = kinds
                for (src_uri, out_uri), mapping in by_pair.items():
                    source = self.assets[src_uri]
                    target = self.assets[out_uri]
                    edge = self._edge(job, source, target, "column_lineage", mapping, now)
                    edge["transformations"] = how.get((source.uri, out_uri)) or None
                    edges.append(edge)
            add_edges(self.conn, edges)

    @staticmethod
    def _edge(
        origin: AssetState,
        source: AssetState,
        target: AssetState,
        kind: str,
        fields: dict[str, list[str]],
        now: datetime,
    ) -> dict[str, Any]:
        return {
            "source_id": source.id,
            "target_id": target.id,
            "kind": kind,
            "origin_id": origin.id,
            "fields": fields,
            "transformations": None,
            "created_at": now,
        }

    def _version_id(self, asset_id: int, fingerprint: str) -> int | None:
        key = (asset_id, fingerprint)
        found = self.chunk_version_ids.get(key)  # a plain map first: runs share versions
        if found is None:
            found = self.projector.version_ids.get(key) or self.new_version_ids.get(key)
            if found is not None:
                self.chunk_version_ids[key] = found
        return found

    def _write_runs(self, now: datetime) -> None:
        conn = self.conn
        wanted: set[int] = set()
        for run in self.runs.values():
            for io in run.io.values():
                if not io.dirty or not io.fingerprint or io.asset.id is None:
                    continue
                # Found now, or once the versions this chunk wrote are read below.
                io.version_id = self._version_id(io.asset.id, io.fingerprint)
                if io.version_id is None:
                    wanted.add(io.asset.id)
        for part in chunks(sorted(wanted)):
            rows = conn.execute(VERSION_IDS, {"keys": part})
            self.new_version_ids.update({(r.asset_id, r.fingerprint): r.id for r in rows})
        fresh = [run for run in self.runs.values() if run.id is None]
        stale = [run for run in self.runs.values() if run.dirty and run.id is not None]
        if fresh:
            at = db_time(conn, now)
            by_uuid = {run.uuid: run for run in fresh}
            for run_id, uuid in insert_returning(
                conn,
                "run",
                ("run_uuid", "created_at", *RUN_COLUMNS),
                [(run.uuid, at, *self._run_values(conn, run, at)) for run in fresh],
                ("id", "run_uuid"),
                frozenset({"facets"}),
            ):
                by_uuid[uuid].id = run_id
        if stale:
            update_by_id(conn, RUN_W, [{"id": r.id, **self._run_row(r, now)} for r in stale])
        new_rows: list[tuple[Any, ...]] = []
        updates: list[dict[str, Any]] = []
        for run in self.runs.values():
            for io in run.io.values():
                if not io.dirty:
                    continue
                assert io.asset.id is not None
                version_id = io.version_id
                if version_id is None and io.fingerprint:
                    version_id = self._version_id(io.asset.id, io.fingerprint)
                if io.row_id is None:
                    new_rows.append(
                        (run.id, io.asset.id, version_id, io.direction, dumps(io.facets))
                    )
                else:
                    updates.append(
                        {"id": io.row_id, "version_id": version_id, "facets": dumps(io.facets)}
                    )
        if new_rows:
            insert_rows(
                conn,
                "run_dataset",
                ("run_id", "asset_id", "version_id", "direction", "facets"),
                new_rows,
                frozenset({"facets"}),
            )
        if updates:
            update_by_id(conn, RUN_DATASET_W, updates)

    @staticmethod
    def _run_row(run: RunState, now: datetime) -> dict[str, Any]:
        """A run's `RUN_COLUMNS` for the typed update (timestamps as datetimes)."""
        return dict(zip(RUN_COLUMNS, (*_run_fields(run), now), strict=True))

    @staticmethod
    def _run_values(conn: Any, run: RunState, at: Any) -> tuple[Any, ...]:
        """A run's `RUN_COLUMNS` for the driver (timestamps as the catalog stores them)."""
        fields = (db_time(conn, v) if isinstance(v, datetime) else v for v in _run_fields(run))
        return (*fields, at)


#: The columns of a run row a chunk writes (`_run_fields`, then `updated_at`).
RUN_COLUMNS = (
    "job_id",
    "state",
    "state_time",
    "started_at",
    "ended_at",
    "parent_run_uuid",
    "facets",
    "updated_at",
)


def _run_fields(run: RunState) -> tuple[Any, ...]:
    """The values of `RUN_COLUMNS` but `updated_at`, in order."""
    return (
        run.job.id,
        _state(run),
        run.state_time,
        run.started_at,
        run.ended_at,
        run.parent,
        dumps(run.facets),
    )


def _state(run: RunState) -> str:
    return "UNKNOWN" if run.state == "NEW" and run.state_time is None else run.state
