#!/bin/sh
# nat-contact-rewrite: sipnatd with path = no in front of a registrar that
# ignores Path (kamailio -A NO_PATH), as many PBXs do.
#
# sipnatd rewrites the phones' Contacts to itself with a signed snc=
# parameter (flow + original Contact) and restores the original in the
# 200 OK.  Checks:
#   - both phones register, sipnatd logs them as NAT'd;
#   - the PBX's location holds sipnatd's address with the snc= token, and
#     no Path (its lookup log line: -> sip:...@203.0.113.10:5060;snc=...
#     via <null>);
#   - each phone saw its own private Contact in the 200 OK to its REGISTER
#     (baresip's SIP trace) and never a rewritten one;
#   - calls from the PBX side to ua2 (symmetric NAT) and ua1 are answered and
#     end with the caller's BYE and with the phone's BYE.
# shellcheck source=tests/integration/natlib.sh disable=SC2119
. "$(dirname "$0")/natlib.sh"

nat_setup cr
start_pbx -A NO_PATH
sipnatd_conf "$WORK/sipnat.conf" "$WORK/state" "path = no"
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
grep -q 'Path' "$WORK/pbx.log" && fail "kamailio saw a Path header"

for ua in ua1 ua2; do
	case $ua in ua1) ip=192.168.1.10 ;; ua2) ip=192.168.2.10 ;; esac
	# baresip's trace: "SIP/2.0 200 OK" ... "CSeq: N REGISTER" ...
	# "Contact: <sip:uaX-...@PRIVATE:5060>;expires=3600".
	tr -d '\r' <"$WORK/$ua/baresip.log" | awk '
		/^SIP\/2\.0 / { st = $2; reg = 0 }
		/^CSeq: [0-9]+ REGISTER/ { reg = 1 }
		/^Contact: / && st == 200 && reg { print }' >"$WORK/$ua/reg-contacts"
	grep -Eq "^Contact: <sip:$ua-[^>]*@$ip:5060>;expires=[1-9]" "$WORK/$ua/reg-contacts" ||
		fail "$ua's 200 OK to REGISTER does not show its own Contact: $(cat "$WORK/$ua/reg-contacts")"
	grep -q 'snc=' "$WORK/$ua/baresip.log" && fail "$ua saw a rewritten Contact (snc=)"
done
say "registered; each phone's 200 OK shows its own private Contact, no snc="

for ua in ua2 ua1; do
	case $ua in ua1) ip=192.168.1.10 ;; ua2) ip=192.168.2.10 ;; esac
	call "$ua" "$SCEN/uac-rr.xml" 10 || fail "call to $ua (caller hangs up) failed"
	assert_pbx "pbx: lookup $ua -> sip:$ua-[^ ]*@203\\.0\\.113\\.10:5060;snc=[^ ]+ via <null>" \
		"kamailio's log (location of $ua is sipnatd)"
	msgs=$(call_messages)
	# Towards the PBX, the phone's answer carries sipnatd's Contact too, so
	# that the caller's in-dialog requests come back through it.
	echo "$msgs" | grep -Eq "^Contact: <sip:$ua-[^>]*@203\\.0\\.113\\.10:5060;snc=" ||
		fail "the 200 OK for $ua reached the caller without a rewritten Contact"
	echo "$msgs" | grep -Eq "^BYE sip:$ua-[^ ]*@203\\.0\\.113\\.10:5060;snc=" ||
		fail "the caller's BYE to $ua was not sent to sipnatd's Contact"
	for m in ACK BYE; do
		grep -a -q "^$m sip:$ua-[^ ]*@$ip:5060 SIP/2.0" "$WORK/$ua/baresip.log" ||
			fail "the caller's $m did not reach $ua with its own Contact as Request-URI"
	done
	say "call to $ua answered, caller's ACK and BYE reached the phone with its own Contact restored"

	call_and_hangup "$ua" 10 || fail "call to $ua (phone hangs up) failed: $(cat "$CALL_DIR/hangup.log")"
	say "call to $ua answered, the phone's BYE reached the caller"
done
stop_sipnatd
say "PASS"
exit 0
