"""Reads over the catalog: resolve a reference, list assets, show history.

Every function returns plain, JSON-ready data in a stable order; the CLI and
the reports only lay it out.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from catalog import textsearch
from catalog.errors import Ambiguous, NotFound
from catalog.evidence import Assertion, assertion_json
from catalog.identity import DATASET_PREFIX, JOB_PREFIX
from catalog.models import Alias, Asset, AssetEvidence, AssetField, AssetVersion, Edge, key_hash
from catalog.versioning import diff_definitions

#: The version of the JSON documents steward prints (`--json`, exports).
SCHEMA_VERSION = 1


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def resolve(session: Session, reference: str, *, include_deleted: bool = True) -> Asset:
    """The asset a reference names: its URI, an alias, or an unambiguous suffix.

    A suffix must end the URI at a boundary: `shop.public.orders` and
    `orders` both name `postgres://localhost:5432/shop.public.orders`.
    Jobs and datasets are separate key spaces: `job:REF` names a job only,
    `dataset:REF` any asset but a job; a plain reference naming both a job and
    a dataset is `Ambiguous`, with a message saying how to name either.
    """
    ref = reference  # names may end in white space: match them exactly
    if not ref.strip():
        raise NotFound("empty asset reference", hint="give an asset URI or name")
    jobs: bool | None = None  # True: jobs only; False: all but jobs; None: either
    bare = ref
    if ref.startswith(JOB_PREFIX):
        jobs, bare = True, ref[len(JOB_PREFIX) :]
    elif ref.startswith(DATASET_PREFIX):
        jobs, bare = False, ref[len(DATASET_PREFIX) :]
    exact = _named(session, ref)
    if exact is None and jobs is False:
        exact = _named(session, bare)
    if exact is not None:
        if jobs is None and exact.kind != "job":
            job = _named(session, JOB_PREFIX + ref)
            if job is not None and job.id != exact.id:
                raise _both(ref, job, exact)
        return exact
    if jobs is None:
        job = _named(session, JOB_PREFIX + ref)
        if job is not None:
            return job
    if not bare.strip():
        raise NotFound(f"no asset matches '{ref}'", hint="see `steward assets`")
    pattern = _escape_like(bare)
    query = select(Asset).where(
        or_(
            col(Asset.uri).like(f"%/{pattern}", escape="\\"),
            col(Asset.uri).like(f"%.{pattern}", escape="\\"),
            col(Asset.name) == bare,
        )
    )
    if jobs is not None:
        query = query.where((col(Asset.kind) == "job") == jobs)
    matches = [a for a in session.exec(query).all() if include_deleted or not a.deleted]
    # A live asset wins over deleted namesakes, and a resolved one over placeholders.
    if len(matches) > 1:
        live = [a for a in matches if not a.deleted and not a.unresolved]
        matches = live or matches
    if not matches:
        from catalog.search import suggestions

        close = suggestions(session, bare)
        hint = f"did you mean {', '.join(close)}?" if close else "see `steward assets`"
        raise NotFound(f"no asset matches '{ref}'", hint=hint)
    if len(matches) > 1:
        if len(matches) == 2 and len({(a.namespace, a.name) for a in matches}) == 1:
            job, other = sorted(matches, key=lambda a: a.kind != "job")
            if job.kind == "job" and other.kind != "job":
                raise _both(ref, job, other)
        raise Ambiguous(ref, sorted(a.uri for a in matches))
    return matches[0]


def _named(session: Session, uri: str) -> Asset | None:
    """The asset whose URI (or one of whose aliases) is exactly `uri`."""
    exact = session.exec(select(Asset).where(Asset.key_hash == key_hash(uri))).first()
    if exact is not None:
        return exact
    alias = session.exec(select(Alias).where(Alias.key_hash == key_hash(uri))).first()
    if alias is not None:
        return session.get_one(Asset, alias.asset_id)
    return None


def _both(ref: str, job: Asset, other: Asset) -> Ambiguous:
    """A reference that names a job and a dataset (any asset but a job) alike."""
    plain = other.uri
    return Ambiguous(
        ref,
        [job.uri, other.uri],
        f"'{ref}' names both a job and a {other.kind}: write {JOB_PREFIX}{plain} for the job"
        f" or {DATASET_PREFIX}{plain} for the {other.kind}",
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _fields_of(session: Session, asset_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Fields of each asset's current version, in order."""
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not asset_ids:
        return out
    query = (
        select(AssetField)
        .join(AssetVersion, col(AssetVersion.id) == col(AssetField.version_id))
        .join(Asset, col(Asset.id) == col(AssetVersion.asset_id))
        .where(col(AssetVersion.version) == col(Asset.current_version))
        .where(col(Asset.id).in_(asset_ids))
        .order_by(col(AssetField.asset_id), col(AssetField.position))
    )
    for f in session.exec(query):
        item: dict[str, Any] = {"name": f.name, "type": f.type, "nullable": f.nullable}
        if f.default is not None:
            item["default"] = f.default
        if f.description:
            item["description"] = f.description
        if f.attributes:
            item["attributes"] = f.attributes
        out[f.asset_id].append(item)
    return out


