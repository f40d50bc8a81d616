#!/bin/sh
# media-loopback: calls through sipnatd's media relay on loopback, with real
# RTP (tests/lab/rtpcount.py) between a device (127.0.0.3) and the upstream
# (127.0.0.2); sipnatd on 127.0.0.1 with [relay] address = 127.0.0.1 and a
# port range of its own (PORT_BASE+60 .. PORT_BASE+99).
#
# 1. A call whose INVITE and 200 carry SDP: each side's SDP, as the other
#    side receives it, points at 127.0.0.1 and a port in the range; 150
#    packets each way arrive (>= 95 %), all from the relay port the
#    receiver was given, with the sender's SSRC; the call-end line counts
#    them (A0 in N ... out M, likewise B0).
# 2. Hold (re-INVITE a=sendonly) and resume (a=sendrecv): every SDP keeps
#    the relay ports of the first exchange (RFC 3264 section 8: the
#    address does not change, so neither may ours).
# 3. An offer with ICE candidates (RFC 8839): the callee's copy carries a
#    "typ relay" candidate on the relay address and port of its m= line.
# 4. Late offer: an INVITE without SDP, the offer in the 200 and the
#    answer in the ACK are both anchored, and audio flows both ways.
# 5. The answer in a reliable 183 (100rel, PRACK), then an UPDATE with a
#    new SDP version: both anchored, the UPDATE keeps the relay ports, and
#    audio flows both ways.
# 6. [relay] timeout = 3 and no RTP at all: both phones receive a BYE
#    from sipnatd about 3 s after the answer, and the log says "no media";
#    a call that rings 5 s before the answer is not ended by the timeout
#    and its answer is anchored; if it then sends no RTP, both phones get
#    a BYE about 3 s after the answer.
# 7. A pool of two port pairs: a second call while the first lasts gets
#    503 with Retry-After and never reaches the upstream; a third call
#    after the first ended gets the ports back.
TEST_SLOT=31
# shellcheck source=tests/integration/lib.sh
. "${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
# shellcheck source=tests/integration/sdptrace.sh
. "$srcdir/tests/integration/sdptrace.sh"
setup python3

RTPCOUNT="$srcdir/tests/lab/rtpcount.py"
[ -r "$RTPCOUNT" ] || skip "missing $RTPCOUNT"
UP_PORT=$((PORT_BASE + 1))
DEV_PORT=$((PORT_BASE + 2))
DEV_RTP=$((PORT_BASE + 10)) # rtpcount of the device (caller)
UP_RTP=$((PORT_BASE + 12))  # rtpcount of the upstream (callee)
# sipp binds its own media sockets (-mp and -mp + 2) even when unused:
# keep them off the ports above and off the relay's.
DEV_SIPP_MP=$((PORT_BASE + 30))
UP_SIPP_MP=$((PORT_BASE + 34))
RELAY_LO=$((PORT_BASE + 60))
RELAY_HI=$((PORT_BASE + 99))
PACKETS=150
MIN_PACKETS=$((PACKETS * 95 / 100))
SSRC_DEV=0x11110001
SSRC_UP=0x22220002

conf() { # TIMEOUT [LAST-RELAY-PORT]
	write_config "$WORK/sipnat-$1.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP_IP:$UP_PORT

[relay]
address = $PROXY_IP
ports = $RELAY_LO-${2:-$RELAY_HI}
threads = 2
timeout = $1
EOF
	echo "$WORK/sipnat-$1.conf"
}

ms() { echo $(($(date +%s%N) / 1000000)); }

# received_sdp NAME FIRSTLINE-ERE: "IP PORT" of the audio stream of every
# SDP that sipp NAME received in a message whose first line matches.
received_sdp() {
	tr -d '\r' <"$WORK/$1/msg.log" 2>/dev/null | sdp_audio_addrs "$2"
}

in_range() { [ "$1" -ge "$RELAY_LO" ] && [ "$1" -le "$RELAY_HI" ]; }


