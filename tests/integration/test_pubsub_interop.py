"""Pub/sub interoperability: the Python `websockets` client (10.x) and the Node `ws` client
(node_pubsub_client.js) subscribe with an id, get the ack, and receive what another client
publishes; each also publishes to the other."""

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest
import websockets

from support.pubsub import PubSubClient, envelope
from support.server import start_server

SCRIPT = Path(__file__).with_name("node_pubsub_client.js")
COUNT = 200
TIMEOUT = 120


@pytest.fixture(scope="module")
def server():
    with start_server("--threads", "2") as running:
        yield running


def start_node(server, *args):
    env = dict(os.environ)
    env.setdefault("NODE_PATH", "/usr/share/nodejs")
    return subprocess.Popen(["node", str(SCRIPT), server.url("/ws"), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish_node(process):
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    assert process.returncode == 0 and "OK" in out, f"node: exit {process.returncode}\n{out}\n{err}"
    return out


def wait_ready(process):
    line = process.stdout.readline()  # blocks until the ack (the script has its own timeout)
    if line.strip() != "READY":
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"node did not get its ack: {line}{out}\n{err}")


def connect_py(server):
    return websockets.connect(server.url("/ws"), compression=None, ping_interval=None, open_timeout=30,
                              close_timeout=30, max_size=None)


def seq_data(i, origin):
    return json.dumps({"seq": i, "from": origin}, separators=(",", ":"))


def test_node_subscriber_receives_raw_client_publishes(server):
    node = start_node(server, "subscribe", "interop.node", COUNT)
    wait_ready(node)
    publisher = PubSubClient.connect(server.address)
    try:
        for i in range(COUNT):
            publisher.publish("interop.node", seq_data(i, "raw"))
        publisher.sync()
    finally:
        publisher.close()
    assert finish_node(node).startswith(f"OK received {COUNT}")


def test_python_subscriber_receives_raw_client_publishes(server):
    async def body():
        async with connect_py(server) as ws:
            await ws.send('{"type":"subscribe","topics":["interop.py"],"id":"py-1"}')
            assert json.loads(await ws.recv()) == {"type": "ack", "id": "py-1"}
            publisher = PubSubClient.connect(server.address)
            try:
                for i in range(COUNT):
                    publisher.publish("interop.py", seq_data(i, "raw"))
                publisher.sync()
            finally:
                publisher.close()
            for i in range(COUNT):
                message = await ws.recv()
                assert isinstance(message, str), message
                assert message.encode() == envelope("interop.py", seq_data(i, "raw")), message
    asyncio.run(asyncio.wait_for(body(), TIMEOUT))


def test_node_publishes_to_python_and_python_publishes_to_node(server):
    async def body():
        async with connect_py(server) as ws:
            await ws.send('{"type":"subscribe","topics":["interop.from-node"],"id":7}')
            assert json.loads(await ws.recv()) == {"type": "ack", "id": 7}
            node_subscriber = start_node(server, "subscribe", "interop.from-py", COUNT)
            await asyncio.get_running_loop().run_in_executor(None, wait_ready, node_subscriber)
            for i in range(COUNT):
                await ws.send(json.dumps({"type": "publish", "topic": "interop.from-py",
                                          "data": {"seq": i, "from": "python"}}, separators=(",", ":")))
            node_publisher = start_node(server, "publish", "interop.from-node", COUNT)
            for i in range(COUNT):
                message = await ws.recv()
                assert message.encode() == envelope("interop.from-node", seq_data(i, "node")), message
            loop = asyncio.get_running_loop()
            assert (await loop.run_in_executor(None, finish_node, node_publisher)).startswith(f"OK published {COUNT}")
            assert (await loop.run_in_executor(None, finish_node, node_subscriber)).startswith(f"OK received {COUNT}")
    asyncio.run(asyncio.wait_for(body(), TIMEOUT))
