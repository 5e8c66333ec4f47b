"""`steward gc`: keep the raw event log to a period or a size."""

from __future__ import annotations

from datetime import timedelta

import click

from catalog.cli import AppContext
from catalog.errors import InvalidInput
from catalog.models import utcnow
from catalog.output import echo_json, info
from lineage.cli import parse_size

pass_app = click.make_pass_decorator(AppContext)


@click.command()
@click.option(
    "--keep-days",
    type=click.FloatRange(min=0, max=36500, min_open=True),
    envvar="STEWARD_RAW_KEEP_DAYS",
    show_envvar=True,
    help="Keep the events received in the last N days (fractions allowed).",
)
@click.option(
    "--keep-size",
    envvar="STEWARD_RAW_KEEP_SIZE",
    show_envvar=True,
    help="Keep the newest events whose bodies add up to at most SIZE (e.g. 2GB).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be dropped; change nothing.")
@click.option(
    "--vacuum",
    is_flag=True,
    help="Then give the space back: VACUUM (SQLite: the file shrinks; PostgreSQL: the "
    "space is reused).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON on stdout.")
@pass_app
def gc(
    app: AppContext,
    keep_days: float | None,
    keep_size: str | None,
    dry_run: bool,
    vacuum: bool,
    as_json: bool,
) -> None:
    """Drop old raw OpenLineage events, keeping a period (--keep-days) or a size (--keep-size).

    \b
    With both, an event is dropped when it is older than the period or
    beyond the size. For an older event:
      - accepted: its body is dropped, its row and digest kept, so the same
        event sent again is still a duplicate (each event is accepted once,
        before and after a gc);
      - duplicate or rejected: its row is deleted.
    What events projected (runs, versions, edges) is not touched. The log of
    changes `steward check --incremental` reads is emptied: the next
    incremental check runs in full.

    \b
    `steward ingest --rebuild` needs the whole log: once a gc has dropped the
    body of an accepted event, it refuses (exit 2) and changes nothing.
    Run `steward gc` from cron, or set STEWARD_RAW_KEEP_DAYS.
    """
    from lineage import retention

    if keep_days is None and keep_size is None:
        raise InvalidInput(
            "say what to keep: --keep-days N or --keep-size SIZE", hint="steward gc --keep-days 30"
        )
    before = utcnow() - timedelta(days=keep_days) if keep_days is not None else None
    size = parse_size(keep_size, "--keep-size") if keep_size is not None else None
    store = app.store()
    done = retention.collect(store, received_before=before, keep_bytes=size, dry_run=dry_run)
    if vacuum and not dry_run:
        retention.vacuum(store)
    if as_json:
        echo_json(done.to_json())
    elif not app.quiet:
        verb = "would drop" if dry_run else "dropped"
        info(
            f"{verb} the bodies of {done.bodies} accepted events (digests kept) and "
            f"{done.deleted} duplicate or rejected events: {done.freed_bytes} bytes; "
            f"kept {done.kept} events ({done.kept_bytes} bytes); {verb} {done.check_changes} "
            "logged changes (the next check --incremental runs in full)"
        )
