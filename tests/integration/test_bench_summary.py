"""bench/summary.py's verdicts for the top table of docs/benchmarks.md: rows measured in
interleaved rounds compare round by round, so that a machine whose speed drifts over the run does
not decide which server looks ahead."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import summary  # noqa: E402

KEY = "server_cpu_us_per_message"


def row(median: float, rounds: list[float]) -> dict:
    return {KEY: median, "rounds": [{KEY: value} for value in rounds]}


def test_rounds_compare_pairwise_not_as_medians():
    # The machine slows down in the last two rounds. The medians (1.3 against 1.2) say behind,
    # but in every round pylon needed 0.9 of the peer's CPU.
    pylon = row(1.3, [0.90, 1.35, 1.30])
    peer = row(1.2, [1.00, 1.50, 1.444])
    assert summary.verdict(pylon, peer, KEY) == \
        "0.90 × — **ahead by 10 %** (rounds 0.90–0.90, ahead in 3 of 3)"


def test_the_range_and_the_count_show_a_split_result():
    pylon = row(1.0, [0.95, 1.10, 1.00])
    peer = row(1.0, [1.00, 1.00, 1.00])
    assert summary.verdict(pylon, peer, KEY) == \
        "1.00 × — even (rounds 0.95–1.10, ahead in 1 of 3)"


def test_higher_is_better_counts_rounds_above_one():
    pylon = {"cycles_per_second": 110, "rounds": [{"cycles_per_second": v} for v in (110, 90, 120)]}
    peer = {"cycles_per_second": 100, "rounds": [{"cycles_per_second": 100}] * 3}
    assert summary.verdict(pylon, peer, "cycles_per_second", lower_is_better=False) == \
        "1.10 × — **ahead by 10 %** (rounds 0.90–1.20, ahead in 2 of 3)"


def test_single_measurements_compare_directly():
    # Idle memory: one measurement per server, no rounds.
    assert summary.verdict({"b": 248}, {"b": 273}, "b") == "0.91 × — **ahead by 9 %**"
    # Rounds that do not pair up (a server skipped one) fall back to the figures shown.
    assert summary.verdict(row(1.0, [1.0, 1.0]), row(2.0, [2.0, 2.0, 2.0]), KEY) == \
        "0.50 × — **ahead by 50 %**"
    assert summary.verdict({KEY: 1.0}, {}, KEY) == "–"


def churn(case: str, share, pylon_cycles: float, uws_cycles: float) -> dict:
    def result(server, cycles, cpu):
        return {"server": server, "connections": 50, "server_cpu_share": share,
                "cycles_per_second": cycles, "server_cpu_us_per_cycle": cpu,
                "server_cpu_user_us": cpu / 10, "server_cpu_system_us": cpu * 0.9}
    return {"case": case, "date": "2026-12-08", "results": [
        result("pylon", pylon_cycles, 13.0), result("uWebSockets", uws_cycles, 19.0)]}


def test_a_held_churn_case_shows_cycles_per_second_only():
    # Held to a share of a core, the server is the bottleneck: its cycles per second are the
    # figure (its CPU per cycle is the unheld case's row).
    table = summary.against_the_bar([churn("churn-50", None, 41000, 39000),
                                     churn("churn-50-held", 0.4, 30000, 21000)])
    rows = [line for line in table.split("\n") if line.startswith("| churn")]
    assert [row.split(" | ")[0] for row in rows] == [
        "| churn (connect, upgrade, close handshake), 50 at once: server CPU per cycle, µs (user + system)",
        "| churn (connect, upgrade, close handshake), 50 at once: cycles per second",
        "| churn (connect, upgrade, close handshake), 50 at once, each server held to 0.4 of a core: "
        "cycles per second"]
    assert "1.43 × — **ahead by 43 %**" in rows[2]
    assert "held to 0.4 of a core by a CPU cgroup quota" in "\n".join(
        summary.churn_table(churn("churn-50-held", 0.4, 30000, 21000)))
