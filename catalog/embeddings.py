"""The embedding-model registry and the provenance of vector indexes.

An embedding model is an asset of kind `embedding_model` in namespace
`model://PROVIDER` (`model://local` by default); each registered revision is
one of its versions. `ModelInUse` says which revision queries are embedded
with now; `ModelBinding` says which model and revision built a collection or
vector column, found in (in this order of precedence) the collection's
metadata, its points' payloads (with the share of each model@revision), a
column comment, or a manual `steward models bind`.

The provenance conventions themselves (the `embedding_*` keys) are parsed
by the pure functions of `catalog.provenance`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from catalog.apply import apply
from catalog.db import Store
from catalog.errors import Ambiguous, InvalidInput, NotFound
from catalog.identity import normalize_namespace
from catalog.models import Asset, AssetField, AssetVersion, ModelBinding, ModelInUse, utcnow
from catalog.provenance import MAX_NAME, MODEL_KEY, REVISION_KEY, text_value
from catalog.queries import resolve
from catalog.specs import AssetSpec, FieldSpec

KIND = "embedding_model"
DISTANCES = ("cosine", "dot", "euclid", "manhattan")
#: Binding origins, strongest first: the first one present is the asset's provenance.
ORIGINS = ("metadata", "payload", "comment", "manual")
#: Origins a scan detects (and replaces on every scan); `manual` is only set by a user.
DETECTED_ORIGINS = ("metadata", "payload", "comment")

BINDING = ModelBinding.__table__  # type: ignore[attr-defined]
ASSET = Asset.__table__  # type: ignore[attr-defined]


def parse_model_ref(text: str) -> tuple[str, str]:
    """`MODEL@REVISION` -> (model, revision); the revision is required."""
    model, sep, revision = text.strip().rpartition("@")
    if not sep or not model.strip() or not revision.strip():
        raise InvalidInput(f"'{text}' is not MODEL@REVISION", hint="e.g. all-MiniLM-L6-v2@2")
    return model.strip(), revision.strip()


# --- the registry ------------------------------------------------------------------


def model_namespace(provider: str | None) -> str:
    provider = (provider or "local").strip().lower()
    if not provider or any(c in provider for c in "/:@ "):
        raise InvalidInput(f"provider {provider!r} is not a plain name", hint="e.g. openai, local")
    return normalize_namespace(f"model://{provider}")


def model_spec(
    name: str, revision: str, dim: int, distance: str, normalized: bool, provider: str | None
) -> AssetSpec:
    """The definition of one revision of an embedding model."""
    if not name.strip() or "@" in name:
        raise InvalidInput(f"model name {name!r} must be non-empty and without '@'")
    if not revision.strip() or len(revision) > MAX_NAME or len(name) > MAX_NAME:
        raise InvalidInput("model name and revision must be 1 to 255 characters")
    if dim < 1:
        raise InvalidInput(f"dimension must be positive, not {dim}")
    distance = distance.lower()
    if distance not in DISTANCES:
        raise InvalidInput(f"distance {distance!r} is not one of {', '.join(DISTANCES)}")
    attributes = {"vector": True, "dim": dim, "distance": distance, "normalized": normalized}
    return AssetSpec(
        namespace=model_namespace(provider),
        name=name.strip(),
        kind=KIND,
        fields=[FieldSpec(name="embedding", type=f"vector({dim})", attributes=attributes)],
        properties={"revision": revision.strip(), **attributes},
        breaking_properties=frozenset({"dim", "distance"}),
    )


def _revisions(session: Session, asset_id: int) -> list[AssetVersion]:
    return list(
        session.exec(
            select(AssetVersion)
            .where(AssetVersion.asset_id == asset_id)
            .order_by(col(AssetVersion.version))
        ).all()
    )


def _revision_of(version: AssetVersion) -> str:
    return str(version.definition.get("properties", {}).get("revision", ""))


def register_model(
    store: Store,
    name: str,
    revision: str,
    dim: int,
    distance: str,
    normalized: bool = True,
    provider: str | None = None,
) -> dict[str, Any]:
    """Register a revision of a model; registering the same revision again is a no-op.

    A revision is immutable: registering a known revision with another
    dimension, distance or normalisation is an error.
    """
    spec = model_spec(name, revision, dim, distance, normalized, provider)
    wanted = spec.properties
    with store.session() as session:
        asset = session.exec(select(Asset).where(Asset.uri == spec.uri)).first()
        if asset is not None and asset.id is not None and asset.kind == KIND:
            for version in _revisions(session, asset.id):
                if _revision_of(version) != wanted["revision"]:
                    continue
                known = version.definition.get("properties", {})
                if known == wanted:
                    return {"uri": spec.uri, "revision": wanted["revision"], "created": False}
                raise InvalidInput(
                    f"{spec.uri}@{wanted['revision']} is already registered with dim "
                    f"{known.get('dim')}, distance {known.get('distance')}, normalized "
                    f"{known.get('normalized')}; a revision cannot change",
                    hint="register the new weights under a new revision",
                )
    apply(store, [spec], origin="models register")
    return {"uri": spec.uri, "revision": wanted["revision"], "created": True}


def find_model(session: Session, reference: str, provider: str | None = None) -> Asset:
    """The embedding model a name (or `model://PROVIDER/NAME` URI) refers to."""
    ref = reference.strip()
    query = select(Asset).where(Asset.kind == KIND)
    if ref.startswith("model://"):
        query = query.where(Asset.uri == normalize_namespace(ref))
    else:
        query = query.where(Asset.name == ref)
        if provider:
            query = query.where(Asset.namespace == model_namespace(provider))
    found = list(session.exec(query).all())
    if not found and ref.startswith("model://"):
        found = list(session.exec(select(Asset).where(Asset.uri == ref)).all())
    if not found:
        raise NotFound(
            f"no embedding model '{ref}'",
            hint="register it with `steward models register NAME --revision R --dim N "
            "--distance D`",
        )
    if len(found) > 1:
        raise Ambiguous(ref, sorted(a.uri for a in found))
    return found[0]


def require_revision(session: Session, model: Asset, revision: str) -> AssetVersion:
    assert model.id is not None
    versions = _revisions(session, model.id)
    for version in versions:
        if _revision_of(version) == revision:
            return version
    known = ", ".join(_revision_of(v) for v in versions) or "none"
    raise NotFound(
        f"{model.name} has no registered revision '{revision}' (registered: {known})",
        hint=f"register it: steward models register {model.name} --revision {revision} ...",
    )


def use_model(
    store: Store, name: str, revision: str, provider: str | None = None
) -> dict[str, Any]:
    """Mark `revision` as the one queries of model `name` are embedded with now."""
    with store.session() as session:
        model = find_model(session, name, provider)
        require_revision(session, model, revision)
        model_id, uri = model.id, model.uri
    table = ModelInUse.__table__  # type: ignore[attr-defined]
    with store.write() as conn:
        conn.execute(delete(table).where(table.c.model_id == model_id))
        conn.execute(insert(table).values(model_id=model_id, revision=revision, set_at=utcnow()))
    return {"uri": uri, "revision": revision}


def _bindings_json(rows: Iterable[tuple[ModelBinding, str]]) -> list[dict[str, Any]]:
    return [
        {
            "asset": uri,
            "part": b.part,
            "model": b.model,
            "revision": b.revision,
            "origin": b.origin,
            "share": b.share,
        }
        for b, uri in rows
    ]


def list_models(session: Session) -> list[dict[str, Any]]:
    """Every embedding model with its revisions, the one in use, and what it built."""
    models = session.exec(
        select(Asset)
        .where(Asset.kind == KIND)
        .where(col(Asset.deleted).is_(False))
        .order_by(col(Asset.uri))
    ).all()
    in_use = {m.model_id: m for m in session.exec(select(ModelInUse)).all()}
    names = {m.name for m in models}
    bound = session.exec(
        select(ModelBinding, Asset.uri)
        .join(Asset, col(Asset.id) == col(ModelBinding.asset_id))
        .where(col(ModelBinding.model).in_(names or {""}))
        .order_by(col(Asset.uri), col(ModelBinding.part), col(ModelBinding.origin))
    ).all()
    out = []
    for model in models:
        assert model.id is not None
        current = in_use.get(model.id)
        out.append(
            {
                "uri": model.uri,
                "provider": model.namespace.removeprefix("model://"),
                "name": model.name,
                "in_use": current.revision if current else None,
                "in_use_since": current.set_at.isoformat() if current else None,
                "revisions": [
                    {
                        "revision": _revision_of(v),
                        "version": v.version,
                        "dim": v.definition.get("properties", {}).get("dim"),
                        "distance": v.definition.get("properties", {}).get("distance"),
                        "normalized": v.definition.get("properties", {}).get("normalized"),
                        "registered_at": v.created_at.isoformat(),
                    }
                    for v in _revisions(session, model.id)
                ],
                "bindings": _bindings_json((b, uri) for b, uri in bound if b.model == model.name),
            }
        )
    return out


def vector_parts(session: Session, asset: Asset) -> list[str]:
    """Names of the asset's vector fields (current version)."""
    rows = session.exec(
        select(AssetField)
        .join(AssetVersion, col(AssetVersion.id) == col(AssetField.version_id))
        .where(AssetVersion.asset_id == asset.id)
        .where(AssetVersion.version == asset.current_version)
        .order_by(col(AssetField.position))
    ).all()
    return [f.name for f in rows if f.attributes.get("vector")]


