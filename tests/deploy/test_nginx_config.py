"""Static checks of the shipped Nginx configuration (deploy/nginx), rendered by render.sh:

- with every default (a production server: ports 80/443, Let's Encrypt paths) render.sh leaves
  no template variable behind, and the result passes `nginx -t` once the paths that only exist
  on a server (certificate, logs, pid, temp dirs) point at test files;
- the test rendering (free ports, local CA) passes `nginx -t` as well;
- `nginx -T` (the configuration as Nginx parsed it) has what docs/deployment.md promises: the
  /ws location's proxy_read_timeout well above pylon's default ping_interval (read from
  docs/configuration.md) and Nginx's 60 s default, HTTP/1.1 with Upgrade and the
  $connection_upgrade map, forwarding headers, buffering off; least_conn with a shared zone;
  TLS 1.2/1.3 only with the Mozilla intermediate ciphers; HSTS; /metrics denied; a
  worker_shutdown_timeout, so a reload does not leave old workers holding WebSockets forever
  (test_nginx_reload.py shows what it does).
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from support.nginx import RENDER, local_ca, nginx_tool, render
from support.server import REPO_DIR

MOZILLA_INTERMEDIATE = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                        "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305")
PRODUCTION = {"NGINX_WORKER_CONNECTIONS": "65536", "NGINX_RLIMIT_NOFILE": "200000",
              "PYLON_DOMAINS": "example.com www.example.com",
              "NGINX_HTTP_LISTEN": "80", "NGINX_HTTPS_LISTEN": "443"}


# ---------------------------------------------------------------------------- a tiny parser

def parse(text: str) -> list:
    """Nginx configuration -> [(name, [args], children or None)]. Enough for `nginx -T`
    output of these files: comments, quotes, blocks; no `*_by_lua` blocks."""
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[{};]|[^\s{};"\']+',
                        re.sub(r"(?m)(^|\s)#.*$", r"\1", text))
    stack, current, words = [], [], []
    for token in tokens:
        if token == ";":
            current.append((words[0], words[1:], None))
            words = []
        elif token == "{":
            node = (words[0], words[1:], [])
            current.append(node)
            stack.append(current)
            current, words = node[2], []
        elif token == "}":
            current = stack.pop()
        else:
            words.append(token.strip("\"'") if token[0] in "\"'" else token)
    assert not stack and not words, "unbalanced configuration"
    return current


def parse_dump(dump: str) -> list:
    """`nginx -T` output (each file after a `# configuration file PATH:` line) -> the main
    file's tree with every `include` replaced by the included file's nodes."""
    files = dict(re.findall(r"(?ms)^# configuration file (\S+):\n(.*?)(?=^# configuration file |\Z)", dump))
    assert files, dump[:500]

    def expand(nodes: list) -> list:
        out = []
        for name, args, children in nodes:
            if name == "include" and args[0] in files:
                out += expand(parse(files[args[0]]))
            else:
                out.append((name, args, expand(children) if children is not None else None))
        return out

    return expand(parse(next(iter(files.values()))))


def find(nodes: list, name: str, *args: str) -> list:
    return [n for n in nodes if n[0] == name and (not args or tuple(n[1][:len(args)]) == args)]


def one(nodes: list, name: str, *args: str):
    found = find(nodes, name, *args)
    assert len(found) == 1, f"{name} {args}: {len(found)} found"
    return found[0]


def seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value)
    assert match, value
    return int(match.group(1)) * units[match.group(2) or "s"]


def default_ping_interval() -> float:
    for line in (REPO_DIR / "docs" / "configuration.md").read_text().splitlines():
        if line.startswith("| `ping_interval`"):
            return float(line.split("|")[2].strip(" `"))
    pytest.fail("ping_interval not found in docs/configuration.md")


# ---------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return local_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def production(tmp_path_factory, tls):
    """The defaults, with only the server-only paths made local (listen 80/443 kept)."""
    return render(tmp_path_factory.mktemp("production"),
                  [("127.0.0.1", 9001), ("127.0.0.1", 9002), ("127.0.0.1", 9003)], tls, **PRODUCTION)


@pytest.fixture(scope="module")
def parsed(production):
    result = nginx_tool(production, "-T")
    assert result.returncode == 0, result.stderr
    tree = parse_dump(result.stdout)
    http = one(tree, "http")[2]
    return tree, http


def test_render_with_all_defaults_fills_every_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NGINX_", "TLS_", "PYLON_", "WS_", "ACME_"))}
    result = subprocess.run([str(RENDER), str(tmp_path)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    site = (tmp_path / "pylon.conf").read_text()
    main = (tmp_path / "nginx.conf").read_text()
    assert "${" not in site and "${" not in main
    assert "ssl_certificate /etc/letsencrypt/live/example.com/fullchain.pem;" in site
    assert "ssl_certificate_key /etc/letsencrypt/live/example.com/privkey.pem;" in site
    assert "listen 443 ssl http2;" in site and "listen 80;" in site
    assert "return 301 https://$host$request_uri;" in site  # no port suffix on 443
    assert f"include {tmp_path}/pylon.conf;" in main
    for port in (9001, 9002, 9003):
        assert f"server 127.0.0.1:{port} " in site


def test_production_configuration_passes_nginx_t(production):
    result = nginx_tool(production, "-t")
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_test_configuration_passes_nginx_t(tmp_path, tls):
    config = render(tmp_path, [("127.0.0.1", 1)], tls, WS_PROXY_TIMEOUT="3s")
    result = nginx_tool(config, "-t")
    assert result.returncode == 0, result.stderr


def test_websocket_location_timeouts_are_above_the_heartbeat(parsed):
    _, http = parsed
    tls_server = next(s for s in find(http, "server") if find(s[2], "ssl_certificate"))
    ws = one(tls_server[2], "location", "~", "^/ws(/|$)")[2]
    ping = default_ping_interval()
    read_timeout = seconds(one(ws, "proxy_read_timeout")[1][0])
    assert read_timeout >= 60 and read_timeout > 2 * ping, (read_timeout, ping)
    assert seconds(one(ws, "proxy_send_timeout")[1][0]) >= 60
    assert one(ws, "proxy_http_version")[1] == ["1.1"]
    assert one(ws, "proxy_set_header", "Upgrade")[1] == ["Upgrade", "$http_upgrade"]
    assert one(ws, "proxy_set_header", "Connection")[1] == ["Connection", "$connection_upgrade"]
    for header in ("Host", "X-Real-IP", "X-Forwarded-For", "X-Forwarded-Proto"):
        one(ws, "proxy_set_header", header)
    assert one(ws, "proxy_buffering")[1] == ["off"]
    assert one(ws, "proxy_pass")[1] == ["http://pylon"]


def test_old_workers_give_up_their_websockets_after_a_reload(parsed):
    tree, _ = parsed
    # Long enough for most clients to leave by themselves, short enough that reloads (one per
    # certificate renewal at least) do not pile up old workers.
    assert 60 <= seconds(one(tree, "worker_shutdown_timeout")[1][0]) <= 3600


def test_connection_upgrade_map(parsed):
    _, http = parsed
    mapping = one(http, "map", "$http_upgrade", "$connection_upgrade")[2]
    entries = {name: args[0] for name, args, _ in mapping}
    assert entries == {"default": "upgrade", "": "close"}


def test_upstream_least_conn_with_shared_zone(parsed):
    _, http = parsed
    upstream = one(http, "upstream", "pylon")[2]
    one(upstream, "least_conn")
    one(upstream, "zone")
    servers = [args[0] for name, args, _ in upstream if name == "server"]
    assert servers == ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"]


def test_tls_settings(parsed):
    _, http = parsed
    server = next(s for s in find(http, "server") if find(s[2], "ssl_certificate"))[2]
    assert one(server, "listen")[1][1:] == ["ssl", "http2"]
    assert one(server, "ssl_protocols")[1] == ["TLSv1.2", "TLSv1.3"]
    assert one(server, "ssl_ciphers")[1] == [MOZILLA_INTERMEDIATE]
    assert one(server, "ssl_session_tickets")[1] == ["off"]
    assert one(server, "ssl_stapling")[1] == ["on"]
    hsts = one(server, "add_header", "Strict-Transport-Security")[1]
    assert hsts[1].startswith("max-age=63072000") and hsts[-1] == "always"
    metrics = one(server, "location", "^~", "/metrics")[2]
    one(metrics, "deny", "all")


def test_plain_server_redirects_except_acme(parsed):
    _, http = parsed
    plain = next(s for s in find(http, "server") if not find(s[2], "ssl_certificate"))[2]
    assert one(plain, "listen")[1] == ["80"]
    one(plain, "location", "^~", "/.well-known/acme-challenge/")
    root = one(plain, "location", "/")[2]
    assert one(root, "return")[1] == ["301", "https://$host$request_uri"]
