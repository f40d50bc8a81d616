#!/bin/sh
# turn-nat-tls: a client behind a firewall that drops all outgoing UDP
# still relays media through sipnatd's TURN server over TLS.
#
# Lab (tests/lab/README): sipnatd on pub with [turn] on udp and tcp
# 203.0.113.10:3478 and tls :5349 (a self-signed certificate made here
# with certtool), coturn's turnutils_peer on pbx (198.51.100.20) as the
# far end, coturn's turnutils_uclient on ua3 behind nat3, which drops UDP
# from its LAN.  Checks:
#   1. negative control: TURN over UDP from ua3 gets nowhere (nat3 drops
#      it), and sipnatd sees no request from nat3;
#   2. a STUN Binding over TCP from ua3 reports nat3's public address
#      203.0.113.103 (XOR-MAPPED-ADDRESS);
#   3. TURN over TLS from ua3 allocates, creates a permission for the
#      peer, and every message it sends comes back through the relay; the
#      allocation is logged for tls from 203.0.113.103, and while it relays
#      `sipnatctl turn` (table and --json) lists it with its user, client,
#      relayed address and packets, and /metrics counts it (and has every
#      family the Grafana dashboard in contrib/grafana plots).
# shellcheck source=tests/integration/natlib.sh disable=SC2119
. "$(dirname "$0")/natlib.sh"

nat_setup turn turnutils_uclient turnutils_peer certtool
SIPNATCTL="${SIPNATCTL:-$(dirname "$SIPNATD")/sipnatctl}"
[ -x "$SIPNATCTL" ] || skip "no sipnatctl at $SIPNATCTL"
UA3_PUB=203.0.113.103
PEER_PORT=3490

certtool --generate-privkey --key-type=ecdsa --outfile "$WORK/key.pem" >/dev/null 2>&1 ||
	fail "certtool: private key"
printf 'cn = turn.lab.test\nexpiration_days = 2\ntls_www_server\nsigning_key\n' >"$WORK/cert.tmpl"
certtool --generate-self-signed --load-privkey "$WORK/key.pem" --template "$WORK/cert.tmpl" \
	--outfile "$WORK/cert.pem" >/dev/null 2>&1 || fail "certtool: certificate"

sipnatd_conf "$WORK/sipnat.conf" "$WORK/state" \
	"[relay]" "address = $PUB_IP" "ports = 41000-41099" "threads = 2" \
	"[turn]" "listen = udp:$PUB_IP:3478 tcp:$PUB_IP:3478 tls:$PUB_IP:5349" \
	"realm = lab.test" "user = remote:remote-pw" \
	"tls_cert = $WORK/cert.pem" "tls_key = $WORK/key.pem" \
	"[control]" "metrics = 127.0.0.1:9099"
start_sipnatd "$WORK/sipnat.conf"
wait_for 5 listening pub tcp "$PUB_IP:5349" || fail "no TURN TLS listener on $PUB_IP:5349"

lab exec pbx turnutils_peer -L "$PBX_IP" -p $PEER_PORT >"$WORK/peer.log" 2>&1 &
wait_for 5 listening pbx udp "$PBX_IP:$PEER_PORT" || fail "turnutils_peer did not start on pbx"

# uclient NAME ARGS...: turnutils_uclient on ua3 to the peer on pbx through
# sipnatd, 20 messages, bounded in time; output in $WORK/NAME.log.
uclient() {
	_n=$1
	shift
	timeout -k 2 "${UC_TIMEOUT:-25}" ip netns exec "${SIPNAT_LAB_PREFIX}ua3" turnutils_uclient \
		-e "$PBX_IP" -r $PEER_PORT -n 20 -m 1 -u remote -w remote-pw "$@" "$PUB_IP" \
		>"$WORK/$_n.log" 2>&1
}

# (UC_TIMEOUT=N: seconds before it is stopped, default 25.)

# sent_received NAME: "SENT RECEIVED" from uclient's last totals line.
sent_received() {
	grep -E 'tot_send_msgs=[0-9]+, tot_recv_msgs=[0-9]+$' "$WORK/$1.log" | tail -n 1 |
		sed -n 's/.*tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\)$/\1 \2/p'
}

# ---- 1. UDP is blocked at nat3 ----
if UC_TIMEOUT=10 uclient udp -p 3478; then
	set -- $(sent_received udp)
	[ "${2:-0}" -gt 0 ] && fail "TURN over UDP from ua3 relayed $2 messages: nat3 lets UDP out"
fi
grep -q "from $UA3_PUB" "$SIPNATD_LOG" &&
	fail "sipnatd saw traffic from nat3 ($UA3_PUB) although it drops UDP"
say "1. TURN over UDP from ua3 gets nowhere (nat3 drops UDP): ok"

# ---- 2. STUN Binding over TCP shows nat3's public address ----
timeout -k 2 10 ip netns exec "${SIPNAT_LAB_PREFIX}ua3" python3 - "$PUB_IP" 3478 \
	>"$WORK/stun-tcp.log" 2>&1 <<'EOF' || fail "STUN Binding over TCP from ua3: $(cat "$WORK/stun-tcp.log")"
import os, socket, struct, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
tid = os.urandom(12)
s.sendall(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid)
hdr = b""
while len(hdr) < 20:
    chunk = s.recv(20 - len(hdr))
    if not chunk:
        sys.exit("connection closed")
    hdr += chunk
t, length, cookie = struct.unpack("!HHI", hdr[:8])
body = b""
while len(body) < length:
    chunk = s.recv(length - len(body))
    if not chunk:
        sys.exit("connection closed")
    body += chunk
