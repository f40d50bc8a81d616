/* relay internals shared by relay.c (API, session table, port pool) and
 * relay_loop.c (loop threads, packet path).  Not installed.
 *
 * Ownership and locking, field by field:
 *  [ctl]   protected by relay.ctl_lock (any thread)
 *  [const] written once under ctl_lock before the stream/session is first
 *          posted to its loop, read-only afterwards (the mailbox mutex gives
 *          the happens-before)
 *  [loop]  touched only by the owning loop thread
 */
#ifndef SIPNAT_RELAY_INT_H
#define SIPNAT_RELAY_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "sipnat/mbox.h"
#include "sipnat/relay.h"

#define RELAY_MMSG_BATCH 8      /* datagrams per recvmmsg() */
#define RELAY_DGRAM_MAX  65536u /* libuv's per-datagram slot with recvmmsg */

enum relay_msg_type {
	RELAY_MSG_OPEN,
	RELAY_MSG_ADOPT,
	RELAY_MSG_REMOTE,
	RELAY_MSG_QUERY,
	RELAY_MSG_CLOSE,
	RELAY_MSG_REARM,
	RELAY_MSG_STOP,
	RELAY_MSG_CALL, /* run fn(arg) on the loop: other modules' work (turn) */
};

struct relay_session;
struct relay_stream;

/* One request for a loop; heap-allocated by the caller thread (except the
 * loop's own STOP message) and freed by the loop. */
struct relay_msg {
	struct mbox_msg link;
	enum relay_msg_type type;
	struct relay_session *sess;
	struct relay_stream *st;
	/* RELAY_MSG_REMOTE */
	bool hold;
	unsigned flags;
	struct sockaddr_storage sdp;    /* valid unless hold */
	struct sockaddr_storage expect; /* IP to accept; AF_UNSPEC = keep the current one */
	/* RELAY_MSG_CALL */
	void (*fn)(void *arg);
	void *arg;
};

enum relay_sock_state {
	RELAY_SOCK_NONE = 0, /* no socket (mux RTCP, or failed) */
	RELAY_SOCK_BOUND,    /* fd bound, not yet adopted by the loop */
	RELAY_SOCK_OPEN,     /* uv handle reading */
	RELAY_SOCK_DEAD,     /* uv handle initialised but unusable; still needs uv_close() */
	RELAY_SOCK_CLOSING,  /* uv_close() issued */
	RELAY_SOCK_CLOSED,
};

struct relay_sock {
	uv_udp_t h;                  /* h.data = the stream: the one lookup per packet */
	int fd;                      /* [const] until adopted, then libuv owns it */
	enum relay_sock_state state; /* [loop] after the ADOPT message */
	/* [loop] latch (NATed side only) */
	bool lat_ok;
	struct sockaddr_storage lat;
	uint64_t lat_last; /* uv_now() of the last packet from lat */
};

struct relay_stream {
	struct relay_stream *ctl_next;  /* [ctl] session's list of allocated streams */
	struct relay_stream *loop_next; /* [loop] session's list of adopted streams */
	struct relay_session *sess;     /* [const] */
	int side, mline, family;        /* [const] */
	bool sock_mux;                  /* [const] only the RTP socket exists */
	uint16_t port;                  /* [const] even port */
	struct relay_sock sk[2];        /* 0 RTP, 1 RTCP */

	/* everything below: [loop] */
	struct relay_stream *peer; /* same mline, other side, once both adopted */
	bool have_remote, nated, hold, rmux;
	struct sockaddr_storage expect; /* accepted source IP (port ignored) */
	struct sockaddr_storage sdp;    /* SDP RTP address (non-NATed destination) */
	/* Precomputed destination per outgoing socket, so the packet path is a
	 * flag test and a pointer. */
	bool dst_ok[2];
	struct sockaddr_storage dst[2];
	uint64_t last_rx;
	uint64_t packets_in, bytes_in, packets_out, bytes_out;
	uint64_t dropped_foreign, dropped_no_remote;
	/* RTCP reports of this side's party (see relay_stream_stats) */
	uint8_t rtp_pt1; /* payload type + 1 of the last RTP received; 0 = none */
	uint8_t rtcp_frac;
	int32_t rtcp_cum;
	uint32_t rtcp_jit_last, rtcp_jit_max;
	unsigned rtcp_clock; /* Hz; 0 until the first report */
	uint64_t rtcp_reports, rtcp_unparsed;
};

