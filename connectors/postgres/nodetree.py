"""Column-level view lineage from PostgreSQL's stored query trees (`pg_node_tree`).

A view's `_RETURN` rule keeps its parsed query as text in `pg_rewrite.ev_action`
(the format of PostgreSQL's `outfuncs.c`). `pg_depend` says which columns a
view reads, but not which output column each feeds; the query tree does. This
module parses that text and follows each output column's expression through
joins, subqueries, CTEs and (PostgreSQL 18) grouping to the base columns it
is computed from. Pure functions; anything it cannot follow is left out
rather than guessed.
"""

from __future__ import annotations

import re
from typing import Any, TypeGuard

#: A source column: (relation oid, attribute number).
Source = tuple[int, int]

_DELIMITERS = frozenset("(){}")
_MAX_DEPTH = 64


class NodeTreeError(ValueError):
    """The text is not a query tree this parser understands."""


class Str(str):
    """A double-quoted string token (as opposed to a bare word)."""

    __slots__ = ()


_TOKEN = re.compile(r"[(){}]|(?:\\.|[^\s(){}\\])+", re.DOTALL)


def _word(raw: str) -> str:
    """One non-bracket token: unescaped, typed (`Str` for quoted or escaped words)."""
    if "\\" not in raw:
        if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
            return Str(raw[1:-1])
        return raw
    chars: list[str] = []
    last_escaped = False
    i = 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw):
            chars.append(raw[i + 1])
            last_escaped = True
            i += 2
        else:
            chars.append(raw[i])
            last_escaped = False
            i += 1
    word = "".join(chars)
    if raw[0] == "\\":
        # An escaped first character: a word, never `<>`, a quote or a field name.
        return Str(word)
    if len(word) >= 2 and word[0] == '"' and word[-1] == '"' and not last_escaped:
        return Str(word[1:-1])
    return word


def _tokens(text: str) -> list[str]:
    """Split like PostgreSQL's `pg_strtok`: brackets, or words with backslash escapes."""
    return [
        raw if raw[0] != '"' and "\\" not in raw else _word(raw) for raw in _TOKEN.findall(text)
    ]


class _Frame:
    """A node being read: its dict, the field being filled and that field's values."""

    __slots__ = ("key", "node", "values")

    def __init__(self) -> None:
        self.node: dict[str, Any] = {}
        self.key: str | None = None
        self.values: list[Any] = []

    def commit(self) -> None:
        if self.key is not None:
            values = self.values
            self.node[self.key] = values[0] if len(values) == 1 else (values or None)


#: Integer, oid, bitmap and xid lists are written `(i 1 2)`, `(o ...)`, `(b ...)`, `(x ...)`.
_TYPED_LISTS = frozenset({"i", "o", "b", "x"})


def parse(text: str) -> Any:
    """The query tree as nested dicts (`_node` names the node type) and lists.

    One pass over the tokens with an explicit stack (query trees of wide
    views run to tens of thousands of tokens).
    """
    root: list[Any] = []
    stack: list[Any] = [root]
    naming = False
    for token in _tokens(text):
        top = stack[-1]
        if naming:
            top.node["_node"] = token
            naming = False
            continue
        value: Any = token
        if type(token) is str:
            if token == "{":
                stack.append(_Frame())
                naming = True
                continue
            if token == "(":
                stack.append([])
                continue
            if token == "}":
                if not isinstance(top, _Frame):
                    raise NodeTreeError("unbalanced '}' in query tree")
                top.commit()
                stack.pop()
                value = top.node
            elif token == ")":
                if isinstance(top, _Frame) or len(stack) < 2:
                    raise NodeTreeError("unbalanced ')' in query tree")
                stack.pop()
                value = top[1:] if top and type(top[0]) is str and top[0] in _TYPED_LISTS else top
            elif token == "<>":
                value = None
            elif token[0] == ":" and isinstance(top, _Frame) and (top.key is None or top.values):
                # A field name. Every field is written with a value (`<>` for
                # none), so right after a name even `:x` is that field's value.
                top.commit()
                top.key = token[1:]
                top.values = []
                continue
        parent = stack[-1]
        if isinstance(parent, _Frame):
            if parent.key is None:
                raise NodeTreeError(f"expected a field name, got {value!r}")
            parent.values.append(value)
        else:
            parent.append(value)
    if len(stack) != 1 or len(root) != 1:
        raise NodeTreeError("unbalanced or empty query tree")
    return root[0]


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _is_node(value: Any, name: str) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and value.get("_node") == name


