"""Projection of parsed OpenLineage events into the catalog, one chunk at a time.

A chunk of events is first played in memory, in order (datasets get a new
version when their `schema` facet changes, jobs when their inputs, outputs or
code change, runs move through their states by `eventTime`), then written
with a handful of set-wise statements. Definitions go through
`catalog.apply.apply_in`, so versions and diffs are the same as for scanned
assets.

Decisions:

- A dataset named without a `schema` facet is only referenced (an
  unresolved placeholder if never seen); it never gets a version with no
  fields.
- A `schema` facet is its job's assertion about the dataset (the job is the
  source, the event's time its time); the dataset's definition is the merge
  of all sources' latest assertions (`catalog.evidence`): a scan's typed
  schema outranks the events', a partial one removes nothing, an older
  event arriving late never replaces a newer one. A version only when the
  merge changes.
- A job's version is defined by its inputs, outputs, code facets
  (`sourceCode`, `sourceCodeLocation`, `sql`) and column lineage. While a run
  is going, new inputs or outputs are added to the job; when it ends, the
  job's inputs and outputs are exactly the run's (accumulated over its
  events). A job's `reads` edges are part of its spec; its `writes` and
  `column_lineage` edges are re-inserted with origin = the job every time it
  gets a new version, since `apply` replaces that job's edges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import (
    Connection,
)

from catalog.apply import assertions_of
from catalog.evidence import EVENT_SOURCE, Assertion, merge, restate, supersedes
from catalog.identity import asset_uri
from catalog.merge import keeper, merge_assets, rename_asset
from catalog.models import utcnow
from catalog.versioning import fingerprint
from lineage.chunk import AssetRow, AssetState, KnownRows, RunLink, RunState, run_facets
from lineage.chunk_write import ChunkWriter
from lineage.facets import CACHED_AT_MOST
from lineage.lru import ByteLRU
from lineage.openlineage import (
    JOB_CODE_FACETS,
    TERMINAL,
    DatasetRef,
    ParsedEvent,
    canonical,
    dataset_definition,
    job_code,
)

#: Lifecycle changes after which a dropped dataset exists again.
RECREATED = frozenset({"CREATE", "OVERWRITE"})
#: What an entry of `Projector.column_lineage` holds: the built maps and the ref's own.
LINEAGE_COST = 512
LINEAGE_PER_SOURCE = 1000


class Projector:
    """Projects chunks of events; caches facts that never change (version ids)."""

    def __init__(self, cache_size: int = 64 * 1024 * 1024) -> None:
        # Bounded: a quarter of the budget each (a version id costs its entry; a
        # fingerprint its key, which may hold a job's properties as JSON). Job
        # definitions had a thirty-second: a heavy mix's job (some 4 KB of JSON,
        # four times that decoded) took 16 KB of it, so only one job in seven
        # stayed and a chunk read most of its jobs' definitions again.
        self.version_ids: ByteLRU[tuple[int, str], int] = ByteLRU(cache_size // 4)
        self.fingerprints: ByteLRU[Any, str] = ByteLRU(cache_size // 4)
        self.known = KnownRows(cache_size // 4)
        #: A job's properties (their canonical JSON, the assets they name) by its
        #: definition's fingerprint.
        self.job_definitions: ByteLRU[str, tuple[dict[str, Any], str, frozenset[str]]] = ByteLRU(
            cache_size // 4
        )
        #: Jobs' column lineage as built from a ref's maps (`_Chunk._column_lineage`), by
        #: the maps' identity (each entry holds them: an id is not reused while it is
        #: kept). An eighth of the budget, on top of the four quarters.
        self.column_lineage: ByteLRU[tuple[int, int], tuple[Any, ...]] = ByteLRU(cache_size // 8)

    def clear(self) -> None:
        self.version_ids.clear()
        self.known.clear()
        self.column_lineage.clear()

    def project(
        self, conn: Connection, events: list[ParsedEvent], begun: tuple[Any, int] | None = None
    ) -> Callable[[], None]:
        """Write the events' projections in `conn`'s transaction.

        `begun` is what `self.known.begin` said at the transaction's start.
        Returns a function to call once the transaction has committed (it
        keeps the new version ids, and the rows written, in the caches).
        """
        rows: dict[str, AssetRow] | None = {}
        new_ids: dict[tuple[int, str], int] = {}
        restated: dict[tuple[int, str], tuple[str, Any]] = {}
        if events:
            chunk = _Chunk(self, conn, begun)
            chunk.run(events)
            new_ids, rows = chunk.new_version_ids, chunk.rows_written
            restated = chunk.restatements

        def on_commit() -> None:
            self.version_ids.update(new_ids, 64)
            self.known.commit(begun, rows)
            # Sources known so (`_Chunk._restated`): not recorded again by later chunks.
            for (asset_id, source), (fp, _) in restated.items():
                self.fingerprints.put(("said", asset_id, source), fp, len(source) + 128)

        return on_commit


class _Chunk(ChunkWriter):
    # -- playing events in memory -------------------------------------------------------

    def run(self, events: list[ParsedEvent]) -> None:
        run_ids: set[str] = set()
        tied = False
        # Events share their refs (a dataset named alike is one object a chunk): each once.
        refs = {id(ref): ref for e in events for ref in e.inputs}
        refs.update({id(ref): ref for e in events for ref in e.outputs})
        uris = {ref.uri for ref in refs.values()}
        for ref in refs.values():
            if ref.symlinks or ref.previous is not None:
                tied = True
                uris.update(asset_uri(ns, n) for ns, n in ref.symlinks)
                if ref.previous is not None:
                    uris.add(asset_uri(*ref.previous))
            for sources in ref.column_lineage.values():
                uris.update(asset_uri(ns, n) for ns, n, _ in sources)
        for e in events:
            if e.job_uri is not None:
                uris.add(e.job_uri)
            if e.run_id is not None:
                run_ids.add(e.run_id)
            if e.parent is not None:
                uris.add(e.parent.job_uri)
                run_ids.add(e.parent.run_id)
        self._load_assets(uris)
        if tied:
            self._tie_symlinks(events)
        self._load_runs(run_ids)
        self._load_job_props()
        self._load_evidence(refs.values())
        for e in events:
            self._play(e)
        self._write()

    def _restated(self, asset: AssetState, e: ParsedEvent, fp: str | None) -> None:
        """The event's job writes the dataset as it is defined (`fp`, its current
        version's fingerprint), in a chunk that has not read its sources: that job is
        one of them. Recorded (`catalog.apply.record_restatements`) unless it is known
        to have said so already: it is the source of the definition's last change, or
        an earlier chunk recorded it.

        The merge keeps the fields every job's latest assertion names: such a job was
        recorded only when its chunk had created or changed the dataset, so which
        fields a later change removed depended on where chunks began (`steward serve`
        writes a chunk a request)."""
        if asset.id is None or fp is None:
            return
        source = self.event_sources.get(id(e))
        if source is None:
            source = self.event_sources[id(e)] = event_source(e)
        pair = (asset.id, source)
        if pair in self.restating:
            return  # looked at in this chunk: the first time it says so is kept
        self.restating.add(pair)
        if asset.origin == source or self.projector.fingerprints.get(("said", *pair)) == fp:
            return
        self.restatements[pair] = (fp, e.event_time)

    def _own_fingerprint(self, asset: AssetState, ref: DatasetRef) -> str:
        """Fingerprint of the definition the event's `schema` facet alone gives."""
        assert ref.fields is not None
        if ref.fingerprint is not None:
            return ref.fingerprint  # the parser's: a definition names no asset
        key = (asset.uri, ref.schema_key)
        fp = self.own_fingerprints.get(key)  # a plain map first: asked for twice a dataset
        if fp is not None:
            return fp
        fp = self.projector.fingerprints.get(key)
        if fp is None:
            fp = fingerprint(dataset_definition(ref.fields))
            size = len(asset.uri) + len(ref.schema_key)
            if size <= CACHED_AT_MOST:
                self.projector.fingerprints.put(key, fp, size + 64)
        self.own_fingerprints[key] = fp
        return fp

    def _tie_symlinks(self, events: list[ParsedEvent]) -> None:
        """Two names a `symlinks` facet ties are one asset, whichever arrived first.

        A name never seen becomes the known one's; two known assets are merged
        in the catalog (`catalog.merge`), and reloaded. Two names neither known
        before this chunk are one asset from the start, under the name the
        chunk mentions first (what separate requests give: the older name).
        """
        self._first_seen: dict[str, int] = {}
        for e in events:
            for ref in (*e.inputs, *e.outputs):
                self._first_seen.setdefault(ref.uri, len(self._first_seen))
        for e in events:
            for ref in (*e.inputs, *e.outputs):
                for other in ref.symlinks:
                    self._tie(ref, other, renamed=False)
                if ref.previous is not None:
                    self._tie(ref, ref.previous, renamed=True)

    def _tie(self, ref: DatasetRef, other: tuple[str, str], renamed: bool) -> None:
        """One asset for `ref` and the `other` name; after a RENAME, under `ref`'s name.

        Before any event is played, an asset new in this chunk is an empty shell:
        tying it to another asset only points its names at that one.
        """
        other_uri = asset_uri(*other)
        mine, theirs = self.assets.get(ref.uri), self.assets.get(other_uri)
        if mine is None and theirs is None:
            older = self._first_seen.get(other_uri, len(self._first_seen)) < self._first_seen.get(
                ref.uri, 0
            )
            if older and not renamed:
                shell = self._asset(other_uri, *other, "dataset")
                self._alias(shell, ref.uri, (ref.namespace, ref.name))
            else:
                self._alias(
                    self._asset(ref.uri, ref.namespace, ref.name, "dataset"), other_uri, other
                )
            return
        if theirs is None or theirs is mine:
            return
        if mine is None:
            if renamed and theirs.id is not None:
                rename_asset(self.conn, theirs.id, ref.namespace, ref.name, utcnow())
                self._reload({u for u, a in self.assets.items() if a is theirs} | {ref.uri})
            else:
                self._alias(theirs, ref.uri, (ref.namespace, ref.name))
            return
        if mine.id is None or theirs.id is None:
            shell, kept = (mine, theirs) if mine.id is None else (theirs, mine)
            if renamed and shell is mine and theirs.id is not None:
                rename_asset(self.conn, theirs.id, ref.namespace, ref.name, utcnow())
                self._reload({u for u, a in self.assets.items() if a is mine or a is theirs})
                return
            for uri in [u for u, a in self.assets.items() if a is shell]:
                self._alias(kept, uri, (shell.namespace, shell.name) if uri == shell.uri else None)
            return
        keep, gone = (mine.id, theirs.id) if renamed else keeper(self.conn, mine.id, theirs.id)
        merge_assets(self.conn, keep, gone, utcnow())
        self._reload({u for u, a in self.assets.items() if a is mine or a is theirs})

    def _alias(self, asset: AssetState, uri: str, name: tuple[str, str] | None = None) -> None:
        """`uri` (namespace and name `name`, or as an alias already had it) names `asset`."""
        if name is None:
            _, *held = self.aliases[uri]
            name = (held[0], held[1])
        self.assets[uri] = asset
        self.aliases[uri] = (asset, *name)

    def _reload(self, uris: set[str]) -> None:
        self.reshaped = True
        for uri in uris:
            self.assets.pop(uri, None)
        self._load_assets(uris)

    def _load_evidence(self, refs: Iterable[DatasetRef]) -> None:
        """The sources' assertions of the datasets whose schema an event may change."""
        wanted: dict[int, AssetState] = {}
        for ref in refs:
            asset = self.assets.get(ref.uri)
            if (
                ref.fields is None
                or asset is None
                or asset.id is None
                or asset.version == 0
                or asset.evidence is not None
            ):
                continue
            if self._own_fingerprint(asset, ref) != asset.fingerprint:
                wanted[asset.id] = asset
            else:
                self.agrees[id(ref)] = asset
        if wanted:
            found = assertions_of(self.conn, wanted)
            for asset_id, asset in wanted.items():
                asset.evidence = dict(found.get(asset_id, {}))

    def _dataset(self, ref: DatasetRef, e: ParsedEvent, written: bool = False) -> AssetState:
        asset = self.assets.get(ref.uri) or self._asset(ref.uri, ref.namespace, ref.name, "dataset")
        if ref.fields is not None:
            if asset.evidence is not None or self.agrees.get(id(ref)) is not asset:
                self._assert_schema(asset, ref, e, written)
            elif written:
                self._restated(asset, e, asset.fingerprint)
        if ref.described:
            asset.facets.update(ref.described)
        if ref.lifecycle == "DROP":
            asset.dropped = True
        elif written and (ref.fields is not None or ref.lifecycle in RECREATED):
            asset.dropped = False  # written again: it exists
        if not ref.symlinks and ref.previous is None:
            return asset
        links = list(ref.symlinks)
        if ref.previous is not None:
            links.append(ref.previous)
        for namespace, name in links:
            alias = asset_uri(namespace, name)
            if alias != asset.uri and alias not in self.assets:
                self.assets[alias] = asset
                self.aliases[alias] = (asset, namespace, name)
        return asset

    def _assert_schema(
        self, asset: AssetState, ref: DatasetRef, e: ParsedEvent, written: bool
    ) -> None:
        """The event's job asserts the dataset's schema: merged with the other sources'.

        A new version when the merged definition changes (in memory, as
        `catalog.apply` will find it when the chunk is written).
        """
        assert ref.fields is not None
        fp = self._own_fingerprint(asset, ref)
        if asset.evidence is None:
            if asset.id is not None and asset.version > 0:
                if fp == asset.fingerprint:
                    if written:
                        self._restated(asset, e, fp)
                    return  # what it says is the definition already (the common case)
                found = assertions_of(self.conn, [asset.id])
                asset.evidence = dict(found.get(asset.id, {}))
            else:
                asset.evidence = {}
        source = event_source(e)
        if asset.said.get(source) == fp:
            return  # what this job said last, again (the common case)
        if not written and fp == asset.fingerprint:
            asset.said[source] = fp
            return  # a reader that sees the definition as it is adds nothing to it
        new = Assertion(source, e.event_time, dataset_definition(ref.fields))
        prev = asset.evidence.get(source)
        # The fields, who says them and when, and their definition's fingerprint.
        pending = (
            asset,
            "dataset",
            {"fields": ref.fields, "source": (source, e.event_time), "fingerprint": fp},
        )
        if not supersedes(prev, new):
            # Older than what this job said last: a version at its time, never current.
            others = [a for name, a in asset.evidence.items() if name != source]
            then = merge([*others, new]).definition if others else new.definition
            then_fp = fingerprint(then)
            if then_fp != asset.fingerprint:
                self.pending.append(pending)
                self.seen_then[(id(e), asset.uri)] = then_fp
            return
        new = restate(prev, new)
        asset.said[source] = fp
        if prev is not None and prev.definition == new.definition:
            return
        asset.evidence[source] = new
        if prev is None and len(asset.evidence) == 1:
            merged_fp = fp  # its only source: the definition is what it says
        else:
            merged_fp = fingerprint(merge(asset.evidence.values()).definition)
        self.pending.append(pending)
        if merged_fp != asset.fingerprint:
            asset.version += 1
            asset.fingerprint = merged_fp

    def _play(self, e: ParsedEvent) -> None:
        inputs = [self._dataset(ref, e) for ref in e.inputs]
        outputs = [self._dataset(ref, e, written=True) for ref in e.outputs]
        if e.kind == "dataset" or e.job_uri is None:
            return
        assert e.job_namespace is not None and e.job_name is not None
        job = self._asset(e.job_uri, e.job_namespace, e.job_name, "job")
        if e.job_facets:
            job.facets.update(e.job_facets)
        run: RunState | None = None
        if e.run_id is not None:
            run = self._run(e.run_id, job)
            if run.job is not job:
                e.warnings.append(
                    f"run.runId: run {e.run_id} belongs to job {run.job.uri}; kept there"
                )
            self._advance(run, e)
            then = self.seen_then  # (empty unless an event came late)
            for ref, asset in zip(e.inputs, inputs, strict=True):
                self._link(
                    run,
                    asset,
                    "input",
                    run_facets(ref),
                    then.get((id(e), asset.uri)) if then else None,
                )
            for ref, asset in zip(e.outputs, outputs, strict=True):
                self._link(
                    run,
                    asset,
                    "output",
                    run_facets(ref),
                    then.get((id(e), asset.uri)) if then else None,
                )
            if e.parent is not None:
                parent_job = self._asset(
                    e.parent.job_uri, e.parent.job_namespace, e.parent.job_name, "job"
                )
                self._run(e.parent.run_id, parent_job)
                if run.parent != e.parent.run_id:
                    run.parent = e.parent.run_id
                    run.dirty = True
        if run is not None and run.job is job:
            run_in = {io.asset.uri for io in run.io.values() if io.direction == "input"}
            run_out = {io.asset.uri for io in run.io.values() if io.direction == "output"}
            exact = e.event_type in TERMINAL
        else:
            run_in = {a.uri for a in inputs}
            run_out = {a.uri for a in outputs}
            exact = True
        self._version_job(job, e, run_in, run_out, exact, outputs)

    def _run(self, uuid: str, job: AssetState) -> RunState:
        run = self.runs.get(uuid)
        if run is None:
            run = RunState(uuid, job, state="NEW")
            self.runs[uuid] = run
        return run

    @staticmethod
    def _advance(run: RunState, e: ParsedEvent) -> None:
        kind, when = e.event_type or "OTHER", e.event_time
        run.dirty = True
        if e.run_facets:
            run.facets = {**run.facets, **e.run_facets}
        if kind == "START" and (run.started_at is None or when < run.started_at):
            run.started_at = when
        if kind == "OTHER":
            return
        finished, ending = run.state in TERMINAL, kind in TERMINAL
        if finished and not ending:
            return  # a late START or RUNNING never reopens a finished run
        if finished == ending and run.state_time is not None and when < run.state_time:
            return
        run.state, run.state_time = kind, when
        if ending:
            run.ended_at = when

    def _link(
        self,
        run: RunState,
        asset: AssetState,
        direction: str,
        facets: dict[str, Any],
        then: str | None = None,
    ) -> None:
        """Link the run to the dataset's version it saw: the current one, or `then`'s
        (the fingerprint of the version a late event's schema was true at its time)."""
        seen = then or asset.fingerprint
        key = (asset.uri, direction)
        io = run.io.get(key)
        if io is None:
            io = RunLink(asset, direction)
            run.io[key] = io
        if io.fingerprint != seen or (io.version_id is None and asset.version > 0):
            io.fingerprint, io.version_id, io.dirty = seen, None, True
        if facets:
            merged = {**io.facets, **facets}
            if merged != io.facets:
                io.facets, io.dirty = merged, True

    def _version_job(
        self,
        job: AssetState,
        e: ParsedEvent,
        run_in: set[str],
        run_out: set[str],
        exact: bool,
        outputs: list[AssetState],
    ) -> None:
        current = job.props or {}
        if not job.ours:
            return
        if job.version > 0 and _same_job(job, current, e, run_in, run_out, exact):
            return
        if exact:
            if not (run_in or run_out) and job.version > 0:
                run_in, run_out = set(current.get("inputs", [])), set(current.get("outputs", []))
        else:
            run_in = run_in | set(current.get("inputs", []))
            run_out = run_out | set(current.get("outputs", []))
        lineage: dict[str, Any] = dict(current.get("columnLineage") or {})
        how: dict[str, Any] = dict(current.get("columnTransformations") or {})
        for ref, asset in zip(e.outputs, outputs, strict=True):
            if not (ref.column_lineage or ref.transformations):
                continue
            mapped, transformed = self._column_lineage(ref)
            if ref.column_lineage:
                lineage[asset.uri] = mapped
                how.pop(asset.uri, None)
            if ref.transformations:
                how[asset.uri] = transformed
        props: dict[str, Any] = {"inputs": sorted(run_in), "outputs": sorted(run_out)}
        code: dict[str, Any] = {k: current[k] for k in JOB_CODE_FACETS if k in current}
        code.update(job_code(e.job_facets))
        props.update(code)
        lineage = {uri: value for uri, value in lineage.items() if uri in run_out}
        if lineage:
            props["columnLineage"] = lineage
        how = {uri: value for uri, value in how.items() if uri in lineage}
        if how:
            props["columnTransformations"] = how
        text = canonical(props)
        if text == job.props_json and job.version > 0:
            return
        key = (job.uri, text)
        fp = self.projector.fingerprints.get(key)
        if fp is None:
            fp = fingerprint(self._job_spec(job, props).definition())
            size = len(job.uri) + len(text)
            if size <= CACHED_AT_MOST:
                self.projector.fingerprints.put(key, fp, size + 64)
        job.props, job.props_json = props, text
        if fp != job.fingerprint:
            job.version += 1
            job.fingerprint = fp
            self.pending.append((job, "job", props))

    def _column_lineage(self, ref: DatasetRef) -> tuple[dict[str, Any], dict[str, Any]]:
        """An output ref's column lineage and transformations as its job's properties
        hold them: sources by the URI of the asset they name in this chunk.

        A run's events send its job's column lineage again, and the parser shares
        one ref's maps between them: what was built for them is kept (by the maps'
        identity) for the chunk and, within a budget, across chunks, and used again
        while each source still names the same asset. The values are shared, never
        changed in place. Across chunks it serves since a file ingest's refs are
        received once and kept (`lineage.refpickle`): the heavy mix's 10,000 events
        built it 4,363 times a chunk at a time, 1,641 times now. (Before, most
        chunks received their refs anew, and kept across chunks it held 50 MB.)
        """
        key = (id(ref.column_lineage), id(ref.transformations))
        kept = self.column_lineage_built.get(key) or self.projector.column_lineage.get(key)
        if kept is not None:
            mapping, transformations, sources, built = kept
            if (
                mapping is ref.column_lineage
                and transformations is ref.transformations
                and all(
                    self._asset(uri, ns, n, "dataset").uri == named
                    for (uri, ns, n), named in sources
                )
            ):
                return built
        named_by: dict[tuple[str, str], str] = {}
        for _, lineage_sources in sorted(ref.column_lineage.items()):
            for ns, n, _ in lineage_sources:
                if (ns, n) not in named_by:
                    named_by[(ns, n)] = self._asset(asset_uri(ns, n), ns, n, "dataset").uri
        mapped = {
            out: sorted([named_by[(ns, n)], f] for ns, n, f in lineage_sources)
            for out, lineage_sources in sorted(ref.column_lineage.items())
        }
        transformed = {
            out: sorted([asset_uri(ns, n), f, kinds] for (ns, n, f), kinds in how.items())
            for out, how in sorted(ref.transformations.items())
        }
        built = (mapped, transformed)
        resolved = tuple(((asset_uri(ns, n), ns, n), uri) for (ns, n), uri in named_by.items())
        entry = (ref.column_lineage, ref.transformations, resolved, built)
        self.column_lineage_built[key] = entry
        sources = sum(map(len, ref.column_lineage.values()))
        self.projector.column_lineage.put(key, entry, LINEAGE_COST + LINEAGE_PER_SOURCE * sources)
        return built