struct relay_loop;

struct relay_session {
	uint64_t sid;                     /* [const] */
	struct relay_loop *loop;          /* [const] */
	struct relay_session *hnext;      /* [ctl] hash chain */
	struct relay_stream *ctl_streams; /* [ctl]; [loop] once out of the table */
	/* [loop] */
	struct relay_session *lprev, *lnext;
	struct relay_stream *streams;
	uint64_t opened_at;
	uint64_t idle_mark; /* last activity when TIMEOUT was sent */
	bool timeout_sent;
	bool closing;
	unsigned pending_close;
};

/* Single-writer counters: the owning loop stores load+n with relaxed order,
 * which compiles to plain moves (no lock prefix) yet is race-free for the
 * readers in relay_get_counters(). */
struct relay_loop_ctr {
	_Atomic uint64_t rx_packets, rx_bytes, fwd_packets, fwd_bytes;
	_Atomic uint64_t dropped_foreign, dropped_no_remote, dropped_send, dropped_error;
	_Atomic uint64_t lag_ns; /* how late the last sweeper tick ran */
};

struct relay_loop {
	struct relay_loop_ctr ctr; /* first: the struct is cache-line aligned */
	struct relay *r;
	unsigned idx;
	uv_loop_t uv;
	struct mbox mb;
	uv_timer_t sweep;
	uint64_t sweep_due_ns; /* uv_hrtime() at which the next tick is due */
	pthread_t thread;
	bool loop_ok, mbox_ok, sweep_ok, thread_ok;
	char *rxbuf; /* RELAY_MMSG_BATCH * RELAY_DGRAM_MAX, reused for every read */
	size_t rxlen;
	struct relay_session *sessions; /* [loop] */
	struct relay_msg stop_msg;
	char pad_[64];
} __attribute__((aligned(64)));

struct relay {
	struct relay_config cfg;
	relay_event_f *on_event;
	void *arg;
	struct sockaddr_storage pub4, pub6, bind4, bind6; /* ports 0 */
	unsigned nloops;
	struct relay_loop *loops;

	pthread_mutex_t ctl_lock;
	/* [ctl] session table: chained hash on sid */
	struct relay_session **htab;
	size_t hsize, hcount;
	uint64_t next_sid;
	/* [ctl] port pool: one byte per even/odd pair */
	uint16_t pool_base;
	unsigned npairs, cursor, pairs_used;
	uint8_t *pair_used;

	_Atomic uint64_t pool_exhausted, ports_skipped, sessions;
};

/* relay_loop.c */
int relay__loop_init(struct relay *r, struct relay_loop *l, unsigned idx);
int relay__loop_run(struct relay_loop *l);     /* starts the thread */
void relay__loop_finish(struct relay_loop *l); /* stop+join, or close in place; frees */
void relay__msg_discard(struct relay_msg *m);

/* relay.c */
/* For the TURN server (turn.c), which runs on the relay's loops and takes
 * its relayed ports from the same pool as the media streams:
 *  relay__loop_call: [any] run fn(arg) on loop idx (< relay_threads()), in
 *    posting order; -ESHUTDOWN once the loop is stopping (fn never runs).
 *  relay__loop_uv: the loop's uv_loop_t, for handles created BY fn.
 *  relay__port_take: [any] reserve one pair and bind a UDP socket of
 *    family on the even port into fd[0] and, with both, one on the odd port
 *    into fd[1] (else the odd port stays reserved but unbound, like an
 *    rtcp-mux stream).  The fds (non-blocking) belong to the caller; *pub =
 *    public address with the even port ([relay] address).  -EAFNOSUPPORT
 *    without an address of that family, -ENOSPC when the pool is exhausted
 *    (counted as for streams).
 *  relay__port_release: [any] give the pair back once the socket is closed. */
int relay__loop_call(struct relay *r, unsigned idx, void (*fn)(void *arg), void *arg);
uv_loop_t *relay__loop_uv(struct relay *r, unsigned idx);
int relay__port_take(struct relay *r, int family, bool both, int fd[2], uint16_t *port,
                     struct sockaddr_storage *pub);
void relay__port_release(struct relay *r, uint16_t port);
void relay__pool_release(struct relay *r, struct relay_stream *st); /* takes ctl_lock */
void relay__table_remove(struct relay *r, struct relay_session *s); /* caller holds ctl_lock */

#endif
