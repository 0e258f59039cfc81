"""The backend API (docs/protocol.md "Backend API", docs/security.md): named API keys with scopes
on POST /api/publish, /api/disconnect and /api/unsubscribe; disconnecting every connection of a
user (on every loop, and on every instance through a real redis-server) and unsubscribing a user
from a topic with the client told. Connection tokens are minted by PyJWT."""

import json
import os
import signal
import time

import jwt
import pytest

from support.pubsub import PubSubClient, http_publish, published_to
from support.redis import start_redis, wait_for
from support.server import http_get_status, poll, run_pylon, start_server

SECRET = "an HMAC secret of at least thirty-two bytes, for the API"
ADMIN_KEY = "admin-key-0123456789"
NOTIFIER_KEY = "notifier-key-0123456789"
SLACK = 20.0


def token(sub: str) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + 600,
                       "pylon": {"subscribe": ["chat:*"], "publish": ["chat:*"]}},
                      SECRET, algorithm="HS256")


def user(server, sub: str) -> PubSubClient:
    return PubSubClient.connect(server.address, "/ws?token=" + token(sub))


def call(server, path: str, body, key=ADMIN_KEY):
    """One POST to the backend API; `body` a dict (sent as JSON) or raw text."""
    text = json.dumps(body) if isinstance(body, dict) else body
    return http_publish(server.address, text, key, path=path)


def answer(response) -> dict:
    return json.loads(response.body)


def write_config(directory, extra: str = "") -> str:
    (directory / "secret").write_text(SECRET + "\n")
    (directory / "admin.key").write_text(ADMIN_KEY + "\n")
    (directory / "notifier.key").write_text(NOTIFIER_KEY)
    config = directory / "pylon.toml"
    config.write_text(f'auth_hmac_secret_file = "{directory / "secret"}"\n{extra}\n'
                      f'[api_keys.admin]\nkey_file = "{directory / "admin.key"}"\n'
                      'scopes = ["publish", "disconnect"]\n'
                      f'[api_keys.notifier]\nkey_file = "{directory / "notifier.key"}"\n')
    return str(config)


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("backend-api")


@pytest.fixture(scope="module")
def server(config_dir):
    with start_server("--config", write_config(config_dir), "--threads", "2") as running:
        yield running


def metric(server, line_start: str) -> float:
    response = http_publish(server.address, "", method="GET", path="/metrics")
    for line in response.body.decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return 0.0


# --- keys and scopes -----------------------------------------------------------------------------

def test_each_key_does_what_its_scopes_allow(server):
    subscriber = user(server, "reader")
    subscriber.subscribe(["chat:keys"], id=1)
    subscriber.expect_ack(1)
    for key in (ADMIN_KEY, NOTIFIER_KEY):
        assert published_to(call(server, "/api/publish", '{"topic":"chat:keys","data":1}', key)) == 1
        subscriber.expect_message("chat:keys", "1")

    for path in ("/api/disconnect", "/api/unsubscribe"):
        refused = call(server, path, {"user": "reader", "topic": "chat:keys"}, NOTIFIER_KEY)
        assert refused.status == 403, refused.raw_head
        assert answer(refused) == {"error": "missing_scope",
                                   "message": "the key notifier lacks the disconnect scope"}
    subscriber.sync()  # still connected, still subscribed
    assert metric(server, 'pylon_api_requests_total{key="notifier",endpoint="disconnect",status="403"}') == 1
    assert metric(server, 'pylon_api_requests_total{key="admin",endpoint="publish",status="200"}') >= 1
    subscriber.close()


@pytest.mark.parametrize("path", ["/api/publish", "/api/disconnect", "/api/unsubscribe"])
def test_a_wrong_or_missing_key_is_401(server, path):
    before = metric(server, f'pylon_api_requests_total{{key="",endpoint="{path[5:]}",status="401"}}')
    for key in (None, "wrong", ADMIN_KEY[:-1], ADMIN_KEY + "x", ADMIN_KEY + " " + NOTIFIER_KEY):
        response = call(server, path, {"user": "u", "topic": "chat:x", "data": 1}, key)
        assert response.status == 401, (key, response.raw_head)
        assert (response.header("WWW-Authenticate") or "").lower().startswith("bearer")
    after = metric(server, f'pylon_api_requests_total{{key="",endpoint="{path[5:]}",status="401"}}')
    assert after - before == 5
    exposition = http_publish(server.address, "", method="GET", path="/metrics").body
    assert ADMIN_KEY.encode() not in exposition and NOTIFIER_KEY.encode() not in exposition


