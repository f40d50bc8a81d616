/* turn: STUN/TURN server core on the relay loops (see turn.h).
 *
 * Layout: per loop one struct turn_loop (listeners, allocations, TCP/TLS
 * connections, a sweeper timer); everything in it is touched by that loop
 * only.  turn_start() creates and binds the listening sockets here, on the
 * caller's thread, then asks every loop (relay__loop_call) to adopt its
 * share; turn_stop() asks every loop to close everything and waits.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <inttypes.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "relay_int.h"
#include "sipnat/gtls.h"
#include "sipnat/log.h"
#include "sipnat/stunmsg.h"
#include "sipnat/turn.h"

#define HBUCKETS      1024
#define TXBUF_LEN     (STUNMSG_MAX_LEN + 64)
#define RXBUF_LEN     65536
#define CONN_BUF_LEN  (STUNMSG_MAX_LEN + 8) /* the longest frame, §12.5 padding incl. */
#define MAX_PERMS     64
#define MAX_CHANS     64
#define SWEEP_MS      1000
#define CONN_IDLE_MS  60000      /* a TCP/TLS connection that never allocated */
#define CONN_WQ_MAX   (1u << 20) /* bytes queued to a slow TCP client before dropping */
#define SOFTWARE_NAME "sipnat " PACKAGE_VERSION

struct turn;
struct turn_loop;

struct lis {
	struct turn_loop *tl;
	enum cfg_transport tp;
	struct sockaddr_storage addr;
	int fd;
	bool inited;
	union {
		uv_udp_t udp;
		uv_tcp_t tcp;
	} h;
};

struct perm {
	struct sockaddr_storage ip; /* port ignored */
	uint64_t expires;
};

struct chan {
	uint16_t num;
	struct sockaddr_storage peer;
	uint64_t expires;
};

/* One port pair of the relay pool, shared by an allocation and the odd
 * port kept for it with EVEN-PORT R=1 (RFC 8656 §7.2, §14.6): back to the
 * pool when the last one goes. */
struct pair {
	atomic_uint refs;
	uint16_t port; /* even */
};

/* A reserved odd port waiting for an Allocate with its RESERVATION-TOKEN;
 * any loop may take it (the client's next allocation comes from another
 * source port, so maybe to another loop): under turn.lock. */
struct resv {
	struct resv *next;
	uint8_t token[STUNMSG_RESERVATION_TOKEN_LEN];
	int fd;
	struct sockaddr_storage pub;
	struct pair *pair;
	uint64_t expires; /* CLOCK_MONOTONIC ms */
};

#define RESV_MS 30000 /* RFC 8656 §7.2: "about 30 seconds" */

struct conn;

/* What `sipnatctl turn` shows of an allocation.  The allocation lives on
 * its loop and is never touched by another thread; this small entry is
 * shared instead: the loop links it (under t->dir_lock) once the
 * allocation exists, updates expires and the packet counts with relaxed
 * atomics, and unlinks and frees it (under the lock) when the allocation
 * closes, so turn_foreach_alloc() can read it under the same lock. */
struct alloc_dir {
	struct alloc_dir *prev, *next;
	char user[514]; /* as struct alloc's */
	bool anon;
	enum cfg_transport tp;
	struct sockaddr_storage client, relayed;
	time_t created;
	_Atomic int64_t expires; /* wall clock, seconds */
	_Atomic uint64_t to_peer_packets, to_client_packets;
};

struct alloc {
	struct turn_loop *tl;
	struct alloc_dir *dir; /* NULL if it could not be allocated: not listed */
	struct alloc *prev, *next, *hnext;
	/* 5-tuple: the listener (server address, transport) and the client;
	 * conn for TCP/TLS */
	struct lis *lis;
	struct sockaddr_storage client;
	struct conn *conn;
	uv_udp_t rh; /* relayed socket */
	struct pair *pair;
	struct sockaddr_storage relayed;
	uint64_t expires;
	bool anon, closing;
	char user[514];
	uint8_t key[STUNMSG_MD5_LEN];
	uint8_t tid[STUNMSG_TID_LEN]; /* of the Allocate, for retransmissions */
	uint32_t lifetime;
	size_t n_perms, n_chans;
	struct perm perms[MAX_PERMS];
	struct chan chans[MAX_CHANS];
	int64_t tok_up, tok_down; /* bandwidth buckets, bytes */
	uint64_t tok_last;
};

struct conn {
	uv_tcp_t h;
	struct turn_loop *tl;
	struct lis *lis;
	struct conn *prev, *next;
	struct gtls_conn *tls;
	struct sockaddr_storage peer;
	struct alloc *alloc;
	uint8_t *in;
	size_t in_len;
	uint64_t last_rx;
	bool closing;
};

/* Where a message came from, and so where its answer goes. */
struct src {
	struct lis *lis;
	struct conn *conn; /* NULL for UDP */
	const struct sockaddr *from;
};

struct turn_loop {
	struct turn *t;
	unsigned idx;
	uv_loop_t *uv;
	struct lis *lis;
	uv_timer_t sweep;
	bool sweep_inited, stopping;
	unsigned nhandles; /* initialised handles not yet closed */
	struct alloc *allocs;
	struct alloc *htab[HBUCKETS]; /* UDP allocations by client address */
	struct conn *conns;
	struct turn_rl rl;
	uint8_t rx[RXBUF_LEN];
	uint8_t tx[TXBUF_LEN];
	int start_err;
};

struct user_key {
	char *name;
	size_t len;
	uint8_t key[STUNMSG_MD5_LEN];
};

struct ucount {
	char *name;
	unsigned n;
};

struct turn {
	struct relay *relay;
	unsigned nloops;
	struct turn_loop **loops;
	/* read-only after turn_start() */
	struct cfg_listen listen[CFG_MAX_LISTEN];
	size_t n_listen;
	char *realm;
	struct user_key *users;
	size_t n_users;
	char *secret;
	bool anon;
	unsigned nonce_lifetime, quota_per_user, max_allocations, bandwidth;
	struct natd_cidr denied[CFG_MAX_TURN_CIDR], allowed[CFG_MAX_TURN_CIDR];
	struct sockaddr_storage *own;
	uint16_t own_ports[2 * CFG_MAX_LISTEN + 1];
	struct turn_policy policy;
	uint8_t nonce_key[TURN_NONCE_KEY_LEN];

	pthread_mutex_t lock;     /* tls, ucounts, resv, done */
	pthread_mutex_t dir_lock; /* dir */
	struct alloc_dir *dir;
	pthread_cond_t cond;
	struct gtls_ctx *tls;
	struct resv *resv;
	struct ucount *uc;
	size_t n_uc;
	unsigned done; /* loops that finished a start or stop step */

	_Atomic uint64_t allocs_now;
	struct {
		_Atomic uint64_t binding, alloc_ok, refresh_ok, perm_ok, chanbind_ok;
		_Atomic uint64_t e400, e401, e403, e420, e437, e438, e440, e441, e442, e486, e508;
		_Atomic uint64_t ratelimited, peer_denied, no_permission, bandwidth_drops;
		_Atomic uint64_t to_peer_packets, to_peer_bytes, to_client_packets, to_client_bytes;
		_Atomic uint64_t tls_handshakes, tls_failures, tcp_connections;
	} c;
};

#define CTR(t, f, n) atomic_fetch_add_explicit(&(t)->c.f, (n), memory_order_relaxed)

/* Only the allocation's loop writes its counts: a relaxed load and store,
 * no locked read-modify-write on the packet path. */
static inline void dir_count(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
}

static void conn_close(struct conn *c);
static void alloc_close(struct alloc *a);

/* ---- small helpers ---- */

static socklen_t sa_len(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static void copy_sa(struct sockaddr_storage *dst, const struct sockaddr *sa)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst, sa, sa_len(sa));
}

static bool ip_eq(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	               &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
}

static uint16_t port_of(const struct sockaddr *sa)
{
	return ntohs(sa->sa_family == AF_INET ? ((const struct sockaddr_in *)sa)->sin_port
	                                      : ((const struct sockaddr_in6 *)sa)->sin6_port);
}

static bool addr_eq(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	return ip_eq(a, b) && port_of((const struct sockaddr *)a) == port_of(b);
}

static const char *fmt_sa(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof ip);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof ip);
	snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port_of(sa));
	return buf;
}

/* Channel numbers: RFC 8656 §12 allows 0x4000-0x4FFF, but RFC 5766 allowed
 * up to 0x7FFF and coturn's clients still pick from that range, so the
 * server takes both (any ChannelData first byte 0x40-0x7F).  The codec
 * follows RFC 8656 strictly, hence these three helpers. */
#define CHAN_MIN 0x4000
#define CHAN_MAX 0x7FFF

