"""Rolling restart without loss, the headline test of issue 14 (docs/cluster.md "What the tests
prove").

`make stack STACK_ENGINE=redis` (three instances on one Redis behind the shipped Nginx, a namespace
`roll` whose history covers the outages many times over), 1,000 subscribers over 20 topics
connected over wss through Nginx (support.rolling.Subscriber: reconnect with backoff and full
jitter, resubscribe with `recover` from the last offset and epoch seen), one publisher per
instance sending `POST /api/publish` straight to it at a steady rate and keeping every acked
offset. Under that load the instances are restarted one after another with SIGTERM (each drains:
every client it held gets 1001), then the one holding the most clients is SIGKILLed (its clients
see the TCP connection end without a close frame) and started again. Then publishing stops and
everyone catches up. Asserted: each subscriber received exactly the offsets 1..N that Redis stored
for its topic, once each and in order, every acked one with its data; every resubscribe answered
`recovered:true` (zero `recovered:false`); no error frame.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

from support.nginx import tls_context
from support.rolling import Publishers, RollingStack, Subscriber, check_deliveries, roll, until

SUBSCRIBERS = 1000
TOPICS = [f"roll:topic-{i}" for i in range(20)]
INTERVAL = 0.05  # seconds between two publishes of one publisher: ~60 per second in all
BETWEEN = 60  # acked publications between two restarts
TIMEOUT = 120.0


def close_codes(subscribers: list[Subscriber]) -> Counter:
    return Counter(code for subscriber in subscribers for code in subscriber.closes)


async def restart(stack: RollingStack, subscribers: list[Subscriber], port: int, sig: signal.Signals) -> None:
    """Restarts one instance; the clients it held come back through Nginx on the others."""
    held = stack.connections(port)
    assert held > 0, f"instance :{port} holds no client: the restart would prove nothing"
    before = close_codes(subscribers)
    await asyncio.to_thread(stack.restart, port, sig)
    await until(lambda: sum((close_codes(subscribers) - before).values()) >= held, TIMEOUT,
                f"the {held} clients of :{port} to see their connection end")
    await until(lambda: all(s.subscribed.is_set() for s in subscribers), TIMEOUT,
                f"every client to be subscribed again after {sig.name} of :{port}")
    lost = close_codes(subscribers) - before
    # SIGTERM: the drain sends 1001 to every WebSocket (Nginx passes the close frame on);
    # SIGKILL: no close frame at all. Nobody else is disconnected.
    expected = 1001 if sig == signal.SIGTERM else 1006
    assert lost == Counter({expected: held}), f"{sig.name} of :{port} holding {held}: closes {dict(lost)}"


async def rolling_restart(stack: RollingStack) -> tuple[list[Subscriber], Publishers]:
    url = f"wss://localhost:{stack.https_port}/ws"
    context = tls_context(stack.ca)
    subscribers = [Subscriber(url, context, TOPICS[i % len(TOPICS)]) for i in range(SUBSCRIBERS)]
    tasks = [asyncio.create_task(subscriber.run()) for subscriber in subscribers]
    try:
        await until(lambda: all(s.subscribed.is_set() for s in subscribers), TIMEOUT, "every client to subscribe")
        spread = {port: stack.connections(port) for port in stack.pylon_ports}
        assert sum(spread.values()) == SUBSCRIBERS and all(spread.values()), spread

        publishers = Publishers([("127.0.0.1", port) for port in stack.pylon_ports], TOPICS, INTERVAL)
        with publishers:
            await roll(stack, publishers, BETWEEN, lambda port, sig: restart(stack, subscribers, port, sig), TIMEOUT)
        tops = {topic: stack.stored_top(topic) for topic in TOPICS}
        await until(lambda: all(s.offset >= tops[s.topic] for s in subscribers), TIMEOUT,
                    "every client to see its topic's last publication")
        return subscribers, publishers
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_rolling_restart_loses_and_duplicates_nothing(tmp_path):
    stack = RollingStack(tmp_path / "stack")
    try:
        stack.up()
        subscribers, publishers = asyncio.run(asyncio.wait_for(rolling_restart(stack), TIMEOUT * 4))
        tops = {topic: stack.stored_top(topic) for topic in TOPICS}
    finally:
        stack.down()

    acked = publishers.acked
    assert all(len(acked[topic]) >= 10 for topic in TOPICS), {t: len(a) for t, a in acked.items()}
    assert all(max(acked[topic]) <= tops[topic] for topic in TOPICS), tops
    for index, subscriber in enumerate(subscribers):
        name = f"subscriber {index} on {subscriber.topic}"
        assert not subscriber.errors, f"{name}: {subscriber.errors[:3]}"
        check_deliveries(name, subscriber.seen, tops[subscriber.topic], acked[subscriber.topic])
    recovered = Counter(value for subscriber in subscribers for value in subscriber.recovered[1:])
    assert recovered[False] == 0 and recovered[True] > 0, f"resubscribes by answer: {dict(recovered)}"
    assert all(subscriber.recovered[0] is None for subscriber in subscribers)
    print(f"acked {sum(map(len, acked.values()))} publications (refused {publishers.refused}), "
          f"delivered {sum(len(s.seen) for s in subscribers)}, resubscribes {dict(recovered)}, "
          f"closes {dict(close_codes(subscribers))}")  # shown with pytest -s
