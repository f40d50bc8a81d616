# shellcheck shell=sh disable=SC2016 # eval strings expand later, on purpose
# natlib.sh: helpers for the NAT signaling tests in the namespace lab
# (tests/lab/README), sourced by tests/integration/nat-*.sh (POSIX sh).
#
# Real peers: kamailio (tests/integration/pbx-kamailio.cfg) is the PBX on
# pbx (198.51.100.20), baresip phones sit behind the lab's NATs, and sipp on
# evil (203.0.113.66) calls them through the PBX.  The caller is not on pbx
# because the PBX config aliases every port of 198.51.100.20 to itself, so
# a caller there would look like the PBX to its own loose_route().
#
# Every process runs inside a lab namespace; `sipnat-lab down` in the EXIT
# trap stops all of them by PID and deletes the lab.  Every wait is bounded.
# Exit codes: 0 pass, 1 fail, 77 skip (not root, tool or daemon missing)
# unless SIPNAT_REQUIRE_ALL=1, which turns a skip into a failure.

TEST_NAME=$(basename "$0" .sh)
srcdir="${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
SIPNATD="${SIPNATD:-${SIPNAT_BUILDDIR:-$srcdir}/sipnatd}"
LAB="$srcdir/tests/lab/sipnat-lab"
PBX_CFG="$srcdir/tests/integration/pbx-kamailio.cfg"
SCEN="$srcdir/tests/integration/scenarios"
PUB_IP=203.0.113.10
PBX_IP=198.51.100.20
CALLER_IP=203.0.113.66
CALLER_PORT=5070
# The phones' AOR domain is the PBX; with sipnatd they use it as outbound
# proxy, without it they talk to the PBX directly.
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
# What Sofia-SIP's OpenSSL-based TLS leaks (see the file).
LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$srcdir/tests/lsan.supp:print_suppressions=0}"
export ASAN_OPTIONS LSAN_OPTIONS

WORK=
SIPNATD_PID=
SIPNATD_LOG=
CALL_N=0

say() { echo "$TEST_NAME: $*"; }

