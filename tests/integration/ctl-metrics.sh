#!/bin/sh
# ctl-metrics: sipnatctl and the /metrics endpoint against the real sipnatd.
#
#  1. sipnatctl with no daemon behind the socket: a clear message, exit 1;
#  2. status (text and --json, the JSON checked by python3 -m json.tool);
#  3. a device behind NAT registers through sipnatd to Kamailio:
#     sipnatctl registrations lists it with its flow and NAT verdict, and
#     /metrics counts the requests and the registration;
#  4. loglevel debug takes effect (debug lines appear in the log);
#  5. reload with a broken file is refused with file:line reasons and the
#     daemon keeps running; a good file reloads, and a TCP listener it adds
#     is opened and answers OPTIONS; dropped again, it stops listening;
#  6. drain shows in status and in /metrics;
#  7. /metrics is valid exposition format (promtool when installed, else a
#     parser here), and the socket file is gone after the stop.
TEST_SLOT=37
# shellcheck source=tests/integration/lib.sh
. "${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
setup python3 kamailio

SIPNATCTL="${SIPNATCTL:-$(dirname "$SIPNATD")/sipnatctl}"
[ -x "$SIPNATCTL" ] || skip "no sipnatctl at $SIPNATCTL"
UP_PORT=$((PORT_BASE + 1))
DEV_PORT=$((PORT_BASE + 2))
METRICS_PORT=$((PORT_BASE + 10))
SOCK="$WORK/run/control.sock"
ctl() { "$SIPNATCTL" -s "$SOCK" "$@"; }

# metrics OUT: scrapes /metrics into OUT, checks the Content-Type and the
# format, and writes OUT.values ("series value" per line).
metrics() {
	python3 "$srcdir/tests/integration/prom-scrape.py" "http://127.0.0.1:$METRICS_PORT/metrics" "$1" ||
		fail "GET /metrics: invalid answer (see above)"
	if command -v promtool >/dev/null 2>&1; then
		promtool check metrics <"$1" || fail "promtool check metrics"
	fi
}
# value FILE SERIES: the value of one series.
value() {
	awk -v s="$2" '$1 == s { print $2; found = 1 } END { if (!found) print "missing" }' "$1.values"
}

# --- 1: no daemon
mkdir -p "$WORK/run"
ctl status >"$WORK/nodaemon.out" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "sipnatctl without a daemon: exit status $rc, expected 1"
assert_file_has "$WORK/nodaemon.out" "cannot connect to $SOCK: .*; is sipnatd running\?" \
	"sipnatctl without a daemon"
"$SIPNATCTL" frobnicate >/dev/null 2>&1
rc=$?
[ "$rc" = 2 ] || fail "unknown command: exit status $rc, expected 2"

# --- 2: status
write_config "$WORK/sipnat.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP_IP:$UP_PORT
[relay]
mode = never
[control]
socket = $SOCK
metrics = 127.0.0.1:$METRICS_PORT
[log]
level = info
target = stderr
EOF
cp "$WORK/sipnat.conf" "$WORK/good.conf"

mkdir -p "$WORK/pbx"
kamailio -f "$srcdir/tests/integration/pbx-kamailio.cfg" -l "udp:$UP_IP:$UP_PORT" \
	-A "PBX_ADDR=$UP_IP" -DD -E -w "$WORK/pbx" >"$WORK/pbx/kamailio.log" 2>&1 &
BG_PIDS="$BG_PIDS $!"
wait_for 10 listening udp "$UP_IP" "$UP_PORT" || fail "kamailio did not start"
start_sipnatd "$WORK/sipnat.conf"
wait_for 5 test -S "$SOCK" || fail "no control socket at $SOCK"

