"""`steward scan URL`: read a source through its connector, then plan or apply."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from catalog.cli import AppContext
from catalog.output import echo_json, info
from catalog.render import echo_plan, summary_line
from connectors.base import Progress
from connectors.scanning import run_scan

pass_app = click.make_pass_decorator(AppContext)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Progress | None]:
    """A progress bar on stderr, only when stderr is a terminal and not --quiet."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    bar: Any = None

    def update(done: int, total: int | None, label: str) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total or 0, label="scanning", file=sys.stderr)
            bar.__enter__()
        bar.label = label[:40]
        bar.update(done - bar.pos)

    try:
        yield update
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


@click.command()
@click.argument("url")
@click.option(
    "--plan",
    "plan_only",
    is_flag=True,
    help="Show what would change (new assets, versions, diffs, deletions); write nothing.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the result (summary and changes) as JSON on stdout.",
)
@click.option(
    "--schema",
    "schemas",
    multiple=True,
    metavar="SCHEMA",
    help="PostgreSQL: scan only this schema (repeatable).",
)
@click.option(
    "--api-key",
    metavar="KEY",
    help="Qdrant, Pinecone: API key (default: $STEWARD_QDRANT_API_KEY, "
    "$STEWARD_PINECONE_API_KEY). Never stored.",
)
@click.option("--https", is_flag=True, help="Qdrant: connect with TLS (same as qdrants://).")
@click.option(
    "--profile",
    is_flag=True,
    help="Qdrant, PostgreSQL, Pinecone: take the larger sample of vectors (2000 a part, not 1000).",
)
@click.option(
    "--sample-size",
    type=click.IntRange(min=1),
    metavar="N",
    help="Qdrant, PostgreSQL, Pinecone: vectors each scan samples per vector part "
    "(default 1000, 2000 with --profile; also $STEWARD_SAMPLE_SIZE).",
)
@click.option(
    "--rebaseline",
    is_flag=True,
    help="Qdrant, PostgreSQL, Pinecone: make this scan's samples the drift baselines "
    "(recorded: who, when).",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="OpenML: openml-python's cache directory (default: openml-python's own).",
)
@pass_app
def scan(app: AppContext, url: str, plan_only: bool, as_json: bool, **options: Any) -> None:
    """Register and version every asset in the source at URL.

    \b
    URL forms:
      postgres://USER[:PASSWORD]@HOST:PORT/DB   tables, views, pgvector columns
      qdrant://HOST:PORT, qdrants://HOST:PORT   Qdrant collections
      qdrant+local:///ABS/PATH                  Qdrant local storage
      features.toml or a directory of them     native feature definitions
      feast://PATH/TO/REPO                     a Feast repository
      mlflow+file:///ABS/PATH/mlruns           an MLflow file store
      mlflow+sqlite:///ABS/PATH/mlflow.db      an MLflow SQLite store
      mlflow://HOST:PORT, mlflows://HOST:PORT  an MLflow tracking server
      pinecone://PROJECT                       Pinecone indexes (api.pinecone.io)
      pinecone+http://HOST:PORT                Pinecone Local (pinecone:// + host: TLS)
      openml://ID[,ID...], openml+test://ID    OpenML datasets (d/ID), tasks (t/ID),
                                               runs (r/ID)

    A connector's table of steward.toml (e.g. [postgres]: socket names,
    vector-store layouts) sets its options under those given here.

    Re-scanning an unchanged source writes nothing; a changed asset gets a new
    version with a diff; an asset the source no longer has is marked deleted.
    Credentials in URL are used to connect and never stored or printed.
    """
    with progress_bar(not app.quiet and not as_json) as progress:
        done = run_scan(app.store, url, plan_only=plan_only, progress=progress, **options)
    for warning in done.scan.warnings:
        info(f"warning: {warning}")
    if as_json:
        echo_json(done.to_json())
        return
    outcome, source, baselines = done.plan, done.source, done.baselines
    if plan_only:
        echo_plan(outcome)
    if not app.quiet:
        info(summary_line(outcome, source))
        for b in baselines:
            part = f" ({b['part']})" if b["part"] else ""
            shown = f"{b['vectors']} of {b['population']} vectors of {b['uri']}{part}"
            kept = "" if b["stored"] else ", unchanged"
            info(f"{b['role']} sample: {shown} in {b['seconds']:.2f} s{kept}")
