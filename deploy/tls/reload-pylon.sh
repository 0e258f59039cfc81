#!/usr/bin/env bash
# certbot deploy hook for pylon with native TLS (no proxy in front): runs once after every
# successful issuance or renewal, copies the new certificate and key where pylon reads them
# (certbot's own directory is root-only, pylon runs as its own user) and makes every pylon
# instance reload them. New handshakes get the new certificate; live connections stay.
#
# With OCSP stapling (tls_ocsp_stapling) it fetches the new certificate's response first
# (ocsp-fetch.sh beside this script, or PYLON_OCSP_FETCH): a certificate naming no responder is
# skipped, and a failed fetch only means pylon staples nothing until ocsp-refresh gets one.
#
# pylon also notices changed files by itself (tls_watch_interval); the signal makes it immediate.
#
# Installed as --deploy-hook, or copied to /etc/letsencrypt/renewal-hooks/deploy/.
#   RENEWED_LINEAGE  set by certbot: /etc/letsencrypt/live/NAME (fullchain.pem, privkey.pem)
#   PYLON_TLS_DIR    where pylon's tls_cert / tls_key point (default /etc/pylon/tls):
#                    server.pem (the chain) and server.key
#   PYLON_GROUP      group that may read the key (default pylon)
#   PYLON_PID        signal this process instead of `systemctl reload 'pylon@*'` (tests, no systemd)
set -euo pipefail

lineage="${RENEWED_LINEAGE:?RENEWED_LINEAGE is not set: run this as the certbot deploy hook}"
target="${PYLON_TLS_DIR:-/etc/pylon/tls}"
group="${PYLON_GROUP:-pylon}"

# Never hand pylon a pair that does not match: it would keep the old one and log why, but the
# operator learns it here, in certbot's log, at once.
cert_key=$(openssl x509 -in "$lineage/fullchain.pem" -noout -pubkey | openssl sha256)
key_key=$(openssl pkey -in "$lineage/privkey.pem" -pubout | openssl sha256)
if [ "$cert_key" != "$key_key" ]; then
  echo "reload-pylon.sh: $lineage/privkey.pem does not match fullchain.pem; nothing changed" >&2
  exit 1
fi

mkdir -p "$target"
# Written beside, then renamed over: pylon never reads a half-written file.
owner_group=()
if getent group "$group" >/dev/null 2>&1; then owner_group=(-g "$group"); fi
install -m 0644 "$lineage/fullchain.pem" "$target/.server.pem.new"
install -m 0640 "${owner_group[@]}" "$lineage/privkey.pem" "$target/.server.key.new"
mv -f "$target/.server.key.new" "$target/server.key"
mv -f "$target/.server.pem.new" "$target/server.pem"

# readlink: copied into renewal-hooks/deploy/ as a symlink, the script still finds its neighbour.
fetch="${PYLON_OCSP_FETCH:-$(dirname "$(readlink -f "$0")")/ocsp-fetch.sh}"
if [ -x "$fetch" ]; then
  "$fetch" "$target/server.pem" ||
    echo "reload-pylon.sh: no OCSP response for the new certificate; pylon staples none until a refresh gets one" >&2
fi

if [ -n "${PYLON_PID:-}" ]; then
  kill -HUP "$PYLON_PID"
else
  systemctl reload 'pylon@*'
fi
echo "reload-pylon.sh: installed the certificate for ${RENEWED_DOMAINS:-$lineage} in $target; pylon reloads it"
