"""The Markdown of one run of bench/run.py, ready for docs/benchmarks.md: first the table "Against
the bar, in short", computed from the run's own numbers (pylon / uWebSockets and pylon / raw TCP,
each as "ahead by X %" or "behind by X %"), then the detailed tables of every case, then the idle
cost per connection extrapolated to 1,000,000 connections.

A case's kind is the start of its name (echo-, churn-, fanout-, idle-, deflate-), so that results
written by older versions of run.py (`run.py --report-only DATE`) still print.
"""
from benchlib import SERVER_CORE, markdown_table

PYLON, UWS, RAW = "pylon", "uWebSockets", "raw TCP"
# pylon's row on its other backend: epoll since io_uring became the default; io_uring in the runs
# from before (2026-12-07 and earlier), when epoll was.
OTHER_BACKENDS = ("pylon (epoll)", "pylon (io_uring)")


def kind(document):
    return document["case"].split("-")[0]


def number(value, digits=2):
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return "–"


def quotient(a, b):
    try:
        return float(a) / float(b)
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def paired_ratios(mine, peer, key):
    """Round by round, mine's `key` over peer's: the servers of one round ran back to back, so a
    drift of the machine's speed over the run falls on both sides of each ratio. [] when the two
    rows do not have the same rounds."""
    a, b = mine.get("rounds") or [], peer.get("rounds") or []
    if len(a) < 2 or len(a) != len(b):
        return []
    return sorted(r for r in (quotient(x.get(key), y.get(key)) for x, y in zip(a, b)) if r is not None)


