"""RFC 6455 §4.2 opening handshake and the plain HTTP routes of `pylon serve`."""

import base64

import pytest

from support.wsclient import (OP_TEXT, HttpConnection, WsClient, accept_key, build_frame, echo_check,
                              http_request, new_key, upgrade_headers)


@pytest.fixture
def checked(server):
    """Like `ws`: after the test the server must still serve a WebSocket client."""
    yield server.address
    echo_check(server.address)


def upgrade(address, headers, method="GET", path="/ws/echo"):
    return http_request(address, method, path, headers)


def replace(headers, name, value):
    """Headers with `name` replaced by value (None: removed)."""
    out = [(k, v) for k, v in headers if k.lower() != name.lower()]
    if value is not None:
        out.append((name, value))
    return out


# --- successful handshakes -----------------------------------------------------------------

def test_rfc_example_key(checked):
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    conn = HttpConnection.open(checked)
    try:
        conn.request("GET", "/ws/echo", upgrade_headers("dGhlIHNhbXBsZSBub25jZQ=="))
        response = conn.read_response()
        assert response.status == 101, response.raw_head
        assert response.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        assert "websocket" in response.header_tokens("Upgrade")
        assert "upgrade" in response.header_tokens("Connection")
        assert response.header("Sec-WebSocket-Extensions") is None
        assert conn.buffer == b"", "nothing may follow the 101 before the client speaks"
        # The connection is now a WebSocket.
        conn.send_raw(build_frame(OP_TEXT, b"after handshake"))
        assert conn.read_exact(17) == b"\x81\x0fafter handshake"
    finally:
        conn.close()


VARIANTS = {
    "upgrade-mixed-case": [("Upgrade", "WebSocket"), ("Connection", "Upgrade")],
    "upgrade-upper": [("Upgrade", "WEBSOCKET"), ("Connection", "UPGRADE")],
    "connection-lower": [("Upgrade", "websocket"), ("Connection", "upgrade")],
    "connection-list": [("Upgrade", "websocket"), ("Connection", "keep-alive, Upgrade")],
    "connection-list-no-space": [("Upgrade", "websocket"), ("Connection", "Keep-Alive,upgrade")],
    "connection-two-headers": [("Upgrade", "websocket"), ("Connection", "keep-alive"), ("Connection", "Upgrade")],
    "upgrade-list": [("Upgrade", "foo/2, websocket"), ("Connection", "Upgrade")],
}


