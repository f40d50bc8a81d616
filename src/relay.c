/* relay: public API, session table and port pool (the [any] side).
 *
 * Everything here runs on the caller's thread under relay.ctl_lock, which
 * protects the session table and the port pool and nothing the packet path
 * touches.  Messages to a loop are posted while still holding ctl_lock, so
 * that the order of messages for one session is the order of the calls, and
 * a session removed from the table can receive no further message.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay_int.h"
#include "sipnat/log.h"

#define HTAB_MIN 256

static size_t hslot(const struct relay *r, uint64_t sid)
{
	/* sids are sequential: a multiplicative hash spreads them anyway */
	return (size_t)((sid * 0x9E3779B97F4A7C15ull) >> 32) & (r->hsize - 1);
}

static struct relay_session *table_find(struct relay *r, uint64_t sid)
{
	struct relay_session *s;

	for (s = r->htab[hslot(r, sid)]; s; s = s->hnext)
		if (s->sid == sid)
			return s;
	return NULL;
}

static void table_grow(struct relay *r)
{
	size_t nsize = r->hsize * 2, i;
	struct relay_session **n = calloc(nsize, sizeof(*n));

	if (!n)
		return; /* keep the longer chains; still correct */
	for (i = 0; i < r->hsize; i++) {
		struct relay_session *s = r->htab[i], *next;

		for (; s; s = next) {
			size_t j = (size_t)((s->sid * 0x9E3779B97F4A7C15ull) >> 32) & (nsize - 1);

			next = s->hnext;
			s->hnext = n[j];
			n[j] = s;
		}
	}
	free(r->htab);
	r->htab = n;
	r->hsize = nsize;
}

static void table_insert(struct relay *r, struct relay_session *s)
{
	size_t i;

	if (r->hcount >= r->hsize)
		table_grow(r);
	i = hslot(r, s->sid);
	s->hnext = r->htab[i];
	r->htab[i] = s;
	r->hcount++;
}

void relay__table_remove(struct relay *r, struct relay_session *s)
{
	struct relay_session **pp = &r->htab[hslot(r, s->sid)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == s) {
			*pp = s->hnext;
			s->hnext = NULL;
			r->hcount--;
			return;
		}
	}
}

/* ---- port pool ---- */

static int bind_one(const struct relay *r, int family, uint16_t port, int *fdp)
{
	struct sockaddr_storage ss = family == AF_INET ? r->bind4 : r->bind6;
	socklen_t len;
	int fd, one = 1;

	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (family == AF_INET6) {
		/* one family per socket: v4-mapped sources would defeat the
		 * address comparisons of the latch */
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
			goto fail;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
		len = sizeof(struct sockaddr_in6);
	} else {
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
		len = sizeof(struct sockaddr_in);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		goto fail;
	*fdp = fd;
	return 0;
fail:
	one = -errno;
	close(fd);
	return one;
}

/* Caller holds ctl_lock.  Picks the next free pair after the cursor, so that
 * a pair just released is the last to be reused (stray packets of the old
 * call then hit nobody's stream). */
static int pool_take(struct relay *r, struct relay_stream *st)
{
	unsigned n, i;
	int err;

	for (n = 0; n < r->npairs; n++) {
		i = (r->cursor + n) % r->npairs;
		if (r->pair_used[i])
			continue;
		uint16_t port = (uint16_t)(r->pool_base + 2 * i);

		err = bind_one(r, st->family, port, &st->sk[0].fd);
		if (err == 0 && !st->sock_mux) {
			err = bind_one(r, st->family, (uint16_t)(port + 1), &st->sk[1].fd);
			if (err) {
				close(st->sk[0].fd);
				st->sk[0].fd = -1;
			}
		}
		if (err == -EADDRINUSE) {
			atomic_fetch_add_explicit(&r->ports_skipped, 1, memory_order_relaxed);
			continue;
		}
		if (err)
			return err;
		r->pair_used[i] = 1;
		r->pairs_used++;
		r->cursor = (i + 1) % r->npairs;
		st->port = port;
		st->sk[0].state = RELAY_SOCK_BOUND;
		st->sk[1].state = st->sock_mux ? RELAY_SOCK_NONE : RELAY_SOCK_BOUND;
		return 0;
	}
	atomic_fetch_add_explicit(&r->pool_exhausted, 1, memory_order_relaxed);
	return -ENOSPC;
}

void relay__pool_release(struct relay *r, struct relay_stream *st)
{
	unsigned i;

	if (!st->port)
		return;
	i = (unsigned)(st->port - r->pool_base) / 2;
	pthread_mutex_lock(&r->ctl_lock);
	if (i < r->npairs && r->pair_used[i]) {
		r->pair_used[i] = 0;
		r->pairs_used--;
	}
	pthread_mutex_unlock(&r->ctl_lock);
	st->port = 0;
}

/* ---- start / stop ---- */

static int parse_ip(const char *s, int family, bool wildcard_if_empty, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (!s[0]) {
		if (!wildcard_if_empty)
			return 0; /* AF_UNSPEC: family disabled */
		ss->ss_family = (sa_family_t)family;
		if (family == AF_INET6)
			((struct sockaddr_in6 *)ss)->sin6_addr = in6addr_any;
		return 0;
	}
	ss->ss_family = (sa_family_t)family;
	if (family == AF_INET) {
		if (inet_pton(AF_INET, s, &((struct sockaddr_in *)ss)->sin_addr) != 1)
			return -EINVAL;
	} else if (inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)ss)->sin6_addr) != 1) {
		return -EINVAL;
	}
	return 0;
}

