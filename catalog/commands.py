"""The catalog's own commands: init, assets, show, history, diff."""

from __future__ import annotations

import json

import click

from catalog.cli import AppContext
from catalog.output import echo, echo_json, echo_table, info
from catalog.queries import diff_versions, list_assets, resolve, show_asset
from catalog.queries import history as version_history
from catalog.render import diff_lines
from catalog.search import check_kind, search

pass_app = click.make_pass_decorator(AppContext)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")


@click.command()
@pass_app
def init(app: AppContext) -> None:
    """Create the catalog, or upgrade its schema to this release.

    Safe to run again: an up-to-date catalog is left as it is. Every other
    command also creates the catalog on first use.
    """
    store = app.store()
    info(f"Catalog ready: {store.shown_url} (schema {store.current_revision()})")


@click.command()
@click.option("--kind", metavar="KIND", help="Only assets of this kind (table, view, ...).")
@click.option(
    "--name",
    "-n",
    "text",
    metavar="TEXT",
    help="Only assets whose URI or an alias contains TEXT (any case), or comes close to it; "
    "best matches first.",
)
@click.option("--live", is_flag=True, help="Leave out deleted assets.")
@JSON_OPTION
@pass_app
def assets(app: AppContext, kind: str | None, text: str | None, live: bool, as_json: bool) -> None:
    """List the assets in the catalog, ordered by URI (with --name: best match first).

    --name finds assets across every namespace and alias: `--name orders`
    lists shop.public.orders and crm.public.orders, `--name ordrs` too (a
    close match). An unknown --kind is an error that lists the kinds.

    With --json: an array of objects with uri, namespace, name, kind, version,
    fingerprint, deleted, unresolved and fields (name, type, nullable, ...).
    """
    with app.reading_store().session() as session:
        if kind is not None:
            check_kind(session, kind)
        rows = list_assets(session, kind=kind, include_deleted=not live)
        if text is not None:
            order = {a.uri: i for i, a in enumerate(search(session, text))}
            rows = sorted((r for r in rows if r["uri"] in order), key=lambda r: order[r["uri"]])
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ["URI", "KIND", "VERSION", "FIELDS", "STATE"],
        [
            (
                r["uri"],
                r["kind"],
                r["version"],
                len(r["fields"]),
                "deleted" if r["deleted"] else "unresolved" if r["unresolved"] else "",
            )
            for r in rows
        ],
    )


@click.command()
@click.argument("asset")
@JSON_OPTION
@pass_app
def show(app: AppContext, asset: str, as_json: bool) -> None:
    """Show ASSET: its fields, properties, observations and direct lineage.

    ASSET is a URI (NAMESPACE/NAME, a job's job:NAMESPACE/NAME) or any
    unambiguous suffix of one; job:ASSET or dataset:ASSET chooses between a
    job and a dataset named alike.
    """
    with app.reading_store().session() as session:
        data = show_asset(session, resolve(session, asset))
    if as_json:
        echo_json(data)
        return
    state = " (deleted)" if data["deleted"] else " (unresolved)" if data["unresolved"] else ""
    echo(f"{data['uri']}{state}")
    echo(f"  kind: {data['kind']}   version: {data['version']}")
    if data["fingerprint"]:
        echo(f"  fingerprint: {data['fingerprint']}")
    if data["description"]:
        echo(f"  description: {data['description']}")
    embedding = data["properties"].get("embedding") or {}
    built = ", ".join(
        f"{m.get('model')}@{m.get('revision')}" + (f" ({m['share']:.0%})" if "share" in m else "")
        for m in embedding.get("models", [])
    )
    if built:
        echo(f"  embedding model: {built}  (from {embedding.get('origin', '?')})")
    observed = data["observed"] or {}
    if "points" in observed:
        echo(f"  points: {observed['points']:,}")
    if data["fields"]:
        echo("  fields:")
        for f in data["fields"]:
            null = "" if f["nullable"] else " not null"
            extra = _attributes(f.get("attributes") or {})
            echo(f"    {f['name']}  {f['type']}{null}{extra}")
    for title, values in (("properties", data["properties"]), ("observed", observed)):
        if values:
            echo(f"  {title}:")
            for key, value in sorted(values.items()):
                echo(f"    {key}: {_compact(value)}")
    merged = {m["uri"]: m["merged_at"] for m in data["merged"]}
    for value in data["aliases"]:
        note = f" (an asset of its own until merged {merged[value]})" if value in merged else ""
        echo(f"  alias: {value}{note}")
    for said in data["sources"]:
        what = f"{len(said['fields'])} fields" if "fields" in said else "observations"
        echo(f"  source: {said['source']} ({what}, as of {said['asserted_at']})")
    for direction in ("upstream", "downstream"):
        for edge in data[direction]:
            echo(f"  {direction}: {edge['uri']} ({edge['kind']})")


