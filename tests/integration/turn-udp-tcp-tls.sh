#!/bin/sh
# turn-udp-tcp-tls: sipnatd's STUN/TURN server against the real coturn
# client tools and the stun-client package, on loopback.
#  - Binding: turnutils_stunclient (UDP), stun (RFC 3489 client, UDP), and a
#    Binding over TCP written here;
#  - turnutils_uclient allocating and relaying to turnutils_peer over UDP,
#    TCP and TLS (a self-signed certificate made here with certtool), with a
#    static user and with the TURN REST shared secret (-W);
#  - a wrong password is refused (401) and the client gives up;
#  - a SIGHUP reloads the certificate while a TLS allocation relays;
#  - without allowed_peers the loopback peer is refused with 403;
#  - `sipnatctl --json turn` (and the table) lists a UDP allocation while
#    it relays: user, transport, client, relayed address, lifetime, packets.
# The peer is on 127.0.0.1, which the default denied_peers refuses, so the
# first configuration allows 127.0.0.0/8 explicitly.
TEST_SLOT=41
. "$(dirname "$0")/lib.sh"

setup turnutils_uclient turnutils_peer turnutils_stunclient stun certtool python3
SIPNATCTL="${SIPNATCTL:-$(dirname "$SIPNATD")/sipnatctl}"
[ -x "$SIPNATCTL" ] || skip "no sipnatctl at $SIPNATCTL"

TURN_PORT=$((PORT_BASE + 10))
TLS_PORT=$((PORT_BASE + 11))
PEER_PORT=$((PORT_BASE + 20))
RELAY_LO=$((PORT_BASE + 40))
RELAY_HI=$((PORT_BASE + 99))
SECRET=integration-secret-0123

certtool --generate-privkey --key-type=ecdsa --outfile "$WORK/key.pem" >/dev/null 2>&1 ||
	fail "certtool: private key"
printf 'cn = turn.test\nexpiration_days = 2\ntls_www_server\nsigning_key\n' >"$WORK/cert.tmpl"
certtool --generate-self-signed --load-privkey "$WORK/key.pem" --template "$WORK/cert.tmpl" \
	--outfile "$WORK/cert.pem" >/dev/null 2>&1 || fail "certtool: certificate"

# turn_config FILE [EXTRA-TURN-LINES]
turn_config() {
	_f=$1
	shift
	{
		printf '[sip]\nlisten = udp:%s:%s\n' "$PROXY_IP" "$PROXY_PORT"
		printf '[relay]\naddress = 127.0.0.1\nports = %s-%s\nthreads = 2\n' "$RELAY_LO" "$RELAY_HI"
		printf '[turn]\nlisten = udp:127.0.0.1:%s tcp:127.0.0.1:%s tls:127.0.0.1:%s\n' \
			"$TURN_PORT" "$TURN_PORT" "$TLS_PORT"
		printf 'realm = sipnat.test\nuser = alice:alice-pw\nsecret = %s\n' "$SECRET"
		printf 'tls_cert = %s/cert.pem\ntls_key = %s/key.pem\n' "$WORK" "$WORK"
		for _l in "$@"; do
			printf '%s\n' "$_l"
		done
	} | write_config "$_f"
}

start_peer() {
	turnutils_peer -L 127.0.0.1 -p "$PEER_PORT" >"$WORK/peer.log" 2>&1 &
	BG_PIDS="$BG_PIDS $!"
	wait_for 5 listening udp 127.0.0.1 "$PEER_PORT" || fail "turnutils_peer did not start"
}

# uclient NAME ARGS...: runs turnutils_uclient (bounded) into $WORK/NAME.log
uclient() {
	_n=$1
	shift
	timeout 30 turnutils_uclient -e 127.0.0.1 -r "$PEER_PORT" -n 20 -m 1 "$@" 127.0.0.1 \
		>"$WORK/$_n.log" 2>&1
}

# relayed NAME: the client got back every message it sent through the relay.
relayed() {
	_line=$(grep -E 'tot_send_msgs=[0-9]+, tot_recv_msgs=[0-9]+$' "$WORK/$1.log" | tail -n 1)
	_s=$(echo "$_line" | sed -n 's/.*tot_send_msgs=\([0-9]*\),.*/\1/p')
	_r=$(echo "$_line" | sed -n 's/.*tot_recv_msgs=\([0-9]*\)$/\1/p')
	[ -n "$_s" ] && [ "$_s" -gt 0 ] && [ "$_s" = "$_r" ] ||
		fail "$1: sent '$_s', received back '$_r' (see $1.log)"
	say "$1: $_r of $_s messages relayed"
}

