#!/bin/sh
# ctl-call: the control operations on live calls, with sipp alone (no PBX):
# a device (127.0.0.3) calls the upstream (127.0.0.2) through sipnatd with
# its media relay, RTP both ways with tests/lab/rtpcount.py, and a call log.
#
#  0. A device registers through sipnatd to a sipp registrar on the
#     upstream; `sipnatctl registrations` lists it.
#  1. During a call with audio: `sipnatctl calls` (table) and
#     `sipnatctl --json calls` (valid JSON) list its Call-ID and both relay
#     ports, the ones each party was given in the SDP.
#  2. Still during that call: a broken configuration, which would also
#     move the call log elsewhere, is refused by `sipnatctl reload` with
#     file:line: reason and the old configuration stays (the call's record
#     goes to the old call log); `sipnatctl reload` and SIGHUP with the good
#     file succeed; the registration and the call are still listed; the
#     audio keeps flowing (>= 95 % each way) and the call completes (its
#     BYE gets 200).
#  3. The call log has one valid JSON line for that call (reason "BYE
#     from caller", codecs, parties, ISO 8601 times, streams with relay
#     port, latched address and packets) and one for the call of 0b; after
#     `mv` + SIGHUP, the next records go to a new file, none to the old.
#  4. `sipnatctl hangup CALL-ID`: both sipp sides receive a BYE for that
#     Call-ID from sipnatd (checked in their message traces) and answer it;
#     the record says "hangup from sipnatctl"; an unknown Call-ID fails.
#     Before that (0b), the hangup of a call still ringing is refused and
#     the call goes on (to its 486, recorded as not answered).
#  5. `sipnatctl drain`: a new INVITE gets 503 (with Retry-After) and never
#     reaches the upstream, while the call in progress completes normally
#     (its BYE gets 200) and gets its record.
TEST_SLOT=52
# shellcheck source=tests/integration/lib.sh
. "${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
# shellcheck source=tests/integration/sdptrace.sh
. "$srcdir/tests/integration/sdptrace.sh"
setup python3

SIPNATCTL="${SIPNATCTL:-$(dirname "$SIPNATD")/sipnatctl}"
[ -x "$SIPNATCTL" ] || skip "no sipnatctl at $SIPNATCTL"
RTPCOUNT="$srcdir/tests/lab/rtpcount.py"
[ -r "$RTPCOUNT" ] || skip "missing $RTPCOUNT"
UP_PORT=$((PORT_BASE + 1))
DEV_PORT=$((PORT_BASE + 2))
REG_PORT=$((PORT_BASE + 3))
LATE_PORT=$((PORT_BASE + 4)) # the caller refused while draining
RING_PORT=$((PORT_BASE + 5)) # the call hung up before the answer
DEV_RTP=$((PORT_BASE + 10))
UP_RTP=$((PORT_BASE + 12))
DEV_SIPP_MP=$((PORT_BASE + 30))
UP_SIPP_MP=$((PORT_BASE + 34))
LATE_SIPP_MP=$((PORT_BASE + 40))
RING_SIPP_MP=$((PORT_BASE + 44))
RELAY_LO=$((PORT_BASE + 60))
RELAY_HI=$((PORT_BASE + 99))
PACKETS=200
MIN_PACKETS=$((PACKETS * 95 / 100))
SOCK="$WORK/control.sock"
LOG="$WORK/calls.json"
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
[log]
level = debug
target = stderr
call_log = $LOG
EOF
cp "$WORK/sipnat.conf" "$WORK/good.conf"
start_sipnatd "$WORK/sipnat.conf"
wait_for 5 test -S "$SOCK" || fail "no control socket at $SOCK"
t0=$(ms)

# received_sdp NAME FIRSTLINE-ERE: "IP PORT" of each audio SDP sipp NAME got.
received_sdp() {
	tr -d '\r' 2>/dev/null <"$WORK/$1/msg.log" | sdp_audio_addrs "$2"
}

