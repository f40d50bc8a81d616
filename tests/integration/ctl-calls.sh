#!/bin/sh
# ctl-calls: sipnatctl against a running sipnatd with a real registration
# and real calls with relayed RTP.
#
# Kamailio is the PBX (registrar and proxy) on the upstream address; a
# callee (127.0.0.5) registers through sipnatd and answers with sipp; a
# caller (127.0.0.3) calls it through sipnatd -> Kamailio -> sipnatd, both
# sending RTP with tests/lab/rtpcount.py.
#  1. During a call with audio: `sipnatctl calls` (table) and `--json calls`
#     list it with both relay ports, the latched addresses and packets
#     counted both ways; `registrations` lists the callee; /metrics (in
#     valid exposition format) counts the call, the relayed packets, the
#     latches, and the requests by method and responses by class (the
#     INVITE passes sipnatd twice: caller -> PBX -> callee).
#  2. Still during that call: a reload with a broken file is refused with
#     file:line and the daemon keeps its configuration; `sipnatctl reload`
#     and SIGHUP succeed; the registration and the call are still listed,
#     the audio keeps flowing (>= 95 % each way) and the call ends normally.
#  3. `sipnatctl hangup CALL-ID` ends a call: both parties receive a BYE,
#     and the call-end log line names the control socket.
#  4. `sipnatctl drain`: a new INVITE gets 503 with Retry-After, while the
#     call in progress still completes (its BYE gets 200).
#  5. The call log ([log] call_log) has one JSON line per finished call
#     with its Call-ID, reason, codecs and packets; after the file is
#     renamed (a log rotation) and SIGHUP, new lines go to a new file.
TEST_SLOT=58
# shellcheck source=tests/integration/lib.sh
. "${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
# shellcheck source=tests/integration/sdptrace.sh
. "$srcdir/tests/integration/sdptrace.sh"
setup python3 kamailio

SIPNATCTL="${SIPNATCTL:-$(dirname "$SIPNATD")/sipnatctl}"
[ -x "$SIPNATCTL" ] || skip "no sipnatctl at $SIPNATCTL"
RTPCOUNT="$srcdir/tests/lab/rtpcount.py"
[ -r "$RTPCOUNT" ] || skip "missing $RTPCOUNT"
UP_PORT=$((PORT_BASE + 1))
DEV_PORT=$((PORT_BASE + 2))
CALLEE_IP=127.0.0.5
CALLEE_PORT=$((PORT_BASE + 3))
LATE_PORT=$((PORT_BASE + 4)) # the caller refused while draining
METRICS_PORT=$((PORT_BASE + 5))
DEV_RTP=$((PORT_BASE + 10))
CALLEE_RTP=$((PORT_BASE + 12))
DEV_SIPP_MP=$((PORT_BASE + 30))
CALLEE_SIPP_MP=$((PORT_BASE + 34))
LATE_SIPP_MP=$((PORT_BASE + 40))
RELAY_LO=$((PORT_BASE + 60))
RELAY_HI=$((PORT_BASE + 99))
PACKETS=200
MIN_PACKETS=$((PACKETS * 95 / 100))
SOCK="$WORK/run/control.sock"
ctl() { "$SIPNATCTL" -s "$SOCK" "$@"; }
ms() { echo $(($(date +%s%N) / 1000000)); }

write_config "$WORK/sipnat.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP_IP:$UP_PORT
[relay]
address = $PROXY_IP
ports = $RELAY_LO-$RELAY_HI
threads = 2
[control]
socket = $SOCK
metrics = 127.0.0.1:$METRICS_PORT
[log]
level = debug
target = stderr
call_log = $WORK/calls.json
EOF
cp "$WORK/sipnat.conf" "$WORK/good.conf"

mkdir -p "$WORK/pbx"
kamailio -f "$srcdir/tests/integration/pbx-kamailio.cfg" -l "udp:$UP_IP:$UP_PORT" \
	-A "PBX_ADDR=$UP_IP" -DD -E -w "$WORK/pbx" >"$WORK/pbx/kamailio.log" 2>&1 &
BG_PIDS="$BG_PIDS $!"
wait_for 10 listening udp "$UP_IP" "$UP_PORT" || fail "kamailio did not start"
start_sipnatd "$WORK/sipnat.conf"
wait_for 5 test -S "$SOCK" || fail "no control socket at $SOCK"

