"""Which model embeds the queries of an index: index bindings, purposes, the legacy "in use".

Stale embeddings are vectors built by something other than what their queries
use, whatever the models are called. What queries one vector part of an index
is found, in this order:

1. a binding of the index itself (`steward models use NAME REV --index ASSET`),
   for that part or for all parts ('');
2. the purpose the index is assigned to (`steward models assign ASSET PURPOSE`),
   whose current model is `steward models use NAME REV --purpose PURPOSE`;
3. otherwise, for backward compatibility, the revision of the model that built
   the index marked "in use" with plain `steward models use NAME REV`.

`resolve_query` is pure (so the rules can use it on loaded facts); the rest
reads and writes the two tables.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert
from sqlmodel import Session, col, select

from catalog.db import Store
from catalog.embeddings import KIND, find_model, require_revision, vector_parts
from catalog.errors import InvalidInput
from catalog.models import Asset, IndexPurpose, QueryModel, utcnow
from catalog.provenance import MAX_NAME
from catalog.queries import resolve

QUERY = QueryModel.__table__  # type: ignore[attr-defined]
PURPOSE = IndexPurpose.__table__  # type: ignore[attr-defined]
_PURPOSE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")


@dataclass(frozen=True)
class QueryRef:
    """The model@revision queries are embedded with, and how that is known."""

    model: str
    revision: str
    #: `index`, `purpose NAME` or `in use`
    via: str

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.revision}" if self.revision else self.model


@dataclass
class QueryBindings:
    """All query bindings of a catalog, keyed for `resolve_query`."""

    #: (asset uri, part) -> the model its queries use
    index: dict[tuple[str, str], QueryRef]
    #: (asset uri, part) -> purpose
    purposes: dict[tuple[str, str], str]
    #: purpose -> its current model
    purpose_models: dict[str, QueryRef]


def resolve_query(
    bindings: QueryBindings,
    uri: str,
    part: str,
    built: Mapping[str, float],
    in_use: Mapping[str, str],
) -> QueryRef | None:
    """What embeds the queries of `uri`'s vector `part` (None when nothing says so).

    `built`: model name -> share of the vectors it built; `in_use`: model name ->
    its revision in use (the legacy per-name registry), used only when neither
    the index nor its purpose names a model.
    """
    for key in ((uri, part), (uri, "")):
        if key in bindings.index:
            return bindings.index[key]
    for key in ((uri, part), (uri, "")):
        purpose = bindings.purposes.get(key)
        if purpose is not None and purpose in bindings.purpose_models:
            return bindings.purpose_models[purpose]
    named = sorted((-share, name) for name, share in built.items() if in_use.get(name))
    if named:
        name = named[0][1]
        return QueryRef(name, in_use[name], "in use")
    return None


def load_query_bindings(session: Session, uris: dict[int, str] | None = None) -> QueryBindings:
    """What embeds the queries of each index; `uris`: of these assets only (id -> URI)."""
    if uris is None:
        uris = {i: u for i, u in session.exec(select(Asset.id, Asset.uri)).all() if i is not None}
    out = QueryBindings({}, {}, {})
    for row in session.exec(select(QueryModel).order_by(col(QueryModel.set_at))).all():
        if row.asset_id is not None and row.asset_id in uris:
            out.index[(uris[row.asset_id], row.part)] = QueryRef(row.model, row.revision, "index")
        elif row.purpose:
            out.purpose_models[row.purpose] = QueryRef(
                row.model, row.revision, f"purpose {row.purpose}"
            )
    for p in session.exec(select(IndexPurpose)).all():
        if p.asset_id in uris:
            out.purposes[(uris[p.asset_id], p.part)] = p.purpose
    return out


def who(by: str | None = None) -> str:
    """Who is acting: `by`, else `$STEWARD_USER`, else the login name."""
    if by and by.strip():
        return by.strip()[:MAX_NAME]
    try:
        name = os.environ.get("STEWARD_USER") or getpass.getuser()
    except (KeyError, OSError):
        name = ""
    return name[:MAX_NAME] or "unknown"


def check_purpose(purpose: str) -> str:
    purpose = purpose.strip()
    if not _PURPOSE_NAME.match(purpose) or len(purpose) > MAX_NAME:
        raise InvalidInput(
            f"purpose {purpose!r} is not a plain name",
            hint="letters, digits and . _ : / -, e.g. docs-search",
        )
    return purpose


def _index_part(session: Session, asset_ref: str, part: str) -> Asset:
    asset = resolve(session, asset_ref)
    if asset.kind == KIND:
        raise InvalidInput(f"{asset.uri} is an embedding model, not a vector index")
    parts = vector_parts(session, asset)
    if not parts:
        raise InvalidInput(f"{asset.uri} has no vector field", hint="give a collection or table")
    if part and part not in parts:
        raise InvalidInput(
            f"{asset.uri} has no vector field '{part}'", hint=f"vector fields: {', '.join(parts)}"
        )
    return asset


def bind_queries(
    store: Store,
    name: str,
    revision: str,
    *,
    provider: str | None = None,
    index: str | None = None,
    part: str = "",
    purpose: str | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """Record that queries of index `index` (or of purpose `purpose`) use `name@revision`."""
    if (index is None) == (purpose is None):
        raise InvalidInput("give either an index or a purpose")
    if purpose is not None:
        purpose = check_purpose(purpose)
    if part and index is None:
        raise InvalidInput("--part needs --index")
    with store.session() as session:
        model = find_model(session, name, provider)
        require_revision(session, model, revision)
        asset = _index_part(session, index, part) if index is not None else None
        asset_id, target = (asset.id, asset.uri) if asset is not None else (None, purpose)
        model_name = model.name
    row = {
        "asset_id": asset_id,
        "part": part,
        "purpose": purpose or "",
        "model": model_name,
        "revision": revision,
        "set_by": who(by),
        "set_at": utcnow(),
    }
    with store.write() as conn:
        if asset_id is not None:
            conn.execute(delete(QUERY).where(QUERY.c.asset_id == asset_id, QUERY.c.part == part))
        else:
            conn.execute(
                delete(QUERY).where(QUERY.c.asset_id.is_(None), QUERY.c.purpose == purpose)
            )
        conn.execute(insert(QUERY).values(**row))
    return {
        "target": target,
        "part": part,
        "model": model_name,
        "revision": revision,
        "set_by": row["set_by"],
    }


def assign_purpose(
    store: Store, asset_ref: str, purpose: str, part: str = "", by: str | None = None
) -> dict[str, Any]:
    """Assign an index (or one vector part of it) to a purpose; replaces an earlier one."""
    purpose = check_purpose(purpose)
    with store.session() as session:
        asset = _index_part(session, asset_ref, part)
        asset_id, uri = asset.id, asset.uri
    with store.write() as conn:
        conn.execute(delete(PURPOSE).where(PURPOSE.c.asset_id == asset_id, PURPOSE.c.part == part))
        conn.execute(
            insert(PURPOSE).values(
                asset_id=asset_id, part=part, purpose=purpose, set_by=who(by), set_at=utcnow()
            )
        )
    return {"asset": uri, "part": part, "purpose": purpose}


def list_query_bindings(session: Session) -> list[dict[str, Any]]:
    """Every purpose and index binding, for `steward models list --json`."""
    loaded = load_query_bindings(session)
    out: list[dict[str, Any]] = []
    for purpose, ref in sorted(loaded.purpose_models.items()):
        members = sum(1 for p in loaded.purposes.values() if p == purpose)
        out.append({"purpose": purpose, "queries": ref.ref, "indexes": members})
    for (uri, part), ref in sorted(loaded.index.items()):
        out.append({"asset": uri, "part": part, "queries": ref.ref})
    for (uri, part), purpose in sorted(loaded.purposes.items()):
        out.append({"asset": uri, "part": part, "purpose": purpose})
    return out
