"""`steward models`: the registry of embedding models, their revisions and bindings."""

from __future__ import annotations

import click

from catalog.cli import AppContext
from catalog.embeddings import DISTANCES, bind, list_models, register_model, use_model
from catalog.output import echo_json, echo_table, info
from catalog.profiles import rebaseline_asset
from catalog.querying import assign_purpose, bind_queries, list_query_bindings, who

pass_app = click.make_pass_decorator(AppContext)
PROVIDER = click.option(
    "--provider",
    metavar="P",
    help="The model's provider (namespace model://P). Default: local, or any if unambiguous.",
)


@click.group()
def models() -> None:
    """Register embedding models, say which model queries an index, bind and re-baseline.

    \b
    A model revision is an asset `model://PROVIDER/NAME` whose versions are its
    revisions. A collection or pgvector column whose vectors were built by
    another model or revision than what its queries use (`models use`), or
    whose points mix several, is what `steward check` reports as stale
    embeddings.
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


BY = click.option(
    "--by", metavar="WHO", help="Who records this (default: $STEWARD_USER or the login name)."
)


@models.command()
@click.argument("name")
@click.argument("revision")
@click.option(
    "--index",
    "index",
    metavar="ASSET",
    help="Queries of this index (a URI or unambiguous suffix) use NAME@REVISION.",
)
@click.option("--part", default="", metavar="NAME", help="With --index: one named vector/column.")
@click.option(
    "--purpose",
    metavar="PURPOSE",
    help="NAME@REVISION is the current model of this purpose (e.g. docs-search).",
)
@PROVIDER
@BY
@pass_app
def use(
    app: AppContext,
    name: str,
    revision: str,
    index: str | None,
    part: str,
    purpose: str | None,
    provider: str | None,
    by: str | None,
) -> None:
    """Say which model and revision embeds the queries of an index or a purpose.

    \b
    steward models use NAME REV --index ASSET     queries of ASSET use NAME@REV
    steward models use NAME REV --purpose P       indexes assigned to P are queried
                                                  with NAME@REV (steward models assign)
    steward models use NAME REV                   (legacy) indexes built with any
                                                  revision of NAME, and bound to no
                                                  index or purpose, are queried with REV

    An index whose vectors were built by another model or revision than what
    its queries use, whatever the names, is reported as stale embeddings.
    """
    store = app.store()
    if index is None and purpose is None:
        if part:
            raise click.UsageError("--part needs --index")
        result = use_model(store, name, revision, provider)
        if not app.quiet:
            info(f"{result['uri']}: revision {result['revision']} in use")
        return
    if index is not None and purpose is not None:
        raise click.UsageError("give --index or --purpose, not both")
    bound = bind_queries(
        store, name, revision, provider=provider, index=index, part=part, purpose=purpose, by=by
    )
    if not app.quiet:
        where = f" ({bound['part']})" if bound["part"] else ""
        kind = "purpose " if purpose is not None else ""
        info(f"queries of {kind}{bound['target']}{where} use {bound['model']}@{bound['revision']}")


@models.command()
@click.argument("asset")
@click.argument("purpose")
@click.option("--part", default="", metavar="NAME", help="One named vector or vector column.")
@BY
@pass_app
def assign(app: AppContext, asset: str, purpose: str, part: str, by: str | None) -> None:
    """Assign index ASSET to PURPOSE (e.g. docs-search): its queries use the purpose's model.

    Set the purpose's model with `steward models use NAME REV --purpose PURPOSE`;
    a binding of the index itself (`--index`) takes precedence.
    """
    result = assign_purpose(app.store(), asset, purpose, part, by)
    if not app.quiet:
        where = f" ({result['part']})" if result["part"] else ""
        info(f"{result['asset']}{where} serves {result['purpose']}")


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


@models.command()
@click.argument("asset")
@click.option("--part", default=None, metavar="NAME", help="Only this named vector or column.")
@BY
@pass_app
def rebaseline(app: AppContext, asset: str, part: str | None, by: str | None) -> None:
    """Make the newest vector sample of ASSET its drift baseline, and close its drift findings.

    Use it once a change the drift rule reported is intended (a re-embedding,
    new content). It is recorded with who (--by, $STEWARD_USER or the login
    name) and when; later scans' samples are compared with the new baseline.
    To take a fresh sample and make it the baseline at once: `steward scan URL
    --rebaseline`.
    """
    result = rebaseline_asset(app.store(), asset, part, who(by))
    if not app.quiet:
        for p in result["parts"]:
            where = f" ({p['part']})" if p["part"] else ""
            info(
                f"{result['asset']}{where}: baseline is now the sample of {p['sampled_at']} "
                f"({p['vectors']} vectors), set by {result['by']}"
            )
        if result["resolved"]:
            info(f"resolved {len(result['resolved'])} drift finding(s)")


@models.command("queries")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_app
def queries_(app: AppContext, as_json: bool) -> None:
    """List what queries each index: purposes with their model, index bindings, assignments.

    With --json: an array of objects, each either {purpose, queries, indexes},
    {asset, part, queries} or {asset, part, purpose}.
    """
    with app.store().session() as session:
        rows = list_query_bindings(session)
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ["PURPOSE OR INDEX", "PART", "QUERIES USE / SERVES"],
        [
            (
                r.get("purpose") if "asset" not in r else r["asset"],
                r.get("part", ""),
                r.get("queries") or f"purpose {r['purpose']}",
            )
            for r in rows
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
