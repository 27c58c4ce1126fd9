"""``/``: the supervisor's wallboard, one self-contained page kept current by ``/events``.

The page carries its first state inline (it shows at once, and its alarms
are in the HTML itself), then follows ``GET /events`` (Server-Sent Events,
:mod:`.sse`) with no reload; waits and times in state tick in the page
between events.  No external script, style, font or CDN: the chart is inline
SVG drawn by the page's script.  A strict Content-Security-Policy allows only
this page's own script (by nonce) and connections to this server.

Without scripts, ``/dashboard`` is the same data as tables refreshed by the browser.
"""

from __future__ import annotations

import html
import json
import secrets
from typing import Any, Dict, Mapping, Tuple

__all__ = ("render_wallboard",)


def _json_for_script(state: Mapping[str, Any]) -> str:
    # inside <script>: "<" escaped, so no "</script>" or "<!--" in the data can end it early
    return json.dumps(state, separators=(",", ":"), allow_nan=False, default=str).replace("<", "\\u003c")


def render_wallboard(state: Mapping[str, Any], *, logout: bool = False) -> Tuple[str, Dict[str, str]]:
    """The page and its security headers; ``logout``: show the log-out button (a session cookie)."""
    nonce = secrets.token_urlsafe(16)
    e = html.escape
    alarms = "".join(f'<div class="alarm {e(a["level"])}">{e(a["text"])}</div>' for a in state["alarms"])
    headers = {
        "Content-Security-Policy": f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                                   "connect-src 'self'; img-src 'self' data:; form-action 'self'; "
                                   "frame-ancestors 'none'; base-uri 'none'",
        "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
    page = (_PAGE.replace("@NONCE@", nonce).replace("@ALARMS@", alarms)
            .replace("@STATE@", _json_for_script(state)))
    if not logout:
        page = page.replace(_LOGOUT, "")
    return page, headers


_LOGOUT = '<form method="post" action="/logout" id="logout"><button type="submit">log out</button></form>\n'
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark">
<title>acd - wallboard</title>
<style nonce="@NONCE@">
:root{--bg:#0b0d10;--card:#161a20;--line:#2a313b;--fg:#f4f6f8;--dim:#a9b3bf;--ok:#3ddc84;--bad:#ff5c5c;
--warn:#ffb020;--info:#5aa9ff;--mute:#6b7685}
*{box-sizing:border-box}
html{font-size:clamp(14px,1.05vw,22px)}
body{margin:0;background:var(--bg);color:var(--fg);font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
font-variant-numeric:tabular-nums;line-height:1.25}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.6rem 1.2rem;padding:.7rem 1.2rem;
border-bottom:1px solid var(--line)}
header h1{font-size:1.3rem;margin:0;font-weight:700;letter-spacing:.02em}
.chip{padding:.15rem .6rem;border-radius:1rem;font-size:.9rem;font-weight:600;border:1px solid var(--line);
color:var(--dim)}
.chip.ok{color:var(--ok);border-color:var(--ok)} .chip.bad{color:#fff;background:var(--bad);border-color:var(--bad)}
.chip.warn{color:#000;background:var(--warn);border-color:var(--warn)}
.spacer{flex:1}
#clock{font-size:1.6rem;font-weight:700}
#updated{color:var(--dim);font-size:.9rem}
header a,header button{color:var(--dim);font-size:.9rem;background:none;border:0;cursor:pointer;text-decoration:underline;
padding:0;font-family:inherit}
main{padding:1rem 1.2rem;display:flex;flex-direction:column;gap:1rem}
#alarms:empty{display:none}
#alarms{display:flex;flex-direction:column;gap:.4rem}
.alarm{padding:.7rem 1rem;font-size:1.35rem;font-weight:800;border-radius:.35rem;letter-spacing:.01em}
.alarm.critical{background:var(--bad);color:#fff;animation:pulse 1.2s ease-in-out infinite alternate}
.alarm.warning{background:var(--warn);color:#000}
@keyframes pulse{from{box-shadow:0 0 0 0 rgba(255,92,92,.9)}to{box-shadow:0 0 0 .45rem rgba(255,92,92,0)}}
@media (prefers-reduced-motion:reduce){.alarm.critical{animation:none}}
#queues{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,25rem),1fr));gap:1rem}
.queue{background:var(--card);border-radius:.5rem;padding:1rem 1.1rem;border-top:.35rem solid var(--mute)}
.queue.good{border-top-color:var(--ok)} .queue.late{border-top-color:var(--bad)}
.queue h2{margin:0 0 .6rem;font-size:1.5rem;display:flex;justify-content:space-between;align-items:baseline;gap:1rem}
.queue h2 small{font-size:.9rem;color:var(--dim);font-weight:500}
.queue h2 small.closed{color:var(--warn);font-weight:700;margin-left:auto;padding-left:1em}
.figs{display:grid;grid-template-columns:repeat(3,1fr);gap:.5rem .8rem}
.fig .v{font-size:2.2rem;font-weight:800;line-height:1.05}
.fig .v.huge{font-size:clamp(3rem,5.5vw,6rem)}
.fig .k{color:var(--dim);font-size:.85rem;text-transform:uppercase;letter-spacing:.05em}
.fig.span{grid-column:span 1}
.v.good{color:var(--ok)} .v.late{color:var(--bad)} .v.warn{color:var(--warn)}
.sub{display:flex;flex-wrap:wrap;gap:.3rem 1.1rem;color:var(--dim);font-size:.95rem;margin-top:.6rem}
.sub b{color:var(--fg)}
svg.chart{width:100%;height:6rem;margin-top:.7rem;display:block}
.labels{position:relative;height:1.1rem;font-size:.8rem;color:var(--dim)} .labels span{position:absolute;top:.1rem}
svg.chart .o{fill:#39424e} svg.chart .a{fill:var(--ok)} svg.chart .x{fill:var(--bad)}
svg.chart .now{fill:none;stroke:var(--info);stroke-width:2;vector-effect:non-scaling-stroke}
.legend{font-size:.8rem;color:var(--dim);display:flex;gap:1rem;margin-top:.2rem}
.legend i{display:inline-block;width:.7rem;height:.7rem;margin-right:.3rem;vertical-align:-.05rem}
.lo{background:#39424e}.la{background:var(--ok)}.lx{background:var(--bad)}
.cols{display:grid;grid-template-columns:minmax(0,2fr) minmax(0,3fr);gap:1rem}
@media (max-width:900px){.cols{grid-template-columns:1fr}.figs{grid-template-columns:repeat(2,1fr)}}
.panel{background:var(--card);border-radius:.5rem;padding:1rem 1.1rem}
.panel h2{margin:0 0 .6rem;font-size:1.25rem}
table{border-collapse:collapse;width:100%;font-size:1.05rem}
th{color:var(--dim);text-align:left;font-weight:600;font-size:.85rem;text-transform:uppercase;letter-spacing:.04em;
border-bottom:1px solid var(--line);padding:.3rem .5rem}
td{padding:.35rem .5rem;border-bottom:1px solid var(--line)}
td.n{text-align:right} td.w{font-weight:800}
.muted{color:var(--dim)}
#agents{display:grid;grid-template-columns:repeat(auto-fill,minmax(11rem,1fr));gap:.5rem}
.agent{border-radius:.4rem;padding:.5rem .7rem;background:#20262e;border-left:.4rem solid var(--mute)}
.agent .id{font-weight:800;font-size:1.15rem}
.agent .st{font-weight:700;text-transform:uppercase;font-size:.85rem;letter-spacing:.04em}
.agent .t{font-size:1.3rem;font-weight:700}
.agent .r{color:var(--dim);font-size:.85rem;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.agent.available{border-left-color:var(--ok)} .agent.available .st{color:var(--ok)}
.agent.busy,.agent.reserved{border-left-color:var(--info)} .agent.busy .st,.agent.reserved .st{color:var(--info)}
.agent.wrap_up{border-left-color:#b48cff} .agent.wrap_up .st{color:#b48cff}
.agent.paused{border-left-color:var(--warn)} .agent.paused .st{color:var(--warn)}
.empty{color:var(--dim);padding:.4rem 0}
noscript p{background:var(--warn);color:#000;padding:.7rem 1rem;font-weight:700}
</style></head>
<body>
<header>
<h1>acd wallboard</h1>
<span id="live" class="chip">connecting</span>
<span id="ami" class="chip"></span>
<span id="journal" class="chip"></span>
<span id="node" class="chip"></span>
<span class="spacer"></span>
<span id="updated"></span>
<span id="clock"></span>
<form method="post" action="/logout" id="logout"><button type="submit">log out</button></form>
</header>
<main>
<noscript><p>This page needs JavaScript to update itself: <a href="/dashboard">the plain dashboard</a> does not.</p>
</noscript>
<div id="alarms" role="alert" aria-live="assertive">@ALARMS@</div>
<div id="queues"></div>
<div class="cols">
<section class="panel"><h2>Waiting callers <span id="callers-total" class="muted"></span></h2>
<table><thead><tr><th>queue</th><th class="n">wait</th><th class="n">priority</th><th>type</th><th>call</th></tr></thead>
<tbody id="callers"></tbody></table></section>
<section class="panel"><h2>Agents <span id="agents-total" class="muted"></span></h2><div id="agents"></div></section>
</div>
</main>
<script type="application/json" id="initial">@STATE@</script>
<script nonce="@NONCE@">
(function () {
"use strict";
var STALE = 30;           // seconds without a state: the page says it is not live
var state = JSON.parse(document.getElementById("initial").textContent);
var received = mono();    // when `state` arrived (its ages are of that moment)
var lastState = received;
var live = false, source = null, backoff = 1;
var updates = 0;

function mono() { return performance.now() / 1000; }
function $(id) { return document.getElementById(id); }
function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function svg(tag, attrs) {
  var e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (var k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}
function dur(s) {
  if (s === null || s === undefined || !isFinite(s)) return "\\u2013";
  s = Math.max(0, Math.floor(s));
  var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, x = s % 60;
  if (h) return h + ":" + (m < 10 ? "0" : "") + m + ":" + (x < 10 ? "0" : "") + x;
  if (m) return m + ":" + (x < 10 ? "0" : "") + x;
  return x + " s";
}
function pct(v) { return v === null || v === undefined ? "\\u2013" : Math.floor(v * 100) + " %"; }
// an age that ticks: its value at `received`, shown as it grows
function ticking(e, age) {
  if (age === null || age === undefined) { e.textContent = "\\u2013"; return e; }
  e.dataset.age = String(age);
  e.textContent = dur(age + mono() - received);
  return e;
}
function fig(key, value, cls) {
  var f = el("div", "fig"); var v = el("div", "v" + (cls ? " " + cls : ""));
  if (value instanceof Node) v.appendChild(value); else v.textContent = value;
  f.appendChild(v); f.appendChild(el("div", "k", key)); return { box: f, value: v };
}
function chip(id, text, cls) { var c = $(id); c.textContent = text; c.className = "chip " + (cls || ""); }

function chart(q) {
  var iv = q.today.intervals, per = {}, first = null, last = null;
  for (var i = 0; i < iv.length; i++) {
    per[iv[i][0]] = iv[i];
    if (first === null || iv[i][0] < first) first = iv[i][0];
    if (last === null || iv[i][0] > last) last = iv[i][0];
  }
  var cur = state.current_interval, perHour = 3600 / state.interval;
  var start = Math.min(first === null ? cur : first, cur, 8 * perHour);
  start = Math.floor(start / perHour) * perHour;
  var end = Math.max(cur, last === null ? cur : last);
  var n = end - start + 1, W = Math.max(n * 10, 120), H = 60, top = 4, base = 60;
  var max = 1;
  for (var k in per) max = Math.max(max, per[k][1]);
  var s = svg("svg", { "class": "chart", viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none",
                       role: "img", "aria-label": "calls per interval today" });
  var scale = (base - top) / max, bw = (W / n) * 0.8, labels = el("div", "labels");
  for (var j = 0; j < n; j++) {
    var b = per[start + j] || [start + j, 0, 0, 0], x = j * W / n;
    var ho = b[1] * scale, ha = b[2] * scale, hx = b[3] * scale;
    var g = svg("g", {});
    var t = svg("title", {});
    var hh = Math.floor((start + j) / perHour), mm = ((start + j) % perHour) * state.interval / 60;
    t.textContent = (hh < 10 ? "0" : "") + hh + ":" + (mm < 10 ? "0" : "") + mm + " offered " + b[1] +
                    ", answered " + b[2] + ", abandoned " + b[3];
    g.appendChild(t);
    g.appendChild(svg("rect", { "class": "o", x: x, y: base - ho, width: bw, height: ho }));
    g.appendChild(svg("rect", { "class": "a", x: x, y: base - ha, width: bw, height: ha }));
    g.appendChild(svg("rect", { "class": "x", x: x, y: base - ha - hx, width: bw, height: hx }));
    if (start + j === cur) g.appendChild(svg("rect", { "class": "now", x: x - 1, y: top - 2, width: bw + 2,
                                                      height: base - top + 3 }));
    s.appendChild(g);
    if ((start + j) % (2 * perHour) === 0) {
      // labels in HTML, not SVG text: the chart stretches to its box, text must not
      var lab = el("span", null, hh + "h"); lab.style.left = (100 * j / n) + "%"; labels.appendChild(lab);
    }
  }
  var box = el("div", "chartbox"); box.appendChild(s); box.appendChild(labels);
  return box;
}

function renderQueues() {
  var box = $("queues"); box.textContent = "";
  if (!state.queues.length) box.appendChild(el("div", "empty", "no queue configured"));
  state.queues.forEach(function (q) {
    var d = q.today, target = q.target, sl = d.service_level;
    var slCls = sl === null ? "" : (sl >= target.fraction ? "good" : "late");
    var card = el("section", "queue " + slCls); card.dataset.queue = q.name;
    var h = el("h2"); h.appendChild(el("span", null, q.name));
    h.appendChild(el("small", null, "target " + Math.round(target.fraction * 100) + " % in " + target.seconds + " s"));
    if (q.open === false) {
      var opens = q.next_open === null ? "" : " - opens " + new Date(q.next_open * 1000).toLocaleString([],
        {weekday: "short", hour: "2-digit", minute: "2-digit"});
      var closed = el("small", "closed", "CLOSED" + opens); closed.dataset.field = "closed";
      h.appendChild(closed);
    }
    card.appendChild(h);
    var figs = el("div", "figs");
    var w = fig("waiting", q.waiting, q.waiting ? (q.agents.available ? "warn" : "late") : "");
    w.value.classList.add("huge"); w.value.dataset.field = "waiting";
    figs.appendChild(w.box);
    var o = fig("oldest wait", ticking(el("span"), q.oldest_wait),
                q.oldest_wait !== null && q.oldest_wait > target.seconds ? "late" : "");
    o.value.classList.add("huge"); figs.appendChild(o.box);
    var e = fig("est. wait", dur(q.ewt)); e.value.classList.add("huge"); figs.appendChild(e.box);
    var s = fig("service level today", pct(sl), slCls); s.value.dataset.field = "service_level"; figs.appendChild(s.box);
    figs.appendChild(fig("answer rate today", pct(d.answer_rate)).box);
    var ag = q.agents;
    figs.appendChild(fig("agents free / logged in", ag.available + " / " + ag.logged_in,
                         ag.logged_in ? (ag.available ? "good" : "") : "late").box);
    card.appendChild(figs);
    var sub = el("div", "sub");
    [["offered", d.offered], ["answered", d.answered], ["abandoned", d.abandoned], ["exited", d.exited],
     ["on call", ag.on_call], ["wrap-up", ag.wrap_up], ["paused", ag.paused],
     ["call-backs pending", q.callbacks_pending]].forEach(function (p) {
      var sp = el("span", null, p[0] + " "); sp.appendChild(el("b", null, p[1])); sub.appendChild(sp);
    });
    card.appendChild(sub);
    card.appendChild(chart(q));
    var lg = el("div", "legend");
    [["lo", "offered"], ["la", "answered"], ["lx", "abandoned"]].forEach(function (p) {
      var sp = el("span"); sp.appendChild(el("i", p[0])); sp.appendChild(document.createTextNode(p[1]));
      lg.appendChild(sp);
    });
    lg.appendChild(el("span", null, "per " + state.interval / 60 + " min, by arrival"));
    card.appendChild(lg);
    box.appendChild(card);
  });
}

function renderCallers() {
  var body = $("callers"); body.textContent = "";
  var c = state.callers;
  $("callers-total").textContent = c.total ? "(" + c.total + ")" : "";
  if (!c.shown.length) {
    var tr = el("tr"), td = el("td", "empty", "nobody waiting"); td.colSpan = 5; tr.appendChild(td);
    body.appendChild(tr);
  }
  c.shown.forEach(function (r) {
    var tr = el("tr"); tr.dataset.call = r.call;
    tr.appendChild(el("td", null, r.queue || "\\u2013"));
    tr.appendChild(ticking(el("td", "n w"), r.wait));
    tr.appendChild(el("td", "n", r.priority === null ? "\\u2013" : r.priority));
    tr.appendChild(el("td", null, r.kind));
    tr.appendChild(el("td", "muted", r.call));
    body.appendChild(tr);
  });
  if (c.total > c.shown.length) {
    var more = el("tr"), td2 = el("td", "muted", "and " + (c.total - c.shown.length) + " more");
    td2.colSpan = 5; more.appendChild(td2); body.appendChild(more);
  }
}

var STATES = { available: "available", reserved: "ringing", busy: "on call", wrap_up: "wrap-up", paused: "paused" };
function renderAgents() {
  var box = $("agents"); box.textContent = "";
  $("agents-total").textContent = state.agents.length ? "(" + state.agents.length + " logged in)" : "";
  if (!state.agents.length) box.appendChild(el("div", "empty", "no agent logged in"));
  state.agents.forEach(function (a) {
    var t = el("div", "agent " + a.state); t.dataset.agent = a.id;
    t.appendChild(el("div", "id", a.id));
    t.appendChild(el("div", "st", STATES[a.state] || a.state));
    t.appendChild(ticking(el("div", "t"), a.in_state));
    var why = a.reason || (a.call ? "call " + a.call : "") || (a.answered ? a.answered + " answered" : "");
    t.appendChild(el("div", "r", why || "\\u00a0"));
    if (a.reason) t.title = a.reason;
    box.appendChild(t);
  });
}

function renderAlarms() {
  var box = $("alarms"); box.textContent = "";
  var list = state.alarms.slice();
  if (!live && mono() - lastState > STALE)
    list.unshift({ level: "critical", text: "NOT LIVE: no update from the acd service for " +
                   dur(mono() - lastState) + "; the figures below are old" });
  list.forEach(function (a) { box.appendChild(el("div", "alarm " + a.level, a.text)); });
}

function renderHeader() {
  var s = state.service;
  chip("ami", "AMI " + s.ami, s.ami === "connected" ? "ok" : s.ami === "down" ? "bad" : "");
  chip("journal", "journal " + s.journal, s.journal === "up" ? "ok" : "bad");
  chip("node", s.role + (s.node ? " " + s.node : "") + (s.state !== "running" ? " \\u00b7 " + s.state : ""),
       s.role === "primary" && s.state === "running" ? "" : "warn");
}

function render() {
  renderHeader(); renderAlarms(); renderQueues(); renderCallers(); renderAgents();
  document.body.dataset.seq = String(state.seq);
  document.body.dataset.updates = String(updates);
}

function tick() {
  var now = mono(), d = new Date();
  var ages = document.querySelectorAll("[data-age]");
  for (var i = 0; i < ages.length; i++) ages[i].textContent = dur(parseFloat(ages[i].dataset.age) + now - received);
  $("clock").textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  var since = now - lastState;
  $("updated").textContent = "updated " + (since < 2 ? "now" : dur(since) + " ago");
  var stale = since > STALE;
  chip("live", live && !stale ? "live" : "NOT LIVE", live && !stale ? "ok" : "bad");
  if (stale) renderAlarms();
}

function connect() {
  if (source) source.close();
  source = new EventSource("/events");
  source.addEventListener("open", function () { live = true; backoff = 1; tick(); });
  source.addEventListener("state", function (ev) {
    state = JSON.parse(ev.data); received = lastState = mono(); live = true; updates++;
    render();
  });
  source.addEventListener("error", function () {
    live = false; tick();
    // the browser retries a cut stream itself; a refused one (401, 503) it closes: retry it here
    if (source.readyState === EventSource.CLOSED) {
      setTimeout(connect, backoff * 1000); backoff = Math.min(backoff * 2, 30);
    }
  });
}

render(); tick(); setInterval(tick, 500); connect();   // twice a second: seconds change on time
})();
</script>
</body></html>
"""