static unsigned cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

int relay_start(struct relay **rp, const struct relay_config *c, relay_event_f *on_event, void *arg)
{
	struct relay *r = NULL;
	unsigned i;
	int err = 0;

	if (!rp || !c)
		return -EINVAL;
	if (c->port_min == 0 || c->port_max < c->port_min)
		return -EINVAL;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->cfg = *c;
	r->cfg.addr4[sizeof(r->cfg.addr4) - 1] = '\0';
	r->cfg.addr6[sizeof(r->cfg.addr6) - 1] = '\0';
	r->cfg.bind4[sizeof(r->cfg.bind4) - 1] = '\0';
	r->cfg.bind6[sizeof(r->cfg.bind6) - 1] = '\0';
	r->on_event = on_event;
	r->arg = arg;
	r->next_sid = 1;

	if (parse_ip(r->cfg.addr4, AF_INET, false, &r->pub4) ||
	    parse_ip(r->cfg.addr6, AF_INET6, false, &r->pub6) ||
	    parse_ip(r->cfg.bind4, AF_INET, true, &r->bind4) ||
	    parse_ip(r->cfg.bind6, AF_INET6, true, &r->bind6) ||
	    (r->pub4.ss_family == AF_UNSPEC && r->pub6.ss_family == AF_UNSPEC)) {
		free(r);
		return -EINVAL;
	}

	r->pool_base = (uint16_t)(c->port_min + (c->port_min & 1));
	if ((unsigned)r->pool_base + 1 > c->port_max) {
		free(r);
		return -EINVAL;
	}
	r->npairs = ((unsigned)c->port_max - r->pool_base + 1) / 2;
	r->pair_used = calloc(r->npairs, 1);
	r->hsize = HTAB_MIN;
	r->htab = calloc(r->hsize, sizeof(*r->htab));
	r->nloops = c->threads ? c->threads : cpu_count();
	if (r->nloops > RELAY_THREADS_MAX)
		r->nloops = RELAY_THREADS_MAX;
	r->loops = aligned_alloc(64, r->nloops * sizeof(*r->loops));
	if (!r->pair_used || !r->htab || !r->loops) {
		free(r->pair_used);
		free(r->htab);
		free(r->loops);
		free(r);
		return -ENOMEM;
	}
	memset(r->loops, 0, r->nloops * sizeof(*r->loops));
	err = -pthread_mutex_init(&r->ctl_lock, NULL);
	if (err) {
		free(r->pair_used);
		free(r->htab);
		free(r->loops);
		free(r);
		return err;
	}

	for (i = 0; i < r->nloops && !err; i++)
		err = relay__loop_init(r, &r->loops[i], i);
	for (i = 0; i < r->nloops && !err; i++)
		err = relay__loop_run(&r->loops[i]);
	if (err)
		goto out;
	log_info("relay: %u loop(s), ports %u-%u (%u pairs)", r->nloops, r->pool_base,
	         r->pool_base + 2 * r->npairs - 1, r->npairs);
out:
	if (err)
		relay_stop(r);
	else
		*rp = r;
	return err;
}

