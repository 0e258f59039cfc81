#!/usr/bin/env bash
# Obtains a Let's Encrypt certificate with certbot and arranges for renewals to reload Nginx.
#
#   deploy/tls/certbot-issue.sh [--nginx | --webroot DIR] [--staging] [--email ADDRESS]
#                               [--print] -d NAME [-d NAME ...]
#
#   --nginx         certbot's nginx authenticator: it adds the challenge location to the port-80
#                   server whose server_name has the name, then removes it (default).
#   --webroot DIR   writes the challenge under DIR/.well-known/acme-challenge/, which
#                   deploy/nginx/pylon.conf serves on port 80 (ACME_WEBROOT). Nginx is untouched.
#   --staging       Let's Encrypt's staging CA: untrusted certificates, generous rate limits.
#                   Use it until the whole flow works.
#   --print         print the certbot command instead of running it.
#
# The certificate lands in /etc/letsencrypt/live/FIRST-NAME/ (fullchain.pem, privkey.pem,
# chain.pem: the paths pylon.conf uses). Renewal: Debian's certbot.timer (or deploy/tls's timer
# or cron line) runs `certbot renew`, which re-runs the deploy hook recorded here.
# Environment: CERTBOT (binary), CERTBOT_SERVER (another ACME directory URL, e.g. a local
# pebble), CERTBOT_DIR (config, work and log dirs under it instead of the system ones),
# NGINX_CONF and NGINX_BIN (passed to the hook and the nginx authenticator).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
authenticator=nginx webroot="" staging=0 email="" print=0 domains=()
while [ $# -gt 0 ]; do
  case "$1" in
    --nginx) authenticator=nginx ;;
    --webroot) authenticator=webroot webroot="$2"; shift ;;
    --staging) staging=1 ;;
    --email) email="$2"; shift ;;
    --print) print=1 ;;
    -d) domains+=("$2"); shift ;;
    *) echo "certbot-issue.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ ${#domains[@]} -eq 0 ]; then
  echo "certbot-issue.sh: at least one -d NAME" >&2
  exit 2
fi

nginx_conf="${NGINX_CONF:-/etc/nginx/nginx.conf}"
cmd=("${CERTBOT:-certbot}" certonly --non-interactive --agree-tos --key-type ecdsa)
if [ -n "$email" ]; then cmd+=(--email "$email"); else cmd+=(--register-unsafely-without-email); fi
if [ "$authenticator" = nginx ]; then
  cmd+=(--nginx --nginx-server-root "$(dirname "$nginx_conf")" --nginx-ctl "${NGINX_BIN:-nginx}")
else
  cmd+=(--webroot --webroot-path "$webroot")
fi
for d in "${domains[@]}"; do cmd+=(-d "$d"); done
[ "$staging" = 1 ] && cmd+=(--staging)
[ -n "${CERTBOT_SERVER:-}" ] && cmd+=(--server "$CERTBOT_SERVER")
if [ -n "${CERTBOT_DIR:-}" ]; then
  cmd+=(--config-dir "$CERTBOT_DIR/config" --work-dir "$CERTBOT_DIR/work" --logs-dir "$CERTBOT_DIR/logs")
fi
# Kept in the renewal configuration, so every later `certbot renew` reloads Nginx too. certbot
# wants the first word of a hook to be a command on PATH: hence `env`.
cmd+=(--deploy-hook "env NGINX_CONF=$nginx_conf NGINX_BIN=${NGINX_BIN:-nginx} $here/reload-nginx.sh")

if [ "$print" = 1 ]; then
  printf '%q ' "${cmd[@]}"
  echo
  exit 0
fi
exec "${cmd[@]}"