static int get_channel(const struct stunmsg *m, uint16_t *num)
{
	const struct stunmsg_attr *a = stunmsg_find(m, STUNMSG_ATTR_CHANNEL_NUMBER);
	uint16_t v;

	if (!a || a->len != 4)
		return -EBADMSG;
	v = (uint16_t)(a->val[0] << 8 | a->val[1]);
	if (v < CHAN_MIN || v > CHAN_MAX)
		return -ERANGE;
	*num = v;
	return 0;
}

/* Frame length on a stream (RFC 8656 §12.5: ChannelData padded to 4). */
static int frame_len(const uint8_t *d, size_t n, size_t *flen)
{
	size_t need;

	if (n && (d[0] & 0xc0) == 0x40) {
		if (n < 4) {
			*flen = 0;
			return -EAGAIN;
		}
		need = (4 + (size_t)(d[2] << 8 | d[3]) + 3) & ~(size_t)3;
		*flen = need;
		return n >= need ? 0 : -EAGAIN;
	}
	return stunmsg_frame_len(d, n, flen);
}

static size_t chandata_build(uint8_t *o, uint16_t num, const void *d, size_t n, bool pad)
{
	size_t total = 4 + n;

	o[0] = (uint8_t)(num >> 8);
	o[1] = (uint8_t)num;
	o[2] = (uint8_t)(n >> 8);
	o[3] = (uint8_t)n;
	memcpy(o + 4, d, n);
	while (pad && (total & 3))
		o[total++] = 0;
	return total;
}

static size_t hslot(const struct sockaddr *sa)
{
	const uint8_t *p = sa->sa_family == AF_INET
	                           ? (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr
	                           : (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	size_t n = sa->sa_family == AF_INET ? 4 : 16;
	uint32_t h = 2166136261u ^ port_of(sa);

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h % HBUCKETS;
}

static void handle_closed(struct turn_loop *tl)
{
	struct turn *t = tl->t;

	if (--tl->nhandles == 0 && tl->stopping) {
		pthread_mutex_lock(&t->lock);
		t->done++;
		pthread_cond_broadcast(&t->cond);
		pthread_mutex_unlock(&t->lock);
	}
}

static void on_handle_closed(uv_handle_t *h)
{
	handle_closed(h->data);
}

/* ---- sending to clients ---- */

struct wreq {
	uv_write_t req;
	uv_buf_t buf;
	char data[];
};

static void on_written(uv_write_t *req, int status)
{
	(void)status;
	free(req);
}

/* Raw bytes onto the connection's stream: what the socket takes now, the
 * rest copied and queued. */
static int conn_write_raw(struct conn *c, const uint8_t *d, size_t n)
{
	struct wreq *w;
	uv_buf_t b = uv_buf_init((char *)d, (unsigned)n);
	int rc = 0;

	if (c->closing)
		return 0;
	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->h) == 0) {
		rc = uv_try_write((uv_stream_t *)&c->h, &b, 1);
		if (rc == (int)n)
			return 0;
		if (rc < 0 && rc != UV_EAGAIN)
			return rc;
		if (rc > 0) {
			d += rc;
			n -= (size_t)rc;
		}
	}
	w = malloc(sizeof(*w) + n);
	if (!w)
		return -ENOMEM;
	memcpy(w->data, d, n);
	w->buf = uv_buf_init(w->data, (unsigned)n);
	rc = uv_write(&w->req, (uv_stream_t *)&c->h, &w->buf, 1, on_written);
	if (rc)
		free(w);
	return rc;
}

static int tls_push(void *arg, const uint8_t *d, size_t n)
{
	return conn_write_raw(arg, d, n);
}

static void to_client(struct turn_loop *tl, const struct src *s, const uint8_t *d, size_t n)
{
	if (s->conn) {
		struct conn *c = s->conn;

		if (c->closing)
			return;
		/* drop whole messages, never part of one (TLS records, framing) */
		if (uv_stream_get_write_queue_size((uv_stream_t *)&c->h) > CONN_WQ_MAX)
			return;
		if ((c->tls ? gtls_conn_send(c->tls, d, n) : conn_write_raw(c, d, n)) < 0)
			conn_close(c);
		return;
	}
	uv_buf_t b = uv_buf_init((char *)d, (unsigned)n);

	uv_udp_try_send(&s->lis->h.udp, &b, 1, s->from);
}

/* ---- responses ---- */

static void rsp_begin(struct turn_loop *tl, struct stunmsg_builder *b, const struct stunmsg *req,
                      unsigned cls)
{
	stunmsg_build_init(b, tl->tx, sizeof tl->tx, req->method, cls, req->tid);
	stunmsg_add_text(b, STUNMSG_ATTR_SOFTWARE, SOFTWARE_NAME, strlen(SOFTWARE_NAME));
}

static void rsp_send(struct turn_loop *tl, const struct src *s, struct stunmsg_builder *b,
                     const uint8_t *key)
{
	size_t len;

	if (key)
		stunmsg_add_integrity(b, key, STUNMSG_MD5_LEN);
	stunmsg_add_fingerprint(b);
	if (stunmsg_build_finish(b, &len) == 0)
		to_client(tl, s, tl->tx, len);
}

static void count_error(struct turn *t, int code)
{
	switch (code) {
	case 400:
		CTR(t, e400, 1);
		break;
	case 401:
		CTR(t, e401, 1);
		break;
	case 403:
		CTR(t, e403, 1);
		break;
	case 420:
		CTR(t, e420, 1);
		break;
	case 437:
		CTR(t, e437, 1);
		break;
	case 438:
		CTR(t, e438, 1);
		break;
	case 440:
		CTR(t, e440, 1);
		break;
	case 441:
		CTR(t, e441, 1);
		break;
	case 442:
		CTR(t, e442, 1);
		break;
	case 486:
		CTR(t, e486, 1);
		break;
	case 508:
		CTR(t, e508, 1);
		break;
	default:
		CTR(t, e400, 1);
		break;
	}
}

/* An error response.  401 and 438 carry REALM and a fresh NONCE (RFC 8489
 * §9.2.4) and no integrity; the others are signed with key when the
 * request was authenticated (§9.2.4, last paragraph). */
static void rsp_error(struct turn_loop *tl, const struct src *s, const struct stunmsg *req,
                      int code, const uint8_t *key)
{
	struct turn *t = tl->t;
	struct stunmsg_builder b;
	char nonce[TURN_NONCE_MAX];

	count_error(t, code);
	rsp_begin(tl, &b, req, STUNMSG_CLASS_ERROR);
	stunmsg_add_error(&b, code, NULL);
	if (code == 401 || code == 438) {
		stunmsg_add_text(&b, STUNMSG_ATTR_REALM, t->realm, strlen(t->realm));
		if (turn_nonce_make(t->nonce_key, (int64_t)time(NULL), s->from, nonce,
		                    sizeof nonce) == 0)
			stunmsg_add_text(&b, STUNMSG_ATTR_NONCE, nonce, strlen(nonce));
		key = NULL;
	}
	if (code == 420)
		stunmsg_add_unknown(&b, req->unknown, req->n_unknown);
	rsp_send(tl, s, &b, key);
}

/* ---- credentials ---- */

struct auth {
	bool anon;
	char user[514];
	uint8_t key[STUNMSG_MD5_LEN];
};

static bool rl_ok(struct turn_loop *tl, const struct src *s)
{
	if (turn_rl_take(&tl->rl, s->from, uv_now(tl->uv)))
		return true;
	CTR(tl->t, ratelimited, 1);
	return false;
}

/* RFC 8489 §9.2.4: the long-term credential checks, in the RFC's order.
 * Returns 0 when the request may proceed (a->key set unless anonymous), or
 * -1 when it was answered or dropped. */
static int authenticate(struct turn_loop *tl, const struct src *s, const struct stunmsg *m,
                        struct auth *a)
{
	struct turn *t = tl->t;
	const char *user, *realm, *nonce;
	size_t ulen, rlen, nlen;
	char pass[64];
	int rc;

