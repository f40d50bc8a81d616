#!/bin/sh
# state-save: the registrations sipnatd writes while it runs (a forked
# child writes the file, the SIP thread goes on) survive a crash.
#
# 300 devices (sipp, one AOR each) register through sipnatd to a sipp
# registrar.  Checks:
#   - within the save interval the state file lists all 300, written by a
#     child process that sipnatd then reaps (no zombie left behind);
#   - sipnatd killed with SIGKILL (no exit path, so no final save) and
#     started again on the same state_dir restores the 300 registrations.
TEST_SLOT=64
. "$(dirname "$0")/lib.sh"
setup

UP_PORT=$((PORT_BASE + 10))
DEV_PORT=$((PORT_BASE + 20))
N=300
write_config "$WORK/sipnat.conf" <<CONF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP_IP:$UP_PORT
keepalive = off
[relay]
mode = never
CONF
start_sipnatd "$WORK/sipnat.conf"
start_uas registrar "$UP_IP" "$UP_PORT" 30 -sf "$SCEN/uas-registrar.xml" -m "$N" -trace_err
run_sipp devices 25 -sf "$SCEN/uac-register-many.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
	-p "$DEV_PORT" -m "$N" -r 100 -trace_err || fail "sipp devices: exit status $?"

STATE="$WORK/state/registrations"
saved() { [ -f "$STATE" ] && [ "$(grep -c '^v1 ' "$STATE")" = "$N" ]; }
wait_for 15 saved || fail "the state file does not list $N registrations: $(grep -c '^v1 ' "$STATE" 2>/dev/null)"
say "state file lists $N registrations"
# The child that wrote it is reaped at the next tick (1 s).
children() { cat /proc/"$SIPNATD_PID"/task/*/children 2>/dev/null | tr -d ' \n'; }
wait_for 5 eval '[ -z "$(children)" ]' ||
	fail "sipnatd has a child left after the save: $(children) ($(ps -o pid,stat,args -p "$(children)" 2>/dev/null | tail -n 1))"
say "the saving child is gone"

kill -KILL "$SIPNATD_PID"
wait "$SIPNATD_PID" 2>/dev/null
SIPNATD_PID=
mv "$SIPNATD_LOG" "$WORK/sipnatd-killed.log" # start_sipnatd waits for a new "started"
start_sipnatd "$WORK/sipnat.conf"
wait_for 10 grep -q "restored $N registration(s) from $STATE" "$SIPNATD_LOG" ||
	fail "no 'restored $N registration(s)' after the restart: $(grep restored "$SIPNATD_LOG")"
say "after SIGKILL and a restart: $N registrations restored"
stop_sipnatd
check_sanitizers
say "PASS"
