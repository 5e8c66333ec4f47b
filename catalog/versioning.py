"""Fingerprints and classified diffs: pure functions over plain definitions."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

from catalog.errors import InvalidInput


def canonical_json(value: Any) -> str:
    """One byte-exact JSON text per value: sorted keys, no spaces, UTF-8.

    NaN and infinities have no JSON spelling, so they are refused rather than
    written as something another reader would reject.

    The text is the standard library's (`json.dumps` with sorted keys, compact,
    not ASCII-only): every fingerprint in a catalog was taken over it. orjson
    writes the same text several times faster (a definition's fingerprint was
    4% of a heavy file ingest's writing process) except where its text may
    differ: a float (orjson writes 6.25e-05 as 0.0000625), NaN or an infinity
    (orjson writes null), a key that is not text, an integer over 64 bits, a
    type the standard library refuses. Those are written by the standard
    library: any text holding a value that is a number with a `.`, `e` or `E`
    (every float orjson writes is) or a `null`, and anything orjson refuses.
    `tests/catalog/test_versioning.py` holds the two to the same text. One
    difference is left: a UUID or an enum (not of text), which the standard
    library refused, is written as orjson writes it (the text a reader of the
    stored definition gets back).
    """
    try:
        text = orjson.dumps(value, option=_SAME_TYPES)
    except (orjson.JSONEncodeError, TypeError):
        pass
    else:
        if _MAY_DIFFER.search(text) is None and text[0] not in _BARE:
            return text.decode("utf-8")
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as err:
        raise InvalidInput(f"definition is not plain JSON data: {err}") from err


#: orjson writes only what the standard library writes as it does: the types it has an
#: opinion of its own on (dataclasses, dates, subclasses such as enums of text) are
#: refused, and so written (or refused) by the standard library.
_SAME_TYPES = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
#: Where orjson may have written a float (a number with `.`, `e` or `E`) or a NaN (a
#: `null`): a value after `:`, `[` or `,` (its text is compact). A string may hold
#: the same characters, and is then written by the standard library for nothing.
_MAY_DIFFER = re.compile(rb"[:\[,](?:-?[0-9]+[.eE]|null[,\]}])")
#: ... or the whole text is a number or a `null`.
_BARE = frozenset(b"-0123456789n")


def fingerprint(definition: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a definition."""
    return sha256_held(canonical_json(definition).encode("utf-8"))


def sha256_held(data: bytes) -> str:
    """SHA-256 in pieces small enough that hashlib keeps the interpreter lock.

    hashlib lets go of the lock for a buffer of 2 KiB or more; taking it back
    then waits for whatever else runs (the server's event loop) to yield it,
    up to the 5 ms switch interval: in the server's writer thread that wait,
    once per event, cost more than the hashing.
    """
    digest = hashlib.sha256()
    view = memoryview(data)
    for start in range(0, len(view), 2000):
        digest.update(view[start : start + 2000])
    return digest.hexdigest()


def _fields_by_name(definition: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Every field by name, nested ones (a struct's, OpenLineage's `fields` of a field) at
    any depth as `parent.child`."""
    if not definition:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for item in definition.get("fields", []):
        out[item["name"]] = item
        nested = (item.get("attributes") or {}).get("fields")
        if isinstance(nested, list):
            _nested_fields(item["name"], nested, out)
    return out


def _nested_fields(prefix: str, items: list[Any], out: dict[str, dict[str, Any]]) -> None:
    stack = [(prefix, items)]
    while stack:
        parent, children = stack.pop()
        for child in children:
            if not isinstance(child, dict) or not isinstance(child.get("name"), str):
                continue
            name = f"{parent}.{child['name']}"
            out[name] = {"name": name, "type": child.get("type") or ""}
            if child.get("description"):
                out[name]["description"] = child["description"]
            if isinstance(child.get("fields"), list) and child["fields"]:
                stack.append((name, child["fields"]))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def diff_definitions(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """A classified diff between two definitions.

    Returns `{"added", "removed", "changed", "breaking"}`. `added` and
    `removed` list fields (`name`, `type`); `changed` lists each other change
    with the `field` it concerns (None for an asset-level property), its
    `change` (`retyped`, `nullability`, `default`, `description`, `attribute`,
    `property`, `kind`, `upstream`), `from`, `to` and whether it is `breaking`.

    Nested fields (a struct's) are compared at any depth, named `parent.child`.
    Breaking: a removed or retyped field, a field that became NOT NULL, an
    added NOT NULL field without a default, a changed kind, or a change of a
    property the new definition lists in `breaking_properties`. A field that
    gains or loses a type (untyped: an event that did not say) and a kind that
    becomes or was the generic `dataset` are refinements, not breaking.
    """
    old_fields = _fields_by_name(old)
    new_fields = _fields_by_name(new)
    added = [
        {"name": name, "type": field.get("type", "")}
        for name, field in new_fields.items()
        if name not in old_fields
    ]
    removed = [
        {"name": name, "type": field.get("type", "")}
        for name, field in old_fields.items()
        if name not in new_fields
    ]
    changed: list[dict[str, Any]] = []
    breaking = bool(removed) or any(
        not new_fields[a["name"]].get("nullable", True)
        and new_fields[a["name"]].get("default") is None
        for a in added
    )
    if old is None:
        return {"added": added, "removed": [], "changed": [], "breaking": False}

    for name, new_field in new_fields.items():
        old_field = old_fields.get(name)
        if old_field is None:
            continue
        for attr, change in (
            ("type", "retyped"),
            ("nullable", "nullability"),
            ("default", "default"),
            ("description", "description"),
            ("attributes", "attribute"),
        ):
            before, after = old_field.get(attr), new_field.get(attr)
            if attr == "nullable":
                before, after = (
                    bool(before if before is not None else True),
                    bool(after if after is not None else True),
                )
            if _same(before, after):
                continue
            # A type learned or lost ('' is untyped: an event that did not say) is
            # what a witness knows, not a change of the data.
            is_breaking = (change == "retyped" and bool(before) and bool(after)) or (
                change == "nullability" and not after
            )
            if change == "attribute":
                for item in _attribute_changes(name, before or {}, after or {}):
                    changed.append(item)
                    breaking = breaking or item["breaking"]
                continue
            changed.append(
                {
                    "field": name,
                    "change": change,
                    "from": before,
                    "to": after,
                    "breaking": is_breaking,
                }
            )
            breaking = breaking or is_breaking

    breaking_keys = set(new.get("breaking_properties", ()))
    if old.get("kind") != new.get("kind"):
        changed.append(
            {
                "field": None,
                "change": "kind",
                "from": old.get("kind"),
                "to": new.get("kind"),
                "breaking": GENERIC_KIND not in (old.get("kind"), new.get("kind")),
            }
        )
        breaking = breaking or changed[-1]["breaking"]
    old_props: Mapping[str, Any] = old.get("properties", {}) or {}
    new_props: Mapping[str, Any] = new.get("properties", {}) or {}
    for key in sorted(set(old_props) | set(new_props)):
        before, after = old_props.get(key), new_props.get(key)
        if _same(before, after):
            continue
        is_breaking = key in breaking_keys
        changed.append(
            {
                "field": None,
                "change": "property",
                "key": key,
                "from": before,
                "to": after,
                "breaking": is_breaking,
            }
        )
        breaking = breaking or is_breaking
    for key, change in (("description", "description"), ("upstream", "upstream")):
        if not _same(old.get(key), new.get(key)):
            changed.append(
                {
                    "field": None,
                    "change": change,
                    "from": old.get(key),
                    "to": new.get(key),
                    "breaking": False,
                }
            )
    return {"added": added, "removed": removed, "changed": changed, "breaking": breaking}


#: The kind of an asset that events name without saying what it is.
GENERIC_KIND = "dataset"
#: Field attributes whose change breaks every reader: a vector's dimension or distance.
#: A vector field whose dimension, distance or embedding model changes is a breaking change:
#: its vectors no longer answer the queries they used to (pgvector comments name the model).
BREAKING_ATTRIBUTES = frozenset({"dim", "distance", "embedding_model", "embedding_revision"})


def _attribute_changes(
    name: str, before: Mapping[str, Any], after: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One change per attribute key, so a diff names what moved (e.g. `online`)."""
    return [
        {
            "field": name,
            "change": "attribute",
            "key": key,
            "from": before.get(key),
            "to": after.get(key),
            "breaking": key in BREAKING_ATTRIBUTES,
        }
        for key in sorted(set(before) | set(after))
        if key != "fields" and not _same(before.get(key), after.get(key))
    ]
