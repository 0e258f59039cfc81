"""An upstream that shows what a proxy sent it: `/usr/bin/python3 tests/support/header_echo.py
PORT` listens on 127.0.0.1:PORT with Python `websockets` and answers

- `GET /healthz`: 200 (readiness for support.server.start_process);
- any other plain request (no `Upgrade`): 200 with a JSON body {"path", "headers"};
- a WebSocket upgrade: accepts it and sends one text message with the same JSON.

`headers` is the list of [name, value] pairs exactly as received, so a test can check that a
header is present, absent or sent once. Used by tests/deploy/test_nginx_headers.py in place of
pylon, which does not echo request headers.
"""

from __future__ import annotations

import asyncio
import http
import json
import sys

import websockets


def describe(path, headers) -> str:
    return json.dumps({"path": path, "headers": [[k, v] for k, v in headers.raw_items()]})


async def process_request(path, headers):
    if path == "/healthz":
        return http.HTTPStatus.OK, [("Content-Type", "text/plain")], b"ok\n"
    if "upgrade" not in headers:
        return http.HTTPStatus.OK, [("Content-Type", "application/json")], describe(path, headers).encode()
    return None


async def handler(websocket, path=None):
    await websocket.send(describe(websocket.path, websocket.request_headers))
    await websocket.wait_closed()


async def main(port: int) -> None:
    async with websockets.serve(handler, "127.0.0.1", port, process_request=process_request):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
