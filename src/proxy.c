/* proxy: stateful SIP edge proxy on Sofia-SIP nta.
 *
 * Shape (as in Sofia's own tests/test_proxy.c): one default leg receives
 * every request that nta does not match to a transaction; each request gets
 * a struct ptr holding its server transaction and at most one client
 * transaction (we do not fork).  Responses come back in ptr_response() and
 * are relayed with nta_incoming_mreply() after our Via is removed.  Stray
 * responses and ACKs to 2xx are forwarded statelessly.
 *
 * Contents: 1) addresses and identity  2) request intake and policy
 * 3) forwarding and failover  4) responses, CANCEL  5) life cycle.
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct proxy;
struct ptr;
#define NTA_AGENT_MAGIC_T    struct proxy
#define NTA_LEG_MAGIC_T      struct proxy
#define NTA_INCOMING_MAGIC_T struct ptr
#define NTA_OUTGOING_MAGIC_T struct ptr
#define SU_ROOT_MAGIC_T      struct proxy
#define SU_TIMER_ARG_T       struct ptr

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/su_md5.h>
#include <sofia-sip/su_string.h>
#include <sofia-sip/tport.h>
#include <sofia-sip/tport_tag.h>

#include "sipnat/edge.h"
#include "sipnat/flow.h"
#include "sipnat/log.h"
#include "sipnat/media.h"
#include "sipnat/natd.h"
#include "sipnat/proxy.h"
#include "sipnat/reg.h"

#define ALLOWED_METHODS                                                                            \
	"INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, PRACK, UPDATE, "                             \
	"INFO, MESSAGE, SUBSCRIBE, NOTIFY, REFER"
/* An upstream that timed out or answered 503 is skipped for this long. */
#define UPSTREAM_HOLDDOWN_SEC 30
/* The branch of every Via we add starts with this magic, followed by a hash
 * of the request as we received it (RFC 3261 §16.6 item 8, §16.3 item 4). */
#define LOOP_BRANCH_TAG "z9hG4bKsn"
/* Contact parameter carrying a signed flow + original Contact (path = no). */
#define CONTACT_TOKEN_PARAM "snc"
/* RFC 5626 §11.5 (Sofia has no phrase for it). */
#define FLOW_FAILED_PHRASE "Flow Failed"
/* Registration state is written at most this often when it changed, plus
 * one second per STATE_SAVE_PER_SEC bindings: every save rewrites the whole
 * table, so under a steady stream of REGISTERs a big table would otherwise
 * cost a full rewrite every few seconds. */
#define STATE_SAVE_INTERVAL_SEC 5
#define STATE_SAVE_PER_SEC      20000
/* After a registration storm the transactions' memory is free but stays
 * in the process; it is handed back to the kernel this often. */
#define SIP_UDP_BUFFER          (4 << 20)
#define TRIM_INTERVAL_SEC       30
#define TRIM_QUIET_TRANSACTIONS 1000

struct upstream {
	char *uri;                 /* as configured */
	url_t *url;                /* parsed, on proxy home */
	struct edge_addrset addrs; /* resolved addresses, port 0 */
	time_t down_until;         /* skip until then after a failure */
};

struct ptr {
	struct proxy *proxy;
	struct ptr *next, **prev;
	nta_incoming_t *server;
	nta_outgoing_t *client;
	msg_t *msg; /* the request as received (reference) */
	sip_t *sip;
	msg_t *fwd; /* prepared copy, until ptr_send hands it to nta */
	sip_method_t method;
	su_timer_t *timer; /* failover timer while no response arrived */
	int upstream;      /* index tried now, -1 when not going upstream */
	int status;        /* best response relayed so far */
	unsigned saw_response : 1;
	unsigned canceled : 1;
	unsigned from_upstream : 1;
	unsigned have_src_flow : 1;
	unsigned have_target_flow : 1;
	struct flow src_flow;    /* the device's flow, for requests from devices */
	struct flow target_flow; /* the device's flow, for requests to devices */
	unsigned natd;           /* NAT predicates that fired for the sender */
	char *new_ruri;          /* Request-URI to restore (path = no), home-owned */
	char branch[64];
	/* keepalive OPTIONS only: which binding it probes */
	char *ka_aor, *ka_contact, *ka_instance;
	unsigned ka_reg_id, ka_seq;
};

/* A [sip] listen entry and the primary transport nta made for it. */
struct listener {
	struct cfg_listen conf;
	tport_t *primary;
	char ident[16]; /* the primary's tport ident: send_primary() names it */
};

struct proxy {
	su_home_t home[1];
	su_root_t *root;
	nta_agent_t *agent;
	nta_leg_t *defleg;
	const struct cfg *cfg;
	struct upstream up[CFG_MAX_UPSTREAM];
	size_t n_up;
	struct edge_addrset self;       /* our addresses with listening ports */
	struct edge_addrset self_any;   /* our addresses, any port */
	char rr_host[CFG_HOST_MAX + 2]; /* host for Record-Route, bracketed v6 */
	uint16_t port_of[3];            /* first listening port per transport */
	/* What is bound, which may differ from cfg->sip.listen after a reload
	 * that dropped a UDP listener (see retire_listener). */
	struct listener bound[CFG_MAX_LISTEN];
	size_t n_bound;
	/* Listeners retired by a reload: their connections are still ours,
	 * and so are the addresses in the Record-Routes made on them. */
	struct cfg_listen retired[CFG_MAX_LISTEN];
	size_t n_retired;
	unsigned idents; /* listeners bound since the start */
	/* During proxy_reload: where what could not be applied is written for
	 * the caller (sipnatctl reload), one line each; NULL otherwise. */
	char *why;
	size_t why_len;
	/* SHA-256 of the [sip] TLS key and certificate the TLS listeners run
	 * with, to see on a reload whether they changed. */
	uint8_t tls_digest[32];
	struct ptr *transactions;
	struct ptr *stateless; /* default transactions for strays */
	struct proxy_stats stats;
	struct reg *reg;
	struct media *media;
	uint8_t flow_key[FLOW_KEY_LEN];
	su_timer_t *tick;
	char *state_file; /* NULL: no persistence */
	pid_t saver;      /* child writing state_file (save_state), or 0 */
	int reg_dirty;
	time_t last_save;
	time_t last_trim;
	int udp_fd[2]; /* our UDP SIP sockets (v4, v6) for CRLF keepalives */
	time_t bad_reported;
	usize_t bad_seen, bad_req_seen, bad_resp_seen;
	int draining;
	su_timer_t *drain_timer;
	void (*drain_done)(void *);
	void *drain_arg;
};

/* ------------------------------------------------------------------ */
/* 1) addresses and identity */

static void self_add(struct proxy *p, const char *host, uint16_t port)
{
	if (edge_addrset_add(&p->self, host, port) == -ENOSPC ||
	    edge_addrset_add(&p->self_any, host, 0) == -ENOSPC)
		log_warn("too many local addresses; %s not recognised as ours", host);
}

/* Our own addresses: what we listen on, and every interface address for a
 * wildcard listener, so that a Route or Request-URI naming any of them is
 * recognised as sipnatd. */
static void collect_self(struct proxy *p)
{
	const struct cfg_sip *sip = &p->cfg->sip;
	struct ifaddrs *ifa = NULL, *i;
	char host[INET6_ADDRSTRLEN];

	memset(&p->self, 0, sizeof p->self);
	memset(&p->self_any, 0, sizeof p->self_any);
	if (getifaddrs(&ifa) < 0)
		ifa = NULL;
	for (size_t l = 0; l < sip->n_listen + p->n_retired; l++) {
		const struct cfg_listen *ln =
		        l < sip->n_listen ? &sip->listen[l] : &p->retired[l - sip->n_listen];
		bool any4 = !strcmp(ln->host, "0.0.0.0"), any6 = !strcmp(ln->host, "::");

		if (!any4 && !any6) {
			self_add(p, ln->host, ln->port);
			continue;
		}
		for (i = ifa; i; i = i->ifa_next) {
			if (!i->ifa_addr)
				continue;
			int fam = i->ifa_addr->sa_family;
			if (fam == AF_INET && (any4 || any6)) {
				inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
				          host, sizeof host);
				self_add(p, host, ln->port);
			} else if (fam == AF_INET6 && any6) {
				inet_ntop(AF_INET6,
				          &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, host,
				          sizeof host);
				self_add(p, host, ln->port);
			}
		}
	}
	if (ifa)
		freeifaddrs(ifa);
	if (sip->advertise) {
		for (size_t l = 0; l < sip->n_listen; l++)
			edge_addrset_add(&p->self, sip->advertise, sip->listen[l].port);
		edge_addrset_add(&p->self_any, sip->advertise, 0);
	}
}

/* The host written into Record-Route: the configured advertise address, else
 * the first specific listening address, else the first non-loopback local
 * address (a wildcard listener has no address of its own). */
static void choose_rr_host(struct proxy *p)
{
	const struct cfg_sip *sip = &p->cfg->sip;
	const char *h = NULL;
	char buf[INET6_ADDRSTRLEN];

	if (sip->advertise) {
		h = sip->advertise;
	} else {
		for (size_t l = 0; l < sip->n_listen && !h; l++)
			if (strcmp(sip->listen[l].host, "0.0.0.0") &&
			    strcmp(sip->listen[l].host, "::"))
				h = sip->listen[l].host;
	}
	if (!h) {
		for (size_t i = 0; i < p->self_any.n && !h; i++) {
			const struct sockaddr *sa = (const struct sockaddr *)&p->self_any.addr[i];
			if (sa->sa_family == AF_INET &&
			    ((const struct sockaddr_in *)sa)->sin_addr.s_addr !=
			            htonl(INADDR_LOOPBACK)) {
				inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf,
				          sizeof buf);
				h = buf;
			}
		}
	}
	if (!h)
		h = "127.0.0.1";
	if (strchr(h, ':') && h[0] != '[')
		snprintf(p->rr_host, sizeof p->rr_host, "[%s]", h);
	else
		snprintf(p->rr_host, sizeof p->rr_host, "%s", h);
}

/* Resolves each upstream host to addresses, so that requests coming from
 * an upstream can be told apart from requests coming from devices.  Sending
 * to an upstream still goes through Sofia's resolver (NAPTR/SRV/A). */
static void resolve_upstreams(struct proxy *p)
{
	for (size_t i = 0; i < p->n_up; i++) {
		struct upstream *u = &p->up[i];
		struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL, *a;
		char host[256];

		memset(&u->addrs, 0, sizeof u->addrs);
		if (!u->url || !u->url->url_host)
			continue;
		snprintf(host, sizeof host, "%s", u->url->url_host);
		if (host[0] == '[') {
			size_t n = strlen(host);
			memmove(host, host + 1, n);
			if (n >= 2)
				host[n - 2] = '\0';
		}
		if (getaddrinfo(host, NULL, &hints, &res) != 0) {
			log_warn("upstream %s: cannot resolve %s now; requests from it will be "
			         "treated as from a device until it resolves",
			         u->uri, host);
			continue;
		}
		for (a = res; a; a = a->ai_next)
			edge_addrset_add_sa(&u->addrs, a->ai_addr, 0);
		freeaddrinfo(res);
	}
}

static int from_upstream(struct proxy *p, const struct sockaddr *src)
{
	for (size_t i = 0; i < p->n_up; i++)
		if (edge_addrset_has(&p->up[i].addrs, src))
			return 1;
	return 0;
}

static int host_is_upstream_addr(struct proxy *p, const char *host)
{
	for (size_t i = 0; i < p->n_up; i++)
		if (edge_addrset_has_host(&p->up[i].addrs, host, 0))
			return 1;
	return 0;
}

static int host_is_upstream_name(struct proxy *p, const char *host)
{
	for (size_t i = 0; i < p->n_up; i++)
		if (p->up[i].url && p->up[i].url->url_host &&
		    su_casematch(p->up[i].url->url_host, host))
			return 1;
	return 0;
}

static int host_in_domains(struct proxy *p, const char *host)
{
	for (size_t i = 0; i < p->cfg->sip.n_domain; i++)
		if (su_casematch(p->cfg->sip.domain[i], host))
			return 1;
	return 0;
}

static uint16_t url_port_or_default(const url_t *u)
{
	unsigned long v;

	if (u->url_port && *u->url_port) {
		v = strtoul(u->url_port, NULL, 10);
		return v <= 65535 ? (uint16_t)v : 0;
	}
	return u->url_type == url_sips ? 5061 : 5060;
}

static int url_is_self(struct proxy *p, const url_t *u)
{
	if (!u || !u->url_host)
		return 0;
	if (p->cfg->sip.advertise && su_casematch(u->url_host, p->cfg->sip.advertise))
		return 1;
	return edge_addrset_has_host(&p->self, u->url_host, url_port_or_default(u));
}

static int transport_of(const char *proto, enum cfg_transport *out)
{
	if (su_casematch(proto, "udp"))
		*out = CFG_TP_UDP;
	else if (su_casematch(proto, "tcp"))
		*out = CFG_TP_TCP;
	else if (su_casematch(proto, "tls"))
		*out = CFG_TP_TLS;
	else
		return -EPROTONOSUPPORT;
	return 0;
}

/* The flow a request arrived on: its transport and source address. */
static int flow_of_request(struct proxy *p, nta_incoming_t *irq, msg_t *msg, struct flow *f)
{
	su_addrinfo_t *ai = msg_addrinfo(msg);
	tport_t *tp = nta_incoming_transport(p->agent, irq, msg);
	int r = -EINVAL;

	memset(f, 0, sizeof *f);
	if (tp) {
		r = transport_of(tport_name(tp)->tpn_proto, &f->transport);
		tport_unref(tp);
	}
	if (r < 0 || !ai || !ai->ai_addr || ai->ai_addrlen > sizeof f->remote)
		return -EINVAL;
	memcpy(&f->remote, ai->ai_addr, ai->ai_addrlen);
	return 0;
}