# rtp_both CALLER-TO CALLEE-TO TAG: 150 packets each way at 20 ms, both
# endpoints starting at the same wall-clock moment (1 s ahead, so that both
# sockets are bound before the first packet), results in
# $WORK/TAG-{dev,up}.json.
rtp_both() {
	_at=$(($(ms) + 1000))
	timeout 20 python3 "$RTPCOUNT" send --bind "$DEV_IP:$DEV_RTP" --to "$1" --count $PACKETS \
		--ssrc $SSRC_DEV --start-at $_at --out "$WORK/$3-dev.json" >/dev/null 2>"$WORK/$3-dev.err" &
	_p1=$!
	timeout 20 python3 "$RTPCOUNT" send --bind "$UP_IP:$UP_RTP" --to "$2" --count $PACKETS \
		--ssrc $SSRC_UP --start-at $_at --out "$WORK/$3-up.json" >/dev/null 2>"$WORK/$3-up.err" &
	_p2=$!
	BG_PIDS="$BG_PIDS $_p1 $_p2"
	wait $_p1 || fail "rtpcount (device) failed: $(cat "$WORK/$3-dev.err")"
	wait $_p2 || fail "rtpcount (upstream) failed: $(cat "$WORK/$3-up.err")"
}

rtp_check() {
	_out=$(python3 "$RTPCOUNT" check "$@") || fail "$_out"
	say "$_out"
}

call_id_of() { # NAME: Call-ID of the first received INVITE
	tr -d '\r' <"$WORK/$1/msg.log" | awk '/^Call-ID:/ { print $2; exit }'
}

# ---------------------------------------------------------------- 1. call
t0=$(ms)
start_sipnatd "$(conf 0)"
start_uas up1 "$UP_IP" "$UP_PORT" 30 -sf "$SCEN/uas-media.xml" -mp $UP_SIPP_MP \
	-key rtp_port $UP_RTP -m 1 -trace_msg -message_file msg.log -trace_err
uas=$LAST_PID
start_sipp dev1 30 -sf "$SCEN/uac-media.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" -p "$DEV_PORT" \
	-mp $DEV_SIPP_MP -key rtp_port $DEV_RTP -s callee -d 6000 -m 1 \
	-trace_msg -message_file msg.log -trace_err
uac=$LAST_PID

offer=$(sdp_of up1 '^INVITE ') || fail "the callee received no INVITE with SDP"
answer=$(sdp_of dev1 '^SIP/2.0 200 ') || fail "the caller received no 200 with SDP"
set -- $offer
offer_ip=$1 offer_port=$2
set -- $answer
answer_ip=$1 answer_port=$2
say "offer at the callee: $offer_ip:$offer_port, answer at the caller: $answer_ip:$answer_port"
[ "$offer_ip" = "$PROXY_IP" ] && in_range "$offer_port" ||
	fail "the offer the callee got points at $offer_ip:$offer_port, not at the relay"
[ "$answer_ip" = "$PROXY_IP" ] && in_range "$answer_port" ||
	fail "the answer the caller got points at $answer_ip:$answer_port, not at the relay"
[ "$offer_port" != "$answer_port" ] || fail "both sides were given the same relay port"

t1=$(ms)
rtp_both "$answer_ip:$answer_port" "$offer_ip:$offer_port" call1
rtp_check "$WORK/call1-dev.json" --from "$PROXY_IP:$answer_port" --ssrc $SSRC_UP \
	--min $MIN_PACKETS --only-from "$PROXY_IP:$answer_port"
rtp_check "$WORK/call1-up.json" --from "$PROXY_IP:$offer_port" --ssrc $SSRC_DEV \
	--min $MIN_PACKETS --only-from "$PROXY_IP:$offer_port"
wait_pid "$uac" "caller (call 1)"
wait_pid "$uas" "callee (call 1)"
cid=$(call_id_of up1)
wait_for 5 grep -q "call end $cid:" "$SIPNATD_LOG" || fail "no call-end line for $cid"
line=$(grep "call end $cid:" "$SIPNATD_LOG")
say "$(echo "$line" | sed 's/.*call end/call end/')"
echo "$line" | awk -v min=$MIN_PACKETS '{
	for (i = 1; i <= NF; i++)
		if ($i ~ /^(A0|B0)$/ && $(i + 1) == "in" && $(i + 3) == "out") {
			split($(i + 2), a, "/"); o = $(i + 4); sub(/[^0-9].*/, "", o)
			if (a[1] + 0 >= min && o + 0 >= min) ok[$i] = 1
		}
	exit !(ok["A0"] && ok["B0"]) }' || fail "the call-end line does not count >= $MIN_PACKETS in and out on A0 and B0"
