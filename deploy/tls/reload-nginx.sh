#!/usr/bin/env bash
# certbot deploy hook: runs once after every successful issuance or renewal and makes Nginx
# pick up the new certificate. A reload (SIGHUP) starts new workers with the new certificate
# while the old workers finish their connections: WebSockets held open are not cut.
#
# Installed by `certbot-issue.sh` as --deploy-hook (kept in the renewal configuration), or copied
# to /etc/letsencrypt/renewal-hooks/deploy/. NGINX_CONF picks the configuration (its `pid` line
# says which master to signal); NGINX_BIN the binary.
set -euo pipefail

nginx_bin="${NGINX_BIN:-nginx}"
nginx_conf="${NGINX_CONF:-/etc/nginx/nginx.conf}"

# Never reload into a broken configuration: the old one keeps serving, and certbot logs why.
"$nginx_bin" -t -q -c "$nginx_conf"
"$nginx_bin" -c "$nginx_conf" -s reload
echo "reload-nginx.sh: reloaded nginx ($nginx_conf) for ${RENEWED_DOMAINS:-a new certificate}"