@pytest.mark.parametrize("tokens", VARIANTS.values(), ids=VARIANTS.keys())
def test_upgrade_and_connection_tokens(checked, tokens):
    key = new_key()
    headers = tokens + [("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]
    response = upgrade(checked, headers)
    assert response.status == 101, response.raw_head
    assert response.header("Sec-WebSocket-Accept") == accept_key(key)


def test_lowercase_header_names(checked):
    key = new_key()
    response = upgrade(checked, [("upgrade", "websocket"), ("connection", "upgrade"),
                                 ("sec-websocket-key", key), ("sec-websocket-version", "13")])
    assert response.status == 101, response.raw_head
    assert response.header("Sec-WebSocket-Accept") == accept_key(key)


def test_optional_whitespace_around_header_values(checked):
    key = new_key()
    conn = HttpConnection.open(checked)
    try:
        conn.send_raw(("GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade:websocket\r\nConnection:  Upgrade  \r\n"
                       f"Sec-WebSocket-Key: \t {key}   \r\nSec-WebSocket-Version: 13 \r\n\r\n").encode())
        response = conn.read_response()
        assert response.status == 101, response.raw_head
        assert response.header("Sec-WebSocket-Accept") == accept_key(key)
    finally:
        conn.close()


def test_query_string_does_not_change_the_route(checked):
    key = new_key()
    response = upgrade(checked, upgrade_headers(key), path="/ws/echo?token=abc&x=1")
    assert response.status == 101, response.raw_head
    assert http_request(checked, "GET", "/healthz?probe=1").status == 200


def test_unsupported_subprotocol_is_not_selected(checked):
    # RFC 6455 §4.2.2: the server selects one of the offered subprotocols or none; /ws/echo has none.
    response = upgrade(checked, upgrade_headers(extra=[("Sec-WebSocket-Protocol", "chat, superchat")]))
    assert response.status == 101, response.raw_head
    assert response.header("Sec-WebSocket-Protocol") is None, response.raw_head


def test_upgrade_after_a_keep_alive_request(checked):
    conn = HttpConnection.open(checked)
    try:
        conn.request("GET", "/healthz")
        assert conn.read_response().status == 200
        key = new_key()
        conn.request("GET", "/ws/echo", upgrade_headers(key))
        response = conn.read_response()
        assert response.status == 101 and response.header("Sec-WebSocket-Accept") == accept_key(key)
        conn.send_raw(build_frame(OP_TEXT, b"upgraded late"))
        assert conn.read_exact(15) == b"\x81\x0dupgraded late"
    finally:
        conn.close()


@pytest.mark.parametrize("offer,agreed", [
    ("permessage-deflate; client_max_window_bits",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=15"),
    ("permessage-deflate", "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
    ("x-webkit-deflate-frame", None),  # an extension we do not know is simply not agreed
])
def test_permessage_deflate_is_agreed_by_default(checked, offer, agreed):
    response = upgrade(checked, upgrade_headers(extra=[("Sec-WebSocket-Extensions", offer)]))
    assert response.status == 101, response.raw_head
    assert response.header("Sec-WebSocket-Extensions") == agreed, response.raw_head


def test_no_extension_is_negotiated_with_compression_off(start_server):
    with start_server("--compression", "off") as server:
        response = upgrade(server.address, upgrade_headers(extra=[("Sec-WebSocket-Extensions", "permessage-deflate")]))
        assert response.status == 101, response.raw_head
        assert response.header("Sec-WebSocket-Extensions") is None, response.raw_head


def test_echo_after_deflate_offer_is_uncompressed(server):
    client = WsClient.connect(server.address, headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    try:
        client.send_text("plain")
        client.expect_echo(OP_TEXT, b"plain")  # RSV1 must be clear
        client.close_cleanly()
    finally:
        client.close()


# --- refused handshakes ----------------------------------------------------------------------

BAD_KEYS = {
    "missing": None,
    "empty": "",
    "short": "abc",
    "15-bytes": base64.b64encode(b"x" * 15).decode(),
    "17-bytes": base64.b64encode(b"x" * 17).decode(),
    "not-base64": "!!!!!!!!!!!!!!!!!!!!!A==",
    "no-padding": base64.b64encode(b"y" * 16).decode().rstrip("="),
}


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_bad_key_is_400(checked, key):
    response = upgrade(checked, replace(upgrade_headers(), "Sec-WebSocket-Key", key))
    assert response.status == 400, response.raw_head


@pytest.mark.parametrize("version", ["8", "12", "14", "0", "13x"])
def test_other_version_is_426(checked, version):
    response = upgrade(checked, replace(upgrade_headers(), "Sec-WebSocket-Version", version))
    assert response.status == 426, response.raw_head
    assert "13" in response.header_tokens("Sec-WebSocket-Version"), response.raw_head


def test_missing_version_is_refused(checked):
    response = upgrade(checked, replace(upgrade_headers(), "Sec-WebSocket-Version", None))
    assert response.status in (400, 426), response.raw_head


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_non_get_upgrade_is_405(checked, method):
    response = upgrade(checked, upgrade_headers(), method=method)
    assert response.status == 405, response.raw_head


def test_plain_get_on_websocket_endpoint_is_426(checked):
    response = http_request(checked, "GET", "/ws/echo")
    assert response.status == 426, response.raw_head


def test_upgrade_without_connection_token_is_refused(checked):
    response = upgrade(checked, replace(upgrade_headers(), "Connection", "keep-alive"))
    assert response.status in (400, 426), response.raw_head


def test_upgrade_to_something_else_is_refused(checked):
    response = upgrade(checked, replace(upgrade_headers(), "Upgrade", "h2c"))
    assert response.status in (400, 426), response.raw_head


def test_upgrade_on_unknown_path_is_404(checked):
    response = upgrade(checked, upgrade_headers(), path="/ws/nope")
    assert response.status == 404, response.raw_head


def test_root_path_upgrades_to_echo_and_serves_the_page_otherwise(checked):
    """/ is the dashboard for a browser and the echo endpoint for a WebSocket client (tools
    such as Autobahn's fuzzingclient default to the root URL)."""
    echo_check(checked, path="/")
    page = http_request(checked, "GET", "/")
    assert page.status == 200 and page.body.lower().startswith(b"<!doctype html>"), page.raw_head
    # An Upgrade that is not websocket (h2c) is a plain request: the page, not a failed handshake.
    other = http_request(checked, "GET", "/", [("Upgrade", "h2c"), ("Connection", "Upgrade")])
    assert other.status == 200 and other.body.lower().startswith(b"<!doctype html>"), other.raw_head


# --- Origin allow-list -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def origin_server(start_server):
    with start_server("--allowed-origins", "https://good.example") as running:
        yield running


@pytest.mark.parametrize("origin,status", [("https://good.example", 101), (None, 101),
                                           ("https://evil.example", 403), ("http://good.example", 403),
                                           ("https://good.example.evil", 403), ("null", 403)],
                         ids=["allowed", "no-origin", "other", "other-scheme", "suffix", "null"])
def test_allowed_origins(origin_server, origin, status):
    extra = [("Origin", origin)] if origin is not None else []
    response = upgrade(origin_server.address, upgrade_headers(extra=extra))
    assert response.status == status, response.raw_head
    echo_check(origin_server.address)


# --- plain HTTP routes ---------------------------------------------------------------------------

def test_healthz(checked):
    response = http_request(checked, "GET", "/healthz")
    assert (response.status, response.body.strip()) == (200, b"ok"), response.raw_head


def test_readyz(checked):
    response = http_request(checked, "GET", "/readyz")
    assert (response.status, response.body.strip()) == (200, b"ready"), response.raw_head


def test_unknown_path_is_404(checked):
    assert http_request(checked, "GET", "/no/such/path").status == 404


def test_post_healthz_is_405(checked):
    assert http_request(checked, "POST", "/healthz", body=b"x").status == 405


def test_keep_alive_two_requests_on_one_connection(checked):
    conn = HttpConnection.open(checked)
    try:
        conn.request("GET", "/healthz")
        first = conn.read_response()
        conn.request("GET", "/readyz")
        second = conn.read_response()
        assert (first.status, first.body.strip()) == (200, b"ok")
        assert (second.status, second.body.strip()) == (200, b"ready")
    finally:
        conn.close()


def test_pipelined_requests(checked):
    conn = HttpConnection.open(checked)
    try:
        conn.send_raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.read_response().body.strip() == b"ok"
        assert conn.read_response().body.strip() == b"ready"
    finally:
        conn.close()


@pytest.mark.parametrize("raw", [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"\x00\x01\x02\x03 / HTTP/1.1\r\n\r\n",
                                 b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n",
                                 b"GET /healthz HTTP/9.9.9\r\nHost: x\r\n\r\n"],
                         ids=["garbage", "no-target", "binary-method", "header-without-colon", "bad-version"])
def test_malformed_request_is_400(checked, raw):
    conn = HttpConnection.open(checked)
    try:
        conn.send_raw(raw)
        response = conn.read_response()
        assert response.status == 400, response.raw_head
    finally:
        conn.close()


def test_header_section_too_large_is_431(checked):
    conn = HttpConnection.open(checked)
    try:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-Filler-%d: %s\r\n" % (i, b"f" * 200)
                                                                 for i in range(600)) + b"\r\n"
        try:
            conn.send_raw(head)
        except OSError:
            pass  # the server may answer and close before reading everything
        response = conn.read_response()
        assert response.status == 431, response.raw_head
    finally:
        conn.close()


def test_incomplete_handshake_then_close_does_not_hurt(checked):
    conn = HttpConnection.open(checked)
    conn.send_raw(b"GET /ws/echo HTTP/1.1\r\nUpgrade: websocket\r\n")
    conn.close()
