// pylon live dashboard: subscribes to the topic pylon/stats on /ws (docs/protocol.md) and draws
// what the server publishes there once a second (docs/dashboard.md). No framework, no build step:
// an ES module that imports the client the server also serves.
import { Pylon } from "/pylon.js";

(() => {
  const kTopic = "pylon/stats";
  const kHistorySeconds = 300;   // the charts keep five minutes
  const kMinWindowSeconds = 60;  // and show at least one, so a fresh page fills from the right
  const kStaleAfterMs = 5000;

  const $ = (id) => document.getElementById(id);
  const history = [];  // {t: ms, connections, messagesIn, messagesOut, rttP50, rttP99, handlingP99}
  let lastStatsAt = 0;
  let updates = 0;

  // ---- formatting ----------------------------------------------------------------------------

  function formatCount(value) {
    if (value == null || !isFinite(value)) return "—";
    const abs = Math.abs(value);
    if (abs >= 1e9) return (value / 1e9).toFixed(abs >= 1e10 ? 0 : 1) + "G";
    if (abs >= 1e6) return (value / 1e6).toFixed(abs >= 1e7 ? 0 : 1) + "M";
    if (abs >= 1e4) return (value / 1e3).toFixed(abs >= 1e5 ? 0 : 1) + "k";
    return Math.round(value).toLocaleString("en-US");
  }

  function formatRate(value) {
    if (value == null || !isFinite(value)) return "—";
    if (value > 0 && value < 10) return value.toFixed(1);
    return formatCount(value);
  }

  function formatSeconds(value) {
    if (value == null || !isFinite(value)) return "—";
    if (value === 0) return "0";
    if (value < 1e-3) return (value * 1e6).toFixed(value < 1e-5 ? 1 : 0) + " µs";
    if (value < 1) return (value * 1e3).toFixed(value < 1e-2 ? 2 : value < 0.1 ? 1 : 0) + " ms";
    return value.toFixed(2) + " s";
  }

  function formatUptime(seconds) {
    if (seconds == null || !isFinite(seconds)) return "—";
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    const pad = (n) => String(n).padStart(2, "0");
    if (d > 0) return `${d}d ${pad(h)}h`;
    if (h > 0) return `${h}h ${pad(m)}m`;
    if (m > 0) return `${m}m ${pad(s % 60)}s`;
    return `${s}s`;
  }

  function formatBytes(value) {
    if (value == null || !isFinite(value) || value <= 0) return "—";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (value >= 1024 && i < units.length - 1) { value /= 1024; i++; }
    return value.toFixed(value >= 100 || i === 0 ? 0 : 1) + " " + units[i];
  }

  function setValue(id, text, raw) {
    const element = $(id);
    element.textContent = text;
    if (raw !== undefined) element.dataset.value = raw == null ? "" : String(raw);
  }

  // ---- charts --------------------------------------------------------------------------------

  function cssColor(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
  }

  // A round step for about `ticks` grid lines up to max: 1, 2 or 5 times a power of ten.
  function niceStep(max, ticks) {
    const raw = max / ticks;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const fraction = raw / power;
    return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
  }

  class Chart {
    // series: [{key, label, color (CSS variable)}]; format: value -> axis text.
    constructor(canvas, legend, series, format, minimumMax) {
      this.canvas = canvas;
      this.legend = legend;
      this.series = series;
      this.format = format;
      this.minimumMax = minimumMax;
      this.legend.replaceChildren(...series.map((s) => {
        const key = document.createElement("span");
        key.className = "key";
        const swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.style.background = `var(${s.color})`;
        const value = document.createElement("b");
        value.textContent = "—";
        s.valueElement = value;
        key.append(swatch, s.label + " ", value);
        return key;
      }));
    }

    draw(points) {
      const canvas = this.canvas;
      const ratio = window.devicePixelRatio || 1;
      const width = canvas.clientWidth, height = canvas.clientHeight;
      if (width === 0 || height === 0) return;
      if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
        canvas.width = Math.round(width * ratio);
        canvas.height = Math.round(height * ratio);
      }
      const g = canvas.getContext("2d");
      g.setTransform(ratio, 0, 0, ratio, 0, 0);
      g.clearRect(0, 0, width, height);

      const last = points.length ? points[points.length - 1] : null;
      for (const s of this.series) s.valueElement.textContent = last ? this.format(last[s.key]) : "—";

      const now = last ? last.t : Date.now();
      const span = points.length ? (now - points[0].t) / 1000 : 0;
      const windowSeconds = Math.min(kHistorySeconds, Math.max(kMinWindowSeconds, span));
      const start = now - windowSeconds * 1000;

      let max = 0;
      for (const p of points)
        for (const s of this.series) if (p[s.key] != null && isFinite(p[s.key])) max = Math.max(max, p[s.key]);
      max = Math.max(max, this.minimumMax);
      const step = niceStep(max, 4);
      const top = Math.ceil(max / step) * step;

      g.font = "11px system-ui, sans-serif";
      const labels = [];
      for (let v = 0; v <= top + step / 2; v += step) labels.push([v, this.format(v)]);
      const left = Math.ceil(Math.max(...labels.map(([, text]) => g.measureText(text).width))) + 10;
      const right = 8, topMargin = 6, bottom = 20;
      const plotWidth = width - left - right, plotHeight = height - topMargin - bottom;
      const x = (t) => left + ((t - start) / (windowSeconds * 1000)) * plotWidth;
      const y = (v) => topMargin + plotHeight - (v / top) * plotHeight;

      // Grid and axes.
      g.strokeStyle = cssColor("--grid");
      g.fillStyle = cssColor("--muted");
      g.lineWidth = 1;
      g.textAlign = "right";
      g.textBaseline = "middle";
      for (const [v, text] of labels) {
        const yy = Math.round(y(v)) + 0.5;
        g.beginPath();
        g.moveTo(left, yy);
        g.lineTo(width - right, yy);
        g.stroke();
        g.fillText(text, left - 6, yy);
      }
      g.textBaseline = "top";
      const tickSeconds = windowSeconds > 120 ? 60 : windowSeconds > 60 ? 30 : 15;
      for (let ago = 0; ago <= windowSeconds; ago += tickSeconds) {
        const xx = x(now - ago * 1000);
        g.textAlign = ago === 0 ? "right" : ago + tickSeconds > windowSeconds ? "left" : "center";
        const text = ago === 0 ? "now" : ago % 60 === 0 ? `−${ago / 60}m` : `−${ago}s`;
        g.fillText(text, xx, topMargin + plotHeight + 5);
      }

      // One line per series; a missing value (null) breaks the line.
      g.lineWidth = 2;
      g.lineJoin = "round";
      for (const s of this.series) {
        g.strokeStyle = cssColor(s.color);
        g.beginPath();
        let drawing = false;
        for (const p of points) {
          const v = p[s.key];
          if (v == null || !isFinite(v) || p.t < start) { drawing = false; continue; }
          if (drawing) g.lineTo(x(p.t), y(v));
          else g.moveTo(x(p.t), y(v));
          drawing = true;
        }
        g.stroke();
        if (last && last[s.key] != null && isFinite(last[s.key])) {
          g.fillStyle = g.strokeStyle;
          g.beginPath();
          g.arc(x(last.t), y(last[s.key]), 3, 0, 2 * Math.PI);
          g.fill();
        }
      }
    }
  }

  const charts = [
    new Chart($("chart-connections"), $("legend-connections"),
              [{key: "connections", label: "open", color: "--connections"}], formatCount, 5),
    new Chart($("chart-messages"), $("legend-messages"),
              [{key: "messagesIn", label: "in", color: "--messages-in"},
               {key: "messagesOut", label: "out", color: "--messages-out"}], formatRate, 5),
    new Chart($("chart-latency"), $("legend-latency"),
              [{key: "rttP50", label: "ping p50", color: "--rtt-p50"},
               {key: "rttP99", label: "ping p99", color: "--rtt-p99"},
               {key: "handlingP99", label: "handling p99", color: "--handling-p99"}], formatSeconds, 0.001),
  ];

  let drawPending = false;
  function redraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => {
      drawPending = false;
      for (const chart of charts) chart.draw(history);
    });
  }
  new ResizeObserver(redraw).observe(document.querySelector(".charts"));
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redraw);

  // ---- stats ---------------------------------------------------------------------------------

  function show(stats) {
    updates++;
    lastStatsAt = Date.now();
    document.body.dataset.updates = String(updates);
    setState("live", "live");

    $("version").textContent = stats.version || "—";
    setValue("stat-connections", formatCount(stats.connections), stats.connections);
    const endpoints = Object.entries(stats.connections_by_endpoint || {})
      .filter(([, n]) => n > 0).map(([path, n]) => `${path} ${formatCount(n)}`);
    const limit = stats.max_connections ? `of ${formatCount(stats.max_connections)}` : "";
    $("stat-endpoints").textContent = endpoints.length ? endpoints.join(" · ") : limit || "\u00a0";
    setValue("stat-messages-in", formatRate(stats.messages_in_per_second), stats.messages_in_per_second);
    setValue("stat-messages-out", formatRate(stats.messages_out_per_second), stats.messages_out_per_second);
    $("stat-messages-in-total").textContent = `${formatCount(stats.messages_in_total)} total`;
    $("stat-messages-out-total").textContent = `${formatCount(stats.messages_out_total)} total`;
    setValue("stat-rtt", `${formatSeconds(stats.ping_rtt_p50_seconds)} / ${formatSeconds(stats.ping_rtt_p99_seconds)}`,
             stats.ping_rtt_p99_seconds);
    $("stat-handling").textContent = `handling p99 ${formatSeconds(stats.handling_p99_seconds)}`;
    setValue("stat-topics", formatCount(stats.topics), stats.topics);
    $("stat-subscriptions").textContent = `${formatCount(stats.subscriptions)} subscriptions`;
    setValue("stat-compression", stats.compression_ratio == null ? "—" : `${stats.compression_ratio.toFixed(1)}×`,
             stats.compression_ratio);
    $("stat-compression-detail").textContent =
      stats.compression_ratio == null ? "nothing compressed yet" : "uncompressed ÷ on the wire";
    setValue("stat-errors", formatCount(stats.errors_total), stats.errors_total);
    $("stat-errors").classList.toggle("nonzero", stats.errors_total > 0);
    const detail = `${formatCount(stats.handshake_failures_total)} handshake · ${formatCount(stats.protocol_errors_total)} protocol`;
    $("stat-errors-detail").textContent = stats.errors_total > 0 ? detail : "none since start";
    $("stat-errors-detail").title = `refused upgrades and bad requests: ${detail}`;
    const noPings = stats.ping_rtt_p99_seconds == null;
    $("stat-rtt").title = noPings ? `no ping answered in the last ${stats.latency_window_seconds || 30} s` : "";
    setValue("stat-uptime", formatUptime(stats.uptime_seconds), stats.uptime_seconds);
    $("stat-memory").textContent = `${formatBytes(stats.resident_memory_bytes)} RSS · ${formatCount(stats.open_fds)} fds`;
    if (stats.latency_window_seconds) $("latency-window").textContent = String(stats.latency_window_seconds);

    history.push({
      t: typeof stats.time === "number" ? stats.time : Date.now(),
      connections: stats.connections,
      messagesIn: stats.messages_in_per_second,
      messagesOut: stats.messages_out_per_second,
      rttP50: stats.ping_rtt_p50_seconds,
      rttP99: stats.ping_rtt_p99_seconds,
      handlingP99: stats.handling_p99_seconds,
    });
    const oldest = history[history.length - 1].t - kHistorySeconds * 1000;
    while (history.length && history[0].t < oldest) history.shift();
    redraw();
  }

  function setState(state, text) {
    document.body.dataset.state = state;
    $("status").textContent = text;
  }

  // ---- the connection (pylon.js: reconnects with jittered backoff, heartbeat) ---------------

  function connect() {
    const client = new Pylon(`${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`);
    client.on("connected", () => setState("stale", "waiting for stats…"));
    client.on("disconnected", (event) =>
      setState("down", event.reconnect ? "disconnected, retrying…" : `disconnected (${event.code})`));
    const stats = client.subscribe(kTopic);
    stats.on("publication", (publication) => { if (publication.data) show(publication.data); });
    stats.on("error", (error) => setState("down", `error: ${error.code}`));
    client.connect();
  }

  // A socket can stay open while the stats stop (a stalled server): say so.
  setInterval(() => {
    if (document.body.dataset.state === "live" && Date.now() - lastStatsAt > kStaleAfterMs)
      setState("stale", "no stats for " + Math.round((Date.now() - lastStatsAt) / 1000) + " s");
  }, 1000);

  $("host").textContent = location.host;
  redraw();
  connect();
})();
