#!/bin/bash
# Media relay benchmark (not a test): packets/s per core of sipnatd's relay
# next to a plain recvmmsg/sendmmsg forwarder and rtpengine (userspace), in
# one run, with the same load, pinning and accounting.  See bench/README.md,
# section "Media relay".
#
# System under test on CPU 1, generator + sink on CPU 0 (taskset).  Busy
# fraction of CPU 1 from /proc/stat over the window; "pps per core" =
# forwarded pps / busy.  Loopback only (127.0.0.0/8), every process bounded in
# time and packets and stopped by PID.
#
# Env:
#   BUILD       sipnat build dir with libsipnat.a (default: configure+make one
#               in the work dir, ~1 min)
#   BASE_BUILD  optional second build dir: adds "ours-base" rows (e.g. the
#               previous commit) to see whether a change costs speed
#   BENCH_REF   the reference harness (default ../shared/bench-ref): its plain
#               forwarder limit/relay.c and rtpengine/ng_client.py are used as
#               they are for the peers
#   RTPENGINE   1 (default when the binary exists) / 0
#   REPS (2) WARM (2) WIN (5)  repetitions, warm-up and window seconds
#   MAXN ("1 100 1000")        streams at maximum offered rate
#   PACED ("1000 4000")        streams at 50 pps each
#   OUTDIR (bench/results)     relay-<date>.jsonl and relay-<date>.md go there
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
REF=${BENCH_REF:-$TOP/../shared/bench-ref}
OUTDIR=${OUTDIR:-$TOP/bench/results}
REPS=${REPS:-2}; WARM=${WARM:-2}; WIN=${WIN:-5}
MAXN=${MAXN-"1 100 1000"}
PACED=${PACED-"1000 4000"}
RATE=50
SINK_IP=127.0.3.1; SINK_PORT=9000
SUT_CPU=1; LOAD_CPU=0
NG=127.0.4.1:2223
STAMP=$(date +%Y%m%d-%H%M%S)
JSONL=$OUTDIR/relay-$STAMP.jsonl
MD=$OUTDIR/relay-$STAMP.md
TMP=$(mktemp -d /tmp/sipnat-relaybench.XXXXXX)
PIDS=()
RTPE_PID=

cleanup() {
	local p
	for p in "${PIDS[@]}" $RTPE_PID; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}" $RTPE_PID; do
		wait "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT INT TERM

