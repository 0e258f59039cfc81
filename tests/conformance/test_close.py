"""RFC 6455 §5.5.1 and §7.4: the closing handshake, close codes and reasons."""

import pytest

from support.wsclient import (OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_TEXT, build_frame,
                              close_payload)

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("code", VALID_CODES)
def test_valid_code_is_echoed(ws, code):
    ws.send_close(code)
    ws.expect_close(code)


@pytest.mark.parametrize("code", [1000, 3000, 4999])
def test_valid_code_with_reason_is_echoed(ws, code):
    ws.send_close(code, "going away now")
    ws.expect_close(code)


def test_empty_close_gets_empty_or_1000(ws):
    ws.send_close()
    ws.expect_close(None)


@pytest.mark.parametrize("code", INVALID_CODES)
def test_invalid_code_is_1002(ws, code):
    ws.send_close(code)
    ws.expect_close(1002)


@pytest.mark.parametrize("code", [0, 1005, 5000])
def test_invalid_code_with_reason_is_1002(ws, code):
    ws.send_close(code, "bad code")
    ws.expect_close(1002)


def test_one_byte_close_payload_is_1002(ws):
    ws.send_frame(OP_CLOSE, b"\x03")
    ws.expect_close(1002)


REASONS = {
    "ascii-123": b"r" * 123,
    "utf8-123": ("\u20ac" * 41).encode(),  # 41 x 3 bytes
    "utf8-mixed": "Hello \u03ba\u1f79\u03c3\u03bc\u03b5 \U0001f600".encode(),
    "empty": b"",
}


@pytest.mark.parametrize("reason", REASONS.values(), ids=REASONS.keys())
def test_reasons_up_to_123_bytes(ws, reason):
    assert len(reason) <= 123
    ws.send_close(1000, reason)
    ws.expect_close(1000)


def test_reason_of_124_bytes_is_1002(ws):
    ws.send_close(1000, b"r" * 124)  # payload 126 > 125
    ws.expect_close(1002)


@pytest.mark.parametrize("reason", [b"\xff", b"bad \xed\xa0\x80 surrogate", b"\xce", b"\xc0\xaf"],
                         ids=["ff", "surrogate", "truncated", "overlong"])
def test_invalid_utf8_reason_is_1007(ws, reason):
    ws.send_close(1000, reason)
    ws.expect_close(1007)


def test_close_after_close_is_ignored(ws):
    ws.send_raw(build_frame(OP_CLOSE, close_payload(1000)) + build_frame(OP_CLOSE, close_payload(3000)))
    ws.expect_close(1000)  # exactly one close frame, then EOF


def test_close_after_close_sent_separately(ws):
    ws.send_close(1000)
    frame = ws.recv_frame()
    assert frame.opcode == OP_CLOSE and frame.close_code == 1000, frame
    try:
        ws.send_close(1001)
    except OSError:
        pass  # the server may already be gone
    ws.expect_eof()


@pytest.mark.parametrize("after", [build_frame(OP_TEXT, b"ignored"), build_frame(OP_PING, b"ignored"),
                                   build_frame(OP_BINARY, b"x" * 1000), b"\x00\x01garbage"],
                         ids=["text", "ping", "binary", "garbage"])
def test_data_after_close_is_ignored(ws, after):
    ws.send_raw(build_frame(OP_CLOSE, close_payload(1000)) + after)
    ws.expect_close(1000)


def test_messages_before_close_are_echoed(ws):
    ws.send_raw(build_frame(OP_TEXT, b"one") + build_frame(OP_BINARY, b"two") + build_frame(OP_PING, b"3")
                + build_frame(OP_CLOSE, close_payload(4000, "done")))
    ws.expect_echo(OP_TEXT, b"one")
    ws.expect_echo(OP_BINARY, b"two")
    ws.expect_pong(b"3")
    ws.expect_close(4000)


def test_close_in_the_middle_of_a_fragmented_message(ws):
    # Autobahn 7.1.5: fragment 1, close, fragment 2: a clean close, no echo.
    ws.send_raw(build_frame(OP_TEXT, b"frag1", fin=False) + build_frame(OP_CLOSE, close_payload(1000))
                + build_frame(OP_CONTINUATION, b"frag2"))
    ws.expect_close(1000)


def test_close_split_across_segments(ws):
    ws.send_frame(OP_CLOSE, close_payload(3999, "split"), split=1)
    ws.expect_close(3999)


@pytest.mark.parametrize("form", [16, 64])
def test_close_with_non_minimal_length_is_1002(ws, form):
    ws.send_frame(OP_CLOSE, close_payload(1000), length_form=form)
    ws.expect_close(1002)


def test_abrupt_tcp_close_without_close_frame(server, ws):
    # No close frame, and an unfinished frame in flight: the server must just clean up.
    ws.send_raw(build_frame(OP_TEXT, b"x" * 1000)[:50])
    ws.close()


def test_abrupt_reset(ws):
    import socket
    import struct
    ws.send_text("about to reset")
    ws.expect_echo(OP_TEXT, b"about to reset")
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.close()  # RST


def test_close_then_half_close(ws):
    ws.send_close(1000)
    ws.shutdown_write()  # the client is done sending; it still reads
    ws.expect_close(1000)


def test_half_close_without_close_frame(ws):
    ws.send_text("last words")
    ws.shutdown_write()
    ws.expect_echo(OP_TEXT, b"last words")
    # Then the server may send a close (1006 is never sent on the wire) or just close TCP.
    try:
        frame = ws.recv_frame()
        assert frame.opcode == OP_CLOSE and frame.close_code not in (1005, 1006), frame
        ws.expect_eof()
    except Exception as error:  # EOF straight away is fine
        from support.wsclient import ConnectionClosed
        if not isinstance(error, ConnectionClosed):
            raise