def event_source(e: ParsedEvent) -> str:
    """The source an event speaks for: its job (`NAMESPACE/NAME`), else its producer."""
    if e.job_namespace is not None and e.job_name is not None:
        return f"{EVENT_SOURCE} {asset_uri(e.job_namespace, e.job_name)}"
    return f"{EVENT_SOURCE} {e.producer or ''}".rstrip()


def _same_job(
    job: AssetState,
    current: dict[str, Any],
    e: ParsedEvent,
    run_in: set[str],
    run_out: set[str],
    exact: bool,
) -> bool:
    """Whether the event leaves a versioned job as it is (the common case, told cheaply):
    no code or column lineage in it or in the job, and the same inputs and outputs."""
    if "columnLineage" in current or any(ref.column_lineage for ref in e.outputs):
        return False
    if any(name in e.job_facets for name in JOB_CODE_FACETS):
        # The code it sends again (most producers send a job's SQL with every event)
        # leaves the job as it is; compared as the definition holds it, canonically.
        for name, code in job_code(e.job_facets).items():
            if name not in current or canonical(current[name]) != canonical(code):
                return False
    if not (run_in or run_out):
        return True
    if job.io_sets is None or job.io_sets[0] is not current:
        # Properties are never changed in place: the sets hold while they are the job's.
        job.io_sets = (current, set(current.get("inputs", ())), set(current.get("outputs", ())))
    _, inputs, outputs = job.io_sets
    if exact:
        return run_in == inputs and run_out == outputs
    return run_in <= inputs and run_out <= outputs
