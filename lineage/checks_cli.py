"""`steward lineage ...`, `steward check` and `steward findings`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import click

from catalog.cli import AppContext
from catalog.coverage import KINDS
from catalog.errors import InvalidInput
from catalog.output import echo, echo_json, echo_json_items, echo_table, info
from catalog.queries import resolve
from lineage.findings import fails, list_findings, run_check
from lineage.rules import RULES, SEVERITIES, at_risk_total
from lineage.sqlgraph import DEFAULT_LIMIT, SqlGraph

pass_app = click.make_pass_decorator(AppContext)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")


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
    limit: int,
    with_fields: bool,
    as_json: bool,
) -> None:
    store = app.reading_store()
    with store.session() as session:
        uri = resolve(session, asset).uri
    with store.engine.connect() as conn:
        walk = getattr(SqlGraph(conn), direction)(uri, depth=depth, budget=budget, limit=limit)
    if as_json:
        echo_json(walk.to_json(with_fields))
        return
    marks = _finding_marks(store)
    echo(f"{direction} of {uri}{marks.get(uri, '')}")
    # How each node is tied to the walk: the kinds of its edges toward the start.
    via: dict[str, set[str]] = {}
    for edge in walk.edges:
        near = edge.source if direction == "upstream" else edge.target
        via.setdefault(near, set()).add(edge.kind)
    for node, distance in walk.nodes:
        if node.uri == uri:
            continue
        state = " (unresolved)" if node.unresolved else ""
        kinds = ", ".join(sorted(via.get(node.uri, ())))
        edge = f" --{kinds}-->" if direction == "upstream" else f" <--{kinds}--"
        mark = marks.get(node.uri, "")
        echo(f"{'  ' * distance}{node.uri}  [{node.kind}]{state}{edge if kinds else ''}{mark}")
    if with_fields:
        for edge in walk.edges:
            for target, sources in sorted(edge.fields.items()):
                how = edge.transformations.get(target, {})
                echo(
                    f"  {edge.target}.{target} <- "
                    + ", ".join(f"{edge.source}.{s}{_how(how.get(s))}" for s in sources)
                )
    if walk.partial:
        info(f"partial: {walk.reason}")


def _finding_marks(store: Any) -> dict[str, str]:
    """`  ! error stale_embeddings` after each asset with open findings (of the last check)."""
    with store.session() as session:
        rows = list_findings(session)
    marks: dict[str, list[str]] = {}
    for row in rows:
        acked = " (acknowledged)" if row.get("acknowledged") else ""
        for asset in row["assets"][:1]:
            marks.setdefault(asset, []).append(f"{row['severity']} {row['rule']}{acked}")
    return {uri: "  ! " + "; ".join(found) for uri, found in marks.items()}


def _walk_command(direction: str) -> click.Command:
    @click.command(
        name=direction,
        help=f"""List what is {direction} of ASSET, nearest first.

    ASSET is a URI or any unambiguous suffix of one (job:ASSET or
    dataset:ASSET to choose between a job and a dataset named alike). --depth limits the
    hops, --limit the nodes (whole hops only); --fields shows field-level
    lineage where it is known. An answer cut short by the depth, the node
    limit or the time budget says so (`partial`). The walk runs in the
    catalog's database, reading only what it reaches.
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
        "--limit",
        type=click.IntRange(min=1),
        default=DEFAULT_LIMIT,
        show_default=True,
        help="At most this many nodes: the hop that would pass it is left out.",
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
        limit: int,
        with_fields: bool,
        as_json: bool,
    ) -> None:
        _walk(app, asset, direction, depth, budget, limit, with_fields, as_json)

    return command


lineage.add_command(_walk_command("upstream"))
lineage.add_command(_walk_command("downstream"))


@lineage.command()
@click.argument("source")
@click.argument("target")
@JSON_OPTION
@pass_app
def path(app: AppContext, source: str, target: str, as_json: bool) -> None:
    """The shortest lineage path from SOURCE to TARGET (exit code 2 if none).

    Of several shortest paths, the one whose URIs come first in order."""
    store = app.reading_store()
    with store.session() as session:
        a, b = resolve(session, source).uri, resolve(session, target).uri
    with store.engine.connect() as conn:
        found = SqlGraph(conn).path(a, b)
    if as_json:
        echo_json({"source": a, "target": b, "path": found})
        return
    if found is None:
        from catalog.errors import NotFound

        raise NotFound(f"no lineage path from {a} to {b}")
    echo(" -> ".join(found))


def _state(row: dict[str, Any]) -> str:
    ack = row.get("acknowledged")
    if ack:
        until = f" until {ack['until'][:16]}" if ack.get("until") else ""
        return f"acknowledged by {ack['by']}{until}"
    if row.get("status") == "resolved":
        return f"resolved {str(row.get('resolved_at') or '')[:10]}".strip()
    last = row.get("last_acknowledgement")
    if last and last.get("ended_because") in ("the condition changed", "expired"):
        return f"re-opened: {last['ended_because']}"
    return "open"