	memset(a, 0, sizeof(*a));
	if (!stunmsg_has(m, STUNMSG_ATTR_MESSAGE_INTEGRITY)) {
		if (t->anon) {
			a->anon = true;
			return 0;
		}
		if (rl_ok(tl, s))
			rsp_error(tl, s, m, 401, NULL);
		return -1;
	}
	if (stunmsg_get_username(m, &user, &ulen) || stunmsg_get_realm(m, &realm, &rlen) ||
	    stunmsg_get_nonce(m, &nonce, &nlen)) {
		rsp_error(tl, s, m, 400, NULL);
		return -1;
	}
	rc = turn_nonce_check(t->nonce_key, (int64_t)time(NULL), t->nonce_lifetime, s->from, nonce,
	                      nlen);
	if (rc) {
		if (rl_ok(tl, s))
			rsp_error(tl, s, m, 438, NULL);
		return -1;
	}
	if (rlen != strlen(t->realm) || memcmp(realm, t->realm, rlen)) {
		if (rl_ok(tl, s))
			rsp_error(tl, s, m, 401, NULL);
		return -1;
	}
	rc = -ENOENT;
	for (size_t i = 0; i < t->n_users; i++) {
		if (t->users[i].len == ulen && !memcmp(t->users[i].name, user, ulen)) {
			memcpy(a->key, t->users[i].key, sizeof a->key);
			rc = 0;
			break;
		}
	}
	if (rc && t->secret && turn_rest_valid(user, ulen, (int64_t)time(NULL)) == 0 &&
	    turn_rest_password(t->secret, user, ulen, pass, sizeof pass) == 0)
		rc = stunmsg_key_md5(a->key, user, ulen, t->realm, strlen(t->realm), pass,
		                     strlen(pass));
	if (rc == 0)
		rc = stunmsg_check_integrity(m, a->key, sizeof a->key);
	if (rc) {
		char u[64];

		snprintf(u, sizeof u, "%.*s", (int)(ulen < 60 ? ulen : 60), user);
		log_debug("turn: 401 for user '%s'", u);
		if (rl_ok(tl, s))
			rsp_error(tl, s, m, 401, NULL);
		return -1;
	}
	memcpy(a->user, user, ulen);
	a->user[ulen] = '\0';
	return 0;
}

/* ---- quotas ---- */

static int quota_take(struct turn *t, const struct auth *au)
{
	uint64_t now = atomic_fetch_add_explicit(&t->allocs_now, 1, memory_order_relaxed);
	int err = 0;

	if (t->max_allocations && now >= t->max_allocations) {
		atomic_fetch_sub_explicit(&t->allocs_now, 1, memory_order_relaxed);
		return -EDQUOT;
	}
	if (au->anon || !t->quota_per_user)
		return 0;
	pthread_mutex_lock(&t->lock);
	size_t i;

	for (i = 0; i < t->n_uc; i++)
		if (!strcmp(t->uc[i].name, au->user))
			break;
	if (i == t->n_uc) {
		struct ucount *v = realloc(t->uc, (t->n_uc + 1) * sizeof(*v));

		if (v) {
			t->uc = v;
			v[i].name = strdup(au->user);
			v[i].n = 0;
		}
		if (!v || !v[i].name) {
			err = -ENOMEM;
			goto out;
		}
		t->n_uc++;
	}
	if (t->uc[i].n >= t->quota_per_user)
		err = -EDQUOT;
	else
		t->uc[i].n++;
out:
	pthread_mutex_unlock(&t->lock);
	if (err)
		atomic_fetch_sub_explicit(&t->allocs_now, 1, memory_order_relaxed);
	return err;
}

static void quota_release(struct turn *t, const char *user, bool anon)
{
	atomic_fetch_sub_explicit(&t->allocs_now, 1, memory_order_relaxed);
	if (anon || !t->quota_per_user)
		return;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n_uc; i++) {
		if (!strcmp(t->uc[i].name, user)) {
			if (t->uc[i].n)
				t->uc[i].n--;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
}

/* ---- allocations ---- */

static struct alloc *alloc_find(struct turn_loop *tl, const struct src *s)
{
	struct alloc *a;

	if (s->conn)
		return s->conn->alloc;
	for (a = tl->htab[hslot(s->from)]; a; a = a->hnext)
		if (a->lis == s->lis && addr_eq(&a->client, s->from))
			return a;
	return NULL;
}

static bool bw_take(struct alloc *a, int64_t *tok, size_t n)
{
	struct turn *t = a->tl->t;
	uint64_t now;

	if (!t->bandwidth)
		return true;
	now = uv_now(a->tl->uv);
	if (now > a->tok_last) {
		int64_t add = (int64_t)((now - a->tok_last) * t->bandwidth / 1000);

		a->tok_up += add;
		a->tok_down += add;
		if (a->tok_up > (int64_t)t->bandwidth)
			a->tok_up = t->bandwidth;
		if (a->tok_down > (int64_t)t->bandwidth)
			a->tok_down = t->bandwidth;
		a->tok_last = now;
	}
	if (*tok < (int64_t)n) {
		CTR(t, bandwidth_drops, 1);
		return false;
	}
	*tok -= (int64_t)n;
	return true;
}

static struct perm *perm_find(struct alloc *a, const struct sockaddr *peer, uint64_t now)
{
	for (size_t i = 0; i < a->n_perms; i++)
		if (a->perms[i].expires > now && ip_eq(&a->perms[i].ip, peer))
			return &a->perms[i];
	return NULL;
}

static int perm_install(struct alloc *a, const struct sockaddr *peer, uint64_t now)
{
	struct perm *p = NULL;

	for (size_t i = 0; i < a->n_perms; i++)
		if (ip_eq(&a->perms[i].ip, peer))
			p = &a->perms[i];
	if (!p) {
		if (a->n_perms >= MAX_PERMS)
			return -ENOSPC;
		p = &a->perms[a->n_perms++];
		copy_sa(&p->ip, peer);
	}
	p->expires = now + TURN_PERM_LIFETIME * 1000ull;
	return 0;
}

static void send_src(struct alloc *a, struct src *s)
{
	s->lis = a->lis;
	s->conn = a->conn;
	s->from = (const struct sockaddr *)&a->client;
}

static void on_relay_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct alloc *a = h->data;

	(void)suggested;
	buf->base = (char *)a->tl->rx;
	buf->len = sizeof a->tl->rx;
}

/* A datagram from a peer on the relayed socket (RFC 8656 §11.3, §12.4):
 * only from a peer with a permission; through the channel bound to that
 * exact address if any, else as a Data indication. */
static void on_relay_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                          const struct sockaddr *peer, unsigned flags)
{
	struct alloc *a = h->data;
	struct turn_loop *tl = a->tl;
	struct turn *t = tl->t;
	uint64_t now = uv_now(tl->uv);
	struct stunmsg_builder b;
	struct src s;
	size_t len = 0;
	int rc = -1;

	(void)flags;
	if (nread <= 0 || !peer || a->closing)
		return;
	if (!perm_find(a, peer, now)) {
		CTR(t, no_permission, 1);
		return;
	}
	if (!bw_take(a, &a->tok_down, (size_t)nread))
		return;
	for (size_t i = 0; i < a->n_chans; i++) {
		if (a->chans[i].expires > now && addr_eq(&a->chans[i].peer, peer)) {
			len = chandata_build(tl->tx, a->chans[i].num, buf->base, (size_t)nread,
			                     a->conn != NULL);
			rc = 0;
			break;
		}
	}
	if (rc < 0) {
		uint8_t tid[STUNMSG_TID_LEN];

		gnutls_rnd(GNUTLS_RND_NONCE, tid, sizeof tid);
		stunmsg_build_init(&b, tl->tx, sizeof tl->tx, STUNMSG_METHOD_DATA,
		                   STUNMSG_CLASS_INDICATION, tid);
		stunmsg_add_xor_addr(&b, STUNMSG_ATTR_XOR_PEER_ADDRESS, peer);
		stunmsg_add(&b, STUNMSG_ATTR_DATA, buf->base, (size_t)nread);
		rc = stunmsg_build_finish(&b, &len);
		if (rc < 0)
			return;
	}
	send_src(a, &s);
	CTR(t, to_client_packets, 1);
	if (a->dir)
		dir_count(&a->dir->to_client_packets);
	CTR(t, to_client_bytes, (uint64_t)nread);
	to_client(tl, &s, tl->tx, len);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pair_unref(struct turn *t, struct pair *p)
{
	if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) {
		relay__port_release(t->relay, p->port);
		free(p);
	}
}

/* Drop reservations that expired (all with everything). */
static void resv_sweep(struct turn *t, bool everything)
{
	uint64_t now = mono_ms();
	struct resv **pp, *r, *gone = NULL;

	pthread_mutex_lock(&t->lock);
	for (pp = &t->resv; (r = *pp);) {
		if (everything || r->expires <= now) {
			*pp = r->next;
			r->next = gone;
			gone = r;
		} else {
			pp = &r->next;
		}
	}
	pthread_mutex_unlock(&t->lock);
	for (; gone; gone = r) {
		r = gone->next;
		close(gone->fd);
		pair_unref(t, gone->pair);
		free(gone);
	}
}

static struct resv *resv_take(struct turn *t, const uint8_t *token)
{
	struct resv **pp, *r;

	pthread_mutex_lock(&t->lock);
	for (pp = &t->resv; (r = *pp); pp = &r->next)
		if (!memcmp(r->token, token, sizeof r->token) && r->expires > mono_ms()) {
			*pp = r->next;
			break;
		}
	pthread_mutex_unlock(&t->lock);
	return r;
}

static void dir_remove(struct turn *t, struct alloc_dir *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&t->dir_lock);
	if (d->prev)
		d->prev->next = d->next;
	else
		t->dir = d->next;
	if (d->next)
		d->next->prev = d->prev;
	pthread_mutex_unlock(&t->dir_lock);
	free(d);
}

