(function () {
  "use strict";
  var T0 = performance.now();
  var SVGNS = "http://www.w3.org/2000/svg";
  var DATA = JSON.parse(document.getElementById("steward-data").textContent);
  var L = DATA.layout;
  var NODES = DATA.nodes;
  var DETAILS = DATA.details;
  var N = NODES.length;
  var SEV = ["", "info", "warning", "error"];
  var EXPAND_LIMIT = 60;

  // -- adjacency (edge kinds kept for the details panel) ------------------------------
  var succ = [], pred = [], byUri = new Map();
  for (var i = 0; i < N; i++) { succ.push([]); pred.push([]); byUri.set(NODES[i][0], i); }
  DATA.edges.forEach(function (e) {
    if (e[0] === e[1]) { return; }
    succ[e[0]].push([e[1], e[2]]);
    pred[e[1]].push([e[0], e[2]]);
  });
  function neighbours(n) {
    var out = new Set();
    succ[n].forEach(function (p) { out.add(p[0]); });
    pred[n].forEach(function (p) { out.add(p[0]); });
    return out;
  }

  // -- layout: a port of reports/layout.py (a test checks they agree) -----------------
  function num(a, b) { return a - b; }
  function layered(nodeList, pairsIn) {
    var ordered = Array.from(new Set(nodeList)).sort(num);
    var inside = new Set(ordered);
    var seen = new Set(), pairs = [];
    pairsIn.forEach(function (p) {
      var key = p[0] + ":" + p[1];
      if (p[0] !== p[1] && inside.has(p[0]) && inside.has(p[1]) && !seen.has(key)) {
        seen.add(key); pairs.push([p[0], p[1]]);
      }
    });
    pairs.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
    var sc = new Map(), pr = new Map();
    ordered.forEach(function (n) { sc.set(n, []); pr.set(n, []); });
    pairs.forEach(function (p) { sc.get(p[0]).push(p[1]); pr.get(p[1]).push(p[0]); });
    // 1. layers
    var indeg = new Map(), ready = [], layer = new Map(), order = [];
    ordered.forEach(function (n) { indeg.set(n, pr.get(n).length); if (!pr.get(n).length) { ready.push(n); } });
    var remaining = new Set(ordered);
    while (remaining.size) {
      if (!ready.length) {
        var best = null;
        remaining.forEach(function (n) {
          if (best === null || indeg.get(n) < indeg.get(best) || (indeg.get(n) === indeg.get(best) && n < best)) { best = n; }
        });
        ready.push(best);
      }
      var at = 0;
      for (var r = 1; r < ready.length; r++) { if (ready[r] < ready[at]) { at = r; } }
      var n = ready.splice(at, 1)[0];
      if (!remaining.has(n)) { continue; }
      remaining.delete(n);
      order.push(n);
      var l = 0;
      pr.get(n).forEach(function (p) { if (layer.has(p)) { l = Math.max(l, layer.get(p) + 1); } });
      layer.set(n, l);
      sc.get(n).forEach(function (s) {
        indeg.set(s, indeg.get(s) - 1);
        if (indeg.get(s) === 0 && remaining.has(s)) { ready.push(s); }
      });
    }
    for (var o = order.length - 1; o >= 0; o--) {
      var m = order[o];
      if (!pr.get(m).length && sc.get(m).length) {
        var ahead = sc.get(m).map(function (s) { return layer.get(s); }).filter(function (v) { return v > layer.get(m); });
        if (ahead.length) { layer.set(m, Math.min.apply(null, ahead) - 1); }
      }
    }
    var values = Array.from(new Set(layer.values())).sort(num), dense = new Map();
    values.forEach(function (v, k) { dense.set(v, k); });
    ordered.forEach(function (n) { layer.set(n, dense.get(layer.get(n))); });
    // 2. order within layers
    var count = values.length, columns = [];
    for (var c = 0; c < count; c++) { columns.push([]); }
    ordered.forEach(function (n) { columns[layer.get(n)].push(n); });
    for (var sweep = 0; sweep < L.sweeps; sweep++) {
      var down = sweep % 2 === 0;
      var idx = [];
      if (down) { for (var a = 1; a < count; a++) { idx.push(a); } } else { for (var b = count - 2; b >= 0; b--) { idx.push(b); } }
      idx.forEach(function (ci) {
        var rank = new Map();
        columns.forEach(function (col) { col.forEach(function (nn, rr) { rank.set(nn, rr); }); });
        var keyed = columns[ci].map(function (nn, rr) {
          var near = (down ? pr.get(nn) : sc.get(nn)).filter(function (mm) { return layer.get(mm) !== ci; });
          var placed = near.filter(function (mm) { return rank.has(mm); }).map(function (mm) { return rank.get(mm); });
          var bc = rr;
          if (placed.length) { var total = 0; placed.forEach(function (v) { total += v; }); bc = total / placed.length; }
          return [bc, nn];
        });
        keyed.sort(function (x, y) { return x[0] - y[0] || x[1] - y[1]; });
        columns[ci] = keyed.map(function (k) { return k[1]; });
      });
    }
    // 3. coordinates
    var tallest = 0;
    columns.forEach(function (col) { tallest = Math.max(tallest, col.length); });
    var height = tallest ? tallest * (L.H + L.GY) - L.GY : 0;
    var pos = new Map();
    columns.forEach(function (col, ci) {
      var top = L.M + Math.floor((height - (col.length * (L.H + L.GY) - L.GY)) / 2);
      col.forEach(function (nn, rr) { pos.set(nn, [L.M + ci * (L.W + L.GX), top + rr * (L.H + L.GY)]); });
    });
    return {
      pos: pos, edges: pairs,
      width: count ? 2 * L.M + count * (L.W + L.GX) - L.GX : 2 * L.M,
      height: 2 * L.M + height
    };
  }
  function edgePath(s, t) {
    var x1 = s[0] + L.W, y1 = s[1] + Math.floor(L.H / 2), x2 = t[0], y2 = t[1] + Math.floor(L.H / 2);
    if (x2 > x1) {
      var bend = Math.max(40, Math.floor((x2 - x1) / 2));
      return "M" + x1 + "," + y1 + " C" + (x1 + bend) + "," + y1 + " " + (x2 - bend) + "," + y2 + " " + x2 + "," + y2;
    }
    var drop = y2 >= y1 ? L.H : -L.H;
    return "M" + x1 + "," + y1 + " C" + (x1 + 80) + "," + (y1 + drop) + " " + (x2 - 80) + "," + (y2 + drop) + " " + x2 + "," + y2;
  }

  // -- DOM helpers: text only, never HTML ------------------------------------------------
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    return e;
  }
  function label(text) {
    if (text.length <= L.label) { return text; }
    if (text.indexOf("/") !== -1) { return "\u2026" + text.slice(text.length - (L.label - 1)); }
    return text.slice(0, L.label - 1) + "\u2026";
  }
  function meta(n) {
    var d = NODES[n], parts = [DATA.kinds[d[2]].split("_").join(" ")];
    if (d[5]) { parts.push("unresolved"); } else if (d[6]) { parts.push("v" + d[6]); }
    return parts.join(" \u00b7 ");
  }
  function assetLink(n, text) {
    var a = el("a", "", text === undefined ? NODES[n][1] : text);
    a.href = "#asset:" + encodeURIComponent(NODES[n][0]);
    a.title = NODES[n][0];
    return a;
  }
  function uriLink(uri) {
    return byUri.has(uri) ? assetLink(byUri.get(uri)) : el("span", "", uri);
  }
  function when(iso) { return iso ? iso.slice(0, 19).replace("T", " ") + " UTC" : ""; }
  function short(value) {
    var text = typeof value === "string" ? value : JSON.stringify(value);
    return text.length > 240 ? text.slice(0, 239) + "\u2026" : text;
  }

  // -- the graph view ---------------------------------------------------------------------
  var wrap = document.getElementById("graph-wrap");
  var root = document.getElementById("graph");
  var viewport = document.getElementById("viewport");
  var visible = new Set(DATA.view);
  var current = null, selected = null;
  var view = { x: 0, y: 0, k: 1 };

  function applyView() {
    viewport.setAttribute("transform", "translate(" + view.x + "," + view.y + ") scale(" + view.k + ")");
  }
  function riskEdges() {
    var out = new Set();
    DATA.findings.forEach(function (f) {
      (f.at_risk || []).forEach(function (r) {
        var p = r.path || [];
        for (var k = 1; k < p.length; k++) {
          if (byUri.has(p[k - 1]) && byUri.has(p[k])) { out.add(byUri.get(p[k - 1]) + ":" + byUri.get(p[k])); }
        }
      });
    });
    return out;
  }
  var RISK = riskEdges();

  function drawNode(n, x, y) {
    var d = NODES[n];
    var cls = ["node", DATA.kindClass[d[2]]];
    if (d[3]) { cls.push("s-" + SEV[d[3]]); }
    if (d[4]) { cls.push("at-risk"); }
    if (d[5]) { cls.push("unresolved"); }
    var g = svg("g", { "class": cls.join(" "), "data-i": n, transform: "translate(" + x + "," + y + ")", tabindex: 0 });
    var title = svg("title");
    title.textContent = d[0];
    g.appendChild(title);
    g.appendChild(svg("rect", { "class": "box", width: L.W, height: L.H, rx: 8 }));
    g.appendChild(svg("rect", { "class": "stripe", width: 6, height: L.H, rx: 3 }));
    var name = svg("text", { "class": "name", x: 16, y: 20 });
    name.textContent = label(d[1]);
    g.appendChild(name);
    var m = svg("text", { "class": "meta", x: 16, y: 36 });
    m.textContent = meta(n);
    g.appendChild(m);
    if (d[3]) { g.appendChild(svg("circle", { "class": "sev", cx: L.W - 12, cy: 12, r: 5 })); }
    var hidden = 0;
    neighbours(n).forEach(function (o) { if (!visible.has(o)) { hidden++; } });
    if (hidden) {
      var more = svg("g", { "class": "more", transform: "translate(" + (L.W - 34) + ",26)" });
      more.appendChild(svg("rect", { width: 30, height: 16, rx: 8 }));
      var t = svg("text", { x: 15, y: 12 });
      t.textContent = "+" + hidden;
      more.appendChild(t);
      g.appendChild(more);
    }
    return g;
  }

  function render() {
    var ids = Array.from(visible);
    var pairs = [];
    ids.forEach(function (s) { succ[s].forEach(function (p) { if (visible.has(p[0])) { pairs.push([s, p[0]]); } }); });
    current = layered(ids, pairs);
    var edgesG = svg("g", { "class": "edges" }), nodesG = svg("g", { "class": "nodes" });
    var drawn = new Set();
    DATA.edges.forEach(function (e) {
      var key = e[0] + ":" + e[1];
      if (e[0] === e[1] || drawn.has(key) || !visible.has(e[0]) || !visible.has(e[1])) { return; }
      drawn.add(key);
      var cls = "edge " + DATA.edgeClass[e[2]] + (RISK.has(key) ? " risk" : "");
      edgesG.appendChild(svg("path", {
        "class": cls, d: edgePath(current.pos.get(e[0]), current.pos.get(e[1])),
        "data-s": e[0], "data-t": e[1], "marker-end": "url(#arrow)"
      }));
    });
    Array.from(current.pos.keys()).sort(num).forEach(function (n) {
      var p = current.pos.get(n);
      nodesG.appendChild(drawNode(n, p[0], p[1]));
    });
    while (viewport.firstChild) { viewport.removeChild(viewport.firstChild); }
    viewport.appendChild(edgesG);
    viewport.appendChild(nodesG);
    if (selected !== null) { mark(selected); }
  }

  function fit() {
    var w = freeWidth(), h = wrap.clientHeight || 600;
    var k = Math.min(w / current.width, h / current.height, 1.25);
    view.k = Math.max(k, 0.2);
    view.x = (w - current.width * view.k) / 2;
    view.y = Math.max(0, (h - current.height * view.k) / 2);
    applyView();
  }
  function freeWidth() {
    var w = wrap.clientWidth || 800;
    return panel.hidden ? w : Math.max(w / 2, w - panel.offsetWidth - 20);
  }
  function reveal(n) {
    var p = current.pos.get(n);
    if (!p) { return; }
    var left = view.x + p[0] * view.k, right = left + L.W * view.k, free = freeWidth();
    if (right > free || left < 0) {
      view.x += free / 2 - (left + right) / 2;
      applyView();
    }
  }
  function centerOn(n) {
    var p = current.pos.get(n);
    if (!p) { return; }
    var w = freeWidth(), h = wrap.clientHeight || 600;
    view.k = Math.max(view.k, 0.8);
    view.x = w / 2 - (p[0] + L.W / 2) * view.k;
    view.y = h / 2 - (p[1] + L.H / 2) * view.k;
    applyView();
  }
  function zoom(factor, cx, cy) {
    var k = Math.min(3, Math.max(0.08, view.k * factor));
    var w = wrap.clientWidth || 800, h = wrap.clientHeight || 600;
    if (cx === undefined) { cx = w / 2; cy = h / 2; }
    view.x = cx - (cx - view.x) * (k / view.k);
    view.y = cy - (cy - view.y) * (k / view.k);
    view.k = k;
    applyView();
  }

  function expand(n) {
    var before = current.pos.get(n);
    var added = 0;
    Array.from(neighbours(n)).sort(num).forEach(function (o) {
      if (!visible.has(o) && added < EXPAND_LIMIT) { visible.add(o); added++; }
    });
    render();
    var after = current.pos.get(n);
    if (before && after) {  // keep the expanded node where the reader was looking
      view.x += (before[0] - after[0]) * view.k;
      view.y += (before[1] - after[1]) * view.k;
      applyView();
    }
  }
  function show(n) {
    if (!visible.has(n)) {
      visible.add(n);
      render();
    }
    select(n);
    centerOn(n);
  }

  function mark(n) {
    wrap.classList.add("has-selection");
    viewport.querySelectorAll(".node.selected").forEach(function (g) { g.classList.remove("selected"); });
    viewport.querySelectorAll(".edge.hl").forEach(function (p) { p.classList.remove("hl"); });
    var g = viewport.querySelector('.node[data-i="' + n + '"]');
    if (g) { g.classList.add("selected"); }
    viewport.querySelectorAll(".edge").forEach(function (p) {
      if (p.getAttribute("data-s") === String(n) || p.getAttribute("data-t") === String(n)) { p.classList.add("hl"); }
    });
  }
  function select(n) {
    var opening = panel.hidden;
    selected = n;
    mark(n);
    details(n);
    if (opening) { fit(); }
    reveal(n);
    var hash = "#asset:" + encodeURIComponent(NODES[n][0]);
    if (location.hash !== hash) { history.replaceState(null, "", hash); }
  }

  // -- the details panel ----------------------------------------------------------------
  var panel = document.getElementById("details");
  function table(head, rows) {
    var t = el("table"), tr = el("tr");
    head.forEach(function (h) { tr.appendChild(el("th", "", h)); });
    var thead = el("thead");
    thead.appendChild(tr);
    t.appendChild(thead);
    var body = el("tbody");
    rows.forEach(function (r) {
      var row = el("tr");
      r.forEach(function (c) {
        var td = el("td");
        if (c instanceof Node) { td.appendChild(c); } else { td.textContent = c === null || c === undefined ? "" : String(c); }
        row.appendChild(td);
      });
      body.appendChild(row);
    });
    t.appendChild(body);
    return t;
  }
  function findingBox(fi) {
    var f = DATA.findings[fi];
    var box = el("div", "d-finding sev-" + f.severity);
    var head = el("div", "d-head");
    head.appendChild(el("span", "badge sev-" + f.severity, f.severity));
    var a = el("a", "", f.title);
    a.href = "#finding-" + f.id;
    head.appendChild(a);
    box.appendChild(head);
    var remedy = el("p", "remedy");
    remedy.appendChild(el("span", "fix", "Fix"));
    remedy.appendChild(document.createTextNode(f.remedy));
    box.appendChild(remedy);
    return box;
  }
  function linkList(items) {
    var ul = el("ul", "links");
    items.sort(function (x, y) { return x[0] - y[0]; }).forEach(function (p) {
      var li = el("li");
      li.appendChild(assetLink(p[0]));
      li.appendChild(el("span", "ek", DATA.edgeKinds[p[1]].split("_").join(" ")));
      ul.appendChild(li);
    });
    return ul;
  }
  function versionBox(v, latest) {
    var box = el("div", "version" + (v.breaking ? " breaking" : ""));
    var head = el("div", "v-head");
    head.appendChild(el("span", "v-num", "v" + v.v));
    if (v.v === latest) { head.appendChild(el("span", "tag current", "current")); }
    if (v.breaking) { head.appendChild(el("span", "tag breaking", "breaking")); }
    if (v.restored) { head.appendChild(el("span", "tag current", "restored")); }
    head.appendChild(el("span", "v-meta", when(v.at) + (v.origin ? " \u00b7 " + v.origin : "")));
    box.appendChild(head);
    box.appendChild(el("div", "v-meta mono", v.fp ? v.fp.slice(0, 16) : ""));
    if (v.diff) {
      var ul = el("ul", "diff");
      v.diff.added.forEach(function (a) { ul.appendChild(el("li", "add", "+ " + a[0] + "  " + a[1])); });
      v.diff.removed.forEach(function (r) { ul.appendChild(el("li", "rem", "- " + r[0] + "  " + r[1] + "  [breaking]")); });
      v.diff.changed.forEach(function (c) {
        ul.appendChild(el("li", c[4] ? "rem" : "chg", "~ " + c[0] + ": " + c[1] + " " + c[2] + " \u2192 " + c[3] + (c[4] ? "  [breaking]" : "")));
      });
      box.appendChild(ul);
    } else if (v.v === 1) {
      box.appendChild(el("div", "v-meta", "first version"));
    }
    return box;
  }
  function details(n) {
    var d = NODES[n], info = DETAILS[n];
    while (panel.firstChild) { panel.removeChild(panel.firstChild); }
    panel.hidden = false;
    var close = el("button", "d-close", "\u00d7");
    close.type = "button";
    close.title = "Close";
    close.addEventListener("click", function () {
      panel.hidden = true;
      selected = null;
      wrap.classList.remove("has-selection");
      viewport.querySelectorAll(".node.selected").forEach(function (g) { g.classList.remove("selected"); });
      viewport.querySelectorAll(".edge.hl").forEach(function (p) { p.classList.remove("hl"); });
    });
    panel.appendChild(close);
    var head = el("div", "d-head");
    head.appendChild(el("span", "chip " + DATA.kindClass[d[2]], DATA.kinds[d[2]].split("_").join(" ")));
    if (d[3]) { head.appendChild(el("span", "badge sev-" + SEV[d[3]], SEV[d[3]])); }
    if (d[4]) { head.appendChild(el("span", "badge sev-warning", "at risk")); }
    if (d[5]) { head.appendChild(el("span", "badge sev-info", "unresolved")); }
    panel.appendChild(head);
    panel.appendChild(el("h3", "", d[1]));
    panel.appendChild(el("div", "d-uri mono", d[0]));
    if (info.desc) { panel.appendChild(el("p", "", info.desc)); }
    var actions = el("div", "d-actions");
    var hidden = 0;
    neighbours(n).forEach(function (o) { if (!visible.has(o)) { hidden++; } });
    var ex = el("button", "", hidden ? "Expand " + hidden + " neighbour" + (hidden === 1 ? "" : "s") : "All neighbours shown");
    ex.type = "button";
    ex.disabled = !hidden;
    ex.addEventListener("click", function () { expand(n); details(n); });
    actions.appendChild(ex);
    var only = el("button", "", "Focus here");
    only.type = "button";
    only.addEventListener("click", function () {
      visible = new Set([n]);
      neighbours(n).forEach(function (o) { visible.add(o); });
      render(); fit(); select(n);
    });
    actions.appendChild(only);
    panel.appendChild(actions);
    if (info.findings) {
      panel.appendChild(el("h4", "", "Findings"));
      info.findings.forEach(function (fi) { panel.appendChild(findingBox(fi)); });
    }
    if (info.risk) {
      panel.appendChild(el("h4", "", "At risk because of"));
      info.risk.forEach(function (fi) {
        panel.appendChild(findingBox(fi));
        var f = DATA.findings[fi];
        (f.at_risk || []).forEach(function (r) {
          if (r.uri !== d[0]) { return; }
          var path = el("div", "path");
          (r.path || []).forEach(function (u, k) {
            if (k) { path.appendChild(el("span", "arrow", "\u2192")); }
            path.appendChild(uriLink(u));
          });
          panel.appendChild(path);
        });
      });
    }
    if (info.bindings) {
      panel.appendChild(el("h4", "", "Embedding provenance"));
      var queries = info.queries || {};
      info.bindings.forEach(function (b) {
        var now = queries[b.part], built = b.model + "@" + b.revision;
        var line = "Built with " + built + (b.part ? " (" + b.part + ")" : "") +
          (now === undefined ? "" : now === built ? "; queries use the same model and revision." : "; queries use " + now + ": stale.");
        panel.appendChild(el("p", now !== undefined && now !== built ? "prov stale" : "prov", line));
      });
      panel.appendChild(table(["model", "part", "found in", "share", "queries use"], info.bindings.map(function (b) {
        var now = queries[b.part];
        var cell = el("span", "", now === undefined ? "" : now);
        if (now !== undefined && now !== b.model + "@" + b.revision) { cell.appendChild(el("span", "tag stale", " stale")); }
        return [b.model + "@" + b.revision, b.part || "\u2014", b.origin, Math.round(b.share * 100) + "%", cell];
      })));
    }
    var ups = pred[n].map(function (p) { return p; }), downs = succ[n].map(function (p) { return p; });
    if (ups.length) { panel.appendChild(el("h4", "", "Upstream (" + ups.length + ")")); panel.appendChild(linkList(ups)); }
    if (downs.length) { panel.appendChild(el("h4", "", "Downstream (" + downs.length + ")")); panel.appendChild(linkList(downs)); }
    if (info.fields) {
      panel.appendChild(el("h4", "", "Fields (" + info.fields.length + ")"));
      panel.appendChild(table(["name", "type", "null", "attributes"], info.fields.map(function (f) {
        return [f[0], f[1], f[2] ? "yes" : "no", f[3]];
      })));
    }
    if (info.versions) {
      panel.appendChild(el("h4", "", "Versions (" + info.versions.length + ")"));
      info.versions.slice().reverse().forEach(function (v) { panel.appendChild(versionBox(v, d[6])); });
    }
    if (info.runs) {
      panel.appendChild(el("h4", "", "Runs"));
      panel.appendChild(table(["job", "run", "state", "ended", "v"], info.runs.map(function (r) {
        return [uriLink(r.job), (r.direction === "input" ? "read " : "wrote ") + r.run.slice(0, 8), r.state, when(r.ended_at || r.started_at), r.version || ""];
      })));
    }
    var kv = [["namespace", info.ns], ["registered by", info.origin], ["last seen", when(info.seen)]];
    if (info.props) { Object.keys(info.props).sort().forEach(function (k) { kv.push([k, short(info.props[k])]); }); }
    if (info.observed) { Object.keys(info.observed).sort().forEach(function (k) { kv.push([k + " (observed)", short(info.observed[k])]); }); }
    panel.appendChild(el("h4", "", "Properties"));
    var dl = el("dl", "kv");
    kv.forEach(function (p) {
      if (p[1] === undefined || p[1] === null || p[1] === "") { return; }
      dl.appendChild(el("dt", "", p[0]));
      dl.appendChild(el("dd", "", p[1]));
    });
    panel.appendChild(dl);
  }

  // -- search ---------------------------------------------------------------------------
  var input = document.getElementById("search"), results = document.getElementById("search-results");
  var LOWER = NODES.map(function (d) { return [d[1].toLowerCase(), d[0].toLowerCase()]; });
  function search(q) {
    q = q.trim().toLowerCase();
    while (results.firstChild) { results.removeChild(results.firstChild); }
    if (!q) { results.hidden = true; return []; }
    var first = [], rest = [];
    for (var k = 0; k < N && first.length < 12; k++) {
      if (LOWER[k][0].indexOf(q) === 0) { first.push(k); } else if (rest.length < 12 && LOWER[k][1].indexOf(q) !== -1) { rest.push(k); }
    }
    var found = first.concat(rest).slice(0, 12);
    found.forEach(function (k) {
      var li = el("li"), b = el("button");
      b.type = "button";
      b.appendChild(el("span", "r-name", NODES[k][1] + "  \u00b7  " + DATA.kinds[NODES[k][2]]));
      b.appendChild(el("span", "r-uri", NODES[k][0]));
      b.addEventListener("click", function () { results.hidden = true; show(k); });
      li.appendChild(b);
      results.appendChild(li);
    });
    if (!found.length) { results.appendChild(el("li", "muted", "no asset matches")); }
    results.hidden = false;
    return found;
  }
  input.addEventListener("input", function () { search(input.value); });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") {
      var found = search(input.value);
      if (found.length) { results.hidden = true; show(found[0]); }
    } else if (ev.key === "Escape") { results.hidden = true; }
  });
  document.addEventListener("click", function (ev) {
    if (!results.contains(ev.target) && ev.target !== input) { results.hidden = true; }
  });

  // -- pointer: select, expand, pan, zoom ---------------------------------------------------
  function nodeOf(target) {
    var g = target.closest ? target.closest(".node") : null;
    return g ? Number(g.getAttribute("data-i")) : null;
  }
  var drag = null;
  root.addEventListener("pointerdown", function (ev) {
    if (nodeOf(ev.target) !== null) { return; }
    drag = { x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y };
    root.classList.add("dragging");
  });
  window.addEventListener("pointermove", function (ev) {
    if (!drag) { return; }
    view.x = drag.vx + ev.clientX - drag.x;
    view.y = drag.vy + ev.clientY - drag.y;
    applyView();
  });
  window.addEventListener("pointerup", function () { drag = null; root.classList.remove("dragging"); });
  root.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var box = root.getBoundingClientRect();
    zoom(ev.deltaY < 0 ? 1.15 : 1 / 1.15, ev.clientX - box.left, ev.clientY - box.top);
  }, { passive: false });
  root.addEventListener("click", function (ev) {
    var n = nodeOf(ev.target);
    if (n === null) { return; }
    if (ev.target.closest(".more")) { expand(n); }
    select(n);
  });
  root.addEventListener("dblclick", function (ev) {
    var n = nodeOf(ev.target);
    if (n !== null) { expand(n); select(n); }
  });
  root.addEventListener("keydown", function (ev) {
    var n = nodeOf(ev.target);
    if (n === null) { return; }
    if (ev.key === "Enter") { select(n); } else if (ev.key === "+") { expand(n); select(n); }
  });
  document.querySelectorAll("[data-action]").forEach(function (b) {
    b.addEventListener("click", function () {
      var action = b.getAttribute("data-action");
      if (action === "zoom-in") { zoom(1.25); } else if (action === "zoom-out") { zoom(0.8); } else if (action === "fit") { fit(); } else if (action === "reset") {
        visible = new Set(DATA.view);
        render(); fit();
      }
    });
  });

  // -- findings table filters -----------------------------------------------------------------
  var fsev = document.getElementById("filter-severity"), frule = document.getElementById("filter-rule");
  function filterFindings() {
    var shown = 0;
    document.querySelectorAll("tr.frow").forEach(function (tr) {
      var ok = (!fsev.value || tr.getAttribute("data-severity") === fsev.value) &&
        (!frule.value || tr.getAttribute("data-rule") === frule.value);
      tr.hidden = !ok;
      if (ok) { shown++; }
    });
    var none = document.getElementById("no-match");
    if (none) { none.hidden = shown > 0; }
  }
  fsev.addEventListener("change", filterFindings);
  frule.addEventListener("change", filterFindings);

  // -- routes: #asset:URI selects an asset; #finding-ID is a plain anchor ------------------------
  function route() {
    var hash = location.hash;
    if (hash.indexOf("#asset:") === 0) {
      var uri;
      try { uri = decodeURIComponent(hash.slice(7)); } catch (err) { return false; }
      if (!byUri.has(uri)) { return false; }
      var n = byUri.get(uri);
      if (selected !== n) { show(n); }
      return true;
    }
    if (hash.indexOf("#finding-") === 0) {
      var row = document.getElementById(hash.slice(1));
      if (row) { row.classList.add("flash"); }
      return Boolean(row);
    }
    return false;
  }
  window.addEventListener("hashchange", function () {
    if (route() && location.hash.indexOf("#asset:") === 0) {
      document.getElementById("lineage").scrollIntoView({ block: "start" });
    }
  });
  window.addEventListener("beforeprint", function () { fit(); });

  // -- start ------------------------------------------------------------------------------------
  root.removeAttribute("viewBox");
  render();
  (function sizeToContent() {  // a small graph gets a box its size, not a screenful
    var k = Math.min(freeWidth() / current.width, 1.25);
    var wanted = Math.round(current.height * k + 56);
    var most = wrap.clientHeight || wanted;
    if (wanted < most) { wrap.style.height = Math.max(460, wanted) + "px"; }
  })();
  fit();
  if (DATA.focus !== null && DATA.focus !== undefined) { select(DATA.focus); centerOn(DATA.focus); }
  route();
  window.steward = {
    layout: function (ids) {
      var pairs = [];
      ids.forEach(function (s) { succ[s].forEach(function (p) { pairs.push([s, p[0]]); }); });
      var out = layered(ids, pairs), pos = {};
      out.pos.forEach(function (v, k) { pos[k] = v; });
      return { pos: pos, width: out.width, height: out.height };
    },
    visible: function () { return Array.from(visible).sort(num); },
    show: show, expand: expand, select: select, search: search, route: route
  };
  var ready = performance.now();
  performance.mark("steward-interactive");
  document.documentElement.setAttribute("data-interactive-ms", ready.toFixed(1));
  document.documentElement.setAttribute("data-script-ms", (ready - T0).toFixed(1));
})();
