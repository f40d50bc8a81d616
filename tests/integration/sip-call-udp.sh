#!/bin/sh
# sip-call-udp: calls over UDP from a device (sipp UAC on 127.0.0.3)
# through sipnatd to the upstream PBX (sipp UAS on 127.0.0.2).
#
# Passes when 10 calls complete on both sides, the INVITE reaching the PBX
# carries sipnatd's Record-Route and a decremented Max-Forwards (RFC 3261
# section 16.6 items 3 and 4), and the caller's in-dialog ACK and BYE,
# sent to the callee's Contact with the recorded route set, reach the PBX
# through sipnatd (its Via on top, our Route entry consumed).
TEST_SLOT=1
# shellcheck source=tests/integration/lib.sh
. "${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
setup

CALLS=10
UP_PORT=$((PORT_BASE + 1))
DEV_PORT=$((PORT_BASE + 2))

write_config "$WORK/sipnat.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP_IP:$UP_PORT
EOF
start_sipnatd "$WORK/sipnat.conf"

start_uas pbx "$UP_IP" "$UP_PORT" 30 -sf "$SCEN/uas-rr.xml" -m $CALLS \
	-trace_msg -message_file msg.log -trace_err
pbx=$LAST_PID
run_sipp dev 30 -sf "$SCEN/uac-rr.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" -p "$DEV_PORT" \
	-s 100 -m $CALLS -r 20 -trace_msg -message_file msg.log -trace_err ||
	fail "caller: sipp exit status $?"
wait_pid "$pbx" "callee"

msgs=$(sipp_messages pbx)
n=$(count_matches "$msgs" '^INVITE ')
[ "$n" -ge $CALLS ] || fail "the PBX saw $n INVITEs, expected $CALLS"
assert_file_has "$msgs" "^Record-Route: <sip:([^@>]*@)?$PROXY_IP:$PROXY_PORT;lr>" "Record-Route at the PBX"
# The device sent Max-Forwards: 70 on every request.
n=$(count_matches "$msgs" '^Max-Forwards: 69')
[ "$n" -ge $((2 * CALLS)) ] || fail "Max-Forwards not decremented (69 seen $n times)"
# In-dialog requests are addressed to the PBX's Contact, came through us
# (our Via on top) and had our Route removed.
awk -v via="Via: SIP/2.0/UDP $PROXY_IP:$PROXY_PORT;" -v calls=$CALLS '
	/^(ACK|BYE) sip:/ { inreq = 1; first = 1; n[$1]++; next }
	inreq && /^Via:/ { if (first && index($0, via) == 1) ok++; first = 0 }
	inreq && /^Route:/ { bad++ }
	/^$/ { inreq = 0 }
	END { exit !(n["ACK"] >= calls && n["BYE"] >= calls && ok >= 2 * calls && !bad) }
' "$msgs" || fail "ACK/BYE did not follow the route through sipnatd"
assert_file_has "$msgs" "^ACK sip:$UP_IP:$UP_PORT" "ACK to the PBX's Contact"
assert_file_has "$msgs" "^BYE sip:$UP_IP:$UP_PORT" "BYE to the PBX's Contact"

stop_sipnatd
say "PASS"