# call_sdp N: waits (10 s) until the caller has its answer and the callee
# the offer of call N; sets ANSWER_PORT and OFFER_PORT (the relay ports).
call_sdp() {
	wait_for 10 eval '[ -n "$(received_sdp "$CALLER" "^SIP/2.0 200 ")" ]' ||
		fail "the caller ($CALLER) got no 200 with SDP"
	_want=$1
	wait_for 10 eval '[ "$(received_sdp callee "^INVITE " | grep -c .)" -ge "$_want" ]' ||
		fail "the callee got no INVITE with SDP for call $1"
	ANSWER_PORT=$(received_sdp "$CALLER" '^SIP/2.0 200 ' | head -n 1 | cut -d' ' -f2)
	OFFER_PORT=$(received_sdp callee '^INVITE ' | sed -n "${1}p" | cut -d' ' -f2)
}

# place_call NAME SCENARIO [SIPP-ARGS]: the device calls the upstream through
# sipnatd (PID in CALLER_PID, name in CALLER).
place_call() {
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

# got_bye NAME CALL-ID: sipp NAME received a BYE for CALL-ID carrying the
# Reason sipnatd puts in the BYEs of `sipnatctl hangup`.
got_bye() {
	tr -d '\r' <"$WORK/$1/msg.log" | awk -v cid="$2" '
		function flush() { if (rx && bye && id == cid && why) found = 1
			rx = bye = why = first = 0; id = "" }
		/^-----/ { flush(); next }
		/message received/ { rx = 1; first = 1; next }
		rx && first && NF { first = 0; bye = /^BYE /; next }
		/^Call-ID:/ { id = $2 }
		/^Reason: .*sipnatctl/ { why = 1 }
		END { flush(); exit !found }'
}

# record CALL-ID FILE: the call's JSON record in FILE, waited for (5 s).
record() {
	wait_for 5 grep -q "\"call_id\":\"$1\"" "$2" || fail "no record of $1 in $2"
	grep "\"call_id\":\"$1\"" "$2"
}

# check_log FILE N: FILE has exactly N lines, each one JSON object.
check_log() {
	python3 - "$1" "$2" <<'PY' || fail "call log $1 is not $2 valid JSON lines: $(cat "$1")"
import json, sys
lines = open(sys.argv[1]).read().split("\n")
assert lines[-1] == "", "no newline at the end"
lines = lines[:-1]
assert len(lines) == int(sys.argv[2]), len(lines)
for l in lines:
    assert isinstance(json.loads(l), dict)
PY
}

# ------------------------------------------------------ 0. registration
start_uas registrar "$UP_IP" "$UP_PORT" 15 -sf "$SCEN/uas-registrar.xml" -m 1 -trace_err
reg_pid=$LAST_PID
run_sipp reg 10 -sf "$SCEN/ctl-register.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
	-p "$REG_PORT" -key user alice -key contact_host 192.0.2.10 -m 1 -trace_err ||
	fail "REGISTER through sipnatd: sipp exit status $?"
wait_pid "$reg_pid" "the registrar"
ctl registrations >"$WORK/regs0.out" 2>&1 || fail "sipnatctl registrations: $(cat "$WORK/regs0.out")"
assert_file_has "$WORK/regs0.out" "sip:alice@" "registrations (alice)"
say "0. registration through sipnatd listed: ok"

# A call that rings for 2 s and is then refused with 486: while it rings,
# hangup is refused (no dialog yet for a BYE) and the call stays listed.
start_uas slow "$UP_IP" "$UP_PORT" 15 -sf "$SCEN/uas-slow-busy.xml" -m 1 -trace_err
slow_pid=$LAST_PID
start_sipp ring 15 -sf "$SCEN/uac-busy.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
	-p "$RING_PORT" -mp $RING_SIPP_MP -s callee -m 1 -trace_msg -message_file msg.log -trace_err
ring_pid=$LAST_PID
wait_for 5 eval 'tr -d "\r" <"$WORK/ring/msg.log" 2>/dev/null | grep -q "^SIP/2.0 180 "' ||
	fail "the ringing call got no 180"
cid0=$(call_id_of ring)
if ctl hangup "$cid0" >"$WORK/hangup-ring.out" 2>&1; then
	fail "hangup of a call not answered yet succeeded"
fi
assert_file_has "$WORK/hangup-ring.out" "not answered yet" "hangup of a ringing call"
ctl --json calls >"$WORK/list0.json" 2>&1 || fail "calls while ringing"
grep -q "\"$cid0\"" "$WORK/list0.json" || fail "the ringing call is gone after a refused hangup"
wait_pid "$ring_pid" "the ringing call (486 expected)"
wait_pid "$slow_pid" "the slow callee"
record "$cid0" "$LOG" | grep -q '"answered":false,.*"reason":"INVITE answered 486"' ||
	fail "the record of the refused call: $(grep "$cid0" "$LOG")"
say "0b. hangup of a ringing call refused, the call went on: ok"

# The callee answers the calls of this test (the one refused while draining
# never reaches it).
start_uas callee "$UP_IP" "$UP_PORT" 90 -sf "$SCEN/uas-media.xml" -mp $UP_SIPP_MP \
	-key rtp_port $UP_RTP -m 3 -trace_msg -message_file msg.log -trace_err
callee_pid=$LAST_PID

# ----------------------------------------------- 1. listings during a call
place_call call1 uac-media.xml -d 9000
call_sdp 1
cid=$(call_id_of call1)
say "call 1 ($cid): the caller sends to :$ANSWER_PORT, the callee to :$OFFER_PORT"
at=$(($(ms) + 500))
timeout 25 python3 "$RTPCOUNT" send --bind "$DEV_IP:$DEV_RTP" --to "$PROXY_IP:$ANSWER_PORT" \
	--count $PACKETS --ssrc 0x11110001 --start-at $at --out "$WORK/rtp-dev.json" \
	>/dev/null 2>"$WORK/rtp-dev.err" &
rtp1=$!
timeout 25 python3 "$RTPCOUNT" send --bind "$UP_IP:$UP_RTP" --to "$PROXY_IP:$OFFER_PORT" \
	--count $PACKETS --ssrc 0x22220002 --start-at $at --out "$WORK/rtp-up.json" \
	>/dev/null 2>"$WORK/rtp-up.err" &
rtp2=$!
BG_PIDS="$BG_PIDS $rtp1 $rtp2"
sleep 1.5
ctl calls >/dev/null 2>&1 # asks the relay for fresh figures
sleep 0.5
ctl calls >"$WORK/calls.out" 2>&1 || fail "sipnatctl calls: $(cat "$WORK/calls.out")"
sed "s/^/$TEST_NAME: calls: /" "$WORK/calls.out"
assert_file_has "$WORK/calls.out" "^CALL-ID +CALLER +CALLEE " "calls header"
assert_file_has "$WORK/calls.out" "^$cid .*:$ANSWER_PORT" "calls row with the caller's relay port"
assert_file_has "$WORK/calls.out" "^$cid .*:$OFFER_PORT" "calls row with the callee's relay port"
ctl --json calls >"$WORK/list.json" 2>&1 || fail "sipnatctl --json calls: $(cat "$WORK/list.json")"
python3 - "$WORK/list.json" "$cid" "$ANSWER_PORT" "$OFFER_PORT" <<'PY' || fail "--json calls: $(cat "$WORK/list.json")"
import json, sys
ans = json.load(open(sys.argv[1]))
cid, aport, oport = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
calls = [c for c in ans["calls"] if c["call_id"] == cid]
assert len(calls) == 1, ans
c = calls[0]
assert c["established"] and c["relay_session"] > 0, c
ports = {(s["side"], s["rtp_port"]) for s in c["streams"]}
assert ("A", aport) in ports and ("B", oport) in ports, ports
PY
say "1. the call is listed (table and JSON) with both relay ports: ok"

# ------------------------------------------------- 2. reloads during it
# A file that would move the call log, with an error further down: all of
# it must be refused, the call log included.
sed "s|^call_log = .*|call_log = $WORK/elsewhere.json|" "$WORK/good.conf" >"$WORK/sipnat.conf"
printf '[relay]\nmode = sometimes\n' >>"$WORK/sipnat.conf"
if ctl reload >"$WORK/reload-bad.out" 2>&1; then
	fail "a broken configuration was accepted on reload"
fi
assert_file_has "$WORK/reload-bad.out" "$WORK/sipnat.conf:[0-9]+: [a-z]" \
	"sipnatctl reload error (file:line: reason)"
say "broken reload refused: $(head -n 2 "$WORK/reload-bad.out" | tr '\n' ' ')"
cp "$WORK/good.conf" "$WORK/sipnat.conf"
ctl reload >"$WORK/reload.out" 2>&1 || fail "sipnatctl reload: $(cat "$WORK/reload.out")"
n_reloaded=$(grep -c 'reloaded$' "$SIPNATD_LOG")
kill -HUP "$SIPNATD_PID"
wait_for 5 eval '[ "$(grep -c "reloaded\$" "$SIPNATD_LOG")" -gt "$n_reloaded" ]' ||
	fail "no 'reloaded' in the log after SIGHUP"
sipnatd_alive || fail "sipnatd died on reload"
ctl registrations >"$WORK/regs1.out" 2>&1 || fail "registrations after the reloads"
assert_file_has "$WORK/regs1.out" "sip:alice@" "registrations after the reloads"
ctl --json calls >"$WORK/list2.json" 2>&1 || fail "calls after the reloads"
grep -q "\"$cid\"" "$WORK/list2.json" || fail "the call is gone from the listing after the reloads"
wait $rtp1 || fail "rtpcount (caller): $(cat "$WORK/rtp-dev.err")"
wait $rtp2 || fail "rtpcount (callee): $(cat "$WORK/rtp-up.err")"
out=$(python3 "$RTPCOUNT" check "$WORK/rtp-dev.json" --min $MIN_PACKETS --ssrc 0x22220002 \
	--only-from "$PROXY_IP:$ANSWER_PORT") || fail "$out"
say "$out"
out=$(python3 "$RTPCOUNT" check "$WORK/rtp-up.json" --min $MIN_PACKETS --ssrc 0x11110001 \
	--only-from "$PROXY_IP:$OFFER_PORT") || fail "$out"
say "$out"
# sipp's uac ends with 0 only once its BYE got its 200.
wait_pid "$CALLER_PID" "call 1 (across the reloads)"
say "2. broken reload refused, reloads kept the registration and the call: ok"

# ------------------------------------------------------------ 3. call log
record "$cid" "$LOG" >"$WORK/rec1.json"
[ -e "$WORK/elsewhere.json" ] && fail "the refused configuration opened its call log"
check_log "$LOG" 2
python3 - "$WORK/rec1.json" "$cid" $MIN_PACKETS "$DEV_IP:$DEV_RTP" "$UP_IP:$UP_RTP" \
	"$ANSWER_PORT" "$OFFER_PORT" <<'PY' || fail "record of call 1: $(cat "$WORK/rec1.json")"
import json, re, sys
r = json.loads(open(sys.argv[1]).read())
cid, least, dev, up = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
aport, oport = int(sys.argv[6]), int(sys.argv[7])
iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
assert r["call_id"] == cid and r["reason"] == "BYE from caller", r
assert r["answered"] is True and r["relayed"] is True, r
assert r["caller"].startswith("sip:caller@") and r["callee"].startswith("sip:callee@"), r
assert iso.match(r["start"]) and iso.match(r["end"]) and r["end"] >= r["start"], r
assert 8 <= r["duration_s"] <= 30, r
# loopback counts as private: the device's Contact makes it "behind NAT",
# and only its stream latches; the upstream is trusted at its SDP address.
assert r["caller_nat"] is True and r["callee_nat"] is False, r
assert r["codecs"] == "PCMU/8000", r
st = {s["side"]: s for s in r["streams"]}
a, b = st["A"], st["B"]
assert a["relay_port"] == aport and a["latched"] == dev, a
assert b["relay_port"] == oport and b["latched"] is None, b
for s in (a, b):
    assert s["mline"] == 0, s
    assert s["packets_in"] >= least and s["packets_out"] >= least, s
    assert s["bytes_in"] >= 172 * least and s["dropped"] <= 5, s
PY
mv "$LOG" "$LOG.1"
# shellcheck disable=SC2034 # read by the eval below
n_reloaded=$(grep -c 'reloaded$' "$SIPNATD_LOG")
kill -HUP "$SIPNATD_PID"
wait_for 5 eval '[ "$(grep -c "reloaded\$" "$SIPNATD_LOG")" -gt "$n_reloaded" ]' ||
	fail "no 'reloaded' in the log after SIGHUP"
wait_for 2 test -e "$LOG" || fail "no new call log after rename and SIGHUP"
say "3. one JSON record with the expected fields; rotated: ok"

# --------------------------------------------------------------- 4. hangup
place_call call2 uac-media-wait-bye.xml
call_sdp 2
cid2=$(call_id_of call2)
if ctl hangup "no-such-call@$DEV_IP" >"$WORK/hangup-none.out" 2>&1; then
	fail "hangup of an unknown Call-ID succeeded"
fi
ctl hangup "$cid2" >"$WORK/hangup.out" 2>&1 || fail "sipnatctl hangup: $(cat "$WORK/hangup.out")"
wait_pid "$CALLER_PID" "call 2: the caller got no BYE after sipnatctl hangup"
wait_for 5 got_bye call2 "$cid2" || fail "the caller's trace has no BYE from sipnatd for $cid2"
wait_for 5 got_bye callee "$cid2" || fail "the callee's trace has no BYE from sipnatd for $cid2"
record "$cid2" "$LOG" | grep -q '"reason":"hangup from sipnatctl"' ||
	fail "the record of $cid2 does not say it was hung up from sipnatctl"
ctl --json calls >"$WORK/list3.json" 2>&1 || fail "calls after the hangup"
grep -q "\"$cid2\"" "$WORK/list3.json" && fail "the call is still listed after its hangup"

say "4. hangup: BYE to both parties, record says sipnatctl: ok"

# ---------------------------------------------------------------- 5. drain
place_call call3 uac-media.xml -d 3000
call_sdp 3
cid3=$(call_id_of call3)
ctl drain >"$WORK/drain.out" 2>&1 || fail "sipnatctl drain: $(cat "$WORK/drain.out")"
run_sipp late 15 -sf "$SCEN/uac-media-503.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
	-p "$LATE_PORT" -mp $LATE_SIPP_MP -key rtp_port $((PORT_BASE + 14)) -s callee -m 1 \
	-trace_msg -message_file msg.log -trace_err ||
	fail "a new call while draining did not get 503 with Retry-After"
late_cid=$(call_id_of late)
wait_pid "$CALLER_PID" "call 3 (in progress when the drain began; its BYE must get 200)"
wait_pid "$callee_pid" "the callee (three calls)"
tr -d '\r' <"$WORK/callee/msg.log" | grep -q "^Call-ID: $late_cid" &&
	fail "the INVITE refused while draining reached the upstream"
ctl status >"$WORK/status.out" 2>&1
assert_file_has "$WORK/status.out" '^state +draining' "status while draining"
record "$cid3" "$LOG" | grep -q '"reason":"BYE from caller"' ||
	fail "the record of call 3 does not say BYE from caller"
say "5. drain: new call 503, the current call completed: ok"

stop_sipnatd
check_log "$LOG.1" 2
check_log "$LOG" 2
grep -q "\"$cid2\"\\|\"$cid3\"" "$LOG.1" && fail "a record went to the rotated file after SIGHUP"
say "call log: 2 records in the rotated file, 2 in the new one: ok"
say "PASS ($(($(ms) - t0)) ms)"
