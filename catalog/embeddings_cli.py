"""`steward models`: the registry of embedding models, their revisions and bindings."""

from __future__ import annotations

import click

from catalog.cli import AppContext
from catalog.embeddings import DISTANCES, bind, list_models, register_model, use_model
from catalog.output import echo_json, echo_table, info

pass_app = click.make_pass_decorator(AppContext)
PROVIDER = click.option(
    "--provider",
    metavar="P",
    help="The model's provider (namespace model://P). Default: local, or any if unambiguous.",
)


@click.group()
def models() -> None:
    """Register embedding models, say which revision is in use, bind indexes to them.

    \b
    A model revision is an asset `model://PROVIDER/NAME` whose versions are its
    revisions. A collection or pgvector column built with one revision while
    another is in use is what `steward check` reports as stale embeddings.
    """


@models.command()
@click.argument("name")
@click.option("--revision", required=True, metavar="R", help="The revision (weights) to register.")
@click.option("--dim", required=True, type=click.IntRange(min=1), help="Vector dimension.")
@click.option(
    "--distance",
    required=True,
    type=click.Choice(DISTANCES, case_sensitive=False),
    help="The distance the model's vectors are meant to be compared with.",
)
@click.option(
    "--normalized/--not-normalized",
    default=True,
    show_default=True,
    help="Whether the model outputs unit-length vectors.",
)
@click.option("--provider", metavar="P", help="Provider (namespace model://P). Default: local.")
@pass_app
def register(
    app: AppContext,
    name: str,
    revision: str,
    dim: int,
    distance: str,
    normalized: bool,
    provider: str | None,
) -> None:
    """Register revision R of embedding model NAME (a new version of the model).

    Registering a known revision again with the same settings changes nothing;
    with other settings it is an error (a revision cannot change).
    """
    result = register_model(app.store(), name, revision, dim, distance, normalized, provider)
    if not app.quiet:
        state = "registered" if result["created"] else "already registered"
        info(f"{result['uri']}@{result['revision']}: {state}")


@models.command()
@click.argument("name")
@click.argument("revision")
@PROVIDER
@pass_app
def use(app: AppContext, name: str, revision: str, provider: str | None) -> None:
    """Mark REVISION as the one queries of model NAME are embedded with now."""
    result = use_model(app.store(), name, revision, provider)
    if not app.quiet:
        info(f"{result['uri']}: revision {result['revision']} in use")


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List models with their revisions, the one in use and the indexes bound to them.

    With --json: an array of objects with uri, provider, name, in_use,
    revisions (revision, version, dim, distance, normalized, registered_at)
    and bindings (asset, part, model, revision, origin, share).
    """
    with app.reading_store().session() as session:
        rows = list_models(session)
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ["MODEL", "REVISION", "DIM", "DISTANCE", "IN USE", "BOUND"],
        [
            (
                m["uri"],
                r["revision"],
                r["dim"],
                r["distance"],
                "*" if r["revision"] == m["in_use"] else "",
                sum(1 for b in m["bindings"] if b["revision"] == r["revision"]),
            )
            for m in rows
            for r in m["revisions"]
        ],
    )


@models.command("bind")
@click.argument("asset")
@click.argument("model_ref", metavar="MODEL@REVISION")
@click.option("--part", default="", metavar="NAME", help="The named vector or vector column.")
@PROVIDER
@pass_app
def bind_(app: AppContext, asset: str, model_ref: str, part: str, provider: str | None) -> None:
    """Record that MODEL@REVISION built ASSET (a collection or a table's vector column).

    ASSET is a URI or an unambiguous suffix of one. Provenance found in the
    collection's metadata or point payloads takes precedence over this binding.
    """
    result = bind(app.store(), asset, model_ref, part, provider)
    if not app.quiet:
        where = f" ({result['part']})" if result["part"] else ""
        info(f"{result['asset']}{where}: built with {result['model']}@{result['revision']}")
