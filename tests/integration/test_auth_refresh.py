"""A token that expires on a live connection (docs/protocol.md "Refreshing a token"): the server
asks for a new one with a `refresh` message, closes with 4001 when none arrives within
auth_refresh_grace, and a refreshed token changes what the connection may do from then on.
Tokens are minted by PyJWT; lifetimes are a few seconds and every wait is a poll."""

import time

import jwt
import pytest

from support.deflate import metrics
from support.pubsub import PubSubClient, request_text
from support.server import start_server

SECRET = "an HMAC secret of at least thirty-two bytes, for refresh"
GRACE = 2
SLACK = 15.0


def token(lifetime, subscribe=("chat:*",), publish=(), sub="user-1"):
    now = int(time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + lifetime,
                       "pylon": {"subscribe": list(subscribe), "publish": list(publish)}},
                      SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("refresh")
    (directory / "secret").write_text(SECRET)
    config = directory / "pylon.toml"
    # No leeway, so an expired token is refused at once; namespace "open" lets anyone in.
    config.write_text(f'auth_hmac_secret_file = "{directory / "secret"}"\n'
                      f"auth_leeway = 0\nauth_refresh_grace = {GRACE}\n"
                      '[namespaces.open]\nsubscribe = "anyone"\n')
    with start_server("--config", str(config), "--threads", "2") as running:
        yield running


def connect(server, lifetime, **grants):
    return PubSubClient.connect(server.address, "/ws?token=" + token(lifetime, **grants))


def refresh(client, new_token, id):
    client.send_text(request_text("refresh", token=new_token, id=id))


def expect_refresh_request(client, timeout=SLACK):
    value, raw = client.recv_json(timeout)
    assert value == {"type": "refresh", "reason": "token_expired", "grace": GRACE}, raw
    return time.monotonic()


def test_an_expired_token_without_refresh_is_closed_with_4001(server):
    client = connect(server, lifetime=2)
    client.subscribe(["chat:a"], id=1)
    client.expect_ack(1)
    asked = expect_refresh_request(client)
    # The grace runs: the connection is still served meanwhile.
    client.sync()
    client.expect_close(4001, timeout=GRACE + SLACK)
    assert time.monotonic() - asked >= GRACE - 1.1  # the timer's resolution is one second


def test_a_refresh_keeps_the_connection_and_its_subscriptions(server):
    client = connect(server, lifetime=2)
    client.subscribe(["chat:b"], id=1)
    client.expect_ack(1)
    expect_refresh_request(client)
    refresh(client, token(600), id="r1")
    client.expect_ack("r1")
    publisher = connect(server, lifetime=600, publish=["chat:*"])
    time.sleep(GRACE + 1.5)  # past the grace: a refreshed connection must not be closed
    publisher.publish("chat:b", '"still here"', id=2)
    publisher.expect_ack(2)
    client.expect_message("chat:b", '"still here"')
    client.sync()


def test_a_refresh_before_expiry_is_accepted_and_moves_the_expiry(server):
    client = connect(server, lifetime=3)
    refresh(client, token(600), id="early")
    client.expect_ack("early")
    time.sleep(4.5)  # the first token's exp has passed: no refresh request may come
    client.sync()


def test_a_refresh_that_narrows_permissions_ends_subscriptions_it_no_longer_grants(server):
    client = connect(server, lifetime=600, subscribe=["chat:*"], publish=["chat:x"])
    client.subscribe(["chat:x", "chat:y", "open:z"], id=1)
    client.expect_ack(1)
    refresh(client, token(600, subscribe=["chat:x"], publish=[]), id="narrow")
    value, raw = client.recv_json(SLACK)
    assert value["type"] == "unsubscribed" and value["topic"] == "chat:y", raw
    assert value["reason"], raw
    client.expect_ack("narrow")
    # chat:y is gone, chat:x and open:z (which anyone may read) stay; publish is gone too.
    client.publish("chat:x", "1", id=2)
    client.expect_error("forbidden", id=2)
    client.subscribe(["chat:y"], id=3)
    client.expect_error("forbidden", id=3)
    publisher = connect(server, lifetime=600, publish=["chat:*", "open:*"])
    for topic in ("chat:y", "chat:x", "open:z"):
        publisher.publish(topic, '"after"', id=topic)
        publisher.expect_ack(topic)
    client.expect_message("chat:x", '"after"')
    client.expect_message("open:z", '"after"')
    client.sync()


def test_refused_refreshes_name_their_reason_and_change_nothing(server):
    client = connect(server, lifetime=600)
    refresh(client, token(600, sub="user-2"), id="other")
    assert "another user" in client.expect_error("forbidden", id="other")["message"]
    refresh(client, token(-10), id="expired")
    assert "expired" in client.expect_error("bad_token", id="expired")["message"]
    refresh(client, token(600)[:-4] + "AAAA", id="forged")
    client.expect_error("bad_token", id="forged")
    client.send_text(request_text("refresh", id="none"))
    client.expect_error("bad_request", id="none")
    client.subscribe(["chat:still"], id=1)  # the grant in force is still the first one
    client.expect_ack(1)


def test_a_refused_refresh_after_expiry_still_ends_in_4001_and_is_counted(server):
    before = metrics(server.address)
    client = connect(server, lifetime=1)
    expect_refresh_request(client)
    refresh(client, token(600, sub="user-2"), id="wrong")
    client.expect_error("forbidden", id="wrong")
    client.expect_close(4001, timeout=GRACE + SLACK)
    after = metrics(server.address)
    for name in ("pylon_auth_expired_total", "pylon_auth_refresh_requests_total",
                 'pylon_auth_refreshes_total{result="refused"}'):
        assert after[name] == before.get(name, 0) + 1, name