# The callee registers through sipnatd, then a sipp on the same port
# answers the three calls of this test.
run_sipp reg 10 -sf "$SCEN/ctl-register.xml" "$PROXY_IP:$PROXY_PORT" -i "$CALLEE_IP" \
	-p "$CALLEE_PORT" -key user callee -key contact_host "$CALLEE_IP" -m 1 -trace_err ||
	fail "the callee did not register through sipnatd"
start_uas callee "$CALLEE_IP" "$CALLEE_PORT" 60 -sf "$SCEN/uas-media.xml" -mp $CALLEE_SIPP_MP \
	-key rtp_port $CALLEE_RTP -m 3 -trace_msg -message_file msg.log -trace_err
callee_pid=$LAST_PID

# received_sdp NAME FIRSTLINE-ERE: "IP PORT" of each audio SDP sipp NAME got.
received_sdp() {
	tr -d '\r' 2>/dev/null <"$WORK/$1/msg.log" | sdp_audio_addrs "$2"
}

# call_sdp N: waits (10 s) until the caller has its answer and the callee
# the offer of call N (1-based at the callee); sets ANSWER_PORT, OFFER_PORT.
call_sdp() {
	wait_for 10 eval '[ -n "$(received_sdp "$CALLER" "^SIP/2.0 200 ")" ]' ||
		fail "the caller ($CALLER) got no 200 with SDP"
	_want=$1
	wait_for 10 eval '[ "$(received_sdp callee "^INVITE " | grep -c .)" -ge "$_want" ]' ||
		fail "the callee got no INVITE with SDP for call $1"
	ANSWER_PORT=$(received_sdp "$CALLER" '^SIP/2.0 200 ' | head -n 1 | cut -d' ' -f2)
	OFFER_PORT=$(received_sdp callee '^INVITE ' | sed -n "${1}p" | cut -d' ' -f2)
}

# caller NAME SCENARIO [SIPP-ARGS]: the caller calls the callee through
# sipnatd (PID in CALLER_PID, name in CALLER).
caller() {
	CALLER=$1
	_sf=$2
	shift 2
	start_sipp "$CALLER" 40 -sf "$SCEN/$_sf" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
		-p "$DEV_PORT" -mp $DEV_SIPP_MP -key rtp_port $DEV_RTP -s callee -m 1 \
		-trace_msg -message_file msg.log -trace_err "$@"
	CALLER_PID=$LAST_PID
}

call_id_of() { # NAME: the Call-ID of the first INVITE sipp NAME sent or got
	tr -d '\r' <"$WORK/$1/msg.log" | awk '/^INVITE /{i=1} i && /^Call-ID:/ { print $2; exit }'
}

# ---------------------------------------------- 1. listings during a call
t0=$(ms)
ctl registrations >"$WORK/regs.out" 2>&1 || fail "sipnatctl registrations: $(cat "$WORK/regs.out")"
assert_file_has "$WORK/regs.out" "sip:callee@.*$CALLEE_IP:$CALLEE_PORT" "registrations (the callee)"

caller call1 uac-media.xml -d 9000
call_sdp 1
cid=$(call_id_of call1)
say "call 1 ($cid): the caller sends to :$ANSWER_PORT, the callee to :$OFFER_PORT"
at=$(($(ms) + 500))
timeout 20 python3 "$RTPCOUNT" send --bind "$DEV_IP:$DEV_RTP" --to "$PROXY_IP:$ANSWER_PORT" \
	--count $PACKETS --ssrc 0x11110001 --start-at $at --out "$WORK/rtp-dev.json" \
	>/dev/null 2>"$WORK/rtp-dev.err" &
rtp1=$!
timeout 20 python3 "$RTPCOUNT" send --bind "$CALLEE_IP:$CALLEE_RTP" --to "$PROXY_IP:$OFFER_PORT" \
	--count $PACKETS --ssrc 0x22220002 --start-at $at --out "$WORK/rtp-callee.json" \
	>/dev/null 2>"$WORK/rtp-callee.err" &
rtp2=$!
BG_PIDS="$BG_PIDS $rtp1 $rtp2"
sleep 2
ctl calls >"$WORK/calls0.out" 2>&1 || fail "sipnatctl calls: $(cat "$WORK/calls0.out")"
sleep 0.5 # the relay's figures asked for by that listing
ctl calls >"$WORK/calls.out" 2>&1 || fail "sipnatctl calls: $(cat "$WORK/calls.out")"
ctl --json calls >"$WORK/list.json" 2>&1 || fail "sipnatctl --json calls: $(cat "$WORK/list.json")"
sed "s/^/$TEST_NAME: calls: /" "$WORK/calls.out"
assert_file_has "$WORK/calls.out" "^CALL-ID +CALLER +CALLEE +AGE +STATE +NAT +MEDIA" "calls header"
assert_file_has "$WORK/calls.out" "^$cid .* established .*A0 :$ANSWER_PORT <- $DEV_IP:$DEV_RTP in [1-9]" \
	"calls row (caller's stream)"
