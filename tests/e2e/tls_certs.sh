# tests/e2e/tls_certs.sh - X.509 keys for the TLS tests, made with certtool
#
# Sourced by tests/e2e/test-tls.sh and tests/vm/run.sh. make_certs DIR
# makes, each in its own folder as nbdkit and libnbd expect them:
#
#   DIR/ca/        a CA (ca-cert.pem, ca-key.pem)
#   DIR/server/    ca-cert.pem, server-cert.pem and server-key.pem for
#                  nbdkit --tls-certificates (CN and DNS name localhost)
#   DIR/client/    ca-cert.pem, client-cert.pem, client-key.pem signed by
#                  the CA: a client the server admits
#   DIR/stranger/  the same, signed by another CA: one it must refuse
#   DIR/nocert/    ca-cert.pem alone: a client with no certificate
#
# Returns non-zero if certtool failed (its output is in DIR/certtool.log).
# The keys are valid for two days and are for tests only.

# tls_mk_ca DIR: a self-signed CA in DIR.
tls_mk_ca() {
	certtool --generate-privkey --outfile "$1/ca-key.pem" &&
		printf 'cn = zramd test CA\nca\ncert_signing_key\nexpiration_days = 2\n' >"$1/ca.info" &&
		certtool --generate-self-signed --load-privkey "$1/ca-key.pem" \
			--template "$1/ca.info" --outfile "$1/ca-cert.pem"
}

# tls_mk_cert CA KEYFILE CERTFILE TEMPLATE-LINE...: a key and a
# certificate signed by the CA in folder CA.
tls_mk_cert() {
	local ca=$1 key=$2 cert=$3
	shift 3
	printf '%s\n' "$@" 'encryption_key' 'signing_key' 'expiration_days = 2' >"$cert.info" &&
		certtool --generate-privkey --outfile "$key" &&
		certtool --generate-certificate --load-ca-certificate "$ca/ca-cert.pem" \
			--load-ca-privkey "$ca/ca-key.pem" --load-privkey "$key" \
			--template "$cert.info" --outfile "$cert"
}

make_certs() {
	local d=$1 f
	mkdir -p "$d"/{ca,ca2,server,client,stranger,nocert}
	{
		tls_mk_ca "$d/ca" && tls_mk_ca "$d/ca2" &&
			tls_mk_cert "$d/ca" "$d/server/server-key.pem" "$d/server/server-cert.pem" \
				'cn = localhost' 'dns_name = localhost' 'tls_www_server' &&
			tls_mk_cert "$d/ca" "$d/client/client-key.pem" "$d/client/client-cert.pem" \
				'cn = client' 'tls_www_client' &&
			tls_mk_cert "$d/ca2" "$d/stranger/client-key.pem" "$d/stranger/client-cert.pem" \
				'cn = client' 'tls_www_client'
	} >"$d/certtool.log" 2>&1 || return 1
	for f in server client stranger nocert; do
		cp "$d/ca/ca-cert.pem" "$d/$f/" || return 1
	done
	rm -f "$d"/*/*.info
}
