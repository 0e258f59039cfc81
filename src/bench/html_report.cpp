// --report FILE.html: one self-contained page (no external script, style or font): the run's
// JSON embedded in a <script type="application/json"> element, and a small inline script that
// draws SVG charts from it — throughput and latency over time, open connections (and the
// server's RSS with --pid), and the latency distribution as a percentile curve.
#include <string>

#include "bench/report_writers.hpp"

namespace pylon::bench {
namespace {

constexpr std::string_view kHead = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>pylon bench report</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; max-width: 1100px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
.sub { color: #5b6475; margin-bottom: 16px; }
table { border-collapse: collapse; }
td, th { padding: 3px 12px 3px 0; text-align: left; vertical-align: top; }
th { color: #5b6475; font-weight: 500; }
.bad { color: #b3261e; font-weight: 600; }
.ok { color: #1e7b34; font-weight: 600; }
svg { background: #fafbfc; border: 1px solid #e3e6ea; }
svg text { font: 11px system-ui, sans-serif; fill: #5b6475; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 3px; margin-right: 4px; vertical-align: middle; }
</style>
</head>
<body>
<h1 id="title">pylon bench</h1>
<div class="sub" id="subtitle"></div>
<table id="summary"></table>
<div id="charts"></div>
<script type="application/json" id="bench-data">
)html";

constexpr std::string_view kTail = R"html(</script>
<script>
"use strict";
const data = JSON.parse(document.getElementById("bench-data").textContent);
const SVG = "http://www.w3.org/2000/svg";
const colors = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c"];

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}
function fmt(v) {
  if (v === null || v === undefined) return "-";
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + "k";
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}
function us(v) { return v >= 1000 ? fmt(v / 1000) + " ms" : fmt(v) + " µs"; }

// A line chart: series = [{name, points: [[x, y], ...]}]; log = logarithmic y axis.
function chart(title, series, opts) {
  opts = opts || {};
  const box = document.createElement("div");
  const h = document.createElement("h2");
  h.textContent = title;
  box.appendChild(h);
  const W = 1000, H = 280, L = 64, R = 16, T = 12, B = 36;
  const svg = el("svg", {width: W, height: H, viewBox: `0 0 ${W} ${H}`}, box);
  const all = series.flatMap(s => s.points).filter(p => isFinite(p[1]) && (!opts.log || p[1] > 0));
  if (all.length === 0) {
    el("text", {x: W / 2 - 30, y: H / 2}, svg).textContent = "no data";
    document.getElementById("charts").appendChild(box);
    return;
  }
  const xs = all.map(p => p[0]), ys = all.map(p => p[1]);
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (x1 === x0) x1 = x0 + 1;
  let y0 = opts.log ? Math.min(...ys) : 0, y1 = Math.max(...ys);
  if (opts.log) { y0 = Math.pow(10, Math.floor(Math.log10(y0))); y1 = Math.pow(10, Math.ceil(Math.log10(y1))); }
  if (y1 <= y0) y1 = y0 + 1;
  const fx = opts.xlog ? (x => Math.log10(x)) : (x => x);
  const sx = x => L + (fx(x) - fx(x0)) / (fx(x1) - fx(x0)) * (W - L - R);
  const sy = opts.log
    ? (y => H - B - (Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0)) * (H - T - B))
    : (y => H - B - (y - y0) / (y1 - y0) * (H - T - B));
  // Axes and grid.
  const yticks = [];
  if (opts.log) { for (let v = y0; v <= y1 * 1.001; v *= 10) yticks.push(v); }
  else { for (let i = 0; i <= 4; i++) yticks.push(y0 + (y1 - y0) * i / 4); }
  for (const v of yticks) {
    el("line", {x1: L, x2: W - R, y1: sy(v), y2: sy(v), stroke: "#e3e6ea"}, svg);
    el("text", {x: 4, y: sy(v) + 4}, svg).textContent = opts.yfmt ? opts.yfmt(v) : fmt(v);
  }
  const xticks = opts.xticks || [0, 1, 2, 3, 4, 5].map(i => x0 + (x1 - x0) * i / 5);
  for (const v of xticks) {
    el("line", {x1: sx(v), x2: sx(v), y1: T, y2: H - B, stroke: "#eef0f3"}, svg);
    el("text", {x: sx(v) - 10, y: H - B + 16}, svg).textContent = opts.xfmt ? opts.xfmt(v) : fmt(v);
  }
  el("text", {x: W / 2 - 20, y: H - 4}, svg).textContent = opts.xlabel || "seconds";
  const legend = document.createElement("div");
  legend.className = "legend";
  series.forEach((s, i) => {
    const pts = s.points.filter(p => isFinite(p[1]) && (!opts.log || p[1] > 0));
    if (pts.length === 0) return;
    const d = pts.map((p, j) => (j ? "L" : "M") + sx(p[0]).toFixed(1) + " " + sy(p[1]).toFixed(1)).join(" ");
    el("path", {d, fill: "none", stroke: colors[i % colors.length], "stroke-width": 2}, svg);
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = colors[i % colors.length];
    item.appendChild(swatch);
    item.appendChild(document.createTextNode(s.name));
    legend.appendChild(item);
  });
  box.appendChild(legend);
  document.getElementById("charts").appendChild(box);
}

function row(table, name, value, cls) {
  const tr = table.insertRow();
  const th = document.createElement("th");
  th.textContent = name;
  tr.appendChild(th);
  const td = tr.insertCell();
  td.textContent = value;
  if (cls) td.className = cls;
}

function percentiles(p) {
  return `p50 ${us(p.p50)} · p90 ${us(p.p90)} · p99 ${us(p.p99)} · p99.9 ${us(p.p999)} · max ${us(p.max)} (n=${p.count})`;
}

function errorsText(e) {
  const parts = [];
  for (const k of ["refused", "timeout", "protocol", "dropped_sends", "mismatched"]) if (e[k]) parts.push(`${k} ${e[k]}`);
  for (const [k, v] of Object.entries(e.handshake)) parts.push(`handshake ${k}: ${v}`);
  for (const [k, v] of Object.entries(e.tls)) parts.push(`tls ${k}: ${v}`);
  for (const [k, v] of Object.entries(e.closed)) parts.push(`closed ${k}: ${v}`);
  for (const [k, v] of Object.entries(e.server_errors)) parts.push(`server ${k}: ${v}`);
  for (const [k, v] of Object.entries(e.other)) parts.push(`${k}: ${v}`);
  return `${e.total} (rate ${e.rate.toFixed(4)})` + (parts.length ? " — " + parts.join(", ") : "");
}

const o = data.options, c = data.connections;
document.getElementById("title").textContent = `pylon bench ${data.scenario}`;
document.getElementById("subtitle").textContent = data.urls.join(", ") + ` · ${o.threads} threads`;
const table = document.getElementById("summary");
row(table, "result", data.passed ? "ok" : `FAILED: error rate above ${data.max_error_rate}`, data.passed ? "ok" : "bad");
row(table, "connections", `${c.opened}/${c.target} opened, ${c.failed} failed, peak ${c.peak_open}, ${fmt(c.rate_per_second)}/s`);
row(table, "handshake", percentiles(data.handshake_us));
if (data.scenario !== "connect") {
  row(table, "window", `${fmt(data.duration_s)} s measured after ${o.warmup_s} s warmup`);
  if (data.scenario === "fanout") {
    row(table, "setup", `${o.subscribers} subscribers, ${o.publishers} publishers, ${o.rate} msg/s, ${o.size} B`);
    row(table, "messages", `published ${data.published}, delivered ${data.deliveries} of ${data.expected_deliveries}`);
    if (data.offsets)
      row(table, "offsets", `lost ${data.offsets.lost}, duplicated ${data.offsets.duplicated} (${data.offsets.subscribers} subscribers with history)`,
          data.offsets.lost + data.offsets.duplicated === 0 ? "ok" : "bad");
    row(table, "delivered", `${fmt(data.delivered_per_second)} msg/s`);
    row(table, "delivery latency", percentiles(data.latency_us));
    row(table, "last delivery", percentiles(data.last_delivery_us));
  } else {
    row(table, "setup", `${o.connections} connections, ${o.size} B ${o.binary ? "binary" : "text"}` +
        (data.scenario === "rate" ? `, ${o.rate} msg/s` : `, ${o.in_flight} in flight`));
    row(table, "messages", `sent ${data.sent}, received ${data.received}, lost ${data.lost}`);
    row(table, "throughput", `${fmt(data.throughput)} msg/s`);
    row(table, "latency", percentiles(data.latency_us));
  }
}
if (data.server) {
  const s = data.server;
  let text = `pid ${s.pid}: cpu ${fmt(s.cpu_seconds)} s, rss ${fmt(s.rss_before_bytes)} B → ${fmt(s.rss_after_bytes)} B`;
  if (data.server_cpu_us_per_message !== undefined) text += `, ${fmt(data.server_cpu_us_per_message)} µs cpu/message`;
  if (data.server_bytes_per_connection !== undefined) text += `, ${fmt(data.server_bytes_per_connection)} B/connection`;
  row(table, "server", text);
}
row(table, "errors", errorsText(data.errors), data.errors.total ? "bad" : "");

const tl = data.timeline;
if (data.scenario !== "connect") {
  chart("Throughput (messages per second)", [
    {name: "sent/s", points: tl.map(s => [s.t, s.sent_per_second])},
    {name: "received/s", points: tl.map(s => [s.t, s.received_per_second])},
  ]);
}
chart(data.scenario === "connect" ? "Handshake latency over time" : "Latency over time", [
  {name: "p50", points: tl.map(s => [s.t, s.p50_us])},
  {name: "p99", points: tl.map(s => [s.t, s.p99_us])},
  {name: "max", points: tl.map(s => [s.t, s.max_us])},
], {log: true, yfmt: us});
chart("Open connections", [{name: "open", points: tl.map(s => [s.t, s.open])}]);
if (data.server) chart("Server RSS (bytes)", [{name: "rss", points: tl.map(s => [s.t, s.rss_bytes])}]);

// Percentile spectrum from the histogram: x = 1 / (1 - q) on a log axis (90 %, 99 %, 99.9 % ...).
const dist = data.distribution;
const total = dist.reduce((a, b) => a + b[1], 0);
if (total > 0) {
  let seen = 0;
  const points = [];
  for (const [value, count] of dist) {
    seen += count;
    const q = Math.min(seen / total, 1 - 1 / (10 * total));
    points.push([1 / (1 - q), value]);
  }
  const ticks = [];
  for (let x = 1; x <= points[points.length - 1][0] * 1.0001; x *= 10) ticks.push(x);
  chart(data.scenario === "connect" ? "Handshake latency distribution" : "Latency distribution", [
    {name: "latency at percentile", points},
  ], {log: true, xlog: true, yfmt: us, xticks: ticks, xlabel: "percentile",
      xfmt: x => (100 * (1 - 1 / x)).toPrecision(x >= 1000 ? 5 : 3).replace(/\.?0+$/, "") + "%"});
}
</script>
</body>
</html>
)html";

}  // namespace

std::string to_html(const BenchResult& result) {
  std::string json = to_json(result);
  // Inside <script> the text ends at the first "</": in JSON that can only be inside a string,
  // where "<\/" means the same.
  std::string embedded;
  embedded.reserve(json.size() + 16);
  for (std::size_t i = 0; i < json.size(); ++i) {
    if (json[i] == '<' && i + 1 < json.size() && json[i + 1] == '/') {
      embedded += "<\\/";
      ++i;
    } else {
      embedded += json[i];
    }
  }
  std::string page;
  page.reserve(kHead.size() + embedded.size() + kTail.size());
  page += kHead;
  page += embedded;
  page += kTail;
  return page;
}

}  // namespace pylon::bench
