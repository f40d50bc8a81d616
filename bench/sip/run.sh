#!/bin/sh
# bench/sip/run.sh: SIP call-rate benchmark, sipnatd next to Kamailio.
#
#   SIPNATD=/path/to/build/sipnatd bench/sip/run.sh [sipbench.py options]
#
# Runs bench/sip/sipbench.py (see bench/README.md): the proxy under test on
# CPU 1, SIPp load on CPU 0, loopback only, every step bounded.  Writes
# bench/results/sip-YYYYmmdd-HHMM.jsonl and prints a markdown summary.
# Default: INVITE and REGISTER sweeps for sipnatd (signalling only),
# sipnatd-relay (media anchored) and kamailio, about 8 minutes.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

if [ -z "${SIPNATD:-}" ]; then
	for c in "$top/sipnatd" "$(command -v sipnatd 2>/dev/null || true)"; do
		if [ -n "$c" ] && [ -x "$c" ]; then
			SIPNATD=$c
			break
		fi
	done
fi
if [ -z "${SIPNATD:-}" ] || [ ! -x "$SIPNATD" ]; then
	echo "run.sh: no sipnatd binary; build one (out of tree is fine) and set SIPNATD=/path/to/sipnatd" >&2
	exit 2
fi
for t in sipp kamailio taskset python3; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "run.sh: missing $t (apt-get install sip-tester kamailio util-linux python3)" >&2
		exit 2
	}
done
if [ "$(nproc)" -lt 2 ]; then
	echo "run.sh: needs two CPUs (proxy on CPU 1, load on CPU 0)" >&2
	exit 2
fi

exec python3 "$here/sipbench.py" --sipnatd "$SIPNATD" \
	--systems "${SYSTEMS:-sipnatd,sipnatd-relay,kamailio}" \
	--modes "${MODES:-invite,register}" "$@"