dump_logs() {
	[ -n "$WORK" ] && [ -d "$WORK" ] || return 0
	for f in "$WORK"/*.log "$WORK"/*/*.log "$WORK"/*/*errors.log; do
		[ -s "$f" ] || continue
		echo "---- $f (last 25 lines)"
		tail -n 25 "$f" | cut -c1-300
	done
}

fail() {
	say "FAIL: $*"
	dump_logs
	exit 1
}

skip() {
	if [ "${SIPNAT_REQUIRE_ALL:-0}" = 1 ]; then
		say "FAIL (SIPNAT_REQUIRE_ALL=1): $*"
		exit 1
	fi
	say "SKIP: $*"
	exit 77
}

lab() { bash "$LAB" "$@"; }

# shellcheck disable=SC2317 # called from the EXIT trap
nat_cleanup() {
	lab down >/dev/null 2>&1
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "${KEEP_LOGS:-0}" = 1 ]; then
			say "logs kept in $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
}

# nat_setup TAG [TOOL...]: prerequisites, a private lab prefix, the work
# directory, the trap; brings the lab up.
nat_setup() {
	_tag=$1
	shift
	[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
	for t in bash ip iptables iptables-restore sysctl ss timeout python3 sipp kamailio \
		baresip "$@"; do
		command -v "$t" >/dev/null 2>&1 || skip "missing $t"
	done
	[ -d /usr/lib/baresip/modules ] || skip "missing baresip modules"
	for m in account g711 aubridge ctrl_tcp menu; do
		[ -r "/usr/lib/baresip/modules/$m.so" ] || skip "missing baresip module $m"
	done
	[ -r "$LAB" ] || skip "missing $LAB"
	[ -r "$PBX_CFG" ] || skip "missing $PBX_CFG"
	[ -x "$SIPNATD" ] || skip "no daemon at $SIPNATD (set SIPNATD)"
	SIPNAT_LAB_PREFIX="sn$_tag$$-"
	export SIPNAT_LAB_PREFIX
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/sipnat-$TEST_NAME.XXXXXX") || exit 1
	trap nat_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	lab up >"$WORK/lab-up.log" 2>&1 || fail "lab up: $(cat "$WORK/lab-up.log")"
}

# wait_for SECONDS COMMAND...: polls every 0.1 s, bounded.
wait_for() {
	_n=$(($1 * 10))
	shift
	while [ "$_n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		_n=$((_n - 1))
	done
	return 1
}

# listening HOST udp|tcp ADDR:PORT
listening() {
	if [ "$2" = tcp ]; then
		lab exec "$1" ss -Hltn "src $3" 2>/dev/null | grep -q .
	else
		lab exec "$1" ss -Hlun "src $3" 2>/dev/null | grep -q .
	fi
}

# shellcheck disable=SC2120 # the arguments are optional
# start_pbx [KAMAILIO-ARGS...]: kamailio on pbx, UDP and TCP 5060; log in
# $WORK/pbx.log.  Extra arguments, e.g. -A NO_PATH, go to kamailio.
start_pbx() {
	mkdir -p "$WORK/kamrun"
	bash "$LAB" exec pbx kamailio -f "$PBX_CFG" -l "udp:$PBX_IP:5060" -l "tcp:$PBX_IP:5060" \
		-A "PBX_ADDR=$PBX_IP" -Y "$WORK/kamrun" -P "$WORK/kamrun/kamailio.pid" \
		"$@" -DD -E >>"$WORK/pbx.log" 2>&1 &
	PBX_PID=$!
	wait_for 15 listening pbx udp "$PBX_IP:5060" || fail "kamailio did not start on pbx"
}

# stop_pbx: SIGTERM to kamailio's main process (it stops its children),
# bounded wait until its ports are free.  Forgets every registration.
stop_pbx() {
	[ -n "$PBX_PID" ] || return 0
	kill -TERM "$PBX_PID" 2>/dev/null
	wait_for 10 eval '! kill -0 "$PBX_PID" 2>/dev/null' || kill -KILL "$PBX_PID" 2>/dev/null
	wait "$PBX_PID" 2>/dev/null
	PBX_PID=
	wait_for 10 eval '! listening pbx udp "$PBX_IP:5060"' || fail "kamailio's port stays busy"
}

# sipnatd_conf FILE STATE_DIR [EXTRA [sip] LINE...]: a config for sipnatd
# on pub (UDP and TCP 5060) with the PBX as upstream.
sipnatd_conf() {
	_f=$1
	_s=$2
	shift 2
	{
		echo "[sip]"
		echo "listen = udp:$PUB_IP:5060 tcp:$PUB_IP:5060"
		echo "upstream = sip:$PBX_IP:5060"
		echo "state_dir = $_s"
		for _l in "$@"; do
			echo "$_l"
		done
		# The control socket's default path is shared by every namespace.
		printf '[control]\nsocket = %s/control.sock\n' "$WORK"
		printf '[log]\nlevel = debug\ntarget = stderr\n'
	} >"$_f"
}

# start_sipnatd CONFIG: sipnatd on pub, log appended to $WORK/sipnatd.log.
# `sipnat-lab exec` ends in exec, so $! is sipnatd's own PID (the
# lab() function would add a subshell in between).
start_sipnatd() {
	SIPNATD_LOG="$WORK/sipnatd.log"
	_before=$(grep -c 'sipnatd .* started' "$SIPNATD_LOG" 2>/dev/null)
	bash "$LAB" exec pub "$SIPNATD" -f -c "$1" >>"$SIPNATD_LOG" 2>&1 &
	SIPNATD_PID=$!
	wait_for 10 eval '[ "$(grep -c "sipnatd .* started" "$SIPNATD_LOG")" -gt "${_before:-0}" ]' ||
		fail "sipnatd did not start"
	wait_for 5 listening pub udp "$PUB_IP:5060" || fail "sipnatd is not listening on $PUB_IP:5060"
}

# stop_sipnatd: SIGTERM, bounded wait, exit status 0 and no sanitizer report.
stop_sipnatd() {
	[ -n "$SIPNATD_PID" ] || return 0
	kill -TERM "$SIPNATD_PID" 2>/dev/null
	if ! wait_for 15 eval '! kill -0 "$SIPNATD_PID" 2>/dev/null'; then
		kill -KILL "$SIPNATD_PID" 2>/dev/null
		fail "sipnatd did not exit within 15 s of SIGTERM"
	fi
	wait "$SIPNATD_PID"
	_rc=$?
	SIPNATD_PID=
	check_sanitizers
	[ "$_rc" = 0 ] || fail "sipnatd exited with status $_rc"
}

check_sanitizers() {
	[ -n "$SIPNATD_LOG" ] && [ -f "$SIPNATD_LOG" ] || return 0
	if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$SIPNATD_LOG"; then
		grep -E -A 30 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$SIPNATD_LOG" |
			head -n 80
		fail "sanitizer report in sipnatd's log"
	fi
}

# phone NAME IP MODE [TRANSPORT]: writes the baresip config directory
# $WORK/NAME for a headless phone: no sound device (aubridge's "nil"
# device is a silent source and a sink), PCMU only, auto-answer, a
# registration interval long enough that it never refreshes during a test,
# and no keepalives of its own (baresip sends none without RFC 5626
# outbound, which is not enabled).  MODE: "sipnatd" (outbound proxy
# sipnatd on pub) or "direct" (the PBX itself).  ctrl_tcp on the phone's own
# loopback lets the test hang up (the command comes from menu).
phone() {
	_name=$1
	_ip=$2
	_mode=$3
	_tp=${4:-udp}
	_d="$WORK/$_name"
	mkdir -p "$_d"
	cat >"$_d/config" <<EOF
poll_method		epoll
sip_listen		$_ip:5060
sip_transports		$_tp
net_interface		eth0
rtp_ports		10000-10020
audio_source		aubridge,nil
audio_player		aubridge,nil
audio_alert		aubridge,nil
module_path		/usr/lib/baresip/modules
module			g711.so
module			aubridge.so
module_app		account.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:4444
EOF
	_ob=
	if [ "$_mode" = sipnatd ]; then
		case $_tp in
		tcp) _ob=";outbound=\"sip:$PUB_IP:5060;transport=tcp;lr\"" ;;
		tls) _ob=";outbound=\"sip:$PUB_IP:5061;transport=tls;lr\"" ;;
		*) _ob=";outbound=\"sip:$PUB_IP:5060;lr\"" ;;
		esac
	fi
	# TLS: the phone checks sipnatd's certificate against $WORK/ca.pem.
	if [ "$_tp" = tls ]; then echo "sip_cafile		$WORK/ca.pem" >>"$_d/config"; fi
	_atp=
	if [ "$_tp" != udp ]; then _atp=";transport=$_tp"; fi
	echo "<sip:$_name@$PBX_IP$_atp>;regint=3600;answermode=auto;audio_codecs=PCMU;mediaenc=$_ob" \
		>"$_d/accounts"
}

# start_phone NAME: runs baresip (SIP trace on, so its log shows every
# message) in the namespace NAME; its PID goes into the variable
# PHONE_PID_<NAME>.  -t bounds its life even if the trap never ran.
start_phone() {
	bash "$LAB" exec "$1" baresip -f "$WORK/$1" -s -t 300 </dev/null >>"$WORK/$1/baresip.log" 2>&1 &
	eval "PHONE_PID_$1=\$!"
}

# stop_phone NAME: SIGKILL, so that it says nothing on its way out.
stop_phone() {
	eval "_p=\$PHONE_PID_$1"
	[ -n "$_p" ] || return 0
	kill -KILL "$_p" 2>/dev/null
	wait "$_p" 2>/dev/null
	eval "PHONE_PID_$1="
}

# wait_registered NAME [SECONDS]: the phone got a 2xx to its REGISTER.
wait_registered() {
	wait_for "${2:-10}" grep -aq '\[1 binding\]' "$WORK/$1/baresip.log" ||
		fail "$1 did not register: $(grep -a 'reg:\|binding' "$WORK/$1/baresip.log" | tail -n 2)"
}

# call NAME SCENARIO SECONDS: sipp on evil calls NAME@PBX through the PBX,
# -m 1; returns sipp's exit status.  Files land in $WORK/callN-NAME.
# Runs in the background when CALL_BG=1 (PID in CALL_PID).
call() {
	CALL_N=$((CALL_N + 1))
	CALL_DIR="$WORK/call$CALL_N-$1"
	mkdir -p "$CALL_DIR"
	CALLER_PORT=$((CALLER_PORT + 1))
	(cd "$CALL_DIR" && exec timeout -k 2 $(($3 + 5)) ip netns exec "${SIPNAT_LAB_PREFIX}evil" \
		sipp -nostdin -sf "$2" -i "$CALLER_IP" -p "$CALLER_PORT" -s "$1" "$PBX_IP:5060" \
		-m 1 -timeout "${3}s" -timeout_error -trace_msg -trace_err >sipp.log 2>&1) &
	CALL_PID=$!
	[ "${CALL_BG:-0}" = 1 ] && return 0
	wait "$CALL_PID"
}

# call_messages: the last call's message trace without CRs.  (The glob is
# an argument: dash does not expand one in a redirection.)
call_messages() {
	cat "$CALL_DIR"/*_messages.log 2>/dev/null | tr -d '\r'
}

# call_outcome: the last call's final status line, for messages.
call_outcome() {
	_o=$(call_messages | sed -n 's/^SIP\/2.0 \([2-6][0-9][0-9].*\)/\1/p' | head -n 1)
	echo "${_o:-no final response}"
}

# call_answered: the last call got a 200 (to its INVITE, as the first 200).
call_answered() {
	call_messages | grep -q '^SIP/2.0 200'
}

# phone_ctrl NAME COMMAND [PARAMS]: a menu command (dial, hangup...) for
# the phone over its ctrl_tcp, a netstring-framed JSON request.
phone_ctrl() {
	lab exec "$1" python3 - "$2" "${3:-}" <<'EOF'
import json, socket, sys
req = json.dumps({"command": sys.argv[1], "params": sys.argv[2], "token": "t"}).encode()
try:
    s = socket.create_connection(("127.0.0.1", 4444), timeout=3)
    s.sendall(b"%d:%s," % (len(req), req))
    s.settimeout(3)
    sys.stdout.write(s.recv(4096).decode(errors="replace") + "\n")
except OSError as e:
    sys.exit("ctrl_tcp: %s" % e)
EOF
}

# hangup NAME: asks the phone to end its call.
hangup() { phone_ctrl "$1" hangup; }

# call_and_hangup NAME SECONDS: a call whose BYE comes from the phone.
call_and_hangup() {
	CALL_BG=1 call "$1" "$SCEN/uac-rr-callee-bye.xml" "$2"
	wait_for 10 call_answered || true
	sleep 0.3
	hangup "$1" >"$CALL_DIR/hangup.log" 2>&1
	wait "$CALL_PID"
}

# sipnatd_count REGEX: matching lines in sipnatd's log.
sipnatd_count() {
	grep -Ec -- "$1" "$SIPNATD_LOG" 2>/dev/null || true
}

assert_sipnatd() {
	grep -Eq -- "$1" "$SIPNATD_LOG" || fail "${2:-the sipnatd log} has no line matching '$1'"
}

assert_pbx() {
	grep -Eq -- "$1" "$WORK/pbx.log" || fail "${2:-the PBX log} has no line matching '$1'"
}

# ---- sipp phones, a registrar stand-in and a PBX that uses stored Paths,
# for the flow-token and re-registration tests.

# start_registrar: a registrar stand-in on pbx (198.51.100.20:5060, UDP)
# that answers every REGISTER with 200, returning each Contact with the
# expiry asked for (none for Expires: 0, RFC 3261 §10.3 step 7) and the
# Path it received, and OPTIONS with 200.  Every request it receives is
# appended to $WORK/registrar.log.  Bounded life (600 s).
start_registrar() {
	cat >"$WORK/registrar.py" <<'PYEOF'
import re, socket, sys, time
addr, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, 5060))
s.settimeout(1.0)
end = time.time() + 600
while time.time() < end:
    try:
        data, src = s.recvfrom(65535)
    except socket.timeout:
        continue
    text = data.decode(errors="replace")
    with open(log, "a") as f:
        f.write(text.replace("\r", "") + "\n----\n")
    head = text.split("\r\n\r\n", 1)[0].split("\r\n")
    if not head or head[0].startswith("SIP/2.0"):
        continue
    method = head[0].split(" ", 1)[0]
    if method not in ("REGISTER", "OPTIONS"):
        continue
    keep, contacts, path, expires = [], [], [], None
    for h in head[1:]:
        name = h.split(":", 1)[0].strip().lower()
        value = h.split(":", 1)[1].strip() if ":" in h else ""
        if name in ("via", "v", "from", "f", "call-id", "i", "cseq"):
            keep.append(h)
        elif name in ("to", "t"):
            keep.append(h + ("" if ";tag=" in h else ";tag=reg1"))
        elif name in ("contact", "m"):
            contacts += [c.strip() for c in value.split(",")]
        elif name == "path":
            path.append(value)
        elif name == "expires":
            expires = int(value)
    out = ["SIP/2.0 200 OK"] + keep
    if method == "REGISTER":
        for c in contacts:
            m = re.search(r";\s*expires=(\d+)", c)
            e = int(m.group(1)) if m else (expires if expires is not None else 3600)
            c = re.sub(r";\s*expires=\d+", "", c)
            if e > 0 and c != "*":
                out.append("Contact: %s;expires=%d" % (c, e))
        for p in path:
            out.append("Path: " + p)
    out.append("Content-Length: 0")
    s.sendto(("\r\n".join(out) + "\r\n\r\n").encode(), src)
PYEOF
	bash "$LAB" exec pbx python3 "$WORK/registrar.py" "$PBX_IP" "$WORK/registrar.log" \
		>>"$WORK/registrar.err.log" 2>&1 &
	# shellcheck disable=SC2034 # for the caller; `sipnat-lab down` stops it
	REGISTRAR_PID=$!
	wait_for 10 listening pbx udp "$PBX_IP:5060" || fail "the registrar stand-in did not start"
}

# registered_path_token N: the flow token in the Path of the N-th REGISTER
# the registrar stand-in received (1 = first).
registered_path_token() {
	sed -n 's/^Path: <sip:\([A-Za-z0-9_-]*\)@.*/\1/p' "$WORK/registrar.log" | sed -n "${1}p"
}

