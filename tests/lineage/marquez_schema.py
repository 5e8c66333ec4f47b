"""Marquez's `openapi.yml` (the fixture) as JSON Schema validators for the answers of our API.

OpenAPI 3.0 schemas are not JSON Schema: a `discriminator` picks one branch
of a `oneOf`, and Marquez's answers carry `null` for absent values (its real
answers in `openlineage/marquez/api_responses/` do) where the document says
`type: string` without `nullable`. Both are translated. Where Marquez's
document contradicts Marquez's own answers, the answers win, and each such
erratum is listed in `ERRATA` with its evidence; nothing else is relaxed.
"""

from __future__ import annotations

import copy
import uuid
from datetime import datetime
from functools import cache
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker

from tests.conftest import FIXTURES

SPEC = FIXTURES / "marquez-api" / "openapi.yml"
#: (schema, JSON pointer inside it, replacement, evidence)
ERRATA: list[tuple[str, tuple[str, ...], Any, str]] = [
    (
        "DatasetVersion",
        ("properties", "tags"),
        {"type": "array", "items": {"type": "string"}},
        "the document's own DatasetVersion example has `tags: []`",
    ),
    (
        "InputDatasetVersion",
        ("properties", "facets"),
        {"type": "object", "additionalProperties": {"type": "object"}},
        "run facets of a dataset version are objects (Marquez's Run.java: Map<String, Object>)",
    ),
    (
        "OutputDatasetVersion",
        ("properties", "facets"),
        {"type": "object", "additionalProperties": {"type": "object"}},
        "as InputDatasetVersion",
    ),
    (
        "FacetsResult",
        ("properties", "facets"),
        {"$ref": "#/components/schemas/RunFacets"},
        "`facets` is a map of facets, not one facet (Marquez's FacetsResult of getFacets)",
    ),
    (
        "NodeType",
        ("enum",),
        ["JOB", "DATASET", "DATASET_FIELD"],
        "column-lineage nodes are DATASET_FIELD (api_responses/column_lineage_node.json)",
    ),
]

#: A Run is an IncompleteRun *and* its versions: the document's `anyOf` would let any
#: object through its second branch (no state or id checked at all), so it is read as
#: `allOf`, which its example (an IncompleteRun with jobVersion and facets) satisfies.
RUN_IS_ALL_OF = True

FORMATS = FormatChecker()


@FORMATS.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    return not isinstance(value, str) or str(uuid.UUID(value)) == value.lower()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


def _translate(node: Any) -> Any:
    if isinstance(node, list):
        return [_translate(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _translate(v) for k, v in node.items() if k not in ("example", "discriminator")}
    if "type" in out:
        if out["type"] is None:
            del out["type"]
        elif isinstance(out["type"], str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
    if "discriminator" in node and "oneOf" in out:
        out["anyOf"] = out.pop("oneOf")
    return out


@cache
def spec() -> dict[str, Any]:
    document = yaml.safe_load(SPEC.read_text("utf-8"))
    schemas = document["components"]["schemas"]
    for name, pointer, replacement, _evidence in ERRATA:
        target = schemas[name]
        for key in pointer[:-1]:
            target = target[key]
        target[pointer[-1]] = copy.deepcopy(replacement)
    if RUN_IS_ALL_OF:
        schemas["Run"]["allOf"] = schemas["Run"].pop("anyOf")
    document["components"] = {"schemas": _translate(schemas)}
    return document


def validator(schema: str) -> Draft202012Validator:
    root = {**spec(), "$ref": f"#/components/schemas/{schema}"}
    return Draft202012Validator(root, format_checker=FORMATS)


def errors(schema: str, body: Any) -> list[str]:
    """Every way `body` breaks Marquez's schema `schema` (empty when it conforms)."""
    found = sorted(validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path))
    out = [f"{schema}{list(e.absolute_path)}: {e.message[:300]}" for e in found]
    if schema == "LineageGraph" and isinstance(body, dict):
        # The discriminator: a DATASET node's data is a Dataset, a JOB's a Job.
        for node in body.get("graph") or []:
            kind = {"DATASET": "Dataset", "JOB": "Job"}.get(node.get("type"))
            if kind:
                out += errors(kind, node.get("data"))
    return out


#: The response schema of each Marquez GET path (relative to /api/v1).
def response_schema(path: str) -> str:
    operation = spec()["paths"][path]["get"]
    responses = operation["responses"]
    ok = responses.get("200") or responses.get(200)
    ref: str = ok["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]
