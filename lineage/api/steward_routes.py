"""steward's own read API under `/api/steward/v1`: the data the CLI prints with `--json`.

Each route calls the function its command calls (`steward assets`, `show`,
`history`, `diff`, `findings`, `models list`, `models queries`), so the names and values are
those of `--json`; lists are paged (`limit`, `offset`) and say their
`totalCount`. An asset in the path is its URI (or an unambiguous suffix),
percent-encoded as one segment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel
from sqlmodel import Session

from catalog.coverage import figures, trend
from catalog.db import Store
from catalog.embeddings import list_models
from catalog.errors import Ambiguous, NotFound
from catalog.queries import (
    SCHEMA_VERSION,
    count_assets,
    coverage,
    diff_versions,
    history,
    list_assets,
    resolve,
    show_asset,
)
from catalog.querying import list_query_bindings
from lineage.api import steward_schemas as schemas
from lineage.api.common import ApiError, choice, integer, json_response, paging, path_value
from lineage.findings import list_findings

PREFIX = "/api/steward/v1"
T = TypeVar("T")


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """A route's OpenAPI responses: `model` on success, the error shape otherwise."""
    return {"response_model": None, "responses": {200: {"model": model}, **schemas.ERRORS}}


def steward_router(store: Store) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["steward"])

    @contextmanager
    def session() -> Iterator[Session]:
        with store.session(reading=True) as s:
            yield s

    def answer(call: Callable[[Session], T]) -> T:
        with session() as s:
            try:
                return call(s)
            except NotFound as err:
                raise ApiError(404, str(err), "asset") from None
            except Ambiguous as err:
                raise ApiError(409, str(err), "asset") from None

    def page(
        kind: str | None,
        q: str | None,
        namespace: str | None,
        live: str | None,
        limit: str | None,
        offset: str | None,
    ) -> Response:
        size, skip = paging(limit, offset)
        include_deleted = choice(live, "live", ("true", "false")) != "true"
        filters: dict[str, Any] = {
            "kind": kind or None,
            "include_deleted": include_deleted,
            "query": q or None,
            "namespace": namespace or None,
        }
        with session() as s:
            rows = list_assets(s, **filters, limit=size, offset=skip)
            total = count_assets(s, **filters)
        return json_response(
            {"schema_version": SCHEMA_VERSION, "assets": rows, "totalCount": total}
        )

    @router.get(
        "/assets",
        summary="Assets, by URI (`steward assets --json`)",
        **documented(schemas.AssetPage),
    )
    def assets(
        kind: str | None = None,
        q: str | None = None,
        namespace: str | None = None,
        live: str | None = None,
        limit: str | None = None,
        offset: str | None = None,
    ) -> Response:
        return page(kind, q, namespace, live, limit, offset)

    @router.get(
        "/assets/{asset}",
        summary="One asset with its evidence (`steward show --json`)",
        **documented(schemas.AssetDetail),
    )
    def show(asset: str) -> Response:
        ref = path_value(asset)
        return json_response(answer(lambda s: show_asset(s, resolve(s, ref))))

    @router.get(
        "/assets/{asset}/versions",
        summary="Versions with diffs (`steward history --json`)",
        **documented(schemas.VersionList),
    )
    def versions(asset: str) -> Response:
        ref = path_value(asset)
        rows = answer(lambda s: history(s, resolve(s, ref)))
        return json_response({"schema_version": SCHEMA_VERSION, "versions": rows})

    @router.get(
        "/assets/{asset}/diff",
        summary="Diff of two versions (`steward diff --json`)",
        **documented(schemas.Diff),
    )
    def diff(asset: str, v1: str | None = None, v2: str | None = None) -> Response:
        ref = path_value(asset)
        first = integer(v1, "v1", 0, low=1, high=2**31 - 1)
        second = integer(v2, "v2", 0, low=1, high=2**31 - 1)
        if not first or not second:
            raise ApiError(400, "v1 and v2 are required: two version numbers", "v1")

        def run(s: Session) -> dict[str, Any]:
            return diff_versions(s, resolve(s, ref), first, second)

        return json_response(answer(run))

    @router.get(
        "/findings",
        summary="Findings of the last check, with acknowledgements (`steward findings --json`)",
        **documented(schemas.FindingList),
    )
    def findings(all: str | None = None) -> Response:
        everything = choice(all, "all", ("true", "false")) == "true"
        rows = answer(lambda s: list_findings(s, everything))
        return json_response({"findings": rows, "totalCount": len(rows)})

    @router.get(
        "/models",
        summary="Embedding models and bindings (`steward models list --json`)",
        **documented(schemas.ModelList),
    )
    def models() -> Response:
        rows = answer(list_models)
        return json_response({"models": rows, "totalCount": len(rows)})

    @router.get(
        "/models/queries",
        summary="What embeds each index's queries (`steward models queries --json`)",
        **documented(schemas.QueryBindingList),
    )
    def query_models() -> Response:
        rows = answer(list_query_bindings)
        return json_response({"queries": rows, "totalCount": len(rows)})

    @router.get(
        "/feature-sets",
        summary="Feature sets (`steward assets --kind feature_set --json`)",
        **documented(schemas.AssetPage),
    )
    def feature_sets(
        q: str | None = None,
        namespace: str | None = None,
        live: str | None = None,
        limit: str | None = None,
        offset: str | None = None,
    ) -> Response:
        return page("feature_set", q, namespace, live, limit, offset)

    @router.get(
        "/coverage",
        summary="Lineage coverage per kind of asset",
        **documented(schemas.CoverageList),
    )
    def lineage_coverage() -> Response:
        return json_response({"coverage": answer(coverage)})

    @router.get(
        "/coverage/lineage",
        summary="Lineage coverage as `steward check` counts it, with its trend over checks"
        " (`steward check --json --coverage`)",
        **documented(schemas.LineageCoverage),
    )
    def traced_coverage() -> Response:
        def read(s: Session) -> dict[str, Any]:
            conn = s.connection()
            return {"coverage": figures(conn), "trend": trend(conn)}

        return json_response(answer(read))

    return router
