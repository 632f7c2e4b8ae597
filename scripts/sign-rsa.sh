#!/bin/sh
# Example signing command for diffgen: raw RSA PKCS#1 v1.5 signature over SHA-256 of the file
# given as the only argument, written to "<file>.sig" — what SWUpdate built with
# CONFIG_SIGALG_RAWRSA verifies with the PEM public key passed with -k. Check a result with
#   openssl dgst -sha256 -verify rsa.pub -signature sw-description.sig sw-description
#
#   SIGN_KEY=rsa.key diffgen recompress in.swu out.swu --sign scripts/sign-rsa.sh
set -eu
[ $# -eq 1 ] || { echo "usage: $0 FILE (writes FILE.sig)" >&2; exit 2; }
: "${SIGN_KEY:?set SIGN_KEY to the RSA private key (PEM)}"
exec openssl dgst -sha256 -sign "$SIGN_KEY" -out "$1.sig" "$1"
