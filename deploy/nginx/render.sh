#!/usr/bin/env bash
# Renders the Nginx configuration for pylon into OUTDIR: nginx.conf, pylon.conf (both filled in
# from the templates next to this script) and ffdhe2048.pem. The one way to make the config:
# production, `make stack` and the tests all call this script, with different variables.
#
#   deploy/nginx/render.sh OUTDIR
#   sudo PYLON_DOMAINS="example.com www.example.com" deploy/nginx/render.sh /etc/nginx
#
# Variables (defaults: a Debian server with Let's Encrypt certificates for the first domain):
#   PYLON_DOMAINS            server_name(s)                        example.com
#   PYLON_UPSTREAMS          HOST:PORT of each pylon instance      127.0.0.1:9001 127.0.0.1:9002 127.0.0.1:9003
#   NGINX_HTTP_LISTEN        listen of the redirect server         80
#   NGINX_HTTPS_LISTEN       listen of the TLS server              443
#   TLS_CERTIFICATE          certificate chain                     /etc/letsencrypt/live/DOMAIN/fullchain.pem
#   TLS_CERTIFICATE_KEY      its key                               /etc/letsencrypt/live/DOMAIN/privkey.pem
#   TLS_TRUSTED_CERTIFICATE  chain for OCSP stapling verification  /etc/letsencrypt/live/DOMAIN/chain.pem
#   ACME_WEBROOT             root of /.well-known/acme-challenge/  /var/www/letsencrypt
#   WS_PROXY_TIMEOUT         proxy_read/send_timeout of /ws        3600s
#   NGINX_WORKER_SHUTDOWN_TIMEOUT  how long an old worker keeps its WebSockets after a reload  5m
#   NGINX_USER NGINX_PID NGINX_ERROR_LOG NGINX_ACCESS_LOG NGINX_TEMP_DIR
#   NGINX_WORKER_CONNECTIONS NGINX_RLIMIT_NOFILE               see nginx.conf
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"

export PYLON_DOMAINS="${PYLON_DOMAINS:-example.com}"
primary="${PYLON_DOMAINS%% *}"
export PYLON_UPSTREAMS="${PYLON_UPSTREAMS:-127.0.0.1:9001 127.0.0.1:9002 127.0.0.1:9003}"
export NGINX_HTTP_LISTEN="${NGINX_HTTP_LISTEN:-80}"
export NGINX_HTTPS_LISTEN="${NGINX_HTTPS_LISTEN:-443}"
export TLS_CERTIFICATE="${TLS_CERTIFICATE:-/etc/letsencrypt/live/$primary/fullchain.pem}"
export TLS_CERTIFICATE_KEY="${TLS_CERTIFICATE_KEY:-/etc/letsencrypt/live/$primary/privkey.pem}"
export TLS_TRUSTED_CERTIFICATE="${TLS_TRUSTED_CERTIFICATE:-/etc/letsencrypt/live/$primary/chain.pem}"
export ACME_WEBROOT="${ACME_WEBROOT:-/var/www/letsencrypt}"
export WS_PROXY_TIMEOUT="${WS_PROXY_TIMEOUT:-3600s}"
export NGINX_WORKER_SHUTDOWN_TIMEOUT="${NGINX_WORKER_SHUTDOWN_TIMEOUT:-5m}"
export NGINX_USER="${NGINX_USER:-www-data}"
export NGINX_PID="${NGINX_PID:-/run/nginx.pid}"
export NGINX_ERROR_LOG="${NGINX_ERROR_LOG:-/var/log/nginx/error.log}"
export NGINX_ACCESS_LOG="${NGINX_ACCESS_LOG:-/var/log/nginx/access.log}"
export NGINX_TEMP_DIR="${NGINX_TEMP_DIR:-/var/lib/nginx}"
export NGINX_WORKER_CONNECTIONS="${NGINX_WORKER_CONNECTIONS:-65536}"
export NGINX_RLIMIT_NOFILE="${NGINX_RLIMIT_NOFILE:-200000}"
export NGINX_CONF_DIR="$out"
export NGINX_SERVER_NAMES="$PYLON_DOMAINS"

# Derived values.
servers=""
for upstream in $PYLON_UPSTREAMS; do
  servers+="    server $upstream max_fails=0;"$'\n'
done
export PYLON_UPSTREAM_SERVERS="${servers%$'\n'}"
https_port="${NGINX_HTTPS_LISTEN##*:}"
https_port="${https_port%% *}"
if [ "$https_port" = 443 ]; then
  export HTTPS_PORT_SUFFIX=""
else
  export HTTPS_PORT_SUFFIX=":$https_port"
fi

# Only these names are substituted: $host, $remote_addr ... are Nginx's.
names='${NGINX_USER} ${NGINX_PID} ${NGINX_ERROR_LOG} ${NGINX_ACCESS_LOG} ${NGINX_TEMP_DIR}
${NGINX_WORKER_CONNECTIONS} ${NGINX_RLIMIT_NOFILE} ${NGINX_CONF_DIR} ${NGINX_SERVER_NAMES}
${NGINX_HTTP_LISTEN} ${NGINX_HTTPS_LISTEN} ${HTTPS_PORT_SUFFIX} ${PYLON_UPSTREAM_SERVERS}
${TLS_CERTIFICATE} ${TLS_CERTIFICATE_KEY} ${TLS_TRUSTED_CERTIFICATE} ${ACME_WEBROOT}
${WS_PROXY_TIMEOUT} ${NGINX_WORKER_SHUTDOWN_TIMEOUT}'
for file in nginx.conf pylon.conf; do
  envsubst "$names" < "$here/$file" > "$out/$file.tmp"
  if grep -n '\${[A-Z_]*}' "$out/$file.tmp" >&2; then
    echo "render.sh: unfilled template variable in $file (above)" >&2
    exit 1
  fi
  mv "$out/$file.tmp" "$out/$file"
done
cp "$here/ffdhe2048.pem" "$out/ffdhe2048.pem"
