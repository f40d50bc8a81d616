# shellcheck shell=sh disable=SC2034 # the variables are for the scripts
# lib.sh: shared helpers for the SIP integration tests (sourced, POSIX sh).
#
# A test script sets TEST_SLOT (a small number, unique per script) before
# sourcing this file; its ports are PORT_BASE .. PORT_BASE+99 with
# PORT_BASE = 21000 + 100 * TEST_SLOT, so that `make check -j` never lets
# two scripts collide.  Addresses: sipnatd listens on 127.0.0.1, upstream
# PBXs are 127.0.0.2 and 127.0.0.4, devices are 127.0.0.3 (sipnatd tells
# devices and upstreams apart by source address).
#
# Every process started here is remembered by PID and killed by PID in the
# EXIT trap; every wait is bounded.  Exit codes: 0 pass, 1 fail, 77 skip
# (a tool is missing) unless SIPNAT_REQUIRE_ALL=1 turns a skip into a fail.

TEST_NAME=$(basename "$0" .sh)
srcdir="${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
builddir="${SIPNAT_BUILDDIR:-$srcdir}"
SIPNATD="${SIPNATD:-$builddir/sipnatd}"
SCEN="$srcdir/tests/integration/scenarios"
PORT_BASE=$((21000 + 100 * ${TEST_SLOT:?set TEST_SLOT before sourcing lib.sh}))
PROXY_IP=127.0.0.1
UP_IP=127.0.0.2
DEV_IP=127.0.0.3
UP2_IP=127.0.0.4
PROXY_PORT=$PORT_BASE

# Sanitizer builds: leaks count, reports go to sipnatd's log (its stderr).
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
# What Sofia-SIP's OpenSSL-based TLS leaks (see the file).
LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$srcdir/tests/lsan.supp:print_suppressions=0}"
export ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

WORK=
SIPNATD_PID=
SIPNATD_LOG=
BG_PIDS=

say() { echo "$TEST_NAME: $*"; }

# Prints the tail of every log we have, to make a failure self-explaining.
dump_logs() {
	[ -n "$WORK" ] && [ -d "$WORK" ] || return 0
	for f in "$WORK"/*.log "$WORK"/*/*.log; do
		[ -s "$f" ] || continue
		echo "---- $f (last 30 lines)"
		tail -n 30 "$f"
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

# require_tools TOOL...: skip unless every tool is on PATH.
require_tools() {
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || skip "missing $t"
	done
}

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	for p in $BG_PIDS $SIPNATD_PID; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $BG_PIDS $SIPNATD_PID; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 30 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$p" 2>/dev/null
	done
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "${KEEP_LOGS:-0}" = 1 ]; then
			say "logs kept in $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
}

