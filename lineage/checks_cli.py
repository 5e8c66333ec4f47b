"""`steward lineage ...`, `steward check` and `steward findings`."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.engine import Connection

from catalog.cli import AppContext
from catalog.output import echo_json, echo_table, info
from catalog.queries import resolve
from lineage.findings import check as run_check
from lineage.findings import fails, list_findings
from lineage.graph import LineageGraph
from lineage.rules import RULES, SEVERITIES

pass_app = click.make_pass_decorator(AppContext)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")


def _graph(conn: Connection) -> LineageGraph:
    return LineageGraph.from_connection(conn)


@click.group()
def lineage() -> None:
    """What feeds what: walk the lineage graph from an asset."""


def _how(kinds: list[dict[str, Any]] | None) -> str:
    """`(DIRECT/AGGREGATION, masked)`: how a field comes from another, where told."""
    if not kinds:
        return ""
    parts = ["/".join(str(k[x]) for x in ("type", "subtype") if k.get(x)) for k in kinds]
    if any(k.get("masking") for k in kinds):
        parts.append("masked")
    return f" ({', '.join(p for p in parts if p)})"


def _walk(
    app: AppContext,
    asset: str,
    direction: str,
    depth: int | None,
    budget: float,
    with_fields: bool,
    as_json: bool,
) -> None:
    store = app.store()
    with store.session() as session:
        uri = resolve(session, asset).uri
    with store.engine.connect() as conn:
        graph = _graph(conn)
    walk = getattr(graph, direction)(uri, depth=depth, budget=budget)
    if as_json:
        echo_json(walk.to_json(with_fields))
        return
    click.echo(f"{direction} of {uri}")
    for node, distance in walk.nodes:
        state = " (unresolved)" if node.unresolved else ""
        click.echo(f"{'  ' * distance}{node.uri}  [{node.kind}]{state}")
    if with_fields:
        for edge in walk.edges:
            for target, sources in sorted(edge.fields.items()):
                how = edge.transformations.get(target, {})
                click.echo(
                    f"  {edge.target}.{target} <- "
                    + ", ".join(f"{edge.source}.{s}{_how(how.get(s))}" for s in sources)
                )
    if walk.partial:
        info(f"partial: {walk.reason}")


def _walk_command(direction: str) -> click.Command:
    @click.command(
        name=direction,
        help=f"""List what is {direction} of ASSET, nearest first.

    ASSET is a URI or any unambiguous suffix of one. --depth limits the
    hops; --fields shows field-level lineage where it is known. An answer cut
    short by the depth or the time budget says so (`partial`).
    """,
    )
    @click.argument("asset")
    @click.option("--depth", type=click.IntRange(min=1), help="At most this many hops.")
    @click.option(
        "--budget",
        type=click.FloatRange(min=0.01),
        default=5.0,
        show_default=True,
        help="Seconds the walk may take.",
    )
    @click.option(
        "--fields",
        "with_fields",
        is_flag=True,
        help="Show field-level lineage and its transformations (masked ones marked).",
    )
    @JSON_OPTION
    @pass_app
    def command(
        app: AppContext,
        asset: str,
        depth: int | None,
        budget: float,
        with_fields: bool,
        as_json: bool,
    ) -> None:
        _walk(app, asset, direction, depth, budget, with_fields, as_json)

    return command


lineage.add_command(_walk_command("upstream"))
lineage.add_command(_walk_command("downstream"))


@lineage.command()
@click.argument("source")
@click.argument("target")
@JSON_OPTION
@pass_app
def path(app: AppContext, source: str, target: str, as_json: bool) -> None:
    """The shortest lineage path from SOURCE to TARGET (exit code 2 if none)."""
    store = app.store()
    with store.session() as session:
        a, b = resolve(session, source).uri, resolve(session, target).uri
    with store.engine.connect() as conn:
        found = _graph(conn).path(a, b)
    if as_json:
        echo_json({"source": a, "target": b, "path": found})
        return
    if found is None:
        from catalog.errors import NotFound

        raise NotFound(f"no lineage path from {a} to {b}")
    click.echo(" -> ".join(found))


def _print_findings(rows: list[dict[str, Any]]) -> None:
    echo_table(
        ["SEVERITY", "RULE", "FINDING"],
        [(r["severity"], r["rule"], r["title"]) for r in rows],
    )


@click.command()
@click.option(
    "--rule",
    "rules",
    multiple=True,
    type=click.Choice(list(RULES)),
    help="Run only this rule (repeatable).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["info", "warning", "error"]),
    default="error",
    show_default=True,
    help="Exit 1 when a finding at or above this severity exists.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.01,
    show_default=True,
    help="False-positive rate of the drift and skew tests.",
)
@click.option(
    "--skew-threshold",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="Distance above which feature values are skewed.",
)
@JSON_OPTION
@pass_app
def check(
    app: AppContext,
    rules: tuple[str, ...],
    fail_on: str,
    alpha: float,
    skew_threshold: float,
    as_json: bool,
) -> None:
    """Run the governance rules and print what they find.

    \b
    Rules: stale_embeddings, embedding_mismatch, embedding_drift,
    source_newer_than_index, feature_definition_skew, feature_value_skew,
    breaking_schema_change, unresolved_reference, dropped_dataset_read.

    Findings are stored with first and last seen; one no longer found is
    resolved. Everything downstream of an error is marked at risk. Exit code
    1 when a finding at or above --fail-on exists, 0 when none, 2 on error:
    use it to gate CI.
    """
    from lineage.rules import Settings

    findings = run_check(
        app.store(), list(rules) or None, Settings(alpha=alpha, skew_threshold=skew_threshold)
    )
    if as_json:
        echo_json([f.to_json() for f in findings])
    else:
        _print_findings([f.to_json() for f in findings])
        for f in findings:
            if f.at_risk:
                info(f"{f.title}: puts at risk " + ", ".join(r["uri"] for r in f.at_risk[:5]))
    if not app.quiet:
        counts = {s: sum(f.severity == s for f in findings) for s in SEVERITIES}
        info("findings: " + ", ".join(f"{n} {s}" for s, n in reversed(counts.items())))
    if fails(findings, fail_on):
        click.get_current_context().exit(1)


@click.command()
@click.option("--all", "include_resolved", is_flag=True, help="Also resolved findings.")
@JSON_OPTION
@pass_app
def findings(app: AppContext, include_resolved: bool, as_json: bool) -> None:
    """List the open findings of the last `steward check` (with --all, resolved ones too)."""
    with app.store().session() as session:
        rows = list_findings(session, include_resolved)
    if as_json:
        echo_json(rows)
    else:
        _print_findings(rows)