static void on_alloc_closed(uv_handle_t *h)
{
	struct alloc *a = h->data;
	struct turn_loop *tl = a->tl;

	dir_remove(tl->t, a->dir);
	a->dir = NULL;
	pair_unref(tl->t, a->pair);
	quota_release(tl->t, a->user, a->anon);
	free(a);
	handle_closed(tl);
}

static void alloc_close(struct alloc *a)
{
	struct turn_loop *tl = a->tl;
	char cb[64], rb[64];

	if (a->closing)
		return;
	a->closing = true;
	if (a->prev)
		a->prev->next = a->next;
	else
		tl->allocs = a->next;
	if (a->next)
		a->next->prev = a->prev;
	if (!a->conn) {
		struct alloc **pp = &tl->htab[hslot((struct sockaddr *)&a->client)];

		for (; *pp; pp = &(*pp)->hnext)
			if (*pp == a) {
				*pp = a->hnext;
				break;
			}
	} else {
		a->conn->alloc = NULL;
		a->conn = NULL;
	}
	log_info("turn: allocation %s for %s closed",
	         fmt_sa((struct sockaddr *)&a->relayed, rb, sizeof rb),
	         fmt_sa((struct sockaddr *)&a->client, cb, sizeof cb));
	uv_close((uv_handle_t *)&a->rh, on_alloc_closed);
}

static void rsp_alloc_ok(struct turn_loop *tl, const struct src *s, const struct stunmsg *m,
                         struct alloc *a, const uint8_t *token)
{
	struct stunmsg_builder b;

	rsp_begin(tl, &b, m, STUNMSG_CLASS_SUCCESS);
	if (token)
		stunmsg_add_reservation_token(&b, token);
	stunmsg_add_xor_addr(&b, STUNMSG_ATTR_XOR_RELAYED_ADDRESS, (struct sockaddr *)&a->relayed);
	stunmsg_add_u32(&b, STUNMSG_ATTR_LIFETIME, a->lifetime);
	stunmsg_add_xor_addr(&b, STUNMSG_ATTR_XOR_MAPPED_ADDRESS, s->from);
	rsp_send(tl, s, &b, a->anon ? NULL : a->key);
}

static uint32_t pick_lifetime(const struct stunmsg *m)
{
	uint32_t lt;

	/* RFC 8656 §7.2: the client's value, capped, but never below the
	 * default (§7.2 step "LIFETIME") */
	if (stunmsg_get_lifetime(m, &lt) < 0)
		return TURN_DEFAULT_LIFETIME;
	if (lt > TURN_MAX_LIFETIME)
		lt = TURN_MAX_LIFETIME;
	if (lt < TURN_DEFAULT_LIFETIME)
		lt = TURN_DEFAULT_LIFETIME;
	return lt;
}

/* RFC 8656 §7.2 */
static void do_allocate(struct turn_loop *tl, const struct src *s, const struct stunmsg *m,
                        const struct auth *au)
{
	struct turn *t = tl->t;
	const uint8_t *key = au->anon ? NULL : au->key;
	struct alloc *a = alloc_find(tl, s);
	int family = AF_INET, fd[2] = {-1, -1}, rc;
	uint8_t proto, token[STUNMSG_RESERVATION_TOKEN_LEN];
	bool reserve = false, even = false, with_token;
	struct resv *rv = NULL;
	char cb[64], rb[64];

	if (a) {
		/* a retransmission gets the same answer; anything else is a
		 * second allocation on one 5-tuple */
		if (!memcmp(a->tid, m->tid, STUNMSG_TID_LEN) && !strcmp(a->user, au->user))
			rsp_alloc_ok(tl, s, m, a, NULL);
		else
			rsp_error(tl, s, m, 437, key);
		return;
	}
	rc = stunmsg_get_requested_transport(m, &proto);
	if (rc < 0) {
		rsp_error(tl, s, m, 400, key);
		return;
	}
	if (proto != STUNMSG_TRANSPORT_UDP) {
		rsp_error(tl, s, m, 442, key);
		return;
	}
	with_token = stunmsg_get_reservation_token(m, token) == 0;
	even = stunmsg_get_even_port(m, &reserve) == 0;
	rc = stunmsg_get_requested_family(m, &family);
	/* §7.2: a token excludes EVEN-PORT and REQUESTED-ADDRESS-FAMILY */
	if (with_token && (even || rc != -ENOENT)) {
		rsp_error(tl, s, m, 400, key);
		return;
	}
	if (rc == -EAFNOSUPPORT) {
		rsp_error(tl, s, m, 440, key);
		return;
	}
	if (rc < 0)
		family = AF_INET;
	rc = quota_take(t, au);
	if (rc < 0) {
		log_info("turn: allocation quota reached for '%s'",
		         au->anon ? "(anonymous)" : au->user);
		rsp_error(tl, s, m, rc == -EDQUOT ? 486 : 508, key);
		return;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		quota_release(t, au->user, au->anon);
		rsp_error(tl, s, m, 508, key);
		return;
	}
	a->tl = tl;
	a->anon = au->anon;
	memcpy(a->user, au->user, sizeof a->user);
	memcpy(a->key, au->key, sizeof a->key);
	if (with_token) {
		/* the odd port an earlier EVEN-PORT R=1 allocation kept */
		rv = resv_take(t, token);
		if (!rv) {
			quota_release(t, au->user, au->anon);
			free(a);
			rsp_error(tl, s, m, 508, key);
			return;
		}
		fd[0] = rv->fd;
		a->pair = rv->pair;
		a->relayed = rv->pub;
		free(rv);
		rv = NULL;
		family = a->relayed.ss_family;
	} else {
		uint16_t port = 0;

		a->pair = calloc(1, sizeof(*a->pair));
		if (reserve)
			rv = calloc(1, sizeof(*rv));
		rc = !a->pair || (reserve && !rv)
		             ? -ENOMEM
		             : relay__port_take(t->relay, family, reserve, fd, &port, &a->relayed);
		if (rc < 0) {
			quota_release(t, au->user, au->anon);
			free(a->pair);
			free(rv);
			free(a);
			rsp_error(tl, s, m, rc == -EAFNOSUPPORT ? 440 : 508, key);
			return;
		}
		atomic_init(&a->pair->refs, 1);
		a->pair->port = port;
		if (rv) {
			atomic_fetch_add_explicit(&a->pair->refs, 1, memory_order_relaxed);
			rv->pair = a->pair;
			rv->fd = fd[1];
			rv->pub = a->relayed;
			if (family == AF_INET)
				((struct sockaddr_in *)&rv->pub)->sin_port = htons(port + 1);
			else
				((struct sockaddr_in6 *)&rv->pub)->sin6_port = htons(port + 1);
			gnutls_rnd(GNUTLS_RND_NONCE, rv->token, sizeof rv->token);
			memcpy(token, rv->token, sizeof token);
			rv->expires = mono_ms() + RESV_MS;
			pthread_mutex_lock(&t->lock);
			rv->next = t->resv;
			t->resv = rv;
			pthread_mutex_unlock(&t->lock);
		}
	}
	if (stunmsg_has(m, STUNMSG_ATTR_DONT_FRAGMENT) && family == AF_INET) {
		int v = IP_PMTUDISC_DO;

		setsockopt(fd[0], IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof v);
	}
	uv_udp_init(tl->uv, &a->rh);
	tl->nhandles++;
	a->rh.data = a;
	rc = uv_udp_open(&a->rh, fd[0]);
	if (rc < 0)
		close(fd[0]); /* not adopted: still ours */
	else
		rc = uv_udp_recv_start(&a->rh, on_relay_alloc, on_relay_recv);
	/* linked before a possible close, which unlinks */
	a->lis = s->lis;
	copy_sa(&a->client, s->from);
	a->next = tl->allocs;
	if (tl->allocs)
		tl->allocs->prev = a;
	tl->allocs = a;
	if (s->conn) {
		a->conn = s->conn;
		s->conn->alloc = a;
	} else {
		size_t h = hslot(s->from);

		a->hnext = tl->htab[h];
		tl->htab[h] = a;
	}
	if (rc < 0) {
		alloc_close(a);
		rsp_error(tl, s, m, 508, key);
		return;
	}
	memcpy(a->tid, m->tid, STUNMSG_TID_LEN);
	a->lifetime = pick_lifetime(m);
	a->expires = uv_now(tl->uv) + a->lifetime * 1000ull;
	a->dir = calloc(1, sizeof(*a->dir));
	if (a->dir) {
		struct alloc_dir *d = a->dir;
		snprintf(d->user, sizeof d->user, "%s", au->anon ? "" : au->user);
		d->anon = au->anon;
		d->tp = s->lis->tp;
		copy_sa(&d->client, s->from);
		d->relayed = a->relayed;
		d->created = time(NULL);
		atomic_init(&d->expires, (int64_t)d->created + a->lifetime);
		atomic_init(&d->to_peer_packets, 0);
		atomic_init(&d->to_client_packets, 0);
		pthread_mutex_lock(&t->dir_lock);
		d->next = t->dir;
		if (t->dir)
			t->dir->prev = d;
		t->dir = d;
		pthread_mutex_unlock(&t->dir_lock);
	}
	a->tok_up = a->tok_down = t->bandwidth;
	a->tok_last = uv_now(tl->uv);
	CTR(t, alloc_ok, 1);
	log_info("turn: allocation %s for %s %s (user '%s', %us)",
	         fmt_sa((struct sockaddr *)&a->relayed, rb, sizeof rb),
	         cfg_transport_name(s->lis->tp), fmt_sa(s->from, cb, sizeof cb),
	         au->anon ? "(anonymous)" : au->user, a->lifetime);
	rsp_alloc_ok(tl, s, m, a, rv ? token : NULL);
}

