#!/bin/sh
# install: make install and running sipnatd as a service.
#
#  1. `make install DESTDIR=...` in the build directory installs both
#     programs, the example configuration, the three man pages, the systemd
#     unit and the sysusers.d file; a second install keeps a configuration
#     the administrator changed, and `make uninstall` leaves it too;
#  2. `systemd-analyze verify` accepts the installed unit (a copy whose
#     paths point into DESTDIR, with MANPATH at the installed pages so that
#     its Documentation= is checked too) and prints nothing;
#  3. every installed man page renders with `groff -ww` without a warning;
#  4. sipnatd started as root with --user nobody --group nogroup
#     --pid-file F: every thread runs as nobody/nogroup with no root group
#     left, the PID file holds its PID, SIP still answers, the state and
#     control socket directories were made for nobody, a second sipnatd
#     with the same PID file refuses to start, and after SIGTERM the PID
#     file and the control socket are gone;
#  5. sd_notify: with NOTIFY_SOCKET and WATCHDOG_USEC=1000000, a listener
#     gets READY=1, then WATCHDOG=1 at least twice, RELOADING=1 and READY=1
#     around a SIGHUP, and STOPPING=1 on SIGTERM.
TEST_SLOT=48
# shellcheck source=tests/integration/lib.sh
. "${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
setup sipsak python3 groff make find
[ "$(id -u)" = 0 ] || skip "needs root (sipnatd drops from root to nobody)"
[ -f "$builddir/Makefile" ] || skip "no configured build directory at $builddir (set SIPNAT_BUILDDIR)"
if ! id nobody >/dev/null 2>&1 || ! getent group nogroup >/dev/null 2>&1; then
	skip "no user nobody or group nogroup"
fi
NOBODY_UID=$(id -u nobody)
NOGROUP_GID=$(getent group nogroup | cut -d: -f3)

# The make below must not join the jobserver or take the variables of a
# `make check` that runs this test.
bmake() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make -s -C "$builddir" "$@"
}

# mkvar VAR: VAR as the build directory's Makefile expands it.
mkvar() {
	# shellcheck disable=SC2016 # $(VAR) is for make
	printf 'sipnat-print-var:\n\t@echo $(%s)\n' "$1" |
		bmake -f Makefile -f - sipnat-print-var
}

