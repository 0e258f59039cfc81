"""`pylon bench` against a local pylon: every scenario for about a second, with assertions on
correctness (echoes matched, counts adding up, the JSON fields of docs/bench.md, a well-formed
self-contained HTML report, error kinds, the exit code and --max-error-rate), not on speed."""

from __future__ import annotations

import json
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from support.background_ws import BackgroundServer
from support.deflate import compression_counters
from support.server import free_port, pylon_bin, start_server

PERCENTILES = ("p50", "p90", "p99", "p999", "max")
ERROR_KINDS = ("total", "rate", "refused", "timeout", "protocol", "dropped_sends", "mismatched",
               "handshake", "closed", "server_errors", "other")


def bench(tmp_path: Path, scenario: str, url: str, *args: str, timeout: float = 60):
    """Runs `pylon bench`; returns (exit code, stdout, the --json document)."""
    json_path = tmp_path / f"{scenario}.json"
    argv = [pylon_bin(), "bench", scenario, "--url", url, "--threads", "2", "--json",
            str(json_path), *args]
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout)
    assert json_path.exists(), f"no JSON written\n{result.stdout}\n{result.stderr}"
    return result.returncode, result.stdout, json.loads(json_path.read_text())


def check_percentiles(node: dict, count_at_least: int = 1) -> None:
    for name in PERCENTILES:
        assert isinstance(node[name], (int, float)), name
    assert node["count"] >= count_at_least
    if node["count"]:
        assert 0 < node["p50"] <= node["p90"] <= node["p99"] <= node["p999"] <= node["max"]


def check_common(data: dict, scenario: str) -> None:
    assert data["scenario"] == scenario
    for name in ("throughput", "sent", "received", "lost", "latency_us", "handshake_us", "errors",
                 "connections", "timeline", "distribution", "passed", "operations"):
        assert name in data, name
    for kind in ERROR_KINDS:
        assert kind in data["errors"], kind
    assert data["timeline"], "no timeline samples"


