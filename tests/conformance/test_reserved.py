"""RFC 6455 §5.2: RSV bits without a negotiated extension, and reserved opcodes, are 1002."""

import pytest

from support.wsclient import (OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT,
                              build_frame, close_payload)

RSV_VALUES = {"rsv1": 4, "rsv2": 2, "rsv3": 1, "rsv1+2": 6, "rsv1+3": 5, "rsv2+3": 3, "all": 7}
OPCODES = {"text": OP_TEXT, "binary": OP_BINARY, "ping": OP_PING, "pong": OP_PONG, "close": OP_CLOSE}


def payload_for(opcode):
    return close_payload(1000) if opcode == OP_CLOSE else b"reserved"


@pytest.mark.parametrize("rsv", RSV_VALUES.values(), ids=RSV_VALUES.keys())
@pytest.mark.parametrize("opcode", OPCODES.values(), ids=OPCODES.keys())
def test_rsv_bits_are_1002(ws, opcode, rsv):
    ws.send_frame(opcode, payload_for(opcode), rsv=rsv)
    ws.expect_close(1002)


@pytest.mark.parametrize("rsv", [4, 2, 1], ids=["rsv1", "rsv2", "rsv3"])
def test_rsv_on_continuation_is_1002(ws, rsv):
    ws.send_raw(build_frame(OP_TEXT, b"frag", fin=False) + build_frame(OP_CONTINUATION, b"ment", rsv=rsv))
    ws.expect_close(1002)


@pytest.mark.parametrize("rsv", [4, 2, 1], ids=["rsv1", "rsv2", "rsv3"])
def test_rsv_after_valid_message_then_ping(ws, rsv):
    # Autobahn 3.x: the valid message is echoed, the bad frame closes, the ping is never answered.
    ws.send_raw(build_frame(OP_TEXT, b"Hello") + build_frame(OP_TEXT, b"Hello", rsv=rsv)
                + build_frame(OP_PING, b""))
    ws.expect_echo(OP_TEXT, b"Hello")
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF], ids=lambda o: f"op{o:X}")
@pytest.mark.parametrize("payload", [b"", b"reserved opcode"], ids=["empty", "payload"])
def test_reserved_opcode_is_1002(ws, opcode, payload):
    ws.send_frame(opcode, payload)
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode", [3, 7, 0xB, 0xF], ids=lambda o: f"op{o:X}")
def test_reserved_opcode_after_valid_message(ws, opcode):
    ws.send_raw(build_frame(OP_TEXT, b"Hello") + build_frame(opcode, b"") + build_frame(OP_PING, b""))
    ws.expect_echo(OP_TEXT, b"Hello")
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode", [3, 0xB], ids=lambda o: f"op{o:X}")
def test_reserved_opcode_inside_fragmented_message(ws, opcode):
    ws.send_raw(build_frame(OP_TEXT, b"frag", fin=False) + build_frame(opcode, b"x"))
    ws.expect_close(1002)
