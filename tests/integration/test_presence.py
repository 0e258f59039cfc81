"""Presence on /ws (docs/protocol.md "Presence"): on namespaces with `presence = true` every
subscriber is listed by its client id with its token's sub and info; `join_leave = true` sends
join and leave messages to the topic's subscribers; `presence` and `presence_stats` answer the
topic's subscribers. On the memory engine (two loops) and on the Redis engine across three
instances, where a SIGKILLed instance's clients disappear within presence_ttl. Tokens are minted
by PyJWT; Redis is a real redis-server (the suite fails without it)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import time

import jwt
import pytest

from support.auth import SECRET, claims, secret_file  # noqa: F401
from support.deflate import metrics
from support.pubsub import PubSubClient, api_key_args, http_publish, request_text
from support.redis import start_redis, wait_for
from support.server import poll, pylon_bin, start_server

CLIENT_ID = re.compile(r"[0-9a-f]{16}")
PRESENCE_TTL = 3  # seconds, in the Redis suite: short, so the SIGKILL test is quick
API_KEY = "presence-backend-key"
NAMESPACES = ["room:subscribe=anyone", "room:presence=true", "room:join_leave=true",
              f"room:presence_ttl={PRESENCE_TTL}",
              "lobby:subscribe=anyone", "lobby:presence=true",
              "plain:subscribe=anyone"]


def server_args(secret: str) -> list[str]:
    args = ["--threads", "2", "--auth-hmac-secret-file", secret, "--auth-anonymous", "true"]
    for rule in NAMESPACES:
        args += ["--namespace", rule]
    return args


def token(user: str, name: str) -> str:
    return jwt.encode(claims(sub=user, pylon={"subscribe": [], "info": {"name": name}}), SECRET,
                      algorithm="HS256")


def connect(server, user: str | None = None, name: str = "") -> PubSubClient:
    headers = [("Authorization", f"Bearer {token(user, name)}")] if user else []
    return PubSubClient.connect(server.address, headers=headers)


def until_ack(client: PubSubClient, id_, others: list | None = None) -> dict:
    """Frames up to the answer (ack or error) of request id_; those before it go to others."""
    while True:
        value, raw = client.recv_json()
        if value.get("id") == id_ and value.get("type") in ("ack", "error"):
            return value
        assert others is not None, f"unexpected frame before the answer of {id_!r}: {raw!r}"
        others.append(value)


def subscribe(client: PubSubClient, topic: str, id_="s", join_leave=None) -> None:
    """Subscribes, asking for join/leave messages on the room namespace's topics (NAMESPACES:
    join_leave = true) unless told otherwise; the subscriber's own join follows the ack."""
    if join_leave is None:
        join_leave = topic.startswith("room:")
    client.send_text(request_text("subscribe", topics=[topic], id=id_,
                                  **({"join_leave": True} if join_leave else {})))
    assert until_ack(client, id_) == {"type": "ack", "id": id_}


def ask(client: PubSubClient, kind: str, topic: str, id_="p") -> dict:
    """The answer of a presence request; joins and leaves of others may come before it."""
    client.send_text(request_text(kind, topic=topic, id=id_))
    others: list = []
    answer = until_ack(client, id_, others)
    assert all(other["type"] in ("join", "leave") for other in others), others
    return answer


def next_event(client: PubSubClient, kind: str) -> dict:
    value, raw = client.recv_json()
    assert value.get("type") == kind, f"expected a {kind}, got {raw!r}"
    return value


def members(client: PubSubClient, topic: str) -> dict:
    answer = ask(client, "presence", topic)
    assert answer["type"] == "ack", answer
    assert all(CLIENT_ID.fullmatch(client_id) for client_id in answer["presence"]), answer
    return answer["presence"]


def stats(client: PubSubClient, topic: str) -> tuple[int, int]:
    answer = ask(client, "presence_stats", topic)
    assert answer["type"] == "ack" and set(answer) == {"type", "id", "clients", "users"}, answer
    return answer["clients"], answer["users"]


@pytest.fixture(scope="module")
def memory_server(secret_file):  # noqa: F811
    with start_server(*server_args(secret_file),
                      *api_key_args(API_KEY, scopes=("publish", "disconnect"))) as running:
        yield running


# --- the memory engine ------------------------------------------------------------------------

