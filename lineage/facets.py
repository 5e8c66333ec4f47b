"""OpenLineage facets: which are standard, and whether one is well-formed (no I/O).

A malformed *standard* facet never breaks a producer: the event is accepted,
the facet is left out of the projections (kept in the raw event) and a
warning names the facet and the field. Unknown and custom facets are kept
with a warning.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from lineage.lru import ByteLRU


def is_text(value: Any) -> bool:
    return type(value) is str and bool(value.strip())


#: A UUID as producers write it (and as `str(UUID(...))` gives it back): told by one
#: match, where building a `UUID` took three times as long (three a run event).
_CANONICAL_UUID = re.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def uuid_text(value: Any) -> str | None:
    """A UUID's canonical text (lowercase, hyphenated), or None if `value` is not one
    (every spelling `uuid.UUID` reads is one: braces, `urn:uuid:`, capitals)."""
    if not isinstance(value, str):
        return None
    if _CANONICAL_UUID.fullmatch(value):
        return value
    try:
        return str(UUID(value))
    except ValueError:
        return None


def is_uuid(value: Any) -> bool:
    return uuid_text(value) is not None


def parse_time(value: Any) -> tuple[datetime, bool]:
    """A timezone-aware datetime and whether it was naive; ValueError if unreadable."""
    if not isinstance(value, str) or ("T" not in value and " " not in value.strip()):
        raise ValueError("not a date-time (expected e.g. 2024-06-01T12:00:00Z)")
    text = value.strip()
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC), True
    try:
        parsed.astimezone(UTC)  # stored in UTC: 0001-01-01T00:00+01:00 is not a time there
    except OverflowError:
        raise ValueError("out of range: before year 1 or after year 9999 in UTC") from None
    return parsed, False


Validator = Callable[[dict[str, Any]], str | None]


def _need_text(facet: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        if not isinstance(facet.get(key), str):
            return f"{key}: a string is required"
    return None


def _opt_int(facet: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = facet.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return f"{key}: must be an integer"
    return None


def _list_of_objects(facet: dict[str, Any], key: str, *required: str) -> str | None:
    items = facet.get(key)
    if not isinstance(items, list):
        return f"{key}: an array is required"
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            return f"{key}[{i}]: must be an object"
        for req in required:
            if not isinstance(item.get(req), str):
                return f"{key}[{i}].{req}: a string is required"
            if "\x00" in item[req]:
                return f"{key}[{i}].{req}: must not contain NUL characters"
    return None


def _schema_fields(items: Any, path: str) -> str | None:
    """Check a schema facet's fields (nested ones too): None when well-formed."""
    if type(items) is not list:
        return f"{path}: an array is required"
    for i, item in enumerate(items):
        if type(item) is not dict:
            return f"{path}[{i}]: must be an object"
        name = item.get("name")
        if type(name) is not str or not name.strip():
            return f"{path}[{i}].name: a string is required"
        kind = item.get("type")
        if kind is not None and type(kind) is not str:
            return f"{path}[{i}].type: must be a string"
        for key in ("name", "type", "description"):
            if type(item.get(key)) is str and "\x00" in item[key]:
                return f"{path}[{i}].{key}: must not contain NUL characters"
        nested = item.get("fields")
        if nested is not None:
            problem = _schema_fields(nested, f"{path}[{i}].fields")
            if problem:
                return problem
    return None


def _parent(facet: dict[str, Any]) -> str | None:
    for part in ("run", "job"):
        if not isinstance(facet.get(part), dict):
            return f"{part}: an object is required"
    if not is_uuid(facet["run"].get("runId")):
        return "run.runId: a UUID is required"
    if not (is_text(facet["job"].get("namespace")) and is_text(facet["job"].get("name"))):
        return "job: namespace and name are required"
    if "\x00" in facet["job"]["name"]:
        return "job.name: must not contain NUL characters"
    return None


def _column_lineage(facet: dict[str, Any]) -> str | None:
    fields = facet.get("fields")
    if not isinstance(fields, dict):
        return "fields: an object is required"
    for name, spec in fields.items():
        if not isinstance(spec, dict):
            return f"fields.{name}: must be an object"
        problem = _list_of_objects(spec, "inputFields", "namespace", "name", "field")
        if problem:
            return f"fields.{name}.{problem}"
    return None


def _quality_metrics(facet: dict[str, Any]) -> str | None:
    if not isinstance(facet.get("columnMetrics"), dict):
        return "columnMetrics: an object is required"
    return _opt_int(facet, "rowCount", "bytes", "fileCount")


