# shellcheck shell=sh
# sdptrace.sh: the SDP a sipp received, read from its message trace
# (-trace_msg), for the media tests.  Sourced after lib.sh or natlib.sh.
#
# The test defines received_sdp NAME FIRSTLINE-ERE (where NAME's trace is),
# usually as:   tr -d '\r' 2>/dev/null <TRACE | sdp_audio_addrs "$2"

# sdp_audio_addrs FIRSTLINE-ERE: from a trace on stdin (CRs removed),
# "IP PORT" of the audio stream of every received message whose first
# line matches, one line each, in order.
sdp_audio_addrs() {
	awk -v want="$1" '
		function flush() { if (take && ip != "" && port != "") print ip, port
			take = 0; ip = ""; port = "" }
		/^-----/ { flush(); rx = 0; next }
		/message received/ { rx = 1; first = 1; next }
		rx && first && NF { first = 0; take = ($0 ~ want); next }
		rx && /^c=IN IP[46] / { ip = $3 }
		rx && /^m=audio / { port = $2 }
		END { flush() }'
}

# sdp_of NAME ERE: the first "IP PORT" of received_sdp NAME ERE, waited
# for at most SDP_WAIT seconds (default 10); status 1 if none came.
sdp_of() {
	_i=0
	while [ $_i -lt $((${SDP_WAIT:-10} * 10)) ]; do
		_s=$(received_sdp "$1" "$2" | head -n 1)
		if [ -n "$_s" ]; then
			echo "$_s"
			return 0
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}