python3 - "$WORK/list.json" "$cid" "$ANSWER_PORT" "$OFFER_PORT" "$DEV_IP:$DEV_RTP" \
	"$CALLEE_IP:$CALLEE_RTP" <<'PY' || fail "--json calls content"
import json, sys
ans = json.load(open(sys.argv[1]))
cid, aport, oport, dev, callee = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
calls = [c for c in ans["calls"] if c["call_id"] == cid]
assert len(calls) == 1, ans
c = calls[0]
assert c["established"] and c["relay_session"] > 0, c
assert 0 <= c["stats_age"] <= 6, c
st = {(s["side"], s["mline"]): s for s in c["streams"]}
a, b = st[("A", 0)], st[("B", 0)]
assert a["rtp_port"] == aport and a["latched"] == dev, a
assert b["rtp_port"] == oport and b["latched"] == callee, b
for s in (a, b):
    assert s["packets_in"] > 0 and s["packets_out"] > 0, s
print("A0 in %d out %d, B0 in %d out %d" % (a["packets_in"], a["packets_out"],
                                              b["packets_in"], b["packets_out"]))
PY
python3 "$srcdir/tests/integration/prom-scrape.py" "http://127.0.0.1:$METRICS_PORT/metrics" \
	"$WORK/metrics" || fail "GET /metrics during the call: invalid answer"
awk '$1 == "sipnat_calls_active" && $2 == 1 { a = 1 }
	$1 == "sipnat_relay_forwarded_packets_total" && $2 > 0 { f = 1 }
	$1 == "sipnat_relay_port_pairs_used" && $2 >= 2 { p = 1 }
	$1 == "sipnat_relay_latches_total" && $2 >= 2 { l = 1 }
	$1 == "sipnat_sip_requests_by_method_total{method=\"INVITE\"}" && $2 >= 2 { i = 1 }
	$1 == "sipnat_sip_requests_by_method_total{method=\"REGISTER\"}" && $2 >= 1 { r = 1 }
	$1 == "sipnat_sip_responses_by_class_total{class=\"2xx\"}" && $2 >= 2 { c = 1 }
	$1 == "sipnat_sip_responses_by_code_total{code=\"200\"}" && $2 >= 2 { o = 1 }
	END { exit !(a && f && p && l && i && r && c && o) }' "$WORK/metrics.values" ||
	fail "/metrics during the call: $(grep -E '^sipnat_(calls_active|relay_forwarded_packets_total|relay_port_pairs_used|relay_latches_total|sip_requests_by_method_total|sip_responses_by_class_total)' "$WORK/metrics.values" | tr '\n' ' ')"
say "1. calls listed with relay ports, latched addresses and packets both ways (and in /metrics): ok"

# ------------------------------------------ 2. reloads during the call
printf '[relay]\nmode = sometimes\n' >>"$WORK/sipnat.conf"
if ctl reload >"$WORK/reload-bad.out" 2>&1; then
	fail "a broken configuration was accepted on reload"
fi
assert_file_has "$WORK/reload-bad.out" "$WORK/sipnat.conf:[0-9]+: " "reload error with file:line"
say "broken reload refused: $(head -n 2 "$WORK/reload-bad.out" | tr '\n' ' ')"
cp "$WORK/good.conf" "$WORK/sipnat.conf"
ctl reload >"$WORK/reload.out" 2>&1 || fail "sipnatctl reload: $(cat "$WORK/reload.out")"
kill -HUP "$SIPNATD_PID"
sleep 0.3
sipnatd_alive || fail "sipnatd died on reload"
ctl registrations >"$WORK/regs2.out" 2>&1 || fail "registrations after the reloads"
assert_file_has "$WORK/regs2.out" "sip:callee@.*$CALLEE_IP:$CALLEE_PORT" "registrations after the reloads"
ctl --json calls >"$WORK/list2.json" 2>&1 || fail "calls after the reloads"
grep -q "\"$cid\"" "$WORK/list2.json" || fail "the call is gone from the listing after the reloads"
wait $rtp1 || fail "rtpcount (caller): $(cat "$WORK/rtp-dev.err")"
wait $rtp2 || fail "rtpcount (callee): $(cat "$WORK/rtp-callee.err")"
out=$(python3 "$RTPCOUNT" check "$WORK/rtp-dev.json" --min $MIN_PACKETS --ssrc 0x22220002 \
	--only-from "$PROXY_IP:$ANSWER_PORT") || fail "$out"
