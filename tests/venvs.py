"""Virtual environments of a test's own, for third parties whose pins clash with ours.

Built once with pip from the package index into a cache folder
(`~/.cache/steward-tests`, or `STEWARD_TEST_CACHE`) and reused: the folder's
name carries the Python version and a hash of the requirements, so new pins
are a new environment. A build goes to a temporary folder renamed into place
when it succeeded, under a file lock, so parallel test workers never see a
half-built environment. When it cannot be built the test is skipped with the
reason, and fails instead under CI (CI=true).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

#: Seconds a build may take (pip downloads from the index).
BUILD_TIMEOUT = 600


def cache_root() -> Path:
    configured = os.environ.get("STEWARD_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "steward-tests"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def cached_venv(name: str, requirements: list[str]) -> Path:
    """The Python of an environment with exactly `requirements`, built if not cached."""
    tag = hashlib.sha256("\n".join([sys.version, *requirements]).encode()).hexdigest()[:12]
    root = cache_root()
    target = root / f"{name}-py{sys.version_info[0]}{sys.version_info[1]}-{tag}"
    python = target / "bin" / "python"
    if python.exists():
        return python
    root.mkdir(parents=True, exist_ok=True)
    with (root / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists():  # another worker built it meanwhile
            return python
        building = root / f".{target.name}.building"
        shutil.rmtree(building, ignore_errors=True)
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", str(building)],
                check=True,
                capture_output=True,
                timeout=BUILD_TIMEOUT,
            )
            subprocess.run(
                [str(building / "bin" / "python"), "-m", "pip", "install", "-q", *requirements],
                check=True,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
            )
        except (OSError, subprocess.SubprocessError) as err:
            shutil.rmtree(building, ignore_errors=True)
            detail = getattr(err, "stderr", None) or str(err)
            last = str(detail).strip().splitlines()[-1:] or [type(err).__name__]
            _unavailable(f"cannot build a {name} environment ({' '.join(requirements)}): {last[0]}")
        building.rename(target)
    return python
