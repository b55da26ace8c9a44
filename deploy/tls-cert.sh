#!/bin/bash
# The edge's certificate for docker compose (the `tls-cert` service runs this once before nginx
# starts): when the certificate directory already holds tls.crt and tls.key (yours, through
# TLS_CERT_DIR), nothing is done; else a self-signed certificate for TLS_HOSTNAME (default
# localhost), localhost and 127.0.0.1 is made, valid 825 days. Browsers warn about a self-signed
# certificate: use it for a trial, bring a real one for anything else (docs/deploy.md).
set -euo pipefail

dir="${TLS_CERT_DIR_IN_CONTAINER:-/certs}"
host="${TLS_HOSTNAME:-localhost}"
if [ -s "$dir/tls.crt" ] && [ -s "$dir/tls.key" ]; then
  echo "using the certificate in $dir"
  exit 0
fi
mkdir -p "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 825 \
  -subj "/CN=$host" \
  -addext "subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1" \
  -keyout "$dir/tls.key.partial" -out "$dir/tls.crt.partial" 2>/dev/null
chmod 600 "$dir/tls.key.partial"
chmod 644 "$dir/tls.crt.partial"
mv "$dir/tls.key.partial" "$dir/tls.key"
mv "$dir/tls.crt.partial" "$dir/tls.crt"
echo "made a self-signed certificate for $host in $dir"