def verdict(mine, peer, key, lower_is_better=True):
    """'0.91 × — ahead by 9 %': mine's figure against the peer's. Rows measured in interleaved
    rounds compare as the median of their per-round ratios, with the range over the rounds and how
    many rounds mine was ahead in."""
    ratios = paired_ratios(mine, peer, key)
    r = ratios[len(ratios) // 2] if ratios else quotient(mine.get(key), peer.get(key))
    if r is None:
        return "–"
    ahead = (1 - r) if lower_is_better else (r - 1)
    if abs(ahead) < 0.005:
        text = f"{r:.2f} × — even"
    else:
        text = f"{r:.2f} × — {'**ahead' if ahead > 0 else 'behind'} by {abs(ahead) * 100:.0f} %" + \
            ("**" if ahead > 0 else "")
    if ratios:
        wins = sum(1 for x in ratios if (x < 1 if lower_is_better else x > 1))
        text += f" (rounds {ratios[0]:.2f}–{ratios[-1]:.2f}, ahead in {wins} of {len(ratios)})"
    return text


def entry(document, server, client=None):
    """The result of `server` in a case (with `client`, when given), {} when absent or skipped."""
    for r in document["results"]:
        if r["server"] == server and "skipped" not in r and (client is None or r.get("client") == client):
            return r
    return {}


def ws_entry(document, server):
    """The row driven by the common WebSocket client (pylon bench when the run had it)."""
    return next((r for r in document["results"] if r["server"] == server and "skipped" not in r
                 and r.get("client") != "echo_client"), None) or entry(document, server)


def skipped_row(cells, r, width):
    """A table row for a server that did not run: its first cells, the reason, empty cells."""
    return cells + [f"skipped: {r['skipped']}"] + [""] * (width - len(cells) - 1)


def rows_of(results, first, rest, width):
    """Table rows: first(r) + rest(r, latency) for each result, or the reason it was skipped."""
    return [skipped_row(first(r), r, width) if "skipped" in r else first(r) + rest(r, r.get("latency_us") or {})
            for r in results]


def load(r):
    return f"{r.get('loadavg_before', '').split(' ')[0]} → {r.get('loadavg_after', '').split(' ')[0]}"


def cpu(r, key):
    """'0.57 (0.09 + 0.48)': total µs (user + system) of a row."""
    if r.get(key) is None:
        return "–"
    if r.get("server_cpu_user_us") is None:
        return number(r[key])
    return f"{number(r[key])} ({number(r['server_cpu_user_us'])} + {number(r['server_cpu_system_us'])})"


def spread(r, key):
    """'0.55–0.61': the range of `key` over the interleaved rounds of a row ('' for one round)."""
    values = [round_[key] for round_ in r.get("rounds", []) if round_.get(key) is not None]
    return f"{number(min(values))}–{number(max(values))}" if len(values) > 1 else ""


def echo_parameters(document):
    connections, size = document["case"].split("-")[1].split("x")[:2]
    results = [r for r in document["results"] if "in_flight" in r]
    in_flight = results[0]["in_flight"] if results else 1
    return int(connections), size, in_flight


def other_backend(documents):
    """The name of the run's row of pylon on its other backend, None when it has none."""
    return next((r["server"] for d in documents for r in d["results"]
                 if r["server"] in OTHER_BACKENDS and "skipped" not in r), None)


def against_the_bar(documents):
    """The top table: pylon against uWebSockets and raw TCP, from this run alone."""
    other = other_backend(documents)
    header = ["measure", PYLON] + ([other] if other else []) + [UWS, RAW, "pylon vs uWebSockets"]
    header += [f"{other.removeprefix('pylon (').rstrip(')')} vs uWebSockets"] if other else []
    header += ["pylon vs raw TCP"]
    rows = []

    def add(label, values, key, digits=2, lower_is_better=True, raw_pylon=None, show=None, against_raw=True):
        show = show or (lambda r: number(r.get(key), digits))
        pylon, pylon_other, uws, raw = values
        row = [label, show(pylon)] + ([show(pylon_other)] if other else []) + [show(uws), show(raw) if raw else "–"]
        row.append(verdict(pylon, uws, key, lower_is_better))
        if other:
            row.append(verdict(pylon_other, uws, key, lower_is_better))
        against_raw = against_raw and raw
        row.append(verdict(raw_pylon or pylon, raw, key, lower_is_better) if against_raw else "–")
        rows.append(row)

    for d in documents:
        if kind(d) == "echo":
            connections, size, in_flight = echo_parameters(d)
            size = "1 KiB" if size == "1k" else f"{size} B"
            what = f"echo, {connections:,} connections × {size}, {in_flight} in flight"
            values = (ws_entry(d, PYLON), ws_entry(d, other), ws_entry(d, UWS), entry(d, RAW))
            add(f"{what}: server CPU per message, µs (user + system)", values,
                "server_cpu_us_per_message", raw_pylon=entry(d, PYLON, "echo_client"),
                show=lambda r: cpu(r, "server_cpu_us_per_message"))
            if in_flight > 1:
                # The raw echo has no protocol code: its user time is a few clock ticks, no ratio.
                add(f"{what}: user-space CPU per message, µs", values, "server_cpu_user_us", against_raw=False)
        elif kind(d) == "churn":
            values = (entry(d, PYLON), entry(d, other), entry(d, UWS), entry(d, RAW))
            what = f"churn (connect, upgrade, close handshake), {values[0].get('connections', '')} at once"
            share = values[0].get("server_cpu_share")
            if share:  # the server the bottleneck: its cycles per second are what it can do
                add(f"{what}, each server held to {share} of a core: cycles per second", values,
                    "cycles_per_second", digits=0, lower_is_better=False)
                continue
            add(f"{what}: server CPU per cycle, µs (user + system)", values, "server_cpu_us_per_cycle",
                show=lambda r: cpu(r, "server_cpu_us_per_cycle"))
            add(f"{what}: cycles per second", values, "cycles_per_second", digits=0, lower_is_better=False)
        elif kind(d) == "idle":
            values = (entry(d, PYLON), entry(d, other), entry(d, UWS), {})
            connections = values[0].get("connections") or values[2].get("connections") or 0
            level = d.get("settings", {}).get("pylon_log_level", "warn")
            add(f"idle WebSockets, {connections:,}: server memory per connection, bytes (pylon at log level "
                f"{level})", values,
                "server_bytes_per_connection", digits=0)
    date = documents[0]["date"] if documents else ""
    rounds = documents[0].get("settings", {}).get("rounds", 1) if documents else 1
    versions = documents[0].get("versions", {}) if documents else {}
    dirty = " + uncommitted changes in src/ or include/" if versions.get("pylon_tree_dirty") else ""
    lines = [f"## Against the bar, in short ({date}, one `make bench` run, pylon "
             f"{versions.get('pylon_commit', '')[:10]}{dirty})", "",
             "Every figure below comes from the same run (bench/run.py; raw data in "
             f"`bench/results/{date}-*.json`): each server pinned to core 0, the load generator to core "
             "1; server CPU is utime + stime over the measured window, split into user and system "
             f"time; echo and churn: {rounds} rounds interleaved over the servers, each server's median "
             "round shown, and each ratio the median of the per-round ratios (a round's servers run "
             "back to back, so the machine's drift over the run cancels in them), with their range "
             "and the rounds pylon was ahead in. \"ahead by X %\": pylon needs X % less CPU or "
             "memory, or completes X % more cycles per second, than the peer. The pylon / raw TCP "
             "column compares runs with the same client (bench/peers/echo_client).", "",
             markdown_table(header, rows)]
    fanout = [d for d in documents if kind(d) == "fanout"]
    if fanout:
        lines += ["", "Fan-out (pylon alone; uWebSockets' peer is an echo server, no pub/sub), "
                  "server CPU per delivery and the last subscriber's p99:", ""]
        for d in fanout:
            for r in d["results"]:
                if r["server"] in (PYLON, other) and "skipped" not in r:
                    last = r.get("last_subscriber_us") or {}
                    lines.append(f"- {d['case']}, {r['server']}: {cpu(r, 'server_cpu_us_per_delivery')} µs per "
                                 f"delivery, last subscriber p99 {number((last.get('p99') or 0) / 1e3, 1)} ms")
    return "\n".join(lines) + "\n"


def echo_tables(echo):
    peers = []
    for d in echo:
        for r in d["results"]:
            if r["server"] != PYLON and r["server"] not in peers:
                peers.append(r["server"])
    lines = []
    for key, title, digits in (
            ("server_cpu_us_per_message", "Server CPU per message, pylon / peer (below 1: pylon spends less CPU; "
             "the raw TCP column compares the pylon and raw TCP runs both driven by `echo_client`)", 2),
            ("messages_per_second", "Messages per second, pylon / peer (above 1: pylon echoes more)", 0)):
        rows = []
        for d in echo:
            pylon_ws, pylon_raw = ws_entry(d, PYLON), entry(d, PYLON, "echo_client")
            cells = []
            for peer in peers:
                base = (pylon_raw or pylon_ws) if peer == RAW else pylon_ws
                peer_result = entry(d, peer, "echo_client") if peer == RAW else ws_entry(d, peer)
                r = quotient(base.get(key), peer_result.get(key))
                cells.append("–" if r is None else f"{r:.2f}")
            rows.append([d["case"], number(pylon_ws.get(key), digits)] + cells)
        lines += ["", f"{title}:", "",
                  markdown_table(["case", f"pylon {'µs/msg' if digits else 'msg/s'}"] + [f"/ {p}" for p in peers], rows)]
    rows = []
    for d in echo:
        rows += rows_of(d["results"], lambda r: [d["case"], r["server"], r["client"]], lambda r, lat: [
            r.get("in_flight", 1), cpu(r, "server_cpu_us_per_message"), spread(r, "server_cpu_us_per_message"),
            number(r.get("messages_per_second"), 0), f"{number(lat.get('p50'), 0)} / {number(lat.get('p99'), 0)}",
            load(r)], 9)
    lines += ["", "Absolute figures (µs of server CPU per message, user + system, of the median round, and "
              "the range over the rounds; messages/s; client; load average before → after):", "",
              markdown_table(["case", "server", "client", "in flight", "µs CPU/msg", "rounds", "msg/s",
                              "p50 / p99 µs", "load"], rows)]
    return lines


def churn_table(d):
    pylon = entry(d, PYLON)
    rows = rows_of(d["results"], lambda r: [r["server"]], lambda r, lat: [
        number(r.get("cycles_per_second"), 0), spread(r, "cycles_per_second"), cpu(r, "server_cpu_us_per_cycle"),
        spread(r, "server_cpu_us_per_cycle"),
        number(quotient(pylon.get("server_cpu_us_per_cycle"), r.get("server_cpu_us_per_cycle"))),
        f"{number((lat.get('p50') or 0) / 1e3, 1)} / {number((lat.get('p99') or 0) / 1e3, 1)}",
        sum((r.get("errors") or {}).values()), load(r)], 9)
    share = pylon.get("server_cpu_share")
    held = (f"; every server held to {share} of a core by a CPU cgroup quota, so that the server, not the "
            "client, is the bottleneck") if share else ""
    return ["", f"Connection churn (`{d['case']}`, `echo_client --churn`: each of "
            f"{pylon.get('connections', '')} slots connects, upgrades, sends a close frame, reads until "
            "the server closes the TCP connection, and starts again; raw TCP: the same bytes echoed, "
            f"then a reset — the floor{held}):", "",
            markdown_table(["server", "cycles/s", "rounds", "µs CPU/cycle (user + system)", "rounds",
                            "pylon CPU / server", "cycle p50 / p99 ms", "errors", "load"], rows)]


def fanout_table(fanout):
    rows, floors = [], []
    for d in fanout:
        for r in d["results"]:
            if r["server"] == "raw TCP floor":
                out = r.get("client_output") or {}
                last = out.get("last_write_ms") or {}
                floors.append(f"- {d['case']}: the floor (`fanout_floor`: one write() per socket, no "
                              f"WebSocket): the last socket written after p50 {number(last.get('p50'))} ms, "
                              f"p99 {number(last.get('p99'))} ms; {number(out.get('writer_cpu_us_per_write'))} µs "
                              f"of writer CPU per write; load {load(r)}")
                continue
            if "skipped" in r:
                rows.append(skipped_row([d["case"], r["server"], r.get("loops", "")], r, 9))
                continue
            lat, last = r.get("latency_us") or {}, r.get("last_subscriber_us") or {}
            rows.append([d["case"], r["server"], f"{r.get('loops', 1)} (cores {r.get('server_cores', SERVER_CORE)})",
                         number(r.get("delivered_per_second"), 0), cpu(r, "server_cpu_us_per_delivery"),
                         f"{number((lat.get('p50') or 0) / 1e3, 1)} / {number((lat.get('p99') or 0) / 1e3, 1)}",
                         f"{number((last.get('p50') or 0) / 1e3, 1)} / {number((last.get('p99') or 0) / 1e3, 1)}",
                         r.get("errors"), load(r)])
    return ["", "Fan-out, 1 publisher of 64-byte messages → N subscribers on `/ws`, 100,000 deliveries/s "
            "(`pylon bench fanout`, one client thread on core 1; with 2 loops the server has cores 0 "
            "and 1 and shares core 1 with the client):", "",
            markdown_table(["case", "server", "loops", "deliveries/s", "µs CPU/delivery (user + system)",
                            "delivery p50 / p99 ms", "last subscriber p50 / p99 ms", "errors", "load"], rows),
            ""] + floors


def idle_table(idle):
    rows = []
    for d in idle:
        pylon = entry(d, PYLON)
        for r in d["results"]:
            kernel = r.get("kernel") or {}
            rows.append([d["case"], r["server"], r.get("connected", "–"),
                         number(r.get("server_bytes_per_connection"), 0),
                         number(quotient(pylon.get("server_bytes_per_connection"),
                                         r.get("server_bytes_per_connection"))),
                         number(kernel.get("slabinfo_bytes_per_connection", kernel.get("slab_bytes_per_connection")), 0),
                         r.get("skipped") or r.get("note", "")])
    return ["", "Memory per idle WebSocket: the server's RSS growth, and the kernel's slab growth "
            "(/proc/slabinfo; both ends of each loopback connection, so two sockets):", "",
            markdown_table(["case", "server", "connected", "server bytes/connection", "pylon / server",
                            "kernel bytes/connection (both ends)", "note"], rows)]


def scale_lines(idle):
    """Per-connection cost of pylon at 10k and 100k and its extrapolation to 1,000,000."""
    lines = []
    for d in idle:
        for server in (PYLON, *OTHER_BACKENDS):
            r = entry(d, server)
            kernel = (r.get("kernel") or {}).get("slabinfo_bytes_per_connection")
            if not r.get("server_bytes_per_connection") or kernel is None:
                continue
            # The server's socket is one of the two sockets of a loopback connection.
            server_kernel = kernel / 2
            total = r["server_bytes_per_connection"] + server_kernel
            lines.append(f"| {server} | {r['connected']:,} | {number(r['server_bytes_per_connection'], 0)} | "
                         f"{number(server_kernel, 0)} | {number(total, 0)} | "
                         f"{number(total * 1e6 / 2**30, 2)} GiB |")
    if not lines:
        return []
    return ["", "Cost per idle connection on the server's side, and by extrapolation for 1,000,000 "
            "(user: RSS growth; kernel: half the slab growth, the server's socket of the two):", "",
            "| server | connections | user bytes | kernel bytes | total bytes | × 1,000,000 |",
            "|---|---|---|---|---|---|"] + lines


def deflate_table(d):
    scenario = d["results"][0].get("scenario", "echo") if d["results"] else "echo"
    connections = d["results"][0].get("connections") if d["results"] else ""
    what = (f"echo, {connections} connections × 1 KiB JSON" if scenario == "echo" else
            f"fan-out, 1 publisher → {connections} subscribers of 1 KiB JSON")
    rows = rows_of(d["results"], lambda r: [r["compression"]], lambda r, lat: [
        number(r.get("messages_per_second"), 0), cpu(r, "server_cpu_us_per_message"), number(r.get("wire_ratio"), 3),
        f"{number(r.get('server_bytes_per_connection'), 0)} B",
        f"{number(lat.get('p50'), 0)} / {number(lat.get('p99'), 0)}", load(r)], 7)
    return ["", f"permessage-deflate, {what} (`{d['case']}`; µs of server CPU per message "
            f"{'echoed' if scenario == 'echo' else 'delivered'}):", "",
            markdown_table(["compression", "msg/s", "µs CPU/msg (user + system)", "wire bytes / payload bytes",
                            "RSS growth per connection", "p50 / p99 µs", "load"], rows)]


def markdown(documents):
    """The summary of one run: the top table, then every case's details."""
    lines = [against_the_bar(documents)]
    echo = [d for d in documents if kind(d) == "echo"]
    if echo:
        lines += echo_tables(echo)
    for d in documents:
        if kind(d) == "churn":
            lines += churn_table(d)
    fanout = [d for d in documents if kind(d) == "fanout"]
    if fanout:
        lines += fanout_table(fanout)
    idle = [d for d in documents if kind(d) == "idle"]
    if idle:
        lines += idle_table(idle) + scale_lines(idle)
    for d in documents:
        if kind(d) == "deflate":
            lines += deflate_table(d)
    return "\n".join(lines) + "\n"
