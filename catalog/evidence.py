"""One asset, many witnesses: each source's latest assertion, and their merge.

Pure functions over plain data, no I/O. A *source* is what asserts facts
about an asset: a scan of a URL (`scan postgres://...`), an OpenLineage job
(`openlineage NAMESPACE/JOB`), a feature file, a registry, a person at the
CLI. Each keeps its latest assertion (a definition: kind, fields,
properties) with the time it asserted it (the scan's time, the event's time).

The asset's definition is the merge of the sources' latest assertions:

1. A *declared* source (a scan, a registry, a feature file, the CLI: anything
   but OpenLineage events) reads the thing itself and sees its whole, typed
   schema: the latest declared assertion is the definition. Events only add
   documentation to its fields (a field's description where it has none).
2. Without a declared source, the events' assertions are merged: a field any
   source's latest assertion names is there; an untyped field never retypes
   a typed one; a later typed field wins over an earlier one.
3. Within one OpenLineage source, a schema whose fields are all untyped (dbt
   lists only the documented columns, without types, until `dbt docs
   generate` has run) is partial: it adds and documents fields but removes
   none of what the source said before.

A source's assertion older than the one it made before (a retried or
backfilled event) never replaces it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from catalog.versioning import GENERIC_KIND

#: Sources whose name starts so are OpenLineage producers (the ingester's).
EVENT_SOURCE = "openlineage"


def is_declared(source: str) -> bool:
    """Whether a source reads the thing itself (a scan, a registry, a person)."""
    return not source.startswith(EVENT_SOURCE)


@dataclass(frozen=True)
class Assertion:
    """What one source says about one asset, and since when."""

    source: str
    asserted_at: datetime
    #: The definition it asserts (kind, fields, properties); {} for none.
    definition: dict[str, Any] = field(default_factory=dict)
    #: Observations it made (owner, row counts), kept apart from the definition.
    observed: dict[str, Any] = field(default_factory=dict)
    description: str | None = None

    @property
    def declared(self) -> bool:
        return is_declared(self.source)


def restate(previous: Assertion | None, new: Assertion) -> Assertion:
    """`new` as its source's latest assertion, given what it said before.

    Declared sources always restate in full. An event's untyped field keeps
    the type the same source gave it before, and an all-untyped (partial)
    schema keeps the fields it leaves out.
    """
    if new.declared or previous is None or not previous.definition:
        return new
    old_fields = {f["name"]: f for f in previous.definition.get("fields", [])}
    new_fields = new.definition.get("fields", [])
    partial = bool(new_fields) and not any(f.get("type") for f in new_fields)
    if not old_fields:
        return new
    fields: dict[str, dict[str, Any]] = {}
    if partial:
        fields.update((name, dict(f)) for name, f in old_fields.items())
    for item in new_fields:
        fields[item["name"]] = _refine(
            fields.get(item["name"]) or old_fields.get(item["name"]), item
        )
    definition = {**new.definition, "fields": list(fields.values())}
    return replace(new, definition=definition)


def _refine(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """A field as `new` says, but an untyped or undocumented one keeps `old`'s type and docs."""
    out = dict(new)
    if old is None:
        return out
    if not out.get("type") and old.get("type"):
        out["type"] = old["type"]
    if not out.get("description") and old.get("description"):
        out["description"] = old["description"]
    return out


def supersedes(previous: Assertion | None, new: Assertion) -> bool:
    """Whether `new` becomes its source's latest assertion (not an older one arriving late)."""
    return previous is None or new.asserted_at >= previous.asserted_at


@dataclass(frozen=True)
class Merged:
    """The asset as its sources together describe it."""

    definition: dict[str, Any]
    #: The source whose assertion is the base of the definition.
    authority: str | None
    observed: dict[str, Any]
    description: str | None


def merge(assertions: Iterable[Assertion], events_observed: Any = None) -> Merged:
    """The merged definition, observations and description of the sources' assertions.

    `events_observed` are the OpenLineage facets the ingester keeps for the
    asset (`observed["openlineage"]`): they survive any source's re-scan.
    """
    ordered = sorted(assertions, key=lambda a: (a.asserted_at, a.source))
    declared = [a for a in ordered if a.declared and a.definition]
    events = [a for a in ordered if not a.declared and a.definition]
    authority: str | None = None
    if declared:
        base = declared[-1]
        authority = base.source
        definition = copy.deepcopy(base.definition)
        docs = {
            f["name"]: f["description"]
            for a in events
            for f in a.definition.get("fields", [])
            if f.get("description")
        }
        for item in definition.get("fields", []):
            if not item.get("description") and item["name"] in docs:
                item["description"] = docs[item["name"]]
    elif events:
        authority = events[-1].source
        definition = _merge_events(events)
    else:
        definition = {}
    observed: dict[str, Any] = {}
    for a in ordered:
        if a.declared:
            observed.update(a.observed)
    if events_observed:
        observed["openlineage"] = events_observed
    described = [a.description for a in ordered if a.description]
    said = [a.description for a in ordered if a.declared and a.description]
    description = (said or described)[-1] if described else None
    return Merged(definition, authority, observed, description)


def _merge_events(events: list[Assertion]) -> dict[str, Any]:
    """The union of the events' latest assertions (ordered oldest first)."""
    if len(events) == 1:
        return copy.deepcopy(events[0].definition)
    fields: dict[str, dict[str, Any]] = {}
    kind = GENERIC_KIND
    properties: dict[str, Any] = {}
    for a in events:
        for item in a.definition.get("fields", []):
            fields[item["name"]] = _refine(fields.get(item["name"]), item)
        if a.definition.get("kind", GENERIC_KIND) != GENERIC_KIND:
            kind = a.definition["kind"]
        properties.update(a.definition.get("properties") or {})
    latest = events[-1].definition
    out = {**copy.deepcopy(latest), "kind": kind, "fields": list(fields.values())}
    out["properties"] = properties
    return out


def assertion_json(a: Assertion, fields: bool = True) -> dict[str, Any]:
    """An assertion as `show --json` prints it."""
    out: dict[str, Any] = {
        "source": a.source,
        "declared": a.declared,
        "asserted_at": a.asserted_at.isoformat().replace("+00:00", "Z"),
    }
    if a.definition:
        out["kind"] = a.definition.get("kind")
        if fields:
            out["fields"] = [
                {"name": f["name"], "type": f.get("type", "")}
                for f in a.definition.get("fields", [])
            ]
    if a.observed:
        out["observed"] = sorted(a.observed)
    if a.description:
        out["description"] = a.description
    return out
