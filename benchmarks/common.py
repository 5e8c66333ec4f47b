"""Helpers shared by the benchmarks: timing and the figure/ratio line."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Seconds taken by `fn()` (wall clock) and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def report(label: str, seconds: float, baseline: float | None = None, note: str = "") -> None:
    """One figure line: `label  1.234 s  (2.10x baseline)`."""
    ratio = f"  ({seconds / baseline:.2f}x baseline)" if baseline else ""
    extra = f"  {note}" if note else ""
    print(f"{label:<48} {seconds:8.3f} s{ratio}{extra}", flush=True)