say "1. call with media: ok ($(($(ms) - t1)) ms of media)"

# ------------------------------------------------------- 2. hold, resume
t2=$(ms)
start_uas up2 "$UP_IP" "$UP_PORT" 30 -sf "$SCEN/uas-media.xml" -mp $UP_SIPP_MP \
	-key rtp_port $UP_RTP -m 1 -trace_msg -message_file msg.log -trace_err
uas=$LAST_PID
run_sipp dev2 30 -sf "$SCEN/uac-media-hold.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
	-p "$DEV_PORT" -mp $DEV_SIPP_MP -key rtp_port $DEV_RTP -s callee -d 500 -m 1 \
	-trace_msg -message_file msg.log -trace_err || fail "caller (hold): sipp exit status $?"
wait_pid "$uas" "callee (hold)"
offers=$(received_sdp up2 '^INVITE ' | sort -u)
answers=$(received_sdp dev2 '^SIP/2.0 200 ' | sort -u)
n_off=$(received_sdp up2 '^INVITE ' | grep -c .)
n_ans=$(received_sdp dev2 '^SIP/2.0 200 ' | grep -c .)
say "hold/resume: $n_off offers at the callee ($offers), $n_ans answers at the caller ($answers)"
[ "$n_off" -ge 3 ] && [ "$n_ans" -ge 3 ] || fail "expected 3 offers and 3 answers with SDP"
[ "$(echo "$offers" | wc -l)" = 1 ] || fail "the relay address changed across re-INVITEs: $offers"
[ "$(echo "$answers" | wc -l)" = 1 ] || fail "the relay address changed across re-INVITEs: $answers"
set -- $offers
[ "$1" = "$PROXY_IP" ] && in_range "$2" || fail "re-INVITE offer not anchored: $offers"
set -- $answers
[ "$1" = "$PROXY_IP" ] && in_range "$2" || fail "re-INVITE answer not anchored: $answers"
tr -d '\r' <"$WORK/up2/msg.log" | grep -q '^a=sendonly' ||
	fail "the hold offer lost its a=sendonly on the way"
say "2. hold and resume keep the relay ports: ok ($(($(ms) - t2)) ms)"

# ------------------------------------------------------------------ 3. ICE
t3=$(ms)
start_uas up3 "$UP_IP" "$UP_PORT" 30 -sf "$SCEN/uas-media.xml" -mp $UP_SIPP_MP \
	-key rtp_port $UP_RTP -m 1 -trace_msg -message_file msg.log -trace_err
uas=$LAST_PID
run_sipp dev3 30 -sf "$SCEN/uac-media-ice.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
	-p "$DEV_PORT" -mp $DEV_SIPP_MP -key rtp_port $DEV_RTP -s callee -d 200 -m 1 \
	-trace_msg -message_file msg.log -trace_err || fail "caller (ICE): sipp exit status $?"
wait_pid "$uas" "callee (ICE)"
set -- $(received_sdp up3 '^INVITE ' | head -n 1)
ice_port=$2
msgs=$(sipp_messages up3)
grep -E '^a=candidate:' "$msgs" | sed "s/^/$TEST_NAME: callee got: /"
grep -Eq "^a=candidate:[^ ]+ 1 (UDP|udp) [0-9]+ $PROXY_IP $ice_port typ relay( |\$)" "$msgs" ||
	fail "no 'typ relay' candidate on $PROXY_IP:$ice_port in the offer the callee received"
say "3. ICE offer gets a relay candidate: ok ($(($(ms) - t3)) ms)"

# ------------------------------------------------------- 4. late offer
# INVITE without SDP: the callee offers in the 200, the caller answers in
# the ACK (RFC 3261 section 13.2.1).  Both SDPs are anchored, and audio
# flows both ways.
t4=$(ms)
start_uas up4 "$UP_IP" "$UP_PORT" 30 -sf "$SCEN/uas-media-late.xml" -mp $UP_SIPP_MP \
	-key rtp_port $UP_RTP -m 1 -trace_msg -message_file msg.log -trace_err
