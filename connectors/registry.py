"""Connectors are found through the `steward.connectors` entry-point group.

steward's own connectors are declared in its pyproject exactly like a third
party's, so a connector from another package is a first-class citizen.
"""

from __future__ import annotations

import logging
import os
import re
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from catalog.config import CONNECTORS_GROUP, connector_settings
from catalog.errors import InvalidInput
from catalog.identity import redact_url
from connectors.base import Connector

GROUP = CONNECTORS_GROUP
#: `scheme:` at the start: a URL (even a malformed one), not a path.
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
log = logging.getLogger(__name__)


@cache
def available() -> dict[str, type[Connector[Any]]]:
    """Every installed connector class, by its entry-point name.

    A connector whose optional dependency is missing says so when it is used
    (it names the extra to install); one that fails to load at all is logged
    and left out, so that one broken plugin does not break every scan.
    """
    found: dict[str, type[Connector[Any]]] = {}
    for ep in entry_points(group=GROUP):
        try:
            found[ep.name] = ep.load()
        except Exception as err:  # a third-party plugin may fail in any way
            # Said only when no connector reads a URL: not noise on every scan.
            log.debug("connector %s could not be loaded: %s", ep.name, err)
            BROKEN[ep.name] = str(err)
    return found


#: Entry points that failed to load, with why.
BROKEN: dict[str, str] = {}


def for_url(url: str, **options: Any) -> Connector[Any]:
    """The connector that reads `url`, configured with `options`."""
    return _connector(url, options, settings=False)


def for_scan(url: str, **options: Any) -> Connector[Any]:
    """As `for_url`, with the connector's table of steward.toml (in the working
    directory) under the options: what `steward scan` uses."""
    return _connector(url, options, settings=True)


def _connector(url: str, options: dict[str, Any], settings: bool) -> Connector[Any]:
    if not url.strip():
        raise InvalidInput(
            "the source URL is empty", hint="e.g. steward scan postgres://HOST/DB or features/"
        )
    if not _SCHEME.match(url) and not Path(url).expanduser().exists():
        what = "directory" if url.endswith(("/", os.sep)) else "file or directory"
        raise InvalidInput(
            f"no such {what}: {url}",
            hint="a path must exist; a database or vector store is a URL, e.g. postgres://HOST/DB",
        )
    try:
        urlsplit(url).port  # noqa: B018 (a `[` or a bad port: one line, not a traceback)
    except ValueError as err:
        raise InvalidInput(
            f"{redact_url(url)!r} is not a valid URL: {err}",
            hint="write SCHEME://HOST:PORT/...; an IPv6 host goes in [brackets], "
            "and a password's @ / ? # [ ] as %40 %2F %3F %23 %5B %5D",
        ) from None
    for cls in available().values():
        if cls.accepts(url):
            table, where = connector_settings(cls.kind) if settings else ({}, "")
            config = cls.config_class.from_options(url, options, table, where)
            return cls(config)
    kinds = ", ".join(sorted(available())) or "none installed"
    broken = "".join(f"; {name} failed to load: {why}" for name, why in sorted(BROKEN.items()))
    raise InvalidInput(
        f"no connector reads {redact_url(url)!r}", hint=f"installed connectors: {kinds}{broken}"
    )
