"""The project's own checks run with the tests: lint, types, layer contracts, packaging."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return path


def check(*args: str) -> None:
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_ruff_lint() -> None:
    check(tool("ruff"), "check", ".")


def test_ruff_format() -> None:
    check(tool("ruff"), "format", "--check", ".")


def test_mypy() -> None:
    check(tool("mypy"))


def test_import_layers() -> None:
    check(tool("lint-imports"))


def test_wheel_holds_exactly_the_four_packages(tmp_path: Path) -> None:
    check(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(tmp_path),
        str(REPO),
    )
    (wheel,) = tmp_path.glob("ai_steward-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"catalog", "connectors", "lineage", "reports"}
    assert any(n.startswith("catalog/migrations/versions/0001") for n in names)
    assert "catalog/migrations/script.py.mako" in names


def test_a_read_beside_the_checkout_is_caught(tmp_path: Path) -> None:
    """The guard in conftest sees an open of a sibling of the repository."""
    from tests import conftest

    beside = REPO.parent / "no-such-sibling-of-the-checkout" / "fixture.json"
    with pytest.raises(OSError):
        beside.open()
    assert [str(beside)] == conftest.OUTSIDE_READS
    conftest.OUTSIDE_READS.clear()
    (tmp_path / "inside.json").write_text("{}")
    assert conftest.OUTSIDE_READS == []