# flow_token SECRET TRANSPORT IP PORT: a flow token as sipnatd would make
# it with flow_secret = SECRET (flow.c: version 1, transport, family 4,
# address, port, first 12 bytes of HMAC-SHA256, base64url without padding;
# the key is HMAC-SHA256 keyed with "sipnat flow secret v1" over SECRET).
flow_token() {
	python3 - "$@" <<'PYEOF'
import base64, hashlib, hmac, socket, struct, sys
secret, tp, ip, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
key = hmac.new(b"sipnat flow secret v1", secret.encode(), hashlib.sha256).digest()
body = bytes([1, {"udp": 0, "tcp": 1, "tls": 2}[tp], 4]) + socket.inet_aton(ip) + struct.pack("!H", port)
tok = body + hmac.new(key, body, hashlib.sha256).digest()[:12]
print(base64.urlsafe_b64encode(tok).decode().rstrip("="))
PYEOF
}

# token_flow TOKEN: "IP PORT" of the flow a token names (not verified).
token_flow() {
	python3 - "$1" <<'PYEOF'
import base64, socket, struct, sys
t = sys.argv[1]
b = base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))
print(socket.inet_ntoa(b[3:7]), struct.unpack("!H", b[7:9])[0])
PYEOF
}

# pbx_invite EXPECT RURI ROUTE-TOKEN: sipp on pbx (port 5080+n) sends one
# INVITE for RURI to sipnatd with Route <sip:ROUTE-TOKEN@sipnatd;lr>, as a
# PBX does with a Path it stored.  EXPECT 200: the call is completed (ACK,
# BYE through sipnatd's Record-Route); otherwise that final status must be
# the answer (the ACK for it is hop by hop: sipnatd's transaction absorbs
# its retransmissions or times out).  Returns sipp's status; files in
# $WORK/inviteN.
INVITE_N=0
pbx_invite() {
	INVITE_N=$((INVITE_N + 1))
	INVITE_DIR="$WORK/invite$INVITE_N"
	mkdir -p "$INVITE_DIR"
	if [ "$1" = 200 ]; then
		_tail='  <recv response="200" rrs="true"/>
  <send><![CDATA[

ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:pbx@[local_ip]>;tag=[pid]p[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <pause milliseconds="300"/>
  <send retrans="500"><![CDATA[

BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:pbx@[local_ip]>;tag=[pid]p[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>'
	else
		_tail="  <recv response=\"$1\"/>"
	fi
	cat >"$INVITE_DIR/uac.xml" <<XMLEOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="pbx invite">
  <send retrans="500"><![CDATA[

INVITE $2 SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
Route: <sip:$3@$PUB_IP:5060;lr>
From: <sip:pbx@[local_ip]>;tag=[pid]p[call_number]
To: <$2>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:pbx@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=pbx 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=audio 4000 RTP/AVP 0
a=rtpmap:0 PCMU/8000

]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
$_tail
</scenario>
XMLEOF
	(cd "$INVITE_DIR" && exec timeout -k 2 20 ip netns exec "${SIPNAT_LAB_PREFIX}pbx" \
		sipp -nostdin -sf uac.xml -i "$PBX_IP" -p $((5080 + INVITE_N)) -rsa "$PUB_IP:5060" \
		"$PUB_IP:5060" -m 1 -timeout 12s -timeout_error -trace_msg -trace_err \
		>sipp.log 2>&1)
}

# invite_messages: the last pbx_invite's message trace without CRs.
invite_messages() {
	cat "$INVITE_DIR"/*_messages.log 2>/dev/null | tr -d '\r'
}

# invite_status: the last pbx_invite's final status line.
invite_status() {
	_o=$(invite_messages | sed -n 's/^SIP\/2.0 \([2-6][0-9][0-9].*\)/\1/p' | tail -n 1)
	echo "${_o:-no final response}"
}

# device NAME IP PORT USER CONTACT-PORT ACTION SECONDS: a minimal phone
# (python, UDP) in namespace NAME on IP:PORT with sipnatd as outbound
# proxy.  ACTION: "register" (REGISTER USER@PBX, Contact
# sip:USER@IP:CONTACT-PORT, Expires 300, then exit), "unregister" (the
# same with Expires: 0), "answer" (register, then answer one INVITE with
# 200 and its BYE), "listen" (only record what arrives).  Every message it
# receives goes to DEVICE_DIR/messages.log.  Runs in the background for at
# most SECONDS (PID in DEVICE_PID); exit status 0 when ACTION completed.
DEVICE_N=0
device() {
	DEVICE_N=$((DEVICE_N + 1))
	DEVICE_DIR="$WORK/dev-$1-$3-$DEVICE_N"
	mkdir -p "$DEVICE_DIR"
	[ -f "$WORK/device.py" ] || cat >"$WORK/device.py" <<'PYEOF'
import random, socket, sys, time
ip, port, user, cport, action, secs, log, proxy, pbx = sys.argv[1:10]
port, cport, end = int(port), int(cport), time.time() + float(secs)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((ip, port))
s.settimeout(0.2)
PROXY = (proxy, 5060)

def out(text):
    s.sendto(text.replace("\n", "\r\n").encode(), PROXY)

def recv():
    try:
        data, _ = s.recvfrom(65535)
    except socket.timeout:
        return None
    text = data.decode(errors="replace").replace("\r", "")
    with open(log, "a") as f:
        f.write(text + "\n----\n")
    head = text.split("\n\n", 1)[0].split("\n")
    return head[0], head[1:]

def hdrs(lines, *names):
    return [l for l in lines if l.split(":", 1)[0].strip().lower() in names]

def register(expires):
    cseq = int(time.time() * 10) % 2000000000
    msg = ("REGISTER sip:%s SIP/2.0\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK%08x;rport\n"
           "From: <sip:%s@%s>;tag=dev%d\nTo: <sip:%s@%s>\nCall-ID: reg-%s-%d@%s\n"
           "CSeq: %d REGISTER\nContact: <sip:%s@%s:%d>\nExpires: %d\nMax-Forwards: 70\n"
           "Content-Length: 0\n\n" % (pbx, ip, port, random.getrandbits(32), user, pbx, cport,
                                     user, pbx, user, cport, ip, cseq, user, ip, cport, expires))
    for _ in range(16):
        out(msg)
        t = time.time() + 0.5
        while time.time() < t:
            m = recv()
            if m and m[0].startswith("SIP/2.0 ") and hdrs(m[1], "cseq") and \
                    hdrs(m[1], "cseq")[0].split(":", 1)[1].split()[0] == str(cseq):
                if m[0].startswith("SIP/2.0 1"):
                    continue
                return m[0].startswith("SIP/2.0 2")
    return False

def reply(first, lines, code, extra=""):
    to = hdrs(lines, "to", "t")[0]
    if code == "200 OK" and ";tag=" not in to:
        to += ";tag=devcall"
    r = ["SIP/2.0 " + code] + hdrs(lines, "via", "v", "record-route") + \
        hdrs(lines, "from", "f") + [to] + hdrs(lines, "call-id", "i", "cseq")
    s.sendto(("\r\n".join(r) + "\r\n" + extra + "Content-Length: 0\r\n\r\n").encode(), PROXY)

if action == "listen":
    while time.time() < end:
        recv()
    sys.exit(0)
if not register(0 if action == "unregister" else 300):
    sys.exit("REGISTER failed")
if action in ("register", "unregister"):
    sys.exit(0)
while time.time() < end:
    m = recv()
    if not m or m[0].startswith("SIP/2.0"):
        continue
    method = m[0].split(" ", 1)[0]
    if method == "INVITE":
        reply(m[0], m[1], "200 OK", "Contact: <sip:%s@%s:%d>\r\n" % (user, ip, cport))
    elif method in ("BYE", "OPTIONS"):
        reply(m[0], m[1], "200 OK")
        if method == "BYE":
            sys.exit(0)
sys.exit("no call")
PYEOF
	(exec timeout -k 2 $(($7 + 2)) ip netns exec "${SIPNAT_LAB_PREFIX}$1" python3 "$WORK/device.py" \
		"$2" "$3" "$4" "$5" "$6" "$7" "$DEVICE_DIR/messages.log" "$PUB_IP" "$PBX_IP" \
		>"$DEVICE_DIR/device.log" 2>&1) &
	# shellcheck disable=SC2034 # for the caller
	DEVICE_PID=$!
}

# device_messages DIR: what a device received.
device_messages() {
	cat "$1/messages.log" 2>/dev/null
}