def test_bad_bodies_are_400_naming_the_field(server):
    cases = [("/api/disconnect", "[]", "body must be a JSON object"),
             ("/api/disconnect", {"code": 4000}, "user (the connection token's sub, a string of 1-1024 bytes) is required"),
             ("/api/disconnect", {"user": "u", "code": 1000}, "code must be an integer from 4000 to 4999"),
             ("/api/disconnect", {"user": "u", "reason": "r" * 124}, "reason must be a string of at most 123 bytes"),
             ("/api/unsubscribe", {"user": "u"}, "topic (a string) is required"),
             ("/api/unsubscribe", {"user": "u", "topic": "a b"}, "topic: invalid topic name")]
    for path, body, message in cases:
        response = call(server, path, body)
        assert response.status == 400, (body, response.raw_head)
        assert answer(response) == {"error": "bad_request", "message": message}


# --- disconnect and unsubscribe on one instance --------------------------------------------------

def test_disconnect_closes_every_connection_of_the_user_and_no_other(server):
    # 16 connections land on both loops (SO_REUSEPORT spreads them) but for a 2^-15 chance.
    alice = [user(server, "alice") for _ in range(16)]
    bob = [user(server, "bob") for _ in range(4)]
    response = call(server, "/api/disconnect", {"user": "alice", "code": 4500, "reason": "banned"})
    assert response.status == 202, response.raw_head
    assert answer(response) == {"this_instance": "queued", "other_instances": "none"}
    for client in alice:
        assert client.expect_close(4500).close_reason == b"banned"
    for client in bob:
        client.sync()  # untouched
    # Without a code: 4002 "disconnected by the server".
    assert call(server, "/api/disconnect", {"user": "bob"}).status == 202
    for client in bob:
        assert client.expect_close(4002).close_reason == b"disconnected by the server"
    # A user with no connection: accepted, nothing to do.
    assert call(server, "/api/disconnect", {"user": "nobody"}).status == 202


def test_unsubscribe_tells_the_client_and_stops_the_messages(server):
    alice = [user(server, "alice-u") for _ in range(4)]
    bob = user(server, "bob-u")
    for client in [*alice, bob]:
        client.subscribe(["chat:room-1", "chat:room-2"], id="s")
        client.expect_ack("s")
    response = call(server, "/api/unsubscribe", {"user": "alice-u", "topic": "chat:room-1"})
    assert response.status == 202, response.raw_head
    for client in alice:
        value, _ = client.recv_json(timeout=SLACK)
        assert value == {"type": "unsubscribed", "topic": "chat:room-1",
                         "reason": "unsubscribed by the backend"}
    # Only bob still receives room 1; alice still has room 2.
    assert published_to(call(server, "/api/publish", '{"topic":"chat:room-1","data":"r1"}')) == 1
    assert published_to(call(server, "/api/publish", '{"topic":"chat:room-2","data":"r2"}')) == 5
    bob.expect_message("chat:room-1", '"r1"')
    bob.expect_message("chat:room-2", '"r2"')
    for client in alice:
        client.expect_message("chat:room-2", '"r2"')
        client.sync()
    # A second time there is nothing to tell: no notice.
    assert call(server, "/api/unsubscribe", {"user": "alice-u", "topic": "chat:room-1"}).status == 202
    assert published_to(call(server, "/api/publish", '{"topic":"chat:room-2","data":"again"}')) == 5
    for client in alice:
        client.expect_message("chat:room-2", '"again"')
    for client in [*alice, bob]:
        client.close()


# --- configuration ---------------------------------------------------------------------------------

