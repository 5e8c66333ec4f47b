"""`steward features ...`: feature value samples for the value-skew rule."""

from __future__ import annotations

from pathlib import Path

import click

from catalog.cli import AppContext
from catalog.output import echo_json, info
from catalog.queries import resolve
from catalog.samples import feature_set_version, save_feature_samples
from connectors.sample_files import read_samples

pass_app = click.make_pass_decorator(AppContext)
FILE = click.Path(dir_okay=False, path_type=Path)


@click.group()
def features() -> None:
    """Feature sets: record offline and online samples of their values."""


@features.command()
@click.argument("feature_set")
@click.option(
    "--offline",
    "offline",
    type=FILE,
    help="Sample of the values training computed (CSV, NDJSON or Parquet).",
)
@click.option(
    "--online",
    "online",
    type=FILE,
    help="Sample of the values serving computed (CSV, NDJSON or Parquet).",
)
@click.option(
    "--from-feast",
    "entity_file",
    type=FILE,
    help="Pull both sides from the Feast repository's offline and online stores "
    "for the entity rows in this file (CSV, NDJSON or Parquet).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was stored as JSON.")
@pass_app
def sample(
    app: AppContext,
    feature_set: str,
    offline: Path | None,
    online: Path | None,
    entity_file: Path | None,
    as_json: bool,
) -> None:
    """Record an offline and an online sample of FEATURE_SET's values.

    Either give both files (--offline and --online) or, for a feature view
    or on-demand feature view scanned from a Feast repository, --from-feast
    ENTITY_FILE (for an on-demand view its rows also carry the request
    sources' columns). Each sample has one row per entity: the entity key
    columns (the feature set's `entities`, or their `join_keys`) and a
    column per feature. Rows that
    share keys on both sides are compared value by value; both sides are
    compared as distributions. Samples of more than 50,000 rows are
    subsampled reproducibly. Both sides are stored together, or neither.
    """
    store = app.store()
    with store.session() as session:
        asset = resolve(session, feature_set)
        version = feature_set_version(session, asset)
    samples = read_samples(asset, version, offline, online, entity_file)
    with store.write() as conn:
        stored = save_feature_samples(conn, asset, version, samples)
    if as_json:
        echo_json({"uri": asset.uri, "version": version.version, "samples": stored})
    elif not app.quiet:
        for s in stored:
            info(
                f"{asset.uri} v{version.version}: {s['side']} sample of {s['rows']} rows "
                f"({len(s['features'])} features)"
            )
