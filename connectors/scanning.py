"""One scan of one source: connector, plan or apply (with bindings), then baselines.

`steward scan` and `steward demo` both go through `run_scan`. What a scan
writes (versions, edges, aliases, detected model bindings) is written in one
transaction: a database error leaves nothing of the scan behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from catalog.apply import Plan, apply_in, plan, write_retrying
from catalog.db import Store, write_failure
from catalog.embeddings import sync_detected_bindings
from catalog.errors import CatalogWriteFailed
from catalog.identity import redact_url
from catalog.runs import record_runs, run_marks
from connectors.base import Progress, Scan, env_sample_size
from connectors.registry import for_scan
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
            "samples": self.baselines,
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
    env_sample_size()  # a bad $STEWARD_SAMPLE_SIZE is refused before anything is read
    connector = for_scan(url, **options)
    result = connector.scan(progress)
    store = open_store()
    source = result.origin or redact_url(url)
    if result.read_runs is not None and not plan_only:
        with store.engine.connect() as conn:
            marks = run_marks(conn, result.runs_namespace)
        result.extend(result.read_runs(marks))
    if plan_only:
        outcome = plan(store, result.specs, result.scopes, origin=result.origin)
    else:
        try:
            outcome = write_scan(store, result)
        except DBAPIError as err:
            raise CatalogWriteFailed(
                f"{source}: {write_failure(err)}", hint="nothing of the scan was written"
            ) from err
    baselines = after_apply(store, connector, result, None if plan_only else outcome)
    return ScanOutcome(result, outcome, baselines, source)


def write_scan(store: Store, scan: Scan) -> Plan:
    """Apply a scan's specs and record the model bindings they detect, in one transaction."""

    def work(conn: Connection) -> Plan:
        applied = apply_in(conn, scan.specs, scan.scopes, scan.origin)
        sync_detected_bindings(conn, scan.specs)
        if scan.runs or scan.read_runs is not None:
            applied.runs = record_runs(conn, scan.runs)
        return applied

    return write_retrying(store, work)
