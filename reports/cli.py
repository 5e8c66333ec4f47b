"""`steward report`: write the catalog's lineage and governance report as one HTML file."""

from __future__ import annotations

import click

from catalog.cli import AppContext
from catalog.output import info, write_file
from reports.context import DEFAULT_DEPTH

pass_app = click.make_pass_decorator(AppContext)


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    default="report.html",
    show_default=True,
    help="The HTML file to write ('-' for stdout).",
)
@click.option(
    "--focus",
    metavar="ASSET",
    help="Report only this asset's neighbourhood, --depth hops either way (URI or suffix).",
)
@click.option(
    "--depth",
    type=click.IntRange(min=1),
    default=DEFAULT_DEPTH,
    show_default=True,
    help="Hops around the focus (or around the assets with findings) drawn at first.",
)
@pass_app
def report(app: AppContext, output: str, focus: str | None, depth: int) -> None:
    """Write one self-contained HTML page: overview, lineage graph, findings, versions.

    The page needs no network access (open it from disk, mail it, print it).
    It opens on the assets with findings of the last `steward check` and
    what they put at risk; search, click and expand reach the rest of the
    catalog. Run `steward check` first for up-to-date findings.

    With --focus the page holds only the assets within --depth hops of
    ASSET, upstream and downstream (at most 5,000 each way), the edges among
    them and the findings that name them, and says so: only those are read
    from the catalog, however large it is.

    The file is written whole or not at all (a temporary file renamed over
    FILE): a full disk or a missing directory is an error (exit 2) that
    leaves any earlier report as it was.
    """
    from reports.render import render_report

    page = render_report(app.reading_store(), focus=focus, depth=depth)
    if output == "-":
        click.echo(page, nl=False)
        return
    size = write_file(output, page)
    if not app.quiet:
        info(f"wrote {output} ({size / 1024:,.0f} KB)")