def _nominal_time(facet: dict[str, Any]) -> str | None:
    try:
        parse_time(facet.get("nominalStartTime"))
    except ValueError:
        return "nominalStartTime: a date-time is required"
    return None


#: Schema facets already checked, by the SHA-256 of their JSON: producers send the
#: same schema again and again, so most checks are one lookup. (Keyed by the JSON,
#: 4 KB a schema in the heavy mix, the keys were nearly all of what it held.)
_CHECKED_SCHEMAS: ByteLRU[bytes, str | None] = ByteLRU(4 * 1024 * 1024)
#: The longest JSON (bytes) the caches of what was already read keep: a larger
#: one is read again instead, so that what the server keeps stays bounded
#: whatever large bodies clients send.
CACHED_AT_MOST = 64 * 1024


def _schema(facet: dict[str, Any]) -> str | None:
    fields = facet.get("fields")
    try:
        key = orjson.dumps(fields)
    except (orjson.JSONEncodeError, TypeError):
        return _schema_fields(fields, "fields")
    if len(key) > CACHED_AT_MOST:
        return _schema_fields(fields, "fields")
    digest = hashlib.sha256(key).digest()
    if digest in _CHECKED_SCHEMAS:
        return _CHECKED_SCHEMAS.get(digest)
    problem = _schema_fields(fields, "fields")
    _CHECKED_SCHEMAS.put(digest, problem, 64 + (len(problem) if problem else 0))
    return problem


VALIDATORS: dict[str, Validator] = {
    "schema": _schema,
    "symlinks": lambda f: _list_of_objects(f, "identifiers", "namespace", "name"),
    "columnLineage": _column_lineage,
    "parent": _parent,
    "ownership": lambda f: _list_of_objects(f, "owners", "name"),
    "documentation": lambda f: _need_text(f, "description"),
    "dataSource": lambda f: (
        None
        if all(f.get(k) is None or isinstance(f.get(k), str) for k in ("name", "uri"))
        else "name/uri: must be strings"
    ),
    "sql": lambda f: _need_text(f, "query"),
    "sourceCode": lambda f: _need_text(f, "language", "sourceCode"),
    "sourceCodeLocation": lambda f: _need_text(f, "type", "url"),
    "errorMessage": lambda f: _need_text(f, "message", "programmingLanguage"),
    "outputStatistics": lambda f: _opt_int(f, "rowCount", "size", "fileCount"),
    "inputStatistics": lambda f: _opt_int(f, "rowCount", "size", "fileCount"),
    "dataQualityMetrics": _quality_metrics,
    "dataQualityAssertions": lambda f: _list_of_objects(f, "assertions", "assertion"),
    "nominalTime": _nominal_time,
    "jobType": lambda f: _need_text(f, "processingType", "integration"),
    "lifecycleStateChange": lambda f: _need_text(f, "lifecycleStateChange"),
    "version": lambda f: _need_text(f, "datasetVersion"),
    "tags": lambda f: _list_of_objects(f, "tags", "key", "value"),
}
#: Standard facets we keep without checking their inside.
KNOWN = frozenset(
    {
        "catalog",
        "storage",
        "datasetType",
        "hierarchy",
        "environmentVariables",
        "executionParameters",
        "externalQuery",
        "extractionError",
        "jobDependencies",
        "processing_engine",
        "test",
        "subset",
        "lineage",
    }
)


def check_facets(
    value: Any, where: str, warnings: list[str], unproduced: list[str]
) -> dict[str, Any]:
    """The facets at `where` that can be projected; problems become warnings."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        warnings.append(f"{where}: must be an object; ignored")
        return {}
    out: dict[str, Any] = {}
    for name, facet in value.items():
        if type(facet) is not dict:
            warnings.append(f"{where}.{name}: a facet must be an object; kept raw, not projected")
            continue
        if facet.get("_deleted") is True:
            out[name] = facet
            continue
        validator = VALIDATORS.get(name)
        if validator is not None:
            problem = validator(facet)
            if problem:
                warnings.append(f"{where}.{name}: malformed ({problem}); kept raw, not projected")
                continue
        elif name not in KNOWN:
            warnings.append(f"{where}.{name}: custom facet, kept as is")
        if "_producer" not in facet:
            unproduced.append(f"{where}.{name}")
        out[name] = facet
    return out