/* Applies the configured NAT predicates to a request from a device. */
static unsigned nat_verdict(struct proxy *p, sip_t const *sip, const struct sockaddr *src)
{
	const char *contacts[8], *sdp_hosts[8];
	char sdp_buf[512];
	size_t nc = 0, ns = 0;
	struct natd_input in = {.src = src};
	const char *proto;

	if (sip->sip_via) {
		in.via_host = sip->sip_via->v_host;
		in.via_port = sip->sip_via->v_port
		                      ? (unsigned)strtoul(sip->sip_via->v_port, NULL, 10)
		                      : 0;
		proto = sip->sip_via->v_protocol ? strrchr(sip->sip_via->v_protocol, '/') : NULL;
		in.via_transport = proto ? proto + 1 : "UDP";
	}
	for (sip_contact_t const *m = sip->sip_contact; m && nc < 8; m = m->m_next)
		if (m->m_url->url_host)
			contacts[nc++] = m->m_url->url_host;
	in.contact_hosts = contacts;
	in.n_contact_hosts = nc;
	if (sip->sip_payload && sip->sip_content_type && sip->sip_content_type->c_type &&
	    su_casematch(sip->sip_content_type->c_type, "application/sdp") &&
	    natd_sdp_hosts(sip->sip_payload->pl_data, sip->sip_payload->pl_len, sdp_hosts, 8,
	                   sdp_buf, sizeof sdp_buf, &ns) == -EINVAL)
		ns = 0;
	in.sdp_hosts = sdp_hosts;
	in.n_sdp_hosts = ns;
	return natd_test(&in, p->cfg->sip.nat_detect);
}

/* A route URI "sip:IP:PORT;transport=X" that makes nta send to a flow. */
static void flow_route(const struct flow *f, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	unsigned port;

	if (f->remote.ss_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&f->remote;
		inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
		port = ntohs(v6->sin6_port);
		snprintf(buf, len, "%s:[%s]:%u;transport=%s",
		         f->transport == CFG_TP_TLS ? "sips" : "sip", host, port,
		         cfg_transport_name(f->transport));
	} else {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)&f->remote;
		inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
		port = ntohs(v4->sin_port);
		snprintf(buf, len, "%s:%s:%u;transport=%s",
		         f->transport == CFG_TP_TLS ? "sips" : "sip", host, port,
		         cfg_transport_name(f->transport));
	}
}

/* For TCP and TLS the flow is the connection itself (RFC 5626 §5.3): find
 * the open one; NULL when it is gone, and the caller answers 430.  Every
 * primary transport is searched, not only the first of the protocol (what
 * nta would do with the flow's URI): after a certificate reload or a
 * removed listener, connections accepted before live on as children of the
 * retired primary (retire_listener). */
static tport_t *flow_connection(struct proxy *p, const struct flow *f)
{
	char host[INET6_ADDRSTRLEN], port[8];
	tp_name_t tpn = {0};
	tport_t *master = nta_agent_tports(p->agent), *pri, *tp;

	if (!master)
		return NULL;
	if (f->remote.ss_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&f->remote;
		inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
		snprintf(port, sizeof port, "%u", ntohs(v6->sin6_port));
	} else {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)&f->remote;
		inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
		snprintf(port, sizeof port, "%u", ntohs(v4->sin_port));
	}
	tpn.tpn_proto = cfg_transport_name(f->transport);
	tpn.tpn_host = host;
	tpn.tpn_canon = host;
	tpn.tpn_port = port;
	for (pri = tport_primaries(master); pri; pri = tport_next(pri)) {
		if (!su_casematch(tport_name(pri)->tpn_proto, tpn.tpn_proto))
			continue;
		tp = tport_by_name(pri, &tpn);
		if (tp && !tport_is_primary(tp) && !tport_is_closed(tp))
			return tp;
	}
	return NULL;
}

/* A flow some device is registered over and that answers its keepalives. */
static bool flow_registered(struct proxy *p, const struct flow *f)
{
	const struct reg_binding *b = reg_find_flow(p->reg, f);

	return b && !b->unreachable;
}

/* ------------------------------------------------------------------ */
/* 2) request intake and policy */

static void ptr_destroy(struct ptr *t);
static int ptr_forward(struct ptr *t, enum edge_verdict v);
static tport_t *send_primary(struct proxy *p, const url_t *target);
static int ptr_ack_cancel(struct ptr *t, nta_incoming_t *irq, sip_t const *sip);

static const char *src_str(msg_t *msg, char *buf, size_t len)
{
	su_addrinfo_t *ai = msg_addrinfo(msg);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ai && ai->ai_addr) {
		if (ai->ai_addr->sa_family == AF_INET) {
			struct sockaddr_in *v4 = (struct sockaddr_in *)ai->ai_addr;
			inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
			port = ntohs(v4->sin_port);
		} else if (ai->ai_addr->sa_family == AF_INET6) {
			struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ai->ai_addr;
			inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
			port = ntohs(v6->sin6_port);
		}
	}
	snprintf(buf, len, "%s:%u", host, port);
	return buf;
}

/* FNV-1a over the fields that identify a request for loop detection
 * (RFC 3261 §16.6 item 8): Request-URI, From tag, To tag, Call-ID, CSeq
 * number, Route and Proxy-Require, as received.  A spiral changes the
 * Request-URI or the Route set and so the hash; a true loop brings back
 * the same request.  Route matters for in-dialog requests between two
 * devices through a PBX: the BYE passes us twice with the same
 * Request-URI, once with our Record-Route entries and the PBX's, once
 * with only our second one left. */
static uint64_t loop_hash(sip_t const *sip)
{
	uint64_t h = 1469598103934665603ULL;
	char buf[1024];
	int n;

	n = snprintf(buf, sizeof buf, URL_PRINT_FORMAT "|%s|%s|%s|%u",
	             URL_PRINT_ARGS(sip->sip_request->rq_url),
	             sip->sip_from && sip->sip_from->a_tag ? sip->sip_from->a_tag : "",
	             sip->sip_to && sip->sip_to->a_tag ? sip->sip_to->a_tag : "",
	             sip->sip_call_id ? sip->sip_call_id->i_id : "",
	             sip->sip_cseq ? sip->sip_cseq->cs_seq : 0);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof buf)
		n = sizeof buf;
	for (int i = 0; i < n; i++) {
		h ^= (unsigned char)buf[i];
		h *= 1099511628211ULL;
	}
	for (sip_route_t const *r = sip->sip_route; r; r = r->r_next) {
		char rb[512];
		int rn = snprintf(rb, sizeof rb, "|" URL_PRINT_FORMAT, URL_PRINT_ARGS(r->r_url));
		if (rn < 0)
			rn = 0;
		if ((size_t)rn >= sizeof rb)
			rn = sizeof rb - 1;
		for (int i = 0; i < rn; i++) {
			h ^= (unsigned char)rb[i];
			h *= 1099511628211ULL;
		}
	}
	for (sip_proxy_require_t *pr = sip->sip_proxy_require; pr; pr = pr->k_next)
		for (int i = 0; pr->k_items && pr->k_items[i]; i++)
			for (const char *c = pr->k_items[i]; *c; c++) {
				h ^= (unsigned char)*c;
				h *= 1099511628211ULL;
			}
	return h;
}

static int is_loop(struct proxy *p, sip_t const *sip, const char *expect_prefix)
{
	for (sip_via_t const *v = sip->sip_via; v; v = v->v_next) {
		unsigned long port = v->v_port ? strtoul(v->v_port, NULL, 10) : 5060;
		if (!v->v_branch || !v->v_host)
			continue;
		if (!edge_addrset_has_host(&p->self, v->v_host, (uint16_t)port) &&
		    !(p->cfg->sip.advertise && su_casematch(v->v_host, p->cfg->sip.advertise)))
			continue;
		if (su_casenmatch(v->v_branch, expect_prefix, strlen(expect_prefix)))
			return 1;
	}
	return 0;
}

/* Removes the Route entries that name us (from our Path or Record-Route).
 * The first one that carries a valid flow token in its user part tells
 * which device flow the request is for.  Every user part in a Route that
 * names us is a token we wrote: one that does not verify (altered, forged,
 * or signed with another secret) is reported in *bad_token (the first
 * error: -EBADMSG for a signature mismatch, -EINVAL for a malformed one). */
static int strip_own_routes(struct proxy *p, msg_t *msg, sip_t *sip, struct flow *flow,
                            int *have_flow, int *bad_token)
{
	int removed = 0;

	while (sip->sip_route && url_is_self(p, sip->sip_route->r_url)) {
		const char *user = sip->sip_route->r_url->url_user;
		struct flow f;
		int r = user ? flow_token_decode(user, strlen(user), p->flow_key, &f) : 1;

		if (r == 0 && !*have_flow) {
			*flow = f;
			*have_flow = 1;
		} else if (r < 0 && !*bad_token) {
			*bad_token = r;
		}
		sip_route_remove(msg, sip);
		removed++;
	}
	return removed;
}

/* path = no: a Request-URI that is one of our rewritten Contacts names the
 * device's flow and its own Contact. */
static int ruri_contact_token(struct proxy *p, const url_t *u, struct flow *flow, char **orig)
{
	char tok[1024];
	isize_t n;

	if (!u->url_params)
		return -ENOENT;
	n = url_param(u->url_params, CONTACT_TOKEN_PARAM, tok, sizeof tok);
	if (n <= 0 || (size_t)n >= sizeof tok)
		return -ENOENT;
	return flow_contact_decode(tok, strlen(tok), p->flow_key, flow, orig);
}

static int respond(struct ptr *t, int status, char const *phrase)
{
	t->status = status;
	if (nta_incoming_treply(t->server, status, phrase, TAG_END()) < 0)
		return 500;
	return status;
}

static int answer_options(struct ptr *t)
{
	t->proxy->stats.local_options++;
	t->status = 200;
	nta_incoming_treply(t->server, SIP_200_OK, SIPTAG_ALLOW_STR(ALLOWED_METHODS),
	                    SIPTAG_SUPPORTED_STR("path, outbound"),
	                    SIPTAG_ACCEPT_STR("application/sdp"),
	                    SIPTAG_SERVER_STR(PACKAGE_NAME "/" PACKAGE_VERSION), TAG_END());
	return 200;
}

/* Forwards an ACK for a 2xx (or any stray ACK) without state.  An ACK may
 * carry the answer to an offer made in a 2xx (late offer). */
static int forward_ack(struct proxy *p, msg_t *msg, sip_t *sip, const url_string_t *route,
                       tport_t *tp, const struct media_party *sender)
{
	msg_t *copy = msg_copy(msg);
	sip_t *cs;

	(void)sip;
	if (!copy)
		return -ENOMEM;
	if (p->media)
		(void)media_request(p->media, copy, sip_object(copy), sender, NULL); /* an answer */
	/* Stateless forwarding decrements Max-Forwards too (RFC 3261 §16.11). */
	cs = sip_object(copy);
	if (cs->sip_max_forwards && cs->sip_max_forwards->mf_count > 0) {
		cs->sip_max_forwards->mf_count--;
		msg_fragment_clear(cs->sip_max_forwards->mf_common);
	}
	if (!nta_outgoing_mcreate(p->agent, NULL, NULL, route, copy, NTATAG_STATELESS(1),
	                          TAG_IF(tp, NTATAG_TPORT(tp)), TAG_END())) {
		msg_destroy(copy);
		return -EIO;
	}
	p->stats.forwarded++;
	return 0;
}

static int pick_upstream(struct proxy *p, int after)
{
	time_t now = time(NULL);

	for (int i = after + 1; i < (int)p->n_up; i++)
		if (p->up[i].down_until <= now)
			return i;
	/* Every remaining one is held down: try the next anyway rather than
	 * refuse service outright. */
	return after + 1 < (int)p->n_up ? after + 1 : -1;
}

static enum proxy_method_idx method_idx(sip_method_t m)
{
	switch (m) {
	case sip_method_invite:
		return PROXY_M_INVITE;
	case sip_method_ack:
		return PROXY_M_ACK;
	case sip_method_bye:
		return PROXY_M_BYE;
	case sip_method_cancel:
		return PROXY_M_CANCEL;
	case sip_method_register:
		return PROXY_M_REGISTER;
	case sip_method_options:
		return PROXY_M_OPTIONS;
	case sip_method_prack:
		return PROXY_M_PRACK;
	case sip_method_update:
		return PROXY_M_UPDATE;
	case sip_method_info:
		return PROXY_M_INFO;
	case sip_method_message:
		return PROXY_M_MESSAGE;
	case sip_method_subscribe:
		return PROXY_M_SUBSCRIBE;
	case sip_method_notify:
		return PROXY_M_NOTIFY;
	case sip_method_refer:
		return PROXY_M_REFER;
	default:
		return PROXY_M_OTHER;
	}
}

const char *proxy_method_name(enum proxy_method_idx m)
{
	static const char *const names[PROXY_N_METHODS] = {
	        "INVITE", "ACK",  "BYE",     "CANCEL",    "REGISTER", "OPTIONS", "PRACK",
	        "UPDATE", "INFO", "MESSAGE", "SUBSCRIBE", "NOTIFY",   "REFER",   "other"};

	return (unsigned)m < PROXY_N_METHODS ? names[m] : "other";
}

/* The default leg's callback: every request that is not a retransmission
 * or a CANCEL of a known transaction lands here.  Return value: 0 when we
 * took the transaction (or answered it ourselves), a status code for nta to
 * answer with otherwise. */
