#!/bin/sh
# sip-shutdown: graceful stop and reload.
#
#  1. SIGTERM while an INVITE transaction is open (the PBX answers 486
#     only after 2 s): sipnatd keeps serving it (the caller still gets the
#     486), answers new requests with 503 meanwhile, and exits 0 within
#     shutdown_timeout;
#  2. SIGHUP with a broken configuration file: sipnatd logs that the
#     reload was refused and keeps running with the old configuration;
#     SIGHUP with a good file that names another upstream: applied, the
#     next call goes to the new upstream.
TEST_SLOT=9
# shellcheck source=tests/integration/lib.sh
. "${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
setup sipsak

UP_PORT=$((PORT_BASE + 1))
DEV_PORT=$((PORT_BASE + 2))
NEW_UP_PORT=$((PORT_BASE + 3))
DEV2_PORT=$((PORT_BASE + 4))
SHUTDOWN_TIMEOUT=8

# --- 1: drain on SIGTERM
write_config "$WORK/sipnat.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP_IP:$UP_PORT
shutdown_timeout = $SHUTDOWN_TIMEOUT
EOF
start_sipnatd "$WORK/sipnat.conf"
start_uas pbx "$UP_IP" "$UP_PORT" 30 -sf "$SCEN/uas-slow-busy.xml" -m 1 -trace_err
pbx=$LAST_PID
start_sipp dev 30 -sf "$SCEN/uac-busy.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" -p "$DEV_PORT" \
	-s 100 -m 1 -trace_err -trace_msg -message_file msg.log
dev=$LAST_PID
wait_for 10 grep -q 'received 180 Ringing' "$SIPNATD_LOG" || fail "the call did not ring"

t0=$(date +%s)
kill -TERM "$SIPNATD_PID"
wait_for 5 grep -q 'shutdown: waiting for 1 open transaction' "$SIPNATD_LOG" ||
	fail "sipnatd did not wait for the open INVITE transaction"
# A new request during the drain.
request drain OPTIONS "sip:100@$PROXY_IP:$PROXY_PORT" 70
shoot drain
assert_file_has "$WORK/drain.reply" '^SIP/2.0 503 ' "new request while draining"
sipnatd_alive || fail "sipnatd exited before its open transaction ended"

wait_pid "$dev" "caller (must get the 486 during the drain)"
wait_pid "$pbx" "slow PBX"
assert_file_has "$(sipp_messages dev)" '^SIP/2.0 486 ' "486 relayed during the drain"
wait_sipnatd_exit $((SHUTDOWN_TIMEOUT + 2))
elapsed=$(($(date +%s) - t0))
[ "$elapsed" -le $((SHUTDOWN_TIMEOUT + 1)) ] || fail "the stop took ${elapsed}s"
assert_log 'stopped' "stop log line"
if grep -q 'still open after' "$SIPNATD_LOG"; then
	fail "the drain hit shutdown_timeout instead of finishing the transaction"
fi

# --- 2: reload
: >"$WORK/sipnatd.log"
start_sipnatd "$WORK/sipnat.conf"
cp "$WORK/sipnat.conf" "$WORK/good.conf"
printf '[sip]\nlisten = udp:%s:%s\nupstream = sip:%s:%s\nfailover_timeout = banana\n' \
	"$PROXY_IP" "$PROXY_PORT" "$UP_IP" "$NEW_UP_PORT" >"$WORK/sipnat.conf"
kill -HUP "$SIPNATD_PID"
wait_for 5 grep -q 'reload refused' "$SIPNATD_LOG" || fail "no 'reload refused' after a broken file"
assert_log 'failover_timeout' "the reason for the refusal"
sipnatd_alive || fail "sipnatd died on a broken reload"
request alive OPTIONS "sip:$PROXY_IP:$PROXY_PORT" 70
shoot alive
assert_file_has "$WORK/alive.reply" '^SIP/2.0 200 ' "OPTIONS after the refused reload"

sed "s/^upstream = .*/upstream = sip:$UP_IP:$NEW_UP_PORT/" "$WORK/good.conf" >"$WORK/sipnat.conf"
kill -HUP "$SIPNATD_PID"
wait_for 5 grep -q 'info: reloaded' "$SIPNATD_LOG" || fail "the good file was not applied"
start_uas pbx2 "$UP_IP" "$NEW_UP_PORT" 30 -sf "$SCEN/uas-rr.xml" -m 1 -trace_err
pbx=$LAST_PID
run_sipp dev2 20 -sf "$SCEN/uac-rr.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" -p "$DEV2_PORT" \
	-s 100 -m 1 -trace_err || fail "call to the reloaded upstream: sipp exit status $?"
wait_pid "$pbx" "new upstream"

stop_sipnatd
say "PASS"
