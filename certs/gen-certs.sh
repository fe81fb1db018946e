#!/bin/sh
# gen-certs.sh DIR — development and test certificates, made with the openssl CLI.
# Idempotent: every file that already exists is kept (delete a file to remake it).
# Makes: ca.crt/key (local CA); gateway.crt/key (localhost, 127.0.0.1, ::1); client.crt/key
# (CN=svc-demo, clientAuth); for tests: vendor.crt/key (*.vendor.test, vendor.test, localhost,
# 127.0.0.1), other-ca.crt/key and vendor-wrongca.crt (same names, other CA), vendor-expired.crt
# (valid 2020-01-01..2021-01-01, via `openssl ca -startdate/-enddate`), vendor-wronghost.crt
# (wrong.example only). Every vendor-*.crt uses vendor.key. Keys are EC P-256, mode 0600.
# Quiet on success; on failure prints openssl's output and exits 1.
set -eu
DIR=${1:-certs}
mkdir -p "$DIR"
umask 077
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bg-certs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

run() { # quiet unless it fails
  if ! "$@" >"$WORK/log" 2>&1; then
    cat "$WORK/log" >&2; echo "gen-certs: failed: $*" >&2; exit 1
  fi
}

newkey() { # path
  [ -f "$1" ] && return 0
  run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
  chmod 600 "$1"
}

serial() { echo "0x$(openssl rand -hex 8)"; }

selfsigned_ca() { # name, CN
  [ -f "$DIR/$1.crt" ] && return 0
  newkey "$DIR/$1.key"
  cat >"$WORK/ca.ext" <<EXT
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
EXT
  run openssl req -new -x509 -config "$WORK/ca.ext" -extensions v3_ca -key "$DIR/$1.key" \
    -subj "/O=bordergate dev/CN=$2" -days 3650 -set_serial "$(serial)" -out "$DIR/$1.crt"
  chmod 644 "$DIR/$1.crt"
}

ext_file() { # usage (serverAuth|clientAuth), SAN list or "" → $WORK/leaf.ext, section "leaf"
  {
    echo "[leaf]"
    echo "basicConstraints = critical,CA:FALSE"
    echo "keyUsage = critical,digitalSignature"
    echo "extendedKeyUsage = $1"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
    [ -n "$2" ] && echo "subjectAltName = $2"
    true
  } >"$WORK/leaf.ext"
}

leaf() { # out.crt, key, CA name, CN, usage, SANs
  [ -f "$DIR/$1" ] && return 0
  newkey "$DIR/$2"
  ext_file "$5" "$6"
  run openssl req -new -key "$DIR/$2" -subj "/O=bordergate dev/CN=$4" -out "$WORK/leaf.csr"
  run openssl x509 -req -in "$WORK/leaf.csr" -CA "$DIR/$3.crt" -CAkey "$DIR/$3.key" \
    -set_serial "$(serial)" -days 825 -extfile "$WORK/leaf.ext" -extensions leaf -out "$DIR/$1"
  chmod 644 "$DIR/$1"
}

# openssl 3.0's `x509 -req` cannot back-date a certificate; `openssl ca` can (-startdate/-enddate).
expired_leaf() { # out.crt, key, CA name, CN, SANs
  [ -f "$DIR/$1" ] && return 0
  newkey "$DIR/$2"
  ext_file serverAuth "$5"
  mkdir -p "$WORK/ca/new"
  : >"$WORK/ca/index.txt"
  openssl rand -hex 8 >"$WORK/ca/serial"
  cat >"$WORK/ca.cnf" <<CNF
[ca]
default_ca = testca
[testca]
dir = $WORK/ca
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir/new
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[anything]
organizationName = optional
commonName = supplied
CNF
  run openssl req -new -key "$DIR/$2" -subj "/O=bordergate dev/CN=$4" -out "$WORK/leaf.csr"
  run openssl ca -batch -notext -config "$WORK/ca.cnf" -cert "$DIR/$3.crt" -keyfile "$DIR/$3.key" \
    -startdate 20200101000000Z -enddate 20210101000000Z -extfile "$WORK/leaf.ext" -extensions leaf \
    -in "$WORK/leaf.csr" -out "$DIR/$1"
  chmod 644 "$DIR/$1"
}

VENDOR_SAN="DNS:*.vendor.test,DNS:vendor.test,DNS:localhost,IP:127.0.0.1"

selfsigned_ca ca "bordergate dev CA"
leaf gateway.crt gateway.key ca localhost serverAuth "DNS:localhost,IP:127.0.0.1,IP:::1"
leaf client.crt client.key ca svc-demo clientAuth ""
leaf vendor.crt vendor.key ca vendor.test serverAuth "$VENDOR_SAN"
selfsigned_ca other-ca "bordergate other CA"
leaf vendor-wrongca.crt vendor.key other-ca vendor.test serverAuth "$VENDOR_SAN"
expired_leaf vendor-expired.crt vendor.key ca vendor.test "$VENDOR_SAN"
leaf vendor-wronghost.crt vendor.key ca wrong.example serverAuth "DNS:wrong.example"