uas=$LAST_PID
start_sipp dev4 30 -sf "$SCEN/uac-media-late.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
	-p "$DEV_PORT" -mp $DEV_SIPP_MP -key rtp_port $DEV_RTP -s callee -d 5000 -m 1 \
	-trace_msg -message_file msg.log -trace_err
uac=$LAST_PID
offer=$(sdp_of dev4 '^SIP/2.0 200 ') || fail "late offer: the caller received no 200 with SDP"
answer=$(sdp_of up4 '^ACK ') || fail "late offer: the callee received no ACK with SDP"
set -- $offer
offer_ip=$1 offer_port=$2
set -- $answer
answer_ip=$1 answer_port=$2
say "late offer: the caller got the offer at $offer_ip:$offer_port, the callee the answer at $answer_ip:$answer_port"
[ "$offer_ip" = "$PROXY_IP" ] && in_range "$offer_port" ||
	fail "the offer in the 200 points at $offer_ip:$offer_port, not at the relay"
[ "$answer_ip" = "$PROXY_IP" ] && in_range "$answer_port" ||
	fail "the answer in the ACK points at $answer_ip:$answer_port, not at the relay"
rtp_both "$offer_ip:$offer_port" "$answer_ip:$answer_port" late
rtp_check "$WORK/late-dev.json" --from "$PROXY_IP:$offer_port" --ssrc $SSRC_UP \
	--min $MIN_PACKETS --only-from "$PROXY_IP:$offer_port"
rtp_check "$WORK/late-up.json" --from "$PROXY_IP:$answer_port" --ssrc $SSRC_DEV \
	--min $MIN_PACKETS --only-from "$PROXY_IP:$answer_port"
wait_pid "$uac" "caller (late offer)"
wait_pid "$uas" "callee (late offer)"
say "4. late offer (SDP in 200 and ACK): ok ($(($(ms) - t4)) ms)"

# --------------------------------------------- 5. 183 with 100rel, UPDATE
# The answer comes in a reliable 183 (RFC 3262), PRACKed; after the call
# is up the caller sends an UPDATE (RFC 3311) with a new SDP version.  The
# 183 and the UPDATE's 200 are anchored, the UPDATE keeps the relay ports,
# and audio flows both ways after it.
t5=$(ms)
start_uas up5 "$UP_IP" "$UP_PORT" 30 -sf "$SCEN/uas-media-prack-update.xml" \
	-mp $UP_SIPP_MP -key rtp_port $UP_RTP -m 1 -trace_msg -message_file msg.log -trace_err
uas=$LAST_PID
start_sipp dev5 30 -sf "$SCEN/uac-media-prack-update.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
	-p "$DEV_PORT" -mp $DEV_SIPP_MP -key rtp_port $DEV_RTP -s callee -d 5000 -m 1 \
	-trace_msg -message_file msg.log -trace_err
uac=$LAST_PID
answer=$(sdp_of dev5 '^SIP/2.0 183 ') || fail "the caller received no 183 with SDP"
offer=$(sdp_of up5 '^INVITE ') || fail "the callee received no INVITE with SDP"
wait_for 10 eval '[ -n "$(received_sdp up5 "^UPDATE ")" ]' || fail "the callee received no UPDATE with SDP"
wait_for 10 eval '[ -n "$(received_sdp dev5 "^SIP/2.0 200 ")" ]' ||
	fail "the caller received no 200 with SDP to its UPDATE"
upd=$(received_sdp up5 '^UPDATE ' | head -n 1)
upd_answer=$(received_sdp dev5 '^SIP/2.0 200 ' | head -n 1)
say "100rel/UPDATE: 183 answer at the caller $answer, offer at the callee $offer, UPDATE at the callee $upd, its answer at the caller $upd_answer"
set -- $answer
[ "$1" = "$PROXY_IP" ] && in_range "$2" || fail "the 183's SDP is not anchored: $answer"
set -- $offer
[ "$1" = "$PROXY_IP" ] && in_range "$2" || fail "the INVITE's SDP is not anchored: $offer"
[ "$upd" = "$offer" ] || fail "the UPDATE moved the callee's relay port: $offer -> $upd"
[ "$upd_answer" = "$answer" ] || fail "the UPDATE's answer moved the caller's relay port: $answer -> $upd_answer"
set -- $answer
answer_port=$2
set -- $offer
offer_port=$2
rtp_both "$PROXY_IP:$answer_port" "$PROXY_IP:$offer_port" prack
rtp_check "$WORK/prack-dev.json" --from "$PROXY_IP:$answer_port" --ssrc $SSRC_UP \
	--min $MIN_PACKETS --only-from "$PROXY_IP:$answer_port"