# ---- 1. make install
ROOT="$WORK/root"
bmake install DESTDIR="$ROOT" >"$WORK/install.log" 2>&1 || fail "make install DESTDIR=$ROOT"
SBINDIR=$(mkvar sbindir)
SYSCONFDIR=$(mkvar sysconfdir)
MANDIR=$(mkvar mandir)
UNITDIR=$(mkvar systemdsystemunitdir)
SYSUSERSDIR=$(mkvar sysusersdir)
for v in "$SBINDIR" "$SYSCONFDIR" "$MANDIR" "$UNITDIR" "$SYSUSERSDIR"; do
	case $v in /*) ;; *) fail "cannot read the install directories from $builddir/Makefile ('$v')" ;; esac
done
for f in "$SBINDIR/sipnatd" "$SBINDIR/sipnatctl"; do
	[ -x "$ROOT$f" ] || fail "make install did not install $f"
done
for f in "$SYSCONFDIR/sipnat/sipnat.conf" "$MANDIR/man8/sipnatd.8" \
	"$MANDIR/man5/sipnat.conf.5" "$MANDIR/man8/sipnatctl.8" \
	"$UNITDIR/sipnatd.service" "$SYSUSERSDIR/sipnat.conf"; do
	[ -s "$ROOT$f" ] || fail "make install did not install $f"
done
cmp -s "$srcdir/etc/sipnat.conf" "$ROOT$SYSCONFDIR/sipnat/sipnat.conf" ||
	fail "the installed sipnat.conf is not etc/sipnat.conf"
assert_file_has "$ROOT$UNITDIR/sipnatd.service" "^ExecStart=$SBINDIR/sipnatd -f -c $SYSCONFDIR/sipnat/sipnat.conf\$" \
	"the unit's ExecStart"
assert_file_has "$ROOT$SYSUSERSDIR/sipnat.conf" '^u sipnat ' "the sysusers.d file"
# The administrator's configuration survives a second install and uninstall.
echo "; changed by the administrator" >>"$ROOT$SYSCONFDIR/sipnat/sipnat.conf"
bmake install DESTDIR="$ROOT" >>"$WORK/install.log" 2>&1 || fail "second make install"
assert_file_has "$ROOT$SYSCONFDIR/sipnat/sipnat.conf" '^; changed by the administrator$' \
	"a second make install overwrote the configuration:"
bmake uninstall DESTDIR="$ROOT" >>"$WORK/install.log" 2>&1 || fail "make uninstall"
[ -f "$ROOT$SYSCONFDIR/sipnat/sipnat.conf" ] || fail "make uninstall removed a changed configuration"
for f in "$SBINDIR/sipnatd" "$UNITDIR/sipnatd.service" "$SYSUSERSDIR/sipnat.conf" \
	"$MANDIR/man8/sipnatd.8"; do
	[ ! -e "$ROOT$f" ] || fail "make uninstall left $f behind"
done
rm -rf "$ROOT"
bmake install DESTDIR="$ROOT" >>"$WORK/install.log" 2>&1 || fail "make install (again)"
say "make install: every file in place"

# ---- 2. systemd-analyze verify
if command -v systemd-analyze >/dev/null 2>&1; then
	mkdir -p "$WORK/unit"
	sed -e "s|^ExecStart=$SBINDIR/|ExecStart=$ROOT$SBINDIR/|" \
		"$ROOT$UNITDIR/sipnatd.service" >"$WORK/unit/sipnatd.service"
	grep -q "^ExecStart=$ROOT" "$WORK/unit/sipnatd.service" || fail "cannot rewrite ExecStart"
	MANPATH="$ROOT$MANDIR" SYSTEMD_LOG_COLOR=0 systemd-analyze verify \
		"$WORK/unit/sipnatd.service" >"$WORK/verify.out" 2>&1
	rc=$?
	if [ "$rc" != 0 ] || [ -s "$WORK/verify.out" ]; then
		cat "$WORK/verify.out"
		fail "systemd-analyze verify: status $rc, output above"
	fi
	say "systemd-analyze verify: unit accepted"
else
	skip "missing systemd-analyze (Debian package systemd)"
fi

# ---- 3. man pages, every warning on
for f in "$MANDIR/man8/sipnatd.8" "$MANDIR/man5/sipnat.conf.5" "$MANDIR/man8/sipnatctl.8"; do
	groff -ww -t -man -z "$ROOT$f" >"$WORK/groff.out" 2>&1
	rc=$?
	if [ "$rc" != 0 ] || [ -s "$WORK/groff.out" ]; then
		cat "$WORK/groff.out"
		fail "groff -ww: $f: status $rc, warnings above"
	fi
done
say "man pages render without a warning"

# ---- 4. --user, --group, --pid-file
# nobody must reach its files in the test directory: the PID file's
# directory is nobody's (so that sipnatd can remove the file at exit); the
# state and control socket directories do not exist yet (sipnatd makes
# them for nobody).
chmod 755 "$WORK"
mkdir "$WORK/pid"
chown "$NOBODY_UID:$NOGROUP_GID" "$WORK/pid"
PIDFILE="$WORK/pid/sipnatd.pid"
write_config "$WORK/sipnat.conf" <<EOF
[sip]
listen = udp:$PROXY_IP:$PROXY_PORT tcp:$PROXY_IP:$PROXY_PORT
state_dir = $WORK/state
[relay]
ports = $((PORT_BASE + 10))-$((PORT_BASE + 29))
threads = 2
[control]
socket = $WORK/run/control.sock
EOF
chmod 644 "$WORK/sipnat.conf"
SIPNATD_LOG="$WORK/sipnatd.log"
"$SIPNATD" -f -c "$WORK/sipnat.conf" --user nobody --group nogroup --pid-file "$PIDFILE" \
	>>"$SIPNATD_LOG" 2>&1 &
SIPNATD_PID=$!
wait_for 10 sipnatd_started || fail "sipnatd did not start"
sipnatd_alive || fail "sipnatd exited at start"
assert_log "running as uid $NOBODY_UID gid $NOGROUP_GID" "privilege drop"

[ -f "$PIDFILE" ] || fail "no PID file $PIDFILE"
[ "$(cat "$PIDFILE")" = "$SIPNATD_PID" ] ||
	fail "PID file holds '$(cat "$PIDFILE")', sipnatd is $SIPNATD_PID"
# Every thread (the relay threads were started before the drop).
n=0
for st in /proc/"$SIPNATD_PID"/task/*/status; do
	awk -v u="$NOBODY_UID" -v g="$NOGROUP_GID" '
		$1 == "Uid:" { if ($2 != u || $3 != u || $4 != u || $5 != u) bad = 1 }
		$1 == "Gid:" { if ($2 != g || $3 != g || $4 != g || $5 != g) bad = 1 }
		$1 == "Groups:" { for (i = 2; i <= NF; i++) if ($i == 0) bad = 1 }
		$1 == "CapEff:" || $1 == "CapPrm:" { if ($2 !~ /^0+$/) bad = 1 }
		END { exit bad }' "$st" || {
		cat "$st"
		fail "a sipnatd thread still has root's ids or capabilities ($st)"
	}
	n=$((n + 1))
