#!/bin/sh
# nat-register-call: phones behind NAT register through sipnatd (path = yes)
# and are called from the PBX side.
#
# Lab (tests/lab/README): kamailio as registrar/proxy on pbx, sipnatd on
# pub, baresip ua1 behind nat1 (port-preserving) and ua2 behind nat2
# (symmetric: a fresh public port per destination), sipp on evil calling
# through the PBX.  Checks:
#   - sipnatd logs both registrations as NAT'd, with the NATs' public flows;
#   - the PBX keeps sipnatd's Path with a flow token (its lookup log line
#     shows the destination URI sip:TOKEN@203.0.113.10...);
#   - a call from the PBX side to ua2 and to ua1 is auto-answered and ended
#     by the caller's BYE (in-dialog request PBX -> sipnatd -> phone), and a
#     second call is ended by the phone's BYE (phone -> sipnatd -> PBX);
#   - negative control: with the phones registered directly at the PBX
#     (no sipnatd), the call to ua2 does not reach it.
# shellcheck source=tests/integration/natlib.sh disable=SC2119
. "$(dirname "$0")/natlib.sh"

nat_setup rc
start_pbx
sipnatd_conf "$WORK/sipnat.conf" "$WORK/state" "path = yes"
start_sipnatd "$WORK/sipnat.conf"
phone ua1 192.168.1.10 sipnatd
phone ua2 192.168.2.10 sipnatd
start_phone ua1
start_phone ua2
wait_registered ua1
wait_registered ua2

assert_sipnatd 'registered sip:ua1@198\.51\.100\.20 via udp:203\.0\.113\.101:5060 \(NAT\)' \
	"sipnatd's log (ua1 registration)"
assert_sipnatd 'registered sip:ua2@198\.51\.100\.20 via udp:203\.0\.113\.102:[0-9]+ \(NAT\)' \
	"sipnatd's log (ua2 registration)"
say "ua1 and ua2 registered through sipnatd, both seen behind NAT"

for ua in ua2 ua1; do
	case $ua in ua1) ip=192.168.1.10 ;; ua2) ip=192.168.2.10 ;; esac
	call "$ua" "$SCEN/uac-rr.xml" 10 || fail "call to $ua (caller hangs up) failed"
	msgs=$(call_messages)
	# The PBX found the phone's own Contact with sipnatd's Path as the
	# next hop: Path survived the registrar.
	assert_pbx "pbx: lookup $ua -> sip:$ua-[^ ]*@$ip:5060 via sip:[A-Za-z0-9_-]{20,}@203\\.0\\.113\\.10:5060;lr" \
		"kamailio's log (location of $ua with Path)"
	echo "$msgs" | grep -q "^Contact: <sip:$ua-[^>]*@$ip:5060>" ||
		fail "the 200 OK for $ua does not carry the phone's own Contact"
	echo "$msgs" | grep -Eq '^Record-Route: <sip:[A-Za-z0-9_-]+@203\.0\.113\.10:5060;lr>' ||
		fail "sipnatd did not Record-Route the call to $ua with a flow token"
	echo "$msgs" | grep -q '^BYE ' || fail "no BYE in the call to $ua"
	cid=$(echo "$msgs" | sed -n 's/^Call-ID: //p' | head -n 1)
	assert_sipnatd "BYE $cid from 198\\.51\\.100\\.20:5060 \\(upstream\\): target, upstream request to a device flow" \
		"sipnatd's log (caller's BYE to $ua)"
	say "call to $ua answered, caller's BYE reached the phone through sipnatd"

	call_and_hangup "$ua" 10 || fail "call to $ua (phone hangs up) failed: $(cat "$CALL_DIR/hangup.log")"
	cid=$(call_messages | sed -n 's/^Call-ID: //p' | head -n 1)
	assert_sipnatd "BYE $cid from 203\\.0\\.113\\.10[12]:[0-9]+ \\(device" \
		"sipnatd's log (phone's BYE from $ua)"
	say "call to $ua answered, the phone's BYE reached the caller through sipnatd"
done

# Negative control: the same phones without sipnatd.  The PBX stores the
# private Contact and cannot reach it, which shows the calls above needed
# sipnatd (and that this test can fail).
stop_phone ua1
stop_phone ua2
stop_sipnatd
stop_pbx
start_pbx
phone ua2 192.168.2.10 direct
: >"$WORK/ua2/baresip.log"
start_phone ua2
wait_registered ua2
if call ua2 "$SCEN/uac-rr.xml" 8; then
	fail "negative control: the call to ua2 registered without sipnatd succeeded"
fi
call_messages | grep -q '^SIP/2.0 200' && fail "negative control: ua2 answered without sipnatd"
assert_pbx 'pbx: lookup ua2 -> sip:ua2-[^ ]*@192\.168\.2\.10:5060 via <null>' \
	"kamailio's log (direct registration of ua2)"
say "negative control: without sipnatd the call to ua2 fails ($(call_outcome))"
say "PASS"
exit 0