/* The request must come with the credentials the allocation was made with
 * (RFC 8656 §5: 441 otherwise). */
static bool same_user(struct turn_loop *tl, const struct src *s, const struct stunmsg *m,
                      const struct alloc *a, const struct auth *au)
{
	if (a->anon == au->anon && !strcmp(a->user, au->user))
		return true;
	rsp_error(tl, s, m, 441, au->anon ? NULL : au->key);
	return false;
}

/* RFC 8656 §8 */
static void do_refresh(struct turn_loop *tl, const struct src *s, const struct stunmsg *m,
                       const struct auth *au)
{
	const uint8_t *key = au->anon ? NULL : au->key;
	struct alloc *a = alloc_find(tl, s);
	struct stunmsg_builder b;
	uint32_t lt = 0;

	if (!a) {
		rsp_error(tl, s, m, 437, key);
		return;
	}
	if (!same_user(tl, s, m, a, au))
		return;
	if (stunmsg_get_lifetime(m, &lt) == 0 && lt == 0) {
		alloc_close(a);
	} else {
		lt = pick_lifetime(m);
		a->lifetime = lt;
		a->expires = uv_now(tl->uv) + lt * 1000ull;
		if (a->dir)
			atomic_store_explicit(&a->dir->expires, (int64_t)time(NULL) + lt,
			                      memory_order_relaxed);
	}
	CTR(tl->t, refresh_ok, 1);
	rsp_begin(tl, &b, m, STUNMSG_CLASS_SUCCESS);
	stunmsg_add_u32(&b, STUNMSG_ATTR_LIFETIME, lt);
	rsp_send(tl, s, &b, key);
}

static bool peer_ok(struct turn_loop *tl, const struct sockaddr *peer, bool with_port)
{
	char pb[64];

	if (turn_peer_check(&tl->t->policy, peer, with_port) == 0)
		return true;
	CTR(tl->t, peer_denied, 1);
	log_debug("turn: peer %s denied", fmt_sa(peer, pb, sizeof pb));
	return false;
}

/* RFC 8656 §9: all the peers are checked before any is installed. */
static void do_permission(struct turn_loop *tl, const struct src *s, const struct stunmsg *m,
                          const struct auth *au)
{
	const uint8_t *key = au->anon ? NULL : au->key;
	struct alloc *a = alloc_find(tl, s);
	const struct stunmsg_attr *at;
	struct sockaddr_storage peer;
	struct stunmsg_builder b;
	uint64_t now = uv_now(tl->uv);
	int n = 0;

	if (!a) {
		rsp_error(tl, s, m, 437, key);
		return;
	}
	if (!same_user(tl, s, m, a, au))
		return;
	for (at = stunmsg_find(m, STUNMSG_ATTR_XOR_PEER_ADDRESS); at;
	     at = stunmsg_find_next(m, at)) {
		if (stunmsg_attr_xor_addr(m, at, &peer) < 0) {
			rsp_error(tl, s, m, 400, key);
			return;
		}
		if (peer.ss_family != a->relayed.ss_family) {
			rsp_error(tl, s, m, 443, key);
			return;
		}
		if (!peer_ok(tl, (struct sockaddr *)&peer, false)) {
			rsp_error(tl, s, m, 403, key);
			return;
		}
		n++;
	}
	if (!n) {
		rsp_error(tl, s, m, 400, key);
		return;
	}
	for (at = stunmsg_find(m, STUNMSG_ATTR_XOR_PEER_ADDRESS); at;
	     at = stunmsg_find_next(m, at)) {
		stunmsg_attr_xor_addr(m, at, &peer);
		if (perm_install(a, (struct sockaddr *)&peer, now) < 0) {
			rsp_error(tl, s, m, 508, key);
			return;
		}
	}
	CTR(tl->t, perm_ok, 1);
	rsp_begin(tl, &b, m, STUNMSG_CLASS_SUCCESS);
	rsp_send(tl, s, &b, key);
}

/* RFC 8656 §11.2 */
static void do_chanbind(struct turn_loop *tl, const struct src *s, const struct stunmsg *m,
                        const struct auth *au)
{
	const uint8_t *key = au->anon ? NULL : au->key;
	struct alloc *a = alloc_find(tl, s);
	struct sockaddr_storage peer;
	struct stunmsg_builder b;
	uint64_t now = uv_now(tl->uv);
	struct chan *c = NULL;
	uint16_t num;

	if (!a) {
		rsp_error(tl, s, m, 437, key);
		return;
	}
	if (!same_user(tl, s, m, a, au))
		return;
	if (get_channel(m, &num) < 0 ||
	    stunmsg_get_xor_addr(m, STUNMSG_ATTR_XOR_PEER_ADDRESS, &peer) < 0) {
		rsp_error(tl, s, m, 400, key);
		return;
	}
	if (peer.ss_family != a->relayed.ss_family) {
		rsp_error(tl, s, m, 443, key);
		return;
	}
	if (!peer_ok(tl, (struct sockaddr *)&peer, true)) {
		rsp_error(tl, s, m, 403, key);
		return;
	}
	for (size_t i = 0; i < a->n_chans; i++) {
		bool same_num = a->chans[i].num == num;
		bool same_peer = addr_eq(&a->chans[i].peer, (struct sockaddr *)&peer);

		if (same_num != same_peer) {
			/* one channel per peer and one peer per channel (§11.2) */
			rsp_error(tl, s, m, 400, key);
			return;
		}
		if (same_num)
			c = &a->chans[i];
	}
	if (!c) {
		if (a->n_chans >= MAX_CHANS) {
			rsp_error(tl, s, m, 508, key);
			return;
		}
		c = &a->chans[a->n_chans++];
		c->num = num;
		copy_sa(&c->peer, (struct sockaddr *)&peer);
	}
	if (perm_install(a, (struct sockaddr *)&peer, now) < 0) {
		rsp_error(tl, s, m, 508, key);
		return;
	}
	c->expires = now + TURN_CHAN_LIFETIME * 1000ull;
	CTR(tl->t, chanbind_ok, 1);
	rsp_begin(tl, &b, m, STUNMSG_CLASS_SUCCESS);
	rsp_send(tl, s, &b, key);
}

static void to_peer(struct alloc *a, const struct sockaddr *peer, const uint8_t *d, size_t n)
{
	struct turn *t = a->tl->t;
	uv_buf_t b = uv_buf_init((char *)d, (unsigned)n);

	if (!bw_take(a, &a->tok_up, n))
		return;
	if (uv_udp_try_send(&a->rh, &b, 1, peer) >= 0) {
		CTR(t, to_peer_packets, 1);
		CTR(t, to_peer_bytes, n);
		if (a->dir)
			dir_count(&a->dir->to_peer_packets);
	}
}

/* RFC 8656 §10.2: indications are never answered; bad ones are dropped. */
static void do_send(struct turn_loop *tl, const struct src *s, const struct stunmsg *m)
{
	struct alloc *a = alloc_find(tl, s);
	struct sockaddr_storage peer;
	const uint8_t *data;
	size_t len;

	if (!a || a->closing)
		return;
	if (stunmsg_get_xor_addr(m, STUNMSG_ATTR_XOR_PEER_ADDRESS, &peer) < 0 ||
	    stunmsg_get_data(m, &data, &len) < 0)
		return;
	if (!perm_find(a, (struct sockaddr *)&peer, uv_now(tl->uv))) {
		CTR(tl->t, no_permission, 1);
		return;
	}
	if (!peer_ok(tl, (struct sockaddr *)&peer, true))
		return;
	to_peer(a, (struct sockaddr *)&peer, data, len);
}

/* RFC 8656 §12.6 */
static void do_chandata(struct turn_loop *tl, const struct src *s, const uint8_t *d, size_t n)
{
	struct alloc *a = alloc_find(tl, s);
	uint64_t now = uv_now(tl->uv);
	uint16_t num, len;

	if (!a || a->closing || n < 4)
		return;
	num = (uint16_t)(d[0] << 8 | d[1]);
	len = (uint16_t)(d[2] << 8 | d[3]);
	if (4 + (size_t)len > n) /* more is padding (§12.5), less is broken */
		return;
	for (size_t i = 0; i < a->n_chans; i++) {
		if (a->chans[i].num == num && a->chans[i].expires > now) {
			to_peer(a, (struct sockaddr *)&a->chans[i].peer, d + 4, len);
			return;
		}
	}
	CTR(tl->t, no_permission, 1);
}