void relay_stop(struct relay *r)
{
	unsigned i;

	if (!r)
		return;
	for (i = 0; i < r->nloops; i++)
		relay__loop_finish(&r->loops[i]);
	if (r->hcount)
		log_warn("relay: %zu session(s) left in the table at stop", r->hcount);
	pthread_mutex_destroy(&r->ctl_lock);
	free(r->pair_used);
	free(r->htab);
	free(r->loops);
	free(r);
}

unsigned relay_threads(const struct relay *r)
{
	return r ? r->nloops : 0;
}

/* ---- sessions and streams ---- */

static struct relay_msg *msg_new(enum relay_msg_type type)
{
	struct relay_msg *m = calloc(1, sizeof(*m));

	if (m)
		m->type = type;
	return m;
}

static int post(struct relay_session *s, struct relay_msg *m)
{
	m->sess = s;
	return mbox_post(&s->loop->mb, &m->link);
}

int relay_session_open(struct relay *r, uint64_t *sid)
{
	struct relay_session *s;
	struct relay_msg *m;
	int err;

	if (!r || !sid)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	m = msg_new(RELAY_MSG_OPEN);
	if (!s || !m) {
		free(s);
		free(m);
		return -ENOMEM;
	}
	pthread_mutex_lock(&r->ctl_lock);
	s->sid = r->next_sid++;
	s->loop = &r->loops[s->sid % r->nloops];
	table_insert(r, s);
	err = post(s, m);
	if (err)
		relay__table_remove(r, s);
	pthread_mutex_unlock(&r->ctl_lock);
	if (err) {
		free(s);
		free(m);
		return err;
	}
	atomic_fetch_add_explicit(&r->sessions, 1, memory_order_relaxed);
	*sid = s->sid;
	return 0;
}

static void fill_addr(const struct relay *r, const struct relay_stream *st, struct relay_addr *out)
{
	const struct sockaddr_storage *pub = st->family == AF_INET ? &r->pub4 : &r->pub6;
	uint16_t rtcp = st->sock_mux ? st->port : (uint16_t)(st->port + 1);

	out->rtp = *pub;
	out->rtcp = *pub;
	if (st->family == AF_INET) {
		((struct sockaddr_in *)&out->rtp)->sin_port = htons(st->port);
		((struct sockaddr_in *)&out->rtcp)->sin_port = htons(rtcp);
	} else {
		((struct sockaddr_in6 *)&out->rtp)->sin6_port = htons(st->port);
		((struct sockaddr_in6 *)&out->rtcp)->sin6_port = htons(rtcp);
	}
}

static struct relay_stream *find_stream(struct relay_session *s, int side, int mline)
{
	struct relay_stream *st;

	for (st = s->ctl_streams; st; st = st->ctl_next)
		if (st->side == side && st->mline == mline)
			return st;
	return NULL;
}

