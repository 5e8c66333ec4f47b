"""The report's context: a pure function from a `Snapshot` to plain, sorted data.

Same snapshot, same context, same bytes: everything is sorted, nodes are
numbered by their URI's rank, and the only times shown are the catalog's
own. Catalog text is never trusted: it goes to the template as data
(autoescaped) and to the page's script as JSON with `<`, `>`, `&` and the
two JavaScript line separators escaped (`embed_json`).
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlencode

from catalog.evidence import is_declared
from catalog.querying import resolve_query
from lineage.rules import at_risk_total
from reports.coverage_panel import panel as coverage_panel
from reports.load import Snapshot
from reports.names import display_names
from reports.view import edge_class, initial_view, kind_class

SCHEMA_VERSION = 1
SEVERITY_RANK = {"info": 1, "warning": 2, "error": 3}
SEVERITIES = ("error", "warning", "info")
#: At-risk paths drawn per finding when the page opens.
RISK_PATHS = 4
DEFAULT_DEPTH = 1
#: The largest depth the live page (`reports.web`) is asked for.
MAX_DEPTH = 10
TOP_FINDINGS = 6
#: Most telling rules first, for an AI stack: what silently degrades answers and predictions.
RULE_ORDER = (
    "stale_embeddings",
    "embedding_mismatch",
    "feature_definition_skew",
    "embedding_drift",
    "feature_value_skew",
    "source_newer_than_index",
    "breaking_schema_change",
    "dropped_dataset_read",
    "unresolved_reference",
)


def risk_count(finding: dict[str, Any]) -> int:
    """How many assets a finding puts at risk (its `at_risk` lists the nearest)."""
    return at_risk_total(finding.get("at_risk_count"), finding.get("at_risk"))


def importance(finding: dict[str, Any]) -> tuple[Any, ...]:
    """Sort key of a finding: unacknowledged first, then severity, rule, what it puts at risk."""
    rule = RULE_ORDER.index(finding["rule"]) if finding["rule"] in RULE_ORDER else len(RULE_ORDER)
    return (
        bool(finding.get("acknowledged")),  # accepted conditions after the ones that are not
        -SEVERITY_RANK.get(finding["severity"], 0),
        rule,
        -risk_count(finding),
        finding["title"],
        finding["id"],
    )


def asset_href(uri: str) -> str:
    """The in-page route of an asset's page (handled by `report.js`)."""
    return "#asset/" + quote(uri, safe="")


