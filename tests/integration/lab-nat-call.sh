#!/bin/sh
# lab-nat-call: real calls through sipnatd across real Linux NATs.
#
# In the namespace lab (tests/lab/sipnat-lab): sipnatd on pub
# (203.0.113.10:5060, upstream pbx), a sipp UAS on pbx, and a sipp UAC
# behind nat1 (port-preserving) and behind nat2 (symmetric: a new public
# port per destination) using sipnatd as outbound proxy.  The UACs put
# their private address in Via and Contact and ask for no rport, as many
# phones do, so the calls only complete if sipnatd answers to the address
# the request really came from (RFC 3581 section 4, applied even without
# rport: the only way back through a symmetric NAT).
#
# Passes when every call of both UACs completes (sipp exit 0, -m 3 each)
# and sipnatd logged their requests as coming from the NATs' public
# addresses.  Exit 77 (skip) when not root or a tool or the daemon is
# missing, unless SIPNAT_REQUIRE_ALL=1, which makes that a failure.

srcdir="${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
LAB="$srcdir/tests/lab/sipnat-lab"
SIPNATD="${SIPNATD:-${SIPNAT_BUILDDIR:-$srcdir}/sipnatd}"
CALLS=3

say() { echo "lab-nat-call: $*"; }
skip() {
	if [ "${SIPNAT_REQUIRE_ALL:-0}" = 1 ]; then
		say "FAIL (SIPNAT_REQUIRE_ALL=1): $*"
		exit 1
	fi
	say "SKIP: $*"
	exit 77
}

[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
for t in bash ip iptables iptables-restore sysctl ss sipp; do
	command -v "$t" >/dev/null 2>&1 || skip "missing $t"
done
[ -r "$LAB" ] || skip "missing $LAB"
[ -x "$SIPNATD" ] || skip "no daemon at $SIPNATD (set SIPNATD)"

SIPNAT_LAB_PREFIX="snc$$-"
export SIPNAT_LAB_PREFIX
WORK="$(mktemp -d /tmp/lab-nat-call.XXXXXX)" || exit 1
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	bash "$LAB" down
	if [ "${KEEP_LOGS:-0}" = 1 ]; then
		say "logs kept in $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

lab() { bash "$LAB" "$@"; }
fail() {
	say "FAIL: $*"
	for f in "$WORK"/sipnatd.log "$WORK"/*/*errors.log; do
		[ -s "$f" ] || continue
		echo "---- $f (last 40 lines)"
		tail -n 40 "$f"
	done
	exit 1
}
# wait_udp HOST ADDR:PORT: bounded wait (5 s) for a UDP listener
wait_udp() {
	i=0
	while [ $i -lt 100 ]; do
		if lab exec "$1" ss -Hlnu "src $2" 2>/dev/null | grep -q .; then
			return 0
		fi
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}

ms() { echo $(($(date +%s%N) / 1000000)); }
t0=$(ms)
lab up || fail "lab up"

mkdir -p "$WORK/state" "$WORK/pbx" "$WORK/ua1" "$WORK/ua2"
cat >"$WORK/sipnat.conf" <<EOF
[sip]
listen = udp:203.0.113.10:5060
upstream = sip:198.51.100.20:5060
state_dir = $WORK/state

[log]
level = debug
target = stderr
EOF

lab exec pub "$SIPNATD" -f -c "$WORK/sipnat.conf" >"$WORK/sipnatd.log" 2>&1 &
wait_udp pub 203.0.113.10:5060 || fail "sipnatd is not listening on 203.0.113.10:5060"

# The PBX answers every call.
(cd "$WORK/pbx" && exec bash "$LAB" exec pbx sipp -sn uas -i 198.51.100.20 -p 5060 \
	-m $((2 * CALLS)) -timeout 30s -nostdin -trace_err >/dev/null 2>&1) &
pbx_pid=$!
wait_udp pbx 198.51.100.20:5060 || fail "sipp UAS did not start on pbx"

# uac HOST PRIVATE_IP: CALLS calls to the PBX through sipnatd (-rsa), from
# port 5060 behind the host's NAT.
uac() {
	(cd "$WORK/$1" && exec bash "$LAB" exec "$1" sipp -sn uac 198.51.100.20:5060 \
		-rsa 203.0.113.10:5060 -i "$2" -p 5060 -s "callee-$1" \
		-m $CALLS -r 5 -d 200 -timeout 10s -timeout_error -nostdin \
		-trace_err >/dev/null 2>&1)
}
t1=$(ms)
uac ua1 192.168.1.10 &
ua1_pid=$!
uac ua2 192.168.2.10 &
ua2_pid=$!
wait $ua1_pid
ua1_rc=$?
wait $ua2_pid
ua2_rc=$?
# The UAS is not waited for: sipp's built-in uas scenario lingers 4 s after
# each BYE; `down` stops it.  The UACs' success implies it answered.
kill -0 "$pbx_pid" 2>/dev/null || say "note: the UAS on pbx exited early"
say "sipp exit codes: ua1 (behind nat1) $ua1_rc, ua2 (behind nat2) $ua2_rc" \
	"(set-up $((t1 - t0)) ms, calls $(($(ms) - t1)) ms)"

[ $ua1_rc = 0 ] || fail "calls from ua1 behind nat1 did not all complete"
[ $ua2_rc = 0 ] || fail "calls from ua2 behind nat2 (symmetric) did not all complete"

# sipnatd must have seen each UAC at its NAT's public address, never at
# the private one in its Via/Contact.
grep -Eq 'INVITE .*from 203\.0\.113\.101:5060[ (]' "$WORK/sipnatd.log" ||
	fail "sipnatd did not log an INVITE from nat1's public address 203.0.113.101:5060"
grep -Eq 'INVITE .*from 203\.0\.113\.102:[0-9]+[ (]' "$WORK/sipnatd.log" ||
	fail "sipnatd did not log an INVITE from nat2's public address 203.0.113.102"
if grep -Eq 'from 192\.168\.[0-9]+\.[0-9]+:[0-9]+[ (]' "$WORK/sipnatd.log"; then
	fail "sipnatd logged a request from a private address: NAT bypassed?"
fi
say "PASS: $((2 * CALLS)) calls through nat1 and nat2 completed"
exit 0
