"""`steward demo [DIR]`."""

from __future__ import annotations

from pathlib import Path

import click

from catalog.cli import AppContext
from catalog.errors import InvalidInput
from catalog.output import info, write_file

pass_app = click.make_pass_decorator(AppContext)
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


@click.command()
@click.argument("directory", default="steward-demo", type=click.Path(file_okay=False))
@click.option(
    "--postgres",
    metavar="URL",
    default=DEFAULT_POSTGRES,
    show_default=True,
    help="A PostgreSQL server for the source-database part (the demo creates its own "
    "database, steward_demo, there). Skipped with a note if it does not answer.",
)
@click.option("--no-postgres", is_flag=True, help="Leave the PostgreSQL part out.")
@pass_app
def demo(app: AppContext, directory: str, postgres: str, no_postgres: bool) -> None:
    """Build a small AI stack in DIRECTORY and run steward over it end to end.

    \b
    In DIRECTORY (default ./steward-demo):
      steward.db       the catalog (SQLite)
      qdrant/          two collections built by a synthetic embedding model:
                       support_docs with demo-embed@1 while @2 is in use (stale),
                       product_docs with @2 (clean)
      features.toml    two feature sets and two models, with skew planted:
                       clicks_7d filled with -1 online but 0 offline, and
                       churn trained on an older user_activity
      events/          the pipelines' OpenLineage events, ingested
      report.html      the report: open it in a browser

    The findings are the demo's point: it exits 0 when it ran. Running it again
    in the same directory changes nothing and writes the same report. Its
    catalog is DIRECTORY/steward.db, whatever --catalog says.
    """
    from reports.demo import run_demo
    from reports.render import render_report

    if not directory.strip():
        raise InvalidInput(
            "the demo directory name is empty", hint="e.g. steward demo steward-demo"
        )
    result = run_demo(
        Path(directory),
        None if no_postgres else postgres,
        lambda store, path: write_file(path, render_report(store)),
        say=(lambda message: None) if app.quiet else info,
    )
    for note in result.skipped:
        info(note)
    if not app.quiet:
        counts: dict[str, int] = {}
        for f in result.findings:
            counts[f["severity"]] = counts.get(f["severity"], 0) + 1
        info("findings: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        info(f"catalog: {result.catalog_url}")
        info(f"explore: steward --catalog {result.catalog_url} check")
    click.echo(str(result.report))
