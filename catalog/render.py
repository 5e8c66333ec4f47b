"""Text rendering of plans and diffs, shared by every command that applies specs."""

from __future__ import annotations

from typing import Any

from catalog.apply import Plan
from catalog.output import echo


def diff_lines(diff: dict[str, Any], indent: str = "  ") -> list[str]:
    lines = [f"{indent}+ {f['name']}  {f['type']}" for f in diff.get("added", [])]
    lines += [f"{indent}- {f['name']}  {f['type']}  [breaking]" for f in diff.get("removed", [])]
    for c in diff.get("changed", []):
        target = c["field"] if c["field"] is not None else c.get("key", c["change"])
        what = c["change"] if c["field"] is None or "key" not in c else f"{c['change']} {c['key']}"
        mark = "  [breaking]" if c["breaking"] else ""
        lines.append(f"{indent}~ {target}: {what} {c['from']!r} -> {c['to']!r}{mark}")
    return lines


def echo_plan(plan: Plan) -> None:
    """Each pending change on stdout, then nothing more: the summary goes to stderr."""
    symbols = {"create": "+", "update": "~", "restore": "+", "delete": "-"}
    for change in plan.pending:
        head = f"{symbols[change.action]} {change.action} {change.uri} ({change.kind})"
        if change.action in ("update", "restore"):
            head += f" v{change.previous} -> v{change.version}"
            if change.diff and change.diff.get("breaking"):
                head += "  BREAKING"
        echo(head)
        if change.diff:
            for line in diff_lines(change.diff, indent="    "):
                echo(line)


def summary_line(plan: Plan, source: str) -> str:
    counts = plan.summary()
    verb = "applied" if plan.applied else "plan (nothing written)"
    parts = ", ".join(f"{n} {k}" for k, n in counts.items())
    runs = f"; {plan.runs} run(s) written" if plan.runs is not None else ""
    return f"{source}: {verb}: {parts}{runs}"