def test_join_and_leave_are_seen_by_the_other_subscribers(memory_server):
    with contextlib.closing(connect(memory_server, "alice", "Alice")) as alice, \
            contextlib.closing(connect(memory_server)) as guest:
        subscribe(alice, "room:1")
        own = next_event(alice, "join")
        alice_id = own["client"]
        assert own == {"type": "join", "topic": "room:1", "client": alice_id, "user": "alice",
                       "info": {"name": "Alice"}}

        subscribe(guest, "room:1")
        assert next_event(guest, "join")["user"] == ""
        join = next_event(alice, "join")
        assert join["user"] == "" and "info" not in join and CLIENT_ID.fullmatch(join["client"])
        assert join["client"] != alice_id
        assert members(alice, "room:1") == {alice_id: {"user": "alice", "info": {"name": "Alice"}},
                                            join["client"]: {"user": ""}}

        guest.unsubscribe(["room:1"], id="u")
        assert until_ack(guest, "u") == {"type": "ack", "id": "u"}
        assert next_event(alice, "leave") == {"type": "leave", "topic": "room:1",
                                              "client": join["client"], "user": ""}
        assert list(members(alice, "room:1")) == [alice_id]

        subscribe(guest, "room:1", "again")
        assert next_event(guest, "join")["client"] == join["client"]
        rejoined = next_event(alice, "join")["client"]
        assert rejoined == join["client"], "a connection keeps its client id"
        guest.close()
        assert next_event(alice, "leave")["client"] == rejoined
        assert list(members(alice, "room:1")) == [alice_id]


def test_join_and_leave_only_for_subscribers_that_ask(memory_server):
    with contextlib.closing(connect(memory_server, "hana", "H")) as hana, \
            contextlib.closing(connect(memory_server, "ivan", "I")) as ivan, \
            contextlib.closing(connect(memory_server, "jun", "J")) as jun:
        subscribe(hana, "room:ask", join_leave=False)  # listed, but wants no join/leave
        subscribe(ivan, "room:ask")
        ivan_id = next_event(ivan, "join")["client"]
        subscribe(jun, "room:ask")
        jun_id = next_event(jun, "join")["client"]
        assert next_event(ivan, "join")["client"] == jun_id
        jun.close()
        assert next_event(ivan, "leave")["client"] == jun_id
        hana.sync()  # nothing came to hana before this: no join, no leave
        listed = members(hana, "room:ask")
        assert len(listed) == 2 and ivan_id in listed, listed  # hana is listed all the same
        # join_leave where the namespace sends none is refused, and nothing changes.
        hana.send_text(request_text("subscribe", topics=["lobby:ask"], join_leave=True, id="jl"))
        assert until_ack(hana, "jl")["code"] == "forbidden"
        assert ask(hana, "presence", "lobby:ask")["code"] == "forbidden"  # not subscribed


def test_stats_count_clients_and_distinct_users(memory_server):
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(contextlib.closing(connect(memory_server, *who)))
                   for who in (("bob", "Bob"), ("bob", "Bob on a phone"), ("carol", "Carol"), (None, ""))]
        for client in clients:
            subscribe(client, "lobby:stats")  # lobby: presence without join/leave messages
        assert stats(clients[0], "lobby:stats") == (4, 2)  # anonymous clients are not users
        clients[1].close()
        poll(lambda: stats(clients[0], "lobby:stats") == (3, 2), 10, "the closed client to leave")
        clients[3].unsubscribe(["lobby:stats"], id="u")
        assert until_ack(clients[3], "u")["type"] == "ack"
        assert stats(clients[0], "lobby:stats") == (2, 2)
        listed = members(clients[2], "lobby:stats")
        assert sorted(member["user"] for member in listed.values()) == ["bob", "carol"]


def test_presence_is_refused_where_it_is_off_or_to_non_subscribers(memory_server):
    with contextlib.closing(connect(memory_server, "dave", "Dave")) as dave:
        subscribe(dave, "plain:x")
        for kind in ("presence", "presence_stats"):
            answer = ask(dave, kind, "plain:x")
            assert answer["type"] == "error" and answer["code"] == "forbidden", answer
            assert "presence is off" in answer["message"], answer
            answer = ask(dave, kind, "lobby:not-subscribed")
            assert answer["type"] == "error" and answer["code"] == "forbidden", answer
            assert "subscribers" in answer["message"], answer
        dave.send_text(request_text("presence", id=7))
        assert until_ack(dave, 7)["code"] == "bad_request"
        assert ask(dave, "presence", "bad topic!")["code"] == "bad_topic"


def test_a_user_unsubscribed_by_the_backend_leaves(memory_server):
    with contextlib.closing(connect(memory_server, "frank", "F")) as frank, \
            contextlib.closing(connect(memory_server, "grace", "G")) as grace:
        subscribe(frank, "room:backend")
        next_event(frank, "join")
        subscribe(grace, "room:backend")
        grace_id = next_event(grace, "join")["client"]
        assert next_event(frank, "join")["client"] == grace_id
        response = http_publish(memory_server.address, '{"user":"grace","topic":"room:backend"}',
                                API_KEY, path="/api/unsubscribe")
        assert response.status == 202, response.raw_head
        assert next_event(grace, "unsubscribed")["topic"] == "room:backend"
        assert next_event(frank, "leave")["client"] == grace_id
        assert grace_id not in members(frank, "room:backend")
        assert stats(frank, "room:backend") == (1, 1)


