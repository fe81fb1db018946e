#!/bin/sh
# gen-key.sh DIR [KID] — make an encryption key for bordergate's `encrypt` action:
# DIR/KID.key (default KID k1) holding base64 of 64 random bytes (an AES-256-SIV key; the JWE
# key is derived from it), mode 0600 (a new DIR is made 0700). An existing key is never overwritten (tokens made
# with it could no longer be opened): the script says so and exits 0. Rotate by adding a new KID
# and pointing encryption.active_key at it; keep the old file so old tokens still open.
set -eu
dir=${1:?usage: gen-key.sh DIR [KID]}
kid=${2:-k1}
case $kid in
  ''|*[!A-Za-z0-9_-]*) echo "gen-key.sh: key id must be 1-32 of [A-Za-z0-9_-]: $kid" >&2; exit 2 ;;
esac
[ ${#kid} -le 32 ] || { echo "gen-key.sh: key id longer than 32: $kid" >&2; exit 2; }
umask 077
[ -d "$dir" ] || mkdir -p -m 700 "$dir"
key="$dir/$kid.key"
if [ -e "$key" ]; then
  echo "gen-key.sh: $key exists, kept" >&2
  exit 0
fi
tmp="$dir/.$kid.key.$$"
trap 'rm -f "$tmp"' EXIT
openssl rand 64 | openssl base64 -A > "$tmp"
printf '\n' >> "$tmp"
chmod 600 "$tmp"
mv "$tmp" "$key"
trap - EXIT
echo "gen-key.sh: wrote $key" >&2
