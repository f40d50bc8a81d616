#!/bin/sh
# nat-flow-token: a forged or altered flow token is refused, never routed.
#
# Lab (tests/lab/README): sipnatd on pub (path = yes, a known flow_secret,
# no keepalives), a registrar stand-in on pbx, a minimal phone "dev" behind
# nat1 that registers through sipnatd (sipnatd's Path carries the token of
# its NAT flow) and then waits for one call.  From the PBX namespace sipp
# sends INVITEs for the phone's private Contact with Route
# <sip:TOKEN@sipnatd;lr>, as a PBX does with the Path it stored:
#   b) the genuine token with one character changed      -> 403
#   c) a token for the same flow made with another secret -> 403
#   d) a valid token (right secret) for a flow that no device is
#      registered over                                    -> 430 Flow Failed
#   a) the genuine token                                  -> reaches the
#      phone, which answers; ACK and BYE complete.
# The phone must receive exactly one INVITE (the last), so (b)-(d) were
# not forwarded anywhere, and sipnatd must log each refusal.
# The lab needs no port range; the slot is this test\'s all the same.
# shellcheck disable=SC2034
TEST_SLOT=47
# shellcheck source=tests/integration/natlib.sh disable=SC2119
. "$(dirname "$0")/natlib.sh"

SECRET=nat-flow-token-test-secret
nat_setup ft
start_registrar
sipnatd_conf "$WORK/sipnat.conf" "$WORK/state" "path = yes" "keepalive = off" \
	"flow_secret = $SECRET"
start_sipnatd "$WORK/sipnat.conf"

DEV_IP=192.168.1.10
device ua1 "$DEV_IP" 5060 dev 5060 answer 90
dev_pid=$DEVICE_PID
dev_dir=$DEVICE_DIR
wait_for 10 grep -q '^Path: <sip:' "$WORK/registrar.log" 2>/dev/null ||
	fail "the REGISTER did not reach the registrar with a Path"
wait_for 5 grep -Eq 'registered sip:dev@198\.51\.100\.20 via udp:203\.0\.113\.101:5060 \(NAT\)' \
	"$SIPNATD_LOG" || fail "sipnatd did not record the registration"
good=$(registered_path_token 1)
[ -n "$good" ] || fail "no flow token in the Path"
flow=$(token_flow "$good")
flow_ip=${flow% *}
flow_port=${flow#* }
if [ "$flow_ip" != 203.0.113.101 ] || [ "$flow_port" != 5060 ]; then
	fail "the Path token names $flow_ip:$flow_port, not nat1's 203.0.113.101:5060"
fi
[ "$(flow_token "$SECRET" udp "$flow_ip" "$flow_port")" = "$good" ] ||
	fail "the test's token encoder does not match sipnatd's (flow.c changed?)"
say "dev registered; Path token $good names udp:$flow_ip:$flow_port"

RURI="sip:dev@$DEV_IP:5060"

# b) one character of the genuine token changed (inside the address).
c=$(echo "$good" | cut -c8)
if [ "$c" = A ]; then n=B; else n=A; fi
altered="$(echo "$good" | cut -c1-7)$n$(echo "$good" | cut -c9-)"
if [ "$altered" = "$good" ] || [ ${#altered} != ${#good} ]; then
	fail "could not alter the token"
fi
pbx_invite 403 "$RURI" "$altered" || fail "(b) altered token: expected 403, got $(invite_status)"
cid=$(invite_messages | sed -n 's/^Call-ID: //p' | head -n 1)
assert_sipnatd "refused INVITE $cid from 198\\.51\\.100\\.20:[0-9]+: flow token fails its HMAC" \
	"sipnatd's log (altered token)"
say "(b) altered token: $(invite_status)"

# c) the same flow signed with another secret.
forged=$(flow_token other-secret-of-an-attacker udp "$flow_ip" "$flow_port")
pbx_invite 403 "$RURI" "$forged" || fail "(c) forged token: expected 403, got $(invite_status)"
cid=$(invite_messages | sed -n 's/^Call-ID: //p' | head -n 1)
assert_sipnatd "refused INVITE $cid from 198\\.51\\.100\\.20:[0-9]+: flow token fails its HMAC" \
	"sipnatd's log (token from another secret)"
say "(c) token made with another secret: $(invite_status)"

# d) a genuine token (right secret) for a flow nobody is registered over.
gone=$(flow_token "$SECRET" udp "$flow_ip" $((flow_port + 1)))
pbx_invite 430 "$RURI" "$gone" || fail "(d) stale flow: expected 430, got $(invite_status)"
invite_status | grep -q '^430 Flow Failed' || fail "(d) the 430 has no 'Flow Failed' phrase"
cid=$(invite_messages | sed -n 's/^Call-ID: //p' | head -n 1)
assert_sipnatd "refused INVITE $cid from 198\\.51\\.100\\.20:[0-9]+: flow udp:203\\.0\\.113\\.101:$((flow_port + 1)) is gone.*; 430" \
	"sipnatd's log (token for a gone flow)"
say "(d) valid token for a flow that does not exist: $(invite_status)"

# a) the genuine token: the phone gets the call.
pbx_invite 200 "$RURI" "$good" || fail "(a) genuine token: the call failed ($(invite_status))"
wait "$dev_pid" || fail "the phone did not complete the call: $(tail -n 5 "$dev_dir/device.log")"
msgs=$(device_messages "$dev_dir")
n=$(echo "$msgs" | grep -c '^INVITE ')
cid=$(invite_messages | sed -n 's/^Call-ID: //p' | head -n 1)
[ "$n" = 1 ] || fail "the phone received $n INVITEs; only the genuine token's may arrive"
echo "$msgs" | grep -q "^Call-ID: $cid\$" || fail "the phone's INVITE is not the genuine call"
echo "$msgs" | grep -q '^BYE ' || fail "the PBX's BYE did not reach the phone"
say "(a) genuine token: the call reached the phone; (b)-(d) never did"
stop_sipnatd
say "PASS"
exit 0