static int proxy_request(struct proxy *p, nta_leg_t *leg, nta_incoming_t *irq, sip_t const *csip)
{
	char src[INET6_ADDRSTRLEN + 8];
	msg_t *msg = nta_incoming_getrequest(irq);
	sip_t *sip;
	su_addrinfo_t *ai;
	struct edge_request er = {0};
	enum edge_verdict v;
	const char *why = "";
	char loopkey[64];
	uint64_t lh;
	struct ptr *t;
	int status;
	struct flow src_flow, target_flow, ruri_flow;
	int have_src = 0, have_target = 0, bad_token = 0;
	unsigned natd = 0;
	char *orig_contact = NULL, *decoded = NULL, orig_buf[REG_CONTACT_MAX];

	(void)leg;
	if (!msg)
		return 500;
	sip = sip_object(msg);
	p->stats.requests++;
	p->stats.by_method[method_idx(csip->sip_request ? csip->sip_request->rq_method
	                                                : sip_method_unknown)]++;
	src_str(msg, src, sizeof src);

	if (!sip->sip_request || !sip->sip_via || !sip->sip_call_id || !sip->sip_cseq ||
	    !sip->sip_from || !sip->sip_to) {
		log_warn("malformed request from %s: missing mandatory header; 400", src);
		msg_destroy(msg);
		return 400;
	}

	/* Draining (sipnatctl drain, or a graceful stop): no new dialogs or
	 * out-of-dialog requests; requests inside existing dialogs (BYE,
	 * re-INVITE) still pass so that current calls end normally. */
	if (p->draining && sip->sip_request->rq_method != sip_method_ack &&
	    sip->sip_request->rq_method != sip_method_cancel &&
	    !(sip->sip_to && sip->sip_to->a_tag)) {
		/* Retry-After: a drain usually precedes a restart; callers and
		 * upstreams with several servers try another at once. */
		nta_incoming_treply(irq, 503, "Draining", SIPTAG_RETRY_AFTER_STR("30"), TAG_END());
		msg_destroy(msg);
		return 503;
	}

	/* Loop check comes before anything else changes the request. */
	lh = loop_hash(sip);
	snprintf(loopkey, sizeof loopkey, LOOP_BRANCH_TAG "%016llx", (unsigned long long)lh);
	if (sip->sip_request->rq_method != sip_method_ack && is_loop(p, sip, loopkey)) {
		p->stats.loops++;
		log_warn("loop detected for %s from %s; 482", sip->sip_request->rq_method_name,
		         src);
		msg_destroy(msg);
		return 482;
	}

	{
		int have = 0;
		er.had_own_route =
		        strip_own_routes(p, msg, sip, &target_flow, &have, &bad_token) > 0;
		have_target = have;
	}
	ai = msg_addrinfo(msg);
	er.from_upstream = ai && ai->ai_addr && from_upstream(p, ai->ai_addr);
	/* The flow token in our Record-Route names the device end of the
	 * dialog: it routes the upstream's requests to the device, never the
	 * device's own requests back to itself.  A device's request is routed
	 * upstream whatever its Route says, so its tokens decide nothing. */
	if (!er.from_upstream) {
		have_target = 0;
		bad_token = 0;
	}
	/* In a dialog the Route already named the flow, but a Request-URI that
	 * is one of our rewritten Contacts must still become the device's own
	 * Contact again (path = no). */
	if (er.from_upstream && !sip->sip_route && url_is_self(p, sip->sip_request->rq_url)) {
		int r = ruri_contact_token(p, sip->sip_request->rq_url,
		                           have_target ? &ruri_flow : &target_flow, &decoded);
		if (r == 0) {
			have_target = 1;
			snprintf(orig_buf, sizeof orig_buf, "%s", decoded);
			orig_contact = orig_buf;
			free(decoded);
		} else if (r != -ENOENT && !bad_token) {
			bad_token = r;
		}
	}
	/* A token that does not verify is never routed by anything else (the
	 * private Request-URI behind it is meaningless, or chosen by an
	 * attacker): refused here, and nothing is sent anywhere. */
	if (bad_token) {
		p->stats.refused++;
		p->stats.bad_tokens++;
		log_warn("refused %s %s from %s: flow token %s; %s",
		         sip->sip_request->rq_method_name, sip->sip_call_id->i_id, src,
		         bad_token == -EBADMSG
		                 ? "fails its HMAC (altered, forged or another secret)"
		                 : "malformed",
		         sip->sip_request->rq_method == sip_method_ack ? "ACK dropped" : "403");
		msg_destroy(msg);
		return sip->sip_request->rq_method == sip_method_ack ? 200 : 403;
	}
	/* RFC 5626 §5.3: a valid token whose flow is gone (the device
	 * unregistered, re-registered over another flow, or stopped answering
	 * keepalives) gets 430 Flow Failed, so that the registrar can try the
	 * device's other flows.  In-dialog requests are left to the flow
	 * itself: devices that never registered have dialogs too. */
	if (er.from_upstream && have_target && !sip->sip_route && !sip->sip_to->a_tag &&
	    sip->sip_request->rq_method != sip_method_ack &&
	    sip->sip_request->rq_method != sip_method_cancel && !flow_registered(p, &target_flow)) {
		char fl[96] = "?";
		flow_format(&target_flow, fl, sizeof fl);
		p->stats.flow_failed++;
		log_warn("refused %s %s from %s: flow %s is gone (no live registration); 430",
		         sip->sip_request->rq_method_name, sip->sip_call_id->i_id, src, fl);
		msg_destroy(msg);
		/* Sofia knows no phrase for 430: answer here, nta then only
		 * destroys the transaction. */
		nta_incoming_treply(irq, 430, FLOW_FAILED_PHRASE, TAG_END());
		return 430;
	}
	if (!er.from_upstream) {
		have_src = flow_of_request(p, irq, msg, &src_flow) == 0;
		natd = nat_verdict(p, sip, ai ? ai->ai_addr : NULL);
	}
	er.is_options = sip->sip_request->rq_method == sip_method_options;
	er.ruri_has_user = sip->sip_request->rq_url->url_user != NULL;
	er.ruri_is_self = url_is_self(p, sip->sip_request->rq_url);
	er.have_upstream = p->n_up > 0;
	er.in_dialog = sip->sip_to && sip->sip_to->a_tag;
	if (sip->sip_request->rq_url->url_host) {
		const char *h = sip->sip_request->rq_url->url_host;
		er.ruri_is_upstream = host_is_upstream_addr(p, h);
		er.ruri_in_domain = host_in_domains(p, h) || host_is_upstream_name(p, h);
	}
	if (sip->sip_route) {
		er.has_route = true;
		er.route_is_upstream = sip->sip_route->r_url->url_host &&
		                       (host_is_upstream_addr(p, sip->sip_route->r_url->url_host) ||
		                        host_is_upstream_name(p, sip->sip_route->r_url->url_host));
	}

	v = edge_decide(&er, &why);
	if (er.from_upstream && have_target && !sip->sip_route) {
		v = EDGE_TO_TARGET;
		why = "upstream request to a device flow";
	}
	if (log_enabled(CFG_LOG_DEBUG)) {
		char nb[128];
		natd_describe(natd, nb, sizeof nb);
		log_debug("%s %s from %s (%s%s%s): %s, %s", sip->sip_request->rq_method_name,
		          sip->sip_call_id->i_id, src, er.from_upstream ? "upstream" : "device",
		          er.from_upstream ? "" : ", nat: ",
		          er.from_upstream ? "" : (natd ? nb : "no"), edge_verdict_name(v), why);
	}

	/* Max-Forwards (RFC 3261 §16.3 item 3); OPTIONS with 0 is ours. */
	if (sip->sip_max_forwards && sip->sip_max_forwards->mf_count == 0 && v != EDGE_LOCAL) {
		if (er.is_options) {
			v = EDGE_LOCAL;
		} else {
			p->stats.too_many_hops++;
			msg_destroy(msg);
			return 483;
		}
	}

	if (sip->sip_request->rq_method == sip_method_ack) {
		/* ACK for a 2xx travels end to end without a transaction.  The
		 * same policy applies: a device may only reach an upstream. */
		struct media_party ack_sender = {.from_upstream = er.from_upstream,
		                                 .nated = natd != 0,
		                                 .src = ai ? ai->ai_addr : NULL,
		                                 .flow = have_src ? &src_flow : NULL};
		if (v == EDGE_TO_TARGET && have_target && !sip->sip_route) {
			char route[128];
			flow_route(&target_flow, route, sizeof route);
			if (orig_contact)
				sip_add_tl(msg, sip,
				           SIPTAG_REQUEST(sip_request_create(
				                   msg_home(msg), SIP_METHOD_ACK,
				                   URL_STRING_MAKE(orig_contact), NULL)),
				           TAG_END());
			/* Over the flow's own connection, like every request to a
			 * device (flow_connection). */
			forward_ack(p, msg, sip, (url_string_t *)route,
			            target_flow.transport != CFG_TP_UDP
			                    ? flow_connection(p, &target_flow)
			                    : NULL,
			            &ack_sender);
		} else if (v == EDGE_TO_TARGET) {
			forward_ack(p, msg, sip, NULL,
			            send_primary(p, sip->sip_route ? sip->sip_route->r_url
			                                           : sip->sip_request->rq_url),
			            &ack_sender);
		} else if (v == EDGE_TO_UPSTREAM) {
			int u = pick_upstream(p, -1);
			if (u >= 0)
				forward_ack(p, msg, sip, (url_string_t *)p->up[u].url,
				            send_primary(p, p->up[u].url), &ack_sender);
		} else {
			log_debug("ACK from %s dropped: %s", src, why);
		}
		msg_destroy(msg);
		return 200; /* nta never answers an ACK; it only frees it */
	}

	if (v == EDGE_REFUSE) {
		p->stats.refused++;
		log_warn("refused %s to " URL_PRINT_FORMAT " from %s: %s; 403",
		         sip->sip_request->rq_method_name, URL_PRINT_ARGS(sip->sip_request->rq_url),
		         src, why);
		msg_destroy(msg);
		return 403;
	}
	if (v == EDGE_NOT_FOUND) {
		log_info("%s to " URL_PRINT_FORMAT " from %s: %s; 404",
		         sip->sip_request->rq_method_name, URL_PRINT_ARGS(sip->sip_request->rq_url),
		         src, why);
		msg_destroy(msg);
		return 404;
	}

	t = su_zalloc(p->home, sizeof *t);
	if (!t) {
		msg_destroy(msg);
		return 500;
	}
	t->from_upstream = er.from_upstream;
	t->have_src_flow = have_src;
	t->src_flow = src_flow;
	t->have_target_flow = have_target;
	t->target_flow = target_flow;
	t->natd = natd;
	if (orig_contact)
		t->new_ruri = su_strdup(p->home, orig_contact);
	t->proxy = p;
	t->server = irq;
	t->msg = msg;
	t->sip = sip;
	t->method = sip->sip_request->rq_method;
	t->upstream = -1;
	snprintf(t->branch, sizeof t->branch, "%s.%08lx%08lx", loopkey, (unsigned long)random(),
	         (unsigned long)random());
	if ((t->next = p->transactions))
		t->next->prev = &t->next;
	t->prev = &p->transactions;
	p->transactions = t;
	p->stats.transactions++;
	if (t->method != sip_method_cancel)
		nta_incoming_bind(irq, ptr_ack_cancel, t);

	if (v == EDGE_LOCAL) {
		if (er.is_options)
			status = answer_options(t);
		else
			status = respond(t, SIP_405_METHOD_NOT_ALLOWED);
		/* nta destroys the server transaction when we return a final
		 * status from inside its callback. */
		t->server = NULL;
		ptr_destroy(t);
		return status;
	}

	if (t->method == sip_method_invite)
		nta_incoming_treply(irq, SIP_100_TRYING, TAG_END());

	status = ptr_forward(t, v);
	if (status >= 200) {
		t->server = NULL;
		ptr_destroy(t);
		return status;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* 3) forwarding and failover */

static int ptr_response(struct ptr *t, nta_outgoing_t *orq, sip_t const *sip);
static void ptr_failover_timeout(su_root_magic_t *m, su_timer_t *timer, struct ptr *t);

static const char *out_transport(const url_t *u)
{
	char buf[16];

	if (u && u->url_type == url_sips)
		return "tls";
	if (u && u->url_params && url_param(u->url_params, "transport", buf, sizeof buf) > 0) {
		if (!strcasecmp(buf, "tcp"))
			return "tcp";
		if (!strcasecmp(buf, "tls"))
			return "tls";
		return "udp";
	}
	return "udp";
}

/* The primary transport to send a request for target from, or NULL to let
 * nta choose.  nta takes the first primary of the protocol, which after a
 * reload retired one (retire_listener) is an old one: the connections it
 * opens would carry the old certificate and trust the old CAs.  So once a
 * listener was retired we name the live one's primary (nta then matches it
 * by its tport ident). */
static tport_t *send_primary(struct proxy *p, const url_t *target)
{
	enum cfg_transport want;
	bool v6;

	if (!p->n_retired || !target || !target->url_host)
		return NULL;
	if (transport_of(out_transport(target), &want) < 0)
		return NULL;
	v6 = strchr(target->url_host, ':') != NULL;
	for (size_t i = 0; i < p->n_bound; i++) {
		tport_t *pri = p->bound[i].primary;

		if (p->bound[i].conf.transport == want && pri &&
		    (v6 ? tport_has_ip6(pri) : tport_has_ip4(pri)))
			return pri;
	}
	return NULL;
}

static uint16_t port_for(struct proxy *p, const char *proto)
{
	if (!strcmp(proto, "tcp"))
		return p->port_of[CFG_TP_TCP] ? p->port_of[CFG_TP_TCP] : p->port_of[CFG_TP_UDP];
	if (!strcmp(proto, "tls"))
		return p->port_of[CFG_TP_TLS];
	return p->port_of[CFG_TP_UDP] ? p->port_of[CFG_TP_UDP] : p->port_of[CFG_TP_TCP];
}

/* Our own URI for Record-Route and Path: "<sip:[TOKEN@]host:port;...;lr>". */
static int own_uri(struct proxy *p, const char *proto, const char *token, const char *extra,
                   char *buf, size_t len)
{
	uint16_t port = port_for(p, proto);
	int r;

	if (!port)
		return -EINVAL;
	/* TLS is named by transport=tls, not by a sips: URI: sips would ask
	 * for TLS on every hop to the target (RFC 3261 §19.1.2), which the
	 * UDP hop to the PBX is not, and phones such as baresip 1.0 cannot
	 * follow a sips: Route (the ACK for a 200 went nowhere). */
	if (!strcmp(proto, "udp"))
		r = snprintf(buf, len, "<sip:%s%s%s:%u;lr%s>", token ? token : "", token ? "@" : "",
		             p->rr_host, port, extra);
	else
		r = snprintf(buf, len, "<sip:%s%s%s:%u;transport=%s;lr%s>", token ? token : "",
		             token ? "@" : "", p->rr_host, port, proto, extra);
	return r < 0 || (size_t)r >= len ? -ENOSPC : 0;
}

static int add_rr(struct proxy *p, msg_t *msg, sip_t *sip, const char *proto, const char *token)
{
	char rr[CFG_HOST_MAX + FLOW_TOKEN_MAX + 64];

	if (own_uri(p, proto, token, "", rr, sizeof rr) < 0)
		return -EINVAL;
	sip_record_route_t *h = sip_record_route_make(msg_home(msg), rr);
	if (!h)
		return -ENOMEM;
	/* Record-Route values are prepended: each proxy puts its own on top. */
	return msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)h) < 0 ? -ENOMEM : 0;
}

