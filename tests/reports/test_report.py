"""The HTML report: structure, determinism, escaping, the CLI (no browser here)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from click.testing import CliRunner
from sqlmodel import select

from catalog.cli import cli
from catalog.db import Store
from catalog.models import Asset
from catalog.queries import history
from lineage.findings import list_findings
from reports.context import build_context, embed_json
from reports.load import Snapshot, load_snapshot
from reports.names import display_names, suffixes
from reports.render import assets as static_assets
from reports.render import breakable, render_html, render_report
from reports.view import MAX_VIEW
from tests.reports.stack import HOSTILE, build_stack

#: Elements with no end tag.
VOID = {"meta", "link", "input", "br", "img", "hr", "source", "wbr", "area", "col", "base"}


class Page(HTMLParser):
    """Ids, links, elements and script blocks of a page, and its visible text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.tags: list[str] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.text: list[str] = []
        self._script: dict[str, str | None] | None = None
        self.open: list[str] = []
        self.feed(html)
        self.close()
        assert self.open == [], f"unclosed elements: {self.open}"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append(tag)
        if tag not in VOID:
            self.open.append(tag)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag == "a" and found.get("href"):
            self.hrefs.append(str(found["href"]))
        if tag == "script":
            self._script = found

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self.scripts.append((self._script, data))
            self._script = None
        else:
            self.text.append(data)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.open.pop()

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1:]}>"
        self.open.pop()
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, ""))
            self._script = None

    def data(self) -> dict[str, Any]:
        (block,) = [b for a, b in self.scripts if a.get("type") == "application/json"]
        loaded: dict[str, Any] = json.loads(block)
        return loaded


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, str]]:
    """The demo stack with hostile names, on SQLite, rendered once for this module."""
    tmp = tmp_path_factory.mktemp("demo")
    store = Store(f"sqlite:///{tmp / 'catalog.db'}")
    build_stack(store, tmp, hostile=True)
    yield store, render_report(store)
    store.dispose()


def check_structure(store: Store, html: str) -> Page:
    page = Page(html)
    data = page.data()
    uris = [n[0] for n in data["nodes"]]
    with store.session() as session:
        live = session.exec(select(Asset).where(Asset.deleted == False)).all()  # noqa: E712
        assert sorted(a.uri for a in live) == uris
        for asset in live:
            versions = data["details"][uris.index(asset.uri)].get("versions", [])
            assert [v["v"] for v in versions] == [h["version"] for h in history(session, asset)]
        findings = list_findings(session)
    assert findings
    assert sorted(f["id"] for f in data["findings"]) == sorted(f["id"] for f in findings)
    for f in findings:
        assert f"finding-{f['id']}" in page.ids
    # Every in-page link is an anchor of the page or a route the script handles.
    for href in page.hrefs:
        assert href.startswith("#"), href
        if href.startswith("#asset/"):
            assert unquote(href[len("#asset/") :]) in uris, href
        else:
            assert href[1:] in page.ids, href
    # The page opens on a view (the script lays it out and draws it) and has where to draw it.
    assert data["view"] and {"graph", "viewport", "legend", "asset-view"} <= page.ids
    return page


def test_structure_on_both_backends(store: Store, tmp_path: Path) -> None:
    build_stack(store, tmp_path)
    page = check_structure(store, render_report(store))
    data = page.data()
    names = {data["nodes"][i][1] for i in data["view"]}
    # The stale collection, the skewed feature set and what they put at risk are on screen.
    assert {"docs_chunks", "support-rag", "user_activity", "churn"} <= names
    first = [f["rule"] for f in data["findings"][:2]]
    assert first == ["stale_embeddings", "feature_definition_skew"]
    text = " ".join(page.text)
    assert "Re-embed docs_chunks with all-MiniLM-L6-v2@2" in text
    # the provenance panel says what queries the index, as the rule resolves it
    [chunks] = [i for i, node in enumerate(data["nodes"]) if node[1] == "docs_chunks"]
    assert data["details"][chunks]["queries"] == {"": "all-MiniLM-L6-v2@2"}
    # Severity marks what a finding is about; what it cites upstream is not marked, what
    # reads it is at risk. (node: uri, name, kind, severity, at risk, ...)
    marks = {node[1]: (node[3], node[4]) for node in data["nodes"]}
    assert marks["docs_chunks"][0] == 3 and marks["shop.public.documents"][0] == 3
    assert marks["all-MiniLM-L6-v2"] == (0, 0)  # the model the stale index was built with
    assert marks["shop.public.documents_clean"] == (0, 1)  # reads the broken table
    assert marks["support-rag"] == (0, 1)


