"""Acknowledged findings: a known, accepted condition, recorded with who, when and why.

An acknowledgement holds while the finding's severity and evidence stay what
they were when it was given, and until its `until` time; it ends when it is
withdrawn (`steward findings unack`), expires, or the condition changes
(the finding then counts again: it is re-opened). Ended ones are kept.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from catalog.errors import Ambiguous, InvalidInput, NotFound
from catalog.models import Finding, FindingAck, utcnow

ACK = FindingAck.__table__  # type: ignore[attr-defined]
FINDING = Finding.__table__  # type: ignore[attr-defined]


def evidence_digest(severity: str, evidence: Any) -> str:
    """What an acknowledgement is about: the severity and the evidence, canonically."""
    text = json.dumps([severity, evidence], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def who() -> str:
    """The user at the keyboard (or the CI job's account)."""
    try:
        return getpass.getuser()[:128]
    except (OSError, KeyError):  # no user name in the environment or the password file
        return "unknown"


@dataclass(frozen=True)
class Ack:
    finding_id: str
    reason: str
    by: str
    at: datetime
    until: datetime | None
    digest: str

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "by": self.by,
            "at": _iso(self.at),
            "until": _iso(self.until),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def find_finding(conn: Connection, reference: str) -> Any:
    """The finding row whose id is REFERENCE or starts with it (at least 4 characters)."""
    ref = reference.strip().lower()
    if len(ref) < 4:
        raise InvalidInput(
            f"finding id {reference!r} is too short", hint="give at least 4 characters of it"
        )
    rows = list(conn.execute(select(FINDING).where(FINDING.c.id.like(f"{ref}%"))))
    if not rows:
        raise NotFound(f"no finding {reference!r}", hint="see `steward findings --all`")
    if len(rows) > 1:
        raise Ambiguous(reference, sorted(r.id for r in rows))
    return rows[0]


def active(conn: Connection, now: datetime | None = None) -> dict[str, Ack]:
    """The acknowledgements that have not ended and not expired, by finding id."""
    now = now or utcnow()
    query = select(ACK).where(ACK.c.ended_at.is_(None))
    return {
        row.finding_id: Ack(
            row.finding_id, row.reason, row.acked_by, row.acked_at, row.until, row.evidence_digest
        )
        for row in conn.execute(query)
        if row.until is None or row.until > now
    }


def acknowledge(
    conn: Connection, reference: str, reason: str, until: datetime | None = None
) -> tuple[str, Ack]:
    """Acknowledge an open finding (replacing an earlier acknowledgement of it)."""
    if not reason.strip():
        raise InvalidInput("an acknowledgement needs a reason", hint="--reason 'why it is fine'")
    now = utcnow()
    if until is not None and until <= now:
        raise InvalidInput(f"--until {_iso(until)} is in the past")
    row = find_finding(conn, reference)
    if row.status != "open":
        raise InvalidInput(f"finding {row.id} is {row.status}: only open findings are acknowledged")
    by = who()
    _end(conn, [row.id], now, by, "replaced by a new acknowledgement")
    ack = Ack(row.id, reason.strip(), by, now, until, evidence_digest(row.severity, row.evidence))
    conn.execute(
        insert(ACK).values(
            finding_id=ack.finding_id,
            reason=ack.reason,
            acked_by=ack.by,
            acked_at=ack.at,
            until=ack.until,
            evidence_digest=ack.digest,
        )
    )
    return row.title, ack


def unacknowledge(conn: Connection, reference: str) -> str:
    """Withdraw a finding's acknowledgement; its title."""
    row = find_finding(conn, reference)
    if row.id not in active(conn):
        raise InvalidInput(f"finding {row.id} is not acknowledged")
    _end(conn, [row.id], utcnow(), who(), "withdrawn")
    return str(row.title)


def follow(conn: Connection, before: str, after: str, same: bool) -> None:
    """Finding `after` continues finding `before` (two names merged into one asset): its
    acknowledgements move to it, still current when `same` (its severity held), else
    left for `reopen_changed` to end."""
    if same:
        digest = conn.execute(
            select(FINDING.c.severity, FINDING.c.evidence).where(FINDING.c.id == after)
        ).one()
        values: dict[str, Any] = {"evidence_digest": evidence_digest(*digest)}
    else:
        values = {}
    conn.execute(update(ACK).where(ACK.c.finding_id == before).values(finding_id=after, **values))


def reopen_changed(conn: Connection, current: dict[str, str]) -> list[str]:
    """End the acknowledgements whose finding's evidence changed, was resolved or whose
    time ran out. `current` maps each open finding's id to its evidence digest; the
    ids re-opened are returned."""
    now = utcnow()
    ended: dict[str, list[str]] = {}
    for row in conn.execute(select(ACK).where(ACK.c.ended_at.is_(None))):
        if row.until is not None and row.until <= now:
            ended.setdefault("expired", []).append(row.finding_id)
        elif row.finding_id not in current:
            ended.setdefault("the finding was resolved", []).append(row.finding_id)
        elif current[row.finding_id] != row.evidence_digest:
            ended.setdefault("the condition changed", []).append(row.finding_id)
    for why, ids in ended.items():
        _end(conn, ids, now, None, why)
    return sorted(i for ids in ended.values() for i in ids)


def _end(conn: Connection, ids: list[str], now: datetime, by: str | None, why: str) -> None:
    if ids:
        conn.execute(
            update(ACK)
            .where(ACK.c.finding_id.in_(ids))
            .where(ACK.c.ended_at.is_(None))
            .values(ended_at=now, ended_by=by, end_reason=why)
        )


def last_ended(conn: Connection) -> dict[str, dict[str, Any]]:
    """The last ended acknowledgement of each finding (shown as "re-opened: why")."""
    out: dict[str, dict[str, Any]] = {}
    query = select(ACK).where(ACK.c.ended_at.is_not(None)).order_by(ACK.c.ended_at, ACK.c.id)
    for row in conn.execute(query):
        out[row.finding_id] = {
            "reason": row.reason,
            "by": row.acked_by,
            "at": _iso(row.acked_at),
            "ended_at": _iso(row.ended_at),
            "ended_because": row.end_reason,
        }
    return out
