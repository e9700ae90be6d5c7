#!/bin/bash
# tests/lib/certs.sh DIR - make the test PKI with the openssl CLI.
#
# Writes into DIR (created if needed):
#   ca.pem ca.key            the test CA (RSA 2048, SHA-256); tests trust only this
#   server.pem server.key    good leaf: CN=localhost, SAN DNS:localhost, IP:127.0.0.1,
#                            IP:::1, RSA 2048, SHA-256, signed by the test CA
#   other.pem other.key      a second good leaf for the same names (EC P-256), for pins
#   server.spki other.spki   base64(SHA-256(SubjectPublicKeyInfo DER)) of those two,
#                            without the "sha256//" prefix
#   selfsigned.*             self-signed, names as server
#   unknownca.*              names as server, signed by ca2 (ca2.pem: not trusted)
#   wrongname.*              CN=localhost but SAN only DNS:wrong.example (a SAN is
#                            present, so there must be no CN fallback)
#   expired.*                2020-01-01 .. 2021-01-01
#   notyet.*                 2040-01-01 .. 2041-01-01
#   rsa1024.*                1024-bit RSA key, signed by the test CA
#   sha1.*                   RSA 2048, signed by the test CA with sha1WithRSAEncryption
# For every NAME above: NAME.pem (leaf only), NAME.key (0600) and NAME-chain.pem (leaf +
# issuer, for servers that want a chain file).
#
# Idempotent: when DIR already holds a complete set whose CA and server certificate stay
# valid for another day, nothing is done. Quiet on success; on failure prints openssl's
# messages and exits non-zero.
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
dir=$1
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

names="server other selfsigned unknownca wrongname expired notyet rsa1024 sha1"

complete() {
	local n
	[ -f "$dir/.complete" ] || return 1
	for n in ca ca2 $names; do
		[ -s "$dir/$n.pem" ] && [ -s "$dir/$n.key" ] || return 1
	done
	[ -s "$dir/server.spki" ] && [ -s "$dir/other.spki" ] || return 1
	openssl x509 -in "$dir/ca.pem" -noout -checkend 86400 >/dev/null 2>&1 &&
		openssl x509 -in "$dir/server.pem" -noout -checkend 86400 >/dev/null 2>&1
}
if complete; then
	exit 0
fi

# Build in a scratch directory and move into place at the end, so that an interrupted
# run never leaves a half-made set behind that looks complete.
work=$(mktemp -d "$dir/.work.XXXXXX")
log=$work/openssl.log
cleanup() {
	local rc=$?
	if [ $rc -ne 0 ] && [ -s "$log" ]; then
		cat "$log" >&2
	fi
	rm -rf "$work"
}
trap cleanup EXIT
rm -f "$dir/.complete"

# A private OpenSSL configuration: the system one is not needed, and SECLEVEL=0 lets the
# CLI sign with SHA-1 and issue for a 1024-bit key (the module must refuse both; making
# them is our business). `openssl ca` needs a database; unique_subject = no lets one
# subject (CN=localhost) be issued many times.
cat >"$work/openssl.cnf" <<CNF
openssl_conf = ma_init
[ ma_init ]
ssl_conf = ma_ssl
[ ma_ssl ]
system_default = ma_sysdef
[ ma_sysdef ]
CipherString = DEFAULT:@SECLEVEL=0
[ ca ]
default_ca = ma_ca
[ ma_ca ]
dir              = $work
database         = \$dir/index.txt
new_certs_dir    = \$dir/new
serial           = \$dir/serial
default_md       = sha256
default_days     = 3650
policy           = ma_policy
unique_subject   = no
copy_extensions  = none
email_in_dn      = no
preserve         = no
[ ma_policy ]
commonName       = supplied
organizationName = optional
[ req ]
distinguished_name = ma_dn
prompt           = no
[ ma_dn ]
CN               = unused
[ ext_ca ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
[ ext_leaf ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
subjectAltName         = \$ENV::MA_SAN
[ ext_self ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
subjectAltName         = \$ENV::MA_SAN
CNF
export OPENSSL_CONF=$work/openssl.cnf
mkdir "$work/new"
: >"$work/index.txt"
printf '1000\n' >"$work/serial"

good_san='DNS:localhost, IP:127.0.0.1, IP:::1'
export MA_SAN=$good_san

ossl() { openssl "$@" >>"$log" 2>&1; }

key() { # key NAME rsa2048|rsa1024|ec
	local out=$work/$1.key
	case $2 in
	rsa2048) ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$out" ;;
	rsa1024) ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$out" ;;
	ec) ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out" ;;
	esac
	chmod 600 "$out"
}