def _targets(query: dict[str, Any]) -> list[dict[str, Any]]:
    entries = query.get("targetList") or []
    return [
        te
        for te in entries
        if _is_node(te, "TARGETENTRY") and str(te.get("resjunk", "false")) != "true"
    ]


class _Resolver:
    def __init__(self) -> None:
        self.depth = 0

    def expr(self, node: Any, stack: list[dict[str, Any]], out: set[Source]) -> None:
        self.depth += 1
        try:
            if self.depth > _MAX_DEPTH:
                raise NodeTreeError("query tree nested too deeply")
            if isinstance(node, list):
                for item in node:
                    self.expr(item, stack, out)
            elif isinstance(node, dict):
                kind = node.get("_node")
                if kind == "VAR":
                    level = _int(node.get("varlevelsup"))
                    if level < len(stack):
                        outer = stack[: len(stack) - level]
                        self.var(
                            outer[-1],
                            _int(node.get("varno")),
                            _int(node.get("varattno")),
                            outer,
                            out,
                        )
                elif kind == "QUERY":
                    # A sub-select in an expression: its output is what feeds the column.
                    for te in _targets(node):
                        self.target(node, _int(te.get("resno")), stack, out)
                else:
                    for key, value in node.items():
                        if key != "_node":
                            self.expr(value, stack, out)
        finally:
            self.depth -= 1

    def target(
        self, query: dict[str, Any], resno: int, stack: list[dict[str, Any]], out: set[Source]
    ) -> None:
        """The sources of output column `resno` of `query` (run inside `stack`)."""
        if query.get("setOperations") is not None:
            # UNION / INTERSECT / EXCEPT: column N of every branch feeds column N.
            for rte in query.get("rtable") or []:
                branch = rte.get("subquery") if isinstance(rte, dict) else None
                if _is_node(branch, "QUERY"):
                    self.target(branch, resno, [*stack, query], out)
            return
        for te in _targets(query):
            if _int(te.get("resno")) == resno:
                self.expr(te.get("expr"), [*stack, query], out)

    def var(
        self,
        query: dict[str, Any],
        varno: int,
        attno: int,
        stack: list[dict[str, Any]],
        out: set[Source],
    ) -> None:
        rtable = query.get("rtable") or []
        if not 1 <= varno <= len(rtable) or attno <= 0:
            return
        rte = rtable[varno - 1]
        if not isinstance(rte, dict):
            return
        subquery = rte.get("subquery")
        if _is_node(subquery, "QUERY"):
            self.target(subquery, attno, stack, out)
            return
        for key in ("joinaliasvars", "groupexprs"):
            exprs = rte.get(key)
            if isinstance(exprs, list):
                if attno <= len(exprs):
                    self.expr(exprs[attno - 1], stack, out)
                return
        ctename = rte.get("ctename")
        if ctename:
            level = _int(rte.get("ctelevelsup"))
            if level >= len(stack):
                return
            owner = stack[len(stack) - 1 - level]
            for cte in owner.get("cteList") or []:
                if _is_node(cte, "COMMONTABLEEXPR") and cte.get("ctename") == ctename:
                    ctequery = cte.get("ctequery")
                    if _is_node(ctequery, "QUERY"):
                        self.target(ctequery, attno, stack[: len(stack) - level], out)
            return
        relid = _int(rte.get("relid"))
        if relid:
            out.add((relid, attno))


def column_sources(action: str) -> dict[str, set[Source]]:
    """For each output column of a view's rule action, the base columns it is computed from.

    Raises `NodeTreeError` when the text cannot be parsed.
    """
    tree = parse(action)
    queries = tree if isinstance(tree, list) else [tree]
    if not queries or not _is_node(queries[0], "QUERY"):
        raise NodeTreeError("the rule action is not a query")
    query = queries[0]
    resolver = _Resolver()
    result: dict[str, set[Source]] = {}
    for te in _targets(query):
        name = te.get("resname")
        if name is None:
            continue
        found: set[Source] = set()
        resolver.target(query, _int(te.get("resno")), [], found)
        result[str(name)] = found
    return result