def asset_summary(asset: Asset, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "uri": asset.uri,
        "namespace": asset.namespace,
        "name": asset.name,
        "kind": asset.kind,
        "version": asset.current_version,
        "fingerprint": asset.fingerprint,
        "deleted": asset.deleted,
        "unresolved": asset.unresolved,
        "fields": fields,
    }


def _asset_filters(
    session: Session,
    kind: str | None,
    include_deleted: bool,
    query: str | None,
    namespace: str | None,
) -> list[Any]:
    where: list[Any] = []
    if kind:
        where.append(Asset.kind == kind)
    if not include_deleted:
        where.append(col(Asset.deleted).is_(False))
    if namespace is not None:
        where.append(Asset.namespace == namespace)
    if query:
        pattern = f"%{_escape_like(query)}%"
        conn = session.connection()
        where.append(textsearch.matching(conn, col(Asset.id), col(Asset.uri), "uri", pattern, "\\"))
    return where


def list_assets(
    session: Session,
    kind: str | None = None,
    include_deleted: bool = True,
    *,
    query: str | None = None,
    namespace: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Assets (optionally of one kind or namespace, or whose URI holds `query`), by URI."""
    select_ = select(Asset).where(*_asset_filters(session, kind, include_deleted, query, namespace))
    select_ = select_.order_by(col(Asset.uri)).offset(offset)
    if limit is not None:
        select_ = select_.limit(limit)
    assets = list(session.exec(select_))
    fields = _fields_of(session, [a.id for a in assets if a.id is not None])
    return [asset_summary(a, fields.get(a.id or 0, [])) for a in assets]


def count_assets(
    session: Session,
    kind: str | None = None,
    include_deleted: bool = True,
    *,
    query: str | None = None,
    namespace: str | None = None,
) -> int:
    """How many assets `list_assets` would list without a limit."""
    where = _asset_filters(session, kind, include_deleted, query, namespace)
    return int(session.exec(select(func.count()).select_from(Asset).where(*where)).one())


def coverage(session: Session) -> list[dict[str, Any]]:
    """Per kind of live asset: how many there are and how many have an upstream in lineage."""
    fed = (
        select(Edge.target_id)
        .where(col(Edge.kind).not_in(("column_lineage",)))
        .distinct()
        .subquery()
    )
    rows = session.exec(
        select(Asset.kind, func.count(), func.count(fed.c.target_id))
        .outerjoin(fed, fed.c.target_id == Asset.id)
        .where(col(Asset.deleted).is_(False))
        .group_by(Asset.kind)
        .order_by(Asset.kind)
    ).all()
    return [
        {
            "kind": kind,
            "assets": total,
            "with_upstream": fed_count,
            "share": round(fed_count / total, 4) if total else None,
        }
        for kind, total, fed_count in rows
    ]


def show_asset(session: Session, asset: Asset) -> dict[str, Any]:
    """Everything about one asset: summary, definition, aliases, direct lineage."""
    assert asset.id is not None
    fields = _fields_of(session, [asset.id]).get(asset.id, [])
    out = asset_summary(asset, fields)
    version = session.exec(
        select(AssetVersion)
        .where(AssetVersion.asset_id == asset.id)
        .where(AssetVersion.version == asset.current_version)
    ).first()
    alias_rows = session.exec(
        select(Alias).where(Alias.asset_id == asset.id).order_by(col(Alias.uri))
    ).all()
    aliases = [a.uri for a in alias_rows]
    upstream = session.exec(
        select(Asset.uri, Edge.kind)
        .join(Edge, col(Edge.source_id) == col(Asset.id))
        .where(Edge.target_id == asset.id)
    ).all()
    downstream = session.exec(
        select(Asset.uri, Edge.kind)
        .join(Edge, col(Edge.target_id) == col(Asset.id))
        .where(Edge.source_id == asset.id)
    ).all()
    out.update(
        {
            "schema_version": SCHEMA_VERSION,
            "description": asset.description,
            "properties": (version.definition.get("properties", {}) if version else {}),
            "observed": asset.observed,
            "observed_at": _iso(asset.observed_at),
            "origin": asset.origin,
            "created_at": _iso(asset.created_at),
            "updated_at": _iso(asset.updated_at),
            "aliases": list(aliases),
            "merged": [
                {"uri": a.uri, "merged_at": _iso(a.merged_at)} for a in alias_rows if a.merged_at
            ],
            "sources": sources_of(session, asset),
            "upstream": sorted(
                ({"uri": u, "kind": k} for u, k in set(upstream)),
                key=lambda e: (e["uri"], e["kind"]),
            ),
            "downstream": sorted(
                ({"uri": u, "kind": k} for u, k in set(downstream)),
                key=lambda e: (e["uri"], e["kind"]),
            ),
        }
    )
    return out


def sources_of(session: Session, asset: Asset) -> list[dict[str, Any]]:
    """Which source said what about the asset, and when (its evidence, oldest first)."""
    rows = session.exec(
        select(AssetEvidence)
        .where(AssetEvidence.asset_id == asset.id)
        .order_by(col(AssetEvidence.asserted_at), col(AssetEvidence.source))
    ).all()
    kept = {r.fingerprint for r in rows if r.definition is None and r.fingerprint}
    by_fp: dict[str, dict[str, Any]] = {}
    if kept:
        for v in session.exec(
            select(AssetVersion)
            .where(AssetVersion.asset_id == asset.id)
            .where(col(AssetVersion.fingerprint).in_(kept))
        ):
            by_fp[v.fingerprint] = v.definition
    out = []
    for r in rows:
        definition = r.definition if r.definition is not None else by_fp.get(r.fingerprint, {})
        said = Assertion(r.source, r.asserted_at, definition, r.observed, r.description)
        out.append({**assertion_json(said), "recorded_at": _iso(r.recorded_at)})
    return out


def history(session: Session, asset: Asset) -> list[dict[str, Any]]:
    """The asset's versions in the order they were true (oldest first), each with its diff
    against the one before, when it became true (`valid_from`: its source's time) and
    when the catalog learned it (`created_at`). A late event's version is history, never
    `current`."""
    versions = session.exec(
        select(AssetVersion)
        .where(AssetVersion.asset_id == asset.id)
        .order_by(col(AssetVersion.version))
    ).all()
    ordered = sorted(versions, key=lambda v: (v.valid_from or v.created_at, v.version))
    return [
        {
            "version": v.version,
            "fingerprint": v.fingerprint,
            "valid_from": _iso(v.valid_from or v.created_at),
            "created_at": _iso(v.created_at),
            "current": v.version == asset.current_version,
            "origin": v.origin,
            "restored": v.restored,
            "diff": v.diff,
        }
        for v in ordered
    ]


def _version(session: Session, asset: Asset, number: int) -> AssetVersion:
    found = session.exec(
        select(AssetVersion)
        .where(AssetVersion.asset_id == asset.id)
        .where(AssetVersion.version == number)
    ).first()
    if found is None:
        raise NotFound(
            f"{asset.uri} has no version {number}",
            hint=f"it has versions 1 to {asset.current_version}"
            if asset.current_version
            else "it has no versions yet",
        )
    return found


def diff_versions(session: Session, asset: Asset, v1: int, v2: int) -> dict[str, Any]:
    """The classified diff from version `v1` to version `v2` (either order)."""
    old, new = _version(session, asset, v1), _version(session, asset, v2)
    diff = diff_definitions(old.definition, new.definition)
    return {"uri": asset.uri, "from": v1, "to": v2, **diff}
