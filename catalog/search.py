"""Finding assets by name: substring and fuzzy, across namespaces and aliases.

`steward assets --name TEXT`, the suggestions of a reference that names
nothing (`steward show ord` -> `did you mean ...orders`), and the check of
an enumerated option (`--kind tabel` -> `did you mean 'table'`).
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Iterable

from sqlmodel import Session, col, select

from catalog.errors import InvalidInput
from catalog.models import Alias, Asset

#: A fuzzy match must be at least this close (difflib's ratio) to count.
FUZZY_CUTOFF = 0.75
#: The kinds steward's own connectors and OpenLineage create.
KNOWN_KINDS = (
    "collection",
    "dataset",
    "feature_service",
    "feature_set",
    "job",
    "materialized_view",
    "model",
    "table",
    "view",
)
_SEGMENTS = re.compile(r"[/.:@_\-\s]+")


def closeness(text: str, name: str) -> float:
    """How well TEXT names NAME, from 0 to 1 (case-insensitive).

    1 when TEXT is a substring of NAME; else the best of difflib's ratio of
    TEXT against NAME, against each segment of NAME (split at / . : @ _ -),
    and against each stretch of NAME as long as TEXT (so `suport` finds
    `support_docs`).
    """
    needle, hay = text.casefold(), name.casefold()
    if not needle:
        return 0.0
    if needle in hay:
        return 1.0
    width = len(needle)
    candidates = {hay, *(s for s in _SEGMENTS.split(hay) if s)}
    candidates |= {hay[i : i + width + 1] for i in range(max(len(hay) - width, 0) + 1)}
    matcher = difflib.SequenceMatcher(None, "", needle)
    best = 0.0
    for candidate in candidates:
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() > best and matcher.quick_ratio() > best:
            best = max(best, matcher.ratio())
    return best


def matching(text: str, names: dict[int, list[str]]) -> list[tuple[float, int]]:
    """(closeness, id) of the entries one of whose names contains TEXT; when none
    does, of those whose names come close to it, best first."""
    scored = []
    for key, spellings in names.items():
        score = max(closeness(text, n) for n in spellings)
        if score >= FUZZY_CUTOFF:
            scored.append((score, key))
    exact = [pair for pair in scored if pair[0] == 1.0]
    return exact or sorted(scored, key=lambda pair: -pair[0])


def _names(session: Session, assets: Iterable[Asset]) -> dict[int, list[str]]:
    names: dict[int, list[str]] = defaultdict(list)
    for asset in assets:
        if asset.id is not None:
            names[asset.id].append(asset.uri)
    for asset_id, uri in session.exec(select(Alias.asset_id, Alias.uri)):
        if asset_id in names:
            names[asset_id].append(uri)
    return names


def search(session: Session, text: str, limit: int | None = None) -> list[Asset]:
    """Assets whose URI or an alias contains TEXT (else those close to it, best first)."""
    assets = {a.id: a for a in session.exec(select(Asset).order_by(col(Asset.uri)))}
    found = matching(text, _names(session, assets.values()))
    ranked = sorted(found, key=lambda pair: (-pair[0], assets[pair[1]].uri))
    return [assets[key] for _, key in ranked[:limit]]


def suggestions(session: Session, reference: str, limit: int = 5) -> list[str]:
    return [a.uri for a in search(session, reference, limit)]


def check_kind(session: Session, kind: str) -> None:
    """An unknown kind is an error that names the kinds there are (and the closest)."""
    present = set(session.exec(select(Asset.kind).distinct()))
    kinds = sorted(set(KNOWN_KINDS) | present)
    if kind in kinds:
        return
    close = difflib.get_close_matches(kind, kinds, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    raise InvalidInput(f"unknown kind {kind!r}", hint=f"{guess}kinds: {', '.join(kinds)}")
