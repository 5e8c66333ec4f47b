(function () {
  "use strict";
  var T0 = performance.now();
  var SVGNS = "http://www.w3.org/2000/svg";
  var DATA = JSON.parse(document.getElementById("steward-data").textContent);
  var NODES = DATA.nodes;  // [uri, name, kind, severity, at risk, unresolved, version, display name]
  var DETAILS = DATA.details;
  var N = NODES.length;
  var SEV = ["", "info", "warning", "error"];
  var EXPAND_LIMIT = 60;
  var NODE_H = 48, MIN_W = 140, MAX_W = 320, PAD_L = 16, PAD_R = 34, FIT_PAD = 24, MAX_K = 1.25, MIN_K = 0.75;

  // -- adjacency (edge kinds kept for the asset pages) ------------------------------------
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
  function num(a, b) { return a - b; }
  // Field-level edges run beside the job that made them: the graph draws datasets and jobs,
  // the asset pages list the fields.
  var COLUMN_LINEAGE = DATA.edgeKinds.indexOf("column_lineage");

  // -- DOM helpers: text only, never HTML --------------------------------------------------
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
  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }
  // A URI as text that may wrap after its separators, not in the middle of a word.
  function breakable(tag, cls, text) {
    var e = el(tag, cls);
    String(text).split(/(?<=[\/.:_\-@?&=#])/).forEach(function (piece, k) {
      if (k) { e.appendChild(document.createElement("wbr")); }
      e.appendChild(document.createTextNode(piece));
    });
    return e;
  }
  function kindName(n) { return DATA.kinds[NODES[n][2]].split("_").join(" "); }
  function meta(n) {
    var d = NODES[n], parts = [kindName(n)];
    if (d[5]) { parts.push("unresolved"); } else if (d[6]) { parts.push("v" + d[6]); }
    return parts.join(" \u00b7 ");
  }
  function href(n) { return "#asset/" + encodeURIComponent(NODES[n][0]); }
  function assetLink(n, text) {
    var a = breakable("a", "", text === undefined ? NODES[n][7] : text);
    a.href = href(n);
    a.title = NODES[n][0];
    return a;
  }
  function uriLink(uri) {
    return byUri.has(uri) ? assetLink(byUri.get(uri)) : breakable("span", "", uri);
  }
  function when(iso) { return iso ? iso.slice(0, 19).replace("T", " ") + " UTC" : ""; }
  function duration(a, b) {
    if (!a || !b) { return ""; }
    var s = Math.round((Date.parse(b) - Date.parse(a)) / 1000);
    if (!(s >= 0)) { return ""; }
    return s < 60 ? s + " s" : s < 3600 ? Math.floor(s / 60) + " min " + (s % 60) + " s" : (s / 3600).toFixed(1) + " h";
  }
  function short(value) {
    var text = typeof value === "string" ? value : JSON.stringify(value);
    return text.length > 240 ? text.slice(0, 239) + "\u2026" : text;
  }

  // -- measuring labels --------------------------------------------------------------------
  var measure = document.createElement("canvas").getContext("2d");
  var FONT = getComputedStyle(document.body).fontFamily;
  function textWidth(text, font) { measure.font = font; return measure.measureText(text).width; }
  var NAME_FONT = "600 13px " + FONT, META_FONT = "11px " + FONT;
  // A name too long for the widest box loses its middle, never its telling end.
  function fitLabel(text, room) {
    if (textWidth(text, NAME_FONT) <= room) { return text; }
    var keep = text.length;
    while (keep > 4) {
      keep--;
      var head = Math.ceil(keep / 4), tail = keep - head;
      var cut = text.slice(0, head) + "\u2026" + text.slice(text.length - tail);
      if (textWidth(cut, NAME_FONT) <= room) { return cut; }
    }
    return text.slice(0, 3) + "\u2026";
  }
  var sizes = new Map();
  function size(n) {
    if (!sizes.has(n)) {
      var label = fitLabel(NODES[n][7], MAX_W - PAD_L - PAD_R);
      var w = Math.max(textWidth(label, NAME_FONT), textWidth(meta(n), META_FONT)) + PAD_L + PAD_R;
      sizes.set(n, { label: label, w: Math.ceil(Math.max(MIN_W, Math.min(MAX_W, w))) });
    }
    return sizes.get(n);
  }

  // -- layout: dagre (layered, edges routed around nodes); lone nodes in a grid below ----------
  function layout(ids) {
    ids = ids.slice().sort(num);
    var inside = new Set(ids), linked = new Set(), pairs = [], seen = new Set();
    ids.forEach(function (s) {
      succ[s].forEach(function (p) {
        var key = s + ":" + p[0];
        if (p[1] !== COLUMN_LINEAGE && inside.has(p[0]) && !seen.has(key)) { seen.add(key); pairs.push([s, p[0]]); linked.add(s); linked.add(p[0]); }
      });
    });
    pairs.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
    var pos = new Map(), routes = new Map(), width = 0, height = 0;
    if (linked.size) {
      var g = new dagre.graphlib.Graph();
      g.setGraph({ rankdir: "LR", nodesep: 16, ranksep: 52, edgesep: 10, marginx: 0, marginy: 0 });
      g.setDefaultEdgeLabel(function () { return {}; });
      ids.forEach(function (n) { if (linked.has(n)) { g.setNode(String(n), { width: size(n).w, height: NODE_H }); } });
      pairs.forEach(function (p) { g.setEdge(String(p[0]), String(p[1])); });
      dagre.layout(g);
      g.nodes().forEach(function (v) {
        var o = g.node(v);
        pos.set(Number(v), [Math.round(o.x - o.width / 2), Math.round(o.y - o.height / 2)]);
      });
      g.edges().forEach(function (e) {
        routes.set(e.v + ":" + e.w, g.edge(e).points.map(function (p) { return [p.x, p.y]; }));
      });
      width = g.graph().width; height = g.graph().height;
    }
    var lone = ids.filter(function (n) { return !linked.has(n); });
    if (lone.length) {  // beside a tall drawing, under a wide one
      var cell = 0, row = NODE_H + 18;
      lone.forEach(function (n) { cell = Math.max(cell, size(n).w); });
      cell += 18;
      var beside = height > width;
      var cols = beside ? Math.ceil(lone.length / Math.max(1, Math.floor((height + 18) / row))) :
        Math.max(1, Math.floor(Math.max(width, Math.sqrt(lone.length * cell * row * 2.5)) / cell));
      var left = beside ? width + 60 : 0, top = beside || !height ? 0 : height + 40;
      lone.forEach(function (n, k) {
        pos.set(n, [left + (k % cols) * cell, top + Math.floor(k / cols) * row]);
      });
      width = Math.max(width, left + Math.min(cols, lone.length) * cell - 18);
      height = Math.max(height, top + Math.ceil(lone.length / cols) * row - 18);
    }
    return { pos: pos, routes: routes, width: Math.max(width, 1), height: Math.max(height, 1) };
  }
  // A B-spline through dagre's bend points (d3's curveBasis): smooth, and close to the route.
  function curve(points) {
    var p = points, d = "M" + p[0][0] + "," + p[0][1];
    if (p.length < 3) { return d + " L" + p[p.length - 1][0] + "," + p[p.length - 1][1]; }
    function f(v) { return Math.round(v * 10) / 10; }
    d += " L" + f((5 * p[0][0] + p[1][0]) / 6) + "," + f((5 * p[0][1] + p[1][1]) / 6);
    for (var k = 2; k <= p.length; k++) {
      var a = p[k - 2], b = p[k - 1], c = k < p.length ? p[k] : p[k - 1];
      d += " C" + f((2 * a[0] + b[0]) / 3) + "," + f((2 * a[1] + b[1]) / 3) + " " +
        f((a[0] + 2 * b[0]) / 3) + "," + f((a[1] + 2 * b[1]) / 3) + " " +
        f((a[0] + 4 * b[0] + c[0]) / 6) + "," + f((a[1] + 4 * b[1] + c[1]) / 6);
    }
    var last = p[p.length - 1];
    return d + " L" + last[0] + "," + last[1];
  }

  // -- the graph view ---------------------------------------------------------------------
  var wrap = document.getElementById("graph-wrap");
  var root = document.getElementById("graph");
  var viewport = document.getElementById("viewport");
  var bar = document.getElementById("selection");
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
    var d = NODES[n], s = size(n);
    var cls = ["node", DATA.kindClass[d[2]]];
    if (d[3]) { cls.push("s-" + SEV[d[3]]); }
    if (d[4] && !d[3]) { cls.push("at-risk"); }
    if (d[5]) { cls.push("unresolved"); }
    var g = svg("g", { "class": cls.join(" "), "data-i": n, transform: "translate(" + x + "," + y + ")", tabindex: 0 });
    var title = svg("title");
    title.textContent = d[0];
    g.appendChild(title);
    g.appendChild(svg("rect", { "class": "box", width: s.w, height: NODE_H, rx: 8 }));
    g.appendChild(svg("rect", { "class": "stripe", width: 6, height: NODE_H, rx: 3 }));
    var name = svg("text", { "class": "name", x: PAD_L, y: 21 });
    name.textContent = s.label;
    g.appendChild(name);
    var m = svg("text", { "class": "meta", x: PAD_L, y: 38 });
    m.textContent = meta(n);
    g.appendChild(m);
    if (d[3]) { g.appendChild(svg("circle", { "class": "sev", cx: s.w - 12, cy: 12, r: 5 })); }
    var hidden = 0;
    neighbours(n).forEach(function (o) { if (!visible.has(o)) { hidden++; } });
    if (hidden) {
      var more = svg("g", { "class": "more", transform: "translate(" + (s.w - 32) + ",27)" });
      more.appendChild(svg("rect", { width: 28, height: 16, rx: 8 }));
      var t = svg("text", { x: 14, y: 12 });
      t.textContent = "+" + hidden;
      more.appendChild(t);
      g.appendChild(more);
    }
    return g;
  }

  function render() {
    current = layout(Array.from(visible));
    var edgesG = svg("g", { "class": "edges" }), nodesG = svg("g", { "class": "nodes" });
    var drawn = new Set();
    Array.from(current.pos.keys()).sort(num).forEach(function (s) {
      succ[s].forEach(function (p) {  // in the data's order: by target, then kind
        var key = s + ":" + p[0];
        if (p[1] === COLUMN_LINEAGE || drawn.has(key) || !current.routes.has(key)) { return; }
        drawn.add(key);  // one line per pair; the asset page lists every kind
        var cls = "edge " + DATA.edgeClass[p[1]] + (RISK.has(key) ? " risk" : "");
        edgesG.appendChild(svg("path", {
          "class": cls, d: curve(current.routes.get(key)),
          "data-s": s, "data-t": p[0], "marker-end": "url(#arrow)"
        }));
      });
    });
    Array.from(current.pos.keys()).sort(num).forEach(function (n) {
      var p = current.pos.get(n);
      nodesG.appendChild(drawNode(n, p[0], p[1]));
    });
    clear(viewport);
    viewport.appendChild(edgesG);
    viewport.appendChild(nodesG);
    if (selected !== null) { mark(selected); }
  }

  function fit() {
    var w = wrap.clientWidth || 800, h = wrap.clientHeight || 600;
    var k = Math.min((w - 2 * FIT_PAD) / current.width, (h - 2 * FIT_PAD) / current.height, MAX_K);
    view.k = Math.max(k, 0.02);
    view.x = (w - current.width * view.k) / 2;
    view.y = (h - current.height * view.k) / 2;
    applyView();
  }
  function centerOn(n) {
    var p = current.pos.get(n);
    if (!p) { return; }
    var w = wrap.clientWidth || 800, h = wrap.clientHeight || 600;
    view.k = Math.max(view.k, MIN_K);
    view.x = w / 2 - (p[0] + size(n).w / 2) * view.k;
    view.y = h / 2 - (p[1] + NODE_H / 2) * view.k;
    applyView();
  }
  function reveal(n) {
    var p = current.pos.get(n);
    if (!p) { return; }
    var w = wrap.clientWidth || 800, h = wrap.clientHeight || 600;
    var left = view.x + p[0] * view.k, top = view.y + p[1] * view.k;
    if (left < 0 || top < 0 || left + size(n).w * view.k > w || top + NODE_H * view.k > h) { centerOn(n); }
  }
  function zoom(factor, cx, cy) {
    var k = Math.min(3, Math.max(0.02, view.k * factor));
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
  function unselect() {
    selected = null;
    bar.hidden = true;
    wrap.classList.remove("has-selection");
    viewport.querySelectorAll(".node.selected").forEach(function (g) { g.classList.remove("selected"); });
    viewport.querySelectorAll(".edge.hl").forEach(function (p) { p.classList.remove("hl"); });
  }
  // The selection bar, under the graph: what the node is, and what to do with it.
  function select(n) {
    selected = n;
    mark(n);
    reveal(n);
    clear(bar);
    bar.hidden = false;
    var d = NODES[n];
    var head = el("div", "sel-head");
    head.appendChild(el("span", "chip " + DATA.kindClass[d[2]], kindName(n)));
    if (d[3]) { head.appendChild(el("span", "badge sev-" + SEV[d[3]], SEV[d[3]])); } else if (d[4]) { head.appendChild(el("span", "badge sev-warning", "at risk")); }
    var open = assetLink(n);
    open.className = "sel-name";
    head.appendChild(open);
    bar.appendChild(head);
    bar.appendChild(breakable("div", "sel-uri mono", d[0]));
    var actions = el("div", "sel-actions");
    var page = el("a", "button primary", "Open asset page");
    page.href = href(n);
    actions.appendChild(page);
    var hidden = 0;
    neighbours(n).forEach(function (o) { if (!visible.has(o)) { hidden++; } });
    var ex = el("button", "", hidden ? "Expand " + hidden + " neighbour" + (hidden === 1 ? "" : "s") : "All neighbours shown");
    ex.type = "button";
    ex.disabled = !hidden;
    ex.addEventListener("click", function () { expand(n); select(n); });
    actions.appendChild(ex);
    var only = el("button", "", "Focus here");
    only.type = "button";
    only.addEventListener("click", function () { focusOn(n); });
    actions.appendChild(only);
    var close = el("button", "", "Close");
    close.type = "button";
    close.addEventListener("click", unselect);
    actions.appendChild(close);
    bar.appendChild(actions);
  }
  function focusOn(n) {
    visible = new Set([n]);
    neighbours(n).forEach(function (o) { visible.add(o); });
    render(); fit(); select(n);
  }

  // -- the asset page: #asset/URI --------------------------------------------------------------
  var page = document.getElementById("asset-view");
  function table(head, rows, cls) {
    var t = el("table", cls || "atable"), tr = el("tr");
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
  function block(title, count) {
    var box = el("section", "a-block");
    box.appendChild(el("h2", "", title + (count === undefined ? "" : " (" + count + ")")));
    return box;
  }
  function nodes(list) {
    var span = el("span", "refs");
    list.forEach(function (item, k) {
      if (k) { span.appendChild(document.createTextNode(", ")); }
      span.appendChild(item);
    });
    return span;
  }
  function findingBox(fi) {
    var f = DATA.findings[fi];
    var box = el("div", "d-finding sev-" + f.severity);
    var head = el("div", "d-head");
    head.appendChild(el("span", "badge sev-" + f.severity, f.severity));
    head.appendChild(el("span", "rule", f.rule.split("_").join(" ")));
    box.appendChild(head);
    var a = breakable("a", "d-title", f.headline);
    a.href = "#finding-" + f.id;
    box.appendChild(a);
    var remedy = el("p", "remedy");
    remedy.appendChild(el("span", "fix", "Fix"));
    remedy.appendChild(document.createTextNode(f.remedy));
    box.appendChild(remedy);
    if (f.acknowledged) { box.appendChild(el("p", "ack", f.acknowledged)); }
    return box;
  }
  function versionBox(v, latest) {
    var box = el("div", "version" + (v.breaking ? " breaking" : ""));
    var head = el("div", "v-head");
    head.appendChild(el("span", "v-num", "v" + v.v));
    if (v.v === latest) { head.appendChild(el("span", "tag current", "current")); }
    if (v.breaking) { head.appendChild(el("span", "tag breaking", "breaking")); }
    if (v.restored) { head.appendChild(el("span", "tag current", "restored")); }
    head.appendChild(el("span", "v-meta", when(v.at) + (v.origin ? " \u00b7 " + v.origin : "")));
    head.appendChild(el("span", "v-meta mono", v.fp ? v.fp.slice(0, 16) : ""));
    box.appendChild(head);
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
  function linkList(items) {
    var ul = el("ul", "links");
    items.slice().sort(function (x, y) { return x[0] - y[0] || x[1] - y[1]; }).forEach(function (p) {
      var li = el("li");
      li.appendChild(assetLink(p[0]));
      li.appendChild(el("span", "ek", DATA.edgeKinds[p[1]].split("_").join(" ") + " \u00b7 " + kindName(p[0])));
      ul.appendChild(li);
    });
    return ul;
  }
  var PROVENANCE = [
    ["embedded_by_model", "Embedded with"], ["embedded_from", "Embedded from"],
    ["feature_source", "Feature source"], ["feature_input", "Feature inputs"],
    ["trained_on", "Trained on"], ["view_dependency", "Defined over"]
  ];
  function provenance(n, info, out) {
    var rows = [];
    PROVENANCE.forEach(function (p) {
      var k = DATA.edgeKinds.indexOf(p[0]);
      var from = pred[n].filter(function (e) { return e[1] === k; }).map(function (e) { return e[0]; }).sort(num);
      if (k >= 0 && from.length) { rows.push([p[1], nodes(from.map(function (m) { return assetLink(m); }))]); }
    });
    if (!rows.length && !info.bindings) { return; }
    var box = block("Provenance");
    if (rows.length) {
      var dl = el("dl", "kv wide");
      rows.forEach(function (r) { dl.appendChild(el("dt", "", r[0])); var dd = el("dd"); dd.appendChild(r[1]); dl.appendChild(dd); });
      box.appendChild(dl);
    }
    if (info.bindings) {
      var queries = info.queries || {};
      info.bindings.forEach(function (b) {
        var now = queries[b.part], built = b.model + "@" + b.revision;
        var line = "Built with " + built + (b.part ? " (" + b.part + ")" : "") +
          (now === undefined ? "" : now === built ? "; queries use the same model and revision." : "; queries use " + now + ": stale.");
        box.appendChild(el("p", now !== undefined && now !== built ? "prov stale" : "prov", line));
      });
      box.appendChild(table(["model", "part", "found in", "share", "queries use"], info.bindings.map(function (b) {
        var now = queries[b.part];
        var cell = el("span", "", now === undefined ? "" : now);
        if (now !== undefined && now !== b.model + "@" + b.revision) { cell.appendChild(el("span", "tag stale", " stale")); }
        return [b.model + "@" + b.revision, b.part || "\u2014", b.origin, Math.round(b.share * 100) + "%", cell];
      })));
    }
    out.appendChild(box);
  }
  function versionsOf(list) {
    return nodes(list.map(function (p) {
      return assetLink(p[0], NODES[p[0]][7] + (p[1] ? " v" + p[1] : ""));
    }));
  }
  function assetPage(n) {
    var d = NODES[n], info = DETAILS[n];
    clear(page);
    var top = el("div", "a-top");
    var back = el("a", "back", "\u2190 Report");
    back.href = "#lineage";
    top.appendChild(back);
    var head = el("div", "d-head");
    head.appendChild(el("span", "chip " + DATA.kindClass[d[2]], kindName(n)));
    if (d[6]) { head.appendChild(el("span", "tag current", "v" + d[6])); }
    if (d[3]) { head.appendChild(el("span", "badge sev-" + SEV[d[3]], SEV[d[3]])); }
    if (d[4]) { head.appendChild(el("span", "badge sev-warning", "at risk")); }
    if (d[5]) { head.appendChild(el("span", "badge sev-info", "unresolved")); }
    top.appendChild(head);
    top.appendChild(breakable("h1", "a-name", d[7]));
    top.appendChild(breakable("div", "a-uri mono", d[0]));
    if (info.desc) { top.appendChild(el("p", "a-desc", info.desc)); }
    var act = el("div", "sel-actions");
    var inGraph = el("button", "", "Show in the graph");
    inGraph.type = "button";
    inGraph.addEventListener("click", function () { location.hash = "#lineage"; focusOn(n); fit(); });
    act.appendChild(inGraph);
    top.appendChild(act);
    page.appendChild(top);

    var grid = el("div", "a-grid");
    var main = el("div", "a-main"), side = el("div", "a-side");
    grid.appendChild(main);
    grid.appendChild(side);
    page.appendChild(grid);

    if (info.findings) {
      var fb = block("Findings", info.findings.length);
      info.findings.forEach(function (fi) { fb.appendChild(findingBox(fi)); });
      main.appendChild(fb);
    }
    if (info.risk) {
      var rb = block("At risk because of");
      info.risk.forEach(function (fi) {
        rb.appendChild(findingBox(fi));
        (DATA.findings[fi].at_risk || []).forEach(function (r) {
          if (r.uri !== d[0]) { return; }
          var path = el("div", "path");
          (r.path || []).forEach(function (u, k) {
            if (k) { path.appendChild(el("span", "arrow", "\u2192")); }
            path.appendChild(uriLink(u));
          });
          rb.appendChild(path);
        });
      });
      main.appendChild(rb);
    }
    if (info.related) {
      var mb = block("Named in findings about other assets", info.related.length);
      info.related.forEach(function (fi) { mb.appendChild(findingBox(fi)); });
      main.appendChild(mb);
    }
    provenance(n, info, main);
    if (info.fields) {
      var sources = info.sources || [];
      var fl = block("Fields", info.fields.length);
      fl.appendChild(table(["name", "type", "null", "said by", "comes from", "attributes"], info.fields.map(function (f) {
        var from = nodes((f[5] || []).map(function (s) { return assetLink(s[0], NODES[s[0]][7] + "." + s[1]); }));
        var said = (f[4] || []).map(function (k) { return sources[k] ? sources[k][0] : ""; }).join("; ");
        return [f[0], f[1], f[2] ? "yes" : "no", said, from, f[3]];
      }), "atable fields"));
      main.appendChild(fl);
    }
    if (info.jobRuns) {
      var jr = block("Recent runs", info.jobRuns.length);
      jr.appendChild(table(["run", "state", "started", "duration", "read", "wrote", "error"], info.jobRuns.map(function (r) {
        return [el("span", "mono", r.run.slice(0, 8)), el("span", "state st-" + String(r.state).toLowerCase(), r.state), when(r.started_at),
          duration(r.started_at, r.ended_at), versionsOf(r.inputs), versionsOf(r.outputs), r.error || ""];
      })));
      main.appendChild(jr);
    }
    if (info.runs) {
      var rr = block("Runs that read or wrote it", info.runs.length);
      rr.appendChild(table(["job", "run", "state", "ended", "version"], info.runs.map(function (r) {
        return [uriLink(r.job), (r.direction === "input" ? "read " : "wrote ") + r.run.slice(0, 8), r.state, when(r.ended_at || r.started_at), r.version ? "v" + r.version : ""];
      })));
      main.appendChild(rr);
    }
    if (info.versions) {
      var vb = block("Versions", info.versions.length);
      info.versions.slice().reverse().forEach(function (v) { vb.appendChild(versionBox(v, d[6])); });
      main.appendChild(vb);
    }
    var ups = pred[n], downs = succ[n];
    var ub = block("Upstream", ups.length);
    ub.appendChild(ups.length ? linkList(ups) : el("p", "muted", "nothing known feeds it"));
    side.appendChild(ub);
    var db = block("Downstream", downs.length);
    db.appendChild(downs.length ? linkList(downs) : el("p", "muted", "nothing known reads it"));
    side.appendChild(db);
    if (info.sources) {
      var sb = block("Sources", info.sources.length);
      sb.appendChild(table(["source", "said at", "version", "fields"], info.sources.map(function (s) {
        return [breakable("span", "", s[0]), when(s[1]), s[2] ? "v" + s[2] : "", s[3]];
      })));
      side.appendChild(sb);
    }
    var kv = [["namespace", info.ns], ["name", info.name], ["registered by", info.origin], ["last seen", when(info.seen)]];
    if (info.props) { Object.keys(info.props).sort().forEach(function (k) { kv.push([k, short(info.props[k])]); }); }
    if (info.observed) { Object.keys(info.observed).sort().forEach(function (k) { kv.push([k + " (observed)", short(info.observed[k])]); }); }
    var pb = block("Properties");
    var dl = el("dl", "kv");
    kv.forEach(function (p) {
      if (p[1] === undefined || p[1] === null || p[1] === "") { return; }
      dl.appendChild(el("dt", "", p[0]));
      dl.appendChild(breakable("dd", "", p[1]));
    });
    pb.appendChild(dl);
    side.appendChild(pb);
  }

  // -- search ---------------------------------------------------------------------------
  var input = document.getElementById("search"), results = document.getElementById("search-results");
  var LOWER = NODES.map(function (d) { return [d[7].toLowerCase(), d[0].toLowerCase()]; });
  function search(q) {
    q = q.trim().toLowerCase();
    clear(results);
    if (!q) { results.hidden = true; return []; }
    var first = [], rest = [];
    for (var k = 0; k < N && first.length < 12; k++) {
      if (LOWER[k][0].indexOf(q) === 0) { first.push(k); } else if (rest.length < 12 && LOWER[k][1].indexOf(q) !== -1) { rest.push(k); }
    }
    var found = first.concat(rest).slice(0, 12);
    found.forEach(function (k) {
      var li = el("li"), b = el("button");
      b.type = "button";
      b.appendChild(el("span", "r-name", NODES[k][7] + "  \u00b7  " + kindName(k)));
      b.appendChild(breakable("span", "r-uri", NODES[k][0]));
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
    if (ev.key === "Enter") { location.hash = href(n); } else if (ev.key === " ") { ev.preventDefault(); select(n); } else if (ev.key === "+") { expand(n); select(n); }
  });
  document.querySelectorAll("[data-action]").forEach(function (b) {
    b.addEventListener("click", function () {
      var action = b.getAttribute("data-action");
      if (action === "zoom-in") { zoom(1.25); } else if (action === "zoom-out") { zoom(0.8); } else if (action === "fit") { fit(); } else if (action === "reset") {
        visible = new Set(DATA.view);
        unselect(); render(); fit();
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

  // -- routes: #asset/URI is an asset's page; anything else is the report --------------------------
  function routed() {  // #asset/URI (and #asset:URI, the older form) -> node, -1 if unknown
    var hash = location.hash, prefix = hash.indexOf("#asset/") === 0 ? 7 : hash.indexOf("#asset:") === 0 ? 7 : 0;
    if (!prefix) { return null; }
    var uri;
    try { uri = decodeURIComponent(hash.slice(prefix)); } catch (err) { uri = hash.slice(prefix); }
    return byUri.has(uri) ? byUri.get(uri) : -1;
  }
  function missing() {
    clear(page);
    var back = el("a", "back", "\u2190 Report");
    back.href = "#lineage";
    page.appendChild(back);
    page.appendChild(el("h1", "a-name", "No such asset in this report"));
    var uri = location.hash.slice(7);
    try { uri = decodeURIComponent(uri); } catch (err) { /* shown as it came */ }
    page.appendChild(breakable("p", "a-uri mono", uri));
    page.appendChild(el("p", "muted", "It may have been deleted or renamed since; search the graph for it."));
  }
  var shownPage = null;
  function route() {
    var n = routed();
    if (n === null) {
      var leaving = document.body.classList.contains("asset-mode");
      document.body.classList.remove("asset-mode");
      page.hidden = true;
      if (shownPage !== null) {
        var back = shownPage;
        shownPage = null;
        if (!visible.has(back)) { visible.add(back); render(); }
        select(back);
      }
      // The anchor was hidden behind the asset page when the browser looked for it.
      var anchor = leaving && location.hash.length > 1 ? document.getElementById(location.hash.slice(1)) : null;
      if (anchor) { anchor.scrollIntoView({ block: "start" }); }
      var row = location.hash.indexOf("#finding-") === 0 ? document.getElementById(location.hash.slice(1)) : null;
      if (row) { row.classList.add("flash"); row.scrollIntoView({ block: "center" }); }
      return false;
    }
    if (n === -1) {
      missing();
      shownPage = null;
    } else if (shownPage !== n) {
      assetPage(n);
      shownPage = n;
    }
    document.body.classList.add("asset-mode");
    page.hidden = false;
    window.scrollTo(0, 0);
    document.title = (n === -1 ? "no such asset" : NODES[n][7]) + " \u00b7 " + BASE_TITLE;
    return true;
  }
  var BASE_TITLE = document.title;
  window.addEventListener("hashchange", function () {
    if (!route()) { document.title = BASE_TITLE; }
  });
  window.addEventListener("beforeprint", function () { fit(); });

  // -- start ------------------------------------------------------------------------------------
  render();
  (function sizeToContent() {  // the box takes the height the drawing needs at its width
    var w = wrap.clientWidth || 800, h = wrap.clientHeight || 600;
    var k = Math.min((w - 2 * FIT_PAD) / current.width, MAX_K);
    var wanted = Math.round(current.height * k + 2 * FIT_PAD);
    var most = Math.max(h, window.innerHeight - 80);  // Fit shows it all on one screen
    var height = Math.max(240, Math.min(wanted, most));
    if (height !== h) { wrap.style.height = height + "px"; }
  })();
  fit();
  // A drawing that fits only with unreadable names opens at a readable size on what matters
  // most (the focus, the first finding's asset, or the most connected node); Fit shows it all.
  (function readable() {
    if (view.k >= MIN_K || !current.pos.size) { return; }
    var first = DATA.findings.length && byUri.has(DATA.findings[0].assets[0]) ? byUri.get(DATA.findings[0].assets[0]) : null;
    var start = DATA.focus !== null && DATA.focus !== undefined ? DATA.focus : first;
    if (start === null || !current.pos.has(start)) {
      start = Array.from(current.pos.keys()).sort(function (a, b) {
        return neighbours(b).size - neighbours(a).size || a - b;
      })[0];
    }
    view.k = MIN_K;
    centerOn(start);
  })();
  if (DATA.focus !== null && DATA.focus !== undefined) { select(DATA.focus); centerOn(DATA.focus); }
  route();
  window.steward = {
    layout: function (ids) {
      var out = layout(ids), pos = {};
      out.pos.forEach(function (v, k) { pos[k] = v; });
      return { pos: pos, width: out.width, height: out.height };
    },
    visible: function () { return Array.from(visible).sort(num); },
    show: show, expand: expand, select: select, search: search, route: route, fit: fit
  };
  var ready = performance.now();
  performance.mark("steward-interactive");
  document.documentElement.setAttribute("data-interactive-ms", ready.toFixed(1));
  document.documentElement.setAttribute("data-script-ms", (ready - T0).toFixed(1));
})();
