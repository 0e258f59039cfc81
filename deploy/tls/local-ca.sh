#!/usr/bin/env bash
# A local certificate authority and a server certificate signed by it, for development, tests
# and `make stack`. Never for production: clients trust it only because you give them ca.pem.
#
#   deploy/tls/local-ca.sh DIR [NAME ...]
#
# Writes DIR/ca.pem + DIR/ca.key (kept if present, so clients that trust it keep working) and
# DIR/server.pem (certificate followed by the CA: the chain Nginx sends) + DIR/server.key, valid
# for localhost, 127.0.0.1, ::1 and every NAME (a name with only digits and dots is an IP).
# ECDSA P-256 keys: small, fast handshakes, accepted by every current client.
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 DIR [NAME ...]" >&2
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
# 397 days: the longest validity browsers accept for a server certificate.
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
  -CAcreateserial -out "$dir/server.crt" -days 397 -sha256 -extfile "$dir/server.ext" 2>/dev/null
cat "$dir/server.crt" "$dir/ca.pem" > "$dir/server.pem"
rm -f "$dir/server.csr" "$dir/server.ext"
chmod 644 "$dir/ca.pem" "$dir/server.pem" "$dir/server.crt"
echo "local-ca.sh: $dir/server.pem for $san, signed by $dir/ca.pem"
