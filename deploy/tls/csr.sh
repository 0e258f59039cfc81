#!/usr/bin/env bash
# A private key and a certificate signing request (CSR) for a commercial CA or any ACME client
# that takes a CSR (`certbot certonly --csr`): the usual OpenSSL flow in one command.
#
#   deploy/tls/csr.sh rsa|ecdsa DIR NAME [NAME ...]
#
# Writes DIR/NAME.key (mode 600) and DIR/NAME.csr with CN=NAME and every NAME as a DNS
# subjectAltName (what browsers check; the CN is ignored). rsa: RSA 2048, the most compatible;
# ecdsa: P-256, smaller and faster handshakes. Check with `openssl req -in DIR/NAME.csr -noout
# -text -verify`.
set -euo pipefail

if [ $# -lt 3 ] || { [ "$1" != rsa ] && [ "$1" != ecdsa ]; }; then
  echo "usage: $0 rsa|ecdsa DIR NAME [NAME ...]" >&2
  exit 2
fi
kind="$1" dir="$2"
shift 2
name="$1"
mkdir -p "$dir"
san=""
for n in "$@"; do san+="${san:+,}DNS:$n"; done

if [ "$kind" = rsa ]; then
  key_args=(-newkey rsa:2048)
else
  key_args=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
fi
(umask 077 && openssl req -new -nodes "${key_args[@]}" -sha256 -keyout "$dir/$name.key" \
  -out "$dir/$name.csr" -subj "/CN=$name" -addext "subjectAltName=$san" 2>/dev/null)
echo "csr.sh: $dir/$name.key ($kind) and $dir/$name.csr for $san"
