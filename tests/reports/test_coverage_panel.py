"""The overview's lineage-coverage panel, in a real headless Chromium: figures and trend.

Two checks of a catalog made by real parts (a features.toml scan, the source
table described by a Spark-shaped OpenLineage event): the first with one of
two feature sets lacking its source (50 %), the second after it was given one
(100 %). The panel shows the latest figure and a line rising from one to the
other.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from catalog.cli import cli
from catalog.db import Store
from reports.render import render_report
from tests.lineage.test_coverage import FEATURES, TABLE, TABLE_NS, describe_table
from tests.reports.browser import Browser, foreign_requests
from tests.reports.test_browser import browser  # noqa: F401  (the module's Chromium)


def steward(catalog: str, *args: str) -> None:
    result = CliRunner().invoke(cli, ["--catalog", catalog, *args], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output


def test_the_panel_shows_each_kind_and_its_trend(
    tmp_path: Path,
    browser: Browser,  # noqa: F811
) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    steward(catalog, "ingest", str(describe_table(tmp_path)))
    features = tmp_path / "features.toml"
    features.write_text(FEATURES)
    steward(catalog, "scan", str(features))
    steward(catalog, "check")
    fixed = FEATURES.replace(
        "[feature_sets.orphan]\n", f'[feature_sets.orphan]\nsource = "{TABLE_NS}/{TABLE}"\n'
    )
    assert fixed != FEATURES
    features.write_text(fixed)
    steward(catalog, "scan", str(features))
    steward(catalog, "check")

    store = Store(catalog)
    path = tmp_path / "report.html"
    path.write_text(render_report(store), encoding="utf-8")
    store.dispose()
    page = browser.load(path)
    assert page.errors == [] and foreign_requests(page) == []
    rows = page.eval(
        "[...document.querySelectorAll('#overview ~ #coverage tr.cov-row, #coverage tr.cov-row')]"
        ".map(r => [r.dataset.kind, ...[...r.cells].slice(0, 3).map(c => c.textContent.trim())])"
    )
    assert rows == [["feature_set", "feature set", "2 / 2", "100.0%"]]
    # The trend: two checks, from 50 % up to 100 % (SVG's y grows downwards).
    points = page.eval(
        "[...document.querySelector('#coverage polyline').points].map(p => [p.x, p.y])"
    )
    assert len(points) == 2 and points[0][1] > points[1][1]
    label = page.eval("document.querySelector('#coverage svg').getAttribute('aria-label')")
    assert label == "feature set: 50.0% to 100.0% over 2 checks"
    box = page.eval(
        "(() => { const r = document.querySelector('#coverage').getBoundingClientRect();"
        " return [r.width, r.height]; })()"
    )
    assert box[0] > 100 and box[1] > 40  # laid out, visible