static int creates_dialog(sip_method_t m)
{
	return m == sip_method_invite || m == sip_method_subscribe || m == sip_method_refer ||
	       m == sip_method_notify;
}

/* What the media module needs to know about a device flow: whether the
 * device registered from behind NAT (the flow itself does not say). */
static bool flow_nated(struct proxy *p, const struct flow *f)
{
	struct reg_binding *b = reg_find_flow(p->reg, f);

	return b ? b->natd != 0 : true;
}

static void party_sender(struct ptr *t, struct media_party *mp)
{
	su_addrinfo_t *ai = msg_addrinfo(t->msg);

	memset(mp, 0, sizeof *mp);
	mp->from_upstream = t->from_upstream;
	mp->nated = t->natd != 0;
	mp->src = ai ? ai->ai_addr : NULL;
	mp->flow = t->have_src_flow ? &t->src_flow : NULL;
}

static void party_target(struct ptr *t, struct media_party *mp)
{
	memset(mp, 0, sizeof *mp);
	if (t->have_target_flow) {
		mp->nated = flow_nated(t->proxy, &t->target_flow);
		mp->src = (const struct sockaddr *)&t->target_flow.remote;
		mp->flow = &t->target_flow;
	} else {
		mp->from_upstream = !t->from_upstream;
	}
}

/* Replaces a Contact's URI by ours carrying the flow and the original URI
 * (path = no), keeping its header parameters (expires, +sip.instance...). */
static int rewrite_contact(struct proxy *p, msg_t *msg, sip_contact_t *m, const struct flow *f,
                           const char *proto)
{
	char orig[REG_CONTACT_MAX], tok[1024], uri[1400];
	url_t *u;
	uint16_t port = port_for(p, proto);

	if (!m->m_url->url_host || !port)
		return -EINVAL;
	if (url_e(orig, sizeof orig, m->m_url) >= (isize_t)sizeof orig)
		return -ENOSPC;
	orig[sizeof orig - 1] = '\0';
	if (flow_contact_encode(f, orig, p->flow_key, tok, sizeof tok) < 0)
		return -ENOSPC;
	bool udp = !strcmp(proto, "udp");
	snprintf(uri, sizeof uri, "sip:%s%s%s:%u;%s%s%s%s=%s",
	         m->m_url->url_user ? m->m_url->url_user : "", m->m_url->url_user ? "@" : "",
	         p->rr_host, port, udp ? "" : "transport=", udp ? "" : proto, udp ? "" : ";",
	         CONTACT_TOKEN_PARAM, tok);
	u = url_make(msg_home(msg), uri);
	if (!u)
		return -ENOMEM;
	*m->m_url = *u;
	msg_fragment_clear(m->m_common);
	return 0;
}

/* Restores the device's own Contact in a Contact we rewrote. */
static int restore_contact(struct proxy *p, msg_t *msg, sip_contact_t *m)
{
	struct flow f;
	char *orig = NULL;
	url_t *u;

	if (!url_is_self(p, m->m_url) || ruri_contact_token(p, m->m_url, &f, &orig) < 0)
		return -ENOENT;
	u = url_make(msg_home(msg), orig);
	free(orig);
	if (!u)
		return -ENOMEM;
	*m->m_url = *u;
	msg_fragment_clear(m->m_common);
	return 0;
}

/* REGISTER from a device: make the device reachable through us, either
 * with Path (RFC 3327, the flow in the URI user part, ;ob per RFC 5626
 * §5.1) or, for registrars that ignore Path, by rewriting each Contact. */
static void nat_register(struct ptr *t, msg_t *c, sip_t *cs, const char *out_proto)
{
	struct proxy *p = t->proxy;
	char tok[FLOW_TOKEN_MAX], path[CFG_HOST_MAX + FLOW_TOKEN_MAX + 64];

	if (!t->have_src_flow)
		return;
	if (p->cfg->sip.path) {
		if (flow_token_encode(&t->src_flow, p->flow_key, tok, sizeof tok) < 0 ||
		    own_uri(p, out_proto, tok, ";ob", path, sizeof path) < 0)
			return;
		sip_path_t *h = sip_path_make(msg_home(c), path);
		if (h)
			msg_header_insert(c, (msg_pub_t *)cs, (msg_header_t *)h);
		if (!sip_has_supported(cs->sip_supported, "path"))
			sip_add_tl(c, cs, SIPTAG_SUPPORTED_STR("path"), TAG_END());
		return;
	}
	for (sip_contact_t *m = cs->sip_contact; m; m = m->m_next)
		if (m->m_url->url_type != url_any)
			rewrite_contact(p, c, m, &t->src_flow, out_proto);
}

/* Builds the forwarded copy once: Max-Forwards decremented, Record-Route
 * added for dialog-creating requests (two entries when the transport
 * changes, RFC 3261 §16.6 item 4 and RFC 5658) carrying the device's flow
 * token, NAT handling for REGISTER and Contacts, then hands it to nta. */
static int ptr_prepare(struct ptr *t, const url_t *next_hop)
{
	struct proxy *p = t->proxy;
	msg_t *c = msg_copy(t->msg);
	sip_t *cs;
	tport_t *in_tp;
	const char *in_proto = "udp", *out_proto;
	const struct flow *dev_flow = t->have_target_flow ? &t->target_flow
	                              : t->have_src_flow  ? &t->src_flow
	                                                  : NULL;
	char tok[FLOW_TOKEN_MAX];
	const char *token = NULL;

	if (!c)
		return -ENOMEM;
	cs = sip_object(c);
	if (t->new_ruri) {
		url_t *u = url_make(msg_home(c), t->new_ruri);
		if (u) {
			*cs->sip_request->rq_url = *u;
			msg_fragment_clear(cs->sip_request->rq_common);
		}
	}
	if (cs->sip_max_forwards) {
		if (cs->sip_max_forwards->mf_count > 0)
			cs->sip_max_forwards->mf_count--;
		/* Drop the cached wire form so the new count is encoded. */
		msg_fragment_clear(cs->sip_max_forwards->mf_common);
	} else {
		sip_add_tl(c, cs, SIPTAG_MAX_FORWARDS_STR("70"), TAG_END());
	}
	if (creates_dialog(t->method) && !(cs->sip_to && cs->sip_to->a_tag)) {
		/* The HMAC is only worth computing for a Record-Route. */
		if (dev_flow && flow_token_encode(dev_flow, p->flow_key, tok, sizeof tok) > 0)
			token = tok;
		in_tp = nta_incoming_transport(p->agent, t->server, NULL);
		if (in_tp) {
			in_proto = tport_name(in_tp)->tpn_proto;
			tport_unref(in_tp);
		}
		out_proto = out_transport(next_hop);
		if (strcasecmp(in_proto, out_proto) != 0) {
			add_rr(p, c, cs,
			       su_casematch(in_proto, "tcp")   ? "tcp"
			       : su_casematch(in_proto, "tls") ? "tls"
			                                       : "udp",
			       token);
			add_rr(p, c, cs, out_proto, token);
		} else {
			add_rr(p, c, cs, out_proto, token);
		}
	}
	/* Media first: it records the parties' own Contacts, which the
	 * Contact rewriting below would hide. */
	if (p->media) {
		struct media_party snd, tgt;
		party_sender(t, &snd);
		party_target(t, &tgt);
		int r = media_request(p->media, c, cs, &snd, &tgt);
		if (r < 0) {
			msg_destroy(c);
			return r;
		}
	}
	if (!t->from_upstream && t->method == sip_method_register)
		nat_register(t, c, cs, out_transport(next_hop));
	else if (!t->from_upstream && !p->cfg->sip.path && t->have_src_flow &&
	         creates_dialog(t->method))
		for (sip_contact_t *m = cs->sip_contact; m; m = m->m_next)
			rewrite_contact(p, c, m, &t->src_flow, out_transport(next_hop));

	if (t->fwd)
		msg_destroy(t->fwd);
	t->fwd = c;
	return 0;
}

static int ptr_send(struct ptr *t, const url_string_t *route, tport_t *tp)
{
	struct proxy *p = t->proxy;
	msg_t *fwd = t->fwd;

	/* nta takes the message it is given.  A failover rebuilds the copy
	 * from t->msg (ptr_prepare), so there is no need to keep a second
	 * copy of every forwarded request alive for the transaction's life. */
	if (!fwd)
		return -EINVAL;
	if (!tp) {
		sip_t const *fs = sip_object(fwd);
		const url_t *target = route && !url_string_p(route) ? route->us_url
		                      : fs->sip_route               ? fs->sip_route->r_url
		                                                    : fs->sip_request->rq_url;
		tp = send_primary(p, target);
	}
	t->fwd = NULL;
	t->client = nta_outgoing_mcreate(p->agent, ptr_response, t, route, fwd,
	                                 NTATAG_BRANCH_KEY(t->branch), TAG_IF(tp, NTATAG_TPORT(tp)),
	                                 TAG_END());
	if (!t->client) {
		msg_destroy(fwd);
		return -EIO;
	}
	p->stats.forwarded++;
	return 0;
}

static int ptr_try_upstream(struct ptr *t)
{
	struct proxy *p = t->proxy;
	int u;

	for (;;) {
		u = pick_upstream(p, t->upstream);
		if (u < 0)
			return -ENOENT;
		t->upstream = u;
		/* A failed-over request needs a new branch. */
		snprintf(t->branch + strlen(LOOP_BRANCH_TAG) + 16,
		         sizeof t->branch - strlen(LOOP_BRANCH_TAG) - 16, ".%08lx%08lx",
		         (unsigned long)random(), (unsigned long)random());
		int r = ptr_prepare(t, p->up[u].url);
		if (r < 0)
			return r;
		if (ptr_send(t, (url_string_t *)p->up[u].url, NULL) == 0)
			break;
		log_warn("upstream %s: cannot send; trying the next", p->up[u].uri);
		p->up[u].down_until = time(NULL) + UPSTREAM_HOLDDOWN_SEC;
	}
	t->saw_response = 0;
	if (!t->timer)
		t->timer =
		        su_timer_create(su_root_task(p->root), p->cfg->sip.failover_timeout * 1000);
	if (t->timer && p->n_up > (size_t)u + 1)
		su_timer_set_interval(t->timer, ptr_failover_timeout, t,
		                      p->cfg->sip.failover_timeout * 1000);
	return 0;
}

/* The media relay has no ports left for this offer (media_request): 503
 * with Retry-After (RFC 3261 §21.5.4), so that the caller retries later
 * or elsewhere instead of getting a call without audio. */
static int relay_full(struct ptr *t)
{
	t->proxy->stats.relay_full++;
	log_warn("%s %s refused: the media relay has no ports left; 503",
	         t->sip->sip_request->rq_method_name,
	         t->sip->sip_call_id ? t->sip->sip_call_id->i_id : "-");
	t->status = 503;
	if (nta_incoming_treply(t->server, 503, "Media Relay Full", SIPTAG_RETRY_AFTER_STR("10"),
	                        TAG_END()) < 0)
		return 500;
	return 503;
}

static int ptr_forward(struct ptr *t, enum edge_verdict v)
{
	struct proxy *p = t->proxy;
	int r;

	if (v == EDGE_TO_UPSTREAM) {
		r = ptr_try_upstream(t);
		if (r == -ENOSPC)
			return relay_full(t);
		return r == 0 ? 0 : r == -ENOENT ? 503 : 500;
	}
	if (t->have_target_flow && !t->sip->sip_route) {
		/* To a device: over the exact flow it registered or called on. */
		char route[128];
		url_t *ru;
		tport_t *tp = NULL;

		flow_route(&t->target_flow, route, sizeof route);
		ru = url_make(p->home, route);
		if (!ru)
			return 500;
		if (t->target_flow.transport != CFG_TP_UDP) {
			tp = flow_connection(p, &t->target_flow);
			if (!tp) {
				su_free(p->home, ru);
				log_info("flow %s is closed; 430", route);
				/* RFC 5626 §5.3: Flow Failed */
				return respond(t, 430, FLOW_FAILED_PHRASE);
			}
		}
		r = ptr_prepare(t, ru);
		if (r == 0)
			r = ptr_send(t, (url_string_t *)ru, tp);
		su_free(p->home, ru);
		if (r == -ENOSPC)
			return relay_full(t);
		return r == 0 ? 0 : 500;
	}
	r = ptr_prepare(t,
	                t->sip->sip_route ? t->sip->sip_route->r_url : t->sip->sip_request->rq_url);
	if (r == -ENOSPC)
		return relay_full(t);
	if (r < 0)
		return 500;
	return ptr_send(t, NULL, NULL) == 0 ? 0 : 502;
}

