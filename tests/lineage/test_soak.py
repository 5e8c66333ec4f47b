"""The soak benchmark keeps working: a short run of `python -m benchmarks soak`."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def figure(output: str, label: str) -> int:
    found = re.search(rf"^{re.escape(label)}\s+([\d,]+)", output, re.M)
    assert found, f"no {label!r} line in:\n{output}"
    return int(found.group(1).replace(",", ""))


def test_a_short_soak_loses_nothing_and_answers_bad_input_with_4xx() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "soak", "--duration", "20", "--bad-share", "0.05"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    sent = figure(out, "events sent")
    assert sent > 1000
    assert figure(out, "events acknowledged") == sent
    assert figure(out, "events stored") == sent
    assert figure(out, "events lost") == 0
    assert figure(out, "events stored twice") == 0
    bad = figure(out, "deliberately bad requests")
    assert bad > 0 and figure(out, "  answered 4xx") == bad
    assert figure(out, "unexpected responses") == 0
    assert re.search(r"^single POST latency, ms\s+p50 [\d.]+", out, re.M)
    assert re.search(r"^batch POST latency, ms\s+p50 [\d.]+", out, re.M)
    assert "OK: nothing lost" in out