static void do_binding(struct turn_loop *tl, const struct src *s, const struct stunmsg *m)
{
	struct stunmsg_builder b;

	if (!rl_ok(tl, s))
		return;
	CTR(tl->t, binding, 1);
	rsp_begin(tl, &b, m, STUNMSG_CLASS_SUCCESS);
	stunmsg_add_xor_addr(&b, STUNMSG_ATTR_XOR_MAPPED_ADDRESS, s->from);
	rsp_send(tl, s, &b, NULL);
}

/* RFC 3489 clients (the stun-client package's "stun") send a Binding
 * request without the magic cookie and read MAPPED-ADDRESS (RFC 8489
 * §12, backwards compatibility).  Answered with MAPPED-ADDRESS only. */
static void do_classic_binding(struct turn_loop *tl, const struct src *s, const uint8_t *d,
                               size_t n)
{
	uint8_t *o = tl->tx;
	size_t alen;

	if (n < 20 || d[0] != 0x00 || d[1] != 0x01 || (size_t)(d[2] << 8 | d[3]) + 20 != n ||
	    !rl_ok(tl, s))
		return;
	alen = s->from->sa_family == AF_INET ? 8 : 20;
	o[0] = 0x01;
	o[1] = 0x01;
	o[2] = 0;
	o[3] = (uint8_t)(4 + alen);
	memcpy(o + 4, d + 4, 16);
	o[20] = 0x00;
	o[21] = 0x01; /* MAPPED-ADDRESS */
	o[22] = 0;
	o[23] = (uint8_t)alen;
	o[24] = 0;
	o[25] = s->from->sa_family == AF_INET ? 1 : 2;
	o[26] = (uint8_t)(port_of(s->from) >> 8);
	o[27] = (uint8_t)port_of(s->from);
	if (s->from->sa_family == AF_INET)
		memcpy(o + 28, &((const struct sockaddr_in *)s->from)->sin_addr, 4);
	else
		memcpy(o + 28, &((const struct sockaddr_in6 *)s->from)->sin6_addr, 16);
	CTR(tl->t, binding, 1);
	to_client(tl, s, o, 24 + alen);
}

/* One message from a client: a STUN message or a ChannelData message. */
static void process(struct turn_loop *tl, const struct src *s, const uint8_t *d, size_t n)
{
	struct stunmsg m;
	struct auth au;

	if (n < 4)
		return;
	if ((d[0] & 0xc0) == 0x40) {
		do_chandata(tl, s, d, n);
		return;
	}
	if ((d[0] & 0xc0) != 0)
		return;
	if (stunmsg_decode(&m, d, n) < 0) {
		if (n >= 8 && (d[4] != 0x21 || d[5] != 0x12 || d[6] != 0xa4 || d[7] != 0x42))
			do_classic_binding(tl, s, d, n);
		return;
	}
	if (stunmsg_has(&m, STUNMSG_ATTR_FINGERPRINT) && stunmsg_check_fingerprint(&m) < 0)
		return;
	if (m.cls == STUNMSG_CLASS_INDICATION) {
		if (m.method == STUNMSG_METHOD_SEND)
			do_send(tl, s, &m);
		return;
	}
	if (m.cls != STUNMSG_CLASS_REQUEST)
		return;
	if (m.n_unknown) {
		rsp_error(tl, s, &m, 420, NULL);
		return;
	}
	if (m.method == STUNMSG_METHOD_BINDING) {
		do_binding(tl, s, &m);
		return;
	}
	if (m.method != STUNMSG_METHOD_ALLOCATE && m.method != STUNMSG_METHOD_REFRESH &&
	    m.method != STUNMSG_METHOD_CREATE_PERMISSION &&
	    m.method != STUNMSG_METHOD_CHANNEL_BIND) {
		rsp_error(tl, s, &m, 400, NULL);
		return;
	}
	if (authenticate(tl, s, &m, &au) < 0)
		return;
	switch (m.method) {
	case STUNMSG_METHOD_ALLOCATE:
		do_allocate(tl, s, &m, &au);
		break;
	case STUNMSG_METHOD_REFRESH:
		do_refresh(tl, s, &m, &au);
		break;
	case STUNMSG_METHOD_CREATE_PERMISSION:
		do_permission(tl, s, &m, &au);
		break;
	case STUNMSG_METHOD_CHANNEL_BIND:
		do_chanbind(tl, s, &m, &au);
		break;
	}
}

/* ---- UDP listener ---- */

static void on_rx_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct lis *l = h->data;

	(void)suggested;
	buf->base = (char *)l->tl->rx;
	buf->len = sizeof l->tl->rx;
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *from, unsigned flags)
{
	struct lis *l = h->data;
	struct src s = {.lis = l, .from = from};

	if (nread <= 0 || !from || (flags & UV_UDP_PARTIAL))
		return;
	process(l->tl, &s, (const uint8_t *)buf->base, (size_t)nread);
}

/* ---- TCP and TLS connections ---- */

/* Plaintext from the client's stream: cut it into frames (RFC 8656 §12.5). */
static void conn_plain(void *arg, const uint8_t *d, size_t n)
{
	struct conn *c = arg;

	while (n && !c->closing) {
		size_t take = CONN_BUF_LEN - c->in_len, flen, off = 0;
		int rc;

		if (take > n)
			take = n;
		memcpy(c->in + c->in_len, d, take);
		c->in_len += take;
		d += take;
		n -= take;
		for (;;) {
			rc = frame_len(c->in + off, c->in_len - off, &flen);
			if (rc == -EAGAIN)
				break;
			if (rc < 0) {
				conn_close(c);
				return;
			}
			struct src s = {
			        .lis = c->lis, .conn = c, .from = (struct sockaddr *)&c->peer};

			process(c->tl, &s, c->in + off, flen);
			if (c->closing)
				return;
			off += flen;
		}
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
}

static void on_conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct turn_loop *tl = c->tl;

	gtls_conn_free(c->tls);
	free(c->in);
	free(c);
	handle_closed(tl);
}

static void conn_close(struct conn *c)
{
	struct turn_loop *tl = c->tl;

	if (c->closing)
		return;
	if (c->alloc)
		alloc_close(c->alloc); /* RFC 8656 §7: the allocation dies with its connection */
	c->closing = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		tl->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	uv_close((uv_handle_t *)&c->h, on_conn_closed);
}

static void on_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)suggested;
	buf->base = (char *)c->tl->rx;
	buf->len = sizeof c->tl->rx;
}

static void on_conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = st->data;
	struct turn *t = c->tl->t;

	if (c->closing)
		return;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (nread == 0)
		return;
	c->last_rx = uv_now(c->tl->uv);
	if (!c->tls) {
		conn_plain(c, (const uint8_t *)buf->base, (size_t)nread);
		return;
	}
	bool was_ready = gtls_conn_ready(c->tls);
	int rc = gtls_conn_feed(c->tls, (const uint8_t *)buf->base, (size_t)nread);

	if (!was_ready && gtls_conn_ready(c->tls)) {
		char pb[64], db[64];

		CTR(t, tls_handshakes, 1);
		log_debug("turn: tls from %s: %s",
		          fmt_sa((struct sockaddr *)&c->peer, pb, sizeof pb),
		          gtls_conn_describe(c->tls, db, sizeof db));
	}
	if (rc < 0) {
		if (rc == -EPROTO && !gtls_conn_ready(c->tls))
			CTR(t, tls_failures, 1);
		conn_close(c);
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct lis *l = server->data;
	struct turn_loop *tl = l->tl;
	struct turn *t = tl->t;
	struct conn *c;
	int len = sizeof(struct sockaddr_storage), rc;

	if (status < 0 || tl->stopping)
		return;
	c = calloc(1, sizeof(*c));
	if (c)
		c->in = malloc(CONN_BUF_LEN);
	if (!c || !c->in) {
		if (c)
			free(c);
		return;
	}
	c->tl = tl;
	c->lis = l;
	uv_tcp_init(tl->uv, &c->h);
	tl->nhandles++;
	c->h.data = c;
	c->next = tl->conns;
	if (tl->conns)
		tl->conns->prev = c;
	tl->conns = c;
	c->last_rx = uv_now(tl->uv);
	rc = uv_accept(server, (uv_stream_t *)&c->h);
	if (rc == 0)
		rc = uv_tcp_getpeername(&c->h, (struct sockaddr *)&c->peer, &len);
	if (rc == 0 && l->tp == CFG_TP_TLS) {
		pthread_mutex_lock(&t->lock);
		rc = t->tls ? gtls_conn_new(&c->tls, t->tls, true, tls_push, conn_plain, c)
		            : -EINVAL;
		pthread_mutex_unlock(&t->lock);
	}
	if (rc == 0) {
		uv_tcp_nodelay(&c->h, 1);
		rc = uv_read_start((uv_stream_t *)&c->h, on_conn_alloc, on_conn_read);
	}
	if (rc < 0) {
		conn_close(c);
		return;
	}
	CTR(t, tcp_connections, 1);
}

