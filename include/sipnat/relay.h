/* relay: the UDP media relay (RTP/RTCP) on N libuv loops.
 *
 * Threads.  relay_start() starts N relay threads, each owning one uv loop
 * with a mailbox (mbox) and a sweeper timer.  Every [any] function may be
 * called from any thread (in practice the SIP thread); it either finishes
 * synchronously under one short mutex (session table + port pool) or posts a
 * message to the loop that owns the session (sid % N) and returns.  All
 * streams of one session live on that one loop, so the packet path takes no
 * lock and allocates nothing.  Messages to one session are applied in the
 * order the calls returned.
 *
 * Sides and sockets.  A session has two sides, 0 (A) and 1 (B), and one
 * stream per (side, m-line).  The stream of side X is the relay socket pair
 * that party X talks to: X sends its media to it, and the relay sends media
 * to X from it (symmetric RTP, RFC 4961).  So the address returned by
 * relay_stream_alloc(side X) is the one to write into the SDP that is
 * forwarded TO party X (the offer goes to B carrying side B's address; the
 * answer goes back to A carrying side A's address), and
 * relay_stream_remote(side X) takes X's own SDP and signalling source.
 * A packet received on side A's RTP socket leaves through side B's RTP
 * socket towards B's current remote, and vice versa; RTCP likewise.
 *
 * Where the relay sends, and whom it believes (RTP Bleed defence):
 *  - Side not flagged RELAY_NATED: media goes to the SDP address (RTCP to
 *    the SDP port + 1, RFC 3550 §11, or to the RTP port with
 *    RELAY_RTCP_MUX, RFC 5761), and only packets whose source IP equals the
 *    SDP IP are accepted (any source port: such a party may send from
 *    another port than it receives on).
 *  - Side flagged RELAY_NATED (symmetric latching, RFC 7362 §4.1): nothing
 *    is sent to it until it has sent a packet.  The first packet on a socket
 *    whose source IP equals the IP the party signalled from (signal_src)
 *    latches that socket to the exact source IP:port; from then on only that
 *    IP:port is accepted and replies go there.  A packet from the same IP
 *    but another port re-latches only after relatch_silence_ms without any
 *    packet from the latched address (a NAT rebinding).  A different IP is
 *    never latched mid-call.  A new relay_stream_remote() that changes the
 *    expected IP forgets the latch.
 *  - Every refused packet is dropped and counted (dropped_foreign).  Packets
 *    that cannot be forwarded yet (the other side has no stream, no remote,
 *    is on hold or, NATed, has not latched) are dropped and counted
 *    (dropped_no_remote); the relay never buffers media.
 *
 * Ports.  The pool is [port_min, port_max] in pairs (even RTP, odd RTCP,
 * RFC 3550 §11).  An rtcp-mux stream binds only the even port; the odd port
 * of its pair stays reserved (not bound) until the stream is freed, which
 * keeps the pool arithmetic trivial.  A port the kernel refuses
 * (EADDRINUSE: bound by someone else) is skipped and the next pair tried.
 * Ports return to the pool only after libuv has closed their handles.
 *
 * Errors: functions return 0 or a negative errno.
 */
#ifndef SIPNAT_RELAY_H
#define SIPNAT_RELAY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define RELAY_SIDE_A 0
#define RELAY_SIDE_B 1

#define RELAY_THREADS_MAX 256

/* Configuration, copied by relay_start().  Empty strings mean "unset". */
struct relay_config {
	unsigned threads;            /* relay loops; 0 = number of online CPUs */
	uint16_t port_min, port_max; /* inclusive; at least one even/odd pair */
	unsigned timeout_sec;        /* media inactivity before RELAY_EV_TIMEOUT; 0 = never */
	unsigned relatch_silence_ms; /* see "symmetric latching" above */
	char addr4[64];              /* IPv4 literal reported in relay_addr; "" = no IPv4 */
	char addr6[64];              /* IPv6 literal reported in relay_addr; "" = no IPv6 */
	char bind4[64];              /* IPv4 literal to bind; "" = 0.0.0.0 */
	char bind6[64];              /* IPv6 literal to bind; "" = :: (IPV6_V6ONLY) */
};

/* Where a party must send: public address (addr4/addr6) and our ports.
 * With rtcp-mux, rtcp equals rtp. */
struct relay_addr {
	struct sockaddr_storage rtp, rtcp;
};

/* Flags for relay_stream_remote(). */
#define RELAY_NATED    0x1u /* the party is behind NAT: latch (see above) */
#define RELAY_RTCP_MUX 0x2u /* send RTCP to this party on its RTP port (RFC 5761) */

