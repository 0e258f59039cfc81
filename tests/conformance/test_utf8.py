"""RFC 6455 §8.1: text messages must be valid UTF-8 (RFC 3629); invalid -> 1007, fail fast."""

import pytest

from support.wsclient import OP_CONTINUATION, OP_TEXT, build_frame

VALID = {
    "ascii": b"Hello-UTF-8!!",
    "greek-kosme": "\u03ba\u1f79\u03c3\u03bc\u03b5".encode(),
    "mixed": "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!".encode(),
    "first-2-byte": "\u0080".encode(),
    "first-3-byte": "\u0800".encode(),
    "first-4-byte": "\U00010000".encode(),
    "last-1-byte": b"\x7f",
    "last-2-byte": "\u07ff".encode(),
    "last-3-byte": "\uffff".encode(),
    "last-4-byte": "\U0010ffff".encode(),
    "before-surrogates": "\ud7ff".encode(),
    "after-surrogates": "\ue000".encode(),
    "bom": "\ufeff".encode(),
    "noncharacter-fffe": "\ufffe".encode(),
    "noncharacter-10fffe": "\U0010fffe".encode(),
    "replacement-char": "\ufffd".encode(),
    "nul": b"\x00",
    "emoji": "\U0001f600 \U0001f680 \U0001d11e".encode(),
    "cjk": "\u4e2d\u6587\u6e2c\u8a66".encode(),
}

