#!/bin/sh
# sip-cancel: a device calls, the PBX rings, the device CANCELs.
#
# Passes when, for every call, the caller gets 200 for its CANCEL and 487
# for its INVITE (uac-cancel.xml), the callee gets the CANCEL that sipnatd
# sends on (uas-cancel.xml, RFC 3261 section 16.10), both sipp runs end in
# time, and afterwards sipnatd holds no transaction: SIGTERM stops it at
# once, without waiting for open transactions.
TEST_SLOT=4
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
shutdown_timeout = 10
EOF
start_sipnatd "$WORK/sipnat.conf"

start_uas pbx "$UP_IP" "$UP_PORT" 30 -sf "$SCEN/uas-cancel.xml" -m $CALLS \
	-trace_msg -message_file msg.log -trace_err
pbx=$LAST_PID
run_sipp dev 30 -sf "$SCEN/uac-cancel.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" -p "$DEV_PORT" \
	-s 100 -m $CALLS -r 10 -trace_msg -message_file msg.log -trace_err ||
	fail "caller: sipp exit status $?"
wait_pid "$pbx" "callee"

n=$(count_matches "$(sipp_messages pbx)" '^CANCEL sip:')
[ "$n" -ge $CALLS ] || fail "the callee got $n CANCELs, expected $CALLS"
n=$(count_matches "$(sipp_messages dev)" '^SIP/2.0 487 ')
[ "$n" -ge $CALLS ] || fail "the caller got $n 487s, expected $CALLS"

# Nothing left open: the drain finds no transaction and exits at once.
stop_sipnatd 3
if grep -q 'shutdown: waiting for' "$SIPNATD_LOG"; then
	fail "transactions were still open after every call was canceled"
fi
say "PASS"