/* Called by the su_root when an upstream has said nothing at all for
 * failover_timeout seconds.  A silent upstream is treated as down: the
 * client transaction is abandoned (no provisional means no CANCEL is
 * possible) and the next upstream gets the request. */
static void ptr_failover_timeout(su_root_magic_t *m, su_timer_t *timer, struct ptr *t)
{
	struct proxy *p = t->proxy;

	(void)m;
	(void)timer;
	su_timer_reset(t->timer);
	if (t->saw_response || t->canceled || t->upstream < 0)
		return;
	log_warn("upstream %s: no answer in %us; failing over", p->up[t->upstream].uri,
	         p->cfg->sip.failover_timeout);
	p->up[t->upstream].down_until = time(NULL) + UPSTREAM_HOLDDOWN_SEC;
	p->stats.failovers++;
	nta_outgoing_destroy(t->client);
	t->client = NULL;
	if (ptr_try_upstream(t) < 0) {
		respond(t, SIP_408_REQUEST_TIMEOUT);
		ptr_destroy(t);
	}
}

/* ------------------------------------------------------------------ */
/* 4) responses, CANCEL */

static void state_changed(struct proxy *p)
{
	p->reg_dirty = 1;
}

static const char *header_param(msg_param_t const *params, const char *name)
{
	const char *v = msg_params_find(params, name);
	return v ? v : NULL;
}

/* RFC 5626: +sip.instance and reg-id identify a flow across NAT changes. */
static void binding_identity(sip_contact_t const *m, struct reg_binding *b)
{
	const char *inst = header_param(m->m_params, "+sip.instance");
	const char *regid = header_param(m->m_params, "reg-id");

	b->instance = inst ? inst : "";
	b->reg_id = regid ? (unsigned)strtoul(regid, NULL, 10) : 0;
	b->outbound = url_has_param(m->m_url, "ob") != 0;
}

/* The upstream accepted a REGISTER: remember, for every Contact the device
 * sent, the flow it came on and the expiry the upstream granted (from the
 * 2xx's Contact list, which holds all current bindings of the AOR). */
static void register_accepted(struct ptr *t, sip_t const *rs)
{
	struct proxy *p = t->proxy;
	sip_t const *rq = t->sip;
	char aor[REG_AOR_MAX];
	time_t now = time(NULL);
	unsigned default_exp = rs->sip_expires ? rs->sip_expires->ex_delta : 3600;

	if (!rq->sip_to || url_e(aor, sizeof aor, rq->sip_to->a_url) >= (isize_t)sizeof aor)
		return;
	aor[sizeof aor - 1] = '\0';
	for (sip_contact_t const *m = rq->sip_contact; m; m = m->m_next) {
		struct reg_binding b, *old;
		char contact[REG_CONTACT_MAX];
		unsigned exp = 0;
		int found = 0;
		struct flow old_flow;
		bool moved = false;

		memset(&b, 0, sizeof b);
		if (m->m_url->url_type == url_any) {
			if (reg_remove(p->reg, aor, "*", NULL, 0) > 0)
				state_changed(p);
			continue;
		}
		b.aor = aor;
		if (url_e(contact, sizeof contact, m->m_url) >= (isize_t)sizeof contact)
			continue;
		contact[sizeof contact - 1] = '\0';
		b.contact = contact;
		binding_identity(m, &b);
		/* Find this contact among those the registrar returned. */
		for (sip_contact_t const *g = rs->sip_contact; g && !found; g = g->m_next) {
			char gc[REG_CONTACT_MAX];
			struct flow gf;
			char *orig = NULL;

			if (p->cfg->sip.path) {
				found = url_cmp(g->m_url, m->m_url) == 0;
			} else if (ruri_contact_token(p, g->m_url, &gf, &orig) == 0) {
				found = !strcmp(orig, b.contact);
				free(orig);
			} else if (url_e(gc, sizeof gc, g->m_url) > 0) {
				found = !strcmp(gc, b.contact);
			}
			if (found)
				exp = g->m_expires ? (unsigned)strtoul(g->m_expires, NULL, 10)
				                   : default_exp;
		}
		if (!found || exp == 0) {
			if (reg_remove(p->reg, b.aor, b.contact, b.instance, b.reg_id) > 0) {
				log_info("unregistered %s (%s)", b.aor, b.contact);
				state_changed(p);
			}
			continue;
		}
		b.flow = t->src_flow;
		b.natd = t->natd;
		b.expires = now + exp;
		if (b.natd && b.flow.transport == CFG_TP_UDP && p->cfg->sip.keepalive != CFG_KA_OFF)
			b.ka_due = now + p->cfg->sip.keepalive_interval;
		/* A device that re-registers from a new NAT port (or a new TCP
		 * connection) replaces its flow: requests carrying the old
		 * flow's token get 430 from now on (RFC 5626 §5.3). */
		old = reg_find(p->reg, b.aor, b.contact, b.instance, b.reg_id);
		if (old && !flow_equal(&old->flow, &b.flow)) {
			old_flow = old->flow;
			moved = true;
		}
		int r = reg_update(p->reg, &b, NULL);
		if (r >= 0) {
			char fl[96], ofl[96];
			flow_format(&b.flow, fl, sizeof fl);
			if (moved && flow_format(&old_flow, ofl, sizeof ofl) > 0)
				log_info("flow of %s (%s) moved from %s to %s", b.aor, b.contact,
				         ofl, fl);
			log_info("%s %s via %s%s, %us", r ? "registered" : "refreshed", b.aor, fl,
			         b.natd ? " (NAT)" : "", exp);
			state_changed(p);
		} else {
			log_warn("cannot keep the binding of %s (%s): %s", b.aor, b.contact,
			         strerror(-r));
		}
	}
}

/* NAT handling on a response before it goes back: record registrations,
 * show the device its own Contacts again, and (path = no) make a device's
 * Contact in answers to requests from upstream point at us. */
static void nat_response(struct ptr *t, msg_t *resp, sip_t *rs, int status)
{
	struct proxy *p = t->proxy;

	if (p->media) {
		struct media_party who;
		su_addrinfo_t *ai = msg_addrinfo(resp);
		party_target(t, &who);
		if (!t->have_target_flow && ai)
			who.src = ai->ai_addr;
		media_response(p->media, resp, rs, t->sip, &who);
	}

	if (!t->from_upstream && t->method == sip_method_register && status >= 200 &&
	    status < 300 && t->have_src_flow) {
		register_accepted(t, rs);
		if (!p->cfg->sip.path)
			for (sip_contact_t *m = rs->sip_contact; m; m = m->m_next)
				restore_contact(p, resp, m);
		return;
	}
	if (t->have_target_flow && !p->cfg->sip.path && status > 100 && status < 300 &&
	    creates_dialog(t->method)) {
		tport_t *in_tp = nta_incoming_transport(p->agent, t->server, NULL);
		const char *proto = "udp";
		if (in_tp) {
			proto = tport_name(in_tp)->tpn_proto;
			tport_unref(in_tp);
		}
		for (sip_contact_t *m = rs->sip_contact; m; m = m->m_next)
			rewrite_contact(p, resp, m, &t->target_flow,
			                su_casematch(proto, "tcp")   ? "tcp"
			                : su_casematch(proto, "tls") ? "tls"
			                                             : "udp");
	}
}

static int ptr_response(struct ptr *t, nta_outgoing_t *orq, sip_t const *sip)
{
	struct proxy *p = t->proxy;
	int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);

	if (status == 100) {
		t->saw_response = 1;
		return 0; /* hop by hop: our own 100 already went back */
	}
	if (t->upstream >= 0 && (status == 503 || status == 408) && !t->canceled &&
	    t->status < 101 && (size_t)t->upstream + 1 < p->n_up) {
		log_warn("upstream %s answered %d; failing over", p->up[t->upstream].uri, status);
		p->up[t->upstream].down_until = time(NULL) + UPSTREAM_HOLDDOWN_SEC;
		p->stats.failovers++;
		nta_outgoing_destroy(t->client);
		t->client = NULL;
		if (ptr_try_upstream(t) == 0)
			return 0;
	}
	t->saw_response = 1;
	if (t->upstream >= 0)
		p->up[t->upstream].down_until = 0;
	if (t->timer)
		su_timer_reset(t->timer);

	if (sip) {
		msg_t *response = nta_outgoing_getresponse(orq);
		if (response) {
			sip_t *rs = sip_object(response);
			sip_via_remove(response, rs);
			nat_response(t, response, rs, status);
			if (nta_incoming_mreply(t->server, response) == 0) {
				p->stats.responses++;
				if (status >= 100 && status < 700) {
					p->stats.by_class[status / 100]++;
					p->stats.by_code[status - 100]++;
				}
			}
		}
	} else {
		if (status < 300 || status > 699)
			status = 500;
		nta_incoming_treply(t->server, status, sip_status_phrase(status), TAG_END());
	}
	if (status > t->status)
		t->status = status;

	if (status >= 200) {
		/* Late 2xx retransmissions reach the default outgoing
		 * transaction and are forwarded statelessly. */
		ptr_destroy(t);
	}
	return 0;
}

/* Bound to the server transaction: receives the CANCEL that nta matched to
 * it (nta has already answered the CANCEL with 200), and NULL when the
 * server transaction is gone. */
static int ptr_ack_cancel(struct ptr *t, nta_incoming_t *irq, sip_t const *sip)
{
	(void)irq;
	if (!sip) {
		ptr_destroy(t);
		return 0;
	}
	if (sip->sip_request && sip->sip_request->rq_method == sip_method_cancel) {
		t->canceled = 1;
		if (t->client && t->status < 200)
			nta_outgoing_tcancel(t->client, NULL, NULL, TAG_END());
		return 200;
	}
	return 0;
}

/* Stray responses: 2xx retransmissions after the INVITE transaction ended,
 * responses to stateless forwards.  Relay them by Via without state. */
static int stray_response(struct ptr *t, nta_outgoing_t *orq, sip_t const *sip)
{
	msg_t *response = nta_outgoing_getresponse(orq);

	if (!response)
		return 0;
	if (sip && sip->sip_via && sip->sip_via->v_next) {
		sip_t *rs = sip_object(response);
		sip_via_remove(response, rs);
		if (t->proxy->media) {
			/* A 2xx retransmission carries the SDP again: it must
			 * say what the first one said after our rewrite. */
			su_addrinfo_t *ai = msg_addrinfo(response);
			struct media_party who = {.from_upstream =
			                                  ai && ai->ai_addr &&
			                                  from_upstream(t->proxy, ai->ai_addr),
			                          .src = ai ? ai->ai_addr : NULL};
			media_response(t->proxy->media, response, rs, NULL, &who);
		}
		int st = rs->sip_status ? rs->sip_status->st_status : 0;
		nta_incoming_mreply(t->server, response);
		t->proxy->stats.responses++;
		if (st >= 100 && st < 700) {
			t->proxy->stats.by_class[st / 100]++;
			t->proxy->stats.by_code[st - 100]++;
		}
	} else {
		msg_destroy(response);
	}
	return 0;
}

static void ptr_destroy(struct ptr *t)
{
	struct proxy *p = t->proxy;

	if (t == p->stateless)
		return;
	if (t->prev) {
		if ((*t->prev = t->next))
			t->next->prev = t->prev;
		t->prev = NULL;
		p->stats.transactions--;
	}
	if (t->timer)
		su_timer_destroy(t->timer);
	if (t->client)
		nta_outgoing_destroy(t->client);
	if (t->fwd)
		msg_destroy(t->fwd);
	if (t->msg)
		msg_destroy(t->msg);
	if (t->server)
		nta_incoming_destroy(t->server);
	su_free(p->home, t);

	if (p->draining && !p->transactions && p->drain_done) {
		void (*done)(void *) = p->drain_done;
		p->drain_done = NULL;
		done(p->drain_arg);
	}
}

/* Messages nta could not attach to any transaction or leg: stray
 * responses come through the default outgoing transaction; what arrives
 * here is logged and dropped. */
static int agent_message(struct proxy *p, nta_agent_t *agent, msg_t *msg, sip_t *sip)
{
	char src[INET6_ADDRSTRLEN + 8];

	(void)agent;
	log_debug("dropped a message from %s nta could not use (%s)", src_str(msg, src, sizeof src),
	          sip && sip->sip_status ? "response" : "request");
	(void)p;
	msg_destroy(msg);
	return 0;
}

/* ------------------------------------------------------------------ */
/* keepalives and registration upkeep */

static void ka_free(struct ptr *k)
{
	struct proxy *p = k->proxy;

	if (k->client)
		nta_outgoing_destroy(k->client);
	su_free(p->home, k->ka_aor);
	su_free(p->home, k->ka_contact);
	su_free(p->home, k->ka_instance);
	su_free(p->home, k);
}

/* One keepalive miss: the keepalive before this one got no answer within
 * a keepalive interval, or nta reported it failed (ICMP, 408). */