def bind(
    store: Store, asset_ref: str, model_ref: str, part: str = "", provider: str | None = None
) -> dict[str, Any]:
    """Record by hand which model@revision built ASSET (or one vector PART of it).

    Replaces the earlier manual binding of the same asset and part. Bindings
    found in metadata or payloads take precedence over manual ones.
    """
    name, revision = parse_model_ref(model_ref)
    with store.session() as session:
        asset = resolve(session, asset_ref)
        if asset.kind == KIND:
            raise InvalidInput(f"{asset.uri} is an embedding model, not a vector index")
        model = find_model(session, name, provider)
        require_revision(session, model, revision)
        parts = vector_parts(session, asset)
        if part and part not in parts:
            shown = ", ".join(parts) if parts else "none"
            raise InvalidInput(
                f"{asset.uri} has no vector field '{part}'", hint=f"vector fields: {shown}"
            )
        asset_id, uri, model_name = asset.id, asset.uri, model.name
    with store.write() as conn:
        conn.execute(
            delete(BINDING)
            .where(BINDING.c.asset_id == asset_id)
            .where(BINDING.c.part == part)
            .where(BINDING.c.origin == "manual")
        )
        conn.execute(
            insert(BINDING).values(
                asset_id=asset_id,
                part=part,
                model=model_name,
                revision=revision,
                origin="manual",
                share=1.0,
                created_at=utcnow(),
            )
        )
    return {"asset": uri, "part": part, "model": model_name, "revision": revision}


