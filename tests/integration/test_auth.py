"""Authentication and per-topic authorization on /ws (docs/security.md), with tokens minted by an
independent implementation (PyJWT, Debian python3-jwt): where a token may be, every key type,
hostile tokens with the exact status, JWKS rotation by SIGHUP while connections stay, and the
permissions of claims, namespace rules and subscription tokens."""

import json
import signal
import subprocess
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from support.auth import SECRET, SLACK, claims, error_of, grant, secret_file, upgrade  # noqa: F401
from support.pubsub import PubSubClient, request_text
from support.server import poll, pylon_bin, start_server
from support.wsclient import HttpConnection


def public_pem(private_key):
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def hmac_server(secret_file, tmp_path_factory):
    config = tmp_path_factory.mktemp("auth-config") / "pylon.toml"
    config.write_text(f'auth_hmac_secret_file = "{secret_file}"\n'
                      '[namespaces.open]\nsubscribe = "anyone"\npublish = "subscribers"\n'
                      '[namespaces.news]\nsubscribe = "anyone"\npublish = "nobody"\n'
                      '[namespaces.private]\nsubscribe = "subscription_token"\n')
    with start_server("--config", str(config)) as running:
        yield running


def hs256(payload):
    return jwt.encode(payload, SECRET, algorithm="HS256")


# --- where the token is ------------------------------------------------------------------------

def test_a_token_in_the_authorization_header_the_query_or_a_subprotocol(hmac_server):
    token = hs256(grant(["chat:*"]))
    assert upgrade(hmac_server, headers=[("Authorization", f"Bearer {token}")]).status == 101
    assert upgrade(hmac_server, path=f"/ws?token={token}").status == 101
    response = upgrade(hmac_server, headers=[
        ("Sec-WebSocket-Protocol", f"pylon.v1, pylon.token.{token}")])
    assert response.status == 101
    # The answer names the application protocol, never the token (RFC 6455 §4.2.2).
    assert response.header("Sec-WebSocket-Protocol") == "pylon.v1"


def test_no_token_is_refused_with_401_and_a_challenge(hmac_server):
    response = upgrade(hmac_server)
    assert response.status == 401
    assert error_of(response) == "missing_token"
    assert response.header("WWW-Authenticate").startswith("Bearer ")


def test_a_token_in_two_places_is_refused(hmac_server):
    token = hs256(grant())
    response = upgrade(hmac_server, path=f"/ws?token={token}",
                       headers=[("Authorization", f"Bearer {token}")])
    assert response.status == 400
    assert error_of(response) == "ambiguous_token"


# --- hostile tokens: each with its reason, and the server serves the next client ---------------

def _unsigned(payload):
    return jwt.encode(payload, None, algorithm="none")


@pytest.mark.parametrize("name,make,reason", [
    ("alg none", lambda: _unsigned(grant()), "algorithm_none"),
    ("expired", lambda: hs256(claims(lifetime=-3600)), "expired"),
    ("not yet valid", lambda: hs256(claims(nbf=int(time.time()) + 3600)), "not_yet_valid"),
    ("another secret", lambda: jwt.encode(grant(), "x" * 40, algorithm="HS256"), "bad_signature"),
    # The signature's bytes cut short: a signature of the wrong size, or a non-canonical last
    # base64url character, depending on where the cut falls.
    ("truncated", lambda: hs256(grant())[:-8], ("bad_signature", "bad_base64url")),
    ("bad base64url", lambda: "e30.e30.***", "bad_base64url"),
    ("not JSON", lambda: "bm90IGpzb24.e30.c2ln", "bad_json"),
    ("no exp", lambda: hs256({"sub": "user-1"}), "missing_expiry"),
    ("issued in the future", lambda: hs256(claims(iat=int(time.time()) + 3600)), "issued_in_future"),
    ("a signature of another token",
     lambda: hs256(grant()).rsplit(".", 1)[0] + "." + hs256(claims(sub="x")).rsplit(".", 1)[1],
     "bad_signature"),
])
def test_hostile_tokens_get_their_reason(hmac_server, name, make, reason):
    response = upgrade(hmac_server, headers=[("Authorization", f"Bearer {make()}")])
    assert response.status == 401, name
    assert error_of(response) in ((reason,) if isinstance(reason, str) else reason), name
    assert upgrade(hmac_server, headers=[("Authorization", f"Bearer {hs256(grant())}")]).status == 101


def test_a_huge_token_is_refused_unread(hmac_server):
    token = hs256(grant(info="x" * 9000))  # past auth_max_token_size (8 KiB), within HTTP limits
    response = upgrade(hmac_server, headers=[("Authorization", f"Bearer {token}")])
    assert response.status == 401
    assert error_of(response) == "too_large"
    huge = upgrade(hmac_server, headers=[("Authorization", "Bearer " + "a" * 65536)])
    assert 400 <= huge.status < 500


