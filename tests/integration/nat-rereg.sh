#!/bin/sh
# nat-rereg: a device that re-registers over a new NAT mapping replaces its
# old flow; Expires: 0 removes it.
#
# Lab (tests/lab/README): sipnatd on pub (path = yes, no keepalives), a
# registrar stand-in on pbx, a minimal phone "dev" on ua2 behind the
# symmetric nat2 (--random-fully: every new local port gets a new public
# port), always with the same Contact sip:dev@192.168.2.10:5060.
#   1) dev registers from local port 5061 (mapping P1, Path token T1);
#   2) a listener takes over local port 5061: whatever sipnatd still sends
#      to P1 arrives there;
#   3) dev re-registers from local port 5062 (new mapping P2, token T2):
#      sipnatd logs the flow moving, sipnatctl lists one binding on P2;
#   4) an INVITE from the PBX with the stale T1 gets 430 Flow Failed, one
#      with T2 reaches the phone on P2 and completes; the listener on the
#      old mapping received nothing at all;
#   5) dev sends Expires: 0: sipnatctl no longer lists it, and an INVITE
#      with T2 gets 430.
# The lab needs no port range; the slot is this test\'s all the same.
# shellcheck disable=SC2034
TEST_SLOT=50
# shellcheck source=tests/integration/natlib.sh disable=SC2119
. "$(dirname "$0")/natlib.sh"

SIPNATCTL="${SIPNATCTL:-$(dirname "$SIPNATD")/sipnatctl}"
nat_setup rr
[ -x "$SIPNATCTL" ] || skip "no sipnatctl at $SIPNATCTL"
ctl() { "$SIPNATCTL" -s "$WORK/control.sock" "$@"; }
start_registrar
sipnatd_conf "$WORK/sipnat.conf" "$WORK/state" "path = yes" "keepalive = off"
start_sipnatd "$WORK/sipnat.conf"

DEV_IP=192.168.2.10
AOR_RE='sip:dev@198\.51\.100\.20'
RURI="sip:dev@$DEV_IP:5060"

# 1) first registration
device ua2 "$DEV_IP" 5061 dev 5060 register 10
wait "$DEVICE_PID" || fail "first REGISTER failed: $(cat "$DEVICE_DIR/device.log")"
t1=$(registered_path_token 1)
[ -n "$t1" ] || fail "no flow token in the first Path"
flow=$(token_flow "$t1")
p1=${flow#* }
assert_sipnatd "registered $AOR_RE via udp:203\\.0\\.113\\.102:$p1 \\(NAT\\)" \
	"sipnatd's log (first registration)"
say "dev registered from local port 5061 over 203.0.113.102:$p1"

# 2) the old mapping's listener
device ua2 "$DEV_IP" 5061 dev 5060 listen 60
old_pid=$DEVICE_PID
old_dir=$DEVICE_DIR

# 3) re-registration over a new mapping, then wait for a call
device ua2 "$DEV_IP" 5062 dev 5060 answer 40
new_pid=$DEVICE_PID
new_dir=$DEVICE_DIR
# shellcheck disable=SC2016 # expanded by eval, on each try
wait_for 10 eval '[ -n "$(registered_path_token 2)" ]' || fail "the re-REGISTER did not reach the registrar"
t2=$(registered_path_token 2)
flow=$(token_flow "$t2")
p2=${flow#* }
[ "$p2" != "$p1" ] || fail "nat2 gave the new local port the same public port $p1"
wait_for 5 grep -Eq "flow of $AOR_RE \\(sip:dev@192\\.168\\.2\\.10:5060\\) moved from udp:203\\.0\\.113\\.102:$p1 to udp:203\\.0\\.113\\.102:$p2" \
	"$SIPNATD_LOG" || fail "sipnatd did not log the flow moving from $p1 to $p2"
ctl registrations >"$WORK/regs1.out" 2>&1 || fail "sipnatctl registrations: $(cat "$WORK/regs1.out")"
n=$(grep -c '^sip:dev@' "$WORK/regs1.out")
[ "$n" = 1 ] || fail "sipnatctl lists $n bindings of dev after re-registering: $(cat "$WORK/regs1.out")"
grep -Eq "^sip:dev@198\\.51\\.100\\.20 +sip:dev@192\\.168\\.2\\.10:5060 +udp:203\\.0\\.113\\.102:$p2 " \
	"$WORK/regs1.out" || fail "sipnatctl does not show the new flow: $(cat "$WORK/regs1.out")"
say "dev re-registered from local port 5062 over 203.0.113.102:$p2; one binding, new flow"

# 4) calls from the PBX
pbx_invite 430 "$RURI" "$t1" || fail "INVITE with the replaced flow's token: expected 430, got $(invite_status)"
say "INVITE with the old token: $(invite_status)"
pbx_invite 200 "$RURI" "$t2" || fail "INVITE with the new token failed: $(invite_status)"
wait "$new_pid" || fail "the phone on the new mapping did not complete the call: $(cat "$new_dir/device.log")"
cid=$(invite_messages | sed -n 's/^Call-ID: //p' | head -n 1)
device_messages "$new_dir" | grep -q "^Call-ID: $cid\$" || fail "the call did not reach the new mapping"
sleep 1
kill "$old_pid" 2>/dev/null
wait "$old_pid" 2>/dev/null
if [ -s "$old_dir/messages.log" ]; then
	fail "sipnatd sent to the old mapping after the re-registration: $(head -n 5 "$old_dir/messages.log")"
fi
say "the call reached dev on the new mapping; nothing reached the old one"

# 5) unregister
device ua2 "$DEV_IP" 5062 dev 5060 unregister 10
wait "$DEVICE_PID" || fail "REGISTER with Expires: 0 failed: $(cat "$DEVICE_DIR/device.log")"
wait_for 5 grep -Eq "unregistered $AOR_RE \\(sip:dev@192\\.168\\.2\\.10:5060\\)" "$SIPNATD_LOG" ||
	fail "sipnatd did not log the unregistration"
ctl registrations >"$WORK/regs2.out" 2>&1 || fail "sipnatctl registrations: $(cat "$WORK/regs2.out")"
grep -q '^sip:dev@' "$WORK/regs2.out" && fail "sipnatctl still lists dev after Expires: 0"
pbx_invite 430 "$RURI" "$t2" || fail "INVITE after Expires: 0: expected 430, got $(invite_status)"
say "Expires: 0 removed the binding; a call to it: $(invite_status)"
stop_sipnatd
say "PASS"
exit 0
