"""The one raw RFC 6455 client of the black-box suites.

It does the opening handshake over a plain socket and then lets a test put any bytes on the
wire: frames with any FIN/RSV bits, opcode, length encoding (minimal or not), declared length
and mask (or none), sent in arbitrary segment splits with TCP_NODELAY. It decodes what the
server sends, records whether the server masked a frame (it must not: RFC 6455 §5.1), and
detects EOF.

Also here: `HttpConnection`, a tiny HTTP/1.1 client for the handshake and route tests.

Over TLS: pass `ssl_context`, or an address that carries one (`TlsAddress`, what a TLS server's
`Server.address` is), so that a suite written against addresses runs unchanged over wss://.
"""

from __future__ import annotations

import base64
import hashlib
import errno
import os
import selectors
import socket
import ssl
import struct
import time
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence, Union

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

RSV1, RSV2, RSV3 = 0x4, 0x2, 0x1  # bit values in the 3-bit `rsv` field

DEFAULT_TIMEOUT = 15.0  # generous: the ASan build is slow


def accept_key(key: Union[str, bytes]) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2)."""
    if isinstance(key, str):
        key = key.encode()
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def apply_mask(data: bytes, key: bytes) -> bytes:
    """XORs data with the 4-byte key (fast for MiB-sized payloads)."""
    n = len(data)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


def build_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0,
                mask: Union[bool, bytes] = True, length_form: Optional[int] = None,
                declared_length: Optional[int] = None) -> bytes:
    """Encodes one frame, well-formed or not.

    mask: True (random key), False (unmasked), or a 4-byte key.
    length_form: None (minimal), 7, 16 or 64: the length encoding to use, minimal or not.
    declared_length: the length to put in the header (default len(payload)).
    """
    if isinstance(payload, str):
        payload = payload.encode()
    length = len(payload) if declared_length is None else declared_length
    first = (0x80 if fin else 0) | ((rsv & 0x7) << 4) | (opcode & 0xF)
    if length_form is None:
        length_form = 7 if length <= 125 else 16 if length <= 0xFFFF else 64
    mask_bit = 0x80 if mask is not False else 0
    if length_form == 7:
        assert length <= 125
        header = bytes([first, mask_bit | length])
    elif length_form == 16:
        header = bytes([first, mask_bit | 126]) + struct.pack("!H", length)
    elif length_form == 64:
        header = bytes([first, mask_bit | 127]) + struct.pack("!Q", length)
    else:
        raise ValueError(length_form)
    if mask is False:
        return header + payload
    key = os.urandom(4) if mask is True else bytes(mask)
    assert len(key) == 4
    return header + key + apply_mask(payload, key)


def close_payload(code: Optional[int] = None, reason: Union[str, bytes] = b"") -> bytes:
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack("!H", code) + reason


@dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes
    length_form: int  # 7, 16 or 64: how the server encoded the length

    @property
    def close_code(self) -> Optional[int]:
        assert self.opcode == OP_CLOSE
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> bytes:
        return self.payload[2:]

    def minimal_length(self) -> bool:
        n = len(self.payload)
        return self.length_form == (7 if n <= 125 else 16 if n <= 0xFFFF else 64)

    def __repr__(self) -> str:
        shown = self.payload[:40] + (b"..." if len(self.payload) > 40 else b"")
        return (f"Frame(fin={int(self.fin)} rsv={self.rsv} opcode={self.opcode:#x} "
                f"masked={self.masked} len={len(self.payload)} payload={shown!r})")


class ConnectionClosed(Exception):
    """EOF (or reset) from the server while a frame or response was expected."""


class ProtocolError(AssertionError):
    """The server sent something RFC 6455 forbids (e.g. a masked frame)."""


class _Socket:
    """A TCP socket with a receive buffer, shared by the HTTP and WebSocket clients."""

    def __init__(self, host: str, port: int, timeout: float = DEFAULT_TIMEOUT,
                 sock: Optional[socket.socket] = None):
        self.host, self.port = host, port
        self.sock = sock or socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.buffer = bytearray()
        self.eof = False
        self.reset = False

    def _fill(self, timeout: Optional[float]) -> bool:
        """Reads once; False on EOF/reset."""
        if self.eof:
            return False
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(1 << 20)
        except ConnectionResetError:
            self.eof = self.reset = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    def read_exact(self, n: int, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buffer) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout(f"timed out waiting for {n} bytes (have {len(self.buffer)})")
            if not self._fill(remaining):
                raise ConnectionClosed(f"EOF after {len(self.buffer)} of {n} bytes "
                                       f"({'reset' if self.reset else 'FIN'})")
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def read_until(self, marker: bytes, timeout: float = DEFAULT_TIMEOUT, limit: int = 1 << 20) -> bytes:
        deadline = time.monotonic() + timeout
        while marker not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout(f"timed out waiting for {marker!r}; have {bytes(self.buffer[:200])!r}")
            if len(self.buffer) > limit:
                raise AssertionError("response too long")
            if not self._fill(remaining):
                raise ConnectionClosed(f"EOF before {marker!r}; have {bytes(self.buffer[:200])!r}")
        end = self.buffer.index(marker) + len(marker)
        data = bytes(self.buffer[:end])
        del self.buffer[:end]
        return data

    def send_raw(self, data: bytes, split: Union[None, int, Sequence[int]] = None) -> None:
        """Sends data; split: None (one send), an int (segments of that size), or a list of
        segment sizes (the rest goes in a last segment). Each segment is its own send() with
        TCP_NODELAY on, so it leaves as its own TCP segment."""
        if split is None:
            self.sock.sendall(data)
            return
        sizes: Iterable[int]
        if isinstance(split, int):
            sizes = [split] * ((len(data) + split - 1) // split)
        else:
            sizes = list(split) + [len(data) - sum(split)]
        offset = 0
        for size in sizes:
            if size <= 0:
                continue
            self.sock.sendall(data[offset:offset + size])
            offset += size
        assert offset == len(data)

    def wait_eof(self, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        """Reads until EOF; returns any bytes that came before it (raises on timeout)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout(f"server did not close the TCP connection within {timeout}s")
            self._fill(remaining)
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def shutdown_write(self) -> None:
        """TCP half-close: done sending, still reading. Over TLS as well: SSLSocket.shutdown would
        drop the TLS layer, so the TCP socket's own is called (the peer sees an EOF without
        close_notify, as a plain peer sees a FIN)."""
        socket.socket.shutdown(self.sock, socket.SHUT_WR)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


