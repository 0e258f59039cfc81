"""RFC 6455 §5.5.2-5.5.3: pings are answered with identical pongs; unsolicited pongs ignored."""

import pytest

from support.wsclient import OP_BINARY, OP_PING, OP_PONG, OP_TEXT, build_frame


@pytest.mark.parametrize("payload", [b"", b"x", b"Hello, pong!", bytes(range(125)), b"\xff" * 125,
                                     b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"],
                         ids=["empty", "1", "text", "125-all-bytes", "125-ff", "utf8"])
def test_ping_gets_identical_pong(ws, payload):
    ws.send_frame(OP_PING, payload)
    ws.expect_pong(payload)
    ws.expect_silence_then_echo()


@pytest.mark.parametrize("length,form", [(126, None), (1000, None), (65536, None), (125, 16)],
                         ids=["126", "1000", "65536", "125-as-16bit"])
def test_ping_payload_over_125_is_1002(ws, length, form):
    # 125 in a 16-bit encoding is also illegal (§5.5: control frames use the 7-bit form).
    ws.send_frame(OP_PING, b"*" * length, length_form=form)
    ws.expect_close(1002)


def test_pong_payload_over_125_is_1002(ws):
    ws.send_frame(OP_PONG, b"*" * 126)
    ws.expect_close(1002)


@pytest.mark.parametrize("payload", [b"", b"unsolicited", bytes(range(125))], ids=["empty", "text", "125"])
def test_unsolicited_pong_is_ignored(ws, payload):
    ws.send_frame(OP_PONG, payload)
    ws.expect_silence_then_echo()


def test_unsolicited_pong_then_ping(ws):
    ws.send_raw(build_frame(OP_PONG, b"nobody asked") + build_frame(OP_PING, b"asking"))
    ws.expect_pong(b"asking")


def test_ten_pings_ten_pongs_in_order(ws):
    ws.send_raw(b"".join(build_frame(OP_PING, b"ping %d" % i) for i in range(10)))
    for i in range(10):
        ws.expect_pong(b"ping %d" % i)


def test_pings_interleaved_with_messages(ws):
    for i in range(20):
        ws.send_raw(build_frame(OP_TEXT, b"t%d" % i) + build_frame(OP_PING, b"p%d" % i)
                    + build_frame(OP_BINARY, b"b%d" % i))
        ws.expect_echo(OP_TEXT, b"t%d" % i)
        ws.expect_pong(b"p%d" % i)
        ws.expect_echo(OP_BINARY, b"b%d" % i)


def test_ping_split_across_segments(ws):
    ws.send_frame(OP_PING, b"in pieces", split=[1, 2, 3])
    ws.expect_pong(b"in pieces")
