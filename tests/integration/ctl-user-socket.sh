#!/bin/sh
# ctl-user-socket: sipnatd run by a user other than root, with no control
# socket in its configuration, puts it in a directory of its own, and
# sipnatctl run by that user finds it without -s.
#
# Runs sipnatd as nobody (setpriv; root needed):
#   1. with XDG_RUNTIME_DIR=$WORK/xdg: the socket is
#      $WORK/xdg/sipnat/control.sock (directory made 0700); sipnatctl status
#      as nobody, same environment, no -s: answers;
#   2. without XDG_RUNTIME_DIR: /tmp/sipnat-UID/control.sock; sipnatctl
#      status finds it;
#   3. a socket directory open to others ($WORK/xdg/sipnat 0777): sipnatd
#      refuses to start and says why, naming the path.
TEST_SLOT=61
. "$(dirname "$0")/lib.sh"
setup setpriv
[ "$(id -u)" = 0 ] || skip "needs root (runs sipnatd as nobody)"
id nobody >/dev/null 2>&1 || skip "no user nobody"
SIPNATCTL="${SIPNATCTL:-$builddir/sipnatctl}"
[ -x "$SIPNATCTL" ] || skip "no sipnatctl at $SIPNATCTL"
UID_NOBODY=$(id -u nobody)
GID_NOBODY=$(id -g nobody)

chmod 755 "$WORK"
# nobody may not reach the build directory (a clone in /root): run copies.
cp "$SIPNATD" "$WORK/sipnatd" && cp "$SIPNATCTL" "$WORK/sipnatctl" || fail "cp binaries"
chmod 755 "$WORK/sipnatd" "$WORK/sipnatctl"
SIPNATD="$WORK/sipnatd"
SIPNATCTL="$WORK/sipnatctl"
mkdir "$WORK/xdg" && chown nobody "$WORK/xdg" && chmod 700 "$WORK/xdg" || fail "xdg dir"
# No [control] socket line: write_config would add one.
cat >"$WORK/sipnat.conf" <<CONF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT
state_dir = $WORK/xdg/state
[relay]
address = $PROXY_IP
ports = $((PORT_BASE + 40))-$((PORT_BASE + 59))
[log]
level = info
target = stderr
CONF
chmod 644 "$WORK/sipnat.conf"

as_nobody() { setpriv --reuid="$UID_NOBODY" --regid="$GID_NOBODY" --clear-groups "$@"; }

# run_nobody XDG: sipnatd as nobody, XDG_RUNTIME_DIR=XDG ("" = unset).
run_nobody() {
	SIPNATD_LOG="$WORK/sipnatd-$N.log"
	# Not through as_nobody: $! of a function is a subshell's, and setpriv
	# and env exec, so that here $! is sipnatd's own PID.
	if [ -n "$1" ]; then
		XDG_RUNTIME_DIR=$1 setpriv --reuid="$UID_NOBODY" --regid="$GID_NOBODY" --clear-groups \
			"$SIPNATD" -f -c "$WORK/sipnat.conf" >"$SIPNATD_LOG" 2>&1 &
	else
		setpriv --reuid="$UID_NOBODY" --regid="$GID_NOBODY" --clear-groups \
			env -u XDG_RUNTIME_DIR "$SIPNATD" -f -c "$WORK/sipnat.conf" >"$SIPNATD_LOG" 2>&1 &
	fi
	SIPNATD_PID=$!
}

# --- 1
N=1
run_nobody "$WORK/xdg"
wait_for 10 sipnatd_started || fail "sipnatd did not start"
sipnatd_alive || fail "sipnatd (nobody, XDG_RUNTIME_DIR) exited: $(tail -n 3 "$SIPNATD_LOG")"
assert_log "control socket $WORK/xdg/sipnat/control.sock"
[ "$(stat -c %a "$WORK/xdg/sipnat")" = 700 ] || fail "socket directory is not 0700"
XDG_RUNTIME_DIR="$WORK/xdg" as_nobody "$SIPNATCTL" status >"$WORK/status1" 2>&1 ||
	fail "sipnatctl status (nobody, no -s): $(cat "$WORK/status1")"
assert_file_has "$WORK/status1" "^pid +$SIPNATD_PID\$" "sipnatctl status"
stop_sipnatd
say "1. XDG_RUNTIME_DIR/sipnat/control.sock, found by sipnatctl: ok"

# --- 2
N=2
TMPDIR_SOCK="/tmp/sipnat-$UID_NOBODY"
made_tmp=
[ -e "$TMPDIR_SOCK" ] || made_tmp=1
run_nobody ""
wait_for 10 sipnatd_started || fail "sipnatd did not start"
sipnatd_alive || fail "sipnatd (nobody, no XDG_RUNTIME_DIR) exited: $(tail -n 3 "$SIPNATD_LOG")"
assert_log "control socket $TMPDIR_SOCK/control.sock"
as_nobody env -u XDG_RUNTIME_DIR "$SIPNATCTL" status >"$WORK/status2" 2>&1 ||
	fail "sipnatctl status (nobody, no XDG_RUNTIME_DIR): $(cat "$WORK/status2")"
assert_file_has "$WORK/status2" "^pid +$SIPNATD_PID\$" "sipnatctl status"
stop_sipnatd
[ -n "$made_tmp" ] && rm -rf "$TMPDIR_SOCK"
say "2. /tmp/sipnat-$UID_NOBODY/control.sock, found by sipnatctl: ok"

# --- 3
N=3
chmod 777 "$WORK/xdg/sipnat"
run_nobody "$WORK/xdg"
wait_for 10 eval '! sipnatd_alive' || fail "sipnatd started with a socket directory open to others"
SIPNATD_PID=
assert_log "control socket $WORK/xdg/sipnat/control.sock: the directory is open to group or others"
say "3. socket directory open to others: refused: ok"
say "PASS"
