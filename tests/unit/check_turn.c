/* check_turn: the TURN server's credentials, nonces, peer policy, rate
 * limit and [turn] configuration (pure), then a live server on the relay's
 * loops driven over loopback by a hand-made client (401 -> Allocate ->
 * 437/486/403/438 -> Refresh 0), and the allocation listing that
 * `sipnatctl turn` shows, read from this (non-loop) thread while the loops
 * run.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sipnat/cfg.h"
#include "sipnat/relay.h"
#include "sipnat/stunmsg.h"
#include "sipnat/turn.h"

static struct sockaddr_storage ip(const char *s, unsigned port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, s, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
	} else {
		ck_assert_int_eq(inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)&ss)->sin6_addr),
		                 1);
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
	}
	return ss;
}

#define SA(x) ((const struct sockaddr *)&(x))

/* ---- REST credentials ---- */

START_TEST(rest_password_vectors)
{
	char pw[64];

	/* expected values computed independently with Python's hmac/base64 */
	ck_assert_int_eq(turn_rest_password("north", "1700000000:alice", 16, pw, sizeof pw), 0);
	ck_assert_str_eq(pw, "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
	ck_assert_int_eq(turn_rest_password("restsecret123", "4102444800:bob", 14, pw, sizeof pw),
	                 0);
	ck_assert_str_eq(pw, "/p9MrmYneMVWV05elVa/d6NgHVQ=");
	ck_assert_int_eq(turn_rest_password("north", "x", 1, pw, 20), -ENOBUFS);
}
END_TEST

START_TEST(rest_expiry)
{
	ck_assert_int_eq(turn_rest_valid("1700000000:alice", 16, 1699999999), 0);
	ck_assert_int_eq(turn_rest_valid("1700000000:alice", 16, 1700000000), 0);
	ck_assert_int_eq(turn_rest_valid("1700000000:alice", 16, 1700000001), -EKEYEXPIRED);
	ck_assert_int_eq(turn_rest_valid("1700000000", 10, 1600000000), 0);
	ck_assert_int_eq(turn_rest_valid("alice", 5, 0), -EINVAL);
	ck_assert_int_eq(turn_rest_valid(":alice", 6, 0), -EINVAL);
	ck_assert_int_eq(turn_rest_valid("17x:alice", 9, 0), -EINVAL);
}
END_TEST

/* ---- nonces ---- */

static uint8_t nkey[TURN_NONCE_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

START_TEST(nonce_roundtrip_and_expiry)
{
	struct sockaddr_storage a = ip("192.0.2.10", 4000), b = ip("192.0.2.11", 4000);
	char n[TURN_NONCE_MAX];

	ck_assert_int_eq(turn_nonce_make(nkey, 1000, SA(a), n, sizeof n), 0);
	ck_assert_uint_eq(strlen(n), 32);
	ck_assert_int_eq(turn_nonce_check(nkey, 1000, 600, SA(a), n, strlen(n)), 0);
	ck_assert_int_eq(turn_nonce_check(nkey, 1600, 600, SA(a), n, strlen(n)), 0);
	/* older than the lifetime: 438 Stale Nonce */
	ck_assert_int_eq(turn_nonce_check(nkey, 1601, 600, SA(a), n, strlen(n)), -ESTALE);
	/* from the future (clock went back) */
	ck_assert_int_eq(turn_nonce_check(nkey, 999, 600, SA(a), n, strlen(n)), -ESTALE);
	/* bound to the client's address */
	ck_assert_int_eq(turn_nonce_check(nkey, 1000, 600, SA(b), n, strlen(n)), -EBADMSG);
}
END_TEST

START_TEST(nonce_forged)
{
	struct sockaddr_storage a = ip("2001:db8::1", 4000);
	uint8_t other[TURN_NONCE_KEY_LEN] = {9};
	char n[TURN_NONCE_MAX];

	ck_assert_int_eq(turn_nonce_make(nkey, 5000, SA(a), n, sizeof n), 0);
	ck_assert_int_eq(turn_nonce_check(other, 5000, 600, SA(a), n, 32), -EBADMSG);
	/* a newer timestamp with the old MAC */
	n[15] = n[15] == '0' ? '1' : '0';
	ck_assert_int_eq(turn_nonce_check(nkey, 5000, 600, SA(a), n, 32), -EBADMSG);
	ck_assert_int_eq(turn_nonce_check(nkey, 5000, 600, SA(a), "short", 5), -EBADMSG);
	ck_assert_int_eq(
	        turn_nonce_check(nkey, 5000, 600, SA(a), "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", 32),
	        -EBADMSG);
}
END_TEST

/* ---- peer policy ---- */

static struct cfg *defaults(void)
{
	struct cfg *c = NULL;

	ck_assert_int_eq(cfg_defaults(&c), 0);
	return c;
}

static struct turn_policy policy_of(const struct cfg *c)
{
	struct turn_policy p = {
	        .denied = c->turn.denied,
	        .n_denied = c->turn.n_denied,
	        .allowed = c->turn.allowed,
	        .n_allowed = c->turn.n_allowed,
	};
	return p;
}

static int check(const struct turn_policy *p, const char *addr, unsigned port)
{
	struct sockaddr_storage ss = ip(addr, port);

	return turn_peer_check(p, SA(ss), true);
}

START_TEST(peer_default_denied)
{
	struct cfg *c = defaults();
	struct turn_policy p = policy_of(c);
	static const char *const denied[] = {
	        "127.0.0.1",
	        "127.255.0.9",
	        "10.1.2.3",
	        "172.16.0.1",
	        "172.31.255.255",
	        "192.168.1.1",
	        "100.64.0.1",
	        "169.254.1.1",
	        "0.0.0.0",
	        "0.1.2.3",
	        "224.0.0.1",
	        "239.1.1.1",
	        "::1",
	        "::",
	        "fd00::1",
	        "fe80::1",
	        "ff02::1",
	        "::ffff:127.0.0.1",
	        "::ffff:10.0.0.1",
	};

	for (size_t i = 0; i < sizeof denied / sizeof *denied; i++)
		ck_assert_msg(check(&p, denied[i], 5000) == -EPERM, "%s not denied", denied[i]);
	ck_assert_int_eq(check(&p, "203.0.113.5", 5000), 0);
	ck_assert_int_eq(check(&p, "198.51.100.7", 5000), 0);
	ck_assert_int_eq(check(&p, "2001:db8::5", 5000), 0);
	ck_assert_int_eq(check(&p, "172.32.0.1", 5000), 0);
	cfg_free(c);
}
END_TEST

static struct cfg *load(const char *text)
{
	struct cfg *c = NULL;

	ck_assert_int_eq(cfg_load_string(text, "t.conf", &c, NULL, NULL), 0);
	return c;
}

START_TEST(peer_allow_list_overrides)
{
	struct cfg *c = load("[turn]\nallowed_peers = 127.0.0.0/8 10.9.0.0/16\n");
	struct turn_policy p = policy_of(c);

	ck_assert_int_eq(check(&p, "127.0.0.1", 3480), 0);
	ck_assert_int_eq(check(&p, "10.9.1.1", 3480), 0);
	ck_assert_int_eq(check(&p, "10.8.1.1", 3480), -EPERM);
	ck_assert_int_eq(check(&p, "169.254.0.1", 3480), -EPERM);
	ck_assert_int_eq(check(&p, "::1", 3480), -EPERM);
	cfg_free(c);
}
END_TEST

START_TEST(peer_own_addresses)
{
	struct cfg *c = load("[turn]\nallowed_peers = 198.51.100.0/24\n");
	struct turn_policy p = policy_of(c);
	struct sockaddr_storage own[2] = {ip("203.0.113.1", 0), ip("198.51.100.1", 0)};
	uint16_t ports[] = {3478, 5060};
	struct sockaddr_storage perm = ip("203.0.113.1", 0);

	p.own = own;
	p.n_own = 2;
	p.own_ports = ports;
	p.n_own_ports = 2;
	p.relay_min = 30000;
	p.relay_max = 39999;
	/* one of our addresses, not in the allow list: any port */
	ck_assert_int_eq(check(&p, "203.0.113.1", 8080), -EPERM);
	ck_assert_int_eq(turn_peer_check(&p, SA(perm), false), -EPERM);
	ck_assert_int_eq(check(&p, "203.0.113.2", 8080), 0);
	/* allowed: other ports pass, our own listeners and relay ports never */
	ck_assert_int_eq(check(&p, "198.51.100.1", 8080), 0);
	ck_assert_int_eq(check(&p, "198.51.100.1", 3478), -EPERM);
	ck_assert_int_eq(check(&p, "198.51.100.1", 5060), -EPERM);
	ck_assert_int_eq(check(&p, "198.51.100.1", 30000), -EPERM);
	ck_assert_int_eq(check(&p, "198.51.100.1", 39999), -EPERM);
	ck_assert_int_eq(check(&p, "198.51.100.1", 40000), 0);
	ck_assert_int_eq(check(&p, "::ffff:198.51.100.1", 30001), -EPERM);
	cfg_free(c);
}
END_TEST

/* ---- rate limit ---- */

START_TEST(ratelimit_per_source)
{
	struct turn_rl *rl = calloc(1, sizeof(*rl));
	struct sockaddr_storage a = ip("192.0.2.1", 1), b = ip("192.0.2.2", 1);
	int ok = 0;

	ck_assert_ptr_nonnull(rl);
	for (int i = 0; i < 100; i++)
		ok += turn_rl_take(rl, SA(a), 1000);
	ck_assert_int_eq(ok, TURN_RL_BURST);
	ck_assert(turn_rl_take(rl, SA(b), 1000)); /* another source is unaffected */
	ok = 0;
	for (int i = 0; i < 100; i++)
		ok += turn_rl_take(rl, SA(a), 2000); /* one second later */
	ck_assert_int_eq(ok, TURN_RL_RATE);
	free(rl);
}
END_TEST

/* ---- [turn] configuration ---- */

struct errs {
	char text[2048];
	unsigned n;
};

static void on_err(void *arg, const char *file, unsigned line, const char *reason)
{
	struct errs *e = arg;
	size_t l = strlen(e->text);

	snprintf(e->text + l, sizeof e->text - l, "%s:%u: %s\n", file, line, reason);
	e->n++;
}

START_TEST(cfg_turn_section)
{
	struct cfg *c =
	        load("[turn]\n"
	             "listen = udp:192.0.2.1:3478 tcp:192.0.2.1:3478 tls:[2001:db8::1]:443\n"
	             "realm = example.org\n"
	             "user = alice:pw1\n"
	             "user = bob:p:w\n"
	             "secret = 0123456789\n"
	             "tls_cert = /c.pem\n"
	             "tls_key = /k.pem\n"
	             "tls_priorities = SECURE256\n"
	             "denied_peers = 203.0.113.0/24\n"
	             "allowed_peers = 10.0.0.0/8\n"
	             "quota_per_user = 3\n"
	             "max_allocations = 100\n"
	             "bandwidth = 64000\n"
	             "allow_anonymous = no\n"
	             "nonce_lifetime = 120\n");

	ck_assert_uint_eq(c->turn.n_listen, 3);
	ck_assert_int_eq(c->turn.listen[2].transport, CFG_TP_TLS);
	ck_assert_uint_eq(c->turn.listen[2].port, 443);
	ck_assert_str_eq(c->turn.realm, "example.org");
	ck_assert_uint_eq(c->turn.n_users, 2);
	ck_assert_str_eq(c->turn.users[1].name, "bob");
	ck_assert_str_eq(c->turn.users[1].password, "p:w");
	ck_assert_str_eq(c->turn.secret, "0123456789");
	ck_assert_str_eq(c->turn.tls_priorities, "SECURE256");
	ck_assert_uint_eq(c->turn.n_denied, 1); /* replaces the default list */
	ck_assert_uint_eq(c->turn.n_allowed, 1);
	ck_assert_uint_eq(c->turn.quota_per_user, 3);
	ck_assert_uint_eq(c->turn.max_allocations, 100);
	ck_assert_uint_eq(c->turn.bandwidth, 64000);
	ck_assert_uint_eq(c->turn.nonce_lifetime, 120);
	cfg_free(c);

	c = defaults();
	ck_assert_uint_eq(c->turn.n_listen, 0); /* TURN off by default */
	ck_assert_uint_eq(c->turn.n_denied, 14);
	ck_assert(!c->turn.allow_anonymous);
	ck_assert_uint_eq(c->turn.nonce_lifetime, 600);
	cfg_free(c);
}
END_TEST

START_TEST(cfg_turn_errors)
{
	struct errs e = {0};
	struct cfg *c = NULL;

	ck_assert_int_eq(cfg_load_string("[turn]\n"
	                                 "listen = sctp:192.0.2.1:3478\n"
	                                 "user = nopassword\n"
	                                 "denied_peers = 10.0.0.0/33\n"
	                                 "bandwidth = -1\n"
	                                 "colour = blue\n"
	                                 "listen = tls:192.0.2.1:5349\n",
	                                 "t.conf", &c, on_err, &e),
	                 -EINVAL);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(e.text, "t.conf:2: listen:"), "%s", e.text);
	ck_assert_msg(strstr(e.text, "t.conf:3: user:"), "%s", e.text);
	ck_assert_msg(strstr(e.text, "t.conf:4: denied_peers:"), "%s", e.text);
	ck_assert_msg(strstr(e.text, "t.conf:5: bandwidth:"), "%s", e.text);
	ck_assert_msg(strstr(e.text, "t.conf:6: unknown key 'colour' in section [turn]"), "%s",
	              e.text);
	ck_assert_msg(strstr(e.text, "a tls listener needs both tls_cert and tls_key"), "%s",
	              e.text);
	ck_assert_msg(strstr(e.text, "listen needs user, secret or allow_anonymous"), "%s", e.text);
}
END_TEST

/* ---- a live server ---- */

static uint16_t free_port(int type)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, type, 0);
	uint16_t p;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	p = ntohs(a.sin_port);
	close(fd);
	return p;
}

