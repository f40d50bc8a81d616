#!/bin/sh
# sip-upstream-tls: sipnatd reaches its upstream over TLS and, with
# [sip] tls_ca, accepts only a certificate that CA signed for the upstream's
# host.
#
# Kamailio (tls module) is the PBX on 127.0.0.2, over TLS only toward
# sipnatd; sipp is a phone registering over UDP.  Certificates (certtool):
# CA "one" signs "127.0.0.2" (right) and "pbx.other.example" (wrong name);
# CA "two" signs nothing used here.  Two Kamailio instances: the right
# certificate on TLS port UP, the wrong name on UP+1.  Each step is a
# reload of sipnatd (its upstream and tls_ca change), then a REGISTER:
#   1. upstream UP, tls_ca = one: 200, the REGISTER went over TLS;
#   2. tls_ca = two (the certificate's CA is not trusted): no 200, and
#      Kamailio never saw the REGISTER;
#   3. upstream UP+1, tls_ca = one (trusted CA, name is not 127.0.0.2):
#      no 200;
#   4. upstream UP+1 without tls_ca: 200, and the log warns that the
#      upstream's certificate is not verified.
TEST_SLOT=63
. "$(dirname "$0")/lib.sh"
setup certtool kamailio python3
[ -r /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ] ||
	[ -n "$(find /usr/lib -path '*kamailio/modules/tls.so' 2>/dev/null | head -n 1)" ] ||
	skip "missing kamailio's tls module (kamailio-tls-modules)"
command -v "${SIPNATCTL:=$builddir/sipnatctl}" >/dev/null || skip "no sipnatctl at $SIPNATCTL"

UP_TLS=$((PORT_BASE + 10))
UP_TLS_WRONG=$((PORT_BASE + 11))
DEV_PORT=$((PORT_BASE + 20))
P_TLS=$((PORT_BASE + 1))

cd "$WORK" || fail "cd $WORK"
# cert NAME CN CA: a server certificate NAME.pem/NAME.key for CN, signed by CA.
cert() {
	certtool --generate-privkey --key-type=ecdsa --outfile "$1.key" >/dev/null 2>&1 ||
		fail "certtool: key $1"
	printf 'cn = %s\ntls_www_server\nexpiration_days = 2\n' "$2" >"$1.tmpl"
	certtool --generate-certificate --load-privkey "$1.key" --load-ca-certificate "$3.pem" \
		--load-ca-privkey "$3.key" --template "$1.tmpl" --outfile "$1.pem" >/dev/null 2>&1 ||
		fail "certtool: certificate $1"
}
for ca in one two; do
	certtool --generate-privkey --key-type=ecdsa --outfile "$ca.key" >/dev/null 2>&1 ||
		fail "certtool: key $ca"
	printf 'cn = test CA %s\nca\ncert_signing_key\nexpiration_days = 2\n' "$ca" >"$ca.tmpl"
	certtool --generate-self-signed --load-privkey "$ca.key" --template "$ca.tmpl" \
		--outfile "$ca.pem" >/dev/null 2>&1 || fail "certtool: CA $ca"
done
cert right "$UP_IP" one
cert wrong pbx.other.example one
cert self "$PROXY_IP" two # sipnatd's own, for its TLS listener

# pbx NAME CERT PORT: Kamailio registrar over TLS on UP_IP:PORT.
pbx() {
	mkdir -p "$WORK/$1"
	printf '[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\nprivate_key = %s\ncertificate = %s\n' \
		"$WORK/$2.key" "$WORK/$2.pem" >"$WORK/$1/tls.cfg"
	kamailio -f "$srcdir/tests/integration/pbx-kamailio.cfg" -l "tls:$UP_IP:$3" \
		-l "udp:$UP_IP:$3" -A "PBX_ADDR=$UP_IP" -A "TLS_CFG=\"$WORK/$1/tls.cfg\"" \
		-DD -E -w "$WORK/$1" >"$WORK/$1/kamailio.log" 2>&1 &
	BG_PIDS="$BG_PIDS $!"
	wait_for 10 listening tcp "$UP_IP" "$3" || fail "kamailio $1 did not start: $(tail -n 5 "$WORK/$1/kamailio.log")"
}
pbx pbx-right right "$UP_TLS"
pbx pbx-wrong wrong "$UP_TLS_WRONG"

# conf UPSTREAM_PORT [CA]
conf() {
	write_config "$WORK/sipnat.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT tls:$PROXY_IP:$P_TLS
tls_cert = $WORK/self.pem
tls_key = $WORK/self.key
${2:+tls_ca = $WORK/$2.pem}
upstream = sip:$UP_IP:$1;transport=tls
[relay]
mode = never
EOF
}

N=0
# register: one REGISTER from the phone; true on a 200.  The files of try
# N are in $WORK/regN.
register() {
	N=$((N + 1))
	run_sipp "reg$N" 8 -sf "$SCEN/ua-register.xml" -i "$DEV_IP" -p "$DEV_PORT" -s "dev$N" \
		"$UP_IP" -rsa "$PROXY_IP:$PROXY_PORT" -m 1 -trace_msg
}
pbx_saw() { grep -c "pbx: REGISTER sip:$UP_IP.* from" "$WORK/$1/kamailio.log"; }

reload() {
	"$SIPNATCTL" -s "$WORK/control.sock" reload >"$WORK/reload.out" 2>&1 ||
		fail "sipnatctl reload: $(cat "$WORK/reload.out")"
	sipnatd_alive || fail "sipnatd died on the reload"
}

# --- 1
conf "$UP_TLS" one
start_sipnatd "$WORK/sipnat.conf"
register || fail "REGISTER through a verified TLS upstream: sipp exit status $?"
[ "$(pbx_saw pbx-right)" = 1 ] || fail "the PBX did not get the REGISTER"
assert_log "sent REGISTER .* to tls/$UP_IP:$UP_TLS"
say "1. upstream certificate signed by tls_ca for $UP_IP: 200 over TLS: ok"

# --- 2
conf "$UP_TLS" two
reload
if register; then fail "REGISTER got a 200 with an upstream certificate tls_ca did not sign"; fi
[ "$(pbx_saw pbx-right)" = 1 ] || fail "the REGISTER reached the PBX over an unverified connection"
say "2. certificate from a CA not in tls_ca: refused: ok"

# --- 3
conf "$UP_TLS_WRONG" one
reload
if register; then fail "REGISTER got a 200 from an upstream whose certificate names another host"; fi
[ "$(pbx_saw pbx-wrong)" = 0 ] || fail "the REGISTER reached the PBX with the wrong name"
say "3. certificate for pbx.other.example at $UP_IP: refused: ok"

# --- 4
conf "$UP_TLS_WRONG"
reload
register || fail "REGISTER without tls_ca: sipp exit status $?"
[ "$(pbx_saw pbx-wrong)" = 1 ] || fail "the PBX did not get the REGISTER"
assert_log "upstream sip:$UP_IP:$UP_TLS_WRONG;transport=tls: its TLS certificate is not verified"
say "4. without tls_ca: not verified, works, and the log says so: ok"

stop_sipnatd
check_sanitizers
say "PASS"