def risk_line(at_risk: list[dict[str, Any]], count: int, shown: int = 5) -> str:
    """`a, b, c, d, e and 1,229 more`: the nearest assets at risk and how many others."""
    names = [r["uri"] for r in at_risk[:shown]]
    more = at_risk_total(count, at_risk) - len(names)
    return ", ".join(names) + (f" and {more:,} more" if more > 0 else "")


def _print_findings(rows: list[dict[str, Any]]) -> None:
    echo_table(
        ["ID", "SEVERITY", "RULE", "STATE", "FINDING", "REMEDY"],
        [
            (r["id"][:10], r["severity"], r["rule"], _state(r), r["title"], r["remedy"])
            for r in rows
        ],
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
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Pass on a catalog that holds no assets (by default that is an error, exit 2).",
)
@click.option(
    "--severity",
    "severities",
    multiple=True,
    metavar="RULE=LEVEL",
    help="Report a rule's findings at another severity, e.g. untracked_lineage=error (repeatable).",
)
@click.option(
    "--min-coverage",
    "minimums",
    multiple=True,
    metavar="KIND=PCT",
    help="Exit 1 when the lineage coverage of KIND (model, collection, vector_column, "
    "feature_set) is below PCT percent (repeatable).",
)
@click.option(
    "--coverage",
    "with_coverage",
    is_flag=True,
    help="With --json: print {findings, coverage} instead of the findings array.",
)
@click.option(
    "--incremental",
    is_flag=True,
    help="Look again only at what changed since the last check, and what depends on it "
    "(same findings; no coverage figures). Runs in full, saying why, when it cannot.",
)
@JSON_OPTION
@pass_app
def check(
    app: AppContext,
    rules: tuple[str, ...],
    fail_on: str,
    alpha: float,
    skew_threshold: float,
    allow_empty: bool,
    severities: tuple[str, ...],
    minimums: tuple[str, ...],
    with_coverage: bool,
    incremental: bool,
    as_json: bool,
) -> None:
    """Run the governance rules and print what they find.

    \b
    Rules: stale_embeddings, embedding_mismatch, embedding_drift,
    source_newer_than_index, feature_definition_skew, feature_value_skew,
    breaking_schema_change, unresolved_reference, dropped_dataset_read,
    untracked_lineage.

    Findings are stored with first and last seen; one no longer found is
    resolved. Everything downstream of an error is marked at risk. The lineage
    coverage (for each kind, the share of assets whose lineage reaches a
    source with nothing unknown on the way) is printed after the findings and
    stored with the check. Exit code 1 when an unacknowledged finding at or
    above --fail-on exists (see `steward findings ack`) or a coverage is below
    its --min-coverage, 0 when none, 2 on error: use it to gate CI. A catalog
    with no assets is an error (exit 2), so a gate pointed at the wrong
    catalog is never green; --allow-empty lets it pass.

    --incremental re-evaluates only the assets changed since the last check
    and those whose findings depend on them, and keeps the other stored
    findings: the same findings as a full check, faster on a large catalog.
    It runs every rule and computes no coverage figures (so not with --rule,
    --min-coverage or --coverage). With no earlier full check, other
    settings than the last check's, or most of the catalog changed, it runs
    in full and says why on stderr.
    """
    from lineage.rules import Settings

    if incremental and (rules or minimums or with_coverage):
        raise InvalidInput(
            "--incremental runs every rule and computes no coverage",
            hint="leave out --rule, --min-coverage and --coverage, or --incremental",
        )
    levels = _pairs(severities, "--severity", "RULE=LEVEL", list(RULES), list(SEVERITIES))
    floors = _pairs(minimums, "--min-coverage", "KIND=PCT", list(KINDS))
    minimum = {kind: _percent(value) for kind, value in floors.items()}
    store = app.store()
    empty = store.emptiness()
    if empty is not None:
        if not allow_empty:
            raise InvalidInput(
                f"catalog {store.shown_url} {empty}: nothing to check",
                hint="give --catalog, scan a source first, or pass --allow-empty",
            )
        info(f"note: catalog {store.shown_url} {empty}")
    settings = Settings(alpha=alpha, skew_threshold=skew_threshold, severities=levels)
    done = run_check(store, list(rules) or None, settings, incremental=incremental)
    findings, figures = done.findings, done.figures
    if done.incremental:
        info(f"incremental: {done.evaluated} changed or dependent asset(s) evaluated")
    elif done.full_because:
        info(f"full check: {done.full_because}")
    if as_json and with_coverage:
        echo_json({"findings": [f.to_json() for f in findings], "coverage": figures})
    elif as_json:
        echo_json_items(f.to_json() for f in findings)
    else:
        _print_findings([f.to_json() for f in findings])
        if figures:
            echo("")
            echo_table(
                ["COVERAGE", "TRACED", "ASSETS", "PERCENT", "UNTRACED"],
                [
                    (k, f["traced"], f["assets"], f"{f['percent']}%", ", ".join(f["untraced"][:3]))
                    for k, f in figures.items()
                ],
            )
        for f in findings:
            if f.at_risk:
                info(f"{f.title}: puts at risk {risk_line(f.at_risk, f.at_risk_count)}")
    below = [
        f"{kind} {figures[kind]['percent']}% < {floor:g}%"
        for kind, floor in minimum.items()
        if kind in figures and figures[kind]["percent"] < floor
    ]
    for kind in floors:
        if kind not in figures:
            info(f"note: no {kind} in the catalog; --min-coverage {kind} holds trivially")
    if not app.quiet:
        counts = {s: sum(f.severity == s for f in findings) for s in SEVERITIES}
        acked = sum(bool(f.acknowledged) for f in findings)
        note = f" ({acked} acknowledged)" if acked else ""
        info("findings: " + ", ".join(f"{n} {s}" for s, n in reversed(counts.items())) + note)
    if below:
        info("coverage below --min-coverage: " + ", ".join(below))
    if fails(findings, fail_on) or below:
        click.get_current_context().exit(1)