def test_sighup_rereads_the_key_files_and_a_bad_one_keeps_the_running_keys(tmp_path):
    with start_server("--config", write_config(tmp_path)) as running:
        (tmp_path / "admin.key").write_text("rotated-admin-key-0123\n")
        running.signal(signal.SIGHUP)
        poll(lambda: call(running, "/api/publish", '{"topic":"chat:a","data":1}',
                          "rotated-admin-key-0123").status == 200, SLACK, "the rotated key to work")
        assert call(running, "/api/publish", '{"topic":"chat:a","data":1}').status == 401
        (tmp_path / "admin.key").unlink()
        running.signal(signal.SIGHUP)
        poll(lambda: b"API keys not reloaded" in (running.log_dir / "stdout").read_bytes()
             + (running.log_dir / "stderr").read_bytes(), SLACK, "the failed reload to be logged")
        assert call(running, "/api/publish", '{"topic":"chat:a","data":1}',
                    "rotated-admin-key-0123").status == 200
        assert call(running, "/api/publish", '{"topic":"chat:a","data":1}', NOTIFIER_KEY).status == 200


def test_the_old_api_key_and_bad_keys_stop_start_up_naming_the_key(tmp_path):
    result = run_pylon("serve", "--api-key", "s3cret")
    assert result.returncode == 2
    assert "api_key: expected NAME:key=value" in result.stderr and "never a flag" in result.stderr
    (tmp_path / "old.toml").write_text('api_key = "s3cret"\n')
    result = run_pylon("check-config", str(tmp_path / "old.toml"))
    assert result.returncode == 2 and "api_key: replaced by [api_keys.NAME]" in result.stderr
    result = run_pylon("serve", "--api-key", "ci:key_env=PYLON_TEST_UNSET_KEY")
    assert result.returncode == 2
    assert "api_keys.ci.key_env: the environment has no PYLON_TEST_UNSET_KEY" in result.stderr


def test_a_key_from_the_environment(tmp_path):
    with start_server("--api-key", "ci:key_env=PYLON_TEST_API_KEY", "--api-key", "ci:scopes=disconnect",
                      env={"PYLON_TEST_API_KEY": "from-the-environment"}) as running:
        response = call(running, "/api/disconnect", {"user": "u"}, "from-the-environment")
        assert response.status == 202, response.raw_head
        refused = call(running, "/api/publish", '{"topic":"a","data":1}', "from-the-environment")
        assert refused.status == 403 and b"lacks the publish scope" in refused.body


# --- across instances ------------------------------------------------------------------------------

def test_disconnect_and_unsubscribe_reach_the_other_instance_and_redis_down_is_503(tmp_path):
    prefix = f"api{os.getpid()}:"
    config = write_config(tmp_path, "engine = \"redis\"\nreadyz_requires_engine = true")
    with start_redis() as redis:
        args = ["--config", config, "--threads", "2", "--redis-url", redis.url, "--redis-prefix", prefix]
        with start_server(*args) as a, start_server(*args) as b:
            for running in (a, b):
                wait_for(lambda: http_get_status(running.host, running.port, "/readyz") == 200,
                         what="the engine up")
            wait_for(lambda: redis.numsub(prefix + "#control") == 2, what="both on the control channel")

            on_a, on_b = user(a, "carol"), user(b, "carol")
            for client in (on_a, on_b):
                client.subscribe(["chat:x"], id="s")
                client.expect_ack("s")
            response = call(a, "/api/unsubscribe", {"user": "carol", "topic": "chat:x"})
            assert answer(response) == {"this_instance": "queued", "other_instances": "sent"}
            for client in (on_a, on_b):
                value, _ = client.recv_json(timeout=SLACK)
                assert value == {"type": "unsubscribed", "topic": "chat:x",
                                     "reason": "unsubscribed by the backend"}
            assert call(b, "/api/disconnect", {"user": "carol", "code": 4100}).status == 202
            on_a.expect_close(4100)
            on_b.expect_close(4100)

            dave = user(a, "dave")
            redis.kill()
            wait_for(lambda: http_get_status(a.host, a.port, "/readyz") == 503, what="the engine down")
            response = call(a, "/api/disconnect", {"user": "dave"})
            assert response.status == 503, response.raw_head
            assert answer(response)["error"] == "engine_unavailable"
            dave.sync()  # nothing was done here either
            dave.close()