enum relay_event_type {
	/* a NATed socket latched or re-latched: side, mline, component, addr */
	RELAY_EV_LATCHED = 1,
	/* RELAY_EV_TIMEOUT: no packet accepted on any stream of the session
	 * for timeout_sec, counted from the last accepted packet or, if none
	 * came since, from relay_session_open() or the last
	 * relay_session_rearm() (so a call whose media never arrives, or a
	 * session nobody closed, is reported too).  Sent once; re-armed if
	 * media resumes or by relay_session_rearm().  The relay does not close the session: the
	 * SIP side decides (BYE, then relay_session_close()).  Checked every
	 * 0.5 s, so it fires up to 0.5 s late. */
	RELAY_EV_TIMEOUT,
	RELAY_EV_STATS,  /* answer to relay_session_query(): streams */
	RELAY_EV_CLOSED, /* the session is gone, ports freed: final streams */
};

/* Per-stream figures; "in" counts what the party sent us and we accepted,
 * "out" what we sent to the party. */
struct relay_stream_stats {
	int side, mline, family;
	bool rtcp_mux;                /* socket allocated as mux */
	uint16_t rtp_port, rtcp_port; /* our local ports; rtcp_port == rtp_port for mux */
	uint64_t packets_in, bytes_in;
	uint64_t packets_out, bytes_out;
	uint64_t dropped_foreign;   /* refused source */
	uint64_t dropped_no_remote; /* accepted, but nowhere to forward */
	/* Latched source per socket (RTP, RTCP); ss_family AF_UNSPEC if none. */
	struct sockaddr_storage latched_rtp, latched_rtcp;
	/* RTCP quality: what this side's party reported (RFC 3550 §6.4) about
	 * the media it RECEIVES, i.e. the other side's media after the relay.
	 * Read from the SR/RR report blocks of every accepted RTCP datagram, on
	 * the RTCP socket or, by the RFC 5761 §4 packet-type rule, on the RTP
	 * socket.  A datagram that is not well-formed RTCP (see rtcp.h; this
	 * includes SRTCP, whose blocks are encrypted) is forwarded as usual but
	 * not read, and counted in rtcp_unparsed.  With several blocks in one
	 * datagram (several sources) the "last" values are the last block's.
	 * All zero until the first report. */
	uint64_t rtcp_reports;      /* report blocks read */
	uint64_t rtcp_unparsed;     /* RTCP datagrams not read (see above) */
	uint8_t rtcp_fraction_lost; /* last "fraction lost", in 1/256 */
	int32_t rtcp_cum_lost;      /* last "cumulative number of packets lost" */
	uint32_t rtcp_jitter_last;  /* interarrival jitter, RTP timestamp units */
	uint32_t rtcp_jitter_max;   /* largest one seen in this stream's reports */
	/* The two jitters in ms.  The relay reads no SDP, so the clock is that
	 * of the static payload type (RFC 3551 §6) of the RTP this party last
	 * received through the relay when the report came, and 8000 Hz when
	 * that payload type is dynamic or none was seen: right for G.711,
	 * G.722, G.729; for a dynamic 48 kHz codec (Opus) the ms figure is 6x
	 * too high.  rtcp_clock_hz says which clock was used. */
	unsigned rtcp_clock_hz;
	double rtcp_jitter_last_ms, rtcp_jitter_max_ms;
};

/* Event data is borrowed: valid only until the callback returns. */
struct relay_event {
	enum relay_event_type type;
	uint64_t sid;
	/* RELAY_EV_LATCHED */
	int side, mline;
	int component; /* 1 = RTP socket, 2 = RTCP socket */
	const struct sockaddr *addr;
	/* RELAY_EV_STATS, RELAY_EV_CLOSED (nstreams may be 0) */
	unsigned nstreams;
	const struct relay_stream_stats *streams;
};

/* [loop] Called ON A RELAY LOOP THREAD, never on the caller's thread, also
 * from inside relay_stop() for the sessions it closes.  It must not block and
 * must not call relay_stop(); it may call the other relay_* functions.  It
 * must copy whatever it keeps (typically into a su_msg posted to the SIP
 * thread).  Several loops may call it at the same time. */
typedef void relay_event_f(void *arg, const struct relay_event *ev);

/* Process-wide counters, summed over loops.  Packet counters are written by
 * their loop only and read with relaxed atomics, so a read is a consistent
 * value per field but not a snapshot across fields. */