def _pairs(
    given: tuple[str, ...], option: str, form: str, keys: list[str], values: list[str] | None = None
) -> dict[str, str]:
    """`KEY=VALUE` options, checked: an unknown key or value is one line naming both."""
    out: dict[str, str] = {}
    for text in given:
        key, sep, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise InvalidInput(f"{option} {text!r}: write {form}")
        if key not in keys:
            raise InvalidInput(
                f"{option} {text!r}: unknown {form.split('=')[0].lower()} '{key}'",
                hint=", ".join(keys),
            )
        if values is not None and value not in values:
            raise InvalidInput(
                f"{option} {text!r}: unknown level '{value}'", hint=", ".join(values)
            )
        out[key] = value
    return out


def _percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise InvalidInput(f"--min-coverage: {text!r} is not a percentage from 0 to 100")
    return value


@click.group(invoke_without_command=True)
@click.option("--all", "include_resolved", is_flag=True, help="Also resolved findings.")
@JSON_OPTION
@click.pass_context
def findings(ctx: click.Context, include_resolved: bool, as_json: bool) -> None:
    """List the open findings of the last `steward check` (with --all, resolved ones too).

    \b
    Each row has the finding's ID (the first characters are enough to name
    it), severity, rule, state (open, acknowledged by whom and until when,
    re-opened and why, resolved and when), title and remedy.

    \b
    steward findings ack ID --reason TEXT [--until DATE]   accept a known condition
    steward findings unack ID                              withdraw that

    An acknowledged finding is shown, stored and reported, but does not fail
    `steward check --fail-on`. The acknowledgement ends by itself when the
    finding's severity or evidence changes, or when --until passes.
    """
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(AppContext)
    assert app is not None
    with app.reading_store().session() as session:
        rows = list_findings(session, include_resolved)
    if as_json:
        echo_json(rows)
    else:
        _print_findings(rows)


def _until(value: datetime | None) -> datetime | None:
    """A date alone means through that day (UTC)."""
    if value is None:
        return None
    if (value.hour, value.minute, value.second) == (0, 0, 0):
        value = value + timedelta(days=1)
    return value.replace(tzinfo=UTC)


@findings.command()
@click.argument("finding_id", metavar="ID")
@click.option("--reason", required=True, help="Why the condition is accepted (recorded, shown).")
@click.option(
    "--until",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    help="Until when (UTC; a date alone: through that day). Default: until the condition changes.",
)
@pass_app
def ack(app: AppContext, finding_id: str, reason: str, until: datetime | None) -> None:
    """Acknowledge the open finding ID: a known condition, accepted for now.

    ID is the finding's id or its first characters (at least 4). Recorded with
    the user (getpass) and the time; shown by `steward findings` and the
    report; `steward check --fail-on` no longer fails on it. It is re-opened
    when the finding's severity or evidence changes, or when --until passes.
    """
    from catalog.acks import acknowledge

    with app.reading_store().write() as conn:
        title, done = acknowledge(conn, finding_id, reason, _until(until))
    limit = f" until {done.until.isoformat()}" if done.until else ""
    info(f"acknowledged {done.finding_id} by {done.by}{limit}: {title}")


@findings.command()
@click.argument("finding_id", metavar="ID")
@pass_app
def unack(app: AppContext, finding_id: str) -> None:
    """Withdraw the acknowledgement of finding ID: it counts again for `check --fail-on`."""
    from catalog.acks import unacknowledge

    with app.reading_store().write() as conn:
        title = unacknowledge(conn, finding_id)
    info(f"acknowledgement withdrawn: {title}")
