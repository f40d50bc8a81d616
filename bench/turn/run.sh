#!/bin/sh
# TURN benchmark (not a test): relayed packets per core of sipnatd's TURN
# server next to Debian's coturn, same load, same pinning.  See
# bench/README.md, section "TURN".  Arguments go to turnbench.py.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
SIPNATD=${SIPNATD:-$TOP/sipnatd}
OUTDIR=${OUTDIR:-$TOP/bench/results}
[ -x "$SIPNATD" ] || { echo "no sipnatd at $SIPNATD (set SIPNATD)" >&2; exit 1; }
for t in turnserver turnutils_uclient turnutils_peer taskset python3; do
	command -v "$t" >/dev/null 2>&1 || { echo "missing $t" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || { echo "needs two CPUs (server and load pinned apart)" >&2; exit 1; }
mkdir -p "$OUTDIR"
exec python3 "$HERE/turnbench.py" --sipnatd "$SIPNATD" --out "$OUTDIR/turn-$(date +%Y%m%d-%H%M).jsonl" "$@"
