#!/bin/sh
# sip-outbound-keepalive: RFC 5626 keepalives on sipnatd's SIP ports.
#
#  1. a double-CRLF "ping" on a TCP connection is answered with a CRLF
#     "pong" (RFC 5626 section 4.4.1), and the connection stays usable: an
#     OPTIONS sent on it afterwards gets its 200;
#  2. a STUN Binding request on the SIP UDP port (RFC 5626 section 4.4.2)
#     is answered with the sender's mapped address, checked with the
#     stun-client tool.
TEST_SLOT=20
# shellcheck source=tests/integration/lib.sh
. "${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
setup python3 stun

write_config "$WORK/sipnat.conf" <<EOF2
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT tcp:$PROXY_IP:$PROXY_PORT
upstream = sip:$UP_IP:$((PORT_BASE + 1))
[relay]
mode = never
EOF2
start_sipnatd "$WORK/sipnat.conf"

# 1: CRLF ping/pong, then a request on the same connection.
python3 - "$PROXY_IP" "$PROXY_PORT" "$DEV_IP" >"$WORK/pong.out" 2>&1 <<'PY' || { cat "$WORK/pong.out"; fail "CRLF keepalive over TCP"; }
import socket, sys, time
host, port, me = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=3, source_address=(me, 0))
s.sendall(b"\r\n\r\n")
pong = s.recv(16)
if not pong.startswith(b"\r\n"):
    sys.exit("no CRLF pong, got %r" % pong)
lport = s.getsockname()[1]
req = ("OPTIONS sip:%s:%d;transport=tcp SIP/2.0\r\n"
       "Via: SIP/2.0/TCP %s:%d;branch=z9hG4bK-pong-1\r\n"
       "From: <sip:ka@%s>;tag=p1\r\nTo: <sip:%s:%d>\r\nCall-ID: pong-%f@%s\r\n"
       "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
       % (host, port, me, lport, me, host, port, time.time(), me))
s.sendall(req.encode())
buf = b""
end = time.time() + 3
while b"\r\n\r\n" not in buf and time.time() < end:
    buf += s.recv(4096)
line = buf.split(b"\r\n")[0]
print(line.decode(errors="replace"))
sys.exit(0 if line.startswith(b"SIP/2.0 200") else "no 200 on the same connection")
PY
say "CRLF ping answered with pong, connection still usable"

# 2: STUN Binding on the SIP UDP port.
timeout 5 stun "$PROXY_IP:$PROXY_PORT" 1 -v -i "$DEV_IP" >"$WORK/stun.out" 2>&1
grep -q "mappedAddr=$DEV_IP:" "$WORK/stun.out" ||
	{ cat "$WORK/stun.out"; fail "no STUN Binding answer with the mapped address on the SIP port"; }
say "STUN Binding on the SIP UDP port answered"
stop_sipnatd
