#!/bin/sh
# sip-malformed: broken messages over UDP and TCP (malformed.py) must not
# hurt sipnatd.
#
# Passes when every message that can be answered (parseable start line and
# a usable Via) gets 400 and the rest get nothing (malformed.py checks
# that and prints what came back for each), sipnatd is still running
# afterwards, it then completes a valid call, and its log shows the bad
# messages (Sofia's nta reports them at debug level).
TEST_SLOT=8
# shellcheck source=tests/integration/lib.sh
. "${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
setup python3

UP_PORT=$((PORT_BASE + 1))
DEV_PORT=$((PORT_BASE + 2))
MAL_PORT=$((PORT_BASE + 3))

write_config "$WORK/sipnat.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT tcp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP_IP:$UP_PORT
EOF
start_sipnatd "$WORK/sipnat.conf"

timeout 180 python3 "$srcdir/tests/integration/malformed.py" "$PROXY_IP" "$PROXY_PORT" \
	"$DEV_IP" "$MAL_PORT" >"$WORK/malformed.out" 2>&1
rc=$?
cat "$WORK/malformed.out"
sipnatd_alive || fail "sipnatd died on a malformed message"
[ $rc = 0 ] || fail "malformed.py: status $rc (see MISMATCH lines above)"
n=$(count_matches "$WORK/malformed.out" ' expected ')
[ "$n" -ge 30 ] || fail "malformed.py ran only $n cases"

# The log shows the rejects.
n=$(count_matches "$SIPNATD_LOG" 'is Bad Request|has bad [A-Za-z-]+ header|received garbage|bad version')
[ "$n" -ge 10 ] || fail "only $n bad messages in sipnatd's log"

# Still a working proxy.
start_uas pbx "$UP_IP" "$UP_PORT" 30 -sf "$SCEN/uas-rr.xml" -m 2 -trace_err
pbx=$LAST_PID
run_sipp dev 30 -sf "$SCEN/uac-rr.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" -p "$DEV_PORT" \
	-s 100 -m 2 -trace_err || fail "valid call after the malformed ones: sipp exit status $?"
wait_pid "$pbx" "callee"

stop_sipnatd
say "PASS"