def test_refusals_are_counted_by_reason(hmac_server):
    upgrade(hmac_server)
    metrics = HttpConnection(*hmac_server.address, timeout=SLACK)
    try:
        metrics.request("GET", "/metrics")
        text = metrics.read_response(timeout=SLACK).body.decode()
    finally:
        metrics.close()
    assert 'pylon_auth_failures_total{reason="missing_token"}' in text
    assert 'pylon_handshake_failures_total{reason="refused_by_route"}' in text


def test_tokens_never_reach_the_log(secret_file):
    """The access log names the route, not the request target: a query token stays out of it, and
    so do tokens in a header or a subprotocol, accepted or refused. A server of its own: refusal
    lines are rate-limited, and the hostile tokens above would use up the second's share."""
    agent = ("User-Agent", "token-log-test")
    good = [hs256(grant(["chat:*"], sub=f"user-{n}")) for n in range(3)]
    bad = hs256(grant()).rsplit(".", 1)[0] + "." + hs256(claims(sub="x")).rsplit(".", 1)[1]
    with start_server("--auth-hmac-secret-file", secret_file) as server:
        for headers, path in (
                ([("Authorization", f"Bearer {good[0]}")], "/ws"),
                ([], f"/ws?token={good[1]}&room=1"),
                ([("Sec-WebSocket-Protocol", f"pylon.v1, pylon.token.{good[2]}")], "/ws")):
            PubSubClient.connect(server.address, path, headers=[agent, *headers]).close()
        assert upgrade(server, path=f"/ws?token={bad}", headers=[agent]).status == 401
        # A refused subscribe and publish are logged with the rule, not the token or the user.
        denied = PubSubClient.connect(server.address, f"/ws?token={good[0]}")
        denied.subscribe(["secret:x"], id=1)
        denied.expect_error("forbidden", id=1)
        denied.publish("chat:room-1", "1", id=2)
        denied.expect_error("forbidden", id=2)
        denied.close()

        def log_text():
            return (server.log_dir / "stderr").read_text(errors="replace")

        def logged(msg):
            return [r for r in map(json.loads, log_text().splitlines()) if r["msg"] == msg]
        refused = poll(lambda: logged("token refused"), SLACK, "the refusal's log line")
        assert [r["reason"] for r in refused] == ["bad_signature"], refused
        opened = [r for r in logged("websocket open") if r["user_agent"] == "token-log-test"]
        assert [r["path"] for r in opened] == ["/ws"] * 3, opened
        refusals = poll(lambda: len(logged("topic request refused")) == 2 and
                        logged("topic request refused"), SLACK, "the refusals' log lines")
        assert [(r["action"], r["code"]) for r in refusals] == [("subscribe", "forbidden"),
                                                                ("publish", "forbidden")]
        assert "secret:x" in refusals[0]["reason"] and "chat:room-1" in refusals[1]["reason"]
        assert all("user-0" not in json.dumps(r) for r in refusals)
        text = log_text()
    for token in (*good, bad):
        for part in token.split("."):
            assert part not in text  # neither the token nor any part of it


# --- permissions -------------------------------------------------------------------------------

def client(server, payload):
    return PubSubClient.connect(server.address, "/ws?token=" + hs256(payload))


def test_claims_grant_subscribe_and_publish_by_pattern(hmac_server):
    alice = client(hmac_server, grant(subscribe=["chat:*"], publish=["chat:room-1"]))
    alice.subscribe(["chat:room-1", "chat:room-2"], id=1)
    alice.expect_ack(1)
    alice.subscribe(["secret:x"], id=2)
    error = alice.expect_error("forbidden", id=2)
    assert "secret:x" in error["message"]
    alice.publish("chat:room-1", '"hi"', id=3)
    alice.expect_ack_and_message(3, "chat:room-1", '"hi"')
    alice.publish("chat:room-2", '"hi"', id=4)
    assert "chat:room-2" in alice.expect_error("forbidden", id=4)["message"]
    alice.close()


def test_namespace_rules_apply_over_claims(hmac_server):
    bob = client(hmac_server, grant())  # no grants of its own
    bob.publish("open:lobby", '"before"', id=1)
    bob.expect_error("forbidden", id=1)  # publish = subscribers: not yet one
    bob.subscribe(["open:lobby", "news:today"], id=2)  # subscribe = anyone
    bob.expect_ack(2)
    bob.publish("open:lobby", '"after"', id=3)
    bob.expect_ack_and_message(3, "open:lobby", '"after"')
    bob.publish("news:today", '"x"', id=4)
    bob.expect_error("forbidden", id=4)  # publish = nobody
    bob.close()