ca() { # ca NAME CN: a self-signed CA valid from yesterday for ten years
	local n=$1 cn=$2
	key "$n" rsa2048
	ossl req -new -key "$work/$n.key" -subj "/CN=$cn" -out "$work/$n.csr"
	ossl ca -batch -notext -selfsign -keyfile "$work/$n.key" -in "$work/$n.csr" \
		-out "$work/$n.pem" -extensions ext_ca -startdate "$(date -u -d yesterday +%Y%m%d%H%M%SZ)" \
		-days 3650
}

leaf() { # leaf NAME KEYTYPE ISSUER [openssl ca options...]
	local n=$1 kt=$2 issuer=$3
	shift 3
	key "$n" "$kt"
	ossl req -new -key "$work/$n.key" -subj "/CN=localhost/O=pam_mailauth test $n" \
		-out "$work/$n.csr"
	ossl ca -batch -notext -cert "$work/$issuer.pem" -keyfile "$work/$issuer.key" \
		-in "$work/$n.csr" -out "$work/$n.pem" -extensions ext_leaf "$@"
	cat "$work/$n.pem" "$work/$issuer.pem" >"$work/$n-chain.pem"
}

now_minus_1d=$(date -u -d yesterday +%Y%m%d%H%M%SZ)

ca ca "pam_mailauth test CA"
ca ca2 "pam_mailauth untrusted CA"

leaf server rsa2048 ca -startdate "$now_minus_1d" -days 825
leaf other ec ca -startdate "$now_minus_1d" -days 825
leaf unknownca ec ca2 -startdate "$now_minus_1d" -days 825
MA_SAN='DNS:wrong.example' leaf wrongname ec ca -startdate "$now_minus_1d" -days 825
leaf expired ec ca -startdate 20200101000000Z -enddate 20210101000000Z
leaf notyet ec ca -startdate 20400101000000Z -enddate 20410101000000Z
leaf rsa1024 rsa1024 ca -startdate "$now_minus_1d" -days 825
leaf sha1 rsa2048 ca -startdate "$now_minus_1d" -days 825 -md sha1

# Self-signed leaf: not a CA, issued by itself.
key selfsigned ec
ossl req -new -key "$work/selfsigned.key" -subj "/CN=localhost/O=pam_mailauth test selfsigned" \
	-out "$work/selfsigned.csr"
ossl ca -batch -notext -selfsign -keyfile "$work/selfsigned.key" -in "$work/selfsigned.csr" \
	-out "$work/selfsigned.pem" -extensions ext_self -startdate "$now_minus_1d" -days 825
cp "$work/selfsigned.pem" "$work/selfsigned-chain.pem"

spki() { # base64 of SHA-256 over the DER SubjectPublicKeyInfo
	openssl x509 -in "$work/$1.pem" -noout -pubkey 2>>"$log" |
		openssl pkey -pubin -outform DER 2>>"$log" |
		openssl dgst -sha256 -binary 2>>"$log" | openssl base64 -A 2>>"$log"
	echo
}
spki server >"$work/server.spki"
spki other >"$work/other.spki"

# Sanity: the good ones verify, the hostile ones are what they claim to be.
ossl verify -CAfile "$work/ca.pem" -verify_hostname localhost "$work/server.pem"
ossl verify -CAfile "$work/ca.pem" -verify_ip 127.0.0.1 "$work/other.pem"
openssl x509 -in "$work/sha1.pem" -noout -text 2>>"$log" | grep -q 'sha1WithRSAEncryption'
openssl x509 -in "$work/rsa1024.pem" -noout -text 2>>"$log" | grep -q 'Public-Key: (1024 bit)'

for n in ca ca2 $names; do
	mv -f "$work/$n.key" "$dir/$n.key"
	mv -f "$work/$n.pem" "$dir/$n.pem"
	if [ -f "$work/$n-chain.pem" ]; then
		mv -f "$work/$n-chain.pem" "$dir/$n-chain.pem"
	fi
done
mv -f "$work/server.spki" "$work/other.spki" "$dir/"
chmod 644 "$dir"/*.pem "$dir"/*.spki
: >"$dir/.complete"
