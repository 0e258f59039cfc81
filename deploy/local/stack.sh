#!/usr/bin/env bash
# The whole pylon topology on one machine, as plain processes on 127.0.0.1 (`make stack`,
# `make stack-down`):
#
#   Nginx    https://localhost:8443 (certificate from a local CA), http://localhost:8880 -> 301
#   pylon    three `pylon serve` on 127.0.0.1:9001-9003, behind Nginx with least_conn
#   Redis    127.0.0.1:9379, with STACK_ENGINE=redis: the instances share topics through it
#            (docs/cluster.md); no persistence (--save '' --appendonly no)
#   Prometheus 127.0.0.1:9090 and Alertmanager 127.0.0.1:9093 with deploy/prometheus and
#            deploy/alertmanager, when they are installed
#
#   deploy/local/stack.sh up|down|status
#
# State lives in STACK_DIR (default .stack/ in the checkout, git-ignored): tls/ (ca.pem is the CA
# to trust), nginx/ (rendered config), logs/, run/*.pid. `up` twice is harmless (running
# processes are kept); `down` stops every process by the PID it recorded.
# Environment: PYLON_BIN (default build/pylon), STACK_DIR, STACK_HTTPS_PORT, STACK_HTTP_PORT,
# STACK_PYLON_PORTS ("9001 9002 9003"), STACK_PROMETHEUS_PORT, STACK_ALERTMANAGER_PORT,
# STACK_OBSERVABILITY (0: no Prometheus/Alertmanager), STACK_ENGINE (memory, the default, or
# redis), STACK_REDIS_PORT (9379), STACK_REDIS_PREFIX (pylon:), STACK_API_KEY (when set, the
# instances get an API key "stack" with every scope, read from this environment variable, and
# the backend API is on), STACK_PYLON_CONFIG (a TOML file every instance reads with --config,
# e.g. the namespaces that keep a history; the stack's own flags come after it).
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
state="${STACK_DIR:-$repo/.stack}"
pylon_bin="${PYLON_BIN:-$repo/build/pylon}"
https_port="${STACK_HTTPS_PORT:-8443}"
http_port="${STACK_HTTP_PORT:-8880}"
pylon_ports="${STACK_PYLON_PORTS:-9001 9002 9003}"
prometheus_port="${STACK_PROMETHEUS_PORT:-9090}"
alertmanager_port="${STACK_ALERTMANAGER_PORT:-9093}"
observability="${STACK_OBSERVABILITY:-1}"
engine="${STACK_ENGINE:-memory}"
redis_port="${STACK_REDIS_PORT:-9379}"
redis_prefix="${STACK_REDIS_PREFIX:-pylon:}"
api_key="${STACK_API_KEY:-}"
pylon_config="${STACK_PYLON_CONFIG:-}"
run="$state/run"
logs="$state/logs"

alive() {  # alive NAME: the process recorded in run/NAME.pid exists and is what we started
  local file="$run/$1.pid" pid
  [ -s "$file" ] || return 1
  pid="$(cat "$file")"
  kill -0 "$pid" 2>/dev/null || return 1
  # Not a recycled PID: its command line still names what we started.
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$(cat "$run/$1.cmd")"
}

exited() {  # exited PID: gone, or a zombie waiting for a parent that is not this script
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  stat="${stat##*) }"
  [ "${stat%% *}" = Z ]
}

start() {  # start NAME MARKER ARGV...: background ARGV (no subshell, so $! is its PID)
  local name="$1" marker="$2"
  shift 2
  if alive "$name"; then return 0; fi
  printf '%s' "$marker" > "$run/$name.cmd"
  "$@" < /dev/null >> "$logs/$name.log" 2>&1 &
  echo $! > "$run/$name.pid"
}

wait_http() {  # wait_http NAME URL EXPECTED-STATUS
  local i status
  for i in $(seq 1 150); do
    status="$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 --noproxy '*' "$2" || true)"
    [ "$status" = "$3" ] && return 0
    if ! alive "$1"; then
      echo "stack.sh: $1 exited; its log ($logs/$1.log):" >&2
      tail -n 20 "$logs/$1.log" >&2
      return 1
    fi
    sleep 0.1  # polling a listener that is starting
  done
  echo "stack.sh: $1 not ready at $2 after 15 s; see $logs/$1.log" >&2
  return 1
}

wait_redis() {  # the Redis just started answers PING
  local i pid
  pid="$(cat "$run/redis.pid")"
  for i in $(seq 1 150); do
    [ "$(redis_cli ping 2>/dev/null)" = PONG ] && return 0
    if exited "$pid"; then  # not alive(): its title changes once it runs
      echo "stack.sh: redis-server exited (port $redis_port taken?); its log ($logs/redis.log):" >&2
      tail -n 20 "$logs/redis.log" >&2
      return 1
    fi
    sleep 0.1  # polling a listener that is starting
  done
  echo "stack.sh: redis-server not answering on 127.0.0.1:$redis_port after 15 s" >&2
  return 1
}