static void ka_miss(struct proxy *p, struct reg_binding *b)
{
	b->ka_waiting = false;
	b->ka_failures++;
	if (b->ka_failures >= p->cfg->sip.keepalive_failures && !b->unreachable) {
		b->unreachable = true;
		log_warn("device %s (%s) unreachable: %u keepalives unanswered", b->aor, b->contact,
		         b->ka_failures);
	}
}

/* Response (or local failure) to a keepalive OPTIONS.  Any response from
 * the device, even an error, proves the flow still works, and so does a
 * late answer to an earlier keepalive.  A failure counts only for the
 * keepalive still awaited: older ones were counted as missed when the
 * next one was sent. */
static int ka_response(struct ptr *k, nta_outgoing_t *orq, sip_t const *sip)
{
	struct proxy *p = k->proxy;
	int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);
	struct reg_binding *b;

	if (status < 200)
		return 0;
	b = reg_find(p->reg, k->ka_aor, k->ka_contact, k->ka_instance, k->ka_reg_id);
	if (b) {
		/* nta answers 408 itself on timeout and 503 on a transport
		 * error (ICMP), with a response object of its own: both mean
		 * the device did not answer. */
		if (status == 408 || status == 503) {
			if (b->ka_waiting && b->ka_seq == k->ka_seq)
				ka_miss(p, b);
		} else {
			if (b->unreachable)
				log_info("device %s (%s) reachable again", b->aor, b->contact);
			b->ka_failures = 0;
			b->unreachable = false;
			if (b->ka_seq == k->ka_seq)
				b->ka_waiting = false;
			b->last_ka_ok = time(NULL);
		}
	}
	ka_free(k);
	return 0;
}

static void ka_send_options(struct proxy *p, struct reg_binding *b)
{
	struct ptr *k = su_zalloc(p->home, sizeof *k);
	msg_t *m;
	sip_t *ms;
	char route[128], from[CFG_HOST_MAX + 64];
	tport_t *tp;

	if (!k)
		return;
	k->proxy = p;
	k->upstream = -1;
	k->ka_aor = su_strdup(p->home, b->aor);
	k->ka_contact = su_strdup(p->home, b->contact);
	k->ka_instance = su_strdup(p->home, b->instance);
	k->ka_reg_id = b->reg_id;
	/* Missed-keepalive detection is ours, in keepalive intervals: the
	 * previous keepalive still unanswered now is one miss.  No timer per
	 * keepalive: the binding's heap entry brings us back here. */
	if (b->ka_waiting)
		ka_miss(p, b);
	k->ka_seq = ++b->ka_seq;
	b->ka_waiting = true;
	m = nta_msg_create(p->agent, 0);
	if (!m || !k->ka_aor || !k->ka_contact || !k->ka_instance) {
		if (m)
			msg_destroy(m);
		ka_free(k);
		return;
	}
	ms = sip_object(m);
	snprintf(from, sizeof from, "<sip:sipnat@%s>;tag=ka%08lx", p->rr_host,
	         (unsigned long)random());
	flow_route(&b->flow, route, sizeof route);
	if (sip_add_tl(m, ms,
	               SIPTAG_REQUEST(sip_request_create(msg_home(m), SIP_METHOD_OPTIONS,
	                                                 URL_STRING_MAKE(b->contact), NULL)),
	               SIPTAG_FROM_STR(from), SIPTAG_TO_STR(b->aor),
	               SIPTAG_CALL_ID(sip_call_id_create(msg_home(m), NULL)),
	               SIPTAG_CSEQ_STR("1 OPTIONS"), SIPTAG_MAX_FORWARDS_STR("70"),
	               TAG_END()) < 0) {
		msg_destroy(m);
		ka_free(k);
		return;
	}
	tp = b->flow.transport != CFG_TP_UDP ? flow_connection(p, &b->flow) : NULL;
	k->client = nta_outgoing_mcreate(p->agent, ka_response, k, (url_string_t *)route, m,
	                                 TAG_IF(tp, NTATAG_TPORT(tp)), TAG_END());
	if (!k->client) {
		msg_destroy(m);
		ka_free(k);
	}
}

/* CRLF keepalive (RFC 5626 §3.5.1 style) out of our own SIP socket, so
 * that the NAT binding the device registered through stays open. */
static void ka_send_crlf(struct proxy *p, struct reg_binding *b)
{
	int fd = p->udp_fd[b->flow.remote.ss_family == AF_INET6 ? 1 : 0];
	socklen_t len = b->flow.remote.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                                     : sizeof(struct sockaddr_in);

	if (fd < 0)
		return;
	if (sendto(fd, "\r\n\r\n", 4, MSG_DONTWAIT, (struct sockaddr *)&b->flow.remote, len) < 0)
		log_debug("crlf keepalive to %s: %s", b->contact, strerror(errno));
}

/* Sofia does not hand out the sockets of its transports.  For CRLF
 * keepalives we need the UDP socket that the devices' NAT bindings point
 * at, so we find it among our descriptors by its bound port and family. */
static void find_udp_sockets(struct proxy *p)
{
	p->udp_fd[0] = p->udp_fd[1] = -1;
	if (!p->port_of[CFG_TP_UDP])
		return;
	for (int fd = 3; fd < 4096; fd++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int type;
		socklen_t tl = sizeof type;

		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_DGRAM)
			continue;
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
			continue;
		if (ss.ss_family == AF_INET && p->udp_fd[0] < 0 &&
		    ntohs(((struct sockaddr_in *)&ss)->sin_port) == p->port_of[CFG_TP_UDP])
			p->udp_fd[0] = fd;
		else if (ss.ss_family == AF_INET6 && p->udp_fd[1] < 0 &&
		         ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) == p->port_of[CFG_TP_UDP])
			p->udp_fd[1] = fd;
	}
}

/* Has the child writing the state file finished?  1 when done (or none
 * runs), 0 while it writes; block waits for it. */
