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

import os
from typing import Any

from catalog.apply import Plan, write_retrying
from catalog.db import Store
from catalog.embeddings import sync_detected_bindings
from catalog.errors import InvalidInput
from catalog.profiles import (
    DEFAULT_SAMPLE_SIZE,
    PROFILE_SAMPLE_SIZE,
    VectorSampler,
    sample_targets,
    take_baselines,
)
from catalog.querying import who
from connectors.base import Connector, Scan

SAMPLE_SIZE_ENV = "STEWARD_SAMPLE_SIZE"


def env_sample_size() -> int | None:
    """`$STEWARD_SAMPLE_SIZE`, the default of `--sample-size` (None when unset)."""
    raw = os.environ.get(SAMPLE_SIZE_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidInput(
            f"${SAMPLE_SIZE_ENV} is {raw!r}, not a positive number of vectors",
            hint=f"e.g. {SAMPLE_SIZE_ENV}=1000, or unset it",
        )
    return int(raw)


def after_apply(
    store: Store, connector: Connector[Any], scan: Scan, plan: Plan | None
) -> list[dict[str, Any]]:
    """Post-scan work; `plan` is None for `--plan` (then nothing is written).

    Returns the samples taken (uri, part, vectors, population, seconds, role, stored).
    """
    try:
        if plan is None or not plan.applied:
            return []
        write_retrying(store, lambda conn: sync_detected_bindings(conn, scan.specs))
        if not isinstance(connector, VectorSampler):
            return []
        config = connector.config
        profile = bool(getattr(config, "profile", False))
        rebaseline = bool(getattr(config, "rebaseline", False))
        default = PROFILE_SAMPLE_SIZE if profile else DEFAULT_SAMPLE_SIZE
        size = int(getattr(config, "sample_size", None) or env_sample_size() or default)
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