# ---- 1. everything that must work ----
turn_config "$WORK/ok.conf" "allowed_peers = 127.0.0.0/8"
start_sipnatd "$WORK/ok.conf"
wait_for 5 listening udp 127.0.0.1 "$TURN_PORT" || fail "no TURN UDP listener"
listening tcp 127.0.0.1 "$TURN_PORT" || fail "no TURN TCP listener"
listening tcp 127.0.0.1 "$TLS_PORT" || fail "no TURN TLS listener"
start_peer

timeout 10 turnutils_stunclient -p "$TURN_PORT" 127.0.0.1 >"$WORK/stunclient.log" 2>&1 ||
	fail "turnutils_stunclient failed"
assert_file_has "$WORK/stunclient.log" 'UDP reflexive addr: 127\.0\.0\.1:[0-9]+' "turnutils_stunclient"
timeout 10 stun "127.0.0.1:$TURN_PORT" 1 -v >"$WORK/stun.log" 2>&1
assert_file_has "$WORK/stun.log" 'MappedAddress = 127\.0\.0\.1:[0-9]+' "stun (RFC 3489 client)"
timeout 10 python3 - "$TURN_PORT" >"$WORK/stun-tcp.log" 2>&1 <<'EOF' || fail "Binding over TCP"
import os, socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
tid = os.urandom(12)
s.sendall(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid)
hdr = b""
while len(hdr) < 20:
    hdr += s.recv(20 - len(hdr))
t, length, cookie = struct.unpack("!HHI", hdr[:8])
body = b""
while len(body) < length:
    body += s.recv(length - len(body))
assert t == 0x0101 and hdr[8:20] == tid, "not a Binding success for our transaction"
i = 0
while i < len(body):
    at, al = struct.unpack("!HH", body[i:i + 4])
    if at == 0x0020:
        port = struct.unpack("!H", body[i + 6:i + 8])[0] ^ 0x2112
        ip = bytes(a ^ b for a, b in zip(body[i + 8:i + 12], b"\x21\x12\xa4\x42"))
        print("XOR-MAPPED-ADDRESS %s:%d" % (socket.inet_ntoa(ip), port))
        sys.exit(0)
    i += 4 + ((al + 3) & ~3)
sys.exit("no XOR-MAPPED-ADDRESS")
EOF
assert_file_has "$WORK/stun-tcp.log" 'XOR-MAPPED-ADDRESS 127\.0\.0\.1:' "Binding over TCP"

uclient udp-user -p "$TURN_PORT" -u alice -w alice-pw || fail "uclient UDP (user) failed"
relayed udp-user
uclient udp-send -p "$TURN_PORT" -s -u alice -w alice-pw || fail "uclient UDP Send/Data failed"
relayed udp-send
uclient udp-rest -p "$TURN_PORT" -u carol -W "$SECRET" || fail "uclient UDP (REST) failed"
relayed udp-rest
uclient tcp-user -t -p "$TURN_PORT" -u alice -w alice-pw || fail "uclient TCP (user) failed"
relayed tcp-user
uclient tcp-rest -t -p "$TURN_PORT" -u carol -W "$SECRET" || fail "uclient TCP (REST) failed"
relayed tcp-rest
uclient tls-user -t -S -p "$TLS_PORT" -u alice -w alice-pw || fail "uclient TLS (user) failed"
relayed tls-user
uclient tls-rest -t -S -p "$TLS_PORT" -u carol -W "$SECRET" || fail "uclient TLS (REST) failed"
relayed tls-rest

# wrong password: 401, and no allocation
if uclient wrong-pw -p "$TURN_PORT" -u alice -w not-the-password; then
	fail "a wrong password was accepted"
fi
assert_file_has "$WORK/wrong-pw.log" 'Cannot complete Allocation|error 401' "uclient with a wrong password"
# a REST password made with another secret
if uclient wrong-secret -p "$TURN_PORT" -u carol -W another-secret-xyz; then
	fail "a REST password from another secret was accepted"
fi

# certificate reload (SIGHUP) while a TLS allocation relays: it keeps going
uclient tls-reload -t -S -p "$TLS_PORT" -u alice -w alice-pw -n 100 -z 20 &
_uc=$!
sleep 1
kill -HUP "$SIPNATD_PID"
wait "$_uc" || fail "uclient TLS across a reload failed"
relayed tls-reload
assert_log 'turn: TLS certificate reloaded'
uclient tls-after -t -S -p "$TLS_PORT" -u alice -w alice-pw || fail "TLS after the reload"
relayed tls-after

