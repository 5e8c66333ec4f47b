"""Screenshots of the report in headless Chromium, for the README: one command for all.

    python -m tests.reports.screenshot [docs]

- `report.png`: the report of `steward demo`;
- `report-pagila.png`: the pagila schema scanned from the local PostgreSQL;
- `report-dbt.png`: a dbt-style project with long dotted names (`tests/reports/catalogs.py`);
- `report-asset.png`: the page of one asset of it (`#asset/URI`).

Run it again when the page's look changes. Needs chromium, psql and the local PostgreSQL.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from catalog.db import Store
from reports.demo import run_demo
from reports.render import render_report
from tests.reports.browser import Browser
from tests.reports.catalogs import WAREHOUSE, dbt_catalog, pagila_catalog

WIDTH, HEIGHT = 1600, 1000
ASSET = f"{WAREHOUSE}/realprod_jaffle.analytics.customers"


def _write(store: Store, path: Path) -> Path:
    path.write_text(render_report(store), encoding="utf-8")
    store.dispose()
    return path


def reports(tmp: Path) -> dict[str, tuple[Path, str]]:
    """Screenshot name -> (report file, route)."""
    demo = run_demo(
        tmp / "steward-demo",
        "postgresql://postgres@127.0.0.1:5432/postgres",
        lambda store, path: path.write_text(render_report(store), encoding="utf-8"),
    )
    dbt = Store(f"sqlite:///{tmp / 'dbt.db'}")
    dbt_catalog(dbt, tmp)
    dbt_report = _write(dbt, tmp / "dbt.html")
    pagila = Store(f"sqlite:///{tmp / 'pagila.db'}")
    with pagila_catalog(pagila):
        pagila_report = _write(pagila, tmp / "pagila.html")
    return {
        "report.png": (demo.report, ""),
        "report-pagila.png": (pagila_report, ""),
        "report-dbt.png": (dbt_report, ""),
        "report-asset.png": (dbt_report, "asset/" + quote(ASSET, safe="")),
    }


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else "docs").resolve()
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, Browser() as browser:
        for name, (report, route) in reports(Path(tmp)).items():
            page = browser.load(report, fragment=route)
            if page.errors:
                print("\n".join(page.errors), file=sys.stderr)
                return 1
            page.screenshot(target / name, WIDTH, HEIGHT)
            print(f"wrote {target / name} ({(target / name).stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