# setup [TOOL...]: common prerequisites (and TOOLs), the temp dir and the
# trap.
# shellcheck disable=SC2120 # the arguments are optional
setup() {
	require_tools sipp timeout ss tr awk "$@"
	[ -x "$SIPNATD" ] || skip "no daemon at $SIPNATD (set SIPNATD)"
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/sipnat-$TEST_NAME.XXXXXX") || fail "mktemp"
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s, bounded.
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

# listening udp|tcp ADDR PORT: true when something listens there.
listening() {
	if [ "$1" = tcp ]; then
		ss -Hltn "src $2:$3" 2>/dev/null | grep -q .
	else
		ss -Hlun "src $2:$3" 2>/dev/null | grep -q .
	fi
}

# write_config FILE: writes stdin, with [log] level = debug appended unless
# the text has its own [log] section.  Unless the text sets them, the state
# directory and the control socket go into the test's own directory, so
# that tests never share registrations or a socket with each other or with
# a sipnatd installed on the machine (a repeated [section] is valid INI).
write_config() {
	cat >"$1"
	grep -q '^\[log\]' "$1" || printf '[log]\nlevel = debug\ntarget = stderr\n' >>"$1"
	grep -q '^state_dir' "$1" || printf '[sip]\nstate_dir = %s/state\n' "$WORK" >>"$1"
	grep -q '^socket' "$1" || printf '[control]\nsocket = %s/control.sock\n' "$WORK" >>"$1"
}

sipnatd_alive() { [ -n "$SIPNATD_PID" ] && kill -0 "$SIPNATD_PID" 2>/dev/null; }

# True once sipnatd said it started, or when it is gone (then wait no more).
sipnatd_started() {
	grep -q 'sipnatd .* started' "$SIPNATD_LOG" 2>/dev/null || ! sipnatd_alive
}

# start_sipnatd CONFIG: runs sipnatd in the foreground (in the background
# of this shell) and waits until it says it started and listens on
# PROXY_PORT.  The log (stderr, including sanitizer reports) is
# $SIPNATD_LOG.
start_sipnatd() {
	SIPNATD_LOG="$WORK/sipnatd.log"
	"$SIPNATD" -f -c "$1" >>"$SIPNATD_LOG" 2>&1 &
	SIPNATD_PID=$!
	wait_for 10 sipnatd_started || fail "sipnatd did not start"
	sipnatd_alive || fail "sipnatd exited at start"
	listening udp "$PROXY_IP" "$PROXY_PORT" || listening tcp "$PROXY_IP" "$PROXY_PORT" ||
		fail "sipnatd is not listening on $PROXY_IP:$PROXY_PORT"
}


# check_sanitizers: fails the test when sipnatd's log holds a sanitizer
# report (AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer).
check_sanitizers() {
	[ -n "$SIPNATD_LOG" ] && [ -f "$SIPNATD_LOG" ] || return 0
	if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|Sanitizer has encountered a fatal error|runtime error:' "$SIPNATD_LOG"; then
		grep -E -A 30 'ERROR: (AddressSanitizer|LeakSanitizer)|Sanitizer has encountered a fatal error|runtime error:' "$SIPNATD_LOG" |
			head -n 80
		fail "sanitizer report in sipnatd's log"
	fi
}

# wait_sipnatd_exit SECONDS: waits (bounded) for sipnatd to exit by
# itself, asserts exit status 0 and no sanitizer report.  SIPNATD_RC holds
# the exit status.
wait_sipnatd_exit() {
	if ! wait_for "$1" eval '! sipnatd_alive'; then
		kill -KILL "$SIPNATD_PID" 2>/dev/null
		SIPNATD_PID=
		fail "sipnatd did not exit within ${1}s"
	fi
	wait "$SIPNATD_PID"
	SIPNATD_RC=$?
	SIPNATD_PID=
	check_sanitizers
	[ "$SIPNATD_RC" = 0 ] || fail "sipnatd exited with status $SIPNATD_RC"
}

# stop_sipnatd [SECONDS]: SIGTERM, then wait_sipnatd_exit (15 s default).
# shellcheck disable=SC2120 # the argument is optional
stop_sipnatd() {
	[ -n "$SIPNATD_PID" ] || return 0
	kill -TERM "$SIPNATD_PID" 2>/dev/null
	wait_sipnatd_exit "${1:-15}"
}

# start_sipp NAME SECONDS SIPP-ARGS...: runs sipp in $WORK/NAME (its files
# land there) under `timeout`, in the background; its PID is in LAST_PID and
# its output in $WORK/NAME/sipp.log.  -nostdin and -timeout are added.
start_sipp() {
	_name=$1
	_secs=$2
	shift 2
	mkdir -p "$WORK/$_name"
	(cd "$WORK/$_name" && exec timeout -k 2 $((_secs + 5)) sipp -nostdin -timeout "${_secs}s" \
		-timeout_error "$@" >sipp.log 2>&1) &
	LAST_PID=$!
	BG_PIDS="$BG_PIDS $LAST_PID"
}

# run_sipp NAME SECONDS SIPP-ARGS...: as start_sipp, in the foreground;
# returns sipp's exit status.
run_sipp() {
	start_sipp "$@"
	wait "$LAST_PID"
}

# start_uas NAME IP PORT SECONDS SIPP-ARGS...: a sipp server, waits until
# it listens (UDP unless the arguments say -t t1).
start_uas() {
	_uname=$1
	_uip=$2
	_uport=$3
	_usecs=$4
	shift 4
	start_sipp "$_uname" "$_usecs" -i "$_uip" -p "$_uport" "$@"
	_proto=udp
	case " $* " in *" t1 "*) _proto=tcp ;; esac
	wait_for 10 listening "$_proto" "$_uip" "$_uport" ||
		fail "sipp $_uname did not start on $_uip:$_uport"
}

