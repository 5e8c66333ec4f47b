"""Printing for the CLI: data on stdout (tables or JSON), messages on stderr, files whole."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring as _string
from pathlib import Path
from typing import Any

import click

from catalog.errors import InvalidInput

#: What a terminal could take for a command (escape sequences, a title change, a
#: clipboard write, a screen clear) or that reorders what is shown (bidi overrides).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LINE_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str, *, lines: bool = True) -> str:
    """`text` with control characters shown escaped (`\\x1b`), never sent raw to a
    terminal; with `lines=False` a newline or tab is escaped too (one line of a table)."""
    pattern = _CONTROL if lines else _LINE_CONTROL
    return pattern.sub(_escaped, text) if pattern.search(text) else text


def echo(line: str) -> None:
    """One line of human output on stdout, control characters escaped."""
    click.echo(safe(line, lines=False))


def _unicode_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group(0)):04x}"


_STR_ONLY = {str}


class _Unusual(Exception):
    """A value `_indented` leaves to the json module (a subclass, a non-str key, ...)."""


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _indented(value: Any, indent: str) -> str:
    """`json.dumps(value, indent=2, ensure_ascii=False)` at nesting `indent`, for plain
    values (str, int, float, bool, None, lists, tuples, dicts with str keys): the same
    text, several times faster (a list of strings is one join). Anything else raises
    `_Unusual`."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return _float(value)
    inner = indent + "  "
    if kind is list or kind is tuple:
        if not value:
            return "[]"
        if set(map(type, value)) == _STR_ONLY:
            body = (",\n" + inner).join(map(_string, value))
        else:
            body = (",\n" + inner).join([_indented(item, inner) for item in value])
        return "[\n" + inner + body + "\n" + indent + "]"
    if kind is dict:
        if not value:
            return "{}"
        parts = []
        for key, item in value.items():
            if type(key) is not str:
                raise _Unusual
            text = _string(item) if type(item) is str else _indented(item, inner)
            parts.append(_string(key) + ": " + text)
        return "{\n" + inner + (",\n" + inner).join(parts) + "\n" + indent + "}"
    raise _Unusual


def json_text(data: Any, indent: str = "") -> str:
    """`json.dumps(data, indent=2, ensure_ascii=False, default=str)`, as nested at
    `indent` (its lines after the first start with it)."""
    try:
        return _indented(data, indent)
    except (_Unusual, RecursionError):
        text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
        return text.replace("\n", "\n" + indent) if indent else text


def echo_json(data: Any) -> None:
    # JSON escapes C0 controls itself; C1 controls and bidi overrides are escaped here.
    click.echo(_CONTROL.sub(_unicode_escape, json_text(data)))


def echo_json_items(items: Iterable[Any]) -> None:
    """`echo_json(list(items))`, the same text, written an item at a time: a long list of
    large items is never held whole, neither as data nor as text."""
    first = True
    for item in items:
        text = _CONTROL.sub(_unicode_escape, json_text(item, "  "))
        click.echo(("[\n  " if first else ",\n  ") + text, nl=False)
        first = False
    click.echo("[]" if first else "\n]")


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table; the last column is never padded."""
    cells = [[str(h) for h in headers]] + [
        ["" if v is None else safe(str(v), lines=False) for v in r] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        click.echo("  ".join(padded).rstrip())


def info(message: str) -> None:
    click.echo(safe(message), err=True)


def write_file(path: Path | str, text: str) -> int:
    """Write `text` to `path` whole or not at all; the bytes written.

    A regular file is written to a temporary file beside it and renamed over
    it, so a full disk or an interrupted run never leaves half a file. A
    device or pipe (`/dev/stdout`, a FIFO) is written in place. Every
    failure is one `InvalidInput` naming the file.
    """
    shown = str(path)
    if not shown.strip():
        raise InvalidInput("the output file name is empty", hint="e.g. -o report.html")
    target = Path(path)
    data = text.encode("utf-8")
    try:
        if target.is_dir():
            raise InvalidInput(f"cannot write {shown}: it is a directory")
        if target.exists() and not target.is_file():
            with target.open("wb") as out:
                out.write(data)
            return len(data)
        if not target.parent.is_dir():
            raise InvalidInput(
                f"cannot write {shown}: directory {target.parent} does not exist",
                hint="create it first",
            )
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".steward-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as err:
        raise InvalidInput(f"cannot write {_short(shown)}: {err.strerror or err}") from err
    return len(data)


def _short(name: str, limit: int = 120) -> str:
    return name if len(name) <= limit else f"{name[:limit]}..."