def test_presence_metrics(memory_server):
    with contextlib.closing(connect(memory_server, "erin", "Erin")) as erin:
        subscribe(erin, "room:metrics")
        samples = metrics(memory_server.address)
        assert samples["pylon_presence_clients"] >= 1, samples
        assert samples['pylon_presence_events_total{type="join"}'] >= 1, samples


def test_join_leave_needs_presence_and_no_history():
    for rules, key in ((["chat:join_leave=true"], "namespaces.chat.join_leave"),
                       (["chat:presence=true", "chat:join_leave=true", "chat:history_size=10",
                         "chat:history_ttl=60"], "namespaces.chat.join_leave"),
                       (["chat:presence_ttl=0.5"], "namespaces.chat.presence_ttl")):
        args = [arg for rule in rules for arg in ("--namespace", rule)]
        result = subprocess.run([pylon_bin(), "serve", "--listen", "127.0.0.1:0", *args],
                                capture_output=True, text=True, timeout=15)
        assert result.returncode == 2 and key in result.stderr, (rules, result.stderr)


# --- the Redis engine: three instances --------------------------------------------------------

@pytest.fixture(scope="module")
def redis():
    with start_redis() as running:
        yield running


@contextlib.contextmanager
def cluster(redis, secret: str, count: int = 3):
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(start_server(*server_args(secret), "--engine", "redis",
                                                    "--redis-url", redis.url,
                                                    "--redis-prefix", "presence-test:"))
                   for _ in range(count)]
        for server in servers:
            wait_for(lambda: engine_up(server), what=f"the engine of :{server.port}")
        yield servers


def engine_up(server) -> bool:
    return metrics(server.address).get("pylon_engine_up") == 1


def test_presence_across_instances_and_a_killed_instance_vanishes_within_the_ttl(redis, secret_file):  # noqa: F811
    with cluster(redis, secret_file) as servers, contextlib.ExitStack() as stack:
        first, second, third = servers
        watcher = stack.enter_context(contextlib.closing(connect(first, "watcher", "W")))
        subscribe(watcher, "room:cluster")
        assert next_event(watcher, "join")["user"] == "watcher"
        # join/leave travel on the topic's hidden join/leave channel: the watcher's instance must
        # have subscribed to it in Redis before other instances' joins can reach it.
        poll(lambda: redis.numsub("presence-test:#join_leave:room:cluster") >= 1, 15,
             "the watcher's instance to subscribe to the join/leave channel")
        users = []
        for index, server in enumerate((second, second, third)):
            client = connect(server, f"user-{index}", f"User {index}")
            stack.enter_context(contextlib.closing(client))
            subscribe(client, "room:cluster")
            assert next_event(client, "join")["user"] == f"user-{index}"
            join = next_event(watcher, "join")  # published on another instance, seen here
            assert join["user"] == f"user-{index}" and join["info"] == {"name": f"User {index}"}
            users.append((client, join["client"]))
        anonymous = stack.enter_context(contextlib.closing(connect(third)))
        subscribe(anonymous, "lobby:cluster")
        subscribe(watcher, "lobby:cluster", "s2")

        # Every instance answers the cluster's presence.
        for client in (watcher, users[0][0], users[2][0]):
            listed = members(client, "room:cluster")
            assert sorted(member["user"] for member in listed.values()) == \
                ["user-0", "user-1", "user-2", "watcher"], listed
            assert {client_id for _, client_id in users} <= set(listed)
        assert stats(anonymous, "lobby:cluster") == (2, 1)

        # A clean close leaves on every instance.
        users[2][0].close()
        leave = next_event(watcher, "leave")
        assert leave["client"] == users[2][1] and leave["user"] == "user-2"
        watcher.sync()  # no other join or leave came
        assert stats(watcher, "room:cluster") == (3, 3)

        # SIGKILL: no leave is sent; the entries expire within the TTL (refreshed by the others).
        second.proc.kill()
        second.proc.wait(timeout=15)
        killed = time.monotonic()
        poll(lambda: stats(watcher, "room:cluster") == (1, 1), PRESENCE_TTL + 10,
             "the killed instance's clients to vanish")
        # Within the TTL of their last refresh (before the kill), plus the polling's slack.
        assert time.monotonic() - killed <= PRESENCE_TTL + 3
        # The survivors' own entries outlive several TTLs: they are refreshed.
        time.sleep(PRESENCE_TTL * 1.5)  # waiting for a refresh that must have happened
        assert stats(watcher, "room:cluster") == (1, 1)
        assert stats(watcher, "lobby:cluster") == (2, 1)
