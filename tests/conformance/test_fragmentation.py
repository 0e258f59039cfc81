"""RFC 6455 §5.4: fragmented messages, control frames between fragments, illegal sequences."""

import pytest

from support.wsclient import (OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT,
                              build_frame, close_payload)


def fragments(opcode, parts, controls=None):
    """Frames of one message made of `parts`; controls maps an index i to a list of control
    frames sent right after fragment i."""
    frames = []
    for i, part in enumerate(parts):
        frames.append(build_frame(opcode if i == 0 else OP_CONTINUATION, part, fin=i == len(parts) - 1))
        for control in (controls or {}).get(i, []):
            frames.append(control)
    return frames


LEGAL = {
    "2": [b"Hello, ", b"world"],
    "3": [b"a", b"b", b"c"],
    "10": [b"%d" % i for i in range(10)],
    "empty-first": [b"", b"payload"],
    "empty-middle": [b"pay", b"", b"load"],
    "empty-last": [b"payload", b""],
    "all-empty-2": [b"", b""],
    "all-empty-5": [b""] * 5,
    "one-byte-each": [bytes([0x61 + i]) for i in range(26)],
    "126+126": [b"x" * 126, b"y" * 126],
    "64KiB-pieces": [b"z" * 65536, b"w" * 65536, b"v"],
}


@pytest.mark.parametrize("parts", LEGAL.values(), ids=LEGAL.keys())
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
@pytest.mark.parametrize("together", [True, False], ids=["one-segment", "separate"])
def test_fragmented_message_is_echoed_whole(ws, opcode, parts, together):
    frames = fragments(opcode, parts)
    if together:
        ws.send_raw(b"".join(frames))
    else:
        for frame in frames:
            ws.send_raw(frame)
    ws.expect_echo(opcode, b"".join(parts))


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
@pytest.mark.parametrize("after", [0, 1], ids=["after-first", "after-second"])
def test_ping_between_fragments(ws, opcode, after):
    parts = [b"frag1", b"frag2", b"frag3"]
    ws.send_raw(b"".join(fragments(opcode, parts, {after: [build_frame(OP_PING, b"mid")]})))
    ws.expect_pong(b"mid")
    ws.expect_echo(opcode, b"frag1frag2frag3")


def test_ping_between_fragments_sent_separately(ws):
    # The pong must come before the message is complete.
    ws.send_raw(build_frame(OP_TEXT, b"first ", fin=False))
    ws.send_raw(build_frame(OP_PING, b"are you there"))
    ws.expect_pong(b"are you there")
    ws.send_raw(build_frame(OP_CONTINUATION, b"second", fin=True))
    ws.expect_echo(OP_TEXT, b"first second")


def test_pong_between_fragments_is_ignored(ws):
    ws.send_raw(b"".join(fragments(OP_TEXT, [b"a", b"b"], {0: [build_frame(OP_PONG, b"unsolicited")]})))
    ws.expect_echo(OP_TEXT, b"ab")


def test_many_controls_between_fragments(ws):
    controls = {i: [build_frame(OP_PING, b"p%d" % i), build_frame(OP_PONG, b"x")] for i in range(4)}
    ws.send_raw(b"".join(fragments(OP_BINARY, [b"1", b"", b"3", b"4", b"5"], controls)))
    for i in range(4):
        ws.expect_pong(b"p%d" % i)
    ws.expect_echo(OP_BINARY, b"1345")


def test_fragmented_then_unfragmented(ws):
    ws.send_raw(b"".join(fragments(OP_TEXT, [b"frag", b"mented"])) + build_frame(OP_BINARY, b"whole")
                + b"".join(fragments(OP_BINARY, [b"again", b"!"])))
    ws.expect_echo(OP_TEXT, b"fragmented")
    ws.expect_echo(OP_BINARY, b"whole")
    ws.expect_echo(OP_BINARY, b"again!")


def test_fragments_one_byte_per_segment(ws):
    ws.send_raw(b"".join(fragments(OP_TEXT, [b"abc", b"", b"def"], {1: [build_frame(OP_PING, b"!")]})), split=1)
    ws.expect_pong(b"!")
    ws.expect_echo(OP_TEXT, b"abcdef")


def test_one_mebibyte_in_fragments(ws):
    parts = [bytes([i]) * 65536 for i in range(16)]
    ws.send_raw(b"".join(fragments(OP_BINARY, parts, {7: [build_frame(OP_PING, b"half")]})))
    ws.expect_pong(b"half")
    ws.expect_echo(OP_BINARY, b"".join(parts))


# --- illegal sequences ---------------------------------------------------------------------

ILLEGAL = {
    "continuation-without-start-fin": [build_frame(OP_CONTINUATION, b"orphan")],
    "continuation-without-start-nofin": [build_frame(OP_CONTINUATION, b"orphan", fin=False)],
    "empty-continuation-without-start": [build_frame(OP_CONTINUATION, b"")],
    "continuation-after-complete-message": [build_frame(OP_TEXT, b"done"), build_frame(OP_CONTINUATION, b"more")],
    "text-inside-text": [build_frame(OP_TEXT, b"a", fin=False), build_frame(OP_TEXT, b"b")],
    "text-nofin-inside-text": [build_frame(OP_TEXT, b"a", fin=False), build_frame(OP_TEXT, b"b", fin=False)],
    "binary-inside-text": [build_frame(OP_TEXT, b"a", fin=False), build_frame(OP_BINARY, b"b")],
    "text-inside-binary": [build_frame(OP_BINARY, b"a", fin=False), build_frame(OP_TEXT, b"b")],
    "binary-inside-binary-after-continuation": [build_frame(OP_BINARY, b"a", fin=False),
                                                build_frame(OP_CONTINUATION, b"b", fin=False),
                                                build_frame(OP_BINARY, b"c")],
    "fragmented-ping": [build_frame(OP_PING, b"frag", fin=False), build_frame(OP_CONTINUATION, b"ment")],
    "fragmented-ping-alone": [build_frame(OP_PING, b"frag", fin=False)],
    "fragmented-pong": [build_frame(OP_PONG, b"frag", fin=False), build_frame(OP_CONTINUATION, b"ment")],
    "fragmented-close": [build_frame(OP_CLOSE, close_payload(1000), fin=False),
                         build_frame(OP_CONTINUATION, b"")],
    "fragmented-ping-inside-text": [build_frame(OP_TEXT, b"a", fin=False), build_frame(OP_PING, b"p", fin=False),
                                    build_frame(OP_CONTINUATION, b"b")],
}


@pytest.mark.parametrize("frames", ILLEGAL.values(), ids=ILLEGAL.keys())
@pytest.mark.parametrize("together", [True, False], ids=["one-segment", "separate"])
def test_illegal_fragment_sequence_is_1002(ws, frames, together):
    if together:
        ws.send_raw(b"".join(frames))
    else:
        for frame in frames:
            ws.send_raw(frame)
    first = ILLEGAL["continuation-after-complete-message"]
    if frames is first:
        ws.expect_echo(OP_TEXT, b"done")
    ws.expect_close(1002)


def test_illegal_after_interleaved_ping_still_answers_ping_first(ws):
    ws.send_raw(build_frame(OP_TEXT, b"a", fin=False) + build_frame(OP_PING, b"p")
                + build_frame(OP_BINARY, b"bad"))
    ws.expect_pong(b"p")
    ws.expect_close(1002)
