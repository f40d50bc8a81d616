#!/bin/sh
# sip-upstream-to-device: the upstream PBX (sipp UAC on 127.0.0.2, using
# sipnatd as outbound proxy) calls a device (sipp UAS on 127.0.0.3) whose
# address is the Request-URI.  Requests from an upstream go where their
# Request-URI says, so the calls complete; the device sees sipnatd's
# Record-Route and the PBX's in-dialog ACK/BYE come through sipnatd.
TEST_SLOT=3
# shellcheck source=tests/integration/lib.sh
. "${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
setup

CALLS=5
UP_PORT=$((PORT_BASE + 1))
DEV_PORT=$((PORT_BASE + 2))

write_config "$WORK/sipnat.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP_IP:$UP_PORT
EOF
start_sipnatd "$WORK/sipnat.conf"

start_uas dev "$DEV_IP" "$DEV_PORT" 30 -sf "$SCEN/uas-rr.xml" -m $CALLS \
	-trace_msg -message_file msg.log -trace_err
dev=$LAST_PID
# Request-URI sip:dev@127.0.0.3:DEV_PORT, sent to sipnatd (-rsa).
run_sipp pbx 30 -sf "$SCEN/uac-rr.xml" "$DEV_IP:$DEV_PORT" -rsa "$PROXY_IP:$PROXY_PORT" \
	-i "$UP_IP" -p "$UP_PORT" -s dev -m $CALLS -r 10 -trace_msg -message_file msg.log \
	-trace_err || fail "PBX caller: sipp exit status $?"
wait_pid "$dev" "device callee"

msgs=$(sipp_messages dev)
n=$(count_matches "$msgs" "^INVITE sip:dev@$DEV_IP:$DEV_PORT SIP/2.0$")
[ "$n" -ge $CALLS ] || fail "the device saw $n INVITEs for sip:dev@$DEV_IP:$DEV_PORT"
assert_file_has "$msgs" "^Record-Route: <sip:([^@>]*@)?$PROXY_IP:$PROXY_PORT;lr>$" \
	"Record-Route at the device"
n=$(count_matches "$msgs" "^Via: SIP/2.0/UDP $PROXY_IP:$PROXY_PORT;")
[ "$n" -ge $((3 * CALLS)) ] || fail "only $n requests reached the device through sipnatd"
n=$(count_matches "$msgs" "^(ACK|BYE) sip:$DEV_IP:$DEV_PORT")
[ "$n" -ge $((2 * CALLS)) ] || fail "only $n in-dialog ACK/BYE reached the device"
assert_log "INVITE .* from $UP_IP:$UP_PORT \\(upstream\\): target" "routing decision"

stop_sipnatd
say "PASS"