def embed_json(data: Any) -> str:
    """JSON that is safe inside `<script type="application/json">` (and deterministic)."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def when(iso: str | None) -> str:
    """`2026-11-20T02:04:10.123456Z` -> `2026-11-20 02:04:10 UTC` (the catalog's own time)."""
    if not iso:
        return ""
    return iso[:19].replace("T", " ") + " UTC"


def _text(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


# -- pieces of the context -------------------------------------------------------------


def _overview(snap: Snapshot, findings: list[dict[str, Any]]) -> dict[str, Any]:
    kinds = Counter(a["kind"] for a in snap.assets.values())
    sources: dict[str, dict[str, Any]] = {}
    for uri in sorted(snap.assets):
        a = snap.assets[uri]
        src = sources.setdefault(
            a["namespace"], {"namespace": a["namespace"], "count": 0, "kinds": Counter()}
        )
        src["count"] += 1
        src["kinds"][a["kind"]] += 1
        seen = a["observed_at"] or a["updated_at"]
        if seen and (src.get("last") is None or seen > src["last"]):
            src["last"], src["origin"] = seen, a["origin"]
    by_source = [
        {
            "namespace": s["namespace"],
            "count": s["count"],
            "kinds": ", ".join(f"{n} {k}" for k, n in sorted(s["kinds"].items())),
            "last": s.get("last"),
            "origin": s.get("origin"),
        }
        for s in sorted(sources.values(), key=lambda s: (-s["count"], s["namespace"]))
    ]
    scanned = [
        (a["observed_at"], a["origin"] or "")
        for a in snap.assets.values()
        if a["observed_at"] and not a["unresolved"] and a["origin"] and is_declared(a["origin"])
    ]
    last_scan = max(scanned) if scanned else None
    severity = Counter(f["severity"] for f in findings)
    return {
        "assets": len(snap.assets),
        "edges": len(snap.edges),
        "deleted": snap.deleted,
        "unresolved": sum(a["unresolved"] for a in snap.assets.values()),
        "by_kind": [
            {"kind": k, "count": n, "css": kind_class(k)}
            for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "by_source": by_source,
        "severity": [{"severity": s, "count": severity.get(s, 0)} for s in SEVERITIES],
        "findings": len(findings),
        "last_scan": {"at": last_scan[0], "origin": last_scan[1]} if last_scan else None,
        "events": snap.events or None,
    }


def _scope(snap: Snapshot, edges: int, served: bool) -> dict[str, Any] | None:
    """What a focused page holds of the catalog, and how to see more of it."""
    if snap.scope is None:
        return None
    scope = snap.scope
    deeper = scope.depth + 1
    out: dict[str, Any] = {
        "assets": len(snap.assets),
        "edges": edges,
        "catalog": scope.catalog,
        "depth": scope.depth,
        "cut": scope.cut,
        "deeper": deeper,
        "deeper_cli": f"steward report --focus {shlex.quote(scope.focus)} --depth {deeper}",
        "whole_cli": "steward report",
    }
    out["served"] = served
    if served and deeper <= MAX_DEPTH:
        out["deeper_href"] = "?" + urlencode({"focus": scope.focus, "depth": deeper})
    return out


def _named(text: str, uris: list[str], shown: dict[str, str]) -> str:
    """`text` with the URIs it quotes replaced by their display names (longest first)."""
    for uri in sorted(set(uris), key=lambda u: (-len(u), u)):
        if uri in shown and uri in text:
            text = text.replace(uri, shown[uri])
    return text


def _acknowledged(ack: dict[str, Any] | None) -> str | None:
    """One line: who accepted the finding, when, why and until when."""
    if not ack:
        return None
    until = f", until {ack['until']}" if ack.get("until") else ""
    return f"Acknowledged by {ack['by']} on {ack['at']}{until}: {ack['reason']}"


def _finding_rows(
    snap: Snapshot, index: dict[str, int], shown: dict[str, str]
) -> list[dict[str, Any]]:
    def ref(uri: str) -> dict[str, Any]:
        return {
            "uri": uri,
            "name": shown.get(uri, uri),
            "href": asset_href(uri) if uri in index else None,
        }

    rows = []
    for f in snap.findings:
        at_risk = sorted(f.get("at_risk") or [], key=lambda r: (len(r.get("path", [])), r["uri"]))
        quoted = [*f["assets"], *(r["uri"] for r in at_risk)]
        rows.append(
            {
                "id": f["id"],
                "anchor": "finding-" + f["id"],
                "severity": f["severity"],
                "rule": f["rule"],
                "title": _named(f["title"], quoted, shown),
                "remedy": _named(f["remedy"], quoted, shown),
                "acknowledged": _acknowledged(f.get("acknowledged")),
                "assets": [ref(uri) for uri in f["assets"]],
                "evidence": [(k, _text(v)) for k, v in sorted(f["evidence"].items())],
                "at_risk": risk_count(f),
                "risk_paths": [
                    [ref(uri) for uri in r.get("path", [r["uri"]])] for r in at_risk[:3]
                ],
                "first_seen": f["first_seen"],
            }
        )
    return rows


def _said_by(snap: Snapshot, uri: str) -> tuple[list[str], dict[str, list[int]]]:
    """The sources of an asset, and which of them name each field."""
    sources = [e["source"] for e in snap.evidence.get(uri, [])]
    by_field: dict[str, list[int]] = {}
    for i, e in enumerate(snap.evidence.get(uri, [])):
        for name, _ in e["fields"]:
            by_field.setdefault(name, []).append(i)
    return sources, by_field


def _details(snap: Snapshot, uri: str, index: dict[str, int]) -> dict[str, Any]:
    a = snap.assets[uri]
    out: dict[str, Any] = {"ns": a["namespace"], "v": a["version"], "name": a["name"]}
    for key, value in (
        ("desc", a["description"]),
        ("origin", a["origin"]),
        ("seen", a["observed_at"]),
        ("observed", a["observed"]),
        ("props", snap.properties.get(uri)),
        ("bindings", snap.bindings.get(uri)),
        ("runs", snap.runs.get(uri)),
    ):
        if value:
            out[key] = value
    sources, said = _said_by(snap, uri)
    if sources:
        out["sources"] = [
            [e["source"], e["at"], e["version"], len(e["fields"])]
            for e in snap.evidence.get(uri, [])
        ]
    lineage = snap.field_lineage.get(uri, {})
    fields = snap.fields.get(uri)
    if fields:
        out["fields"] = [
            [
                f["name"],
                f["type"],
                bool(f.get("nullable", True)),
                _text(f["attributes"], 200) if f.get("attributes") else "",
                said.get(f["name"], []),
                [[index[s], sf] for s, sf in lineage.get(f["name"], []) if s in index],
            ]
            for f in fields
        ]
    runs = snap.job_runs.get(uri)
    if runs:
        out["jobRuns"] = [
            {
                **{k: v for k, v in r.items() if k not in ("inputs", "outputs")},
                "inputs": [[index[u], v] for u, v in r["inputs"] if u in index],
                "outputs": [[index[u], v] for u, v in r["outputs"] if u in index],
            }
            for r in runs
        ]
    versions = []
    for v in snap.versions.get(uri, []):
        item: dict[str, Any] = {
            "v": v["version"],
            "at": v["created_at"],
            "fp": v["fingerprint"][:16],
        }
        if v["origin"]:
            item["origin"] = v["origin"]
        if v["breaking"]:
            item["breaking"] = True
        if v["restored"]:
            item["restored"] = True
        diff = v["diff"] or {}
        if v["version"] > 1 and diff:
            item["diff"] = {
                "added": [[d["name"], d.get("type", "")] for d in diff.get("added", [])],
                "removed": [[d["name"], d.get("type", "")] for d in diff.get("removed", [])],
                "changed": [
                    [
                        c.get("field") or c.get("key") or c.get("change", ""),
                        c.get("change", "")
                        + (f" {c['key']}" if c.get("field") and "key" in c else ""),
                        _text(c.get("from"), 160),
                        _text(c.get("to"), 160),
                        bool(c.get("breaking")),
                    ]
                    for c in diff.get("changed", [])
                ],
            }
        versions.append(item)
    if versions:
        out["versions"] = versions
    queries = {}
    bindings = snap.bindings.get(uri, [])
    for part in sorted({b["part"] for b in bindings}):
        built: dict[str, float] = {}
        for b in bindings:
            if b["part"] == part:
                built[b["model"]] = built.get(b["model"], 0.0) + b["share"]
        query = resolve_query(snap.query_bindings, uri, part, built, snap.models_in_use)
        if query is not None:
            queries[part] = query.ref
    if queries:
        out["queries"] = queries
    return out


def build_context(
    snap: Snapshot,
    focus: str | None = None,
    depth: int = DEFAULT_DEPTH,
    title: str = "steward report",
    served: bool = False,
) -> dict[str, Any]:
    """Everything the template shows. Pure: no database, no clock.

    A focused snapshot (`snap.scope`, from `reports.load.load_neighbourhood`)
    makes a page that says which part of the catalog it holds and how to see
    more (`served`: as links of the live page, else as commands)."""
    snap = replace(snap, findings=sorted(snap.findings, key=importance))
    uris = sorted(snap.assets)
    index = {uri: i for i, uri in enumerate(uris)}
    kinds = sorted({a["kind"] for a in snap.assets.values()})
    kind_index = {k: i for i, k in enumerate(kinds)}
    edge_kinds = sorted({k for _, _, k in snap.edges})
    edge_kind_index = {k: i for i, k in enumerate(edge_kinds)}
    edges = sorted(
        [index[s], index[t], edge_kind_index[k]]
        for s, t, k in snap.edges
        if s in index and t in index
    )
    succ: list[list[int]] = [[] for _ in uris]
    pred: list[list[int]] = [[] for _ in uris]
    for s, t, _ in edges:
        if s != t:
            succ[s].append(t)
            pred[t].append(s)

    shown: dict[str, str] = {}
    for jobs in (True, False):  # two key spaces
        shown |= display_names(
            {
                u: (a["namespace"], a["name"])
                for u, a in snap.assets.items()
                if (a["kind"] == "job") == jobs
            }
        )
    findings = _finding_rows(snap, index, shown)
    severity: dict[int, int] = {}
    risk: dict[int, list[int]] = {}
    involved: dict[int, list[int]] = {}
    related: dict[int, list[int]] = {}
    seeds: list[int] = []
    paths: list[list[int]] = []
    for fi, f in enumerate(snap.findings):
        rank = SEVERITY_RANK.get(f["severity"], 1)
        ordered = sorted(f.get("at_risk") or [], key=lambda r: (len(r.get("path", [])), r["uri"]))
        downstream = {r["uri"] for r in ordered}
        subject = index.get(f["assets"][0]) if f["assets"] else None
        if subject is not None:
            readers = set(succ[subject])
        else:  # about an asset outside a focused snapshot
            outside = snap.readers.get(f["assets"][0], []) if f["assets"] else []
            readers = {index[u] for u in outside if u in index}
        for k, uri in enumerate(f["assets"]):
            if uri not in index:
                continue
            n = index[uri]
            seeds.append(n)
            if k == 0:  # what the finding is about; the others are its evidence or readers
                severity[n] = max(severity.get(n, 0), rank)
                involved.setdefault(n, []).append(fi)
            elif uri in downstream or n in readers:
                risk.setdefault(n, []).append(fi)
            else:
                related.setdefault(n, []).append(fi)
        for r in ordered:
            if r["uri"] in index:
                risk.setdefault(index[r["uri"]], []).append(fi)
        paths.extend(
            [index[u] for u in r.get("path", []) if u in index] for r in ordered[:RISK_PATHS]
        )

    nodes = [
        [
            uri,
            snap.assets[uri]["name"],
            kind_index[snap.assets[uri]["kind"]],
            severity.get(n, 0),
            1 if n in risk else 0,
            1 if snap.assets[uri]["unresolved"] else 0,
            snap.assets[uri]["version"],
            shown[uri],
        ]
        for n, uri in enumerate(uris)
    ]
    focus_index = index.get(focus) if focus is not None else None
    view = initial_view(len(uris), succ, pred, seeds, paths, focus_index, depth)
    details = []
    for n, uri in enumerate(uris):
        d = _details(snap, uri, index)
        if n in involved:
            d["findings"] = sorted(set(involved[n]))
        if n in risk:
            d["risk"] = sorted(set(risk[n]))
        if n in related:
            d["related"] = sorted(set(related[n]))
        details.append(d)
    data = {
        "schema_version": SCHEMA_VERSION,
        "kinds": kinds,
        "kindClass": [kind_class(k) for k in kinds],
        "edgeKinds": edge_kinds,
        "edgeClass": [edge_class(k) for k in edge_kinds],
        "nodes": nodes,
        "edges": edges,
        "details": details,
        "findings": [
            {
                "id": f["id"],
                "rule": f["rule"],
                "severity": f["severity"],
                "title": f["title"],
                "headline": row["title"],
                "assets": f["assets"],
                "remedy": row["remedy"],
                "evidence": f["evidence"],
                "at_risk": f.get("at_risk") or [],
                "at_risk_count": risk_count(f),
                "acknowledged": row["acknowledged"],
            }
            for f, row in zip(snap.findings, findings, strict=True)
        ],
        "view": view,
        "focus": focus_index,
        "depth": depth,
    }
    times = [a["updated_at"] or "" for a in snap.assets.values()]
    # A finding seen again is no change to the catalog: only when it first appeared counts,
    # so that re-running the same checks renders the same bytes.
    times += [f["first_seen"] or "" for f in snap.findings]
    return {
        "title": title,
        "as_of": max(times, default="") or None,
        "overview": _overview(snap, snap.findings),
        "coverage": coverage_panel(snap.coverage),
        "top_findings": findings[:TOP_FINDINGS],
        "findings": findings,
        "rules": sorted({f["rule"] for f in findings}),
        "severities": list(SEVERITIES),
        "edge_kinds": [{"kind": k, "css": edge_class(k)} for k in edge_kinds],
        "focus": shown[uris[focus_index]] if focus_index is not None else None,
        "depth": depth,
        "shown": len(view),
        "scope": _scope(snap, len(edges), served),
        "data": embed_json(data),
    }