@dataclass
class HttpResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    raw_head: bytes = b""

    def header(self, name: str) -> Optional[str]:
        values = self.header_all(name)
        return ", ".join(values) if values else None

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def header_tokens(self, name: str) -> list[str]:
        return [t.strip().lower() for v in self.header_all(name) for t in v.split(",") if t.strip()]


class HttpConnection(_Socket):
    """HTTP/1.1 over one connection: send raw requests, read responses one after another."""

    @classmethod
    def open(cls, address: tuple[str, int], timeout: float = DEFAULT_TIMEOUT) -> "HttpConnection":
        """A connection to `address` (over TLS when it is a TlsAddress)."""
        return cls(*address, timeout=timeout, sock=open_socket(address, timeout))

    def request(self, method: str, path: str, headers: Sequence[tuple[str, str]] = (),
                body: bytes = b"", host: bool = True) -> None:
        lines = [f"{method} {path} HTTP/1.1"]
        if host:
            lines.append(f"Host: {self.host}:{self.port}")
        lines += [f"{k}: {v}" for k, v in headers]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def read_response(self, timeout: float = DEFAULT_TIMEOUT, read_body: bool = True) -> HttpResponse:
        head = self.read_until(b"\r\n\r\n", timeout=timeout)
        lines = head[:-4].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        assert version.startswith("HTTP/1."), f"not an HTTP response: {head[:200]!r}"
        code, _, reason = rest.partition(" ")
        response = HttpResponse(int(code), reason, raw_head=head)
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            assert colon, f"bad header line {line!r}"
            response.headers.append((name.strip(), value.strip()))
        if not read_body or response.status == 101:
            return response
        length = response.header("Content-Length")
        if length is not None:
            response.body = self.read_exact(int(length), timeout=timeout)
        elif (response.header("Transfer-Encoding") or "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.read_until(b"\r\n", timeout=timeout)[:-2].split(b";")[0], 16)
                body += self.read_exact(size + 2, timeout=timeout)[:-2]
                if size == 0:
                    break
            response.body = body
        elif 100 <= response.status < 200 or response.status in (204, 304):
            pass
        else:
            response.body = self.wait_eof(timeout=timeout)
        return response


class TlsAddress(tuple):
    """(host, port) of a TLS listener with the client context that trusts it: the helpers of this
    module that take an address speak TLS to it (a plain tuple: plain TCP)."""

    def __new__(cls, address: tuple[str, int], ssl_context: "ssl.SSLContext") -> "TlsAddress":
        made = super().__new__(cls, address)
        made.ssl_context = ssl_context
        return made


def open_socket(address: tuple[str, int], timeout: float = DEFAULT_TIMEOUT,
                source: Optional[str] = None,
                ssl_context: Optional["ssl.SSLContext"] = None) -> socket.socket:
    """A connected socket from the local address `source` (any of 127.0.0.0/8 on loopback, so a
    test can be many clients) or the default one; over TLS with `ssl_context`, or the one of a
    TlsAddress (server name: the address's host)."""
    ssl_context = ssl_context or getattr(address, "ssl_context", None)
    sock = socket.create_connection(address, timeout=timeout,
                                    source_address=(source, 0) if source else None)
    if ssl_context is not None:
        sock = ssl_context.wrap_socket(sock, server_hostname=address[0])
    return sock


def http_request(address: tuple[str, int], method: str, path: str,
                 headers: Sequence[tuple[str, str]] = (), body: bytes = b"",
                 timeout: float = DEFAULT_TIMEOUT,
                 ssl_context: Optional["ssl.SSLContext"] = None,
                 source: Optional[str] = None) -> HttpResponse:
    """One request on a fresh connection (closed afterwards), see open_socket."""
    sock = open_socket(address, timeout, source, ssl_context)
    conn = HttpConnection(*address, timeout=timeout, sock=sock)
    try:
        conn.request(method, path, headers, body)
        return conn.read_response(timeout=timeout)
    finally:
        conn.close()


def upgrade_headers(key: Optional[str] = None, extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    return [("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key or new_key()), ("Sec-WebSocket-Version", "13"), *extra]


class WsClient(HttpConnection):
    """A raw WebSocket client (client role: its frames are masked unless a test says not)."""

    def __init__(self, host: str, port: int, timeout: float = DEFAULT_TIMEOUT,
                 sock: Optional[socket.socket] = None):
        super().__init__(host, port, timeout, sock=sock)
        self.handshake_response: Optional[HttpResponse] = None

    @classmethod
    def connect(cls, address: tuple[str, int], path: str = "/ws/echo",
                headers: Sequence[tuple[str, str]] = (), timeout: float = DEFAULT_TIMEOUT,
                receive_buffer: Optional[int] = None, source: Optional[str] = None,
                ssl_context: Optional["ssl.SSLContext"] = None) -> "WsClient":
        """receive_buffer: SO_RCVBUF set before connecting (a small one makes a slow reader
        whose TCP window stays small); source and ssl_context: see open_socket."""
        if receive_buffer is not None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.settimeout(timeout)
            sock.connect(address)
        else:
            sock = open_socket(address, timeout, source, ssl_context)
        client = cls(*address, timeout=timeout, sock=sock)
        try:
            client.handshake(path, headers, timeout=timeout)
        except BaseException:
            client.close()
            raise
        return client

    def handshake(self, path: str = "/ws/echo", headers: Sequence[tuple[str, str]] = (),
                  timeout: float = DEFAULT_TIMEOUT) -> HttpResponse:
        key = new_key()
        self.request("GET", path, upgrade_headers(key, headers))
        response = self.read_response(timeout=timeout)
        self.handshake_response = response
        assert response.status == 101, f"handshake failed: {response.raw_head!r} {response.body!r}"
        assert response.header("Sec-WebSocket-Accept") == accept_key(key), response.raw_head
        return response

    # --- sending ---------------------------------------------------------------------------

    def send_frame(self, opcode: int, payload: Union[bytes, str] = b"", *, split=None, **kwargs) -> None:
        self.send_raw(build_frame(opcode, payload, **kwargs), split=split)

    def send_text(self, text: Union[str, bytes], **kwargs) -> None:
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text, **kwargs)

    def send_binary(self, data: bytes, **kwargs) -> None:
        self.send_frame(OP_BINARY, data, **kwargs)

    def send_close(self, code: Optional[int] = None, reason: Union[str, bytes] = b"", **kwargs) -> None:
        self.send_frame(OP_CLOSE, close_payload(code, reason), **kwargs)

    # --- receiving -------------------------------------------------------------------------

    def recv_frame(self, timeout: float = DEFAULT_TIMEOUT) -> Frame:
        """The next frame from the server; raises ConnectionClosed on EOF, ProtocolError on a
        masked server frame."""
        head = self.read_exact(2, timeout)
        fin = bool(head[0] & 0x80)
        rsv = (head[0] >> 4) & 0x7
        opcode = head[0] & 0xF
        masked = bool(head[1] & 0x80)
        length = head[1] & 0x7F
        form = 7
        if length == 126:
            length = struct.unpack("!H", self.read_exact(2, timeout))[0]
            form = 16
        elif length == 127:
            length = struct.unpack("!Q", self.read_exact(8, timeout))[0]
            form = 64
            if length >> 63:
                raise ProtocolError("server frame with the top bit of a 64-bit length set")
        key = self.read_exact(4, timeout) if masked else None
        payload = self.read_exact(length, timeout)
        if key:
            payload = apply_mask(payload, key)
        frame = Frame(fin, rsv, opcode, masked, payload, form)
        if masked:
            raise ProtocolError(f"server sent a masked frame (RFC 6455 §5.1): {frame!r}")
        return frame

    def recv_message(self, timeout: float = DEFAULT_TIMEOUT) -> Frame:
        """The next frame, which must be a data frame as the echo sends it: one unfragmented
        frame, RSV clear, minimal length encoding."""
        frame = self.recv_frame(timeout)
        assert frame.opcode in (OP_TEXT, OP_BINARY), f"expected a data frame, got {frame!r}"
        assert frame.fin, f"echo must be one unfragmented frame: {frame!r}"
        assert frame.rsv == 0, f"RSV bits set without an extension: {frame!r}"
        assert frame.minimal_length(), f"server used a non-minimal length encoding: {frame!r}"
        return frame

    def expect_echo(self, opcode: int, payload: bytes, timeout: float = DEFAULT_TIMEOUT) -> None:
        frame = self.recv_message(timeout)
        assert frame.opcode == opcode, f"expected opcode {opcode:#x}, got {frame!r}"
        assert len(frame.payload) == len(payload), f"length {len(frame.payload)} != {len(payload)}"
        assert frame.payload == payload, f"payload differs: {frame!r}"

    def expect_pong(self, payload: bytes, timeout: float = DEFAULT_TIMEOUT) -> None:
        frame = self.recv_frame(timeout)
        assert frame.opcode == OP_PONG, f"expected a pong, got {frame!r}"
        assert frame.fin and frame.rsv == 0, frame
        assert frame.payload == payload, f"pong payload {frame.payload!r} != ping payload {payload!r}"

    def expect_close(self, code: Union[None, int, Sequence[int]], timeout: float = DEFAULT_TIMEOUT,
                     eof: bool = True) -> Frame:
        """The next frame must be a close with `code` (None: empty payload or 1000; a list: any
        of them), with a UTF-8 reason; then (eof=True) the server must close TCP."""
        try:
            frame = self.recv_frame(timeout)
        except ConnectionClosed as error:
            raise AssertionError(f"expected a close frame with code {code}, got EOF ({error})") from None
        assert frame.opcode == OP_CLOSE, f"expected a close frame with code {code}, got {frame!r}"
        assert frame.fin and frame.rsv == 0, frame
        assert len(frame.payload) != 1 and len(frame.payload) <= 125, frame
        frame.close_reason.decode("utf-8")  # raises if the reason is not UTF-8
        if code is None:
            assert frame.close_code in (None, 1000), f"expected an empty close or 1000, got {frame.close_code}"
        elif isinstance(code, int):
            assert frame.close_code == code, f"expected close code {code}, got {frame.close_code} ({frame!r})"
        else:
            assert frame.close_code in code, f"expected a close code in {code}, got {frame.close_code}"
        if eof:
            self.expect_eof(timeout)
        return frame

    def expect_eof(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """The server must close TCP and send nothing more."""
        rest = self.wait_eof(timeout)
        assert rest == b"", f"unexpected bytes before EOF: {rest[:80]!r}"

    def expect_silence_then_echo(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Proves that nothing was queued before this point: sends a marker message and the
        very next frame must be its echo."""
        marker = os.urandom(8).hex().encode()
        self.send_text(marker)
        self.expect_echo(OP_TEXT, marker, timeout)

    def close_cleanly(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.send_close(1000)
        self.expect_close(1000, timeout)
        self.close()


def echo_check(address: tuple[str, int], path: str = "/ws/echo") -> None:
    """A quick end-to-end check that the server still serves a new client."""
    client = WsClient.connect(address, path)
    try:
        client.send_text("still alive?")
        client.expect_echo(OP_TEXT, b"still alive?")
        client.send_binary(b"\x00\xff")
        client.expect_echo(OP_BINARY, b"\x00\xff")
        client.close_cleanly()
    finally:
        client.close()


def connect_many(cls, address: tuple[str, int], count: int, path: str = "/ws/echo",
                 timeout: float = 60.0, headers: Sequence[tuple[str, str]] = ()) -> list:
    """Opens `count` WebSockets at once (see handshake_many). Returns `cls` instances (WsClient
    or a subclass) in blocking mode, as `cls.connect` would. Fails if any handshake fails.
    `headers`: extra request headers of every handshake (e.g. Sec-WebSocket-Extensions)."""
    results = handshake_many(cls, address, count, path, timeout, headers)
    try:
        for result in results:
            response = result.client.handshake_response
            assert response.status == 101, f"handshake failed: {response.raw_head!r}"
            assert response.header("Sec-WebSocket-Accept") == accept_key(result.key), response.raw_head
    except BaseException:
        for result in results:
            result.client.close()
        raise
    return [result.client for result in results]


@dataclass
class Handshake:
    client: "WsClient"  # its handshake_response holds the answer, whatever its status
    key: str            # the Sec-WebSocket-Key sent
    answered: float     # time.monotonic() when the response head arrived


def handshake_many(cls, address: tuple[str, int], count: int, path: str = "/ws/echo",
                   timeout: float = 60.0, headers: Sequence[tuple[str, str]] = ()) -> list[Handshake]:
    """Sends `count` upgrade requests at once: non-blocking connects, every request on the wire
    before any response is read, one selector. Returns each answer as it came (101 or a
    refusal), in arrival order, with a `cls` instance in blocking mode holding the connection."""
    host, port = address
    selector = selectors.DefaultSelector()
    keys: dict[socket.socket, str] = {}
    results: list[Handshake] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex(address)
            if code not in (0, errno.EINPROGRESS):
                sock.close()
                raise OSError(code, f"connect to {host}:{port}: {os.strerror(code)}")
            key = new_key()
            keys[sock] = key
            lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}"]
            lines += [f"{k}: {v}" for k, v in upgrade_headers(key, headers)]
            request = ("\r\n".join(lines) + "\r\n\r\n").encode()
            selector.register(sock, selectors.EVENT_WRITE, [request, bytearray()])
        deadline = time.monotonic() + timeout
        while len(results) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout(f"only {len(results)} of {count} handshakes done in {timeout}s")
            for event_key, events in selector.select(remaining):
                sock, state = event_key.fileobj, event_key.data
                if events & selectors.EVENT_WRITE:
                    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if error:
                        raise OSError(error, f"connect to {host}:{port}: {os.strerror(error)}")
                    sent = sock.send(state[0])
                    state[0] = state[0][sent:]
                    if not state[0]:
                        selector.modify(sock, selectors.EVENT_READ, state)
                    continue
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionClosed(f"EOF during the handshake; got {bytes(state[1][:200])!r}")
                state[1] += chunk
                if b"\r\n\r\n" not in state[1]:
                    continue
                answered = time.monotonic()
                selector.unregister(sock)
                client = cls(host, port, timeout=DEFAULT_TIMEOUT, sock=sock)
                results.append(Handshake(client, keys[sock], answered))
                client.buffer += state[1]  # read_response parses what is already buffered
                client.handshake_response = client.read_response()
    except BaseException:
        for event_key in list(selector.get_map().values()):
            event_key.fileobj.close()
        for result in results:
            result.client.close()
        raise
    finally:
        selector.close()
    return results


def _frame_index(stream: bytes, offset: int) -> str:
    """Which frame of a stream of unmasked frames holds byte `offset` (for failure messages)."""
    position = index = 0
    while position < len(stream):
        length = stream[position + 1] & 0x7F
        header = 2
        if length == 126:
            length, header = struct.unpack("!H", stream[position + 2:position + 4])[0], 4
        elif length == 127:
            length, header = struct.unpack("!Q", stream[position + 2:position + 10])[0], 10
        end = position + header + length
        if offset < end:
            return f"frame {index} (bytes {position}..{end}): {stream[position:min(end, position + 120)]!r}"
        position, index = end, index + 1
    return "past the end"


def expect_streams(clients: Sequence["WsClient"], expected: bytes, timeout: float) -> None:
    """Every client's next bytes must be exactly `expected` (e.g. a run of unmasked server
    frames). Reads all sockets at once in bulk, compares as the bytes arrive and never parses
    frames, so millions of frames over a thousand connections cost little. Bytes past
    `expected` stay in each client's buffer. Fails listing the clients that fell short."""
    total = len(expected)
    offsets = [0] * len(clients)
    failures: dict[int, str] = {}

    def take(i: int, data) -> int:
        start = offsets[i]
        n = min(len(data), total - start)
        if data[:n] != expected[start:start + n]:  # bytes slices: memcmp (memoryview compares slowly)
            at = next(j for j in range(n) if data[j] != expected[start + j])
            failures[i] = (f"differs at byte {start + at} of {total}, in expected "
                           f"{_frame_index(expected, start + at)}; got ...{bytes(data[max(0, at - 40):at + 100])!r}")
        offsets[i] = start + n
        return n

    selector = selectors.DefaultSelector()
    for i, client in enumerate(clients):
        if client.buffer:
            n = take(i, client.buffer)
            del client.buffer[:n]
        if offsets[i] < total and i not in failures:
            if client.eof:
                failures[i] = f"EOF after {offsets[i]} of {total} bytes"
            else:
                client.sock.setblocking(False)
                selector.register(client.sock, selectors.EVENT_READ, i)
    deadline = time.monotonic() + timeout
    try:
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for key, _ in selector.select(remaining):
                i = key.data
                client = clients[i]
                try:
                    chunk = client.sock.recv(1 << 18)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    chunk = b""
                    client.reset = True
                if not chunk:
                    client.eof = True
                    failures[i] = f"EOF ({'reset' if client.reset else 'FIN'}) after {offsets[i]} of {total} bytes"
                else:
                    n = take(i, chunk)
                    client.buffer += chunk[n:]
                    if offsets[i] < total and i not in failures:
                        continue
                selector.unregister(client.sock)
    finally:
        for key in list(selector.get_map().values()):
            selector.unregister(key.fileobj)
        selector.close()
        for client in clients:
            if not client.eof:
                client.sock.settimeout(DEFAULT_TIMEOUT)
    for i in range(len(clients)):
        if i not in failures and offsets[i] < total:
            failures[i] = f"timed out after {timeout}s with {offsets[i]} of {total} bytes"
    if failures:
        shown = "\n".join(f"  client {i}: {text}" for i, text in sorted(failures.items())[:10])
        raise AssertionError(f"{len(failures)} of {len(clients)} clients did not receive the expected "
                             f"{total} bytes:\n{shown}")