ctl status >"$WORK/status.out" 2>&1 || { cat "$WORK/status.out"; fail "sipnatctl status"; }
assert_file_has "$WORK/status.out" '^version +[0-9]+\.[0-9]+' "status: version"
assert_file_has "$WORK/status.out" '^state +running$' "status: state"
assert_file_has "$WORK/status.out" "^listeners +udp:$PROXY_IP:$PROXY_PORT\$" "status: listeners"
assert_file_has "$WORK/status.out" "^upstreams +sip:$UP_IP:$UP_PORT +up\$" "status: upstreams"
assert_file_has "$WORK/status.out" '^counters +requests +0$' "status: counters"
ctl --json status >"$WORK/status.json" || fail "sipnatctl --json status"
python3 -m json.tool "$WORK/status.json" >/dev/null || fail "--json status is not JSON"
python3 - "$WORK/status.json" "$PROXY_PORT" <<'PY' || fail "--json status content"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["ok"] is True and s["draining"] is False, s
assert s["listeners"][0]["port"] == int(sys.argv[2]), s["listeners"]
assert isinstance(s["uptime"], int) and s["counters"]["requests"] == 0, s
PY
say "status OK"
metrics "$WORK/m0"
[ "$(value "$WORK/m0" sipnat_sip_requests_total)" = 0 ] || fail "requests_total before traffic"
[ "$(value "$WORK/m0" "sipnat_upstream_up{uri=\"sip:$UP_IP:$UP_PORT\"}")" = 1 ] ||
	fail "sipnat_upstream_up"

# --- 3: a registration
run_sipp dev 10 -sf "$SCEN/ctl-register.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
	-p "$DEV_PORT" -key user alice -key contact_host 192.168.1.50 -m 1 -trace_err ||
	fail "REGISTER through sipnatd: sipp exit status $?"
ctl registrations >"$WORK/regs.out" 2>&1 || { cat "$WORK/regs.out"; fail "sipnatctl registrations"; }
cat "$WORK/regs.out"
assert_file_has "$WORK/regs.out" '^AOR +CONTACT +FLOW +NAT +EXPIRES IN +LAST KEEPALIVE ANSWER$' \
	"registrations header"
assert_file_has "$WORK/regs.out" \
	"^sip:alice@$PROXY_IP +sip:alice@192.168.1.50:${DEV_PORT}[^ ]* +udp:$DEV_IP:$DEV_PORT +yes \(.*contact_priv.*\) +(1m5[0-9]s|2m00s) " \
	"registrations row"
ctl --json registrations | python3 -m json.tool >/dev/null || fail "--json registrations"
metrics "$WORK/m1"
req=$(value "$WORK/m1" sipnat_sip_requests_total)
if [ "$req" = missing ] || [ "$req" -lt 1 ]; then fail "requests_total did not move ($req)"; fi
[ "$(value "$WORK/m1" 'sipnat_registrations{nat="yes",transport="udp"}')" = 1 ] ||
	fail "sipnat_registrations{nat=yes,transport=udp} is not 1"
[ "$(value "$WORK/m1" sipnat_sip_responses_total)" -ge 1 ] || fail "responses_total did not move"
say "registration listed and counted"

# --- 4: loglevel
grep -q ' debug: ' "$SIPNATD_LOG" && fail "debug lines at level info"
ctl loglevel loud >/dev/null 2>&1 && fail "loglevel loud accepted"
ctl loglevel debug >"$WORK/ll.out" 2>&1 || fail "sipnatctl loglevel debug"
run_sipp dev2 10 -sf "$SCEN/ctl-register.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
	-p "$DEV_PORT" -key user bob -key contact_host 192.168.1.51 -m 1 -trace_err ||
	fail "second REGISTER: sipp exit status $?"
wait_for 3 grep -q ' debug: ' "$SIPNATD_LOG" || fail "no debug lines after loglevel debug"
say "loglevel debug took effect"

# --- 5: reload
sed "s/^\[relay\]/failover_timeout = banana\n[relay]/" "$WORK/good.conf" >"$WORK/sipnat.conf"
ctl reload >"$WORK/reload.out" 2>&1
rc=$?
cat "$WORK/reload.out"
[ "$rc" = 1 ] || fail "reload of a broken file: exit status $rc, expected 1"
assert_file_has "$WORK/reload.out" "$WORK/sipnat.conf:[0-9]+: .*failover_timeout" "reload error"
sipnatd_alive || fail "sipnatd died on a broken reload"
ctl status >/dev/null || fail "status after the refused reload"
metrics "$WORK/m-refused"
[ "$(value "$WORK/m-refused" 'sipnat_config_reloads_total{result="refused"}')" = 1 ] ||
	fail "the refused reload is not counted"
[ "$(value "$WORK/m-refused" sipnat_config_last_reload_successful)" = 0 ] ||
	fail "sipnat_config_last_reload_successful is not 0 after a refused reload"
# the good file, plus a TCP listener: opened by the reload itself
sed "s|^listen = udp:$PROXY_IP:$PROXY_PORT\$|listen = udp:$PROXY_IP:$PROXY_PORT tcp:$PROXY_IP:$PROXY_PORT|" \
	"$WORK/good.conf" >"$WORK/sipnat.conf"
grep -q "tcp:$PROXY_IP:$PROXY_PORT" "$WORK/sipnat.conf" || fail "test bug: no TCP listener in the new file"
ctl reload >"$WORK/reload2.out" 2>&1 || { cat "$WORK/reload2.out"; fail "reload of a good file"; }
wait_for 5 listening tcp "$PROXY_IP" "$PROXY_PORT" || fail "the TCP listener added by the reload is not open"
python3 - "$PROXY_IP" "$PROXY_PORT" <<'PY' || fail "OPTIONS over the TCP listener added by the reload"
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=5)
lp = s.getsockname()[1]
msg = ("OPTIONS sip:%s:%d;transport=tcp SIP/2.0\r\n"
       "Via: SIP/2.0/TCP 127.0.0.3:%d;branch=z9hG4bKreloadtcp1\r\n"
       "From: <sip:probe@127.0.0.3>;tag=rl1\r\nTo: <sip:%s:%d>\r\n"
       "Call-ID: reload-tcp-1@127.0.0.3\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
       "Content-Length: 0\r\n\r\n" % (host, port, lp, host, port))
