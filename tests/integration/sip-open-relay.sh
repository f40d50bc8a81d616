#!/bin/sh
# sip-open-relay: sipnatd is not an open relay.  A device (127.0.0.3) that
# asks for a foreign domain, in the Request-URI or in a Route header,
# gets 403, and sipnatd logs the refusal; a request for our own domain
# from the same device still reaches the upstream, and the upstream (a sipp
# tracing everything it gets) receives none of the refused requests.
TEST_SLOT=6
# shellcheck source=tests/integration/lib.sh
. "${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
setup sipsak

UP_PORT=$((PORT_BASE + 1))
FOREIGN=198.51.100.99 # RFC 5737 documentation address: never reached

write_config "$WORK/sipnat.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT tcp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP_IP:$UP_PORT
domain = example.net
EOF
start_sipnatd "$WORK/sipnat.conf"
start_uas pbx "$UP_IP" "$UP_PORT" 30 -sn uas -m 1 -trace_msg -message_file msg.log

# A foreign Request-URI, INVITE and MESSAGE, over UDP and TCP.
request ruri INVITE "sip:900@$FOREIGN" 70
shoot ruri
assert_file_has "$WORK/ruri.reply" '^SIP/2.0 403 ' "INVITE to a foreign domain"
request ruri-tcp MESSAGE "sip:900@$FOREIGN;transport=tcp" 70
shoot ruri-tcp -E tcp
assert_file_has "$WORK/ruri-tcp.reply" '^SIP/2.0 403 ' "MESSAGE to a foreign domain over TCP"
# A foreign host by name, too.
request ruri-name INVITE "sip:900@relay.example.org" 70
shoot ruri-name
assert_file_has "$WORK/ruri-name.reply" '^SIP/2.0 403 ' "INVITE to a foreign host name"
# Our own domain in the Request-URI, but a foreign Route: the Route wins.
request route INVITE "sip:900@$PROXY_IP:$PROXY_PORT" 70 "Route: <sip:$FOREIGN;lr>"
shoot route
assert_file_has "$WORK/route.reply" '^SIP/2.0 403 ' "INVITE with a foreign Route"
# Our Route first, then a foreign one: still refused.
request route2 INVITE "sip:900@example.net" 70 \
	"Route: <sip:$PROXY_IP:$PROXY_PORT;lr>, <sip:$FOREIGN;lr>"
shoot route2
assert_file_has "$WORK/route2.reply" '^SIP/2.0 403 ' "INVITE with our Route, then a foreign one"

n=$(count_matches "$SIPNATD_LOG" 'refused .*403')
[ "$n" -ge 5 ] || fail "sipnatd logged $n refusals, expected 5"
assert_log "refused INVITE to sip:900@$FOREIGN from $DEV_IP:" "refusal log line"

# Control: a configured domain goes upstream (so the silence above is
# the policy, not a dead upstream).
request ok OPTIONS "sip:900@example.net" 70
shoot ok
grep -q 'Call-ID: ok-' "$WORK/pbx/msg.log" 2>/dev/null ||
	fail "OPTIONS for the configured domain did not reach the upstream"
if grep -Eq '^Call-ID: (ruri|ruri-tcp|ruri-name|route|route2)-' "$(sipp_messages pbx)"; then
	fail "a refused request reached the upstream"
fi

stop_sipnatd
say "PASS"