[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs (SUT on CPU 1, load on CPU 0)"; exit 1; }
mkdir -p "$OUTDIR"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# ---- build ----
CFLAGS="-O2 -g -Wall -Wextra -std=gnu11"
build_sipnat() { # $1 = build dir to create
	mkdir -p "$1"
	(cd "$1" && "$TOP/configure" >/dev/null && make -j2 libsipnat.a >/dev/null)
}
if [ -z "${BUILD:-}" ]; then
	BUILD=$TMP/build
	echo "building libsipnat.a in $BUILD"
	build_sipnat "$BUILD"
fi
LIBS="$(pkg-config --libs libuv sofia-sip-ua) -lpthread"
cc $CFLAGS -o "$TMP/gen" "$HERE/gen.c"
cc $CFLAGS -o "$TMP/sink" "$HERE/sink.c"
# shellcheck disable=SC2086
cc $CFLAGS -I"$TOP/include" -o "$TMP/ours" "$HERE/relayctl_bench.c" "$BUILD/libsipnat.a" $LIBS
TARGETS="ours"
if [ -n "${BASE_BUILD:-}" ]; then
	# shellcheck disable=SC2086
	cc $CFLAGS -I"$TOP/include" -o "$TMP/ours-base" "$HERE/relayctl_bench.c" \
		"$BASE_BUILD/libsipnat.a" $LIBS
	TARGETS="$TARGETS ours-base"
fi
if [ -f "$REF/limit/relay.c" ]; then
	cc -O2 -Wall -std=gnu11 -o "$TMP/plain" "$REF/limit/relay.c"
	TARGETS="$TARGETS plain"
else
	echo "no $REF/limit/relay.c: plain forwarder skipped"
fi
RTPENGINE=${RTPENGINE:-$(command -v rtpengine >/dev/null && [ -f "$REF/rtpengine/ng_client.py" ] && echo 1 || echo 0)}

# ---- helpers ----
wait_line() { # file prefix seconds
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		grep -q "^$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "timeout waiting for '$2' in $1:"; tail -5 "$1"; return 1
}
cpu_line() { awk -v c="cpu$1" '$1 == c { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat; }
# SIGUSR1 to each pid and wait until its file has one more SNAP line
snap() {
	local i f p want
	for i in "$@"; do
		p=${i%%:*}; f=${i#*:}
		want=$(( $(grep -c '^SNAP' "$f" || true) + 1 ))
		kill -USR1 "$p"
		for ((j = 0; j < 100; j++)); do
			[ "$(grep -c '^SNAP' "$f" || true)" -ge "$want" ] && break
			sleep 0.02
		done
	done
}
# value of key k in the n-th-last SNAP line of a file (1 = last)
kv() { grep '^SNAP' "$1" | tail -n "$3" | head -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"; }

rtpe_start() {
	taskset -c $SUT_CPU rtpengine --config-file=none --table=-1 --interface=127.0.1.1 \
		--listen-ng=$NG --foreground --log-stderr --log-level=4 \
		--port-min=10000 --port-max=29999 --endpoint-learning=off \
		--timeout=600 --silent-timeout=600 --delete-delay=0 >"$TMP/rtpengine.log" 2>&1 &
	RTPE_PID=$!
	for ((i = 0; i < 50; i++)); do
		python3 "$REF/rtpengine/ng_client.py" --ng $NG ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "rtpengine did not answer"; return 1
}
rtpe_rss() { awk '/^VmRSS/ { print $2 }' "/proc/$RTPE_PID/status"; }

# measure LABEL TARGET STREAMS RATE(total pps, 0 = max)
measure() {
	local label=$1 target=$2 n=$3 rate=$4 bound=$((WARM + WIN + 15)) spid gpid tpid=
	local ports=$TMP/ports tag="" calls=0 i
	: >"$TMP/sink.out"; : >"$TMP/gen.out"; : >"$TMP/sut.out"
	taskset -c $LOAD_CPU "$TMP/sink" -a $SINK_IP -p $SINK_PORT -t $bound >"$TMP/sink.out" 2>&1 &
	spid=$!; PIDS+=("$spid")
	wait_line "$TMP/sink.out" READY 5
	case $target in
	ours | ours-base)
		taskset -c $SUT_CPU "$TMP/$target" -n "$n" -T 1 -c $SUT_CPU -a 127.0.1.2 \
			-s $SINK_IP -p $SINK_PORT -f "$ports" -t $bound >"$TMP/sut.out" 2>"$TMP/sut.err" &
		tpid=$!; PIDS+=("$tpid")
		wait_line "$TMP/sut.out" READY 60 ;;
	plain)
		taskset -c $SUT_CPU "$TMP/plain" -n "$n" -m mmsg -a 127.0.1.1 -A 127.0.1.2 -i 20000 \
			-o 20000 -s $SINK_IP -p $SINK_PORT -t $bound >"$TMP/sut.out" 2>&1 &
		tpid=$!; PIDS+=("$tpid")
		wait_line "$TMP/sut.out" READY 30
		for ((i = 0; i < n; i++)); do echo "127.0.1.1 $((20000 + i))"; done >"$ports" ;;
	rtpengine)
		calls=$(((n + 1) / 2)); tag="r$RANDOM-$n"
		python3 "$REF/rtpengine/ng_client.py" --ng $NG setup --calls $calls --portfile "$ports" \
			--tag "$tag" --sink $SINK_IP:$SINK_PORT >/dev/null
		tpid=$RTPE_PID ;;
	direct)
		for ((i = 0; i < n; i++)); do echo "$SINK_IP $SINK_PORT"; done >"$ports" ;;
	esac
	taskset -c $LOAD_CPU "$TMP/gen" -f "$ports" -n "$n" -r "$rate" -c 400000000 -t $bound \
		-a $SINK_IP >"$TMP/gen.out" 2>&1 &
	gpid=$!; PIDS+=("$gpid")
	sleep "$WARM"
	read -r b0 i0 < <(cpu_line $SUT_CPU); read -r lb0 li0 < <(cpu_line $LOAD_CPU)
	snap "$gpid:$TMP/gen.out" "$spid:$TMP/sink.out"
	[ "${target#ours}" != "$target" ] && snap "$tpid:$TMP/sut.out"
	sleep "$WIN"
	read -r b1 i1 < <(cpu_line $SUT_CPU); read -r lb1 li1 < <(cpu_line $LOAD_CPU)
	snap "$gpid:$TMP/gen.out" "$spid:$TMP/sink.out"
	[ "${target#ours}" != "$target" ] && snap "$tpid:$TMP/sut.out"
	local g0 g1 gt0 gt1 s0 s1 st0 st1 q0 q1 ds=0 mem=null
	g0=$(kv "$TMP/gen.out" sent 2); g1=$(kv "$TMP/gen.out" sent 1)
	gt0=$(kv "$TMP/gen.out" t_ns 2); gt1=$(kv "$TMP/gen.out" t_ns 1)
	s0=$(kv "$TMP/sink.out" pkts 2); s1=$(kv "$TMP/sink.out" pkts 1)
	st0=$(kv "$TMP/sink.out" t_ns 2); st1=$(kv "$TMP/sink.out" t_ns 1)
	q0=$(kv "$TMP/sink.out" gaps 2); q1=$(kv "$TMP/sink.out" gaps 1)
	if [ "${target#ours}" != "$target" ]; then
		ds=$(( $(kv "$TMP/sut.out" drop_send 1) - $(kv "$TMP/sut.out" drop_send 2) ))
		mem=$(sed -n 's/^MEM .*per_1000_kb=\([0-9-]*\).*/\1/p' "$TMP/sut.out")
	fi
	kill "$gpid" 2>/dev/null || true; wait "$gpid" 2>/dev/null || true
	if [ "$target" = rtpengine ]; then
		python3 "$REF/rtpengine/ng_client.py" --ng $NG teardown --calls $calls --tag "$tag" >/dev/null
	elif [ -n "$tpid" ]; then
		kill "$tpid" 2>/dev/null || true; wait "$tpid" 2>/dev/null || true
	fi
	kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true
	PIDS=()
	awk -v label="$label" -v target="$target" -v n="$n" -v rate="$rate" \
		-v g0="$g0" -v g1="$g1" -v gt0="$gt0" -v gt1="$gt1" -v s0="$s0" -v s1="$s1" \
		-v st0="$st0" -v st1="$st1" -v q0="$q0" -v q1="$q1" -v ds="$ds" -v mem="$mem" \
		-v b0="$b0" -v i0="$i0" -v b1="$b1" -v i1="$i1" \
		-v lb0="$lb0" -v li0="$li0" -v lb1="$lb1" -v li1="$li1" -v date="$(date +%F)" 'BEGIN {
		off = (g1 - g0) / ((gt1 - gt0) / 1e9); fwd = (s1 - s0) / ((st1 - st0) / 1e9)
		busy = (b1 - b0) / ((b1 - b0) + (i1 - i0)); lbusy = (lb1 - lb0) / ((lb1 - lb0) + (li1 - li0))
		ppc = busy > 0.01 ? sprintf("%.0f", fwd / busy) : "null"
		if (target == "direct") ppc = "null"
		printf "{\"label\":\"%s\",\"target\":\"%s\",\"streams\":%d,\"rate_req\":%d,", label, target, n, rate
		printf "\"offered_pps\":%.0f,\"fwd_pps\":%.0f,\"loss_pct\":%.3f,\"seq_gaps\":%d,", off, fwd, off ? 100 * (1 - fwd / off) : 0, q1 - q0
		printf "\"sut_core_busy\":%.3f,\"load_core_busy\":%.3f,\"pps_per_core\":%s,", busy, lbusy, ppc
		printf "\"drop_send\":%d,\"rss_per_1000_sessions_kb\":%s,\"date\":\"%s\"}\n", ds, mem, date
	}' | tee -a "$JSONL"
}