class ReportParser(HTMLParser):
    """Collects tags, checks nesting, and every URL-bearing attribute."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "col", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.data_script = ""
        self._in_data = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag not in self.VOID:
            self.stack.append(tag)
        self._in_data = tag == "script" and attributes.get("type") == "application/json"

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()
        self._in_data = False

    def handle_data(self, data):
        if self._in_data:
            self.data_script += data


def check_report(path: Path, data: dict) -> None:
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>")
    parser = ReportParser()
    parser.feed(text)
    parser.close()
    assert not parser.errors, parser.errors
    assert not parser.stack, f"unclosed: {parser.stack}"
    for tag, attrs in parser.tags:
        for name in ("src", "href"):
            assert name not in attrs, f"<{tag} {name}=...>: the report must be self-contained"
        if tag == "link":
            pytest.fail("the report must not link stylesheets")
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert len(scripts) == 2  # the embedded data and the inline chart code
    assert json.loads(parser.data_script) == data


def test_echo_every_message_matched(tmp_path):
    with start_server() as server:
        report = tmp_path / "echo.html"
        code, out, data = bench(tmp_path, "echo", server.url(), "--connections", "8",
                                "--duration", "1.5", "--warmup", "0.3", "--size", "64",
                                "--in-flight", "4", "--report", str(report), "--pid",
                                str(server.pid))
    assert code == 0, out
    check_common(data, "echo")
    assert data["errors"]["total"] == 0
    assert data["sent"] > 0 and data["sent"] == data["received"] and data["lost"] == 0
    assert data["connections"]["opened"] == 8 and data["connections"]["failed"] == 0
    check_percentiles(data["latency_us"], count_at_least=data["received"])
    assert data["latency_us"]["count"] == data["received"]
    check_percentiles(data["handshake_us"], count_at_least=8)
    assert data["bytes_received"] == 64 * data["received"]
    assert data["throughput"] == pytest.approx(data["received"] / data["duration_s"], rel=1e-3)
    assert sum(count for _, count in data["distribution"]) == data["received"]
    assert data["server"]["pid"] == server.pid
    assert data["server_cpu_seconds"] >= 0 and "server_cpu_us_per_message" in data
    split = data["server"]["cpu_user_seconds"] + data["server"]["cpu_system_seconds"]
    assert data["server"]["cpu_user_seconds"] >= 0 and data["server"]["cpu_system_seconds"] >= 0
    assert split == pytest.approx(data["server_cpu_seconds"], abs=1e-4)
    assert data["server"]["rss_before_bytes"] > 0
    assert {s["phase"] for s in data["timeline"]} >= {"measure"}
    assert "throughput" in out and "p99.9" in out  # the summary, always printed
    assert "\r" not in out  # no progress line when stdout is not a terminal
    check_report(report, data)


def test_echo_binary_across_two_urls(tmp_path):
    with start_server() as a, start_server() as b:
        code, out, data = bench(tmp_path, "echo", a.url(), "--url", b.url(), "--connections", "4",
                                "--duration", "1", "--size", "3", "--binary")
    assert code == 0, out
    assert data["urls"] == [a.url(), b.url()]
    assert data["errors"]["total"] == 0 and data["sent"] == data["received"] > 0


def test_rate_open_loop(tmp_path):
    with start_server() as server:
        code, out, data = bench(tmp_path, "rate", server.url(), "--connections", "10",
                                "--rate", "1000", "--duration", "1.5", "--size", "32")
    assert code == 0, out
    check_common(data, "rate")
    assert data["errors"]["total"] == 0
    # Open loop: the schedule, not the server, decides how many messages go out.
    assert data["sent"] == pytest.approx(1500, abs=15)
    assert data["sent"] == data["received"]
    check_percentiles(data["latency_us"], count_at_least=data["received"])


def test_fanout_delivery_to_every_subscriber(tmp_path):
    with start_server() as server:
        report = tmp_path / "fanout.html"
        code, out, data = bench(tmp_path, "fanout", server.url("/ws"), "--subscribers", "20",
                                "--publishers", "2", "--rate", "200", "--duration", "1",
                                "--size", "120", "--topic", "bench-test", "--report", str(report))
    assert code == 0, out
    check_common(data, "fanout")
    assert data["errors"]["total"] == 0
    assert data["subscribers_acked"] == 20
    assert data["published"] == pytest.approx(200, abs=4)
    assert data["expected_deliveries"] == data["published"] * 20
    assert data["deliveries"] == data["expected_deliveries"] == data["received"]
    assert data["completed"] == data["published"] and data["incomplete"] == 0
    check_percentiles(data["latency_us"], count_at_least=data["deliveries"])
    check_percentiles(data["last_delivery_us"], count_at_least=data["published"])
    # The last subscriber cannot have a message before the median one does.
    assert data["last_delivery_us"]["p50"] >= data["latency_us"]["p50"]
    assert data["delivered_per_second"] > 0
    assert "offsets" not in data  # a topic without history has none to check
    check_report(report, data)


def test_fanout_checks_offsets_on_a_history_topic(tmp_path):
    with start_server("--namespace", "chat:history_size=100",
                      "--namespace", "chat:history_ttl=60") as server:
        report = tmp_path / "fanout.html"
        code, out, data = bench(tmp_path, "fanout", server.url("/ws"), "--subscribers", "20",
                                "--rate", "200", "--duration", "1", "--topic", "chat:bench",
                                "--report", str(report))
    assert code == 0, out
    assert data["deliveries"] == data["expected_deliveries"] > 0
    assert data["offsets"] == {"subscribers": 20, "lost": 0, "duplicated": 0}
    assert "lost 0, duplicated 0 (20 subscribers with history)" in out
    check_report(report, data)


class OffsetFaults(BackgroundServer):
    """A stand-in for pylon's /ws that numbers each publication (offset 1, 2 ...) and forwards it to
    every subscriber, but withholds the multiples of 5 from the first subscriber and sends the
    multiples of 7 twice to everyone: a server that loses and duplicates, which pylon never is."""

    def __init__(self):
        self.subscribers = []
        self.published = 0
        super().__init__()

    async def handler(self, websocket, path=None):
        async for text in websocket:
            request = json.loads(text)
            topic = request.get("topic") or request["topics"][0]
            if request["type"] == "subscribe":
                self.subscribers.append(websocket)
                await websocket.send(json.dumps(
                    {"type": "ack", "id": request["id"],
                     "positions": {topic: {"offset": 0, "epoch": "e"}}}, separators=(",", ":")))
            elif request["type"] == "publish":
                self.published += 1
                offset = self.published
                data = json.dumps(request["data"], separators=(",", ":"))
                message = f'{{"type":"message","topic":"{topic}","offset":{offset},"data":{data}}}'
                for index, subscriber in enumerate(self.subscribers):
                    if index == 0 and offset % 5 == 0:
                        continue
                    for _ in range(2 if offset % 7 == 0 else 1):
                        await subscriber.send(message)


def test_fanout_counts_lost_and_duplicated_offsets(tmp_path):
    with OffsetFaults() as faults:
        code, out, data = bench(tmp_path, "fanout", f"ws://127.0.0.1:{faults.port}/ws",
                                "--subscribers", "4", "--rate", "100", "--duration", "1",
                                "--topic", "chat:faulty")
    published = faults.published
    assert published >= 90
    # The first subscriber gets no copy of the multiples of 35.
    lost, duplicated = published // 5, 4 * (published // 7) - published // 35
    assert data["offsets"] == {"subscribers": 4, "lost": lost, "duplicated": duplicated}
    # A duplicate is not a delivery; what was withheld is missing.
    assert data["deliveries"] == data["expected_deliveries"] - lost
    assert f"lost {lost}, duplicated {duplicated}" in out


@pytest.mark.parametrize("mode", ["shared", "dedicated"])
def test_json_payload_with_compression(tmp_path, mode):
    """--payload json --compression: the publishes are valid JSON (the server would answer
    invalid_json otherwise), every subscriber inflates every delivery, and the server's counters
    show JSON-like ratios, not the filler's ~60:1."""
    with start_server("--compression", mode) as server:
        before = compression_counters(server.address)
        code, out, data = bench(tmp_path, "fanout", server.url("/ws"), "--subscribers", "20",
                                "--rate", "100", "--duration", "1", "--size", "1024",
                                "--payload", "json", "--compression", "--topic", "bench-json")
        assert code == 0, out
        assert data["options"]["payload"] == "json" and data["options"]["compression"] is True
        assert data["errors"]["total"] == 0
        assert data["deliveries"] == data["expected_deliveries"] == data["published"] * 20 > 0
        code, out, echo = bench(tmp_path, "echo", server.url(), "--connections", "4", "--duration", "1",
                                "--size", "1024", "--payload", "json", "--compression")
        assert code == 0, out
        assert echo["errors"]["total"] == 0 and echo["sent"] == echo["received"] > 0
        after = compression_counters(server.address)
    ratio = (after["compressed_out"] - before["compressed_out"]) / (after["uncompressed_out"] - before["uncompressed_out"])
    # Records with varying numbers: around 0.3-0.5 without context, less with it; filler is ~0.02.
    assert 0.08 < ratio < 0.6, f"compressed/uncompressed out = {ratio:.3f}"