rtp_check "$WORK/prack-up.json" --from "$PROXY_IP:$offer_port" --ssrc $SSRC_DEV \
	--min $MIN_PACKETS --only-from "$PROXY_IP:$offer_port"
wait_pid "$uac" "caller (100rel/UPDATE)"
wait_pid "$uas" "callee (100rel/UPDATE)"
say "5. reliable 183 with PRACK, then UPDATE: ok ($(($(ms) - t5)) ms)"

# --------------------------------------------------------- 6. media timeout
t6=$(ms)
stop_sipnatd
# start_sipnatd waits for "started" in its log: begin a fresh one.
mv "$SIPNATD_LOG" "$WORK/sipnatd-calls.log"
start_sipnatd "$(conf 3)"
start_uas up6 "$UP_IP" "$UP_PORT" 30 -sf "$SCEN/uas-media.xml" -mp $UP_SIPP_MP \
	-key rtp_port $UP_RTP -m 1 -trace_msg -message_file msg.log -trace_err
uas=$LAST_PID
start_sipp dev6 30 -sf "$SCEN/uac-media-wait-bye.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
	-p "$DEV_PORT" -mp $DEV_SIPP_MP -key rtp_port $DEV_RTP -s callee -m 1 \
	-trace_msg -message_file msg.log -trace_err
uac=$LAST_PID
sdp_of dev6 '^SIP/2.0 200 ' >/dev/null || fail "the caller received no 200 with SDP"
ta=$(ms)
wait_pid "$uac" "caller (media timeout): no BYE from sipnatd?"
tb=$(ms)
wait_pid "$uas" "callee (media timeout): no BYE from sipnatd?"
assert_log "no media for 3s; ending it with BYE on both sides" "the media-timeout warning"
for n in dev6 up6; do
	msgs=$(sipp_messages $n)
	grep -q '^BYE ' "$msgs" || fail "$n received no BYE"
	grep -q '^Reason: .*media timeout' "$msgs" || say "note: the BYE to $n has no Reason naming the timeout"
done
# The session opened with the INVITE; sweeps are every 0.5 s: 3-5 s.
dt=$((tb - ta))
say "BYE reached the caller $dt ms after its 200"
[ $dt -ge 2000 ] && [ $dt -le 6000 ] || fail "BYE after $dt ms, expected about 3000"
say "6. media timeout ends the call on both sides: ok ($(($(ms) - t6)) ms)"

# A call that rings longer than the media timeout (5 s > 3 s, no early
# media) is not ended by it: there is no dialog to send BYE in yet, and
# the answer must still be anchored when it comes.
t6b=$(ms)
start_uas up6b "$UP_IP" "$UP_PORT" 30 -sf "$SCEN/uas-media-ring.xml" -mp $UP_SIPP_MP \
	-key rtp_port $UP_RTP -m 1 -trace_msg -message_file msg.log -trace_err
uas=$LAST_PID
run_sipp dev6b 30 -sf "$SCEN/uac-media.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" -p "$DEV_PORT" \
	-mp $DEV_SIPP_MP -key rtp_port $DEV_RTP -s callee -d 300 -m 1 -trace_msg \
	-message_file msg.log -trace_err || fail "the call that rang past the media timeout failed (sipp status $?)"
wait_pid "$uas" "callee (ringing past the timeout)"
set -- $(received_sdp dev6b '^SIP/2.0 200 ' | head -n 1)
[ "$1" = "$PROXY_IP" ] && in_range "$2" ||
	fail "the answer after 5 s of ringing was not anchored: $1:$2 (the media timeout dropped the call?)"
say "6b. ringing past the media timeout: answer still anchored at $1:$2: ok ($(($(ms) - t6b)) ms)"