def test_last_scan_is_a_scan_not_an_ingest() -> None:
    snap = synthetic(3, 2)
    for uri, origin, seen in (
        ("bench://h:1/n00000", "scan postgres://db:5432/shop", "2026-01-02T00:00:00Z"),
        ("bench://h:1/n00001", "openlineage airflow/etl", "2026-01-03T00:00:00Z"),
    ):
        snap.assets[uri].update(origin=origin, observed_at=seen)
    snap.assets["bench://h:1/n00002"]["observed_at"] = None
    last = build_context(snap)["overview"]["last_scan"]
    assert last == {"at": "2026-01-02T00:00:00Z", "origin": "scan postgres://db:5432/shop"}


def test_demo_structure(demo: tuple[Store, str]) -> None:
    check_structure(*demo)


def test_same_catalog_same_bytes(demo: tuple[Store, str]) -> None:
    store, html = demo
    assert render_report(store) == html
    snap = load_snapshot(store)
    assert build_context(snap) == build_context(load_snapshot(store))


def test_same_bytes_in_another_process(demo: tuple[Store, str]) -> None:
    """No set or dict order leaks into the page: other hash seeds, same bytes."""
    store, html = demo
    code = (
        "import sys; from catalog.db import Store; from reports.render import render_report; "
        "sys.stdout.write(render_report(Store(sys.argv[1])))"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code, store.url],
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        )
        assert out.stdout.decode("utf-8") == html