struct relay_counters {
	uint64_t rx_packets, rx_bytes;   /* every datagram read */
	uint64_t fwd_packets, fwd_bytes; /* forwarded */
	uint64_t dropped_foreign;        /* refused source address */
	uint64_t dropped_no_remote;      /* unknown destination / source side not set up */
	uint64_t dropped_send;           /* uv_udp_try_send() failed (EAGAIN, ...) */
	uint64_t dropped_error;          /* read errors, truncated datagrams */
	uint64_t pool_exhausted;         /* relay_stream_alloc() -> -ENOSPC */
	uint64_t ports_skipped;          /* pairs skipped because bind() said EADDRINUSE */
	uint64_t sessions;               /* currently open (until RELAY_EV_CLOSED) */
	uint64_t port_pairs_used;        /* currently reserved pairs */
	uint64_t port_pairs_total;
	uint64_t loop_lag_max_ns; /* the latest lateness of the busiest loop's 0.5 s tick */
};

struct relay;

/* [any] Start the loops.  *rp is set only on success; the relay owns a copy
 * of c.  on_event may be NULL (events are then discarded).  Returns 0,
 * -EINVAL (bad config), -ENOMEM, or a libuv/pthread error. */
int relay_start(struct relay **rp, const struct relay_config *c, relay_event_f *on_event,
                void *arg);

/* [any, not a loop thread] Close every open session (each emits
 * RELAY_EV_CLOSED), stop and join the threads, free everything.  No other
 * relay_* call may run concurrently with it or start after it.  NULL is a
 * no-op. */
void relay_stop(struct relay *r);

/* [any] New session on loop sid % N.  *sid is never 0. */
int relay_session_open(struct relay *r, uint64_t *sid);

/* [any] SYNCHRONOUS.  Reserve a port pair, socket()+bind() here, hand the
 * sockets to the session's loop (which adopts them with uv_udp_open(); early
 * datagrams wait in the kernel queue).  side is RELAY_SIDE_A/B, mline >= 0,
 * family AF_INET or AF_INET6.  *out is set on success.
 * The same (sid, side, mline) again returns the same ports (a re-INVITE keeps
 * its ports), whatever rtcp_mux says now, unless that would need a port that
 * was never bound: family differs, or the stream was allocated mux and now
 * rtcp_mux is false, both -EEXIST (allocate without mux when unsure and use
 * RELAY_RTCP_MUX in relay_stream_remote() once the answer says so).
 * Errors: -ENOENT (no such session), -EINVAL, -EAFNOSUPPORT (no public
 * address for family), -ENOSPC (pool exhausted), -EEXIST, socket errors. */
int relay_stream_alloc(struct relay *r, uint64_t sid, int side, int mline, int family,
                       bool rtcp_mux, struct relay_addr *out);

/* [any] async.  Tell the relay where party `side` receives media for this
 * m-line and where it signalled from.  sdp_addr: the RTP address from its
 * SDP; NULL, an unspecified address (0.0.0.0, ::) or port 0 mean hold (the
 * relay stops sending to it; latches and the expected IP are kept).
 * signal_src: source of its SIP request/response (port ignored); required
 * with RELAY_NATED.  flags: RELAY_NATED, RELAY_RTCP_MUX.  May be called
 * again (re-INVITE).  Errors: -ENOENT (session or stream not allocated),
 * -EINVAL, -EAFNOSUPPORT (address family differs from the stream's). */
int relay_stream_remote(struct relay *r, uint64_t sid, int side, int mline,
                        const struct sockaddr *sdp_addr, const struct sockaddr *signal_src,
                        unsigned flags);

/* [any] async.  Emit RELAY_EV_STATS for the session (after every earlier
 * call on it has been applied, so it doubles as a barrier). -ENOENT if
 * unknown. */
int relay_session_query(struct relay *r, uint64_t sid);

/* [any] async.  The media timeout counts again from now, and may be
 * reported again: for a call answered after ringing longer than the
 * timeout, whose media is due from the answer on.  -ENOENT if unknown. */
int relay_session_rearm(struct relay *r, uint64_t sid);

/* [any] async.  Close the session: the sid is unknown to every call from now
 * on; RELAY_EV_CLOSED with final stats follows once the sockets are closed
 * and the ports are back in the pool.  -ENOENT if unknown. */
int relay_session_close(struct relay *r, uint64_t sid);

/* [any] Sum of the per-loop counters. */
void relay_get_counters(struct relay *r, struct relay_counters *out);

/* [any] Number of loops actually started. */
unsigned relay_threads(const struct relay *r);

#endif