def _rank(origin: str) -> int:
    return ORIGINS.index(origin) if origin in ORIGINS else len(ORIGINS)


def strongest(rows: Iterable[ModelBinding]) -> list[ModelBinding]:
    """Per part, the bindings of the strongest origin present, largest share first."""
    by_part: dict[str, list[ModelBinding]] = {}
    for row in rows:
        by_part.setdefault(row.part, []).append(row)
    out: list[ModelBinding] = []
    for part in sorted(by_part):
        group = by_part[part]
        best = min(_rank(b.origin) for b in group)
        chosen = [b for b in group if _rank(b.origin) == best]
        out.extend(sorted(chosen, key=lambda b: (-b.share, b.model, b.revision)))
    return out


def effective_bindings(session: Session, asset_id: int) -> list[ModelBinding]:
    """The bindings that say what built an asset: those of its strongest origin, per part."""
    return strongest(
        session.exec(select(ModelBinding).where(ModelBinding.asset_id == asset_id)).all()
    )


def in_use_revision(session: Session, model_name: str) -> str | None:
    """The revision queries of `model_name` are embedded with now (None if never set)."""
    row = session.exec(
        select(ModelInUse.revision)
        .join(Asset, col(Asset.id) == col(ModelInUse.model_id))
        .where(Asset.name == model_name)
        .where(Asset.kind == KIND)
    ).first()
    return row


def _field_bindings(asset_id: int, spec: AssetSpec, now: Any) -> list[dict[str, Any]]:
    """Bindings of vector fields that name their model (pgvector column comments)."""
    out = []
    for f in spec.fields:
        model = text_value(f.attributes.get(MODEL_KEY)) if f.attributes.get("vector") else None
        if model is None:
            continue
        out.append(
            {
                "asset_id": asset_id,
                "part": f.name,
                "model": model,
                "revision": text_value(f.attributes.get(REVISION_KEY)) or "",
                "origin": "comment",
                "share": 1.0,
                "created_at": now,
            }
        )
    return out


def sync_detected_bindings(conn: Connection, specs: Iterable[AssetSpec]) -> int:
    """Make each asset's detected bindings those its spec reports (after an apply).

    Reads `properties["embedding"]` (origin, models) and `observed["embedding"]`
    (shares) of each spec; without it, vector fields whose attributes name an
    `embedding_model` (pgvector column comments) are bound with origin
    `comment`. An asset whose spec reports none loses its detected bindings;
    manual bindings are left alone. Returns the bindings written.
    """
    specs = list(specs)
    if not specs:
        return 0
    uris = {spec.uri: spec for spec in specs}
    ids: dict[str, int] = {}
    uri_list = list(uris)
    for start in range(0, len(uri_list), 900):
        chunk = uri_list[start : start + 900]
        for row in conn.execute(sa_select(ASSET.c.id, ASSET.c.uri).where(ASSET.c.uri.in_(chunk))):
            ids[row.uri] = row.id
    if not ids:
        return 0
    id_list = list(ids.values())
    for start in range(0, len(id_list), 900):
        conn.execute(
            delete(BINDING)
            .where(BINDING.c.asset_id.in_(id_list[start : start + 900]))
            .where(BINDING.c.origin.in_(DETECTED_ORIGINS))
        )
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for uri, spec in uris.items():
        if uri not in ids:
            continue
        prov = spec.properties.get("embedding")
        if not isinstance(prov, Mapping):
            rows.extend(_field_bindings(ids[uri], spec, now))
            continue
        origin = str(prov.get("origin", ""))
        if origin not in DETECTED_ORIGINS:
            continue
        shares = {
            (s["model"], s["revision"]): float(s.get("share", 1.0))
            for s in (spec.observed.get("embedding") or {}).get("shares", [])
        }
        part = str(prov.get("part", ""))
        for m in prov.get("models", []):
            key = (m["model"], m["revision"])
            rows.append(
                {
                    "asset_id": ids[uri],
                    "part": part,
                    "model": key[0],
                    "revision": key[1],
                    "origin": origin,
                    "share": shares.get(key, 1.0),
                    "created_at": now,
                }
            )
    if rows:
        conn.execute(insert(BINDING), rows)
    return len(rows)
