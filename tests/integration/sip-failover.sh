#!/bin/sh
# sip-failover: upstreams are tried in order.
#
#  1. upstream list = a dead address (127.0.0.4, nothing listening: the
#     ICMP port unreachable makes nta answer 503 itself) then a live PBX
#     (sipp UAS on 127.0.0.2): every call completes, on the live PBX, and
#     sipnatd logs that it failed over;
#  2. the same with a silent first upstream (a socket that reads nothing),
#     failover_timeout = 1: calls complete after the timeout;
#  3. upstream list = a PBX that answers 503 (127.0.0.4) then the live
#     one: the call completes on the second, the first saw the INVITE and
#     the caller never sees the 503;
#  4. one silent upstream, failover_timeout = 60, transaction_timeout = 3:
#     an INVITE gets 408 after about 3 s (Timer B), not after 32.
TEST_SLOT=7
# shellcheck source=tests/integration/lib.sh
. "${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
setup

CALLS=3
UP_PORT=$((PORT_BASE + 1))
DEAD_PORT=$((PORT_BASE + 2))
DEV_PORT=$((PORT_BASE + 3))
BUSY_PORT=$((PORT_BASE + 4))
UP2_PORT=$((PORT_BASE + 5))
DEV2_PORT=$((PORT_BASE + 6))

# --- 1: dead first upstream
listening udp "$UP2_IP" "$DEAD_PORT" && fail "something listens on $UP2_IP:$DEAD_PORT"
write_config "$WORK/dead.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP2_IP:$DEAD_PORT sip:$UP_IP:$UP_PORT
failover_timeout = 1
EOF
start_sipnatd "$WORK/dead.conf"
start_uas pbx "$UP_IP" "$UP_PORT" 30 -sf "$SCEN/uas-rr.xml" -m $CALLS \
	-trace_msg -message_file msg.log -trace_err
pbx=$LAST_PID
run_sipp dev 30 -sf "$SCEN/uac-rr.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" -p "$DEV_PORT" \
	-s 100 -m $CALLS -r 5 -trace_msg -message_file msg.log -trace_err ||
	fail "caller (dead first upstream): sipp exit status $?"
wait_pid "$pbx" "live PBX"
assert_log "upstream sip:$UP2_IP:$DEAD_PORT.*failing over" "failover log line"
n=$(count_matches "$(sipp_messages pbx)" '^INVITE ')
[ "$n" -ge $CALLS ] || fail "the live PBX saw $n INVITEs"
stop_sipnatd

# --- 2: silent first upstream
SILENT_PORT=$((PORT_BASE + 7))
DEV3_PORT=$((PORT_BASE + 8))
UP3_PORT=$((PORT_BASE + 9))
require_tools python3
# silent_upstream PORT SECONDS: a UDP socket on UP2_IP:PORT that reads
# nothing and answers nothing, for SECONDS.
silent_upstream() {
	timeout $(($2 + 5)) python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
time.sleep(int(sys.argv[3]))
' "$UP2_IP" "$1" "$2" &
	BG_PIDS="$BG_PIDS $!"
	wait_for 10 listening udp "$UP2_IP" "$1" || fail "silent upstream did not start"
}
silent_upstream "$SILENT_PORT" 35
write_config "$WORK/silent.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP2_IP:$SILENT_PORT sip:$UP_IP:$UP3_PORT
failover_timeout = 1
EOF
: >"$WORK/sipnatd.log"
start_sipnatd "$WORK/silent.conf"
start_uas pbx3 "$UP_IP" "$UP3_PORT" 30 -sf "$SCEN/uas-rr.xml" -m $CALLS \
	-trace_msg -message_file msg.log -trace_err
pbx=$LAST_PID
run_sipp dev3 30 -sf "$SCEN/uac-rr.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" -p "$DEV3_PORT" \
	-s 100 -m $CALLS -r 5 -trace_msg -message_file msg.log -trace_err ||
	fail "caller (silent first upstream): sipp exit status $?"
wait_pid "$pbx" "live PBX after the silent one"
assert_log "upstream sip:$UP2_IP:$SILENT_PORT: no answer in 1s; failing over" "timeout failover log line"
stop_sipnatd

# --- 3: first upstream answers 503
write_config "$WORK/busy.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP2_IP:$BUSY_PORT sip:$UP_IP:$UP2_PORT
failover_timeout = 5
EOF
: >"$WORK/sipnatd.log"
start_sipnatd "$WORK/busy.conf"
start_uas busy "$UP2_IP" "$BUSY_PORT" 30 -sf "$SCEN/uas-503.xml" -m 1 \
	-trace_msg -message_file msg.log -trace_err
busy=$LAST_PID
start_uas pbx2 "$UP_IP" "$UP2_PORT" 30 -sf "$SCEN/uas-rr.xml" -m 1 \
	-trace_msg -message_file msg.log -trace_err
pbx=$LAST_PID
run_sipp dev2 20 -sf "$SCEN/uac-rr.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" -p "$DEV2_PORT" \
	-s 100 -m 1 -trace_msg -message_file msg.log -trace_err ||
	fail "caller (503 first upstream): sipp exit status $?"
wait_pid "$pbx" "second PBX"
wait_pid "$busy" "503 PBX"
assert_log "upstream sip:$UP2_IP:$BUSY_PORT answered 503; failing over" "503 failover log line"
if grep -q '^SIP/2.0 503' "$(sipp_messages dev2)"; then
	fail "the caller saw the first upstream's 503"
fi
stop_sipnatd

# --- 4: transaction_timeout bounds the wait for a silent upstream (Timer B)
SILENT4_PORT=$((PORT_BASE + 10))
DEV4_PORT=$((PORT_BASE + 11))
silent_upstream "$SILENT4_PORT" 25
write_config "$WORK/t1x64.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP2_IP:$SILENT4_PORT
failover_timeout = 60
transaction_timeout = 3
EOF
: >"$WORK/sipnatd.log"
start_sipnatd "$WORK/t1x64.conf"
python3 - "$PROXY_IP" "$PROXY_PORT" "$DEV_IP" "$DEV4_PORT" <<'PY' || fail "transaction_timeout = 3"
import socket, sys, time
proxy, pport, dev, dport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((dev, dport))
s.sendto(("INVITE sip:bob@%s:%d SIP/2.0\r\n"
          "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-t1x64;rport\r\n"
          "From: <sip:alice@%s>;tag=t1\r\nTo: <sip:bob@%s>\r\n"
          "Call-ID: t1x64@%s\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
          "Contact: <sip:alice@%s:%d>\r\n"
          "Content-Length: 0\r\n\r\n" % (proxy, pport, dev, dport, dev, proxy, dev, dev, dport)).encode(),
         (proxy, pport))
start = time.monotonic()
s.settimeout(20)
while True:
    line = s.recv(65535).split(b"\r\n", 1)[0].decode()
    if not line.startswith("SIP/2.0 1"):
        break
took = time.monotonic() - start
print("final response %r after %.1f s" % (line, took))
sys.exit(0 if line.startswith("SIP/2.0 408") and 2 <= took <= 8
         else "expected 408 after about 3 s")
PY
stop_sipnatd
say "PASS"
