#!/bin/sh
# nat-keepalive: sipnatd's keepalives keep a phone's NAT binding open.
#
# The lab's NATs forget a UDP mapping after SIPNAT_LAB_UDP_TIMEOUT = 5 s of
# silence.  ua2 (behind the symmetric nat2) registers through sipnatd for
# an hour and sends nothing of its own afterwards (baresip sends no
# keepalives without RFC 5626 outbound, and does not refresh within the
# test).  Checks:
#   A) keepalive = options, keepalive_interval = 2: after 16 s (> 3 x the
#      NAT timeout) a call from the PBX still reaches ua2 and completes;
#      then ua2's SIP input is silently dropped (no ICMP, so only
#      sipnatd's own miss counting can notice before nta's 32 s timeout)
#      and sipnatd must log it unreachable after keepalive_failures (3)
#      missed intervals, and reachable again once the drop is lifted;
#      then the phone is killed (ICMP) and it is reported unreachable again
#      within a few intervals;
#   B) negative control, keepalive = off, everything else the same: after
#      16 s the call does not reach ua2 (its mapping is gone).
# shellcheck source=tests/integration/natlib.sh disable=SC2119
. "$(dirname "$0")/natlib.sh"

NAT_TIMEOUT=5
IDLE=16
INTERVAL=2
FAILURES=3
SIPNAT_LAB_UDP_TIMEOUT=$NAT_TIMEOUT
export SIPNAT_LAB_UDP_TIMEOUT
nat_setup ka

# phase KEEPALIVE: a fresh PBX, sipnatd and phone; ua2 registers, then
# everything stays idle for IDLE seconds.
phase() {
	stop_phone ua2
	stop_sipnatd
	stop_pbx
	start_pbx
	sipnatd_conf "$WORK/sipnat-$1.conf" "$WORK/state-$1" "keepalive = $1" \
		"keepalive_interval = $INTERVAL" "keepalive_failures = $FAILURES"
	start_sipnatd "$WORK/sipnat-$1.conf"
	phone ua2 192.168.2.10 sipnatd
	: >"$WORK/ua2/baresip.log"
	start_phone ua2
	wait_registered ua2
	say "keepalive = $1: ua2 registered; idle for ${IDLE}s (NAT UDP timeout ${NAT_TIMEOUT}s)"
	sleep "$IDLE"
}

phase options
n_opt=$(grep -a -c '^OPTIONS sip:ua2' "$WORK/ua2/baresip.log")
[ "$n_opt" -ge $((IDLE / INTERVAL - 2)) ] ||
	fail "ua2 received only $n_opt keepalive OPTIONS in ${IDLE}s (interval ${INTERVAL}s)"
call ua2 "$SCEN/uac-rr.xml" 10 || fail "keepalive = options: the call to ua2 failed after ${IDLE}s idle"
say "keepalive = options: ua2 answered $n_opt OPTIONS and the call after ${IDLE}s idle completed"

# The phone's network goes silent: its OPTIONS are dropped without an
# answer or ICMP, so nta's own 32 s transaction timeout would be the first
# to notice.  sipnatd must count misses in keepalive intervals itself and
# report ua2 unreachable after keepalive_failures (3) of them.
UNREACH="device sip:ua2@198\\.51\\.100\\.20 \\([^)]*\\) unreachable: $FAILURES keepalives unanswered"
# shellcheck disable=SC2317 # called through eval
n_unreach() { grep -Ec "$UNREACH" "$SIPNATD_LOG"; }
start=$(date +%s)
lab exec ua2 iptables -I INPUT -p udp --dport 5060 -j DROP || fail "cannot drop ua2's SIP input"
# shellcheck disable=SC2016 # expanded by eval, on each try
wait_for $((FAILURES * INTERVAL + 20)) eval '[ "$(n_unreach)" -ge 1 ]' ||
	fail "sipnatd did not report the silent ua2 unreachable"
took=$(($(date +%s) - start))
[ "$took" -ge $(((FAILURES - 1) * INTERVAL)) ] ||
	fail "silent ua2 reported unreachable after ${took}s, before $FAILURES keepalives could fail"
[ "$took" -le $(((FAILURES + 2) * INTERVAL)) ] ||
	fail "silent ua2 reported unreachable only after ${took}s ($FAILURES x ${INTERVAL}s expected, not nta's 32 s)"
say "ua2 silent: sipnatd reported it unreachable after ${took}s"
lab exec ua2 iptables -D INPUT -p udp --dport 5060 -j DROP || fail "cannot restore ua2's SIP input"
wait_for $((3 * INTERVAL + 5)) grep -Eq 'device sip:ua2@198\.51\.100\.20 \([^)]*\) reachable again' \
	"$SIPNATD_LOG" || fail "sipnatd did not notice ua2 answering again"
say "ua2 answers again: sipnatd reported it reachable"

# The phone dies: its OPTIONS go unanswered (the NAT binding is still
# there, the kernel behind it answers with ICMP).
start=$(date +%s)
stop_phone ua2
# shellcheck disable=SC2016 # expanded by eval, on each try
wait_for $((FAILURES * INTERVAL + 20)) eval '[ "$(n_unreach)" -ge 2 ]' ||
	fail "sipnatd did not report ua2 unreachable"
took=$(($(date +%s) - start))
[ "$took" -ge $(((FAILURES - 1) * INTERVAL)) ] ||
	fail "ua2 reported unreachable after ${took}s, before $FAILURES keepalives could fail"
[ "$took" -le $(((FAILURES + 2) * INTERVAL)) ] ||
	fail "ua2 reported unreachable only after ${took}s ($FAILURES x ${INTERVAL}s expected)"
say "ua2 killed: sipnatd reported it unreachable after ${took}s"

phase off
grep -a -q '^OPTIONS sip:ua2' "$WORK/ua2/baresip.log" && fail "keepalive = off still sent OPTIONS"
if call ua2 "$SCEN/uac-rr.xml" 8; then
	fail "negative control: keepalive = off, the call reached ua2 after ${IDLE}s idle"
fi
call_messages | grep -q '^SIP/2.0 200' && fail "negative control: ua2 answered with keepalive = off"
# The INVITE did leave sipnatd towards the stale mapping.
assert_sipnatd "INVITE $(call_messages | sed -n 's/^Call-ID: //p' | head -n 1) from 198\\.51\\.100\\.20:5060 \\(upstream\\): target" \
	"sipnatd's log (INVITE to the stale flow)"
say "negative control: keepalive = off, the call after ${IDLE}s idle fails ($(call_outcome))"
stop_sipnatd
say "PASS"
exit 0
