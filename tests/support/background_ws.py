"""A Python `websockets` server on 127.0.0.1 (a port of the kernel's choosing), run by an event loop
of its own on a daemon thread, for tests that need a real third-party server beside pylon.

Subclasses define `async def handler(self, websocket, path=None)` and may define
`async def process_request(self, path, headers)` (websockets' legacy API, Debian's 10.4), and set
their own attributes before calling `super().__init__()`, which returns once `self.port` listens.
`close()` (or leaving a `with` block) stops the server and joins the thread."""

from __future__ import annotations

import asyncio
import threading

import websockets


class BackgroundServer:
    process_request = None

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.main(),),
                                       daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    async def main(self):
        self.stop = asyncio.Event()
        async with websockets.serve(self.handler, "127.0.0.1", 0,
                                    process_request=self.process_request) as server:
            self.port = server.sockets[0].getsockname()[1]
            self.ready.set()
            await self.stop.wait()

    async def handler(self, websocket, path=None):
        raise NotImplementedError

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