redis_cli() {
  redis-cli -h 127.0.0.1 -p "$redis_port" "$@"
}

wait_engine() {  # wait_engine NAME METRICS-URL: the instance's Redis engine is up
  local i
  for i in $(seq 1 150); do
    curl -s --max-time 1 --noproxy '*' "$2" 2>/dev/null | grep -q '^pylon_engine_up 1' && return 0
    if ! alive "$1"; then
      echo "stack.sh: $1 exited; its log ($logs/$1.log):" >&2
      tail -n 20 "$logs/$1.log" >&2
      return 1
    fi
    sleep 0.1  # polling the engine's connection to Redis
  done
  echo "stack.sh: $1's Redis engine not up after 15 s (pylon_engine_up); see $logs/$1.log" >&2
  return 1
}

up() {
  if [ ! -x "$pylon_bin" ]; then
    echo "stack.sh: no pylon binary at $pylon_bin (make build, or set PYLON_BIN)" >&2
    exit 1
  fi
  case "$engine" in
    memory | redis) ;;
    *) echo "stack.sh: STACK_ENGINE=$engine: memory or redis" >&2; exit 1 ;;
  esac
  if [ "$engine" = redis ] && ! { command -v redis-server && command -v redis-cli; } >/dev/null; then
    echo "stack.sh: STACK_ENGINE=redis needs redis-server and redis-cli (scripts/deps.sh)" >&2
    exit 1
  fi
  mkdir -p "$run" "$logs" "$state/nginx" "$state/acme"
  # `up` keeps running instances: refuse to mix engines rather than silently keep the old one.
  local port running_engine
  running_engine="$(cat "$run/engine" 2>/dev/null || echo memory)"
  for port in $pylon_ports; do
    if alive "pylon-$port" && [ "$running_engine" != "$engine" ]; then
      echo "stack.sh: the stack runs with engine $running_engine, not $engine: make stack-down first" >&2
      exit 1
    fi
  done
  [ -s "$state/tls/server.pem" ] || "$repo/deploy/tls/local-ca.sh" "$state/tls" >/dev/null

  # A drain ends as soon as every client has answered its 1001; the timeout only bounds a client
  # too slow to answer (a loaded test machine), and stays under `down`'s wait before SIGKILL.
  local pylon_flags=(--drain-window 1 --drain-timeout 15)
  if [ -n "$pylon_config" ]; then
    [ -r "$pylon_config" ] || { echo "stack.sh: STACK_PYLON_CONFIG=$pylon_config: not a readable file" >&2; exit 1; }
    pylon_flags=(--config "$pylon_config" "${pylon_flags[@]}")
  fi
  # The secret reaches pylon through its environment, never its command line (visible in ps).
  if [ -n "$api_key" ]; then
    export STACK_API_KEY="$api_key"
    pylon_flags+=(--api-key stack:key_env=STACK_API_KEY --api-key stack:scopes=publish,disconnect)
  fi
  if [ "$engine" = redis ]; then
    mkdir -p "$state/redis"
    start redis "redis-server 127.0.0.1:$redis_port" \
      redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
      --daemonize no --dir "$state/redis" --proc-title-template '{title} {listen-addr}'
    wait_redis
    pylon_flags+=(--engine redis --redis-url "redis://127.0.0.1:$redis_port" --redis-prefix "$redis_prefix")
  fi
  echo "$engine" > "$run/engine"

  upstreams=""
  for port in $pylon_ports; do
    start "pylon-$port" "--listen 127.0.0.1:$port" \
      "$pylon_bin" serve --listen "127.0.0.1:$port" "${pylon_flags[@]}"
    upstreams+="127.0.0.1:$port "
  done
  for port in $pylon_ports; do wait_http "pylon-$port" "http://127.0.0.1:$port/healthz" 200; done
  if [ "$engine" = redis ]; then
    for port in $pylon_ports; do wait_engine "pylon-$port" "http://127.0.0.1:$port/metrics"; done
  fi

  local user limit
  user="$(id -un)"
  limit="$(ulimit -Hn)"
  [ "$limit" = unlimited ] && limit=200000
  PYLON_DOMAINS="localhost 127.0.0.1" PYLON_UPSTREAMS="$upstreams" \
  NGINX_HTTP_LISTEN="127.0.0.1:$http_port" NGINX_HTTPS_LISTEN="127.0.0.1:$https_port" \
  TLS_CERTIFICATE="$state/tls/server.pem" TLS_CERTIFICATE_KEY="$state/tls/server.key" \
  TLS_TRUSTED_CERTIFICATE="$state/tls/ca.pem" ACME_WEBROOT="$state/acme" \
  NGINX_USER="$user" NGINX_PID="$run/nginx.master" NGINX_ERROR_LOG="$logs/nginx-error.log" \
  NGINX_ACCESS_LOG="$logs/nginx-access.log" NGINX_TEMP_DIR="$state/nginx" \
  NGINX_RLIMIT_NOFILE="$((limit < 200000 ? limit : 200000))" NGINX_WORKER_CONNECTIONS=8192 \
    "$repo/deploy/nginx/render.sh" "$state/nginx/conf"
  start nginx "$state/nginx/conf/nginx.conf" \
    nginx -p "$state/nginx" -e "$logs/nginx-error.log" -c "$state/nginx/conf/nginx.conf" -g "daemon off;"
  wait_http nginx "http://127.0.0.1:$http_port/" 301

  if [ "$observability" = 1 ] && command -v prometheus >/dev/null && command -v prometheus-alertmanager >/dev/null; then
    mkdir -p "$state/prometheus" "$state/alertmanager"
    # deploy/prometheus/prometheus.yml with this stack's ports; rules from deploy/ as they are.
    /usr/bin/python3 - "$repo" "$state/prometheus/prometheus.yml" "$pylon_ports" "$prometheus_port" "$alertmanager_port" <<'PY'
