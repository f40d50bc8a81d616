#!/bin/sh
# sip-call-tcp: calls over TCP through sipnatd, then a mixed call.
#
#  1. device --TCP--> sipnatd --TCP--> PBX: 5 calls complete, one
#     Record-Route with transport=tcp reaches the PBX, ACK and BYE follow
#     the route over TCP;
#  2. device --TCP--> sipnatd --UDP--> PBX (upstream ;transport=udp): calls
#     complete and the PBX sees two Record-Route entries, ours for the UDP
#     side on top and ours for the TCP side below (RFC 3261 section 16.6
#     item 4, RFC 5658 double Record-Route).
TEST_SLOT=2
# shellcheck source=tests/integration/lib.sh
. "${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
setup

CALLS=5
UP_PORT=$((PORT_BASE + 1))
DEV_PORT=$((PORT_BASE + 2))
UP_UDP_PORT=$((PORT_BASE + 3))
DEV2_PORT=$((PORT_BASE + 4))

# --- 1: TCP on both sides
write_config "$WORK/tcp.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT tcp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP_IP:$UP_PORT;transport=tcp
EOF
start_sipnatd "$WORK/tcp.conf"
listening tcp "$PROXY_IP" "$PROXY_PORT" || fail "sipnatd does not listen on TCP"

start_uas pbx "$UP_IP" "$UP_PORT" 30 -t t1 -sf "$SCEN/uas-rr.xml" -m $CALLS \
	-trace_msg -message_file msg.log -trace_err
pbx=$LAST_PID
run_sipp dev 30 -t t1 -sf "$SCEN/uac-rr.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
	-p "$DEV_PORT" -s 100 -m $CALLS -r 10 -trace_msg -message_file msg.log -trace_err ||
	fail "TCP caller: sipp exit status $?"
wait_pid "$pbx" "TCP callee"

msgs=$(sipp_messages pbx)
assert_file_has "$msgs" "^TCP message received" "TCP at the PBX"
count=$(grep -c "^UDP message" "$msgs")
[ "$count" = 0 ] || fail "the PBX got $count UDP messages in a TCP-only call"
assert_file_has "$msgs" \
	"^Record-Route: <sip:([^@>]*@)?$PROXY_IP:$PROXY_PORT;transport=tcp;lr>$" \
	"single TCP Record-Route at the PBX"
n=$(count_matches "$msgs" '^(ACK|BYE) sip:')
[ "$n" -ge $((2 * CALLS)) ] || fail "only $n in-dialog ACK/BYE reached the PBX"
n=$(count_matches "$msgs" "^Via: SIP/2.0/TCP $PROXY_IP:$PROXY_PORT;")
[ "$n" -ge $((3 * CALLS)) ] || fail "only $n requests reached the PBX through sipnatd over TCP"
stop_sipnatd

# --- 2: device on TCP, upstream on UDP
write_config "$WORK/mixed.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT tcp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP_IP:$UP_UDP_PORT;transport=udp
EOF
: >"$WORK/sipnatd.log"
start_sipnatd "$WORK/mixed.conf"
start_uas pbx2 "$UP_IP" "$UP_UDP_PORT" 30 -sf "$SCEN/uas-rr.xml" -m $CALLS \
	-trace_msg -message_file msg.log -trace_err
pbx=$LAST_PID
run_sipp dev2 30 -t t1 -sf "$SCEN/uac-rr.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
	-p "$DEV2_PORT" -s 100 -m $CALLS -r 10 -trace_msg -message_file msg.log -trace_err ||
	fail "mixed caller: sipp exit status $?"
wait_pid "$pbx" "mixed callee (UDP)"

msgs=$(sipp_messages pbx2)
# The INVITE as the PBX got it: two Record-Route entries for sipnatd, the
# UDP one (toward the PBX) first.
awk -v ip="$PROXY_IP:$PROXY_PORT" '
	/^INVITE / { inv = 1; n = 0; next }
	inv && /^Record-Route:/ {
		line = $0
		sub(/^Record-Route: */, "", line)
		k = split(line, parts, ",")
		for (i = 1; i <= k; i++) rr[++n] = parts[i]
	}
	inv && /^$/ {
		inv = 0
		if (n == 2 && index(rr[1], ip ";lr>") && index(rr[2], ip ";transport=tcp;lr>"))
			good++
		else
			bad++
	}
	END { exit !(good >= 1 && !bad) }
' "$msgs" || fail "the PBX did not see two Record-Route entries (UDP then TCP) on every INVITE"
n=$(count_matches "$msgs" '^(ACK|BYE) sip:')
[ "$n" -ge $((2 * CALLS)) ] || fail "only $n in-dialog ACK/BYE reached the UDP PBX"
assert_file_has "$(sipp_messages dev2)" "^TCP message sent" "device over TCP"

stop_sipnatd
say "PASS"