struct live {
	struct cfg *cfg;
	struct relay *relay;
	struct turn *turn;
	struct sockaddr_in srv;
	uint8_t key[STUNMSG_MD5_LEN];
	char nonce[128];
	size_t nonce_len;
	struct sockaddr_storage relayed; /* of the last successful allocate() */
};

static void live_start(struct live *L, const char *extra)
{
	struct relay_config rc = {.threads = 2, .timeout_sec = 0};
	uint16_t port = free_port(SOCK_DGRAM), rbase = (uint16_t)(free_port(SOCK_DGRAM) & ~1u);
	char text[1024];

	if (rbase > 65000)
		rbase = 50000;
	snprintf(text, sizeof text,
	         "[sip]\nlisten = udp:127.0.0.1:1\n[turn]\nlisten = udp:127.0.0.1:%u\n"
	         "realm = example.org\nuser = alice:pw1\nuser = bob:pw2\n%s",
	         port, extra);
	memset(L, 0, sizeof *L);
	L->cfg = load(text);
	rc.port_min = rbase;
	rc.port_max = (uint16_t)(rbase + 7);
	L->cfg->relay.port_min = rc.port_min;
	L->cfg->relay.port_max = rc.port_max;
	snprintf(rc.addr4, sizeof rc.addr4, "127.0.0.1");
	snprintf(rc.bind4, sizeof rc.bind4, "127.0.0.1");
	snprintf(L->cfg->relay.addr[0], sizeof L->cfg->relay.addr[0], "127.0.0.1");
	L->cfg->relay.n_addr = 1;
	ck_assert_int_eq(relay_start(&L->relay, &rc, NULL, NULL), 0);
	ck_assert_int_eq(turn_start(&L->turn, L->cfg, L->relay), 0);
	L->srv.sin_family = AF_INET;
	L->srv.sin_port = htons(port);
	L->srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static void live_stop(struct live *L)
{
	turn_stop(L->turn);
	relay_stop(L->relay);
	cfg_free(L->cfg);
}

static int client(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

/* Build and send one request; auth: 0 none, 1 with L's key and nonce. */
static void send_req(struct live *L, int fd, uint16_t method, int auth, const char *user,
                     void (*add)(struct stunmsg_builder *b, void *arg), void *arg)
{
	uint8_t buf[1024], tid[STUNMSG_TID_LEN];
	struct stunmsg_builder b;
	size_t len;

	gnutls_rnd(GNUTLS_RND_NONCE, tid, sizeof tid);
	stunmsg_build_init(&b, buf, sizeof buf, method, STUNMSG_CLASS_REQUEST, tid);
	if (add)
		add(&b, arg);
	if (auth) {
		stunmsg_add_text(&b, STUNMSG_ATTR_USERNAME, user, strlen(user));
		stunmsg_add_text(&b, STUNMSG_ATTR_REALM, "example.org", 11);
		stunmsg_add_text(&b, STUNMSG_ATTR_NONCE, L->nonce, L->nonce_len);
		stunmsg_add_integrity(&b, L->key, sizeof L->key);
	}
	stunmsg_add_fingerprint(&b);
	ck_assert_int_eq(stunmsg_build_finish(&b, &len), 0);
	ck_assert_int_eq(sendto(fd, buf, len, 0, (struct sockaddr *)&L->srv, sizeof L->srv),
	                 (ssize_t)len);
}

static uint8_t rbuf[2048];

/* Wait for the answer; returns its error code, or 0 for a success. */
static int recv_rsp(struct live *L, int fd, struct stunmsg *m)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;
	int code = 0;
	const char *nonce, *reason;
	size_t nl, rl;

	ck_assert_int_eq(poll(&p, 1, 2000), 1);
	n = recv(fd, rbuf, sizeof rbuf, 0);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(stunmsg_decode(m, rbuf, (size_t)n), 0);
	ck_assert_int_eq(stunmsg_check_fingerprint(m), 0);
	if (stunmsg_get_nonce(m, &nonce, &nl) == 0) {
		memcpy(L->nonce, nonce, nl);
		L->nonce_len = nl;
	}
	if (m->cls == STUNMSG_CLASS_ERROR)
		ck_assert_int_eq(stunmsg_get_error(m, &code, &reason, &rl), 0);
	return code;
}

static void add_udp(struct stunmsg_builder *b, void *arg)
{
	(void)arg;
	stunmsg_add_requested_transport(b, STUNMSG_TRANSPORT_UDP);
}

static void add_peer(struct stunmsg_builder *b, void *arg)
{
	stunmsg_add_xor_addr(b, STUNMSG_ATTR_XOR_PEER_ADDRESS, arg);
}

static void add_lifetime0(struct stunmsg_builder *b, void *arg)
{
	(void)arg;
	stunmsg_add_u32(b, STUNMSG_ATTR_LIFETIME, 0);
}

static void set_key(struct live *L, const char *user, const char *pw)
{
	ck_assert_int_eq(
	        stunmsg_key_md5(L->key, user, strlen(user), "example.org", 11, pw, strlen(pw)), 0);
}

/* 401 with REALM and NONCE, then a signed allocation; returns the fd. */
static int allocate(struct live *L, const char *user, const char *pw, int expect)
{
	struct stunmsg m;
	int fd = client();

	send_req(L, fd, STUNMSG_METHOD_ALLOCATE, 0, NULL, add_udp, NULL);
	ck_assert_int_eq(recv_rsp(L, fd, &m), 401);
	ck_assert(stunmsg_has(&m, STUNMSG_ATTR_REALM));
	ck_assert_uint_gt(L->nonce_len, 0);
	set_key(L, user, pw);
	send_req(L, fd, STUNMSG_METHOD_ALLOCATE, 1, user, add_udp, NULL);
	ck_assert_int_eq(recv_rsp(L, fd, &m), expect);
	if (!expect) {
		ck_assert_int_eq(stunmsg_check_integrity(&m, L->key, sizeof L->key), 0);
		ck_assert_int_eq(
		        stunmsg_get_xor_addr(&m, STUNMSG_ATTR_XOR_RELAYED_ADDRESS, &L->relayed), 0);
	}
	return fd;
}

START_TEST(live_auth_and_errors)
{
	struct live L;
	struct stunmsg m;
	struct sockaddr_storage loop = ip("127.0.0.1", 9), doc = ip("203.0.113.9", 9);
	struct turn_counters c;
	int fd, fd2;

	live_start(&L, "");
	/* Binding needs no credentials */
	fd = client();
	send_req(&L, fd, STUNMSG_METHOD_BINDING, 0, NULL, NULL, NULL);
	ck_assert_int_eq(recv_rsp(&L, fd, &m), 0);
	ck_assert(stunmsg_has(&m, STUNMSG_ATTR_XOR_MAPPED_ADDRESS));
	close(fd);

	/* wrong password: 401 again */
	fd = allocate(&L, "alice", "wrong", 401);
	close(fd);

	fd = allocate(&L, "alice", "pw1", 0);
	/* a second Allocate on the same 5-tuple: 437 */
	send_req(&L, fd, STUNMSG_METHOD_ALLOCATE, 1, "alice", add_udp, NULL);
	ck_assert_int_eq(recv_rsp(&L, fd, &m), 437);
	/* another user on this allocation: 441 */
	set_key(&L, "bob", "pw2");
	send_req(&L, fd, STUNMSG_METHOD_REFRESH, 1, "bob", NULL, NULL);
	ck_assert_int_eq(recv_rsp(&L, fd, &m), 441);
	set_key(&L, "alice", "pw1");
	/* loopback peer: 403; a documentation address: fine */
	send_req(&L, fd, STUNMSG_METHOD_CREATE_PERMISSION, 1, "alice", add_peer, &loop);
	ck_assert_int_eq(recv_rsp(&L, fd, &m), 403);
	send_req(&L, fd, STUNMSG_METHOD_CREATE_PERMISSION, 1, "alice", add_peer, &doc);
	ck_assert_int_eq(recv_rsp(&L, fd, &m), 0);
	/* a nonce that is not ours: 438 with a fresh one */
	memcpy(L.nonce, "00000000000000000000000000000000", 32);
	L.nonce_len = 32;
	send_req(&L, fd, STUNMSG_METHOD_REFRESH, 1, "alice", NULL, NULL);
	ck_assert_int_eq(recv_rsp(&L, fd, &m), 438);
	ck_assert(stunmsg_has(&m, STUNMSG_ATTR_NONCE));
	send_req(&L, fd, STUNMSG_METHOD_REFRESH, 1, "alice", add_lifetime0, NULL);
	ck_assert_int_eq(recv_rsp(&L, fd, &m), 0);
	/* deleted: 437 */
	send_req(&L, fd, STUNMSG_METHOD_REFRESH, 1, "alice", NULL, NULL);
	ck_assert_int_eq(recv_rsp(&L, fd, &m), 437);
	fd2 = client();
	send_req(&L, fd2, STUNMSG_METHOD_CREATE_PERMISSION, 1, "alice", add_peer, &doc);
	ck_assert_int_eq(recv_rsp(&L, fd2, &m), 437);
	close(fd);
	close(fd2);

	turn_get_counters(L.turn, &c);
	ck_assert_uint_eq(c.alloc_ok, 1);
	ck_assert_uint_eq(c.err_403, 1);
	ck_assert_uint_eq(c.err_437, 3);
	ck_assert_uint_eq(c.err_438, 1);
	ck_assert_uint_eq(c.err_441, 1);
	ck_assert_uint_ge(c.binding, 1);
	live_stop(&L);
}
END_TEST

START_TEST(live_quota)
{
	struct live L;
	int fd[4];
	struct turn_counters c;

	live_start(&L, "quota_per_user = 2\nmax_allocations = 3\n");
	fd[0] = allocate(&L, "alice", "pw1", 0);
	fd[1] = allocate(&L, "alice", "pw1", 0);
	fd[2] = allocate(&L, "alice", "pw1", 486); /* per user */
	close(fd[2]);
	fd[2] = allocate(&L, "bob", "pw2", 0);
	fd[3] = allocate(&L, "bob", "pw2", 486); /* in total */
	turn_get_counters(L.turn, &c);
	ck_assert_uint_eq(c.allocations, 3);
	ck_assert_uint_eq(c.err_486, 2);
	for (int i = 0; i < 4; i++)
		close(fd[i]);
	live_stop(&L);
}
END_TEST

START_TEST(live_pool_exhausted)
{
	struct live L;
	int fd[5];

	/* the relay pool of the live server has 4 pairs */
	live_start(&L, "");
	for (int i = 0; i < 4; i++)
		fd[i] = allocate(&L, "alice", "pw1", 0);
	fd[4] = allocate(&L, "alice", "pw1", 508);
	for (int i = 0; i < 5; i++)
		close(fd[i]);
	live_stop(&L);
}
END_TEST

/* ---- the allocation listing (sipnatctl turn) ---- */

#define LISTED_MAX 4

struct listed {
	int n;
	char user[LISTED_MAX][16];
	bool anon[LISTED_MAX];
	enum cfg_transport tp[LISTED_MAX];
	struct sockaddr_in client[LISTED_MAX], relayed[LISTED_MAX];
	long age[LISTED_MAX], expires_in[LISTED_MAX];
	uint64_t up[LISTED_MAX], down[LISTED_MAX];
};

static void collect(void *arg, const struct turn_alloc_info *a)
{
	struct listed *l = arg;
	int i = l->n++;

	if (i >= LISTED_MAX)
		return;
	snprintf(l->user[i], sizeof l->user[i], "%s", a->user);
	l->anon[i] = a->anon;
	l->tp[i] = a->transport;
	ck_assert_int_eq(a->client->sa_family, AF_INET);
	ck_assert_int_eq(a->relayed->sa_family, AF_INET);
	memcpy(&l->client[i], a->client, sizeof l->client[i]);
	memcpy(&l->relayed[i], a->relayed, sizeof l->relayed[i]);
	l->age[i] = a->age;
	l->expires_in[i] = a->expires_in;
	l->up[i] = a->to_peer_packets;
	l->down[i] = a->to_client_packets;
}

static void list_allocs(struct live *L, struct listed *l)
{
	memset(l, 0, sizeof *l);
	turn_foreach_alloc(L->turn, collect, l);
	ck_assert_int_le(l->n, LISTED_MAX);
}

/* The row whose client address is fd's local address, or -1. */
static int row_of(const struct listed *l, int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	for (int i = 0; i < l->n; i++)
		if (l->client[i].sin_port == a.sin_port &&
		    l->client[i].sin_addr.s_addr == a.sin_addr.s_addr)
			return i;
	return -1;
}

static bool same_addr(const struct sockaddr_in *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *b4 = (const struct sockaddr_in *)b;

	return b->ss_family == AF_INET && a->sin_port == b4->sin_port &&
	       a->sin_addr.s_addr == b4->sin_addr.s_addr;
}

/* RFC 8656 §11: a Send indication needs no credentials. */
static void send_indication(struct live *L, int fd, const struct sockaddr_in *peer,
                            const char *data)
{
	uint8_t buf[512], tid[STUNMSG_TID_LEN];
	struct stunmsg_builder b;
	size_t len;

	gnutls_rnd(GNUTLS_RND_NONCE, tid, sizeof tid);
	stunmsg_build_init(&b, buf, sizeof buf, STUNMSG_METHOD_SEND, STUNMSG_CLASS_INDICATION, tid);
	stunmsg_add_xor_addr(&b, STUNMSG_ATTR_XOR_PEER_ADDRESS, (const struct sockaddr *)peer);
	stunmsg_add(&b, STUNMSG_ATTR_DATA, data, strlen(data));
	ck_assert_int_eq(stunmsg_build_finish(&b, &len), 0);
	ck_assert_int_eq(sendto(fd, buf, len, 0, (struct sockaddr *)&L->srv, sizeof L->srv),
	                 (ssize_t)len);
}

START_TEST(live_listing)
{
	struct live L;
	struct listed l;
	struct stunmsg m;
	struct sockaddr_storage rel_a, rel_b;
	struct sockaddr_in peer, from;
	socklen_t plen = sizeof peer, flen = sizeof from;
	struct pollfd p;
	const uint8_t *data;
	size_t dlen;
	char got[16];
	ssize_t n;
	int fa, fb, fp, ia, ib;

	/* the peer is a loopback socket of this test: allowed explicitly */
	live_start(&L, "allowed_peers = 127.0.0.0/8\n");
	memset(&l, 0, sizeof l);
	turn_foreach_alloc(NULL, collect, &l);
	ck_assert_int_eq(l.n, 0);
	list_allocs(&L, &l);
	ck_assert_int_eq(l.n, 0);

	fa = allocate(&L, "alice", "pw1", 0);
	rel_a = L.relayed;
	fb = allocate(&L, "bob", "pw2", 0);
	rel_b = L.relayed;
	/* listed as soon as the success response is out: the loop links the
	 * entry before it answers */
	list_allocs(&L, &l);
	ck_assert_int_eq(l.n, 2);
	ia = row_of(&l, fa);
	ib = row_of(&l, fb);
	ck_assert_int_ge(ia, 0);
	ck_assert_int_ge(ib, 0);
	ck_assert_int_ne(ia, ib);
	ck_assert_str_eq(l.user[ia], "alice");
	ck_assert_str_eq(l.user[ib], "bob");
	for (int i = 0; i < 2; i++) {
		ck_assert(!l.anon[i]);
		ck_assert_int_eq(l.tp[i], CFG_TP_UDP);
		ck_assert_int_ge(l.age[i], 0);
		ck_assert_int_le(l.age[i], 2);
		ck_assert_int_gt(l.expires_in[i], TURN_DEFAULT_LIFETIME - 3);
		ck_assert_int_le(l.expires_in[i], TURN_DEFAULT_LIFETIME);
		ck_assert_uint_eq(l.up[i], 0);
		ck_assert_uint_eq(l.down[i], 0);
		ck_assert_uint_ge(ntohs(l.relayed[i].sin_port), L.cfg->relay.port_min);
		ck_assert_uint_le(ntohs(l.relayed[i].sin_port), L.cfg->relay.port_max);
	}
	ck_assert(same_addr(&l.relayed[ia], &rel_a));
	ck_assert(same_addr(&l.relayed[ib], &rel_b));

	/* one packet each way through alice's allocation */
	/* a port of the relay pool would be one of our own endpoints (403) */
	for (int i = 0;; i++) {
		ck_assert_int_lt(i, 50);
		fp = client();
		plen = sizeof peer;
		ck_assert_int_eq(getsockname(fp, (struct sockaddr *)&peer, &plen), 0);
		if (ntohs(peer.sin_port) < L.cfg->relay.port_min ||
		    ntohs(peer.sin_port) > L.cfg->relay.port_max)
			break;
		close(fp);
	}
	set_key(&L, "alice", "pw1");
	send_req(&L, fa, STUNMSG_METHOD_CREATE_PERMISSION, 1, "alice", add_peer, &peer);
	ck_assert_int_eq(recv_rsp(&L, fa, &m), 0);
	send_indication(&L, fa, &peer, "hello");
	p = (struct pollfd){.fd = fp, .events = POLLIN};
	ck_assert_int_eq(poll(&p, 1, 2000), 1);
	n = recvfrom(fp, got, sizeof got, 0, (struct sockaddr *)&from, &flen);
	ck_assert_int_eq(n, 5);
	ck_assert(same_addr(&from, &rel_a));
	ck_assert_int_eq(sendto(fp, "world!", 6, 0, (struct sockaddr *)&from, flen), 6);
	p = (struct pollfd){.fd = fa, .events = POLLIN};
	ck_assert_int_eq(poll(&p, 1, 2000), 1);
	n = recv(fa, rbuf, sizeof rbuf, 0);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(stunmsg_decode(&m, rbuf, (size_t)n), 0);
	ck_assert_uint_eq(m.method, STUNMSG_METHOD_DATA);
	ck_assert_int_eq(stunmsg_get_data(&m, &data, &dlen), 0);
	ck_assert_uint_eq(dlen, 6);
	list_allocs(&L, &l);
	ck_assert_int_eq(l.n, 2);
	ia = row_of(&l, fa);
	ib = row_of(&l, fb);
	ck_assert_uint_eq(l.up[ia], 1);
	ck_assert_uint_eq(l.down[ia], 1);
	ck_assert_uint_eq(l.up[ib], 0);
	ck_assert_uint_eq(l.down[ib], 0);

	/* Refresh 0 deletes alice's allocation; the entry goes when the loop
	 * has closed the relayed socket, a moment after the answer */
	send_req(&L, fa, STUNMSG_METHOD_REFRESH, 1, "alice", add_lifetime0, NULL);
	ck_assert_int_eq(recv_rsp(&L, fa, &m), 0);
	for (int i = 0; i < 200; i++) {
		list_allocs(&L, &l);
		if (l.n == 1)
			break;
		usleep(10000);
	}
	ck_assert_int_eq(l.n, 1);
	ck_assert_int_eq(row_of(&l, fb), 0);
	ck_assert_str_eq(l.user[0], "bob");
	close(fa);
	close(fb);
	close(fp);
	live_stop(&L);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("turn");
	TCase *tc;

	tc = tcase_create("rest");
	tcase_add_test(tc, rest_password_vectors);
	tcase_add_test(tc, rest_expiry);
	suite_add_tcase(s, tc);
	tc = tcase_create("nonce");
	tcase_add_test(tc, nonce_roundtrip_and_expiry);
	tcase_add_test(tc, nonce_forged);
	suite_add_tcase(s, tc);
	tc = tcase_create("peers");
	tcase_add_test(tc, peer_default_denied);
	tcase_add_test(tc, peer_allow_list_overrides);
	tcase_add_test(tc, peer_own_addresses);
	suite_add_tcase(s, tc);
	tc = tcase_create("ratelimit");
	tcase_add_test(tc, ratelimit_per_source);
	suite_add_tcase(s, tc);
	tc = tcase_create("cfg");
	tcase_add_test(tc, cfg_turn_section);
	tcase_add_test(tc, cfg_turn_errors);
	suite_add_tcase(s, tc);
	tc = tcase_create("live");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, live_auth_and_errors);
	tcase_add_test(tc, live_quota);
	tcase_add_test(tc, live_pool_exhausted);
	suite_add_tcase(s, tc);
	tc = tcase_create("listing");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, live_listing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