def test_subscription_tokens_grant_one_topic_to_one_user(hmac_server):
    carol = client(hmac_server, grant())
    carol.subscribe(["private:carol"], id=1)
    carol.expect_error("subscription_token_required", id=1)
    for_carol = hs256(claims(pylon={"topic": "private:carol"}))
    carol.send_text(request_text("subscribe", topics=["private:carol"], token=for_carol, id=2))
    carol.expect_ack(2)
    carol.send_text(request_text("subscribe", topics=["private:dave"], token=for_carol, id=3))
    carol.expect_error("forbidden", id=3)
    someone_else = hs256(claims(sub="dave", pylon={"topic": "private:dave"}))
    carol.send_text(request_text("subscribe", topics=["private:dave"], token=someone_else, id=4))
    carol.expect_error("forbidden", id=4)
    # A connection token is not a subscription token.
    carol.send_text(request_text("subscribe", topics=["private:carol"], token=hs256(grant()), id=5))
    carol.expect_error("bad_token", id=5)
    carol.close()


def test_anonymous_connections_when_allowed(secret_file):
    with start_server("--auth-hmac-secret-file", secret_file, "--auth-anonymous", "true",
                      "--namespace", "lobby:subscribe=anyone") as server:
        anonymous = PubSubClient.connect(server.address, "/ws")
        anonymous.subscribe(["lobby:main"], id=1)
        anonymous.expect_ack(1)
        anonymous.subscribe(["chat:x"], id=2)
        assert "anonymous" in anonymous.expect_error("forbidden", id=2)["message"]
        anonymous.close()


# --- every key type, and JWKS rotation ---------------------------------------------------------

KEYS = {
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "PS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ES384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "EdDSA": lambda: ed25519.Ed25519PrivateKey.generate(),
}


@pytest.mark.parametrize("algorithm", sorted(KEYS))
def test_public_key_algorithms(tmp_path, algorithm):
    private = KEYS[algorithm]()
    pem = tmp_path / "key.pem"
    pem.write_bytes(public_pem(private))
    with start_server("--auth-public-key-file", str(pem)) as server:
        good = jwt.encode(grant(), private, algorithm=algorithm)
        assert upgrade(server, path=f"/ws?token={good}").status == 101
        # The classic confusion: HS256 "signed" with the public key as the secret.
        confused = jwt.api_jws.PyJWS()
        confused._algorithms["HS256"].prepare_key = lambda key: key  # PyJWT refuses PEM secrets
        forged = confused.encode(json.dumps(grant()).encode(), pem.read_bytes(), algorithm="HS256")
        response = upgrade(server, path=f"/ws?token={forged}")
        assert response.status == 401
        assert error_of(response) == "algorithm_not_allowed_for_key"


def jwks(*entries):
    keys = []
    for kid, private in entries:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
        jwk.update(kid=kid, use="sig", alg="ES256")
        keys.append(jwk)
    return json.dumps({"keys": keys})


def test_jwks_keys_by_kid_and_rotation_by_sighup(tmp_path):
    old, new = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "jwks.json"
    path.write_text(jwks(("old", old)))
    with start_server("--auth-jwks-file", str(path)) as server:
        token_old = jwt.encode(grant(["t"]), old, algorithm="ES256", headers={"kid": "old"})
        token_new = jwt.encode(grant(["t"]), new, algorithm="ES256", headers={"kid": "new"})
        staying = PubSubClient.connect(server.address, f"/ws?token={token_old}")
        response = upgrade(server, path=f"/ws?token={token_new}")
        assert response.status == 401 and error_of(response) == "unknown_key_id"

        path.write_text(jwks(("new", new)))
        server.signal(signal.SIGHUP)
        poll(lambda: upgrade(server, path=f"/ws?token={token_new}").status == 101, SLACK,
             "the new key after SIGHUP")
        assert error_of(upgrade(server, path=f"/ws?token={token_old}")) == "unknown_key_id"
        staying.subscribe(["t"], id=1)  # the connection made with the old key stays
        staying.expect_ack(1)
        staying.close()


def test_a_bad_key_source_stops_start_up_naming_the_key(tmp_path):
    pem = tmp_path / "not-a-key.pem"
    pem.write_text("nothing here\n")
    result = subprocess.run([pylon_bin(), "serve", "--listen", "127.0.0.1:0",
                             "--auth-public-key-file", str(pem)],
                            capture_output=True, text=True, timeout=SLACK)
    assert result.returncode != 0
    assert "auth_public_key_file:" in result.stderr