static int saver_done(struct proxy *p, bool block)
{
	int status;
	pid_t r;

	if (!p->saver)
		return 1;
	do
		r = waitpid(p->saver, &status, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return 0;
	if (r == p->saver && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		log_warn("cannot save registrations to %s: %s", p->state_file,
		         strerror(WEXITSTATUS(status)));
		p->reg_dirty = 1; /* try again at the next interval */
	} else if (r == p->saver && !WIFEXITED(status)) {
		log_warn("the process saving registrations to %s died", p->state_file);
		p->reg_dirty = 1;
	}
	p->saver = 0;
	return 1;
}

/* Registrations are written by a forked child, the way Redis writes its
 * snapshots: the child has a copy-on-write image of the table, so the SIP
 * thread neither formats 100,000 lines nor waits for fsync while requests
 * pile up in the socket buffers (at a few thousand REGISTERs a second that
 * stall overflowed them, and retransmissions did the rest).  One child at
 * a time; final (the last save, at exit) waits for it and saves here, as
 * does a failed fork (not enough memory to commit a copy). */
static void save_state(struct proxy *p, time_t now, bool final)
{
	int r;

	if (!saver_done(p, final) || !p->state_file || !p->reg_dirty)
		return;
	p->reg_dirty = 0;
	p->last_save = now;
	if (!final) {
		pid_t pid = fork();

		if (pid == 0) {
			r = reg_save(p->reg, p->state_file);
			_exit(r == 0 ? 0 : -r > 0 && -r < 256 ? -r : EIO);
		}
		if (pid > 0) {
			p->saver = pid;
			return;
		}
		log_debug("state save: fork: %s; saving in the SIP thread", strerror(errno));
	}
	r = reg_save(p->reg, p->state_file);
	if (r < 0) {
		log_warn("cannot save registrations to %s: %s", p->state_file, strerror(-r));
		p->reg_dirty = 1;
	}
}

/* nta answers malformed requests with 400 (or drops what it cannot parse)
 * before we see them; we learn of them from its counters and report them
 * as one summary line, so that a flood of junk cannot flood the log. */
static void report_bad_messages(struct proxy *p, time_t now)
{
	usize_t bad_msg = 0, bad_req = 0, bad_resp = 0;

	if (now - p->bad_reported < 10)
		return;
	p->bad_reported = now;
	nta_agent_get_stats(p->agent, NTATAG_S_BAD_MESSAGE_REF(bad_msg),
	                    NTATAG_S_BAD_REQUEST_REF(bad_req), NTATAG_S_BAD_RESPONSE_REF(bad_resp),
	                    TAG_END());
	if (bad_msg > p->bad_seen) {
		log_warn("%llu malformed SIP message(s) in the last 10 s: %llu request(s) answered "
		         "400, %llu bad response(s) dropped, the rest unparsable and dropped",
		         (unsigned long long)(bad_msg - p->bad_seen),
		         (unsigned long long)(bad_req - p->bad_req_seen),
		         (unsigned long long)(bad_resp - p->bad_resp_seen));
		p->stats.malformed += bad_msg - p->bad_seen;
	}
	p->bad_seen = bad_msg;
	p->bad_req_seen = bad_req;
	p->bad_resp_seen = bad_resp;
}

/* Runs once a second on the SIP thread.  It does three things:
 *  - drops bindings whose upstream-granted expiry has passed;
 *  - sends the keepalives that are due (one heap pop each, so idle devices
 *    cost nothing between their keepalives);
 *  - writes the registration state when it changed, at most every few s. */
static void tick(su_root_magic_t *m, su_timer_t *timer, struct ptr *stateless)
{
	struct proxy *p = stateless->proxy;
	time_t now = time(NULL);
	struct reg_binding *b;
	unsigned budget = 10000; /* keep one tick short under any load */

	(void)m;
	(void)timer;
	while (budget-- && (b = reg_next_due(p->reg, now))) {
		if (b->expires <= now) {
			log_info("registration of %s (%s) expired", b->aor, b->contact);
			reg_remove_binding(p->reg, b);
			state_changed(p);
			continue;
		}
		if (p->cfg->sip.keepalive == CFG_KA_OPTIONS)
			ka_send_options(p, b);
		else if (p->cfg->sip.keepalive == CFG_KA_CRLF)
			ka_send_crlf(p, b);
		b->ka_due = p->cfg->sip.keepalive == CFG_KA_OFF
		                    ? 0
		                    : now + p->cfg->sip.keepalive_interval;
		reg_reschedule(p->reg, b);
	}
	(void)saver_done(p, false);
	if (p->reg_dirty &&
	    now - p->last_save >=
	            STATE_SAVE_INTERVAL_SEC + (time_t)(reg_count(p->reg) / STATE_SAVE_PER_SEC))
		save_state(p, now, false);
#ifdef __GLIBC__
	if (now - p->last_trim >= TRIM_INTERVAL_SEC) {
		usize_t irqs = 0, orqs = 0;
		/* Only once the storm is over: trimming while transactions
		 * still churn gives back pages that are faulted in again at
		 * once. */
		nta_agent_get_stats(p->agent, NTATAG_S_IRQ_HASH_USED_REF(irqs),
		                    NTATAG_S_ORQ_HASH_USED_REF(orqs), TAG_END());
		if (irqs + orqs < TRIM_QUIET_TRANSACTIONS) {
			p->last_trim = now;
			malloc_trim(0);
		}
	}
#endif
	report_bad_messages(p, now);
}

struct collect_ctx {
	struct reg_binding **v;
	size_t n;
};

static void collect_binding(void *arg, struct reg_binding *b)
{
	struct collect_ctx *c = arg;

	c->v[c->n++] = b;
}

/* Restored bindings of NATed UDP devices need their keepalives again, or
 * their NAT bindings close soon after a restart.  They are spread over one
 * interval so that 100 000 restored devices do not get them all at once. */
static void restart_keepalives(struct proxy *p)
{
	const struct cfg_sip *sip = &p->cfg->sip;
	struct collect_ctx c = {0};
	time_t now = time(NULL);
	size_t n = reg_count(p->reg);

	if (sip->keepalive == CFG_KA_OFF || !n)
		return;
	c.v = malloc(n * sizeof *c.v);
	if (!c.v)
		return;
	/* Collect first: rescheduling reorders the heap reg_foreach walks. */
	reg_foreach(p->reg, collect_binding, &c);
	for (size_t i = 0; i < c.n; i++) {
		struct reg_binding *b = c.v[i];
		if (!b->natd || b->flow.transport != CFG_TP_UDP)
			continue;
		b->ka_due = now + 1 + (time_t)(i % sip->keepalive_interval);
		reg_reschedule(p->reg, b);
	}
	free(c.v);
}

/* The flow secret: configured, or kept in state_dir so that tokens in the
 * registrar's Path and in live dialogs survive a restart. */
static int setup_state(struct proxy *p)
{
	const struct cfg_sip *sip = &p->cfg->sip;
	char path[4096];
	int r, persistent = 0;

	if (sip->state_dir && *sip->state_dir) {
		if (mkdir(sip->state_dir, 0700) == 0 || errno == EEXIST)
			persistent = access(sip->state_dir, W_OK) == 0;
		if (!persistent)
			log_warn("state_dir %s is not writable: registrations will not survive a "
			         "restart",
			         sip->state_dir);
	}
	if (sip->flow_secret) {
		flow_secret_from_string(sip->flow_secret, p->flow_key);
	} else if (persistent) {
		snprintf(path, sizeof path, "%s/flow_secret", sip->state_dir);
		r = flow_secret_load(path, p->flow_key);
		if (r < 0) {
			log_err("flow secret %s: %s", path, strerror(-r));
			return r;
		}
	} else if (gnutls_rnd(GNUTLS_RND_KEY, p->flow_key, sizeof p->flow_key) < 0) {
		return -EIO;
	}
	if (persistent) {
		unsigned bad = 0;
		snprintf(path, sizeof path, "%s/registrations", sip->state_dir);
		p->state_file = su_strdup(p->home, path);
		r = reg_load(p->reg, path, time(NULL), &bad);
		if (r > 0)
			restart_keepalives(p);
		if (r < 0)
			log_warn("cannot read %s: %s", path, strerror(-r));
		else if (r > 0 || bad)
			log_info("restored %d registration(s) from %s%s", r, path,
			         bad ? " (some malformed lines skipped)" : "");
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* 5) life cycle */

/* Sofia's TLS wants a directory with agent.pem (key and certificate
 * together) and cafile.pem (tls_ca).  We build one in a private temporary
 * directory and remove it as soon as the transport has read it.  digest
 * gets the SHA-256 of what was written. */
static int make_tls_dir(const struct cfg_sip *sip, char *dir, size_t len, uint8_t digest[32])
{
	char path[4096];
	FILE *out, *in;
	const char *src[3] = {sip->tls_key, sip->tls_cert, NULL};
	char buf[4096];
	size_t n;
	const char *tmp = getenv("TMPDIR");
	gnutls_hash_hd_t h;
	int r = 0;

	snprintf(dir, len, "%s/sipnat-tls.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return -errno;
	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
		return -ENOMEM;
	snprintf(path, sizeof path, "%s/agent.pem", dir);
	out = fopen(path, "w");
	if (!out) {
		r = -errno;
		goto out;
	}
	for (int i = 0; i < 3 && r == 0; i++) {
		if (i == 2) {
			/* Sofia's name for the CAs that verify peers. */
			if (!sip->tls_ca)
				break;
			if (fclose(out) != 0) {
				out = NULL;
				r = -errno;
				break;
			}
			snprintf(path, sizeof path, "%s/cafile.pem", dir);
			out = fopen(path, "w");
			if (!out) {
				r = -errno;
				break;
			}
			src[2] = sip->tls_ca;
		}
		in = fopen(src[i], "r");
		if (!in) {
			r = -errno;
			log_err("tls: cannot open %s: %s", src[i], strerror(-r));
			break;
		}
		while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
			fwrite(buf, 1, n, out);
			gnutls_hash(h, buf, n);
		}
		fclose(in);
		fputc('\n', out);
	}
	if (out && fclose(out) != 0 && r == 0)
		r = -errno;
out:
	gnutls_hash_deinit(h, digest);
	return r;
}

static void remove_tls_dir(const char *dir)
{
	char path[4096];

	snprintf(path, sizeof path, "%s/agent.pem", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/cafile.pem", dir);
	unlink(path);
	rmdir(dir);
}

static bool listen_equal(const struct cfg_listen *a, const struct cfg_listen *b)
{
	return a->transport == b->transport && a->port == b->port && !strcmp(a->host, b->host);
}

static bool is_bound(const struct proxy *p, const struct cfg_listen *l)
{
	for (size_t i = 0; i < p->n_bound; i++)
		if (listen_equal(&p->bound[i].conf, l))
			return true;
	return false;
}

static bool known_primary(const struct proxy *p, const tport_t *tp)
{
	for (size_t i = 0; i < p->n_bound; i++)
		if (p->bound[i].primary == tp)
			return true;
	return false;
}

/* nta keeps, as the "magic" of each primary transport, the Via it sends
 * with; a connection copies its primary's pointer when it is accepted, and
 * nta reads it on every message the connection brings.  Adding a transport
 * to a running agent rebuilds every primary's Via and frees the old ones,
 * which leaves the connections open at that moment pointing at freed memory
 * (a reload adding a listener crashed on the next request over TCP or TLS).
 * So before nta_agent_add_tport() we take the Vias away from the primaries:
 * nta then has nothing to free, and the old Vias, still right for those
 * connections, stay allocated in the agent's home (a few hundred bytes per
 * reload that adds a listener).  Restored if the transport is not added. */
struct saved_vias {
	tport_t *tp[256]; /* retired primaries count too (retire_listener) */
	tp_magic_t *magic[256];
	size_t n;
};

static int vias_detach(struct proxy *p, struct saved_vias *sv)
{
	tport_t *master = nta_agent_tports(p->agent), *pri;

	sv->n = 0;
	for (pri = tport_primaries(master); pri; pri = tport_next(pri)) {
		if (sv->n == sizeof sv->tp / sizeof sv->tp[0])
			return -ENOSPC;
		sv->tp[sv->n] = pri;
		sv->magic[sv->n++] = tport_magic(pri);
	}
	for (size_t i = 0; i < sv->n; i++)
		tport_set_magic(sv->tp[i], NULL);
	return 0;
}

static void vias_restore(struct saved_vias *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		if (!tport_magic(sv->tp[i]))
			tport_set_magic(sv->tp[i], sv->magic[i]);
}

/* Binds every listener of sip that is not bound yet: all of them at the
 * start, the new ones on a reload. */
static int add_listeners(struct proxy *p, const struct cfg_sip *sip)
{
	char tlsdir[256] = "";
	int r = 0;

	for (size_t i = 0; i < sip->n_listen; i++) {
		const struct cfg_listen *l = &sip->listen[i];
		char url[CFG_HOST_MAX + 64];
		const char *h = l->host;
		int v6 = strchr(h, ':') != NULL;
		tport_t *pri;

		if (is_bound(p, l) || p->n_bound >= CFG_MAX_LISTEN)
			continue;

		if (l->transport == CFG_TP_TLS) {
			if (!tlsdir[0] &&
			    (r = make_tls_dir(sip, tlsdir, sizeof tlsdir, p->tls_digest)) < 0)
				break;
			snprintf(url, sizeof url, "sips:%s%s%s:%u;transport=tls", v6 ? "[" : "", h,
			         v6 ? "]" : "", l->port);
		} else {
			snprintf(url, sizeof url, "sip:%s%s%s:%u;transport=%s", v6 ? "[" : "", h,
			         v6 ? "]" : "", l->port, cfg_transport_name(l->transport));
		}
		struct saved_vias sv;
		char ident[16];

		snprintf(ident, sizeof ident, "l%u", ++p->idents);
		if (vias_detach(p, &sv) < 0) {
			r = -ENOSPC;
			log_err("cannot listen on %s: too many transports replaced since the "
			        "start; "
			        "restart sipnatd",
			        url);
			break;
		}
		if (nta_agent_add_tport(
		            p->agent, (url_string_t *)url, TPTAG_IDENT(ident),
		            TAG_IF(l->transport == CFG_TP_TLS, TPTAG_CERTIFICATE(tlsdir)),
		            /* Verify the upstreams (outgoing connections) when
		             * there are CAs to verify them with; phones (incoming)
		             * are never asked for a certificate. */
		            TAG_IF(l->transport == CFG_TP_TLS,
		                   TPTAG_TLS_VERIFY_POLICY(sip->tls_ca ? TPTLS_VERIFY_SUBJECTS_OUT
		                                                       : TPTLS_VERIFY_NONE)),
		            TAG_IF(l->transport != CFG_TP_UDP, TPTAG_PONG2PING(1)),
		            TAG_IF(l->transport == CFG_TP_UDP, TPTAG_STUN_SERVER(1)),
		            /* Room for a burst while the SIP thread is busy: the
		             * kernel's default (208 KB) is 0.05 s of REGISTERs at
		             * 8,000/s, and a datagram dropped there comes back as a
		             * retransmission that costs more.  Capped by
		             * net.core.rmem_max. */
		            TAG_IF(l->transport == CFG_TP_UDP, TPTAG_UDP_RMEM(SIP_UDP_BUFFER)),
		            TAG_IF(l->transport == CFG_TP_UDP, TPTAG_UDP_WMEM(SIP_UDP_BUFFER)),
		            TAG_END()) < 0) {
			r = errno ? -errno : -EINVAL;
			vias_restore(&sv);
			log_err("cannot listen on %s:%s:%u: %s", cfg_transport_name(l->transport),
			        h, l->port, strerror(-r));
			break;
		}
		/* nta appends the new primary to its list: the last one we do
		 * not know yet is this listener's. */
		p->bound[p->n_bound].conf = *l;
		p->bound[p->n_bound].primary = NULL;
		memcpy(p->bound[p->n_bound].ident, ident, sizeof ident);
		for (pri = tport_primaries(nta_agent_tports(p->agent)); pri; pri = tport_next(pri))
			if (!known_primary(p, pri))
				p->bound[p->n_bound].primary = pri;
		p->n_bound++;
		log_info("listening on %s", url);
	}
	if (tlsdir[0])
		remove_tls_dir(tlsdir);
	return r;
}

/* The first listening port of each transport, for our own URIs: of the
 * listeners in the configuration, then of one a reload left open. */
static void note_ports(struct proxy *p)
{
	const struct cfg_sip *sip = &p->cfg->sip;

	memset(p->port_of, 0, sizeof p->port_of);
	for (size_t i = 0; i < sip->n_listen; i++)
		if (!p->port_of[sip->listen[i].transport] && is_bound(p, &sip->listen[i]))
			p->port_of[sip->listen[i].transport] = sip->listen[i].port;
	for (size_t i = 0; i < p->n_bound; i++)
		if (!p->port_of[p->bound[i].conf.transport])
			p->port_of[p->bound[i].conf.transport] = p->bound[i].conf.port;
}

/* The descriptor of the listening (stream) socket bound to addr, or -1.
 * Sofia does not hand out the sockets of its transports, so we look among
 * our own descriptors, as find_udp_sockets does. */
static int find_listening_socket(const struct sockaddr *addr)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1;

	if (!d)
		return -1;
	while (found < 0 && (e = readdir(d))) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd, listening = 0;
		socklen_t ll = sizeof listening;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		fd = atoi(e->d_name);
		if (fd == dirfd(d) ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) < 0 || !listening ||
		    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
		    ss.ss_family != addr->sa_family)
			continue;
		if (addr->sa_family == AF_INET) {
			const struct sockaddr_in *a = (const void *)addr, *b = (const void *)&ss;
			if (a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr)
				found = fd;
		} else if (addr->sa_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const void *)addr, *b = (const void *)&ss;
			if (a->sin6_port == b->sin6_port &&
			    !memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr))
				found = fd;
		}
	}
	closedir(d);
	return found;
}

/* Stops a TCP or TLS listener: no new connections, its port free at once
 * for whoever binds it next (a listener with a new certificate), while the
 * connections it accepted stay, and with them the flows of the devices
 * registered over them.  nta has no call to close one primary transport,
 * so the listening socket is replaced under it by an inert descriptor (an
 * unbound UNIX socket: the kernel drops the old socket's poll registration
 * when its last descriptor goes, and nothing ever wakes up on the new one).
 * nta keeps the primary as the parent of its connections and may still
 * open outgoing connections from it, which needs no listening socket.
 *
 * UDP listeners are never retired: their socket is the one the NAT
 * bindings of the devices registered through it lead to, and nta sends
 * from the first UDP primary, so a removed one stays until a restart. */
static int retire_listener(struct proxy *p, size_t i)
{
	struct listener *l = &p->bound[i];
	const su_addrinfo_t *ai = l->primary ? tport_get_address(l->primary) : NULL;
	int fd, inert, r = 0;

	if (l->conf.transport == CFG_TP_UDP)
		return -EOPNOTSUPP;
	fd = ai ? find_listening_socket(ai->ai_addr) : -1;
	if (fd < 0)
		return -ENOENT;
	inert = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (inert < 0)
		return -errno;
	if (dup3(inert, fd, O_CLOEXEC) < 0)
		r = -errno;
	close(inert);
	if (r < 0)
		return r;
	log_info("stopped listening on %s:%s:%u; its %s connections stay",
	         cfg_transport_name(l->conf.transport), l->conf.host, l->conf.port,
	         cfg_transport_name(l->conf.transport));
	bool known = false;
	for (size_t k = 0; k < p->n_retired && !known; k++)
		known = listen_equal(&p->retired[k], &l->conf);
	if (!known && p->n_retired == CFG_MAX_LISTEN) /* the oldest is the least likely in use */
		memmove(p->retired, p->retired + 1, --p->n_retired * sizeof p->retired[0]);
	if (!known)
		p->retired[p->n_retired++] = l->conf;
	memmove(l, l + 1, (p->n_bound - i - 1) * sizeof *l);
	p->n_bound--;
	return 0;
}

static int load_upstreams(struct proxy *p, const struct cfg *cfg)
{
	struct upstream fresh[CFG_MAX_UPSTREAM];
	size_t n = 0;

	memset(fresh, 0, sizeof fresh);
	for (size_t i = 0; i < cfg->sip.n_upstream; i++) {
		fresh[n].uri = su_strdup(p->home, cfg->sip.upstream[i]);
		fresh[n].url = url_make(p->home, cfg->sip.upstream[i]);
		if (!fresh[n].uri || !fresh[n].url) {
			log_err("upstream %s: not a usable SIP URI", cfg->sip.upstream[i]);
			return -EINVAL;
		}
		if (cfg_uri_is_tls(cfg->sip.upstream[i]) && !cfg->sip.tls_ca)
			log_warn("upstream %s: its TLS certificate is not verified (set [sip] "
			         "tls_ca)",
			         cfg->sip.upstream[i]);
		n++;
	}
	for (size_t i = 0; i < p->n_up; i++) {
		su_free(p->home, p->up[i].uri);
		su_free(p->home, p->up[i].url);
	}
	memcpy(p->up, fresh, sizeof fresh);
	p->n_up = n;
	resolve_upstreams(p);
	return 0;
}

static int bye_done(struct ptr *unused, nta_outgoing_t *orq, sip_t const *sip)
{
	int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);

	(void)unused;
	if (status >= 200)
		nta_outgoing_destroy(orq);
	return 0;
}

/* media_hooks.send_bye: ends one side of a call on sipnatd's own
 * initiative (media timeout, sipnatctl hangup), speaking for the other
 * side, over the flow we know for it. */
