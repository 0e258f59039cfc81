"""permessage-deflate (RFC 7692) on the raw client of wsclient.py, for the black-box suites.

Compression here is Python's stdlib zlib, so a test controls every byte it puts on the wire:
`compress()` gives a message's compressed payload with the 00 00 ff ff tail removed (§7.2.1),
`compressed_frame()` the masked client frame carrying it with RSV1, and `Inflater` inflates what
the server sends (appending the tail, §7.2.2). `metrics()` reads the server's /metrics as numbers.
"""

from __future__ import annotations

import re
import zlib
from typing import Optional

from .wsclient import RSV1, Frame, WsClient, build_frame, connect_many, http_request

EXTENSIONS = "Sec-WebSocket-Extensions"
TAIL = b"\x00\x00\xff\xff"


def compress(message: bytes, window_bits: int = 15, level: int = 6,
             compressor: Optional["zlib._Compress"] = None) -> bytes:
    """The compressed payload of one message: raw deflate, Z_SYNC_FLUSH, tail removed. Pass a
    `compressor` (from `compressor()`) to keep the context across messages (context takeover)."""
    compressor = compressor or zlib.compressobj(level, zlib.DEFLATED, -window_bits)
    data = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(TAIL), data[-8:]
    return data[:-4]


def compressor(window_bits: int = 15, level: int = 6) -> "zlib._Compress":
    return zlib.compressobj(level, zlib.DEFLATED, -window_bits)


def compressed_frame(opcode: int, message: bytes, **kwargs) -> bytes:
    """A masked client frame carrying compress(message) with RSV1 set (kwargs: fin, mask...)."""
    return build_frame(opcode, compress(message), rsv=RSV1, **kwargs)


class Inflater:
    """Inflates server messages. `takeover=False` (the server agreed server_no_context_takeover)
    starts every message with a fresh window, as the server must have compressed it."""

    def __init__(self, window_bits: int = 15, takeover: bool = True):
        self.window_bits = window_bits
        self.takeover = takeover
        self.stream = zlib.decompressobj(-window_bits)

    def inflate(self, payload: bytes) -> bytes:
        if not self.takeover:
            self.stream = zlib.decompressobj(-self.window_bits)
        data = self.stream.decompress(payload + TAIL)
        assert not self.stream.unconsumed_tail, "inflate left input unconsumed"
        return data


def offer_headers(offer: Optional[str]) -> list[tuple[str, str]]:
    return [] if offer is None else [(EXTENSIONS, offer)]


def connect(address: tuple[str, int], offer: Optional[str] = "permessage-deflate",
            path: str = "/ws/echo", cls=WsClient, **kwargs) -> WsClient:
    """A raw client whose handshake offers `offer` (None: no Sec-WebSocket-Extensions)."""
    return cls.connect(address, path, headers=offer_headers(offer), **kwargs)


def agreed(client: WsClient) -> Optional[str]:
    """The Sec-WebSocket-Extensions value of the client's 101 (None when absent)."""
    assert client.handshake_response is not None
    values = client.handshake_response.header_all(EXTENSIONS)
    assert len(values) <= 1, f"several {EXTENSIONS} headers: {values}"
    return values[0] if values else None


def recv_compressed(client: WsClient, inflater: Inflater, timeout: float = 15.0) -> tuple[Frame, bytes]:
    """The next data message, which must be one frame with RSV1 set; returns it and its inflated
    payload."""
    frame = client.recv_frame(timeout)
    assert frame.opcode in (0x1, 0x2) and frame.fin, f"expected one data frame, got {frame!r}"
    assert frame.rsv == RSV1, f"expected RSV1 (compressed) and no other RSV bit: {frame!r}"
    return frame, inflater.inflate(frame.payload)


def raw_frame(frame: Frame) -> bytes:
    """The bytes of an unmasked server frame as received (its own length encoding)."""
    return build_frame(frame.opcode, frame.payload, fin=frame.fin, rsv=frame.rsv, mask=False,
                       length_form=frame.length_form)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def metrics(address: tuple[str, int]) -> dict[str, float]:
    """Every sample of GET /metrics as {'name{labels}': value} (labels as the server wrote them)."""
    response = http_request(address, "GET", "/metrics", [("Connection", "close")])
    assert response.status == 200, response.raw_head
    samples = {}
    for line in response.body.decode().splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def compression_counters(address: tuple[str, int]) -> dict[str, float]:
    """The compression metrics of issue 7: compressed/uncompressed bytes in and out, runs."""
    samples = metrics(address)
    names = {
        "compressed_in": 'pylon_compressed_bytes_total{direction="in"}',
        "compressed_out": 'pylon_compressed_bytes_total{direction="out"}',
        "uncompressed_in": 'pylon_uncompressed_bytes_total{direction="in"}',
        "uncompressed_out": 'pylon_uncompressed_bytes_total{direction="out"}',
        "compressions": "pylon_compressions_total",
    }
    missing = [sample for sample in names.values() if sample not in samples]
    assert not missing, f"/metrics lacks {missing}"
    return {key: samples[sample] for key, sample in names.items()}


def compressible_json(index: int, size: int = 2048) -> bytes:
    """About `size` bytes of JSON that compress well (repeated keys, a few varying numbers)."""
    items = []
    i = 0
    while sum(len(item) for item in items) < size - 40:
        items.append(b'{"symbol":"SYM%d","price":%d.%02d,"volume":%d}' % (i % 17, 100 + index, i % 100, i * 7 + index))
        i += 1
    return b'{"seq":%d,"items":[' % index + b",".join(items) + b"]}"


def connect_many_with_offer(cls, address: tuple[str, int], count: int, offer: Optional[str],
                            path: str = "/ws", timeout: float = 60.0) -> list:
    """wsclient.connect_many with an extension offer in every handshake."""
    return connect_many(cls, address, count, path=path, timeout=timeout, headers=offer_headers(offer))
