#!/bin/sh
# sip-reload-listeners: a reload changes sipnatd's SIP listeners and its TLS
# certificate while TCP and TLS connections are open, and loses none of them.
#
# sipnatd starts with udp+tcp on PORT_BASE and tls on PORT_BASE+1, with a
# certificate "sipnat-a" signed by a test CA (certtool).  A client (python's
# ssl module, verifying against that CA) keeps one TCP and one TLS
# connection open and sends OPTIONS over them before and after each reload:
#   1. the TLS handshake shows sipnat-a; both connections answer OPTIONS;
#   2. reload with a new certificate and key at the same paths ("sipnat-b",
#      as after a renewal), the tcp listener on PORT_BASE removed and one on
#      PORT_BASE+2 added: the two old connections still answer (the TLS one
#      still on sipnat-a), a new TLS handshake shows sipnat-b, PORT_BASE
#      refuses TCP connections, PORT_BASE+2 answers.  Adding a listener used
#      to crash sipnatd at the next request over a connection opened before
#      (nta frees the Via those connections point at);
#   3. reload with a key that does not belong to the certificate: the
#      rest is applied, sipnatctl reload exits 1 naming the files (so does
#      the log), and TLS keeps sipnat-b;
#   4. reload without the tls listener: new TLS connections are refused,
#      the open one still answers.
TEST_SLOT=60
. "$(dirname "$0")/lib.sh"
setup certtool python3
command -v "${SIPNATCTL:=$builddir/sipnatctl}" >/dev/null || skip "no sipnatctl at $SIPNATCTL"

# Freed memory is overwritten at once (glibc, or ASan's allocator), so that
# a connection left pointing at memory a reload freed crashes sipnatd here
# and not only some day in production.
MALLOC_PERTURB_=165
ASAN_OPTIONS="$ASAN_OPTIONS:max_free_fill_size=4096"
export MALLOC_PERTURB_ ASAN_OPTIONS

P_TCP=$PORT_BASE
P_TLS=$((PORT_BASE + 1))
P_TCP2=$((PORT_BASE + 2))

# --- certificates: a CA, two server certificates for 127.0.0.1
cd "$WORK" || fail "cd $WORK"
for k in ca a b; do
	certtool --generate-privkey --key-type=ecdsa --outfile "$k.key" >/dev/null 2>&1 ||
		fail "certtool: key $k"
done
printf 'cn = sipnat test CA\nca\ncert_signing_key\nexpiration_days = 2\n' >ca.tmpl
certtool --generate-self-signed --load-privkey ca.key --template ca.tmpl --outfile ca.pem \
	>/dev/null 2>&1 || fail "certtool: CA"
for k in a b; do
	printf 'cn = sipnat-%s\nip_address = 127.0.0.1\ntls_www_server\nexpiration_days = 2\n' \
		"$k" >"$k.tmpl"
	certtool --generate-certificate --load-privkey "$k.key" --load-ca-certificate ca.pem \
		--load-ca-privkey ca.key --template "$k.tmpl" --outfile "$k.pem" >/dev/null 2>&1 ||
		fail "certtool: certificate $k"
done
cp a.pem cert.pem && cp a.key key.pem || fail "cp"

conf() {
	write_config "$WORK/sipnat.conf" <<EOF
[sip]
listen = $1
tls_cert = $WORK/cert.pem
tls_key = $WORK/key.pem
upstream = sip:$UP_IP:$((PORT_BASE + 10))
EOF
}
conf "udp:$PROXY_IP:$P_TCP, tcp:$PROXY_IP:$P_TCP, tls:$PROXY_IP:$P_TLS"
start_sipnatd "$WORK/sipnat.conf"

ctl() { "$SIPNATCTL" -s "$WORK/control.sock" "$@"; }

# The client: reads commands on stdin (one per line), answers "ok ..." or
# "FAIL ..." on stdout.  Commands: open, ask (OPTIONS over both open
# connections), cert NAME (a new TLS handshake must show CN=NAME),
# oldcert NAME (the open TLS session's certificate), refused PORT,
# answers PORT (a new TCP connection to PORT answers OPTIONS).
cat >"$WORK/client.py" <<'EOF'
import socket, ssl, sys

host, tls_port, tcp_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.create_default_context(cafile="ca.pem")
conns, n = {}, 0

def options(s, port, proto):
    global n
    n += 1
    m = ("OPTIONS sip:%s:%d SIP/2.0\r\n"
         "Via: SIP/2.0/%s 127.0.0.3:9;branch=z9hG4bK-rl%d;rport\r\n"
         "From: <sip:probe@127.0.0.3>;tag=rl%d\r\nTo: <sip:%s:%d>\r\n"
         "Call-ID: rl%d@127.0.0.3\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
         "Content-Length: 0\r\n\r\n" % (host, port, proto, n, n, host, port, n)).encode()
    s.settimeout(5)
    s.sendall(m)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("connection closed by sipnatd")
        data += chunk
    return data.split(b"\r\n", 1)[0].decode()

def cn(cert):
    return dict(x[0] for x in cert["subject"]).get("commonName")

