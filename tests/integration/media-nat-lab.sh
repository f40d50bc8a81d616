#!/bin/sh
# media-nat-lab: two-way audio between two phones behind real NATs, through
# sipnatd's relay and a real PBX, with an RTP-bleed attacker in the call.
#
# In the namespace lab (tests/lab/README): sipnatd on pub with [relay] on
# 203.0.113.10, kamailio as the PBX on pbx (registrar with Path), a phone
# (sipp + tests/lab/rtpcount.py) on ua2 behind nat2, the symmetric NAT
# (--random-fully: a new public port for every destination), and a caller
# on ua1 behind nat1, the port-preserving NAT.  Both put their private
# address in Contact and in c=, as phones that know nothing of their NAT do.
# ua2 registers through sipnatd; ua1 calls ua2 through sipnatd -> PBX ->
# sipnatd -> ua2; each side sends 150 RTP packets (20 ms, PCMU) to the
# address its SDP was given and counts what arrives.
#
# 1. mode = always: both SDPs arrive pointing at the relay (203.0.113.10,
#    a port of [relay] ports); >= 95 % of each side's packets reach the
#    other, every packet from the relay port that side was given, with the
#    peer's SSRC.  Meanwhile evil (203.0.113.66), which never signalled,
#    sprays every relay port from one second before the phones' first
#    packet to after their last (the "RTP bleed" race): it receives
#    nothing, the phones never see its SSRC, and sipnatd's call-end line
#    counts its packets as dropped.
# 2. mode = never (the lab without a media relay): the SDPs keep the
#    private addresses and the same call has no audio in at least one
#    direction (in this lab: none in either), which shows that part 1's
#    audio is sipnatd's doing and not the lab's.
TEST_SLOT=56
# shellcheck source=tests/integration/natlib.sh
. "${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/natlib.sh"
# shellcheck source=tests/integration/sdptrace.sh
. "$srcdir/tests/integration/sdptrace.sh"
SDP_WAIT=15 # the call crosses the PBX and two NATs

RTPCOUNT="$srcdir/tests/lab/rtpcount.py"
UA1_IP=192.168.1.10
UA2_IP=192.168.2.10
EVIL_IP=203.0.113.66
UA1_RTP=7000
UA2_RTP=7010
SIPP_MP=8000 # sipp binds media sockets even when unused: off the ports above
RELAY_LO=40000
RELAY_HI=40099
PACKETS=150
MIN_PACKETS=$((PACKETS * 95 / 100))
SSRC_UA1=0x0A110001
SSRC_UA2=0x0A220002
SSRC_EVIL=0x0BADF00D

nat_setup media
[ -r "$RTPCOUNT" ] || skip "missing $RTPCOUNT"

ms() { echo $(($(date +%s%N) / 1000000)); }

# media_conf MODE: sipnatd with its relay on pub in the given mode.
media_conf() {
	mkdir -p "$WORK/state"
	sipnatd_conf "$WORK/sipnat-$1.conf" "$WORK/state" \
		"[relay]" "address = $PUB_IP" "ports = $RELAY_LO-$RELAY_HI" "threads = 2" \
		"mode = $1"
	echo "$WORK/sipnat-$1.conf"
}