# The same call, answered after 5 s of ringing, then silent: the timeout
# counts from the answer, so both sides get a BYE about 3 s after the 200
# (it used to live on, holding its ports, as long as nobody hung up).
t6c=$(ms)
start_uas up6c "$UP_IP" "$UP_PORT" 30 -sf "$SCEN/uas-media-ring.xml" -mp $UP_SIPP_MP \
	-key rtp_port $UP_RTP -m 1 -trace_msg -message_file msg.log -trace_err
uas=$LAST_PID
start_sipp dev6c 30 -sf "$SCEN/uac-media-wait-bye.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
	-p "$DEV_PORT" -mp $DEV_SIPP_MP -key rtp_port $DEV_RTP -s callee -m 1 \
	-trace_msg -message_file msg.log -trace_err
uac=$LAST_PID
SDP_WAIT=10 sdp_of dev6c '^SIP/2.0 200 ' >/dev/null || fail "the caller received no 200 with SDP"
ta=$(ms)
wait_pid "$uac" "caller (silent after ringing past the timeout): no BYE from sipnatd?"
tb=$(ms)
wait_pid "$uas" "callee (silent after ringing past the timeout): no BYE from sipnatd?"
dt=$((tb - ta))
[ $dt -ge 2000 ] && [ $dt -le 6000 ] || fail "BYE $dt ms after the answer, expected about 3000"
say "6c. answered after ringing past the timeout, then silent: BYE $dt ms after the 200: ok ($(($(ms) - t6c)) ms)"

# ------------------------------------------------ 7. port pool exhausted
# Two port pairs: one call takes both (a pair for each side, reserved at
# the offer).  A second call while it lasts is refused with 503 and
# Retry-After before it reaches the upstream; once the first call ends
# its ports are free again and a third call gets them.
t7=$(ms)
stop_sipnatd
mv "$SIPNATD_LOG" "$WORK/sipnatd-timeout.log"
start_sipnatd "$(conf 0 $((RELAY_LO + 3)))"
start_uas up7 "$UP_IP" "$UP_PORT" 30 -sf "$SCEN/uas-media.xml" -mp $UP_SIPP_MP \
	-key rtp_port $UP_RTP -m 2 -trace_msg -message_file msg.log -trace_err
uas=$LAST_PID
start_sipp dev7 30 -sf "$SCEN/uac-media.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" -p "$DEV_PORT" \
	-mp $DEV_SIPP_MP -key rtp_port $DEV_RTP -s callee -d 3000 -m 1 \
	-trace_msg -message_file msg.log -trace_err
uac=$LAST_PID
sdp_of dev7 '^SIP/2.0 200 ' >/dev/null || fail "the first call (pool of 2 pairs) was not answered"
run_sipp dev8 15 -sf "$SCEN/uac-media-503.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" \
	-p $((PORT_BASE + 3)) -mp $((PORT_BASE + 40)) -key rtp_port $((PORT_BASE + 14)) -s callee \
	-m 1 -trace_msg -message_file msg.log -trace_err ||
	fail "the call beyond the pool was not refused with 503 and Retry-After (sipp status $?)"
cid8=$(tr -d '\r' <"$(sipp_messages dev8)" | awk '/^Call-ID:/ { print $2; exit }')
[ -n "$cid8" ] || fail "no Call-ID in the refused call's trace"
if grep -q "^Call-ID: $cid8" "$WORK/up7/msg.log"; then
	fail "the refused INVITE reached the upstream"
fi
assert_log "no ports left; 503" "the 503 warning"
wait_pid "$uac" "caller of the first call (pool of 2 pairs)"
run_sipp dev9 30 -sf "$SCEN/uac-media.xml" "$PROXY_IP:$PROXY_PORT" -i "$DEV_IP" -p "$DEV_PORT" \
	-mp $DEV_SIPP_MP -key rtp_port $DEV_RTP -s callee -d 200 -m 1 -trace_msg -trace_err ||
	fail "a call after the first one ended did not get the freed ports (sipp status $?)"
wait_pid "$uas" "callee (pool of 2 pairs)"
say "7. pool exhausted: 503 with Retry-After, ports back after the call: ok ($(($(ms) - t7)) ms)"

stop_sipnatd
say "PASS ($(($(ms) - t0)) ms)"