done
[ "$n" -ge 3 ] || fail "expected the SIP thread and 2 relay threads, found $n thread(s)"
for d in state run; do
	[ "$(stat -c %u:%g "$WORK/$d")" = "$NOBODY_UID:$NOGROUP_GID" ] ||
		fail "$WORK/$d is $(stat -c %u:%g "$WORK/$d"), not nobody's"
done
[ -S "$WORK/run/control.sock" ] || fail "no control socket"
if [ -x "$builddir/sipnatctl" ]; then
	"$builddir/sipnatctl" -s "$WORK/run/control.sock" status >"$WORK/ctl.out" 2>&1 ||
		fail "sipnatctl status against the unprivileged sipnatd: $(cat "$WORK/ctl.out")"
fi

request opt OPTIONS "sip:$PROXY_IP:$PROXY_PORT" 70
shoot opt
assert_file_has "$WORK/opt.reply" '^SIP/2.0 200 ' "OPTIONS to the unprivileged sipnatd"

# A second daemon with the same PID file refuses, and leaves the file.
"$SIPNATD" -f -c "$WORK/sipnat.conf" --pid-file "$PIDFILE" >"$WORK/second.log" 2>&1 &
second=$!
BG_PIDS="$BG_PIDS $second"
wait_for 10 eval "! kill -0 $second 2>/dev/null" || fail "a second sipnatd with the same PID file runs"
wait "$second"
rc=$?
[ "$rc" = 1 ] || fail "the second sipnatd exited with $rc, not 1"
assert_file_has "$WORK/second.log" "names process $SIPNATD_PID, which is running" "second sipnatd"
[ "$(cat "$PIDFILE")" = "$SIPNATD_PID" ] || fail "the refused sipnatd changed the PID file"

stop_sipnatd
[ ! -e "$PIDFILE" ] || fail "the PID file is still there after SIGTERM"
[ ! -e "$WORK/run/control.sock" ] || fail "the control socket is still there after SIGTERM"
say "--user/--group/--pid-file: ok"

# ---- 5. sd_notify readiness, watchdog, reload and stop
NOTIFY="$WORK/notify.sock"
cat >"$WORK/listen.py" <<'EOF'
# Records every datagram on a notify socket, one line per assignment,
# until STOPPING=1 arrives or 60 s pass.
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(1.0)
end = time.monotonic() + 60
with open(sys.argv[2], "a") as out:
    while time.monotonic() < end:
        try:
            data = s.recv(4096).decode("utf-8", "replace")
        except socket.timeout:
            continue
        for line in data.split("\n"):
            out.write(line + "\n")
        out.flush()
        if "STOPPING=1" in data.split("\n"):
            break
EOF
: >"$WORK/notify.txt"
python3 "$WORK/listen.py" "$NOTIFY" "$WORK/notify.txt" &
listener=$!
BG_PIDS="$BG_PIDS $listener"
wait_for 10 test -S "$NOTIFY" || fail "the notify listener did not start"
rm -f "$WORK/sipnatd.log"
NOTIFY_SOCKET="$NOTIFY" WATCHDOG_USEC=1000000 "$SIPNATD" -f -c "$WORK/sipnat.conf" \
	>>"$SIPNATD_LOG" 2>&1 &
SIPNATD_PID=$!
wait_for 10 grep -qx 'READY=1' "$WORK/notify.txt" || fail "no READY=1 from sipnatd"
sipnatd_alive || fail "sipnatd exited"
assert_log "sipnatd .* started" "READY=1 only once started"
# Pings every 500 ms: two after READY=1 within 3 s.
pings_after_ready() {
	awk '$0 == "READY=1" { r = 1 } r && $0 == "WATCHDOG=1" { n++ } END { print n + 0 }' \
		"$WORK/notify.txt"
}
# shellcheck disable=SC2016 # expanded by eval, each time
wait_for 3 eval '[ "$(pings_after_ready)" -ge 2 ]' ||
	fail "$(pings_after_ready) WATCHDOG=1 after READY=1 in 3 s (WATCHDOG_USEC=1000000)"
kill -HUP "$SIPNATD_PID"
wait_for 10 eval "awk '\$0 == \"RELOADING=1\" { r = 1 } r && \$0 == \"READY=1\" { ok = 1 } END { exit !ok }' '$WORK/notify.txt'" ||
	fail "no RELOADING=1 then READY=1 around SIGHUP"
kill -TERM "$SIPNATD_PID"
wait_for 15 grep -qx 'STOPPING=1' "$WORK/notify.txt" || fail "no STOPPING=1 on SIGTERM"
wait_sipnatd_exit 15
say "sd_notify: READY=1, $(pings_after_ready) WATCHDOG=1, RELOADING=1/READY=1, STOPPING=1"
exit 0