if t != 0x0101 or hdr[8:20] != tid:
    sys.exit("not a Binding success for our transaction")
i = 0
while i + 4 <= len(body):
    at, al = struct.unpack("!HH", body[i:i + 4])
    if at == 0x0020:
        port = struct.unpack("!H", body[i + 6:i + 8])[0] ^ 0x2112
        ip = bytes(a ^ b for a, b in zip(body[i + 8:i + 12], b"\x21\x12\xa4\x42"))
        print("XOR-MAPPED-ADDRESS %s:%d" % (socket.inet_ntoa(ip), port))
        sys.exit(0)
    i += 4 + ((al + 3) & ~3)
sys.exit("no XOR-MAPPED-ADDRESS")
EOF
grep -q "^XOR-MAPPED-ADDRESS $UA3_PUB:" "$WORK/stun-tcp.log" ||
	fail "the Binding over TCP did not report nat3's address: $(cat "$WORK/stun-tcp.log")"
say "2. STUN over TCP from ua3: $(cat "$WORK/stun-tcp.log"): ok"

# ---- 3. TURN over TLS relays ----
ctl() { lab exec pub "$SIPNATCTL" -s "$WORK/control.sock" "$@"; }
# 200 messages at 20 ms: long enough to look at it while it relays.
uclient tls -t -S -p 5349 -n 200 -z 20 &
uc=$!
wait_for 10 eval 'ctl --json turn 2>/dev/null | grep -q "\"client\": *\"$UA3_PUB:"' ||
	fail "sipnatctl turn does not list the allocation of ua3"
cat >"$WORK/turn-check.py" <<'PY'
import json, sys
ans = json.load(open(sys.argv[1]))
mine = [a for a in ans["turn"] if a["client"].startswith(sys.argv[2] + ":")]
assert mine, ans
for a in mine:
    assert a["user"] == "remote" and a["transport"] == "tls", a
    assert a["relayed"].startswith(sys.argv[3] + ":"), a
    assert 0 < a["expires_in"] <= 3600 and a["age"] >= 0, a
# uclient allocates first and relays a moment later: some allocation of
# ours must show packets both ways
assert any(a["to_peer_packets"] > 0 and a["to_client_packets"] > 0 for a in mine), mine
PY
turn_listed() {
	ctl --json turn >"$WORK/turn.json" 2>&1 &&
		python3 "$WORK/turn-check.py" "$WORK/turn.json" "$UA3_PUB" "$PUB_IP" >/dev/null 2>&1
}
wait_for 10 turn_listed ||
	fail "sipnatctl --json turn: $(python3 "$WORK/turn-check.py" "$WORK/turn.json" "$UA3_PUB" "$PUB_IP" 2>&1 | tail -n 1)"
ctl turn >"$WORK/turn.out" 2>&1 || fail "sipnatctl turn: $(cat "$WORK/turn.out")"
sed "s/^/$TEST_NAME: turn: /" "$WORK/turn.out"
grep -Eq "^remote +tls:$UA3_PUB:[0-9]+ +$PUB_IP:[0-9]+ " "$WORK/turn.out" ||
	fail "the sipnatctl turn table has no row for ua3's allocation"
lab exec pub python3 "$srcdir/tests/integration/prom-scrape.py" http://127.0.0.1:9099/metrics \
	"$WORK/metrics.txt" >"$WORK/scrape.log" 2>&1 || fail "GET /metrics: $(cat "$WORK/scrape.log")"
grep -Eq '^sipnat_turn_allocations [1-9]' "$WORK/metrics.txt" || fail "sipnat_turn_allocations is not >= 1"
# The Grafana dashboard in contrib/ only plots families sipnatd exports
# (this configuration has SIP, the relay and TURN: all of them).
missing=$(grep -o 'sipnat_[a-z_]*' "$srcdir/contrib/grafana/sipnat-dashboard.json" |
	sed 's/_bucket$//; s/_sum$//; s/_count$//' | sort -u |
	while read -r f; do grep -q "^# TYPE $f " "$WORK/metrics.txt" || echo "$f"; done)
[ -z "$missing" ] || fail "the Grafana dashboard uses metrics sipnatd does not export: $missing"
grep -Eq '^sipnat_tls_handshakes_total [1-9]' "$WORK/metrics.txt" || fail "no TLS handshake in /metrics"
grep -Eq '^sipnat_turn_errors_total\{code="401"\} [1-9]' "$WORK/metrics.txt" ||
	fail "the 401 challenge is not counted in /metrics"
wait $uc || fail "TURN over TLS from ua3 failed: $(tail -n 5 "$WORK/tls.log")"
set -- $(sent_received tls)
[ -n "$1" ] && [ "$1" -gt 0 ] && [ "$1" = "$2" ] ||
	fail "TURN over TLS: sent '$1', received back '$2' (see tls.log)"
assert_sipnatd "turn: allocation $PUB_IP:[0-9]+ for tls $UA3_PUB:[0-9]+" \
	"sipnatd's log (the TLS allocation from nat3)"
say "3. TURN over TLS from ua3 behind a UDP-blocking firewall: $2 of $1 messages relayed: ok"

stop_sipnatd
stats=$(grep 'turn: stopped;' "$SIPNATD_LOG" | tail -n 1)
say "$stats"
echo "$stats" | grep -Eq 'tls handshakes [1-9]' || fail "no TLS handshake counted"
say "PASS"
