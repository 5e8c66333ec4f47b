"""`steward report`: write the catalog's lineage and governance report as one HTML file."""

from __future__ import annotations

from pathlib import Path

import click

from catalog.cli import AppContext
from catalog.output import info
from reports.context import DEFAULT_DEPTH

pass_app = click.make_pass_decorator(AppContext)


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="The HTML file to write ('-' for stdout).",
)
@click.option("--focus", metavar="ASSET", help="Open the graph on this asset (URI or suffix).")
@click.option(
    "--depth",
    type=click.IntRange(min=1),
    default=DEFAULT_DEPTH,
    show_default=True,
    help="Hops around the focus (or around the assets with findings) drawn at first.",
)
@pass_app
def report(app: AppContext, output: Path, focus: str | None, depth: int) -> None:
    """Write one self-contained HTML page: overview, lineage graph, findings, versions.

    The page needs no network access (open it from disk, mail it, print it).
    It opens on the assets with findings of the last `steward check` and
    what they put at risk, or on --focus; search, click and expand reach the
    rest of the catalog. Run `steward check` first for up-to-date findings.
    """
    from reports.render import render_report

    page = render_report(app.store(), focus=focus, depth=depth)
    if str(output) == "-":
        click.echo(page, nl=False)
        return
    output.write_text(page, encoding="utf-8")
    if not app.quiet:
        info(f"wrote {output} ({len(page.encode('utf-8')) / 1024:,.0f} KB)")