int relay_stream_alloc(struct relay *r, uint64_t sid, int side, int mline, int family,
                       bool rtcp_mux, struct relay_addr *out)
{
	struct relay_session *s;
	struct relay_stream *st = NULL;
	struct relay_msg *m = NULL;
	int err = 0;

	if (!r || !out || (side != RELAY_SIDE_A && side != RELAY_SIDE_B) || mline < 0)
		return -EINVAL;
	if (family != AF_INET && family != AF_INET6)
		return -EAFNOSUPPORT;
	if ((family == AF_INET ? r->pub4 : r->pub6).ss_family == AF_UNSPEC)
		return -EAFNOSUPPORT;

	pthread_mutex_lock(&r->ctl_lock);
	s = table_find(r, sid);
	if (!s) {
		err = -ENOENT;
		goto out;
	}
	st = find_stream(s, side, mline);
	if (st) {
		if (st->family != family || (st->sock_mux && !rtcp_mux))
			err = -EEXIST;
		else
			fill_addr(r, st, out);
		st = NULL; /* not ours to free */
		goto out;
	}
	st = calloc(1, sizeof(*st));
	m = msg_new(RELAY_MSG_ADOPT);
	if (!st || !m) {
		err = -ENOMEM;
		goto out;
	}
	st->sess = s;
	st->side = side;
	st->mline = mline;
	st->family = family;
	st->sock_mux = rtcp_mux;
	st->sk[0].fd = st->sk[1].fd = -1;
	err = pool_take(r, st);
	if (err)
		goto out;
	m->st = st;
	err = post(s, m);
	if (err) {
		/* loop stopping: undo the reservation ourselves */
		unsigned i = (unsigned)(st->port - r->pool_base) / 2;

		r->pair_used[i] = 0;
		r->pairs_used--;
		close(st->sk[0].fd);
		if (st->sk[1].fd >= 0)
			close(st->sk[1].fd);
		goto out;
	}
	st->ctl_next = s->ctl_streams;
	s->ctl_streams = st;
	fill_addr(r, st, out);
	st = NULL;
	m = NULL;
out:
	pthread_mutex_unlock(&r->ctl_lock);
	free(st);
	free(m);
	return err;
}

static bool is_unspec(const struct sockaddr *sa)
{
	static const uint8_t zero[16];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;

		return a->sin_addr.s_addr == 0 || a->sin_port == 0;
	}
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;

	return memcmp(&a6->sin6_addr, zero, 16) == 0 || a6->sin6_port == 0;
}

static void copy_sa(struct sockaddr_storage *dst, const struct sockaddr *sa)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst, sa,
	       sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
}

