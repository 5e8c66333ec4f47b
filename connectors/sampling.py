"""What `steward scan` does after applying: record detected model bindings, sample vectors.

Kept out of the command so that it stays thin. A connector with the optional
`VectorSampler` ability samples every vector part of every index it scanned,
on every scan: a small uniform sample (`--sample-size`, default 1,000), or a
larger one with `--profile` (2,000). The drift rule compares it with the
part's baseline, so a silent rebuild is caught by a routine scan;
`--rebaseline` makes the new samples the baselines. A connector with a
`close()` is closed once the scan is done.
"""

from __future__ import annotations

from typing import Any

from catalog.apply import Plan
from catalog.db import Store
from catalog.profiles import (
    VectorSampler,
    sample_targets,
    take_baselines,
)
from catalog.querying import who
from connectors.base import Connector, SamplingOptions, Scan


def after_apply(
    store: Store, connector: Connector[Any], scan: Scan, plan: Plan | None
) -> list[dict[str, Any]]:
    """Post-scan work; `plan` is None for `--plan` (then nothing is written).

    Returns the samples taken (uri, part, vectors, population, seconds, role, stored).
    """
    try:
        if plan is None or not plan.applied:
            return []
        if not isinstance(connector, VectorSampler):
            return []
        config = connector.config
        options = config if isinstance(config, SamplingOptions) else SamplingOptions()
        rebaseline = options.rebaseline
        size = options.vectors_per_sample
        return take_baselines(
            store,
            connector,
            sample_targets(scan.specs),
            size,
            rebaseline=rebaseline,
            by=who() if rebaseline else "",
        )
    finally:
        close = getattr(connector, "close", None)
        if callable(close):
            close()