static void send_bye(void *arg, const char *call_id, const struct media_dialog_side *from,
                     const struct media_dialog_side *to, const char *reason)
{
	struct proxy *p = arg;
	msg_t *m = nta_msg_create(p->agent, 0);
	sip_t *ms;
	char fromh[1100], toh[1100], cseq[32], route[128], why[160];
	tport_t *tp = NULL;

	if (!m)
		return;
	ms = sip_object(m);
	snprintf(fromh, sizeof fromh, "<%s>;tag=%s", from->uri ? from->uri : "sip:sipnat@invalid",
	         from->tag);
	snprintf(toh, sizeof toh, "<%s>;tag=%s", to->uri ? to->uri : to->contact, to->tag);
	snprintf(cseq, sizeof cseq, "%u BYE", from->cseq ? from->cseq : 1);
	snprintf(why, sizeof why, "SIP;cause=200;text=\"%s\"", reason);
	flow_route(&to->flow, route, sizeof route);
	if (!to->from_upstream && to->flow.transport != CFG_TP_UDP)
		tp = flow_connection(p, &to->flow);
	else if (to->from_upstream)
		tp = send_primary(p, url_make(msg_home(m), route));
	if (sip_add_tl(m, ms,
	               SIPTAG_REQUEST(sip_request_create(msg_home(m), SIP_METHOD_BYE,
	                                                 URL_STRING_MAKE(to->contact), NULL)),
	               SIPTAG_FROM_STR(fromh), SIPTAG_TO_STR(toh), SIPTAG_CALL_ID_STR(call_id),
	               SIPTAG_CSEQ_STR(cseq), SIPTAG_MAX_FORWARDS_STR("70"), SIPTAG_REASON_STR(why),
	               TAG_END()) < 0 ||
	    !nta_outgoing_mcreate(p->agent, bye_done, NULL, (url_string_t *)route, m,
	                          TAG_IF(tp, NTATAG_TPORT(tp)), TAG_END())) {
		log_warn("call %s: could not send BYE to %s", call_id, to->contact);
		msg_destroy(m);
		return;
	}
	log_info("call %s: BYE sent to %s (%s)", call_id, to->contact, reason);
}

struct media *proxy_media(struct proxy *p)
{
	return p->media;
}

int proxy_create(struct proxy **pp, su_root_t *root, const struct cfg *cfg, struct relay *relay,
                 struct media_bridge *bridge)
{
	struct proxy *p;
	int r = 0;
	struct ptr *s;

	p = su_home_new(sizeof *p);
	if (!p)
		return -ENOMEM;
	p->root = root;
	p->cfg = cfg;
	p->udp_fd[0] = p->udp_fd[1] = -1;
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());

	p->agent =
	        nta_agent_create(root, (url_string_t *)-1 /* no transport yet */, agent_message, p,
	                         NTATAG_UA(0), NTATAG_CANCEL_487(0),
	                         /* 2: answer to the source port even without ;rport, as a
	                          * NAT edge must (RFC 3581 behaviour forced). */
	                         NTATAG_SERVER_RPORT(2), NTATAG_CLIENT_RPORT(1), NTATAG_PASS_100(1),
	                         NTATAG_EXTRA_100(0), NTATAG_MAXSIZE(65536),
	                         NTATAG_SIP_T1X64(cfg->sip.transaction_timeout * 1000), TAG_END());
	if (!p->agent) {
		r = errno ? -errno : -ENOMEM;
		log_err("cannot create the SIP agent: %s", strerror(-r));
		goto out;
	}
	r = add_listeners(p, &p->cfg->sip);
	if (r < 0)
		goto out;
	note_ports(p);
	collect_self(p);
	choose_rr_host(p);
	r = load_upstreams(p, cfg);
	if (r < 0)
		goto out;
	r = reg_create(&p->reg);
	if (r < 0)
		goto out;
	r = setup_state(p);
	if (r < 0)
		goto out;
	find_udp_sockets(p);
	if (relay && bridge) {
		static const struct media_hooks hooks = {.send_bye = send_bye};
		r = media_create(&p->media, bridge, cfg, relay, &hooks, p);
		if (r < 0)
			goto out;
	}

	p->defleg = nta_leg_tcreate(p->agent, proxy_request, p, NTATAG_NO_DIALOG(1), TAG_END());
	s = su_zalloc(p->home, sizeof *s);
	if (!p->defleg || !s) {
		r = -ENOMEM;
		goto out;
	}
	s->proxy = p;
	s->upstream = -1;
	p->stateless = s;
	s->server = nta_incoming_default(p->agent);
	s->client = nta_outgoing_default(p->agent, stray_response, s);
	if (!s->server || !s->client) {
		r = -ENOMEM;
		goto out;
	}
	p->tick = su_timer_create(su_root_task(root), 1000);
	if (!p->tick || su_timer_set_for_ever(p->tick, tick, s) < 0) {
		r = -ENOMEM;
		goto out;
	}
	log_info("Record-Route host %s; %zu upstream(s)", p->rr_host, p->n_up);
out:
	if (r < 0)
		proxy_destroy(p);
	else
		*pp = p;
	return r;
}

/* Logs a problem of a reload as an error and adds it to p->why. */
static void __attribute__((format(printf, 2, 3)))
reload_problem(struct proxy *p, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	size_t used;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	log_err("reload: %s", text);
	if (!p->why || !p->why_len)
		return;
	used = strlen(p->why);
	snprintf(p->why + used, p->why_len - used, "%s%s", used ? "\n" : "", text);
}

/* The [sip] key, certificate and CAs as GnuTLS reads them: a key that does
 * not match the certificate, or a file that is not PEM, is caught before the
 * TLS listeners are touched. */
static int check_tls_files(struct proxy *p, const struct cfg_sip *sip)
{
	gnutls_certificate_credentials_t cred;
	int r;

	if (gnutls_certificate_allocate_credentials(&cred) < 0)
		return -ENOMEM;
	r = gnutls_certificate_set_x509_key_file(cred, sip->tls_cert, sip->tls_key,
	                                         GNUTLS_X509_FMT_PEM);
	if (r < 0) {
		reload_problem(p,
		               "[sip] tls_cert %s with tls_key %s: %s; the TLS listeners keep the "
		               "certificate they have",
		               sip->tls_cert, sip->tls_key, gnutls_strerror(r));
		gnutls_certificate_free_credentials(cred);
		return -EINVAL;
	}
	if (sip->tls_ca) {
		r = gnutls_certificate_set_x509_trust_file(cred, sip->tls_ca, GNUTLS_X509_FMT_PEM);
		if (r <= 0) {
			reload_problem(
			        p, "[sip] tls_ca %s: %s; the TLS listeners keep what they have",
			        sip->tls_ca, r < 0 ? gnutls_strerror(r) : "no certificate in it");
			gnutls_certificate_free_credentials(cred);
			return -EINVAL;
		}
	}
	gnutls_certificate_free_credentials(cred);
	return 0;
}

/* A reload with a new [sip] key or certificate (new files, or the same
 * paths with new contents, as after a renewal): every TLS listener is
 * retired, and add_listeners binds it again with the new ones.  Connections
 * open now keep the certificate they were made with until they close; new
 * ones get the new. */
static int renew_tls(struct proxy *p, const struct cfg_sip *sip)
{
	uint8_t digest[32];
	char dir[256] = "";
	bool have_tls = false;
	int r;

	for (size_t i = 0; i < p->n_bound; i++)
		have_tls |= p->bound[i].conf.transport == CFG_TP_TLS;
	if (!have_tls || !sip->tls_cert || !sip->tls_key)
		return 0;
	r = make_tls_dir(sip, dir, sizeof dir, digest);
	if (dir[0])
		remove_tls_dir(dir);
	if (r < 0) {
		reload_problem(p, "[sip] TLS files: %s; the TLS listeners keep what they have",
		               strerror(-r));
		return r;
	}
	if (!memcmp(digest, p->tls_digest, sizeof digest))
		return 0;
	r = check_tls_files(p, sip);
	if (r < 0)
		return r;
	for (size_t i = 0; i < p->n_bound;) {
		const struct cfg_listen l = p->bound[i].conf;

		if (l.transport != CFG_TP_TLS) {
			i++;
			continue;
		}
		r = retire_listener(p, i);
		if (r < 0) {
			reload_problem(p, "tls:%s:%u keeps its old certificate: %s", l.host, l.port,
			               strerror(-r));
			i++;
		}
	}
	log_info("reload: new TLS certificate for SIP; connections open now keep the old one");
	return 0;
}

int proxy_reload(struct proxy *p, const struct cfg *cfg, char *why, size_t why_len)
{
	const struct cfg_sip *sip = &cfg->sip;
	int r, e = 0;

	p->why = why;
	p->why_len = why_len;
	if (why && why_len)
		why[0] = '\0';

	for (size_t i = 0; i < p->n_bound;) {
		const struct cfg_listen l = p->bound[i].conf;
		bool kept = false;

		for (size_t j = 0; j < sip->n_listen && !kept; j++)
			kept = listen_equal(&sip->listen[j], &l);
		if (kept) {
			i++;
			continue;
		}
		r = retire_listener(p, i);
		if (r == 0)
			continue;
		if (r == -EOPNOTSUPP)
			log_warn("reload: udp:%s:%u is no longer configured but stays open until a "
			         "restart: the devices registered through it are reached from it",
			         l.host, l.port);
		else
			reload_problem(
			        p,
			        "cannot stop listening on %s:%s:%u (%s); it stays open until a "
			        "restart",
			        cfg_transport_name(l.transport), l.host, l.port, strerror(-r));
		i++;
	}
	if (renew_tls(p, sip) < 0)
		e = -EINVAL;
	r = add_listeners(p, sip);
	if (r < 0) {
		reload_problem(p,
		               "a listener could not be opened: %s (the log names it); the others "
		               "are in use",
		               strerror(-r));
		e = -EADDRNOTAVAIL;
	}
	p->cfg = cfg;
	nta_agent_set_params(p->agent, NTATAG_SIP_T1X64(sip->transaction_timeout * 1000),
	                     TAG_END());
	note_ports(p);
	find_udp_sockets(p);
	if (p->media)
		media_reload(p->media, cfg);
	r = load_upstreams(p, cfg);
	if (r < 0)
		reload_problem(p, "upstreams: %s; the previous ones stay", strerror(-r));
	collect_self(p);
	choose_rr_host(p);
	p->why = NULL;
	p->why_len = 0;
	return r < 0 ? r : e;
}

static void drain_timeout(su_root_magic_t *m, su_timer_t *timer, struct ptr *stateless)
{
	struct proxy *p = stateless->proxy;

	(void)m;
	(void)timer;
	if (p->drain_done) {
		void (*done)(void *) = p->drain_done;
		log_warn("shutdown: %zu transaction(s) still open after %us; stopping anyway",
		         p->stats.transactions, p->cfg->sip.shutdown_timeout);
		p->drain_done = NULL;
		done(p->drain_arg);
	}
}

void proxy_drain(struct proxy *p, void (*done)(void *arg), void *arg)
{
	p->draining = 1;
	p->drain_done = done;
	p->drain_arg = arg;
	if (!p->transactions) {
		p->drain_done = NULL;
		done(arg);
		return;
	}
	log_info("shutdown: waiting for %zu open transaction(s)", p->stats.transactions);
	p->drain_timer = su_timer_create(su_root_task(p->root), 1000);
	if (!p->drain_timer || su_timer_set_interval(p->drain_timer, drain_timeout, p->stateless,
	                                             p->cfg->sip.shutdown_timeout * 1000) < 0) {
		p->drain_done = NULL;
		done(arg);
	}
}

void proxy_set_draining(struct proxy *p, bool on)
{
	p->draining = on ? 1 : 0;
	log_info("%s", on ? "draining: new calls are refused with 503" : "drain ended");
}

bool proxy_is_draining(const struct proxy *p)
{
	return p->draining != 0;
}

void proxy_get_stats(const struct proxy *p, struct proxy_stats *out)
{
	*out = p->stats;
}

struct foreach_ctx {
	void (*fn)(void *arg, const struct reg_binding *b);
	void *arg;
};

static void foreach_adapter(void *arg, struct reg_binding *b)
{
	struct foreach_ctx *c = arg;
	c->fn(c->arg, b);
}

void proxy_foreach_binding(struct proxy *p, void (*fn)(void *arg, const struct reg_binding *b),
                           void *arg)
{
	struct foreach_ctx c = {fn, arg};
	reg_foreach(p->reg, foreach_adapter, &c);
}

size_t proxy_upstreams(const struct proxy *p, struct proxy_upstream_info *out, size_t max)
{
	time_t now = time(NULL);

	for (size_t i = 0; i < p->n_up && i < max; i++) {
		out[i].uri = p->up[i].uri;
		out[i].healthy = p->up[i].down_until <= now;
		out[i].down_for = out[i].healthy ? 0 : (long)(p->up[i].down_until - now);
	}
	return p->n_up;
}

void proxy_destroy(struct proxy *p)
{
	if (!p)
		return;
	if (p->tick)
		su_timer_destroy(p->tick);
	media_destroy(p->media);
	p->media = NULL;
	if (p->reg) {
		save_state(p, time(NULL), true);
		reg_free(p->reg);
	}
	while (p->transactions)
		ptr_destroy(p->transactions);
	if (p->stateless) {
		if (p->stateless->client)
			nta_outgoing_destroy(p->stateless->client);
		if (p->stateless->server)
			nta_incoming_destroy(p->stateless->server);
		p->stateless = NULL;
	}
	if (p->drain_timer)
		su_timer_destroy(p->drain_timer);
	if (p->defleg)
		nta_leg_destroy(p->defleg);
	if (p->agent)
		nta_agent_destroy(p->agent);
	su_home_unref(p->home);
}