# received_sdp DIR FIRSTLINE-ERE: "IP PORT" of the audio stream of every
# SDP the sipp in DIR received in a message whose first line matches.
received_sdp() {
	cat "$1"/*_messages.log 2>/dev/null | tr -d '\r' | sdp_audio_addrs "$2"
}


in_range() { [ "$1" -ge "$RELAY_LO" ] && [ "$1" -le "$RELAY_HI" ]; }

# in_ns HOST CMD...: CMD inside the lab host, bounded by timeout(1).
in_ns() {
	_h=$1
	shift
	timeout -k 2 40 ip netns exec "${SIPNAT_LAB_PREFIX}$_h" "$@"
}

# callee TAG: sipp on ua2 registers through sipnatd (and exits), then
# another sipp on the same local port answers one call with media, as the
# same phone would: the INVITE comes back through the NAT mapping the
# REGISTER opened (PID in CALLEE_PID, files in $WORK/TAG-ua2).
callee() {
	mkdir -p "$WORK/$1-reg" "$WORK/$1-ua2"
	(cd "$WORK/$1-reg" && exec timeout -k 2 15 ip netns exec "${SIPNAT_LAB_PREFIX}ua2" \
		sipp -nostdin -sf "$SCEN/ua-register.xml" -i $UA2_IP -p 5060 -mp $SIPP_MP \
		-rsa "$PUB_IP:5060" -s ua2 "$PBX_IP:5060" -m 1 -timeout 10s -timeout_error \
		-trace_msg -trace_err >sipp.log 2>&1) || fail "ua2 did not register through sipnatd"
	(cd "$WORK/$1-ua2" && exec timeout -k 2 40 ip netns exec "${SIPNAT_LAB_PREFIX}ua2" \
		sipp -nostdin -sf "$SCEN/uas-media.xml" -i $UA2_IP -p 5060 -mp $SIPP_MP \
		-key rtp_port $UA2_RTP -m 1 -timeout 35s -timeout_error -trace_msg -trace_err \
		>sipp.log 2>&1) &
	CALLEE_PID=$!
	wait_for 5 listening ua2 udp "$UA2_IP:5060" || fail "the answering sipp did not start on ua2"
}

# caller TAG: sipp on ua1 calls ua2 at the PBX with sipnatd as outbound
# proxy, stays 6 s in the call, hangs up (PID in CALLER_PID).
caller() {
	mkdir -p "$WORK/$1-ua1"
	(cd "$WORK/$1-ua1" && exec timeout -k 2 40 ip netns exec "${SIPNAT_LAB_PREFIX}ua1" \
		sipp -nostdin -sf "$SCEN/uac-media.xml" -i $UA1_IP -p 5060 -mp $SIPP_MP \
		-rsa "$PUB_IP:5060" -s ua2 -key rtp_port $UA1_RTP "$PBX_IP:5060" \
		-d 6000 -m 1 -timeout 35s -timeout_error -trace_msg -trace_err >sipp.log 2>&1) &
	CALLER_PID=$!
}

# wait_sipp PID WHAT
wait_sipp() {
	wait "$1"
	_rc=$?
	[ $_rc = 0 ] || fail "$2: sipp exit status $_rc"
}

# rtp_both TAG UA1-TO UA2-TO: 150 packets each way from both phones,
# starting at the same wall-clock moment 1 s ahead; summaries in
# $WORK/TAG-ua{1,2}.json.  EVIL_SPRAY=1 starts the attacker now, before
# the phones' first packet, for longer than they send.
rtp_both() {
	_at=$(($(ms) + 1000))
	if [ "${EVIL_SPRAY:-0}" = 1 ]; then
		in_ns evil python3 "$RTPCOUNT" spray --host "$PUB_IP" --ports "$RELAY_LO-$RELAY_HI" \
			--bind "$EVIL_IP:7777" --count 60 --pps 1200 --ssrc $SSRC_EVIL \
			--linger-ms 1000 --max-seconds 12 --out "$WORK/$1-evil.json" \
			>/dev/null 2>"$WORK/$1-evil.err" &
		_pe=$!
	fi
	in_ns ua1 python3 "$RTPCOUNT" send --bind "$UA1_IP:$UA1_RTP" --to "$2" --count $PACKETS \
		--ssrc $SSRC_UA1 --start-at $_at --out "$WORK/$1-ua1.json" \
		>/dev/null 2>"$WORK/$1-ua1.err" &
	_p1=$!
	in_ns ua2 python3 "$RTPCOUNT" send --bind "$UA2_IP:$UA2_RTP" --to "$3" --count $PACKETS \
		--ssrc $SSRC_UA2 --start-at $_at --out "$WORK/$1-ua2.json" \
		>/dev/null 2>"$WORK/$1-ua2.err" &
	_p2=$!
	wait $_p1 || fail "rtpcount on ua1 failed: $(cat "$WORK/$1-ua1.err")"
	wait $_p2 || fail "rtpcount on ua2 failed: $(cat "$WORK/$1-ua2.err")"
	if [ "${EVIL_SPRAY:-0}" = 1 ]; then
		wait $_pe || fail "rtpcount spray on evil failed: $(cat "$WORK/$1-evil.err")"
	fi
}

rtp_check() {
	_out=$(python3 "$RTPCOUNT" check "$@") || fail "$_out"
	say "$_out"
}

# received JSON: packets that arrived at that endpoint.
received() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["received"])' "$1"
}

t0=$(ms)
start_pbx

# ------------------------------------------- 1. relayed call, attacker on
start_sipnatd "$(media_conf always)"
callee relay
caller relay
offer=$(sdp_of "$WORK/relay-ua2" '^INVITE ') || fail "ua2 received no INVITE with SDP"
answer=$(sdp_of "$WORK/relay-ua1" '^SIP/2.0 200 ') || fail "ua1 received no 200 with SDP"
set -- $offer
offer_ip=$1 offer_port=$2
set -- $answer
answer_ip=$1 answer_port=$2
say "ua2 (behind nat2) was offered $offer_ip:$offer_port, ua1 (behind nat1) got the answer $answer_ip:$answer_port"
[ "$offer_ip" = "$PUB_IP" ] && in_range "$offer_port" ||
	fail "the offer ua2 got points at $offer_ip:$offer_port, not at the relay"
[ "$answer_ip" = "$PUB_IP" ] && in_range "$answer_port" ||
	fail "the answer ua1 got points at $answer_ip:$answer_port, not at the relay"

t1=$(ms)
EVIL_SPRAY=1 rtp_both relay "$answer_ip:$answer_port" "$offer_ip:$offer_port"
rtp_check "$WORK/relay-ua1.json" --from "$PUB_IP:$answer_port" --ssrc $SSRC_UA2 \
	--min $MIN_PACKETS --only-from "$PUB_IP:$answer_port" --forbid-ssrc $SSRC_EVIL
rtp_check "$WORK/relay-ua2.json" --from "$PUB_IP:$offer_port" --ssrc $SSRC_UA1 \
	--min $MIN_PACKETS --only-from "$PUB_IP:$offer_port" --forbid-ssrc $SSRC_EVIL
rtp_check "$WORK/relay-evil.json" --max-received 0
sent_evil=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sent"])' \
	"$WORK/relay-evil.json")
say "evil sprayed $sent_evil packets at ports $RELAY_LO-$RELAY_HI and got nothing back"
wait_sipp "$CALLER_PID" "ua1's call"
wait_sipp "$CALLEE_PID" "ua2's answer"

cid=$(cat "$WORK"/relay-ua2/*_messages.log | tr -d '\r' | awk '/^INVITE /{i=1} i && /^Call-ID:/ { print $2; exit }')
wait_for 5 grep -q "call end $cid:" "$SIPNATD_LOG" || fail "no call-end line for $cid"
line=$(grep "call end $cid:" "$SIPNATD_LOG" | tail -n 1)
say "$(echo "$line" | sed 's/.*call end/call end/')"
# Each stream's line: "X0 in P/BB out Q drop F+N latched IP:PORT".  Both
# latched to their NAT's public address, and the attacker's packets to
# the two call ports (60 each, minus any lost) counted as foreign drops.
echo "$line" | grep -Eq 'A0 in [0-9]+/[0-9]+B out [0-9]+ drop [0-9]+\+[0-9]+ latched 203\.0\.113\.101:' ||
	fail "the caller's stream did not latch to nat1's address 203.0.113.101"
echo "$line" | grep -Eq 'B0 in [0-9]+/[0-9]+B out [0-9]+ drop [0-9]+\+[0-9]+ latched 203\.0\.113\.102:' ||
	fail "the callee's stream did not latch to nat2's address 203.0.113.102"
# nat2 is symmetric: the source port of ua2's RTP is not the one it bound.
b_port=$(echo "$line" | sed -n 's/.*B0 in .* latched 203\.0\.113\.102:\([0-9]*\).*/\1/p')
[ -n "$b_port" ] && [ "$b_port" != "$UA2_RTP" ] ||
	fail "ua2's RTP kept its port $UA2_RTP through nat2: the lab's symmetric NAT is not in the path"
foreign=$(echo "$line" | awk '{ for (i = 1; i <= NF; i++) if ($i == "drop") { split($(i + 1), d, "+"); s += d[1] } } END { print s + 0 }')
say "sipnatd dropped $foreign packets from foreign sources in this call"
[ "$foreign" -ge 60 ] ||
	fail "only $foreign foreign packets dropped: the attacker's spray did not reach the call's ports"
say "1. relayed call through nat1 and nat2 with an attacker spraying: ok ($(($(ms) - t1)) ms)"

stop_sipnatd

# -------------------------------------------- 2. the same call, no relay
t2=$(ms)
start_sipnatd "$(media_conf never)"
callee norelay
caller norelay
offer=$(sdp_of "$WORK/norelay-ua2" '^INVITE ') || fail "ua2 received no INVITE with SDP (no relay)"
answer=$(sdp_of "$WORK/norelay-ua1" '^SIP/2.0 200 ') || fail "ua1 received no 200 with SDP (no relay)"
say "without the relay ua2 was offered ${offer% *}:${offer#* }, ua1 got ${answer% *}:${answer#* }"
[ "$offer" = "$UA1_IP $UA1_RTP" ] || fail "mode = never still rewrote the offer: $offer"
[ "$answer" = "$UA2_IP $UA2_RTP" ] || fail "mode = never still rewrote the answer: $answer"
rtp_both norelay "$UA2_IP:$UA2_RTP" "$UA1_IP:$UA1_RTP"
got1=$(received "$WORK/norelay-ua1.json")
got2=$(received "$WORK/norelay-ua2.json")
say "without the relay: ua1 received $got1 of $PACKETS, ua2 received $got2 of $PACKETS"
[ "$got1" -lt $((PACKETS * 5 / 100)) ] || [ "$got2" -lt $((PACKETS * 5 / 100)) ] ||
	fail "audio flowed both ways without the relay: the lab does not show the failure"
wait_sipp "$CALLER_PID" "ua1's call (no relay)"
wait_sipp "$CALLEE_PID" "ua2's answer (no relay)"
say "2. without the relay the same call has no audio: ok ($(($(ms) - t2)) ms)"

stop_sipnatd
say "PASS ($(($(ms) - t0)) ms)"
