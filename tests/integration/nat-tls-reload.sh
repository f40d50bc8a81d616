#!/bin/sh
# nat-tls-reload: phones registered over SIP TLS behind NATs stay reachable
# while a reload renews sipnatd's certificate and then removes its TLS
# listener.
#
# sipnatd on pub listens on udp/tcp 5060 and tls 5061 with a certificate
# "sipnat-a" for 203.0.113.10, signed by a test CA (certtool) that the
# phones (baresip, sip_cafile) and gnutls-cli on evil verify.  ua3 sits
# behind nat3, which drops all UDP: TLS is its only way in, and nothing
# reaches it but over the connection it opened.  Checks:
#   1. ua3 registers over TLS (sipnatd: via tls:203.0.113.103:PORT, NAT);
#      gnutls-cli sees sipnat-a; a call from the PBX side reaches ua3;
#   2. the certificate and key files are replaced ("sipnat-b", same paths,
#      as a renewal does) and sipnatd reloaded: gnutls-cli sees sipnat-b; a
#      call reaches ua3 over the connection it opened before the reload
#      (same port, ua3 did not register again); ua1b (behind nat1) then
#      registers over a new TLS connection, verified against sipnat-b, and
#      a call reaches it; ua3 calls ua1b (phone to phone, TLS both sides);
#   3. a reload without the tls listener: gnutls-cli is refused, and calls
#      still reach ua3 and ua1b over their open connections.
# shellcheck source=tests/integration/natlib.sh disable=SC2119
. "$(dirname "$0")/natlib.sh"

nat_setup tl certtool gnutls-cli
SIPNATCTL="${SIPNATCTL:-$(dirname "$SIPNATD")/sipnatctl}"
[ -x "$SIPNATCTL" ] || skip "no sipnatctl at $SIPNATCTL"

# --- certificates
for k in ca a b; do
	certtool --generate-privkey --key-type=ecdsa --outfile "$WORK/$k.key" >/dev/null 2>&1 ||
		fail "certtool: key $k"
done
printf 'cn = sipnat lab CA\nca\ncert_signing_key\nexpiration_days = 2\n' >"$WORK/ca.tmpl"
certtool --generate-self-signed --load-privkey "$WORK/ca.key" --template "$WORK/ca.tmpl" \
	--outfile "$WORK/ca.pem" >/dev/null 2>&1 || fail "certtool: CA"
for k in a b; do
	printf 'cn = sipnat-%s\nip_address = %s\ntls_www_server\nexpiration_days = 2\n' \
		"$k" "$PUB_IP" >"$WORK/$k.tmpl"
	certtool --generate-certificate --load-privkey "$WORK/$k.key" \
		--load-ca-certificate "$WORK/ca.pem" --load-ca-privkey "$WORK/ca.key" \
		--template "$WORK/$k.tmpl" --outfile "$WORK/$k.pem" >/dev/null 2>&1 ||
		fail "certtool: certificate $k"
done
cp "$WORK/a.pem" "$WORK/cert.pem" && cp "$WORK/a.key" "$WORK/key.pem" || fail "cp"

start_pbx
sipnatd_conf "$WORK/sipnat.conf" "$WORK/state" "path = yes" \
	"tls_cert = $WORK/cert.pem" "tls_key = $WORK/key.pem"
sed -i "s|^listen = .*|& tls:$PUB_IP:5061|" "$WORK/sipnat.conf"
start_sipnatd "$WORK/sipnat.conf"
wait_for 5 listening pub tcp "$PUB_IP:5061" || fail "sipnatd is not listening on tls $PUB_IP:5061"

# served_cn: the CN of the certificate a new TLS handshake from evil shows,
# verified against the lab CA; "refused" when nothing accepts.
served_cn() {
	_out=$(lab exec evil sh -c "echo | timeout 5 gnutls-cli --x509cafile '$WORK/ca.pem' \
		-p 5061 $PUB_IP" 2>&1)
	case $_out in
	*"Connection refused"* | *"Could not connect"*) echo refused ;;
	*"certificate is trusted"*) echo "$_out" | sed -n "s/.*subject \`CN=\([^',]*\).*/\1/p" | head -n 1 ;;
	*) echo "untrusted or failed: $(echo "$_out" | tail -n 2 | tr '\n' ' ')" ;;
	esac
}

reload() {
	"$SIPNATCTL" -s "$WORK/control.sock" reload >"$WORK/reload.out" 2>&1 ||
		fail "sipnatctl reload: $(cat "$WORK/reload.out")"
	kill -0 "$SIPNATD_PID" 2>/dev/null || fail "sipnatd died on the reload"
}