# sipnatctl turn while an allocation relays (the control socket is the one
# write_config adds): 150 messages at 20 ms leave 3 s to look at it.  The
# UDP allocations of the runs above may still be listed (their lifetime is
# not over), so only allocations that were not there before count.
"$SIPNATCTL" -s "$WORK/control.sock" --json turn >"$WORK/turn-before.json" 2>&1 ||
	fail "sipnatctl --json turn: $(cat "$WORK/turn-before.json")"
uclient ctl-udp -p "$TURN_PORT" -u alice -w alice-pw -n 150 -z 20 &
_uc=$!
cat >"$WORK/turn-check.py" <<'PY'
import json, sys
ans = json.load(open(sys.argv[1]))
lo, hi = int(sys.argv[2]), int(sys.argv[3])
old = {a["client"] for a in json.load(open(sys.argv[4]))["turn"]}
mine = [a for a in ans["turn"] if a["transport"] == "udp" and a["client"] not in old]
assert mine, "no UDP allocation listed: %s" % ans
for a in mine:
    assert a["user"] == "alice" and a["client"].startswith("127.0.0.1:"), a
    ip, port = a["relayed"].rsplit(":", 1)
    assert ip == "127.0.0.1" and lo <= int(port) <= hi, a
    assert 0 < a["expires_in"] <= 3600 and a["age"] >= 0, a
# uclient allocates first and relays a moment later
busy = [a for a in mine if a["to_peer_packets"] > 0 and a["to_client_packets"] > 0]
assert busy, mine
print(busy[0]["client"])
PY
turn_listed() {
	"$SIPNATCTL" -s "$WORK/control.sock" --json turn >"$WORK/turn.json" 2>&1 &&
		python3 "$WORK/turn-check.py" "$WORK/turn.json" "$RELAY_LO" "$RELAY_HI" \
			"$WORK/turn-before.json" >"$WORK/turn-client.txt" 2>&1
}
wait_for 10 turn_listed ||
	fail "sipnatctl --json turn: $(python3 "$WORK/turn-check.py" "$WORK/turn.json" \
		"$RELAY_LO" "$RELAY_HI" "$WORK/turn-before.json" 2>&1 | tail -n 1)"
"$SIPNATCTL" -s "$WORK/control.sock" turn >"$WORK/turn.out" 2>&1 ||
	fail "sipnatctl turn: $(cat "$WORK/turn.out")"
sed "s/^/$TEST_NAME: turn: /" "$WORK/turn.out"
_client=$(cat "$WORK/turn-client.txt")
grep -Eq "^alice +udp:$_client +127\.0\.0\.1:[0-9]+ " "$WORK/turn.out" ||
	fail "the sipnatctl turn table has no row for the UDP allocation of $_client"
wait "$_uc" || fail "uclient UDP under sipnatctl failed"
relayed ctl-udp

stop_sipnatd
assert_log 'turn: allocation 127\.0\.0\.1:[0-9]+ for tls 127\.0\.0\.1:'
assert_log 'turn: allocation 127\.0\.0\.1:[0-9]+ for tcp 127\.0\.0\.1:'
assert_log 'turn: allocation 127\.0\.0\.1:[0-9]+ for udp 127\.0\.0\.1:'
stats=$(grep 'turn: stopped;' "$SIPNATD_LOG" | tail -n 1)
say "$stats"
echo "$stats" | grep -Eq 'bindings [1-9]' || fail "no Binding counted"
echo "$stats" | grep -Eq 'refused 401 [1-9]' || fail "no 401 counted"
echo "$stats" | grep -Eq 'tls handshakes [1-9]' || fail "no TLS handshake counted"
echo "$stats" | grep -Eq 'to clients [1-9][0-9]* packets' || fail "nothing relayed to clients"
mv "$SIPNATD_LOG" "$WORK/sipnatd-ok.log"

# ---- 2. default denied_peers: the loopback peer is refused ----
turn_config "$WORK/deny.conf"
start_sipnatd "$WORK/deny.conf"
wait_for 5 listening udp 127.0.0.1 "$TURN_PORT" || fail "no TURN UDP listener"
if uclient denied -p "$TURN_PORT" -u alice -w alice-pw; then
	fail "a loopback peer was reachable with the default denied_peers"
fi
assert_file_has "$WORK/denied.log" 'error 403' "uclient to a denied peer"
if uclient denied-tcp -t -p "$TURN_PORT" -u alice -w alice-pw; then
	fail "a loopback peer was reachable over TCP with the default denied_peers"
fi
assert_file_has "$WORK/denied-tcp.log" 'error 403' "uclient (TCP) to a denied peer"
stop_sipnatd
grep 'turn: stopped;' "$SIPNATD_LOG" | grep -Eq ' 403 [1-9]' || fail "no 403 counted"
say "PASS"