/* ---- the sweeper ---- */

/* Every SWEEP_MS on each loop: expired allocations are deleted (RFC 8656
 * §7), expired permissions (§9) and channels (§12) dropped, and TCP/TLS
 * connections that stayed idle without an allocation closed. */
static void on_sweep(uv_timer_t *h)
{
	struct turn_loop *tl = h->data;
	uint64_t now = uv_now(tl->uv);
	struct alloc *a, *an;
	struct conn *c, *cn;

	if (tl->idx == 0)
		resv_sweep(tl->t, false);
	for (a = tl->allocs; a; a = an) {
		an = a->next;
		if (a->expires <= now) {
			alloc_close(a);
			continue;
		}
		for (size_t i = 0; i < a->n_perms;)
			if (a->perms[i].expires <= now)
				a->perms[i] = a->perms[--a->n_perms];
			else
				i++;
		for (size_t i = 0; i < a->n_chans;)
			if (a->chans[i].expires <= now)
				a->chans[i] = a->chans[--a->n_chans];
			else
				i++;
	}
	for (c = tl->conns; c; c = cn) {
		cn = c->next;
		if (!c->alloc && now - c->last_rx >= CONN_IDLE_MS)
			conn_close(c);
	}
}

/* ---- start and stop, on the loops ---- */

static void loop_signal(struct turn *t)
{
	pthread_mutex_lock(&t->lock);
	t->done++;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* [loop] Adopt the sockets turn_start() bound for this loop. */
static void loop_start(void *arg)
{
	struct turn_loop *tl = arg;
	struct turn *t = tl->t;
	int rc = 0;

	tl->uv = relay__loop_uv(t->relay, tl->idx);
	for (size_t i = 0; i < t->n_listen && !rc; i++) {
		struct lis *l = &tl->lis[i];

		if (l->tp == CFG_TP_UDP) {
			uv_udp_init(tl->uv, &l->h.udp);
			l->h.udp.data = l;
			l->inited = true;
			tl->nhandles++;
			rc = uv_udp_open(&l->h.udp, l->fd);
			if (rc == 0) {
				l->fd = -1;
				rc = uv_udp_recv_start(&l->h.udp, on_rx_alloc, on_udp_recv);
			}
		} else {
			uv_tcp_init(tl->uv, &l->h.tcp);
			l->h.tcp.data = l;
			l->inited = true;
			tl->nhandles++;
			rc = uv_tcp_open(&l->h.tcp, l->fd);
			if (rc == 0) {
				l->fd = -1;
				rc = uv_listen((uv_stream_t *)&l->h.tcp, 128, on_connection);
			}
		}
	}
	if (!rc) {
		uv_timer_init(tl->uv, &tl->sweep);
		tl->sweep.data = tl;
		tl->sweep_inited = true;
		tl->nhandles++;
		rc = uv_timer_start(&tl->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
	}
	tl->start_err = rc;
	loop_signal(t);
}

/* [loop] Close everything; the last close callback signals turn_stop(). */
static void loop_stop(void *arg)
{
	struct turn_loop *tl = arg;
	struct turn *t = tl->t;

	tl->stopping = true;
	while (tl->conns)
		conn_close(tl->conns);
	while (tl->allocs)
		alloc_close(tl->allocs);
	for (size_t i = 0; i < t->n_listen; i++) {
		struct lis *l = &tl->lis[i];

		if (l->inited) {
			uv_handle_t *h = l->tp == CFG_TP_UDP ? (uv_handle_t *)&l->h.udp
			                                     : (uv_handle_t *)&l->h.tcp;

			h->data = tl; /* for on_handle_closed */
			uv_close(h, on_handle_closed);
			l->inited = false;
		}
	}
	if (tl->sweep_inited) {
		uv_close((uv_handle_t *)&tl->sweep, on_handle_closed);
		tl->sweep_inited = false;
	}
	if (tl->nhandles == 0)
		loop_signal(t);
}

/* ---- start and stop, on the daemon's thread ---- */

static int bind_listener(const struct cfg_listen *cl, struct sockaddr_storage *ss, int *fdp)
{
	int one = 1, fd, type = cl->transport == CFG_TP_UDP ? SOCK_DGRAM : SOCK_STREAM;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, cl->host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons(cl->port);
	} else if (inet_pton(AF_INET6, cl->host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons(cl->port);
	} else {
		return -EINVAL;
	}
	fd = socket(ss->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* SO_REUSEPORT: one socket per loop on the same address, the kernel
	 * spreads the clients (libuv's UV_UDP_REUSEADDR is SO_REUSEADDR only) */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
	    (ss->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
	    bind(fd, (struct sockaddr *)ss, sa_len((struct sockaddr *)ss)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 128) < 0)) {
		int err = -errno;

		close(fd);
		return err;
	}
	*fdp = fd;
	return 0;
}

static int add_own(struct turn *t, size_t *n, size_t cap, const struct sockaddr *sa)
{
	if (*n >= cap)
		return 0;
	copy_sa(&t->own[(*n)++], sa);
	return 0;
}

static void add_own_host(struct turn *t, size_t *n, size_t cap, const char *host, bool *wild)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		return;
	if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::")) {
		*wild = true;
		return;
	}
	add_own(t, n, cap, (struct sockaddr *)&ss);
}

/* Our own addresses for the peer policy: every listening and relay
 * address, and every interface address when something listens on a
 * wildcard. */
static int own_addresses(struct turn *t, const struct cfg *cfg)
{
	size_t cap = 64 + 2 * CFG_MAX_LISTEN + CFG_MAX_RELAY_ADDR, n = 0, np = 0;
	bool wild = false;
	struct ifaddrs *ifa = NULL;

	t->own = calloc(cap, sizeof(*t->own));
	if (!t->own)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->turn.n_listen; i++) {
		add_own_host(t, &n, cap, cfg->turn.listen[i].host, &wild);
		t->own_ports[np++] = cfg->turn.listen[i].port;
	}
	for (size_t i = 0; i < cfg->sip.n_listen; i++) {
		add_own_host(t, &n, cap, cfg->sip.listen[i].host, &wild);
		t->own_ports[np++] = cfg->sip.listen[i].port;
	}
	if (cfg->control.metrics_port)
		t->own_ports[np++] = cfg->control.metrics_port;
	for (size_t i = 0; i < cfg->relay.n_addr; i++)
		add_own_host(t, &n, cap, cfg->relay.addr[i], &wild);
	if (wild && getifaddrs(&ifa) == 0) {
		for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
			if (i->ifa_addr && (i->ifa_addr->sa_family == AF_INET ||
			                    i->ifa_addr->sa_family == AF_INET6))
				add_own(t, &n, cap, i->ifa_addr);
		freeifaddrs(ifa);
	}
	t->policy.own = t->own;
	t->policy.n_own = n;
	t->policy.own_ports = t->own_ports;
	t->policy.n_own_ports = np;
	t->policy.relay_min = cfg->relay.port_min;
	t->policy.relay_max = cfg->relay.port_max;
	return 0;
}

static int copy_config(struct turn *t, const struct cfg *cfg)
{
	const struct cfg_turn *c = &cfg->turn;

	memcpy(t->listen, c->listen, sizeof t->listen);
	t->n_listen = c->n_listen;
	t->realm = strdup(c->realm ? c->realm : "sipnat");
	t->secret = c->secret ? strdup(c->secret) : NULL;
	if (!t->realm || (c->secret && !t->secret))
		return -ENOMEM;
	t->anon = c->allow_anonymous;
	t->nonce_lifetime = c->nonce_lifetime;
	t->quota_per_user = c->quota_per_user;
	t->max_allocations = c->max_allocations;
	t->bandwidth = c->bandwidth;
	memcpy(t->denied, c->denied, sizeof t->denied);
	memcpy(t->allowed, c->allowed, sizeof t->allowed);
	t->policy.denied = t->denied;
	t->policy.n_denied = c->n_denied;
	t->policy.allowed = t->allowed;
	t->policy.n_allowed = c->n_allowed;
	t->users = calloc(c->n_users ? c->n_users : 1, sizeof(*t->users));
	if (!t->users)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_users; i++) {
		struct user_key *u = &t->users[i];

		u->name = strdup(c->users[i].name);
		if (!u->name)
			return -ENOMEM;
		t->n_users++;
		u->len = strlen(u->name);
		/* RFC 8489 §9.2.2: key = MD5(user ":" realm ":" password) */
		if (stunmsg_key_md5(u->key, u->name, u->len, t->realm, strlen(t->realm),
		                    c->users[i].password, strlen(c->users[i].password)) < 0)
			return -EIO;
	}
	if (gnutls_rnd(GNUTLS_RND_KEY, t->nonce_key, sizeof t->nonce_key) < 0)
		return -EIO;
	return own_addresses(t, cfg);
}

