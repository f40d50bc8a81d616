#!/bin/sh
# nat-tcp: a phone whose NAT drops UDP registers over TCP through sipnatd
# and is called back over the same TCP connection (RFC 5626 section 5.3:
# for a connection-oriented flow the connection is the flow).
#
# ua3 sits behind nat3, which forwards no UDP from its LAN and, like every
# lab NAT, no unsolicited connection from outside: the only way back to
# ua3 is the connection it opened.  sipnatd listens on UDP and TCP on pub
# and talks UDP to the PBX.  Checks:
#   - sipnatd logs ua3's registration via tcp:203.0.113.103:PORT (NAT);
#   - calls from the PBX side reach ua3 and end with the caller's BYE and
#     with the phone's BYE;
#   - sipnatd sent the INVITEs over tcp to 203.0.113.103:PORT, and pub has
#     exactly one TCP connection with nat3, the one from the registration.
# shellcheck source=tests/integration/natlib.sh disable=SC2119
. "$(dirname "$0")/natlib.sh"

nat_setup tc
start_pbx
sipnatd_conf "$WORK/sipnat.conf" "$WORK/state" "path = yes"
start_sipnatd "$WORK/sipnat.conf"
wait_for 5 listening pub tcp "$PUB_IP:5060" || fail "sipnatd is not listening on tcp $PUB_IP:5060"
phone ua3 192.168.3.10 sipnatd tcp
start_phone ua3
wait_registered ua3
assert_sipnatd 'registered sip:ua3@198\.51\.100\.20(;transport=tcp)? via tcp:203\.0\.113\.103:[0-9]+ \(NAT\)' \
	"sipnatd's log (ua3 registration over TCP)"
port=$(sed -n 's/.*registered sip:ua3@[^ ]* via tcp:203\.0\.113\.103:\([0-9]*\) (NAT).*/\1/p' \
	"$SIPNATD_LOG" | head -n 1)
say "ua3 registered over TCP from 203.0.113.103:$port"

# conns: established TCP connections between pub and nat3, as "peer:port".
conns() {
	lab exec pub ss -Htn state established "( src $PUB_IP:5060 and dst 203.0.113.103 )" |
		awk '{ print $NF }' | sort -u
}

call ua3 "$SCEN/uac-rr.xml" 10 || fail "call to ua3 (caller hangs up) failed"
cid=$(call_messages | sed -n 's/^Call-ID: //p' | head -n 1)
# The REGISTER's Request-URI asked for TCP, so sipnatd's Path says
# transport=tcp and the PBX comes over TCP too, from any port.
assert_sipnatd "INVITE $cid from 198\\.51\\.100\\.20:[0-9]+ \\(upstream\\): target, upstream request to a device flow" \
	"sipnatd's log (INVITE to ua3's flow)"
grep -a -q '^BYE sip:ua3' "$WORK/ua3/baresip.log" || fail "the caller's BYE did not reach ua3"
say "call to ua3 answered, caller's BYE reached the phone"
call_and_hangup ua3 10 || fail "call to ua3 (phone hangs up) failed: $(cat "$CALL_DIR/hangup.log")"
say "call to ua3 answered, the phone's BYE reached the caller"

n_sent=$(sipnatd_count "sent INVITE .* to tcp/\\[?203\\.0\\.113\\.103\\]?:$port(/l[0-9]+)?\$")
[ "$n_sent" -ge 2 ] || fail "sipnatd did not send both INVITEs over tcp to 203.0.113.103:$port ($n_sent)"
c=$(conns)
[ "$c" = "203.0.113.103:$port" ] ||
	fail "expected exactly one connection with nat3, 203.0.113.103:$port; pub has: $(echo "$c" | tr '\n' ' ')"
say "both INVITEs went over the registration's connection 203.0.113.103:$port, the only one"
stop_sipnatd
say "PASS"
exit 0