def _compact(value: object, limit: int = 100) -> str:
    """A property's value on one line: scalars as they are, the rest as short JSON."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _attributes(attributes: dict[str, object]) -> str:
    """A field's attributes after its type: `[dim=64 distance=cosine embedding_model=...]`."""
    shown = [f"{k}={_compact(v, 60)}" for k, v in attributes.items() if v not in (None, True, "")]
    return f"  [{' '.join(shown)}]" if shown else ""


def _diff_line(diff: dict[str, object]) -> str:
    added = len(diff.get("added", []))  # type: ignore[arg-type]
    removed = len(diff.get("removed", []))  # type: ignore[arg-type]
    changed = len(diff.get("changed", []))  # type: ignore[arg-type]
    mark = "  BREAKING" if diff.get("breaking") else ""
    return f"+{added} -{removed} ~{changed}{mark}"


@click.command()
@click.argument("asset")
@JSON_OPTION
@pass_app
def history(app: AppContext, asset: str, as_json: bool) -> None:
    """List ASSET's versions in the order they were true, each with its diff to the one before.

    TRUE SINCE is when a version became true (its source's time: the event's
    eventTime, the scan's time); LEARNED is when steward recorded it. An event
    that arrives after a newer one is recorded at its time and never becomes
    current (the current version is marked *).

    With --json: an array of objects with version, fingerprint, valid_from,
    created_at, current, origin, restored and diff (added, removed, changed,
    breaking).
    """
    with app.reading_store().session() as session:
        versions = version_history(session, resolve(session, asset))
    if as_json:
        echo_json(versions)
        return
    echo_table(
        ["VERSION", "TRUE SINCE", "LEARNED", "FINGERPRINT", "CHANGE"],
        [
            (
                f"{v['version']}{'*' if v['current'] else ''}",
                v["valid_from"],
                v["created_at"],
                v["fingerprint"][:12],
                "created"
                if v["version"] == 1
                else ("restored " if v["restored"] else "") + _diff_line(v["diff"]),
            )
            for v in versions
        ],
    )


@click.command()
@click.argument("asset")
@click.argument("v1", type=click.IntRange(min=1))
@click.argument("v2", type=click.IntRange(min=1))
@JSON_OPTION
@pass_app
def diff(app: AppContext, asset: str, v1: int, v2: int, as_json: bool) -> None:
    """Compare versions V1 and V2 of ASSET: fields added, removed, changed.

    A removed or retyped field, or one that became NOT NULL, is breaking.
    """
    with app.reading_store().session() as session:
        data = diff_versions(session, resolve(session, asset), v1, v2)
    if as_json:
        echo_json(data)
        return
    echo(f"{data['uri']}: version {v1} -> {v2}" + ("  BREAKING" if data["breaking"] else ""))
    for line in diff_lines(data):
        echo(line)
    if not (data["added"] or data["removed"] or data["changed"]):
        echo("  no differences")