static void wait_done(struct turn *t, unsigned n)
{
	pthread_mutex_lock(&t->lock);
	while (t->done < n)
		pthread_cond_wait(&t->cond, &t->lock);
	t->done = 0;
	pthread_mutex_unlock(&t->lock);
}

static bool any_tls(const struct turn *t)
{
	for (size_t i = 0; i < t->n_listen; i++)
		if (t->listen[i].transport == CFG_TP_TLS)
			return true;
	return false;
}

static void free_turn(struct turn *t)
{
	for (unsigned i = 0; i < t->nloops && t->loops; i++) {
		struct turn_loop *tl = t->loops[i];

		if (!tl)
			continue;
		for (size_t j = 0; j < t->n_listen && tl->lis; j++)
			if (tl->lis[j].fd >= 0)
				close(tl->lis[j].fd);
		free(tl->lis);
		free(tl);
	}
	free(t->loops);
	resv_sweep(t, true);
	for (size_t i = 0; i < t->n_users; i++)
		free(t->users[i].name);
	free(t->users);
	for (size_t i = 0; i < t->n_uc; i++)
		free(t->uc[i].name);
	free(t->uc);
	free(t->own);
	free(t->realm);
	free(t->secret);
	gtls_ctx_unref(t->tls);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->dir_lock);
	free(t);
}

int turn_start(struct turn **tp, const struct cfg *cfg, struct relay *relay)
{
	struct turn *t;
	unsigned posted = 0;
	int err = 0;

	if (!tp || !cfg || !relay || !cfg->turn.n_listen)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->dir_lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->relay = relay;
	t->nloops = relay_threads(relay);
	err = copy_config(t, cfg);
	if (err)
		goto fail;
	if (any_tls(t)) {
		const char *why = NULL;

		err = gtls_ctx_new(&t->tls, cfg->turn.tls_cert, cfg->turn.tls_key,
		                   cfg->turn.tls_priorities, &why);
		if (err) {
			log_err("turn: cannot load %s / %s: %s", cfg->turn.tls_cert,
			        cfg->turn.tls_key, why ? why : strerror(-err));
			goto fail;
		}
	}
	t->loops = calloc(t->nloops, sizeof(*t->loops));
	if (!t->loops) {
		err = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < t->nloops && !err; i++) {
		struct turn_loop *tl = calloc(1, sizeof(*tl));

		if (!tl || !(tl->lis = calloc(t->n_listen, sizeof(*tl->lis)))) {
			free(tl);
			err = -ENOMEM;
			break;
		}
		t->loops[i] = tl;
		tl->t = t;
		tl->idx = i;
		for (size_t j = 0; j < t->n_listen; j++)
			tl->lis[j].fd = -1;
		for (size_t j = 0; j < t->n_listen && !err; j++) {
			tl->lis[j].tl = tl;
			tl->lis[j].tp = t->listen[j].transport;
			err = bind_listener(&t->listen[j], &tl->lis[j].addr, &tl->lis[j].fd);
			if (err)
				log_err("turn: cannot listen on %s:%s:%u: %s",
				        cfg_transport_name(t->listen[j].transport),
				        t->listen[j].host, t->listen[j].port, strerror(-err));
		}
	}
	if (err)
		goto fail;
	for (unsigned i = 0; i < t->nloops; i++) {
		if (relay__loop_call(relay, i, loop_start, t->loops[i]) < 0)
			break;
		posted++;
	}
	wait_done(t, posted);
	for (unsigned i = 0; i < t->nloops && !err; i++)
		err = i < posted ? t->loops[i]->start_err : -ESHUTDOWN;
	if (err) {
		log_err("turn: cannot start on the relay loops: %s", uv_strerror(err));
		turn_stop(t);
		return err;
	}
	for (size_t j = 0; j < t->n_listen; j++)
		log_info("turn: listening on %s:%s:%u (%u loops)",
		         cfg_transport_name(t->listen[j].transport), t->listen[j].host,
		         t->listen[j].port, t->nloops);
	*tp = t;
	return 0;
fail:
	free_turn(t);
	return err;
}

void turn_stop(struct turn *t)
{
	struct turn_counters c;
	unsigned posted = 0;

	if (!t)
		return;
	for (unsigned i = 0; i < t->nloops; i++)
		if (t->loops[i] && relay__loop_call(t->relay, i, loop_stop, t->loops[i]) == 0)
			posted++;
	wait_done(t, posted);
	turn_get_counters(t, &c);
	log_info("turn: stopped; bindings %" PRIu64 ", allocated %" PRIu64 ", refused 401 %" PRIu64
	         " 403 %" PRIu64 " 437 %" PRIu64 " 438 %" PRIu64 " 486 %" PRIu64 " 508 %" PRIu64
	         ", rate-limited %" PRIu64 ", peer denied %" PRIu64 ", to peers %" PRIu64
	         " packets, to clients %" PRIu64 " packets, tls handshakes %" PRIu64,
	         c.binding, c.alloc_ok, c.err_401, c.err_403, c.err_437, c.err_438, c.err_486,
	         c.err_508, c.ratelimited, c.peer_denied, c.to_peer_packets, c.to_client_packets,
	         c.tls_handshakes);
	free_turn(t);
}

int turn_reload(struct turn *t, const struct cfg *cfg)
{
	struct gtls_ctx *fresh = NULL, *old;
	const char *why = NULL;
	int err;

	if (!t || !cfg)
		return -EINVAL;
	if (!any_tls(t))
		return 0;
	err = gtls_ctx_new(&fresh, cfg->turn.tls_cert, cfg->turn.tls_key, cfg->turn.tls_priorities,
	                   &why);
	if (err) {
		log_err("turn: certificate reload failed, keeping the old one: %s",
		        why ? why : strerror(-err));
		return err;
	}
	pthread_mutex_lock(&t->lock);
	old = t->tls;
	t->tls = fresh;
	pthread_mutex_unlock(&t->lock);
	gtls_ctx_unref(old); /* connections on it keep their own reference */
	log_info("turn: TLS certificate reloaded from %s", cfg->turn.tls_cert);
	return 0;
}

void turn_foreach_alloc(struct turn *t, void (*fn)(void *arg, const struct turn_alloc_info *a),
                        void *arg)
{
	time_t now = time(NULL);

	if (!t)
		return;
	pthread_mutex_lock(&t->dir_lock);
	for (const struct alloc_dir *d = t->dir; d; d = d->next) {
		struct turn_alloc_info i = {
		        .user = d->user,
		        .anon = d->anon,
		        .transport = d->tp,
		        .client = (const struct sockaddr *)&d->client,
		        .relayed = (const struct sockaddr *)&d->relayed,
		        .age = (long)(now - d->created),
		        .expires_in =
		                (long)(atomic_load_explicit(&d->expires, memory_order_relaxed) -
		                       now),
		        .to_peer_packets =
		                atomic_load_explicit(&d->to_peer_packets, memory_order_relaxed),
		        .to_client_packets =
		                atomic_load_explicit(&d->to_client_packets, memory_order_relaxed),
		};
		fn(arg, &i);
	}
	pthread_mutex_unlock(&t->dir_lock);
}

void turn_get_counters(struct turn *t, struct turn_counters *o)
{
	memset(o, 0, sizeof(*o));
	if (!t)
		return;
#define G(f) atomic_load_explicit(&t->c.f, memory_order_relaxed)
	o->binding = G(binding);
	o->allocations = atomic_load_explicit(&t->allocs_now, memory_order_relaxed);
	o->alloc_ok = G(alloc_ok);
	o->refresh_ok = G(refresh_ok);
	o->perm_ok = G(perm_ok);
	o->chanbind_ok = G(chanbind_ok);
	o->err_400 = G(e400);
	o->err_401 = G(e401);
	o->err_403 = G(e403);
	o->err_420 = G(e420);
	o->err_437 = G(e437);
	o->err_438 = G(e438);
	o->err_440 = G(e440);
	o->err_441 = G(e441);
	o->err_442 = G(e442);
	o->err_486 = G(e486);
	o->err_508 = G(e508);
	o->ratelimited = G(ratelimited);
	o->peer_denied = G(peer_denied);
	o->no_permission = G(no_permission);
	o->bandwidth_drops = G(bandwidth_drops);
	o->to_peer_packets = G(to_peer_packets);
	o->to_peer_bytes = G(to_peer_bytes);
	o->to_client_packets = G(to_client_packets);
	o->to_client_bytes = G(to_client_bytes);
	o->tls_handshakes = G(tls_handshakes);
	o->tls_failures = G(tls_failures);
	o->tcp_connections = G(tcp_connections);
#undef G
}
