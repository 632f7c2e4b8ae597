#!/bin/sh
# Example signing command for diffgen: detached DER CMS signature of the file given as the
# only argument, written to "<file>.sig" — what SWUpdate built with CONFIG_SIGALG_CMS (e.g.
# Debian's swupdate) verifies against the CA passed with -k.
#
#   SIGN_CERT=signer.crt SIGN_KEY=signer.key diffgen recompress in.swu out.swu --sign scripts/sign-cms.sh
#
# The signer certificate needs keyUsage=digitalSignature and extendedKeyUsage=emailProtection
# (SWUpdate's default purpose check).
set -eu
[ $# -eq 1 ] || { echo "usage: $0 FILE (writes FILE.sig)" >&2; exit 2; }
: "${SIGN_CERT:?set SIGN_CERT to the signer certificate (PEM)}"
: "${SIGN_KEY:?set SIGN_KEY to the signer private key (PEM)}"
exec openssl cms -sign -in "$1" -out "$1.sig" -signer "$SIGN_CERT" -inkey "$SIGN_KEY" \
  -outform DER -nosmimecap -binary