import sys, yaml
repo, out, pylon_ports, prometheus_port, alertmanager_port = sys.argv[1:]
with open(f"{repo}/deploy/prometheus/prometheus.yml") as f:
    config = yaml.safe_load(f)
config["rule_files"] = [f"{repo}/deploy/prometheus/{path}" for path in config.get("rule_files", [])]
config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
targets = {"pylon": [f"127.0.0.1:{p}" for p in pylon_ports.split()],
           "prometheus": [f"127.0.0.1:{prometheus_port}"], "alertmanager": [f"127.0.0.1:{alertmanager_port}"]}
for job in config["scrape_configs"]:
    if job["job_name"] in targets:
        job["static_configs"] = [{"targets": targets[job["job_name"]]}]
with open(out, "w") as f:
    yaml.safe_dump(config, f, sort_keys=False)
PY
    start alertmanager "--web.listen-address=127.0.0.1:$alertmanager_port" \
      prometheus-alertmanager --config.file="$repo/deploy/alertmanager/alertmanager.yml" \
      --storage.path="$state/alertmanager" --web.listen-address="127.0.0.1:$alertmanager_port" \
      --cluster.listen-address=
    start prometheus "--web.listen-address=127.0.0.1:$prometheus_port" \
      prometheus --config.file="$state/prometheus/prometheus.yml" \
      --storage.tsdb.path="$state/prometheus/data" --web.listen-address="127.0.0.1:$prometheus_port"
    wait_http alertmanager "http://127.0.0.1:$alertmanager_port/-/ready" 200
    wait_http prometheus "http://127.0.0.1:$prometheus_port/-/ready" 200
  fi
  status
}

status() {
  echo "pylon stack ($state):"
  alive nginx && echo "  https://localhost:$https_port/  (wss://localhost:$https_port/ws/echo; trust $state/tls/ca.pem)" \
              && echo "  http://localhost:$http_port/   (redirects to HTTPS)"
  for port in $pylon_ports; do
    alive "pylon-$port" && echo "  http://127.0.0.1:$port/      pylon instance (/metrics, /healthz)"
  done
  alive redis && echo "  redis://127.0.0.1:$redis_port   Redis (engine = redis, prefix $redis_prefix)"
  alive prometheus && echo "  http://127.0.0.1:$prometheus_port/  Prometheus"
  alive alertmanager && echo "  http://127.0.0.1:$alertmanager_port/  Alertmanager"
  echo "  logs: $logs   stop: make stack-down"
}

down() {
  [ -d "$run" ] || { echo "stack.sh: nothing running ($state)"; return 0; }
  local file name pid i
  # Nginx first, so no new connection reaches a pylon that is draining.
  # Redis last, so the instances do not lose their engine while they drain.
  for name in nginx prometheus alertmanager $(cd "$run" && ls pylon-*.pid 2>/dev/null | sed 's/\.pid$//') redis; do
    file="$run/$name.pid"
    [ -f "$file" ] || continue
    if alive "$name"; then
      pid="$(cat "$file")"
      kill -TERM "$pid" 2>/dev/null || true
      for i in $(seq 1 200); do
        exited "$pid" && break
        sleep 0.1  # polling the process's exit (a pylon drains for up to 15 s)
      done
      if ! exited "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
      echo "stopped $name (pid $pid)"
    fi
    rm -f "$file" "$run/$name.cmd"
  done
  rm -f "$run/engine"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
