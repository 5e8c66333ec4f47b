"""Render the report: Jinja (autoescaped, strict) over the context of `reports.context`.

`render_report(store)` is the whole pipeline (read, build, render) and is
what `steward report` writes and `steward serve` serves at `/`. The page's
stylesheet and script are inlined from `reports/templates/`; the page's
Content-Security-Policy allows no network access at all and only that one
script (by its hash), so even a name that slipped past escaping could not run.
The script is the vendored dagre (`templates/vendor/`, the graph's layout)
followed by `report.js`.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from catalog.db import Store
from catalog.queries import resolve
from reports.context import DEFAULT_DEPTH, build_context, when
from reports.load import load_neighbourhood, load_snapshot
from reports.names import uri_breaks


def breakable(text: str) -> Markup:
    """`text` escaped, with a `<wbr>` after each separator: a URI wraps at `/`, `.`, `:`..."""
    return Markup("<wbr>").join(escape(piece) for piece in uri_breaks(text))


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reports"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["when"] = when
    env.filters["breakable"] = breakable
    return env


def _static(name: str) -> str:
    env = environment()
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, name)
    return source


@cache
def assets() -> dict[str, Any]:
    """The inline stylesheet and script, and the CSP that allows exactly them."""
    css = _static("report.css")
    js = _static("vendor/dagre.min.js") + "\n" + _static("report.js")
    digest = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    return {"css": Markup(css), "js": Markup(js), "csp": csp}


def render_html(context: dict[str, Any]) -> str:
    """The page for a context built by `reports.context.build_context`."""
    template = environment().get_template("report.html.j2")
    data = Markup(context["data"])  # escaped for a script block by `embed_json`
    return template.render(**{**context, "data": data}, static=assets())


def render_report(
    store: Store, focus: str | None = None, depth: int = DEFAULT_DEPTH, served: bool = False
) -> str:
    """The report of the catalog in `store`, as one self-contained HTML page.

    `focus` is an asset reference (URI or unambiguous suffix, as everywhere in
    steward); the page then holds only the assets within `depth` hops of it,
    either way (`reports.load.load_neighbourhood`), and says how to see more
    (`served`: with links of the live page). Raises `catalog.errors.NotFound` /
    `Ambiguous` for a bad reference.
    """
    if focus is None:
        return render_html(build_context(load_snapshot(store), depth=depth))
    with store.session() as session:
        uri = resolve(session, focus).uri
    snapshot = load_neighbourhood(store, uri, depth)
    assert snapshot.scope is not None
    context = build_context(snapshot, focus=snapshot.scope.focus, depth=depth, served=served)
    return render_html(context)
