#!/usr/bin/env bash
# Fetches the OCSP response pylon staples (tls_ocsp_stapling) for each certificate file: asks the
# responder the certificate names (authorityInfoAccess), checks the answer (signed by the
# certificate's issuer, about this certificate, with a nextUpdate) and writes it, DER, as
# CERT_FILE.ocsp, renamed into place so that pylon never reads half a response.
#
#   deploy/tls/ocsp-fetch.sh CERT_FILE ...
#
# CERT_FILE is what tls_cert or a tls_sni_certs entry points at: the certificate, then its chain
# (the issuer second, as certbot's fullchain.pem). reload-pylon.sh runs this after each renewal,
# ocsp-refresh.timer (or ocsp-refresh.cron) every 6 hours: a response lasts days, not months.
# pylon picks the new file up by itself (tls_watch_interval) or on SIGHUP.
#
# A certificate that names no OCSP responder (Let's Encrypt stopped putting one in its
# certificates in 2025) is skipped with a message: nothing to staple, not an error. A revoked
# certificate's response is written all the same (it is the truth; pylon staples it) with a
# warning; "unknown" is not. Exit status 1 when some certificate got no response (its file, if
# any, is left as it was), else 0.
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 CERT_FILE ..." >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# fetch CERT_FILE: 0 written or nothing to fetch, 1 failed (said why on stderr).
fetch() {
  local chain="$1" here="$work/$2"
  mkdir -p "$here"
  # One file per certificate of the chain: c1.pem is the certificate, c2.pem its issuer.
  awk -v out="$here/c" '/-----BEGIN CERTIFICATE-----/ { n++ } n { print > (out n ".pem") }' \
    "$chain"
  if [ ! -s "$here/c1.pem" ]; then
    echo "ocsp-fetch.sh: $chain: no certificate in it" >&2
    return 1
  fi
  local url
  url=$(openssl x509 -in "$here/c1.pem" -noout -ocsp_uri)
  if [ -z "$url" ]; then
    echo "ocsp-fetch.sh: $chain names no OCSP responder; nothing to staple"
    return 0
  fi
  if [ ! -s "$here/c2.pem" ]; then
    echo "ocsp-fetch.sh: $chain holds no issuer after the certificate (it must be the chain)" >&2
    return 1
  fi
  # No nonce: one response is stapled to every handshake, and responders that pre-sign their
  # answers (all the big CAs) ignore it. The issuer is the one trust anchor, as pylon's check.
  if ! openssl ocsp -issuer "$here/c2.pem" -cert "$here/c1.pem" -url "$url" -no_nonce \
    -timeout 30 -CAfile "$here/c2.pem" -partial_chain -respout "$here/response.der" \
    >"$here/out" 2>&1; then
    echo "ocsp-fetch.sh: $chain: $url did not answer with a valid response:" >&2
    cat "$here/out" >&2
    return 1
  fi
  local status
  status=$(sed -n "s|^$here/c1.pem: ||p" "$here/out")
  if ! grep -q '^Response verify OK' "$here/out" || grep -q 'WARNING' "$here/out" ||
    ! grep -q 'Next Update:' "$here/out" || { [ "$status" != good ] && [ "$status" != revoked ]; }; then
    echo "ocsp-fetch.sh: $chain: refusing the response of $url:" >&2
    cat "$here/out" >&2
    return 1
  fi
  local target="$chain.ocsp" next
  next="$(dirname "$chain")/.$(basename "$chain").ocsp.new"
  install -m 0644 "$here/response.der" "$next"
  mv -f "$next" "$target"
  if [ "$status" = revoked ]; then
    echo "ocsp-fetch.sh: WARNING: $chain is REVOKED (its response, written to $target, says so)" >&2
  else
    echo "ocsp-fetch.sh: $target: $status, $(grep -m1 'Next Update:' "$here/out" | sed 's/^[[:space:]]*//')"
  fi
}

failed=0
index=0
for chain in "$@"; do
  index=$((index + 1))
  fetch "$chain" "$index" || failed=1
done
exit "$failed"