INVALID = {
    # unexpected continuation bytes
    "lone-80": b"\x80",
    "lone-bf": b"\xbf",
    "continuations-80-bf": b"\x80\xbf\x80\xbf",
    "all-continuations": bytes(range(0x80, 0xc0)),
    # start bytes followed by a space instead of a continuation
    "c0-space": b"\xc0\x20",
    "e0-space": b"\xe0\x20",
    "f0-space": b"\xf0\x20",
    "df-space": b"\xdf\x20",
    "ef-space": b"\xef\x20",
    # sequences with the last continuation byte missing (in the middle of text)
    "missing-last-2": b"\xc2" + b"abc",
    "missing-last-3": b"\xe2\x82" + b"abc",
    "missing-last-4": b"\xf0\x9f\x98" + b"abc",
    # truncated at the end of the message
    "truncated-2": b"\xce",
    "truncated-3": b"\xe2\x82",
    "truncated-4": b"\xf0\x9f\x98",
    # impossible bytes
    "fe": b"\xfe",
    "ff": b"\xff",
    "fe-fe-ff-ff": b"\xfe\xfe\xff\xff",
    # overlong encodings
    "overlong-slash-2": b"\xc0\xaf",
    "overlong-slash-3": b"\xe0\x80\xaf",
    "overlong-slash-4": b"\xf0\x80\x80\xaf",
    "overlong-slash-5": b"\xf8\x80\x80\x80\xaf",
    "overlong-slash-6": b"\xfc\x80\x80\x80\x80\xaf",
    "overlong-max-2": b"\xc1\xbf",
    "overlong-max-3": b"\xe0\x9f\xbf",
    "overlong-max-4": b"\xf0\x8f\xbf\xbf",
    "overlong-nul-2": b"\xc0\x80",
    "overlong-nul-3": b"\xe0\x80\x80",
    # UTF-16 surrogates
    "surrogate-d800": b"\xed\xa0\x80",
    "surrogate-dbff": b"\xed\xad\xbf",
    "surrogate-dc00": b"\xed\xb0\x80",
    "surrogate-dfff": b"\xed\xbf\xbf",
    "surrogate-pair": b"\xed\xa0\x80\xed\xb0\x80",
    # beyond U+10FFFF and 5/6-byte forms
    "above-10ffff": b"\xf4\x90\x80\x80",
    "f5": b"\xf5\x80\x80\x80",
    "f7-max": b"\xf7\xbf\xbf\xbf",
    "5-byte": b"\xf8\x88\x80\x80\x80",
    "6-byte": b"\xfc\x84\x80\x80\x80\x80",
    # valid text then garbage (Autobahn 6.3)
    "kosme-then-surrogate": "\u03ba\u1f79\u03c3\u03bc\u03b5".encode() + b"\xed\xa0\x80" + b"edited",
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid_utf8_is_echoed(ws, text):
    ws.send_text(text)
    ws.expect_echo(OP_TEXT, text)


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid_utf8_one_byte_per_fragment(ws, text):
    ws.send_raw(b"".join(build_frame(OP_TEXT if i == 0 else OP_CONTINUATION, text[i:i + 1], fin=i == len(text) - 1)
                         for i in range(len(text))))
    ws.expect_echo(OP_TEXT, text)


@pytest.mark.parametrize("bad", INVALID.values(), ids=INVALID.keys())
def test_invalid_utf8_is_1007(ws, bad):
    ws.send_text(bad)
    ws.expect_close(1007)


@pytest.mark.parametrize("bad", INVALID.values(), ids=INVALID.keys())
def test_invalid_utf8_embedded_is_1007(ws, bad):
    ws.send_text(b"valid prefix " + bad + b" valid suffix")
    ws.expect_close(1007)


@pytest.mark.parametrize("bad", INVALID.values(), ids=INVALID.keys())
def test_invalid_utf8_one_byte_per_fragment_is_1007(ws, bad):
    text = b"ok " + bad
    ws.send_raw(b"".join(build_frame(OP_TEXT if i == 0 else OP_CONTINUATION, text[i:i + 1], fin=i == len(text) - 1)
                         for i in range(len(text))))
    ws.expect_close(1007)


# A string with 1-, 2-, 3- and 4-byte characters; split into two fragments at every position.
MULTI = "a\u00b5\u20ac\U0001f600z\u03ba\u1f79".encode()


@pytest.mark.parametrize("cut", range(0, len(MULTI) + 1))
def test_valid_text_split_at_every_byte_position(ws, cut):
    ws.send_raw(build_frame(OP_TEXT, MULTI[:cut], fin=False) + build_frame(OP_CONTINUATION, MULTI[cut:]))
    ws.expect_echo(OP_TEXT, MULTI)


@pytest.mark.parametrize("bad,cut", [(b"\xed\xa0\x80", 1), (b"\xed\xa0\x80", 2), (b"\xf4\x90\x80\x80", 1),
                                     (b"\xf4\x90\x80\x80", 3), (b"\xe0\x80\xaf", 1), (b"\xce", 1)],
                         ids=["surrogate-1", "surrogate-2", "above-max-1", "above-max-3", "overlong-1",
                              "truncated-at-end"])
def test_invalid_split_across_fragments_is_1007(ws, bad, cut):
    text = b"abc" + bad
    cut += 3
    ws.send_raw(build_frame(OP_TEXT, text[:cut], fin=False) + build_frame(OP_CONTINUATION, text[cut:]))
    ws.expect_close(1007)


def test_truncated_sequence_at_end_of_fragmented_message_is_1007(ws):
    ws.send_raw(build_frame(OP_TEXT, b"abc\xe2\x82", fin=False) + build_frame(OP_CONTINUATION, b""))
    ws.expect_close(1007)


def test_binary_messages_are_not_validated(ws):
    from support.wsclient import OP_BINARY
    ws.send_binary(b"\xff\xfe\xed\xa0\x80\xc0\xaf")
    ws.expect_echo(OP_BINARY, b"\xff\xfe\xed\xa0\x80\xc0\xaf")


# --- fail fast: the close comes as soon as the bad byte arrives -------------------------------

FAIL_FAST = {
    "ff": b"ab\xff",
    "surrogate": b"ab\xed\xa0",
    "overlong": b"ab\xc0",
    "above-max": b"ab\xf4\x90",
    "lone-continuation": b"ab\x80",
}


@pytest.mark.parametrize("start", FAIL_FAST.values(), ids=FAIL_FAST.keys())
def test_fail_fast_in_unfinished_frame(ws, start):
    # The header announces 100 bytes; only the first few (with the bad byte) are sent.
    payload = start + b"x" * (100 - len(start))
    frame = build_frame(OP_TEXT, payload)
    ws.send_raw(frame[:6 + len(start)])
    ws.expect_close(1007)


@pytest.mark.parametrize("start", FAIL_FAST.values(), ids=FAIL_FAST.keys())
def test_fail_fast_in_unfinished_message(ws, start):
    # First fragment complete and bad; the message never ends.
    ws.send_raw(build_frame(OP_TEXT, b"fine so far ", fin=False) + build_frame(OP_CONTINUATION, start, fin=False))
    ws.expect_close(1007)


def test_fail_fast_in_unfinished_continuation_frame(ws):
    payload = b"ok\xf5" + b"y" * 997
    frame = build_frame(OP_CONTINUATION, payload, fin=True)
    ws.send_raw(build_frame(OP_TEXT, b"start ", fin=False) + frame[:8 + 3])
    ws.expect_close(1007)


# --- block boundaries: vectorised validators work in 16/32/64-byte blocks ----------------------

def text_with(offset, sequence, total):
    """ASCII text of `total` bytes with `sequence` placed at byte `offset`."""
    return b"a" * offset + sequence + b"b" * (total - offset - len(sequence))


BOUNDARY_OFFSETS = [13, 14, 15, 29, 30, 31, 61, 62, 63, 64, 127, 4093, 65533]


@pytest.mark.parametrize("offset", BOUNDARY_OFFSETS)
def test_valid_4_byte_char_across_block_boundaries(ws, offset):
    text = text_with(offset, "\U0001f600".encode(), 70000)
    ws.send_text(text)
    ws.expect_echo(OP_TEXT, text)


@pytest.mark.parametrize("offset", BOUNDARY_OFFSETS)
@pytest.mark.parametrize("bad", [b"\xed\xa0\x80", b"\xf0\x9f\x98", b"\xc0\xaf", b"\xff"],
                         ids=["surrogate", "truncated-4", "overlong", "ff"])
def test_invalid_sequence_across_block_boundaries_is_1007(ws, offset, bad):
    ws.send_text(text_with(offset, bad, 70000))
    ws.expect_close(1007)


@pytest.mark.parametrize("fragment", [15, 16, 17, 63, 64, 65])
def test_multibyte_text_in_fragments_of_block_sizes(ws, fragment):
    text = ("\u20ac\U0001f600\u00b5x" * 200).encode()
    parts = [text[i:i + fragment] for i in range(0, len(text), fragment)]
    ws.send_raw(b"".join(build_frame(OP_TEXT if i == 0 else OP_CONTINUATION, part, fin=i == len(parts) - 1)
                         for i, part in enumerate(parts)))
    ws.expect_echo(OP_TEXT, text)


def test_invalid_byte_at_the_end_of_a_large_message_is_1007(ws):
    ws.send_text(b"z" * ((1 << 20) - 1) + b"\xff")
    ws.expect_close(1007)


def test_valid_char_split_around_a_ping(ws):
    from support.wsclient import OP_PING
    euro = "\u20ac".encode()
    ws.send_raw(build_frame(OP_TEXT, b"price " + euro[:1], fin=False) + build_frame(OP_PING, b"mid")
                + build_frame(OP_CONTINUATION, euro[1:2], fin=False) + build_frame(OP_PING, b"mid2")
                + build_frame(OP_CONTINUATION, euro[2:] + b"42"))
    ws.expect_pong(b"mid")
    ws.expect_pong(b"mid2")
    ws.expect_echo(OP_TEXT, b"price " + euro + b"42")
