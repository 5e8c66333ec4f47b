"""Run steward's benchmarks: `python -m benchmarks [NAME ...]`.

Each `benchmarks/bench_NAME.py` has a `main(argv)` that prints its figures
and their ratio to a baseline measured in the same run. With no names, all
run in turn. Figures, never asserts: these machines are shared and noisy.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(here)])
        if m.name.startswith("bench_")
    )


def main(argv: list[str]) -> int:
    # Benchmark names first; everything from the first option on is the benchmarks' own.
    first_option = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    names, rest = argv[:first_option] or available(), argv[first_option:]
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(
            f"unknown benchmark {unknown[0]!r}; available: {', '.join(available())}",
            file=sys.stderr,
        )
        return 2
    for name in names:
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.bench_{name}").main(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
