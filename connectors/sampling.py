"""What `steward scan` does after applying: take baselines of vector stores.

Kept out of the command so that it stays thin. A connector with the optional
`VectorSampler` ability gets a baseline sample of every collection that got a
new version, or has no sample of its current version yet (all of them with
`--profile`); a connector with a `close()` is
closed once the scan is done.
"""

from __future__ import annotations

from typing import Any

from catalog.apply import Plan
from catalog.db import Store
from catalog.profiles import (
    DEFAULT_SAMPLE_SIZE,
    VectorSampler,
    baseline_targets,
    take_baselines,
)
from connectors.base import Connector, Scan


def after_apply(
    store: Store, connector: Connector[Any], scan: Scan, plan: Plan | None
) -> list[dict[str, Any]]:
    """Post-scan work; `plan` is None for `--plan` (then nothing is written).

    Returns the baseline samples taken (uri, part, vectors, population).
    """
    try:
        if plan is None or not plan.applied:
            return []
        if not isinstance(connector, VectorSampler):
            return []
        force = bool(getattr(connector.config, "profile", False))
        size = int(getattr(connector.config, "sample_size", None) or DEFAULT_SAMPLE_SIZE)
        targets = baseline_targets(store, plan, scan.specs, force)
        return take_baselines(store, connector, targets, size)
    finally:
        close = getattr(connector, "close", None)
        if callable(close):
            close()
