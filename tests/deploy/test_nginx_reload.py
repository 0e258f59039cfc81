"""An Nginx reload and the WebSockets its old workers hold (deploy/nginx/nginx.conf
worker_shutdown_timeout, scaled down to 2 s here through render.sh's
NGINX_WORKER_SHUTDOWN_TIMEOUT; the shipped default is 5 minutes, test_nginx_config.py checks it):

- right after `nginx -s reload` a wss:// connection opened before it still echoes (the old worker
  keeps serving it), and a new connection is served by a new worker;
- after the timeout the old worker closes that connection (the client sees it end: it would
  reconnect) and exits, so no worker is left holding WebSockets forever; the new connection
  stays open and echoes.
"""

from __future__ import annotations

import asyncio
import contextlib

import websockets

from support.nginx import local_ca, nginx_tool, render, start_nginx, wss_connect
from support.server import poll, start_server

SHUTDOWN_TIMEOUT = 2  # seconds, worker_shutdown_timeout in this test


def worker_pids(master: int) -> set[int]:
    """The master's children (its worker processes, old and new)."""
    with open(f"/proc/{master}/task/{master}/children") as children:
        return {int(pid) for pid in children.read().split()}


def shutting_down(pids: set[int]) -> bool:
    """Every one of these workers has taken the reload (it retitles itself; it accepts no more)."""
    def title(pid: int) -> str:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                return cmdline.read().decode(errors="replace")
        except FileNotFoundError:
            return "exited"
    return all("shutting down" in title(pid) or title(pid) == "exited" for pid in pids)


def test_reload_closes_old_workers_websockets_after_worker_shutdown_timeout(tmp_path):
    tls = local_ca(tmp_path / "tls")
    with contextlib.ExitStack() as stack:
        pylon = stack.enter_context(start_server())
        nginx = stack.enter_context(start_nginx(render(
            tmp_path / "nginx", [pylon.address], tls,
            NGINX_WORKER_SHUTDOWN_TIMEOUT=f"{SHUTDOWN_TIMEOUT}s")))
        master = nginx.master_pid()

        async def scenario():
            async with wss_connect(nginx) as old:
                await old.send("before")
                assert await asyncio.wait_for(old.recv(), 5) == "before"
                old_workers = worker_pids(master)
                reload = nginx_tool(nginx.config, "-s", "reload")
                assert reload.returncode == 0, reload.stderr
                # The reload is done when the old workers accept no more and new ones run.
                poll(lambda: shutting_down(old_workers) and worker_pids(master) - old_workers, 10,
                     "the Nginx reload")
                await old.send("during")
                assert await asyncio.wait_for(old.recv(), 5) == "during"
                async with wss_connect(nginx) as new:
                    await new.send("new")
                    assert await asyncio.wait_for(new.recv(), 5) == "new"
                    try:
                        await asyncio.wait_for(old.recv(), SHUTDOWN_TIMEOUT + 10)
                        raise AssertionError("a message arrived on an idle connection")
                    except websockets.ConnectionClosed:
                        pass  # the old worker ended it when the timeout passed
                    except asyncio.TimeoutError:
                        raise AssertionError("the old worker kept its WebSocket past "
                                             f"worker_shutdown_timeout ({SHUTDOWN_TIMEOUT}s)")
                    # ... and exits, while the new generation serves on.
                    poll(lambda: not (worker_pids(master) & old_workers), 10,
                         "the old Nginx workers to exit")
                    await new.send("still here")
                    assert await asyncio.wait_for(new.recv(), 5) == "still here"

        asyncio.run(scenario())