say "$out"
out=$(python3 "$RTPCOUNT" check "$WORK/rtp-callee.json" --min $MIN_PACKETS --ssrc 0x11110001 \
	--only-from "$PROXY_IP:$OFFER_PORT") || fail "$out"
say "$out"
wait_pid "$CALLER_PID" "call 1 (across the reloads)"
say "2. bad reload refused, two reloads kept the registration and the call: ok"

# record CALL-ID FILE: the call's JSON record in FILE, waited for (5 s).
record() {
	_cid=$1
	wait_for 5 grep -q "\"call_id\":\"$_cid\"" "$2" || fail "no record of $_cid in $2"
	grep "\"call_id\":\"$_cid\"" "$2"
}
record "$cid" "$WORK/calls.json" >"$WORK/rec1.json"
python3 - "$WORK/rec1.json" $MIN_PACKETS <<'PY' || fail "call log record of call 1: $(cat "$WORK/rec1.json")"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
r = json.loads(lines[0])
assert r["reason"] == "BYE from caller" and r["answered"] and r["relayed"], r
assert "PCMU/8000" in r["codecs"], r["codecs"]
assert r["duration_s"] >= 8 and r["start"].endswith("Z"), r
a = [s for s in r["streams"] if s["side"] == "A"][0]
assert a["packets_in"] >= int(sys.argv[2]) and a["latched"], a
PY
mv "$WORK/calls.json" "$WORK/calls.json.1"
kill -HUP "$SIPNATD_PID"
sleep 0.3

# ------------------------------------------------------------- 3. hangup
caller call2 uac-media-wait-bye.xml
call_sdp 2
cid2=$(call_id_of call2)
ctl hangup "$cid2" >"$WORK/hangup.out" 2>&1 || fail "sipnatctl hangup: $(cat "$WORK/hangup.out")"
wait_pid "$CALLER_PID" "call 2: the caller got no BYE after sipnatctl hangup"
wait_for 5 eval 'tr -d "\r" <"$WORK/callee/msg.log" | grep -A12 "^BYE " | grep -q "^Call-ID: $cid2"' ||
	fail "the callee got no BYE for $cid2"
wait_for 5 grep -q "call end $cid2: .*reason: hangup from sipnatctl" "$SIPNATD_LOG" ||
	fail "no call-end line for $cid2 naming sipnatctl"
if ctl hangup no-such-call >"$WORK/hangup-none.out" 2>&1; then
	fail "hangup of an unknown Call-ID succeeded"
fi
record "$cid2" "$WORK/calls.json" | grep -q '"reason":"hangup from sipnatctl"' ||
	fail "the record of $cid2 does not say it was hung up from sipnatctl"
grep -q "$cid2" "$WORK/calls.json.1" && fail "a record went to the rotated file after SIGHUP"
say "3. hangup: BYE to both parties: ok"

# -------------------------------------------------------------- 4. drain
caller call3 uac-media.xml -d 2500
call_sdp 3
ctl drain >"$WORK/drain.out" 2>&1 || fail "sipnatctl drain: $(cat "$WORK/drain.out")"
run_sipp late 15 -sf "$SCEN/uac-media-503.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
	-p "$LATE_PORT" -mp $LATE_SIPP_MP -key rtp_port $((PORT_BASE + 14)) -s callee -m 1 \
	-trace_err || fail "a new call while draining did not get 503 with Retry-After"
wait_pid "$CALLER_PID" "call 3 (in progress when the drain began)"
ctl status >"$WORK/status.out" 2>&1
assert_file_has "$WORK/status.out" '^state +draining' "status while draining"
say "4. drain: new call 503, current call completed: ok"

wait_pid "$callee_pid" "the callee (three calls)"
stop_sipnatd
n=$(grep -c '"call_id"' "$WORK/calls.json")
say "5. call log: 1 record in the rotated file, $n in the new one: ok"
[ "$n" = 2 ] || fail "expected 2 records (calls 2 and 3) in the new call log, found $n"
say "PASS ($(($(ms) - t0)) ms)"
