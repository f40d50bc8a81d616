/* relay loops: one thread per uv loop, the packet path, the sweeper.
 *
 * Everything in this file runs on the loop thread that owns the session,
 * except relay__loop_init/run/finish (called by relay_start/relay_stop before
 * the thread runs or after it was joined).
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay_int.h"
#include "sipnat/log.h"
#include "sipnat/rtcp.h"

#define SWEEP_MS 500

static inline void ctr_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

static void emit(struct relay *r, const struct relay_event *ev)
{
	if (r->on_event)
		r->on_event(r->arg, ev);
}

/* ---- address helpers (no port for ip_eq) ---- */

static inline bool ip_eq(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	              &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static inline bool addr_eq(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (!ip_eq(a, b))
		return false;
	if (b->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_port ==
		       ((const struct sockaddr_in *)b)->sin_port;
	return ((const struct sockaddr_in6 *)a)->sin6_port ==
	       ((const struct sockaddr_in6 *)b)->sin6_port;
}

static void copy_sa(struct sockaddr_storage *dst, const struct sockaddr *sa)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst, sa,
	       sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
}

static void set_port(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

static unsigned get_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* Recompute where this side's party gets its media, per outgoing socket.
 * Called whenever an input changes (adopt, remote, latch, close), so that
 * the packet path only tests dst_ok[]. */
static void update_dst(struct relay_stream *st)
{
	int k;

	for (k = 0; k < 2; k++) {
		st->dst_ok[k] = false;
		if (!st->have_remote || st->hold || st->sk[k].state != RELAY_SOCK_OPEN)
			continue;
		if (k == 1 && st->rmux)
			continue; /* everything leaves through the RTP socket */
		if (st->nated) {
			/* with rtcp-mux the RTP socket's latch covers both */
			if (!st->sk[k].lat_ok)
				continue;
			st->dst[k] = st->sk[k].lat;
		} else {
			st->dst[k] = st->sdp;
			if (k == 1)
				set_port(&st->dst[1], get_port(&st->sdp) + 1);
		}
		st->dst_ok[k] = true;
	}
}

static void emit_latched(struct relay_stream *st, int k)
{
	struct relay_event ev = {
	        .type = RELAY_EV_LATCHED,
	        .sid = st->sess->sid,
	        .side = st->side,
	        .mline = st->mline,
	        .component = k + 1,
	        .addr = (const struct sockaddr *)&st->sk[k].lat,
	};

	emit(st->sess->loop->r, &ev);
}

/* ---- the packet path ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct relay_loop *l = h->loop->data;

	(void)suggested;
	buf->base = l->rxbuf;
	buf->len = l->rxlen;
}

/* Is this datagram, received on an RTP socket, RTCP?  RFC 5761 §4: RTCP
 * packet types 192..223 occupy the second octet where RTP has M+PT, and RTP
 * payload types 64..95 are not used with mux for that reason. */
static inline bool looks_rtcp(const uint8_t *p, size_t n)
{
	return n >= 8 && (p[0] & 0xc0) == 0x80 && p[1] >= 192 && p[1] <= 223;
}

/* Clock assumed for jitter when the payload type tells nothing (see
 * relay.h: G.711 and friends). */
#define RTCP_DEFAULT_CLOCK 8000

/* Keep what the party reported in an accepted RTCP datagram.  Runs only for
 * RTCP (a few packets per stream every 5 s, RFC 3550 §6.2), reads the
 * datagram in place and keeps the blocks on the stack: no allocation. */
static void rtcp_note(struct relay_stream *st, const uint8_t *p, size_t n)
{
	struct rtcp_block b[RTCP_RC_MAX];
	const struct relay_stream *peer = st->peer;
	unsigned nb = 0, i, stored, clk;

	if (rtcp_parse_reports(p, n, b, RTCP_RC_MAX, &nb) < 0) {
		st->rtcp_unparsed++;
		return;
	}
	if (!nb)
		return;
	stored = nb < RTCP_RC_MAX ? nb : RTCP_RC_MAX;
	for (i = 0; i < stored; i++)
		if (b[i].jitter > st->rtcp_jit_max)
			st->rtcp_jit_max = b[i].jitter;
	st->rtcp_reports += nb;
	st->rtcp_frac = b[stored - 1].fraction_lost;
	st->rtcp_cum = b[stored - 1].cumulative_lost;
	st->rtcp_jit_last = b[stored - 1].jitter;
	/* the reported media is what the peer side's party sent us */
	clk = peer && peer->rtp_pt1 ? rtcp_static_clock(peer->rtp_pt1 - 1u) : 0;
	st->rtcp_clock = clk ? clk : RTCP_DEFAULT_CLOCK;
}

/* The source test of the safe symmetric latching rule documented in
 * relay.h.  Returns true when the packet may be forwarded. */
static bool accept_src(struct relay_loop *l, struct relay_stream *st, int k,
                       const struct sockaddr *src, uint64_t now)
{
	struct relay_sock *sk = &st->sk[k];
	unsigned silence = l->r->cfg.relatch_silence_ms;

	if (!st->expect.ss_family) {
		st->dropped_no_remote++;
		ctr_add(&l->ctr.dropped_no_remote, 1);
		return false;
	}
	if (!st->nated) {
		if (ip_eq(&st->expect, src))
			return true;
	} else if (sk->lat_ok) {
		if (addr_eq(&sk->lat, src)) {
			sk->lat_last = now;
			return true;
		}
		/* Same IP, new port: a NAT rebinding, believed only after the old
		 * mapping went silent.  Anything else is an RTP Bleed probe. */
		if (ip_eq(&st->expect, src) && now - sk->lat_last >= silence) {
			copy_sa(&sk->lat, src);
			sk->lat_last = now;
			update_dst(st);
			emit_latched(st, k);
			return true;
		}
	} else if (ip_eq(&st->expect, src)) {
		copy_sa(&sk->lat, src);
		sk->lat_ok = true;
		sk->lat_last = now;
		update_dst(st);
		emit_latched(st, k);
		return true;
	}
	st->dropped_foreign++;
	ctr_add(&l->ctr.dropped_foreign, 1);
	return false;
}

/* Called by libuv for every datagram on a relay socket, on the loop thread.
 * Must not block or allocate: it runs once per media packet.  With
 * recvmmsg, a batch ends with a call carrying UV_UDP_MMSG_FREE (nread 0,
 * addr NULL), which needs nothing since the buffer is the loop's. */
static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *src,
                    unsigned flags)
{
	struct relay_stream *st = h->data;
	struct relay_loop *l = st->sess->loop;
	struct relay_stream *p;
	const uint8_t *pkt;
	uint64_t now;
	uv_buf_t out;
	bool rtcp;
	int k, c, o, rc;

	if (nread <= 0 || !src) {
		if (nread < 0)
			ctr_add(&l->ctr.dropped_error, 1);
		return;
	}
	ctr_add(&l->ctr.rx_packets, 1);
	ctr_add(&l->ctr.rx_bytes, (uint64_t)nread);
	if (flags & UV_UDP_PARTIAL) {
		ctr_add(&l->ctr.dropped_error, 1);
		return;
	}
	k = h == &st->sk[1].h;
	now = uv_now(h->loop);
	if (!accept_src(l, st, k, src, now))
		return;
	st->last_rx = now;
	st->packets_in++;
	st->bytes_in += (uint64_t)nread;

	pkt = (const uint8_t *)buf->base;
	rtcp = k == 1 || looks_rtcp(pkt, (size_t)nread);
	if (rtcp)
		rtcp_note(st, pkt, (size_t)nread);
	else if (nread >= 12 && (pkt[0] & 0xc0) == 0x80)
		st->rtp_pt1 = (uint8_t)((pkt[1] & 0x7f) + 1);

	p = st->peer;
	c = k;
	if (p && k == 0 && !p->rmux && rtcp)
		c = 1;
	o = p && p->rmux ? 0 : c;
	if (!p || !p->dst_ok[o]) {
		st->dropped_no_remote++;
		ctr_add(&l->ctr.dropped_no_remote, 1);
		return;
	}
	out = uv_buf_init(buf->base, (unsigned)nread);
	rc = uv_udp_try_send(&p->sk[o].h, &out, 1, (const struct sockaddr *)&p->dst[o]);
	if (rc < 0) {
		ctr_add(&l->ctr.dropped_send, 1);
		return;
	}
	p->packets_out++;
	p->bytes_out += (uint64_t)nread;
	ctr_add(&l->ctr.fwd_packets, 1);
	ctr_add(&l->ctr.fwd_bytes, (uint64_t)nread);
}

/* ---- session lifecycle on the loop ---- */

static void stream_stats(const struct relay_stream *st, struct relay_stream_stats *o)
{
	memset(o, 0, sizeof(*o));
	o->side = st->side;
	o->mline = st->mline;
	o->family = st->family;
	o->rtcp_mux = st->sock_mux;
	o->rtp_port = st->port;
	o->rtcp_port = st->sock_mux ? st->port : (uint16_t)(st->port + 1);
	o->packets_in = st->packets_in;
	o->bytes_in = st->bytes_in;
	o->packets_out = st->packets_out;
	o->bytes_out = st->bytes_out;
	o->dropped_foreign = st->dropped_foreign;
	o->dropped_no_remote = st->dropped_no_remote;
	if (st->sk[0].lat_ok)
		o->latched_rtp = st->sk[0].lat;
	if (st->sk[1].lat_ok)
		o->latched_rtcp = st->sk[1].lat;
	o->rtcp_reports = st->rtcp_reports;
	o->rtcp_unparsed = st->rtcp_unparsed;
	o->rtcp_fraction_lost = st->rtcp_frac;
	o->rtcp_cum_lost = st->rtcp_cum;
	o->rtcp_jitter_last = st->rtcp_jit_last;
	o->rtcp_jitter_max = st->rtcp_jit_max;
	o->rtcp_clock_hz = st->rtcp_clock;
	if (st->rtcp_clock) {
		o->rtcp_jitter_last_ms = st->rtcp_jit_last * 1000.0 / st->rtcp_clock;
		o->rtcp_jitter_max_ms = st->rtcp_jit_max * 1000.0 / st->rtcp_clock;
	}
}

/* Emit STATS or CLOSED with one entry per stream.  The array is heap memory
 * because a session has no fixed stream count; this is never on the packet
 * path.  On ENOMEM the event still goes out, with nstreams 0. */
static void collect_stats(struct relay_session *s, enum relay_event_type type,
                          struct relay_stream *list, bool ctl_list, struct relay_event *ev,
                          struct relay_stream_stats **v)
{
	struct relay_stream *st;
	unsigned n = 0, i = 0;

	*ev = (struct relay_event){.type = type, .sid = s->sid};
	*v = NULL;
	for (st = list; st; st = ctl_list ? st->ctl_next : st->loop_next)
		n++;
	if (n)
		*v = calloc(n, sizeof(**v));
	if (*v) {
		for (st = list; st; st = ctl_list ? st->ctl_next : st->loop_next)
			stream_stats(st, &(*v)[i++]);
		ev->nstreams = n;
		ev->streams = *v;
	}
}

static void emit_stats(struct relay_session *s, enum relay_event_type type,
                       struct relay_stream *list, bool ctl_list)
{
	struct relay_event ev;
	struct relay_stream_stats *v;

	collect_stats(s, type, list, ctl_list, &ev, &v);
	emit(s->loop->r, &ev);
	free(v);
}

static void session_unlink(struct relay_loop *l, struct relay_session *s)
{
	if (s->lprev)
		s->lprev->lnext = s->lnext;
	else if (l->sessions == s)
		l->sessions = s->lnext;
	if (s->lnext)
		s->lnext->lprev = s->lprev;
	s->lprev = s->lnext = NULL;
}

/* Last handle of the session closed: ports back to the pool, CLOSED out,
 * memory freed.  The session is out of the ctl table already, so its
 * ctl_streams list is ours alone now. */
static void session_finalize(struct relay_session *s)
{
	struct relay_loop *l = s->loop;
	struct relay *r = l->r;
	struct relay_stream *st, *next;
	struct relay_stream_stats *v;
	struct relay_event ev;

	/* The figures before the release, which forgets each stream's port:
	 * the call record names the relay ports. */
	collect_stats(s, RELAY_EV_CLOSED, s->ctl_streams, true, &ev, &v);
	for (st = s->ctl_streams; st; st = st->ctl_next)
		relay__pool_release(r, st);
	/* Counted out before CLOSED goes out: whoever gets the event must see
	 * the session gone from the counters too (ports and session alike). */
	atomic_fetch_sub_explicit(&r->sessions, 1, memory_order_relaxed);
	emit(r, &ev);
	free(v);
	session_unlink(l, s);
	for (st = s->ctl_streams; st; st = next) {
		next = st->ctl_next;
		free(st);
	}
	free(s);
}

/* close_cb of a relay socket: the only place its memory and port may go. */
static void on_sock_closed(uv_handle_t *h)
{
	struct relay_stream *st = h->data;
	struct relay_session *s = st->sess;

	st->sk[h == (uv_handle_t *)&st->sk[1].h].state = RELAY_SOCK_CLOSED;
	if (--s->pending_close == 0)
		session_finalize(s);
}

static void session_close(struct relay_session *s)
{
	struct relay_stream *st;
	int k;

	if (s->closing)
		return;
	s->closing = true;
	for (st = s->ctl_streams; st; st = st->ctl_next) {
		st->peer = NULL;
		for (k = 0; k < 2; k++) {
			struct relay_sock *sk = &st->sk[k];

			st->dst_ok[k] = false;
			if (sk->state == RELAY_SOCK_OPEN || sk->state == RELAY_SOCK_DEAD) {
				sk->state = RELAY_SOCK_CLOSING;
				s->pending_close++;
				uv_close((uv_handle_t *)&sk->h, on_sock_closed);
			} else if (sk->state == RELAY_SOCK_BOUND) {
				/* never adopted: the fd is still ours */
				close(sk->fd);
				sk->fd = -1;
				sk->state = RELAY_SOCK_CLOSED;
			}
		}
	}
	if (s->pending_close == 0)
		session_finalize(s);
}

/* Hand a bound fd to libuv.  On failure the socket is unusable: DEAD when the
 * uv handle exists (session_close() must still uv_close() it), NONE when it
 * does not. */
static int sock_adopt(struct relay_loop *l, struct relay_stream *st, int k)
{
	struct relay_sock *sk = &st->sk[k];
	int err, off = 0;

	err = uv_udp_init_ex(&l->uv, &sk->h, AF_UNSPEC | UV_UDP_RECVMMSG);
	if (err) {
		close(sk->fd);
		sk->fd = -1;
		sk->state = RELAY_SOCK_NONE;
		return err;
	}
	sk->h.data = st;
	err = uv_udp_open(&sk->h, sk->fd);
	if (err) {
		close(sk->fd);
		sk->fd = -1;
		sk->state = RELAY_SOCK_DEAD;
		return err;
	}
	/* uv_udp_open() sets SO_REUSEADDR, which on Linux would let another
	 * local socket bind our port and take the media: switch it off. */
	if (setsockopt(sk->fd, SOL_SOCKET, SO_REUSEADDR, &off, sizeof(off)) < 0)
		log_warn("relay: port %u: cannot clear SO_REUSEADDR", st->port + k);
	sk->fd = -1; /* libuv owns it now and closes it in uv_close() */
	err = uv_udp_recv_start(&sk->h, on_alloc, on_recv);
	sk->state = err ? RELAY_SOCK_DEAD : RELAY_SOCK_OPEN;
	return err;
}

static void do_adopt(struct relay_loop *l, struct relay_stream *st)
{
	struct relay_session *s = st->sess;
	struct relay_stream *o;
	int k, err;

	for (k = 0; k < 2; k++) {
		if (st->sk[k].state != RELAY_SOCK_BOUND)
			continue;
		err = sock_adopt(l, st, k);
		if (err)
			log_err("relay: sid %llu port %u: cannot adopt socket: %s",
			        (unsigned long long)s->sid, st->port + k, uv_strerror(err));
	}
	st->loop_next = s->streams;
	s->streams = st;
	for (o = s->streams; o; o = o->loop_next) {
		if (o->side != st->side && o->mline == st->mline) {
			o->peer = st;
			st->peer = o;
		}
	}
	update_dst(st);
}

static void do_remote(struct relay_stream *st, const struct relay_msg *m)
{
	bool nated = m->flags & RELAY_NATED;
	int k;

	if (m->expect.ss_family &&
	    (!st->expect.ss_family || !ip_eq(&st->expect, (const struct sockaddr *)&m->expect) ||
	     nated != st->nated)) {
		/* a new party (or a new trust rule): forget what we learnt */
		st->expect = m->expect;
		for (k = 0; k < 2; k++)
			st->sk[k].lat_ok = false;
	}
	st->nated = nated;
	st->rmux = st->sock_mux || (m->flags & RELAY_RTCP_MUX);
	st->hold = m->hold;
	if (!m->hold)
		st->sdp = m->sdp;
	st->have_remote = true;
	update_dst(st);
}

static void loop_stop(struct relay_loop *l);

static void on_msg(struct mbox *mb, struct mbox_msg *mm)
{
	struct relay_loop *l = mb->data;
	struct relay_msg *m = (struct relay_msg *)((char *)mm - offsetof(struct relay_msg, link));
	struct relay_session *s = m->sess;

	switch (m->type) {
	case RELAY_MSG_OPEN:
		s->opened_at = uv_now(&l->uv);
		s->lnext = l->sessions;
		if (l->sessions)
			l->sessions->lprev = s;
		l->sessions = s;
		break;
	case RELAY_MSG_ADOPT:
		if (!s->closing)
			do_adopt(l, m->st);
		break;
	case RELAY_MSG_REMOTE:
		if (!s->closing)
			do_remote(m->st, m);
		break;
	case RELAY_MSG_QUERY:
		emit_stats(s, RELAY_EV_STATS, s->streams, false);
		break;
	case RELAY_MSG_CLOSE:
		session_close(s);
		break;
	case RELAY_MSG_REARM:
		/* The sweeper measures idleness from the newest of this and
		 * the streams' last packets. */
		s->opened_at = uv_now(&l->uv);
		s->timeout_sent = false;
		break;
	case RELAY_MSG_STOP:
		loop_stop(l);
		return; /* embedded in the loop, not heap */
	case RELAY_MSG_CALL:
		m->fn(m->arg);
		break;
	}
	free(m);
}

/* The sweeper, every SWEEP_MS on each loop:
 *  - for each session not closing, its last activity is the newest accepted
 *    packet of any stream, or the session's creation on this loop;
 *  - idle for timeout_sec -> one RELAY_EV_TIMEOUT (the relay does not close
 *    the session itself: the SIP side decides, e.g. sends BYE);
 *  - activity after a TIMEOUT re-arms it.
 * The timeout thus also fires for a call whose media never started.  The
 * tick runs also when timeout_sec is 0: how late it runs is the loop lag
 * reported in relay_get_counters(). */
static void on_sweep(uv_timer_t *t)
{
	struct relay_loop *l = t->data;
	uint64_t now = uv_now(&l->uv), tmo = (uint64_t)l->r->cfg.timeout_sec * 1000;
	uint64_t now_ns = uv_hrtime();
	struct relay_session *s, *next;
	struct relay_stream *st;

	/* Loop lag: a loop busy with packets (or starved of CPU) runs its
	 * timers late, and every packet it forwards waits as long. */
	atomic_store_explicit(&l->ctr.lag_ns,
	                      now_ns > l->sweep_due_ns ? now_ns - l->sweep_due_ns : 0,
	                      memory_order_relaxed);
	l->sweep_due_ns = now_ns + SWEEP_MS * 1000000ull;
	if (!tmo)
		return;

	for (s = l->sessions; s; s = next) {
		uint64_t last = s->opened_at;

		next = s->lnext; /* the event callback may not close synchronously, but be safe */
		if (s->closing)
			continue;
		for (st = s->streams; st; st = st->loop_next)
			if (st->last_rx > last)
				last = st->last_rx;
		if (s->timeout_sent) {
			if (last > s->idle_mark)
				s->timeout_sent = false;
			continue;
		}
		if (now - last >= tmo) {
			struct relay_event ev = {.type = RELAY_EV_TIMEOUT, .sid = s->sid};

			s->timeout_sent = true;
			s->idle_mark = last;
			emit(l->r, &ev);
		}
	}
}

void relay__msg_discard(struct relay_msg *m)
{
	/* Only reachable when a call raced relay_stop(), which the API forbids:
	 * free what we can.  fds of unadopted streams are closed with the
	 * session in loop_stop(). */
	if (m->type != RELAY_MSG_STOP)
		free(m);
}

/* STOP: close every session (each emits CLOSED), then the loop's own
 * handles; uv_run() returns once the last close callback ran. */
static void loop_stop(struct relay_loop *l)
{
	struct relay *r = l->r;
	struct relay_session *s, *next;
	struct mbox_msg *left, *n;

	for (s = l->sessions; s; s = next) {
		next = s->lnext;
		pthread_mutex_lock(&r->ctl_lock);
		if (!s->closing)
			relay__table_remove(r, s);
		pthread_mutex_unlock(&r->ctl_lock);
		session_close(s);
	}
	if (l->sweep_ok)
		uv_close((uv_handle_t *)&l->sweep, NULL);
	left = mbox_close(&l->mb, NULL);
	for (; left; left = n) {
		n = left->next;
		relay__msg_discard(
		        (struct relay_msg *)((char *)left - offsetof(struct relay_msg, link)));
	}
}

/* ---- thread plumbing ---- */

int relay__loop_init(struct relay *r, struct relay_loop *l, unsigned idx)
{
	int err;

	l->r = r;
	l->idx = idx;
	l->rxlen = (size_t)RELAY_MMSG_BATCH * RELAY_DGRAM_MAX;
	l->rxbuf = malloc(l->rxlen);
	if (!l->rxbuf)
		return -ENOMEM;
	err = uv_loop_init(&l->uv);
	if (err)
		return err;
	l->loop_ok = true;
	l->uv.data = l;
	err = mbox_init(&l->mb, &l->uv, on_msg);
	if (err)
		return err;
	l->mbox_ok = true;
	l->mb.data = l;
	err = uv_timer_init(&l->uv, &l->sweep);
	if (err)
		return err;
	l->sweep_ok = true;
	l->sweep.data = l;
	/* Also without a media timeout: the tick measures the loop's lag. */
	l->sweep_due_ns = uv_hrtime() + SWEEP_MS * 1000000ull;
	err = uv_timer_start(&l->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
	if (err)
		return err;
	l->stop_msg.type = RELAY_MSG_STOP;
	return 0;
}

static void *loop_main(void *arg)
{
	struct relay_loop *l = arg;

	uv_run(&l->uv, UV_RUN_DEFAULT);
	return NULL;
}

int relay__loop_run(struct relay_loop *l)
{
	int err = -pthread_create(&l->thread, NULL, loop_main, l);

	if (!err)
		l->thread_ok = true;
	return err;
}

void relay__loop_finish(struct relay_loop *l)
{
	if (l->thread_ok) {
		if (mbox_post(&l->mb, &l->stop_msg.link) == 0)
			pthread_join(l->thread, NULL);
		else
			log_err("relay: loop %u: cannot post stop", l->idx);
		l->thread_ok = false;
	} else if (l->loop_ok) {
		/* never ran in a thread: close in place on this thread */
		if (l->mbox_ok)
			loop_stop(l);
		else if (l->sweep_ok)
			uv_close((uv_handle_t *)&l->sweep, NULL);
		uv_run(&l->uv, UV_RUN_DEFAULT);
	}
	if (l->loop_ok && uv_loop_close(&l->uv) != 0)
		log_err("relay: loop %u: handles still open at stop", l->idx);
	l->loop_ok = false;
	free(l->rxbuf);
	l->rxbuf = NULL;
}
