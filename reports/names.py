"""Display names: the shortest end of an asset's name that no other asset shares.

A catalog names things by long keys (`postgres://db:5432` + `shop.public.customers`,
`realprod_jaffle.analytics.customer_revenue`). Cutting such a name to fit a box
keeps its start, which every sibling shares; what tells assets apart is the end.
So an asset is shown by the shortest suffix of its name, in whole dotted or
slashed parts, that is unique in the catalog: `customers`, then
`public.customers`, then the whole name; two assets with the same name in two
namespaces add the end of their namespace (`orders @ warehouse:5432`). The full
URI stays on hover and in the asset's page.

Pure and deterministic: the same set of keys gives the same names.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from urllib.parse import urlsplit

#: Where a name splits into parts (the separator stays with the part after it).
_PARTS = re.compile(r"[^./:]+[./:]*|[./:]+")


def parts(name: str) -> list[str]:
    """`a.b/c` -> `['a.', 'b/', 'c']` (joining them gives the name back)."""
    return _PARTS.findall(name) or [name]


def suffixes(name: str) -> list[str]:
    """The ends of `name` in whole parts, shortest first, the whole name last."""
    pieces = parts(name)
    out: list[str] = []
    for i in range(len(pieces) - 1, -1, -1):
        end = "".join(pieces[i:]).strip("./:")
        if end and (not out or out[-1] != end):
            out.append(end)
    if not out or out[-1] != name:
        out.append(name)
    return out


def _namespace_tail(namespace: str) -> str:
    """The telling end of a namespace: `postgres://db:5432` -> `db:5432`, a path its last part."""
    split = urlsplit(namespace)
    path = split.path.rstrip("/")
    if path:
        return path.rsplit("/", 1)[-1]
    return split.netloc or namespace


def _shortest_unique(candidates: dict[str, list[str]]) -> dict[str, str | None]:
    counts: Counter[str] = Counter(c for found in candidates.values() for c in set(found))
    return {
        uri: next((c for c in found if counts[c] == 1), None) for uri, found in candidates.items()
    }


def display_names(keys: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """URI -> display name, for every asset `uri -> (namespace, name)` of one key space.

    Jobs and datasets are separate key spaces (a dbt model's job and the table
    it builds may share a name); name each space apart, the kind tells them apart.
    """
    ends = {uri: suffixes(name) for uri, (_, name) in keys.items()}
    out = _shortest_unique(ends)
    # The same name in several namespaces: the shortest end that, with the namespace, is unique.
    # (Unique among every asset's ends with their namespaces, so no other asset reads the same.)
    if any(shown is None for shown in out.values()):
        placed = {
            uri: [f"{end} @ {_namespace_tail(keys[uri][0])}" for end in found]
            for uri, found in ends.items()
        }
        again = _shortest_unique(placed)
        out = {uri: shown or again[uri] for uri, shown in out.items()}
    # Two namespaces with the same tail: the URI itself is the one name left.
    return {uri: shown or uri for uri, shown in out.items()}


def uri_breaks(text: str) -> list[str]:
    """`text` in pieces that may be followed by a line break (after `/`, `.`, `:`, `_`, `-`)."""
    return re.findall(r"[^/.:_\-@?&=#]*[/.:_\-@?&=#]*", text)[:-1] or [text]
