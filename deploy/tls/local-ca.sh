#!/usr/bin/env bash
# A local certificate authority and a server certificate signed by it, for development, tests
# and `make stack`. Never for production: clients trust it only because you give them ca.pem.
#
#   deploy/tls/local-ca.sh [--ocsp-url URL] DIR [NAME ...]
#
# Writes DIR/ca.pem + DIR/ca.key (kept if present, so clients that trust it keep working) and
# DIR/server.pem (certificate followed by the CA: the chain Nginx sends) + DIR/server.key, valid
# for localhost, 127.0.0.1, ::1 and every NAME (a name with only digits and dots is an IP).
# ECDSA P-256 keys: small, fast handshakes, accepted by every current client.
#
# --ocsp-url URL: the certificate names URL as its OCSP responder (authorityInfoAccess), and
# DIR/index.txt records it in `openssl ca`'s database format, so that
#   openssl ocsp -index DIR/index.txt -CA DIR/ca.pem -rsigner DIR/ca.pem -rkey DIR/ca.key ...
# answers for it (OCSP stapling tests; a "V" turned into "R" with a date revokes it).
set -euo pipefail

ocsp_url=""
if [ "${1:-}" = "--ocsp-url" ]; then
  ocsp_url="${2:?--ocsp-url needs a URL}"
  shift 2
fi
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
  echo "usage: $0 [--ocsp-url URL] DIR [NAME ...]" >&2
  exit 2
fi
dir="$1"
shift
mkdir -p "$dir"
umask 077

if [ ! -s "$dir/ca.pem" ] || [ ! -s "$dir/ca.key" ]; then
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 3650 -subj "/CN=pylon local CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>/dev/null
fi

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for name in "$@"; do
  if [[ "$name" =~ ^[0-9.]+$ ]]; then san+=",IP:$name"; else san+=",DNS:$name"; fi
done

openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 \
  -keyout "$dir/server.key" -out "$dir/server.csr" -subj "/CN=${1:-localhost}" 2>/dev/null
cat > "$dir/server.ext" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EXT
if [ -n "$ocsp_url" ]; then echo "authorityInfoAccess = OCSP;URI:$ocsp_url" >> "$dir/server.ext"; fi
# 397 days: the longest validity browsers accept for a server certificate.
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
  -CAcreateserial -out "$dir/server.crt" -days 397 -sha256 -extfile "$dir/server.ext" 2>/dev/null
cat "$dir/server.crt" "$dir/ca.pem" > "$dir/server.pem"
if [ -n "$ocsp_url" ]; then
  # One line per certificate: status, expiry (YYMMDDHHMMSSZ), revocation date, serial, file,
  # subject. Renewals keep the same subject, hence unique_subject = no.
  serial=$(openssl x509 -in "$dir/server.crt" -noout -serial | cut -d= -f2)
  not_after=$(openssl x509 -in "$dir/server.crt" -noout -enddate -dateopt iso_8601 | cut -d= -f2)
  printf 'V\t%s\t\t%s\tunknown\t/CN=%s\n' "$(date -u -d "$not_after" +%y%m%d%H%M%SZ)" "$serial" \
    "${1:-localhost}" >> "$dir/index.txt"
  echo "unique_subject = no" > "$dir/index.txt.attr"
fi
rm -f "$dir/server.csr" "$dir/server.ext"
chmod 644 "$dir/ca.pem" "$dir/server.pem" "$dir/server.crt"
echo "local-ca.sh: $dir/server.pem for $san, signed by $dir/ca.pem"