s.sendall(msg.encode())
data = b""
while b"\r\n\r\n" not in data:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
first = data.split(b"\r\n", 1)[0]
sys.exit(0 if first.startswith(b"SIP/2.0 200") else "answer: %r" % first)
PY
# and dropping it again: it stops listening (sip-reload-listeners.sh tests
# the connections it leaves open)
cp "$WORK/good.conf" "$WORK/sipnat.conf"
ctl reload >"$WORK/reload3.out" 2>&1 || { cat "$WORK/reload3.out"; fail "reload dropping the TCP listener"; }
wait_for 5 eval '! listening tcp "$PROXY_IP" "$PROXY_PORT"' ||
	fail "the TCP listener the reload dropped is still open"
assert_log "stopped listening on tcp:$PROXY_IP:$PROXY_PORT"
metrics "$WORK/m-reloaded"
[ "$(value "$WORK/m-reloaded" 'sipnat_config_reloads_total{result="applied"}')" = 2 ] ||
	fail "the two good reloads are not counted as applied"
[ "$(value "$WORK/m-reloaded" sipnat_config_last_reload_successful)" = 1 ] ||
	fail "sipnat_config_last_reload_successful is not 1 after a good reload"
say "reload refused with file:line, then applied; a listener added by a reload answers, one it drops closes"

# --- 6: drain
ctl drain >/dev/null || fail "sipnatctl drain"
ctl status | grep -Eq '^state +draining' || fail "status does not say draining"
metrics "$WORK/m2"
[ "$(value "$WORK/m2" sipnat_draining)" = 1 ] || fail "sipnat_draining is not 1"
[ "$(value "$WORK/m2" sipnat_sip_requests_total)" -gt "$req" ] || fail "requests_total did not move"
sipnatd_alive || fail "sipnatd exited on drain"

# --- 7: HTTP errors, stop
python3 - "$METRICS_PORT" <<'PY' || fail "HTTP 404/400"
import socket, sys
def ask(req):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
    s.sendall(req)
    data = b""
    while True:
        b = s.recv(4096)
        if not b:
            return data.split(b"\r\n")[0]
        data += b
assert ask(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n") == b"HTTP/1.1 404 Not Found"
assert ask(b"hello there\r\n\r\n") == b"HTTP/1.1 400 Bad Request"
PY
stop_sipnatd
[ -e "$SOCK" ] && fail "the socket file is still there after the stop"
ctl status >"$WORK/after.out" 2>&1 && fail "sipnatctl succeeded after the stop"
assert_file_has "$WORK/after.out" "is sipnatd running\?" "sipnatctl after the stop"
say "PASS"
