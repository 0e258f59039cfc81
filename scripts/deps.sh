#!/usr/bin/env bash
# Installs every Debian package that pylon's build, tests and tools need.
# Idempotent: prints nothing and touches nothing when everything is present.
set -euo pipefail

packages=(
  # toolchain
  cmake ninja-build g++ clang-14 libclang-rt-14-dev clang-format pkg-config
  # libraries (DESIGN.md "Chosen libraries")
  libssl-dev zlib1g-dev libsimdjson-dev libtomlplusplus-dev libcli11-dev
  libspdlog-dev libfmt-dev libhiredis-dev liburing-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # real peers used by the tests (prometheus: promtool + the server for tests/deploy;
  # prometheus-alertmanager: amtool; python3-yaml: the deploy tests read the YAML files;
  # python3-jwt + python3-cryptography: PyJWT mints the JWT test vectors, independently of pylon)
  python3 python3-pytest python3-websockets python3-yaml nodejs node-ws curl
  python3-jwt python3-cryptography
  prometheus prometheus-alertmanager
  # benchmark peers built by bench/peers (make bench): Boost.Beast, websocketpp on standalone
  # asio, Go gorilla/websocket (offline GOPATH build); Node ws is listed above
  libboost-dev libwebsocketpp-dev libasio-dev golang-go golang-github-gorilla-websocket-dev
  # deploy kit tests (tests/deploy/test_nginx*, test_tls*, test_stack*): a real Nginx, openssl,
  # certbot with its nginx authenticator, pebble (offline ACME server), envsubst (gettext-base)
  nginx openssl certbot python3-certbot-nginx pebble gettext-base
  # native TLS graded by testssl.sh (tests/integration/test_tls_testssl.py)
  testssl.sh
  # the live dashboard test (tests/browser): headless Chromium driven over the DevTools protocol;
  # certutil (libnss3-tools) puts the local CA in its NSS database for wss:// (test_tls_chromium.py)
  chromium libnss3-tools
  # pylon.js's minified size (bench/js_client.py)
  esbuild
  # the Redis cluster engine's tests (tests/unit/cluster, tests/integration/test_cluster_redis.py)
  redis-server redis-tools
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