int relay_stream_remote(struct relay *r, uint64_t sid, int side, int mline,
                        const struct sockaddr *sdp_addr, const struct sockaddr *signal_src,
                        unsigned flags)
{
	struct relay_session *s;
	struct relay_stream *st;
	struct relay_msg *m;
	int err = 0;

	if (!r || (side != RELAY_SIDE_A && side != RELAY_SIDE_B) || mline < 0 ||
	    (flags & ~(RELAY_NATED | RELAY_RTCP_MUX)))
		return -EINVAL;
	if (sdp_addr && sdp_addr->sa_family != AF_INET && sdp_addr->sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	if (signal_src && signal_src->sa_family != AF_INET && signal_src->sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	if ((flags & RELAY_NATED) && !signal_src)
		return -EINVAL;

	m = msg_new(RELAY_MSG_REMOTE);
	if (!m)
		return -ENOMEM;
	m->flags = flags;
	m->hold = !sdp_addr || is_unspec(sdp_addr);
	if (sdp_addr)
		copy_sa(&m->sdp, sdp_addr);
	if (flags & RELAY_NATED)
		copy_sa(&m->expect, signal_src);
	else if (!m->hold)
		copy_sa(&m->expect, sdp_addr);
	/* else: a non-NATed party on hold keeps its expected IP (RTCP goes on) */

	pthread_mutex_lock(&r->ctl_lock);
	s = table_find(r, sid);
	st = s ? find_stream(s, side, mline) : NULL;
	if (!st)
		err = -ENOENT;
	else if ((m->expect.ss_family && m->expect.ss_family != st->family) ||
	         (!m->hold && m->sdp.ss_family != st->family))
		err = -EAFNOSUPPORT;
	else {
		m->st = st;
		err = post(s, m);
	}
	pthread_mutex_unlock(&r->ctl_lock);
	if (err)
		free(m);
	return err;
}

static int post_simple(struct relay *r, uint64_t sid, enum relay_msg_type type)
{
	struct relay_session *s;
	struct relay_msg *m;
	int err;

	if (!r)
		return -EINVAL;
	m = msg_new(type);
	if (!m)
		return -ENOMEM;
	pthread_mutex_lock(&r->ctl_lock);
	s = table_find(r, sid);
	if (!s) {
		err = -ENOENT;
	} else {
		err = post(s, m);
		if (!err && type == RELAY_MSG_CLOSE)
			relay__table_remove(r, s);
	}
	pthread_mutex_unlock(&r->ctl_lock);
	if (err)
		free(m);
	return err;
}

int relay_session_query(struct relay *r, uint64_t sid)
{
	return post_simple(r, sid, RELAY_MSG_QUERY);
}

int relay_session_rearm(struct relay *r, uint64_t sid)
{
	return post_simple(r, sid, RELAY_MSG_REARM);
}

int relay_session_close(struct relay *r, uint64_t sid)
{
	return post_simple(r, sid, RELAY_MSG_CLOSE);
}

void relay_get_counters(struct relay *r, struct relay_counters *out)
{
	unsigned i;

	memset(out, 0, sizeof(*out));
	if (!r)
		return;
	for (i = 0; i < r->nloops; i++) {
		struct relay_loop_ctr *c = &r->loops[i].ctr;

#define SUM(f) out->f += atomic_load_explicit(&c->f, memory_order_relaxed)
		SUM(rx_packets);
		SUM(rx_bytes);
		SUM(fwd_packets);
		SUM(fwd_bytes);
		SUM(dropped_foreign);
		SUM(dropped_no_remote);
		SUM(dropped_send);
		SUM(dropped_error);
#undef SUM
		uint64_t lag = atomic_load_explicit(&c->lag_ns, memory_order_relaxed);
		if (lag > out->loop_lag_max_ns)
			out->loop_lag_max_ns = lag;
	}
	out->pool_exhausted = atomic_load_explicit(&r->pool_exhausted, memory_order_relaxed);
	out->ports_skipped = atomic_load_explicit(&r->ports_skipped, memory_order_relaxed);
	out->sessions = atomic_load_explicit(&r->sessions, memory_order_relaxed);
	pthread_mutex_lock(&r->ctl_lock);
	out->port_pairs_used = r->pairs_used;
	pthread_mutex_unlock(&r->ctl_lock);
	out->port_pairs_total = r->npairs;
}

/* ---- for the TURN server (relay_int.h) ---- */

int relay__loop_call(struct relay *r, unsigned idx, void (*fn)(void *arg), void *arg)
{
	struct relay_msg *m;
	int err;

	if (!r || idx >= r->nloops || !fn)
		return -EINVAL;
	m = msg_new(RELAY_MSG_CALL);
	if (!m)
		return -ENOMEM;
	m->fn = fn;
	m->arg = arg;
	err = mbox_post(&r->loops[idx].mb, &m->link);
	if (err)
		free(m);
	return err;
}

uv_loop_t *relay__loop_uv(struct relay *r, unsigned idx)
{
	return r && idx < r->nloops ? &r->loops[idx].uv : NULL;
}

int relay__port_take(struct relay *r, int family, bool both, int fd[2], uint16_t *port,
                     struct sockaddr_storage *pub)
{
	struct relay_stream st;
	int err;

	if (!r || !fd || !port || !pub || (family != AF_INET && family != AF_INET6))
		return -EINVAL;
	if ((family == AF_INET ? r->pub4 : r->pub6).ss_family == AF_UNSPEC)
		return -EAFNOSUPPORT;
	memset(&st, 0, sizeof(st));
	st.family = family;
	st.sock_mux = !both;
	st.sk[0].fd = st.sk[1].fd = -1;
	pthread_mutex_lock(&r->ctl_lock);
	err = pool_take(r, &st);
	pthread_mutex_unlock(&r->ctl_lock);
	if (err)
		return err;
	fd[0] = st.sk[0].fd;
	fd[1] = st.sk[1].fd;
	*port = st.port;
	*pub = family == AF_INET ? r->pub4 : r->pub6;
	if (family == AF_INET)
		((struct sockaddr_in *)pub)->sin_port = htons(st.port);
	else
		((struct sockaddr_in6 *)pub)->sin6_port = htons(st.port);
	return 0;
}

void relay__port_release(struct relay *r, uint16_t port)
{
	struct relay_stream st;

	if (!r || !port)
		return;
	memset(&st, 0, sizeof(st));
	st.port = port;
	relay__pool_release(r, &st);
}
