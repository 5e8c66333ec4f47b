"""Running the rules and keeping their findings: first seen, last seen, resolved."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, TextClause, insert, select, text, update
from sqlmodel import Session, col
from sqlmodel import select as sm_select

from catalog import acks, coverage
from catalog.db import Store
from catalog.errors import InvalidInput
from catalog.models import Alias, Asset, utcnow
from catalog.models import Finding as FindingRow
from lineage import incremental as incr
from lineage.below import Below
from lineage.collector import cycle_collection_paused
from lineage.facts import load_facts
from lineage.rules import (
    RULES,
    SEVERITIES,
    Finding,
    Settings,
    at_risk_of,
    evaluate,
    mark_at_risk,
    shown_at_risk,
    sort_findings,
)

TABLE = FindingRow.__table__  # type: ignore[attr-defined]
ALIAS = Alias.__table__  # type: ignore[attr-defined]
ASSET = Asset.__table__  # type: ignore[attr-defined]


def check_rules(names: list[str] | None) -> list[str]:
    unknown = sorted(set(names or []) - set(RULES))
    if unknown:
        raise InvalidInput(f"unknown rule '{unknown[0]}'", hint=f"rules: {', '.join(RULES)}")
    return list(names or RULES)


def check(
    store: Store, rules: list[str] | None = None, settings: Settings | None = None
) -> list[Finding]:
    """Run the rules over the catalog and record what they find (one transaction)."""
    return check_all(store, rules, settings)[0]


def check_all(
    store: Store, rules: list[str] | None = None, settings: Settings | None = None
) -> tuple[list[Finding], dict[str, dict[str, Any]]]:
    """`check`, and the lineage coverage by kind, kept with the check for the trend."""
    done = run_check(store, rules, settings)
    return done.findings, done.figures


@dataclass
class CheckRun:
    """What a check found, and how it went about it."""

    findings: list[Finding]
    #: The lineage coverage by kind (an incremental check does not compute it: {}).
    figures: dict[str, dict[str, Any]]
    incremental: bool = False
    #: Why a check asked to be incremental ran in full.
    full_because: str | None = None
    #: The assets whose findings were found (again): all of them in a full check.
    evaluated: int = 0


def run_check(
    store: Store,
    rules: list[str] | None = None,
    settings: Settings | None = None,
    incremental: bool = False,
) -> CheckRun:
    """Run the rules and record their findings; `incremental`: only where the catalog
    changed since the last check (`lineage.incremental`), else in full, saying why."""
    with cycle_collection_paused():
        return _run_check(store, check_rules(rules), settings or Settings(), incremental)


def _run_check(store: Store, names: list[str], settings: Settings, incremental: bool) -> CheckRun:
    if not incremental:
        return _full(store, names, settings)
    if set(names) != set(RULES):
        raise InvalidInput(
            "an incremental check runs every rule", hint="leave out --rule, or --incremental"
        )
    with store.write() as conn:  # committed before the catalog is read
        state = incr.load_state(conn)
        changes = incr.claim(conn, state)
        if state is None:
            why = "no earlier check of every rule to start from"
        elif state.forgotten:
            why = state.forgotten
        elif state.settings != _settings_json(settings):
            why = "the settings differ from the last check's"
        elif incr.too_many(conn, changes):
            why = f"over {incr.FULL_ABOVE:.0%} of the assets changed"
        else:
            why = None
    if why is not None:
        done = _full(store, names, settings, changes)
        done.full_because = why
        return done
    return _incremental(store, settings, changes, dict(state.trained_on))


def _settings_json(settings: Settings) -> dict[str, Any]:
    return {
        "alpha": settings.alpha,
        "skew_threshold": settings.skew_threshold,
        "severities": dict(sorted(settings.severities.items())),
    }


def _full(
    store: Store, names: list[str], settings: Settings, changes: incr.Changes | None = None
) -> CheckRun:
    every = set(names) == set(RULES)
    if every and changes is None:
        # Claimed before the facts are read: what changes after this is seen by the next check.
        with store.write() as conn:
            changes = incr.claim(conn, incr.load_state(conn))
    with store.engine.connect() as conn, Session(bind=conn) as session:
        facts = load_facts(conn, session)
    found = evaluate(facts, names, settings)
    figures = coverage.coverage(facts.coverage) if facts.coverage is not None else {}
    trained = incr.trained_on_of((a.id, a.definition) for a in facts.assets.values())
    evaluated, graph = len(facts.assets), facts.graph
    del facts  # what errors put at risk needs the graph alone: the rest goes first
    mark_at_risk(found, graph)
    del graph
    findings = sort_findings(found)
    with store.write() as conn:
        record(conn, findings, names)
        coverage.record(conn, figures)
        acks.reopen_changed(conn, open_digests(conn))
        held = acks.active(conn)
        if every:
            assert changes is not None
            incr.consume(conn, changes)
            incr.save_state(conn, _settings_json(settings), trained, changes)
        else:  # the other rules' findings are as of an earlier check: start over next time
            incr.forget_state(conn)
    for f in findings:
        ack = held.get(f.id)
        f.acknowledged = ack.to_json() if ack is not None else None
    return CheckRun(findings, figures, evaluated=evaluated)


def _incremental(
    store: Store, settings: Settings, changes: incr.Changes, trained_on: dict[str, list[str]]
) -> CheckRun:
    with store.engine.connect() as conn, Session(bind=conn) as session:
        scope = incr.scope(conn, changes, trained_on)
        facts = load_facts(conn, session, scope.load, judged=scope.ids)
        found = [f for f in evaluate(facts, None, settings) if f.assets[0] in scope.owners]
        # What errors put at risk: of the errors found, and of the stored errors whose
        # part of the graph holds a change.
        query = (
            select(TABLE.c.id, TABLE.c.rule, TABLE.c.assets, TABLE.c.at_risk, TABLE.c.at_risk_count)
            .where(TABLE.c.status == "open")
            .where(TABLE.c.severity == "error")
        )
        if not scope.touched:  # the graph is as it was: only the errors found again
            ids = sorted(f.id for f in found if f.severity == "error")
            rows = [
                r
                for i in range(0, len(ids), 500)
                for r in conn.execute(query.where(TABLE.c.id.in_(ids[i : i + 500])))
            ]
        else:
            rows = list(conn.execute(query))
        errors_stored = {row.id: row for row in rows if row.assets}
        moved = incr.risks_moved(conn, list(errors_stored.values()), scope.touched)
        stored = [
            r for i, r in errors_stored.items() if i in moved and r.assets[0] not in scope.owners
        ]
        errors = []
        for f in found:
            if f.severity != "error":
                continue
            before = errors_stored.get(f.id)
            if before is not None and f.id not in moved and list(before.assets) == f.assets:
                # The same assets in the same graph.
                f.at_risk = shown_at_risk(before.at_risk or [])
                f.at_risk_count = before.at_risk_count
            else:
                errors.append(f)
        starts = {a for f in errors for a in f.assets} | {a for r in stored for a in r.assets}
        below = Below.walk(conn, starts)
    again = [Finding(r.rule, "error", list(r.assets), "", {}, "") for r in stored]
    counted = at_risk_of(errors + again, below)  # one pass below them all
    for f, (count, nearest) in zip(errors, counted[: len(errors)], strict=True):
        f.at_risk_count, f.at_risk = count, nearest
    risks = {}
    for row, (count, now) in zip(stored, counted[len(errors) :], strict=True):
        if now != row.at_risk or count != row.at_risk_count:
            risks[row.id] = {"at_risk": now, "at_risk_count": count}
    kept = {k: v for k, v in trained_on.items() if int(k) not in changes.assets}
    kept.update(
        incr.trained_on_of(
            (a.id, a.definition) for a in facts.assets.values() if a.id in changes.assets
        )
    )
    with store.write() as conn:
        record(conn, found, list(RULES), owners=scope.owners)
        for finding_id, risk in sorted(risks.items()):
            conn.execute(update(TABLE).where(TABLE.c.id == finding_id).values(**risk))
        acks.reopen_changed(conn, open_digests(conn))
        held = acks.active(conn)
        incr.consume(conn, changes)
        incr.save_state(conn, _settings_json(settings), dict(sorted(kept.items())), changes)
        findings = _open_findings(conn)
    for f in findings:
        ack = held.get(f.id)
        f.acknowledged = ack.to_json() if ack is not None else None
    return CheckRun(findings, {}, incremental=True, evaluated=len(scope.ids))


@dataclass
class StoredFinding(Finding):
    """A finding as recorded (its id is stored, not derived)."""

    stored_id: str = ""

    @property
    def id(self) -> str:
        return self.stored_id


def _open_findings(conn: Connection) -> list[Finding]:
    rows = conn.execute(select(TABLE).where(TABLE.c.status == "open"))
    return sort_findings(
        [
            StoredFinding(
                rule=r.rule,
                severity=r.severity,
                assets=list(r.assets),
                title=r.title,
                evidence=r.evidence,
                remedy=r.remedy,
                at_risk=shown_at_risk(r.at_risk or []),
                at_risk_count=r.at_risk_count,
                stored_id=r.id,
            )
            for r in rows
        ]
    )


def open_digests(conn: Connection) -> dict[str, str]:
    """The evidence digest of every open finding, by id."""
    query = select(TABLE.c.id, TABLE.c.severity, TABLE.c.evidence).where(TABLE.c.status == "open")
    return {row.id: acks.evidence_digest(row.severity, row.evidence) for row in conn.execute(query)}


def record(
    conn: Connection,
    findings: list[Finding],
    rules_run: list[str],
    owners: set[str] | None = None,
) -> None:
    """Upsert what was found; resolve the open findings of these rules that were not
    (`owners`: only those about these assets, the others were not looked for). Every
    open finding was seen by this check: its `last_seen` is now."""
    now = utcnow()
    existing = {row.id: row.status for row in conn.execute(select(TABLE.c.id, TABLE.c.status))}
    follows = _followed(conn, [f for f in findings if f.id not in existing])
    found = set()
    for f in findings:
        found.add(f.id)
        values = {
            "rule": f.rule,
            "severity": f.severity,
            "status": "open",
            "title": f.title,
            "assets": f.assets,
            "evidence": f.evidence,
            "remedy": f.remedy,
            "at_risk": f.at_risk,
            "at_risk_count": f.at_risk_count,
            "last_seen": now,
            "resolved_at": None,
        }
        if f.id in existing:
            conn.execute(update(TABLE).where(TABLE.c.id == f.id).values(**values))
        else:
            before = follows.get(f.id)
            first_seen = before.first_seen if before is not None else now
            conn.execute(insert(TABLE).values(id=f.id, first_seen=first_seen, **values))
            if before is not None:
                acks.follow(conn, before.id, f.id, f.severity == before.severity)
    stale = [
        row.id
        for row in conn.execute(
            select(TABLE.c.id, TABLE.c.assets)
            .where(TABLE.c.status == "open")
            .where(TABLE.c.rule.in_(rules_run))
        )
        if row.id not in found and (owners is None or (row.assets or [""])[0] in owners)
    ]
    if owners is not None:
        conn.execute(
            update(TABLE)
            .where(TABLE.c.status == "open")
            .where(TABLE.c.rule.in_(rules_run))
            .values(last_seen=now)
        )
    if stale:
        conn.execute(
            update(TABLE).where(TABLE.c.id.in_(stale)).values(status="resolved", resolved_at=now)
        )


@dataclass(frozen=True)
class _Before:
    """An open finding about a name since merged into another asset."""

    id: str
    first_seen: Any
    severity: str


def _followed(conn: Connection, new: list[Finding]) -> dict[str, _Before]:
    """The open findings that new ones continue after a merge (`catalog.merge`), by new id.

    Two names found to be one asset: a finding of a rule about the merged-away
    name, found again by that rule about the kept one, is one condition under
    another id. It keeps its first sighting and its acknowledgement (its
    evidence names the asset and its renumbered versions anew: a merge is not
    a change of the condition).
    """
    if not new:
        return {}
    merged: dict[str, str] = dict(
        conn.execute(
            select(ALIAS.c.uri, ASSET.c.uri)
            .join(ASSET, ASSET.c.id == ALIAS.c.asset_id)
            .where(ALIAS.c.merged_at.is_not(None))
        ).all()
    )
    if not merged:
        return {}
    rows = conn.execute(
        select(
            TABLE.c.id, TABLE.c.rule, TABLE.c.assets, TABLE.c.severity, TABLE.c.first_seen
        ).where(TABLE.c.status == "open")
    )
    before: dict[tuple[str, tuple[str, ...]], _Before] = {}
    for row in rows:
        moved = tuple(merged.get(u, u) for u in row.assets)
        if list(moved) != list(row.assets):
            before[(row.rule, moved)] = _Before(row.id, row.first_seen, row.severity)
    return {
        f.id: before[(f.rule, tuple(f.assets))] for f in new if (f.rule, tuple(f.assets)) in before
    }


def finding_json(
    row: FindingRow,
    ack: acks.Ack | None = None,
    ended: dict[str, Any] | None = None,
) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "id": row.id,
        "rule": row.rule,
        "severity": row.severity,
        "status": row.status,
        "title": row.title,
        "assets": row.assets,
        "evidence": row.evidence,
        "remedy": row.remedy,
        "at_risk": shown_at_risk(row.at_risk or []),
        "at_risk_count": row.at_risk_count,
        "first_seen": iso(row.first_seen),
        "last_seen": iso(row.last_seen),
        "resolved_at": iso(row.resolved_at),
        "acknowledged": ack.to_json() if ack is not None else None,
        "last_acknowledgement": ended if ack is None else None,
    }


def list_findings(
    session: Session, include_resolved: bool = False, naming: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """The findings, most important first; `naming`: only those that name one of these
    asset URIs (about it, citing it, or among the nearest it puts at risk: `at_risk`),
    chosen by the database."""
    query = sm_select(FindingRow)
    if not include_resolved:
        query = query.where(FindingRow.status == "open")
    if naming is not None:
        query = query.where(_naming(session.connection(), sorted(naming)))
    rows = list(session.exec(query.order_by(col(FindingRow.rule), col(FindingRow.id))))
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    rows.sort(key=lambda r: (r.status != "open", order.get(r.severity, 9), r.rule, r.assets))
    conn = session.connection()
    held, ended = acks.active(conn), acks.last_ended(conn)
    return [finding_json(r, held.get(r.id), ended.get(r.id)) for r in rows]


def _naming(conn: Connection, uris: list[str]) -> TextClause:
    """A finding names one of `uris` in its assets or in its `at_risk` list."""
    if conn.dialect.name == "postgresql":
        return text(
            "EXISTS (SELECT 1 FROM json_array_elements_text(CASE WHEN"
            " json_typeof(finding.assets) = 'array' THEN finding.assets ELSE '[]' END) a(uri)"
            " WHERE a.uri = ANY(:uris))"
            " OR EXISTS (SELECT 1 FROM json_array_elements(CASE WHEN"
            " json_typeof(finding.at_risk) = 'array' THEN finding.at_risk ELSE '[]' END) r(item)"
            " WHERE r.item ->> 'uri' = ANY(:uris))"
        ).bindparams(uris=uris)
    among = "IN (SELECT value FROM json_each(:uris))"
    return text(
        f"EXISTS (SELECT 1 FROM json_each(finding.assets) a WHERE a.value {among})"
        " OR EXISTS (SELECT 1 FROM json_each(finding.at_risk) r"
        f" WHERE json_extract(r.value, '$.uri') {among})"
    ).bindparams(uris=json.dumps(uris))


def fails(findings: list[Finding], level: str) -> bool:
    """Whether a finding at or above LEVEL is open and not acknowledged."""
    threshold = SEVERITIES.index(level)
    return any(SEVERITIES.index(f.severity) >= threshold and not f.acknowledged for f in findings)