def handle(cmd, arg):
    if cmd == "open":
        conns["tcp"] = socket.create_connection((host, tcp_port), timeout=5)
        conns["tls"] = ctx.wrap_socket(socket.create_connection((host, tls_port), timeout=5),
                                       server_hostname=host)
        return "tcp and tls connections open"
    if cmd == "ask":
        out = []
        for proto, port in (("tcp", tcp_port), ("tls", tls_port)):
            line = options(conns[proto], port, proto.upper())
            if not line.startswith("SIP/2.0 200"):
                raise OSError("%s connection: %s" % (proto, line))
            out.append("%s: %s" % (proto, line))
        return ", ".join(out)
    if cmd == "cert":
        with ctx.wrap_socket(socket.create_connection((host, tls_port), timeout=5),
                             server_hostname=host) as s:
            got = cn(s.getpeercert())
        if got != arg:
            raise OSError("new TLS handshake shows CN=%s, expected %s" % (got, arg))
        return "new handshake: CN=%s" % got
    if cmd == "oldcert":
        got = cn(conns["tls"].getpeercert())
        if got != arg:
            raise OSError("open TLS session shows CN=%s, expected %s" % (got, arg))
        return "open session: CN=%s" % got
    if cmd == "refused":
        try:
            socket.create_connection((host, int(arg)), timeout=3).close()
        except ConnectionRefusedError:
            return "port %s refuses connections" % arg
        raise OSError("port %s still accepts connections" % arg)
    if cmd == "answers":
        with socket.create_connection((host, int(arg)), timeout=5) as s:
            line = options(s, int(arg), "TCP")
        if not line.startswith("SIP/2.0 200"):
            raise OSError("port %s: %s" % (arg, line))
        return "port %s: %s" % (arg, line)
    raise OSError("unknown command " + cmd)

for line in sys.stdin:
    cmd, _, arg = line.strip().partition(" ")
    try:
        print("ok " + handle(cmd, arg), flush=True)
    except (OSError, ssl.SSLError, KeyError) as e:
        print("FAIL %s: %s" % (cmd, e), flush=True)
EOF

mkfifo "$WORK/to-client" || fail "mkfifo"
timeout 120 python3 "$WORK/client.py" "$PROXY_IP" "$P_TLS" "$P_TCP" <"$WORK/to-client" \
	>"$WORK/client.out" 2>&1 &
BG_PIDS="$BG_PIDS $!"
exec 7>"$WORK/to-client"

# client COMMAND: one command, bounded wait for its answer line.
client() {
	_before=$(wc -l <"$WORK/client.out")
	echo "$*" >&7
	wait_for 10 eval '[ "$(wc -l <"$WORK/client.out")" -gt "$_before" ]' ||
		fail "client: no answer to '$*': $(cat "$WORK/client.out")"
	_line=$(tail -n 1 "$WORK/client.out")
	case $_line in
	ok*) say "  ${_line#ok }" ;;
	*) fail "$_line" ;;
	esac
}

reload() {
	ctl reload >"$WORK/reload.out" 2>&1 || fail "sipnatctl reload: $(cat "$WORK/reload.out")"
	sipnatd_alive || fail "sipnatd died on the reload"
}

# --- 1
client open
client ask
client cert sipnat-a
say "1. before any reload: ok"

# --- 2
cp b.pem cert.pem && cp b.key key.pem || fail "cp"
conf "udp:$PROXY_IP:$P_TCP, tcp:$PROXY_IP:$P_TCP2, tls:$PROXY_IP:$P_TLS"
reload
client ask
sipnatd_alive || fail "sipnatd died on a request over a connection opened before the reload"
client oldcert sipnat-a
client cert sipnat-b
client refused "$P_TCP"
client answers "$P_TCP2"
assert_log "stopped listening on tcp:$PROXY_IP:$P_TCP; its tcp connections stay"
assert_log "new TLS certificate for SIP"
say "2. new certificate, a tcp listener moved, open connections kept: ok"

# --- 3
cp a.key key.pem || fail "cp"
if ctl reload >"$WORK/reload.out" 2>&1; then
	fail "sipnatctl reload said nothing of the key that does not match: $(cat "$WORK/reload.out")"
fi
sipnatd_alive || fail "sipnatd died on the reload"
assert_file_has "$WORK/reload.out" "reloaded, except:" "sipnatctl reload"
assert_file_has "$WORK/reload.out" "tls_cert $WORK/cert.pem with tls_key $WORK/key.pem: .*keep" \
	"sipnatctl reload"
assert_log "tls_cert $WORK/cert.pem with tls_key $WORK/key.pem: .*keep"
client cert sipnat-b
client ask
say "3. a key that does not match the certificate: not applied, and sipnatctl reload says so: ok"

# --- 4
cp b.key key.pem || fail "cp"
conf "udp:$PROXY_IP:$P_TCP, tcp:$PROXY_IP:$P_TCP2"
reload
client refused "$P_TLS"
client ask
client answers "$P_TCP2"
say "4. tls listener removed, its open connection kept: ok"

exec 7>&-
stop_sipnatd
check_sanitizers
say "PASS"
