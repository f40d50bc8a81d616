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
export ASAN_OPTIONS

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
		if [ "$_tp" = tcp ]; then
			_ob=";outbound=\"sip:$PUB_IP:5060;transport=tcp;lr\""
		else
			_ob=";outbound=\"sip:$PUB_IP:5060;lr\""
		fi
	fi
	_atp=
	if [ "$_tp" = tcp ]; then _atp=";transport=tcp"; fi
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

# hangup NAME: asks the phone to end its call (menu's hangup command over
# ctrl_tcp, a netstring-framed JSON request).
hangup() {
	lab exec "$1" python3 - <<'EOF'
import json, socket, sys
req = json.dumps({"command": "hangup", "params": "", "token": "t"}).encode()
try:
    s = socket.create_connection(("127.0.0.1", 4444), timeout=3)
    s.sendall(b"%d:%s," % (len(req), req))
    s.settimeout(3)
    sys.stdout.write(s.recv(4096).decode(errors="replace") + "\n")
except OSError as e:
    sys.exit("ctrl_tcp: %s" % e)
EOF
}

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
