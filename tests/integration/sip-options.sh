#!/bin/sh
# sip-options: sipnatd as a SIP endpoint for OPTIONS, and Max-Forwards.
#
#  1. OPTIONS to sipnatd's own URI (no user part) from a device, over UDP
#     and over TCP, is answered 200 by sipnatd with an Allow header;
#  2. requests with Max-Forwards: 0 that would be forwarded are not: an
#     INVITE and a BYE get 483 (RFC 3261 section 16.3 item 3), an OPTIONS
#     is answered by sipnatd itself (200 or 483: section 16.3 lets a proxy
#     be the final recipient of an OPTIONS) and the upstream, a sipp
#     tracing everything it gets, receives nothing at all;
#  3. with itself as upstream, an INVITE that comes back unchanged is a
#     loop: 482 (section 16.3 item 4), not 70 hops and a 483.
TEST_SLOT=5
# shellcheck source=tests/integration/lib.sh
. "${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
setup sipsak

UP_PORT=$((PORT_BASE + 1))
SELF="sip:$PROXY_IP:$PROXY_PORT"

write_config "$WORK/sipnat.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT tcp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP_IP:$UP_PORT
EOF
start_sipnatd "$WORK/sipnat.conf"
# An upstream that records whatever reaches it (it should get nothing).
start_uas pbx "$UP_IP" "$UP_PORT" 30 -sn uas -m 1 -trace_msg -message_file msg.log

# 1: OPTIONS to us, UDP and TCP.
request opt-udp OPTIONS "$SELF" 70
shoot opt-udp
assert_file_has "$WORK/opt-udp.reply" '^SIP/2.0 200 ' "OPTIONS over UDP"
assert_file_has "$WORK/opt-udp.reply" '^Allow: .*INVITE.*OPTIONS' "Allow in the 200 (UDP)"
request opt-tcp OPTIONS "$SELF;transport=tcp" 70
shoot opt-tcp -E tcp
assert_file_has "$WORK/opt-tcp.reply" '^SIP/2.0 200 ' "OPTIONS over TCP"
assert_file_has "$WORK/opt-tcp.reply" '^Allow: ' "Allow in the 200 (TCP)"

# 2: Max-Forwards 0 on requests that would go upstream.
request inv-mf0 INVITE "sip:100@$PROXY_IP:$PROXY_PORT" 0
shoot inv-mf0
assert_file_has "$WORK/inv-mf0.reply" '^SIP/2.0 483 ' "INVITE with Max-Forwards 0"
request bye-mf0 BYE "sip:100@$PROXY_IP:$PROXY_PORT" 0
shoot bye-mf0
assert_file_has "$WORK/bye-mf0.reply" '^SIP/2.0 483 ' "BYE with Max-Forwards 0"
request opt-mf0 OPTIONS "sip:100@$PROXY_IP:$PROXY_PORT" 0
shoot opt-mf0
assert_file_has "$WORK/opt-mf0.reply" '^SIP/2.0 (200|483) ' "OPTIONS with Max-Forwards 0"
assert_file_has "$WORK/opt-mf0.reply" '^Server: sipnat/' "OPTIONS with Max-Forwards 0 answered by sipnatd"
# and Max-Forwards 1 still goes through: it proves the upstream is
# reachable, so that its silence above means something.
request opt-mf1 OPTIONS "sip:100@$PROXY_IP:$PROXY_PORT" 1
shoot opt-mf1
grep -q '^OPTIONS sip:100@' "$WORK/pbx/msg.log" 2>/dev/null ||
	fail "OPTIONS with Max-Forwards 1 did not reach the upstream"
if grep -Eq '^Call-ID: (inv|bye|opt)-mf0-' "$(sipp_messages pbx)"; then
	fail "a request with Max-Forwards 0 was forwarded to the upstream"
fi
assert_file_has "$(sipp_messages pbx)" '^Max-Forwards: 0$' "Max-Forwards 1 decremented to 0"

sipnatd_alive || fail "sipnatd died"
stop_sipnatd

# 3: a real loop.  With itself as upstream, a request comes back to
# sipnatd unchanged: it must answer 482 (RFC 3261 section 16.3 item 4),
# long before Max-Forwards runs out (483 after 70 hops would also stop it,
# but only after 70 copies of the request).
mv "$SIPNATD_LOG" "$WORK/sipnatd-1.log"
write_config "$WORK/sipnat-loop.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT
upstream = sip:$PROXY_IP:$PROXY_PORT
EOF
start_sipnatd "$WORK/sipnat-loop.conf"
request inv-loop INVITE "sip:100@$PROXY_IP:$PROXY_PORT" 70
shoot inv-loop
assert_file_has "$WORK/inv-loop.reply" '^SIP/2.0 482 ' "INVITE sent around a loop"
loops=$(count_matches "$SIPNATD_LOG" 'loop detected for INVITE')
say "loop: $loops detection(s) logged, reply: $(grep -m1 '^SIP/2.0' "$WORK/inv-loop.reply")"
[ "$loops" -ge 1 ] || fail "sipnatd logged no loop detection"
sipnatd_alive || fail "sipnatd died"
stop_sipnatd
say "PASS"
