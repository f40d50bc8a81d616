#!/bin/sh
# nat-restart: a restarted sipnatd still reaches the phones registered
# through it before, without their re-registering.
#
# ua1 (behind nat1) registers through sipnatd (path = yes); the PBX keeps
# sipnatd's Path with a flow token signed with the secret in state_dir.
# Checks:
#   - after SIGTERM and a restart with the same state_dir, sipnatd logs
#     "restored 1 registration(s)", and a call from the PBX reaches ua1 and
#     completes while ua1 sent no second REGISTER (same secret: the Path
#     token is still valid), and keepalives to it resume;
#   - negative control: restarted with a new, empty state_dir (a new
#     secret), the same call is refused with 403 (the token fails its HMAC
#     under the new secret) and never forwarded.
# shellcheck source=tests/integration/natlib.sh disable=SC2119
. "$(dirname "$0")/natlib.sh"

nat_setup rs
start_pbx
sipnatd_conf "$WORK/sipnat.conf" "$WORK/state" "path = yes" "keepalive_interval = 2"
start_sipnatd "$WORK/sipnat.conf"
phone ua1 192.168.1.10 sipnatd
start_phone ua1
wait_registered ua1
assert_sipnatd 'registered sip:ua1@198\.51\.100\.20 via udp:203\.0\.113\.101:5060 \(NAT\)' \
	"sipnatd's log (ua1 registration)"
regs() { grep -a -c '^REGISTER sip:' "$WORK/ua1/baresip.log"; }
n_reg=$(regs)

stop_sipnatd
[ -s "$WORK/state/registrations" ] || fail "sipnatd left no $WORK/state/registrations"
[ -s "$WORK/state/flow_secret" ] || fail "sipnatd left no $WORK/state/flow_secret"
start_sipnatd "$WORK/sipnat.conf"
assert_sipnatd "restored 1 registration\\(s\\) from $WORK/state/registrations" \
	"sipnatd's log (state restored)"
call ua1 "$SCEN/uac-rr.xml" 10 || fail "after the restart the call to ua1 failed"
cid=$(call_messages | sed -n 's/^Call-ID: //p' | head -n 1)
assert_sipnatd "INVITE $cid from 198\\.51\\.100\\.20:5060 \\(upstream\\): target, upstream request to a device flow" \
	"sipnatd's log (INVITE over the restored flow)"
[ "$(regs)" = "$n_reg" ] || fail "ua1 registered again ($(regs) REGISTERs): the test proves nothing"
say "restarted with the same state_dir: the call to ua1 completed, no re-registration"
# The restored binding gets its keepalives again (its NAT binding would
# close otherwise).
opts() { grep -a -c '^OPTIONS sip:ua1' "$WORK/ua1/baresip.log"; }
# shellcheck disable=SC2034 # read by eval below
n_opt=$(opts)
# shellcheck disable=SC2016 # expanded by eval, on each try
wait_for 8 eval '[ "$(opts)" -gt "$n_opt" ]' ||
	fail "no keepalive OPTIONS reached ua1 after the restart"
say "keepalives to the restored ua1 resumed"

# Negative control: a new secret makes the PBX's Path token worthless.
stop_sipnatd
sipnatd_conf "$WORK/sipnat-new.conf" "$WORK/state-new" "path = yes"
start_sipnatd "$WORK/sipnat-new.conf"
if call ua1 "$SCEN/uac-rr.xml" 8; then
	fail "negative control: with a new state_dir the call to ua1 succeeded"
fi
call_messages | grep -q '^SIP/2.0 200' && fail "negative control: ua1 answered"
assert_sipnatd 'refused INVITE [^ ]+ from 198\.51\.100\.20:5060: flow token fails its HMAC.*; 403' \
	"sipnatd's log (the old token rejected)"
call_outcome | grep -q '^403' || fail "the caller did not get sipnatd's 403 ($(call_outcome))"
[ "$(regs)" = "$n_reg" ] || fail "ua1 registered again ($(regs) REGISTERs)"
say "negative control: with a new state_dir the call fails ($(call_outcome)), token rejected"
stop_sipnatd
say "PASS"
exit 0
