#!/usr/bin/env bash
# zramd served with nbdkit --tls=require, reached by libnbd's tools over
# TLS, as the README and nbdkit-zramd-plugin(1) tell users to serve TCP:
#
#   PSK     keys made with psktool; nbds+unix://alice@/?tls-psk-file=...
#   X.509   a CA, a server and a client certificate made with certtool;
#           nbdkit --tls-certificates=DIR --tls-verify-peer
#
# Each writes 4 MiB of random data through TLS, reads it back and compares
# it. Then clients that must be refused try to overwrite it: no TLS, the
# wrong key, an unknown user, a client certificate from another CA, no
# client certificate. Each must fail, and the device must show no request
# from them (num_reads and num_writes unchanged) and still hold the first
# bytes. Only unix sockets: nothing leaves the machine.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/tls_certs.sh"
requires nbdkit
requires nbdcopy
requires psktool "gnutls-bin is not installed"
requires certtool "gnutls-bin is not installed"

data=$TMP/data.bin
head -c $((4 << 20)) /dev/urandom >"$data"

# requests: num_reads + num_writes in the stats file, once it has them.
requests() { echo $(($(stat_value num_reads) + $(stat_value num_writes))); }

# refused NAME URI: a client that must not get in. It tries to write over
# the data; it must fail, and the device must have seen no request.
refused() {
	local name=$1 uri=$2 before after
	sleep 1.2 # the stats file is rewritten every second
	before=$(requests)
	if nbdcopy --flush "$TMP/other.bin" "$uri" 2>"$TMP/client.err"; then
		not_ok "$name: refused (nbdcopy succeeded)"
		return
	fi
	ok "$name: refused ($(tail -n1 "$TMP/client.err"))"
	sleep 1.2
	after=$(requests)
	check "$name: no request reached the device ($before -> $after)" [ "$before" = "$after" ]
}
head -c $((4 << 20)) /dev/urandom >"$TMP/other.bin"

# through NAME URI: the data in and out over TLS, compared.
through() {
	local name=$1 uri=$2
	check "$name: nbdcopy in over TLS" nbdcopy --flush "$data" "$uri"
	rm -f "$TMP/out.bin"
	check "$name: nbdcopy out over TLS" nbdcopy "$uri" "$TMP/out.bin"
	check "$name: the bytes read equal the bytes written" cmp -n $((4 << 20)) "$data" "$TMP/out.bin"
}

# --- PSK ---
psk=$TMP/keys.psk bad=$TMP/bad.psk
stranger=$TMP/mallory.psk
psktool -u alice -p "$psk" >/dev/null 2>&1 && psktool -u alice -p "$bad" >/dev/null 2>&1 &&
	psktool -u mallory -p "$stranger" >/dev/null 2>&1
check "psktool made the keys" [ -s "$psk" -a -s "$bad" -a -s "$stranger" ]
if ZRAMD_NBDKIT_OPTS="--tls=require --tls-psk=$psk" start_zramd size=16M; then
	base="nbds+unix://alice@/?socket=$SOCK"
	through "PSK" "$base&tls-psk-file=$psk"
	refused "PSK: a client without TLS" "nbd+unix:///?socket=$SOCK"
	refused "PSK: the wrong key" "$base&tls-psk-file=$bad"
	refused "PSK: a user the server does not know" "nbds+unix://mallory@/?socket=$SOCK&tls-psk-file=$stranger"
	rm -f "$TMP/out.bin"
	check "PSK: after them, the device still holds the data" \
		bash -c 'nbdcopy "$1" "$2" && cmp -n $((4 << 20)) "$3" "$2"' _ \
		"$base&tls-psk-file=$psk" "$TMP/out.bin" "$data"
	check_stop "PSK"
else
	not_ok "PSK: nbdkit --tls=require --tls-psk did not start"
fi

# --- X.509 ---
x=$TMP/x509
make_certs "$x"
check "certtool made the CA and the certificates" [ -s "$x/stranger/client-cert.pem" ]
if ZRAMD_NBDKIT_OPTS="--tls=require --tls-certificates=$x/server --tls-verify-peer" \
	start_zramd size=16M; then
	base="nbds+unix:///?socket=$SOCK"
	through "X.509" "$base&tls-certificates=$x/client"
	refused "X.509: a client without TLS" "nbd+unix:///?socket=$SOCK"
	refused "X.509: a client certificate from another CA" "$base&tls-certificates=$x/stranger"
	refused "X.509: no client certificate" "$base&tls-certificates=$x/nocert"
	rm -f "$TMP/out.bin"
	check "X.509: after them, the device still holds the data" \
		bash -c 'nbdcopy "$1" "$2" && cmp -n $((4 << 20)) "$3" "$2"' _ \
		"$base&tls-certificates=$x/client" "$TMP/out.bin" "$data"
	check_stop "X.509"
else
	not_ok "X.509: nbdkit --tls=require --tls-certificates did not start"
fi
finish