def test_connect_ramp_and_server_memory(tmp_path):
    with start_server() as server:
        report = tmp_path / "connect.html"
        code, out, data = bench(tmp_path, "connect", server.url(), "--connections", "200",
                                "--ramp-rate", "500", "--duration", "1", "--pid",
                                str(server.pid), "--report", str(report))
    assert code == 0, out
    check_common(data, "connect")
    connections = data["connections"]
    assert connections["opened"] == 200 and connections["failed"] == 0
    assert connections["peak_open"] == 200 and connections["open_at_end"] == 200
    # 200 connections at 500/s take about 0.4 s.
    assert 0.3 <= connections["connect_seconds"] < 5
    assert 0 < connections["rate_per_second"] <= 700
    check_percentiles(data["handshake_us"], count_at_least=200)
    assert data["server"]["rss_after_bytes"] > 0
    assert "server_bytes_per_connection" in data
    check_report(report, data)


def test_refused_counts_and_exit_code(tmp_path):
    url = f"ws://127.0.0.1:{free_port()}/ws/echo"  # nothing listens there
    code, out, data = bench(tmp_path, "echo", url, "--connections", "3", "--duration", "1")
    assert code == 1, out
    assert data["errors"]["refused"] == 3 and data["errors"]["total"] == 3
    assert data["connections"]["failed"] == 3 and data["passed"] is False
    assert data["errors"]["rate"] == 1
    code, out, data = bench(tmp_path, "echo", url, "--connections", "3", "--duration", "1",
                            "--max-error-rate", "1")
    assert code == 0, out
    assert data["passed"] is True


def test_handshake_status_when_the_server_is_full(tmp_path):
    with start_server("--max-connections", "2") as server:
        code, out, data = bench(tmp_path, "echo", server.url(), "--connections", "5",
                                "--duration", "1")
        assert code == 1, out
        assert data["errors"]["handshake"] == {"503": 3}
        assert data["connections"]["opened"] == 2 and data["connections"]["failed"] == 3
        # The two that got in still have every echo matched.
        assert data["sent"] == data["received"] > 0
        # 3 errors among thousands of messages: a tolerated rate.
        code, out, data = bench(tmp_path, "echo", server.url(), "--connections", "5",
                                "--duration", "1", "--max-error-rate", "0.01")
        assert code == 0, out


def test_closed_by_server_with_code(tmp_path):
    with start_server("--max-message-size", "100") as server:
        code, out, data = bench(tmp_path, "echo", server.url(), "--connections", "3",
                                "--duration", "1", "--size", "1000")
    assert code == 1, out
    assert data["errors"]["closed"] == {"1009": 3}
    assert "closed 1009 3" in out


def test_bad_options_exit_2():
    result = subprocess.run([pylon_bin(), "bench", "rate", "--url", "ws://127.0.0.1:1/ws/echo"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--rate" in result.stderr
    result = subprocess.run([pylon_bin(), "bench", "echo", "--url", "http://x/"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