# wait_pid PID WHAT: waits for a background job (bounded by its own
# timeout) and fails unless it exited 0.
wait_pid() {
	wait "$1"
	_rc=$?
	[ "$_rc" = 0 ] || fail "$2: exit status $_rc"
}

# assert_log REGEX [WHAT]: sipnatd's log has a line matching REGEX (ERE).
assert_log() {
	grep -Eq -- "$1" "$SIPNATD_LOG" || fail "${2:-sipnatd log} has no line matching '$1'"
}

# assert_file_has FILE REGEX WHAT
assert_file_has() {
	grep -Eq -- "$2" "$1" || fail "$3: no match for '$2' in $1"
}

# sipp_messages NAME: prints the path of a copy of $WORK/NAME/msg.log (the
# -trace_msg file) with the CRs removed, so that patterns can use $ and ^$.
sipp_messages() {
	tr -d '\r' <"$WORK/$1/msg.log" >"$WORK/$1/msg.txt" || fail "no message trace for $1"
	echo "$WORK/$1/msg.txt"
}

# Local ports for shoot: PORT_BASE+50 and up.
SHOOT_PORT=$((PORT_BASE + 50))

# request NAME METHOD RURI MAX-FORWARDS [HEADER-LINE...]: writes
# $WORK/NAME.sip, a request from the device (sipsak adds the Via).
request() {
	_rn=$1
	{
		printf '%s %s SIP/2.0\n' "$2" "$3"
		printf 'From: <sip:probe@%s>;tag=%s\n' "$DEV_IP" "$1"
		printf 'To: <%s>\n' "$3"
		printf 'Call-ID: %s-%s@%s\n' "$1" "$$" "$DEV_IP"
		printf 'CSeq: 1 %s\n' "$2"
		printf 'Max-Forwards: %s\n' "$4"
		printf 'Contact: <sip:probe@%s>\n' "$DEV_IP"
		shift 4
		for _h in "$@"; do
			printf '%s\n' "$_h"
		done
		printf 'Content-Length: 0\n\n'
	} >"$WORK/$_rn.sip"
}

# shoot NAME [SIPSAK-ARGS]: sends $WORK/NAME.sip from the device address
# to sipnatd, the reply goes to $WORK/NAME.reply.  The message comes from a
# file because sipsak 0.9.8 cuts 5-digit ports out of the URI given with
# -s, and our ports have 5 digits.  Each UDP request uses its
# own local port; TCP lets the kernel choose (a closed connection's port
# lingers in TIME_WAIT and would fail the next run).
shoot() {
	_n=$1
	shift
	SHOOT_PORT=$((SHOOT_PORT + 1))
	_lport="-l $SHOOT_PORT"
	case " $* " in *" tcp "*) _lport= ;; esac
	# shellcheck disable=SC2086 # _lport is empty or two words
	timeout 20 sipsak -vv -f "$WORK/$_n.sip" -s "sip:$PROXY_IP:$PROXY_PORT" -k "$DEV_IP" \
		$_lport -H "$DEV_IP" -Z 100 -D 1 "$@" >"$WORK/$_n.reply" 2>&1
	true
}

# count_matches FILE REGEX: prints the number of matching lines.
count_matches() {
	grep -Ec -- "$2" "$1" 2>/dev/null || true
}
