"""Bytes of pylon RSS per idle connection, plain ws:// vs native wss:// (docs/benchmarks.md
"Native TLS"): PYLON_TLS_DIR=DIR /usr/bin/python3 bench/tls_idle_memory.py [CONNECTIONS]."""
import asyncio, os, ssl, subprocess, sys, time, socket
BIN = os.environ.get("PYLON_BIN", "build/pylon")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
# A directory from deploy/tls/local-ca.sh (ca.pem, server.pem, server.key).
TLS = os.environ.get("PYLON_TLS_DIR", ".tls")

def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

async def hold(url, ctx, n):
    import websockets
    sem = asyncio.Semaphore(200)
    async def one():
        async with sem:
            return await websockets.connect(url, ssl=ctx, ping_interval=None, open_timeout=60)
    return await asyncio.gather(*(one() for _ in range(n)))

def measure(tls):
    port = 18500 + (1 if tls else 0)
    args = [BIN, "serve", "--listen", f"127.0.0.1:{port}", "--threads", "1", "--log-level", "warn", "--dashboard", "false"]
    ctx = None
    if tls:
        args += ["--tls-cert", f"{TLS}/server.pem", "--tls-key", f"{TLS}/server.key"]
        ctx = ssl.create_default_context(cafile=f"{TLS}/ca.pem")
    p = subprocess.Popen(args)
    deadline = time.monotonic() + 10
    while True:  # until the listener answers
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "pylon did not start"
            time.sleep(0.05)
    scheme = "wss" if tls else "ws"
    async def run():
        warm = await hold(f"{scheme}://localhost:{port}/ws/echo", ctx, 200)
        before = rss(p.pid)
        conns = await hold(f"{scheme}://localhost:{port}/ws/echo", ctx, N)
        for c in conns[:50]:
            await c.send("x"); await c.recv()
        after = rss(p.pid)
        for c in conns + warm:
            c.transport.abort()
        return (after - before) / N
    per = asyncio.run(run())
    p.terminate(); p.wait()
    return per

plain = measure(False)
tls = measure(True)
print(f"connections={N} plain={plain:.0f} B/conn wss={tls:.0f} B/conn extra={tls-plain:.0f} B/conn")
