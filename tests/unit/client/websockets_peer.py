"""An independent WebSocket server for the client's end-to-end tests (Python `websockets`).

    /usr/bin/python3 websockets_peer.py PORT [COMPRESSION [TLS_DIR]]     (PORT 0: any free port)

COMPRESSION (permessage-deflate, RFC 7692):
  none      (the default) the extension is declined
  deflate   websockets' default: context takeover, both windows limited to 12 bits
  isolated  server_no_context_takeover and client_no_context_takeover, 15-bit windows

TLS_DIR: serve wss:// with TLS_DIR/server.pem and server.key (deploy/tls/local-ca.sh's output).

Prints "listening PORT" once bound, then one "closed CODE REASON" line per connection that ends.
Paths:
  /echo       echoes every message as it came (text or binary)
  /fragments  answers each message with the same message sent as 3 fragments
  /close4001  answers the first message by closing with 4001 "server says bye"
  /ping       pings with b"are you there", then sends "pong received" once the pong arrived
  /silent     never reads: once websockets' queue and the socket buffers are full, TCP pushes back
  /hello      sends "X-Pylon-Test header|subprotocol|query" first, then echoes
"""

import asyncio
import ssl
import sys

import websockets
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory


def split3(message):
    third = max(1, len(message) // 3)
    return [message[:third], message[third:2 * third], message[2 * third:]]


async def handler(ws, path):
    path, _, query = path.partition("?")
    try:
        if path == "/fragments":
            async for message in ws:
                await ws.send(split3(message))
        elif path == "/close4001":
            await ws.recv()
            await ws.close(4001, "server says bye")
        elif path == "/ping":
            pong = await ws.ping(b"are you there")
            await pong
            await ws.send("pong received")
            async for message in ws:
                await ws.send(message)
        elif path == "/silent":
            await ws.wait_closed()
        elif path == "/extensions":
            # What the server agreed to, as it sees it.
            await ws.send(ws.response_headers.get("Sec-WebSocket-Extensions", ""))
            async for message in ws:
                await ws.send(message)
        elif path == "/hello":
            await ws.send(ws.request_headers.get("X-Pylon-Test", "") + "|" + (ws.subprotocol or "") + "|" + query)
            async for message in ws:
                await ws.send(message)
        else:
            async for message in ws:
                await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    print(f"closed {ws.close_code} {ws.close_reason}", flush=True)


COMPRESSION = {
    "none": {"compression": None},
    "deflate": {"compression": "deflate"},
    "isolated": {"compression": None, "extensions": [ServerPerMessageDeflateFactory(
        server_no_context_takeover=True, client_no_context_takeover=True)]},
}


def tls_context(directory):
    if directory is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(f"{directory}/server.pem", f"{directory}/server.key")
    return context


async def main(port, compression, tls_dir):
    async with websockets.serve(handler, "127.0.0.1", port, subprotocols=["chat.v2", "chat"],
                                max_size=None, ping_interval=None, ssl=tls_context(tls_dir),
                                **COMPRESSION[compression]) as server:
        print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "none",
                     sys.argv[3] if len(sys.argv) > 3 else None))
