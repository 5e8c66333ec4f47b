"""Run `steward demo` and save a screenshot of its report from headless Chromium.

    python -m tests.reports.screenshot docs/report.png

The README shows the result; run this again when the page's look changes.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from reports.demo import run_demo
from reports.render import render_report
from tests.reports.browser import Browser

WIDTH, HEIGHT = 1600, 1000


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else "docs/report.png").resolve()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_demo(
            Path(tmp) / "steward-demo",
            "postgresql://postgres@127.0.0.1:5432/postgres",
            lambda store, path: path.write_text(render_report(store), encoding="utf-8"),
        )
        with Browser() as browser:
            page = browser.load(result.report)
            if page.errors:
                print("\n".join(page.errors), file=sys.stderr)
                return 1
            page.screenshot(target, WIDTH, HEIGHT)
    print(f"wrote {target} ({target.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