def test_hostile_names_are_text(demo: tuple[Store, str]) -> None:
    _, html = demo
    page = Page(html)
    # No element came from the data: one JSON block and the packaged script, no images.
    assert "img" not in page.tags
    assert [a.get("type") for a, _ in page.scripts] == ["application/json", None]
    assert page.scripts[1][1] == str(static_assets()["js"])
    for hostile in HOSTILE:
        assert hostile not in html
        assert hostile in "".join(page.text)  # shown, as text
    data = page.data()
    names = [n[1] for n in data["nodes"]]
    fields = [f[0] for d in data["details"] for f in d.get("fields", [])]
    titles = [f["title"] for f in data["findings"]]
    for hostile in HOSTILE:
        assert hostile in names and hostile in fields
    assert f"{HOSTILE[0]} {HOSTILE[1]}" in titles
    # The policy allows only the packaged script and no network access at all.
    csp = static_assets()["csp"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp.split("script-src")[1]


def test_embed_json_is_inert_and_round_trips() -> None:
    value = {"x": "</script><!-- & \u2028\u2029 >", "</": ["<b>"]}
    text = embed_json(value)
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert json.loads(text) == value


# -- pure parts: layout, the opening view ---------------------------------------------------


def test_display_names_are_the_shortest_unique_end() -> None:
    keys = {
        "pg://a/1": ("postgres://a:5432", "shop.public.customers"),
        "pg://a/2": ("postgres://a:5432", "shop.public.customer_ltv"),
        "pg://a/3": ("postgres://a:5432", "shop.staging.customers"),
        "pg://b/1": ("postgres://b:5432", "shop.staging.customers"),
        "q://x": ("qdrant+local:///tmp/x/qdrant", "docs"),
        "dbt://j": ("dbt", "realprod_jaffle.analytics.customer_revenue"),
        "dbt://k": ("dbt", "realprod_jaffle.staging.customer_revenue"),
    }
    names = display_names(keys)
    assert names == {
        "pg://a/1": "public.customers",
        "pg://a/2": "customer_ltv",
        "pg://a/3": "staging.customers @ a:5432",  # `customers @ a:5432` is two tables
        "pg://b/1": "customers @ b:5432",
        "q://x": "docs",
        "dbt://j": "analytics.customer_revenue",
        "dbt://k": "staging.customer_revenue",
    }
    assert len(set(names.values())) == len(names)
    # The same keys in another order give the same names.
    assert display_names(dict(reversed(list(keys.items())))) == names
    assert suffixes("a.b/c") == ["c", "b/c", "a.b/c"]


def test_uris_wrap_at_separators_and_stay_escaped() -> None:
    shown = str(breakable("qdrant+local:///tmp/x/<b>docs_chunks"))
    assert shown == ("qdrant+local:///<wbr>tmp/<wbr>x/<wbr>&lt;b&gt;docs_<wbr>chunks")


def synthetic(count: int, edges: int, seed: int = 0) -> Snapshot:
    rng = random.Random(seed)
    snap = Snapshot()
    for i in range(count):
        snap.assets[f"bench://h:1/n{i:05d}"] = {
            "namespace": "bench://h:1",
            "name": f"n{i:05d}",
            "kind": ("table", "view", "collection", "model")[i % 4],
            "version": 1,
            "unresolved": False,
            "origin": "bench",
            "description": None,
            "observed": {},
            "observed_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        }
    uris = sorted(snap.assets)
    pairs = {(rng.randrange(count), rng.randrange(count)) for _ in range(edges)}
    snap.edges = sorted((uris[s], uris[t], "reads") for s, t in pairs)
    return snap


def test_opening_view_is_capped_and_everything_is_in_the_data() -> None:
    snap = synthetic(3000, 9000)
    context = build_context(snap)
    data = json.loads(context["data"])
    assert len(data["nodes"]) == 3000 and len(data["edges"]) == len(snap.edges)
    assert 0 < len(data["view"]) <= MAX_VIEW and context["shown"] == len(data["view"])
    focused = build_context(snap, focus="bench://h:1/n00007", depth=1)
    view = json.loads(focused["data"])["view"]
    neighbours = {s for s, t, _ in snap.edges if t.endswith("n00007")}
    neighbours |= {t for s, t, _ in snap.edges if s.endswith("n00007")}
    assert {data["nodes"][i][0] for i in view} == neighbours | {"bench://h:1/n00007"}
    assert Page(render_html(context)).data()["view"] == data["view"]


def test_empty_catalog(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    page = Page(render_report(store))
    assert page.data()["nodes"] == [] and "No open findings" in " ".join(page.text)
    store.dispose()


# -- the command -----------------------------------------------------------------------------


def test_report_command(demo: tuple[Store, str], tmp_path: Path) -> None:
    store, html = demo
    out = tmp_path / "report.html"
    run = CliRunner().invoke(cli, ["--catalog", store.url, "report", "-o", str(out)])
    assert run.exit_code == 0, run.output
    assert out.read_text(encoding="utf-8") == html
    assert "wrote" in run.stderr and run.stdout == ""
    focused = CliRunner().invoke(
        cli, ["--catalog", store.url, "report", "-o", "-", "--focus", "docs_chunks", "--depth", "2"]
    )
    assert focused.exit_code == 0, focused.output
    data = Page(focused.stdout).data()
    assert data["nodes"][data["focus"]][1] == "docs_chunks" and data["depth"] == 2
    missing = CliRunner().invoke(cli, ["--catalog", store.url, "report", "--focus", "nope"])
    assert missing.exit_code == 2 and "no asset matches 'nope'" in missing.stderr


def test_report_has_help_in_root_listing() -> None:
    run = CliRunner().invoke(cli, ["--help"])
    assert "report" in run.stdout and "self-contained HTML" in run.stdout


def test_a_finding_shows_how_many_it_puts_at_risk_beyond_its_list(store: Store) -> None:
    """An error listing the nearest of the assets it puts at risk shows the count of them
    all (in the finding's card, the findings table and the page's data), and draws the
    paths of the listed ones."""
    from lineage.findings import run_check
    from lineage.rules import AT_RISK_SHOWN
    from tests.lineage.test_at_risk_bound import WIDE, wide

    wide(store)
    run_check(store)
    context = build_context(load_snapshot(store))
    (row,) = [f for f in context["findings"] if f["rule"] == "breaking_schema_change"]
    assert row["at_risk"] == WIDE
    html = render_html(context)
    assert f"puts at risk {WIDE} downstream" in html
    assert f'<td class="num">{WIDE}</td>' in html
    (data,) = [f for f in json.loads(context["data"])["findings"] if f["at_risk"]]
    assert (data["at_risk_count"], len(data["at_risk"])) == (WIDE, AT_RISK_SHOWN)
