"""One scan of one source: connector, plan or apply, then bindings and baselines.

`steward scan` and `steward demo` both go through `run_scan`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from catalog.apply import Plan, apply, plan
from catalog.db import Store
from catalog.identity import redact_url
from connectors.base import Progress, Scan
from connectors.registry import for_url
from connectors.sampling import after_apply


@dataclass
class ScanOutcome:
    scan: Scan
    plan: Plan
    baselines: list[dict[str, Any]]
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            **self.plan.to_json(),
            "source": self.source,
            "warnings": self.scan.warnings,
            "baselines": self.baselines,
        }


def run_scan(
    open_store: Callable[[], Store],
    url: str,
    *,
    plan_only: bool = False,
    progress: Progress | None = None,
    **options: Any,
) -> ScanOutcome:
    """Read the source at `url`; apply what it found (or only plan it).

    The catalog is opened only once the source has been read, so a source
    that cannot be read leaves no catalog behind.
    """
    connector = for_url(url, **options)
    result = connector.scan(progress)
    store = open_store()
    if plan_only:
        outcome = plan(store, result.specs, result.scopes, origin=result.origin)
    else:
        outcome = apply(store, result.specs, result.scopes, origin=result.origin)
    baselines = after_apply(store, connector, result, None if plan_only else outcome)
    return ScanOutcome(result, outcome, baselines, result.origin or redact_url(url))
