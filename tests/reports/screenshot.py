"""Render the demo stack's report and save a screenshot of it from headless Chromium.

    python -m tests.reports.screenshot docs/report.png

The README shows the result; run this again when the page's look changes.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from catalog.db import Store
from reports.render import render_report
from tests.reports.browser import Browser
from tests.reports.stack import build_stack

WIDTH, HEIGHT = 1600, 1000


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else "docs/report.png")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'catalog.db'}")
        build_stack(store, Path(tmp))
        page_path = Path(tmp) / "report.html"
        page_path.write_text(render_report(store), encoding="utf-8")
        store.dispose()
        with Browser() as browser:
            page = browser.load(page_path)
            if page.errors:
                print("\n".join(page.errors), file=sys.stderr)
                return 1
            page.screenshot(target, WIDTH, HEIGHT)
    print(f"wrote {target} ({target.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