# reaches NAME PORT: a call from evil through the PBX is answered by NAME,
# sipnatd sent its INVITE over tls to nat's PORT, and the ACK and the BYE
# got to the phone too.  sipnatd never tries to open a TLS connection to a
# NAT (nothing would accept it): everything goes over the phone's own.
reaches() {
	_sent=$(sipnatd_count "sent INVITE .* to tls/\\[?203\\.0\\.113\\.10[0-9]\\]?:$2(/l[0-9]+)?\$")
	_acks=$(grep -ac '^ACK sip:' "$WORK/$1/baresip.log")
	_byes=$(grep -ac '^BYE sip:' "$WORK/$1/baresip.log")
	call "$1" "$SCEN/uac-rr.xml" 10 || fail "call to $1 failed: $(call_outcome)"
	call_answered || fail "call to $1 not answered: $(call_outcome)"
	[ "$(sipnatd_count "sent INVITE .* to tls/\\[?203\\.0\\.113\\.10[0-9]\\]?:$2(/l[0-9]+)?\$")" -gt "$_sent" ] ||
		fail "sipnatd did not send the INVITE for $1 over its TLS connection (port $2)"
	_ph=$1
	wait_for 3 eval '[ "$(grep -ac "^BYE sip:" "$WORK/$_ph/baresip.log")" -gt "$_byes" ]' ||
		fail "the caller's BYE did not reach $1"
	[ "$(grep -ac '^ACK sip:' "$WORK/$1/baresip.log")" -gt "$_acks" ] || fail "the ACK did not reach $1"
	[ "$(sipnatd_count 'connecting to tls/203\.0\.113\.10[0-9]:')" = 0 ] ||
		fail "sipnatd tried to open a TLS connection to a NAT: $(grep -m1 'connecting to tls/' "$SIPNATD_LOG")"
}

# tls_port NAME NAT_IP: the NAT port of NAME's TLS registration.
tls_port() {
	sed -n "s/.*registered sip:$1@[^ ]* via tls:$2:\([0-9]*\) (NAT).*/\1/p" "$SIPNATD_LOG" |
		tail -n 1
}

# --- 1
phone ua3 192.168.3.10 sipnatd tls
start_phone ua3
wait_registered ua3 15
p3=$(tls_port ua3 '203\.0\.113\.103')
[ -n "$p3" ] || fail "sipnatd logged no TLS registration of ua3 from nat3"
regs3=$(grep -ac '^REGISTER sip:' "$WORK/ua3/baresip.log")
cn=$(served_cn)
[ "$cn" = sipnat-a ] || fail "before the reload: TLS handshake shows '$cn', expected sipnat-a"
reaches ua3 "$p3"
say "1. ua3 registered over TLS from 203.0.113.103:$p3, certificate sipnat-a, call answered: ok"

# --- 2
cp "$WORK/b.pem" "$WORK/cert.pem" && cp "$WORK/b.key" "$WORK/key.pem" || fail "cp"
reload
cn=$(served_cn)
[ "$cn" = sipnat-b ] || fail "after the renewal: TLS handshake shows '$cn', expected sipnat-b"
reaches ua3 "$p3"
[ "$(grep -ac '^REGISTER sip:' "$WORK/ua3/baresip.log")" = "$regs3" ] ||
	fail "ua3 registered again: its connection did not survive the reload"
phone ua1b 192.168.1.11 sipnatd tls
start_phone ua1b
wait_registered ua1b 15
p1=$(tls_port ua1b '203\.0\.113\.101')
[ -n "$p1" ] || fail "sipnatd logged no TLS registration of ua1b from nat1"
reaches ua1b "$p1"
# ua3 calls ua1b: its INVITE goes out over its old connection, the answer
# comes back over ua1b's new one, and the BYE from ua3 gets to ua1b.
_byes=$(grep -ac '^BYE sip:' "$WORK/ua1b/baresip.log")
phone_ctrl ua3 dial "sip:ua1b@$PBX_IP" >"$WORK/dial.log" 2>&1 || fail "dial: $(cat "$WORK/dial.log")"
wait_for 10 grep -aq 'Call established' "$WORK/ua3/baresip.log" ||
	fail "ua3's call to ua1b was not established: $(grep -a 'call:\|SIP/2.0 [3-6]' "$WORK/ua3/baresip.log" | tail -n 3)"
phone_ctrl ua3 hangup >"$WORK/hangup.log" 2>&1 || fail "hangup: $(cat "$WORK/hangup.log")"
wait_for 5 eval '[ "$(grep -ac "^BYE sip:" "$WORK/ua1b/baresip.log")" -gt "$_byes" ]' ||
	fail "ua3's BYE did not reach ua1b"
say "2. renewed certificate sipnat-b served; ua3 reached over its old connection; ua1b registered and reached over a new one; ua3 called ua1b: ok"

# --- 3
sed -i "s| tls:$PUB_IP:5061||" "$WORK/sipnat.conf"
reload
wait_for 5 eval '! listening pub tcp "$PUB_IP:5061"' || fail "the TLS listener is still open"
cn=$(served_cn)
[ "$cn" = refused ] || fail "TLS listener removed, yet a handshake gives: $cn"
reaches ua3 "$p3"
reaches ua1b "$p1"
say "3. TLS listener removed: new connections refused, ua3 and ua1b still reached: ok"

stop_phone ua1b
stop_phone ua3
stop_sipnatd
say "PASS"