# ---- memory per call (RSS delta per 1000 sessions = 1000 calls, 2 streams each) ----
mem_rows() {
	local pid out=$TMP/mem.out before after
	taskset -c $SUT_CPU "$TMP/ours" -n 2000 -T 1 -a 127.0.1.2 -s $SINK_IP -p $SINK_PORT \
		-f "$TMP/mem.ports" -t 60 >"$out" 2>/dev/null &
	pid=$!; PIDS+=("$pid")
	wait_line "$out" READY 60
	kill "$pid"; wait "$pid" 2>/dev/null || true; PIDS=()
	sed -n 's/^MEM sessions=\([0-9]*\) .*rss_before_kb=\([0-9]*\) rss_after_kb=\([0-9]*\) per_1000_kb=\([0-9-]*\).*/{"label":"mem","target":"ours","sessions":\1,"rss_before_kb":\2,"rss_after_kb":\3,"rss_per_1000_sessions_kb":\4}/p' \
		"$out" | tee -a "$JSONL"
	if [ "$RTPENGINE" = 1 ]; then
		before=$(rtpe_rss)
		python3 "$REF/rtpengine/ng_client.py" --ng $NG setup --calls 1000 --portfile "$TMP/mem.ports" \
			--tag mem$RANDOM --sink $SINK_IP:$SINK_PORT >/dev/null
		sleep 0.5
		after=$(rtpe_rss)
		echo "{\"label\":\"mem\",\"target\":\"rtpengine\",\"sessions\":1000,\"rss_before_kb\":$before,\"rss_after_kb\":$after,\"rss_per_1000_sessions_kb\":$((after - before))}" | tee -a "$JSONL"
		# those calls stay until rtpengine stops: measured last
	fi
}

# ---- the run ----
T0=$(date +%s)
[ "$RTPENGINE" = 1 ] && rtpe_start && echo "rtpengine $(rtpengine --version 2>&1 | head -1) pid $RTPE_PID"
echo "targets: $TARGETS$([ "$RTPENGINE" = 1 ] && echo ' rtpengine') -> $JSONL"
for rep in $(seq 1 "$REPS"); do
	measure "direct-max-r$rep" direct 1000 0
	for n in $MAXN; do
		for t in $TARGETS; do measure "max-r$rep" "$t" "$n" 0; done
		# rtpengine at max rate: its flood protection stops reading the
		# sockets (bench-ref README), so it is measured paced only
	done
	for n in $PACED; do
		for t in $TARGETS; do measure "${RATE}pps-r$rep" "$t" "$n" $((n * RATE)); done
		[ "$RTPENGINE" = 1 ] && measure "${RATE}pps-r$rep" rtpengine "$n" $((n * RATE))
	done
done
mem_rows
[ "$RTPENGINE" = 1 ] && echo "rtpengine flood-protection log lines: $(grep -c 'queue exceeded' "$TMP/rtpengine.log" || true)"
python3 "$HERE/table.py" "$JSONL" | tee "$MD"
echo "done in $(($(date +%s) - T0)) s -> $JSONL $MD"
