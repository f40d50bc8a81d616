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
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
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
#include "sipnat/log.h"
#include "sipnat/proxy.h"

#define ALLOWED_METHODS "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, PRACK, UPDATE, "      \
			"INFO, MESSAGE, SUBSCRIBE, NOTIFY, REFER"
/* An upstream that timed out or answered 503 is skipped for this long. */
#define UPSTREAM_HOLDDOWN_SEC 30
/* The branch of every Via we add starts with this magic, followed by a hash
 * of the request as we received it (RFC 3261 §16.6 item 8, §16.3 item 4). */
#define LOOP_BRANCH_TAG "z9hG4bKsn"

struct upstream {
	char *uri;          /* as configured */
	url_t *url;         /* parsed, on proxy home */
	struct edge_addrset addrs; /* resolved addresses, port 0 */
	time_t down_until;  /* skip until then after a failure */
};

struct ptr {
	struct proxy *proxy;
	struct ptr *next, **prev;
	nta_incoming_t *server;
	nta_outgoing_t *client;
	msg_t *msg;         /* the request as received (reference) */
	sip_t *sip;
	msg_t *fwd;         /* prepared copy, kept for failover re-sends */
	sip_method_t method;
	su_timer_t *timer;  /* failover timer while no response arrived */
	int upstream;       /* index tried now, -1 when not going upstream */
	int status;         /* best response relayed so far */
	unsigned saw_response : 1;
	unsigned canceled : 1;
	char branch[64];
};

struct proxy {
	su_home_t home[1];
	su_root_t *root;
	nta_agent_t *agent;
	nta_leg_t *defleg;
	const struct cfg *cfg;
	struct upstream up[CFG_MAX_UPSTREAM];
	size_t n_up;
	struct edge_addrset self;     /* our addresses with listening ports */
	struct edge_addrset self_any; /* our addresses, any port */
	char rr_host[CFG_HOST_MAX + 2]; /* host for Record-Route, bracketed v6 */
	uint16_t port_of[3];          /* first listening port per transport */
	struct ptr *transactions;
	struct ptr *stateless;        /* default transactions for strays */
	struct proxy_stats stats;
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
	for (size_t l = 0; l < sip->n_listen; l++) {
		const struct cfg_listen *ln = &sip->listen[l];
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
				inet_ntop(AF_INET6, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr,
					  host, sizeof host);
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
			if (strcmp(sip->listen[l].host, "0.0.0.0") && strcmp(sip->listen[l].host, "::"))
				h = sip->listen[l].host;
	}
	if (!h) {
		for (size_t i = 0; i < p->self_any.n && !h; i++) {
			const struct sockaddr *sa = (const struct sockaddr *)&p->self_any.addr[i];
			if (sa->sa_family == AF_INET &&
			    ((const struct sockaddr_in *)sa)->sin_addr.s_addr != htonl(INADDR_LOOPBACK)) {
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

/* ------------------------------------------------------------------ */
/* 2) request intake and policy */

static void ptr_destroy(struct ptr *t);
static int ptr_forward(struct ptr *t, enum edge_verdict v);
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
 * number and Proxy-Require.  A spiral changes the Request-URI and so the
 * hash; a true loop brings back the same request. */
static uint64_t loop_hash(sip_t const *sip)
{
	uint64_t h = 1469598103934665603ULL;
	char buf[1024];
	int n;

	n = snprintf(buf, sizeof buf, URL_PRINT_FORMAT "|%s|%s|%s|%u", URL_PRINT_ARGS(sip->sip_request->rq_url),
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

/* Removes the Route entries that name us (we Record-Routed the dialog). */
static int strip_own_routes(struct proxy *p, msg_t *msg, sip_t *sip)
{
	int removed = 0;

	while (sip->sip_route && url_is_self(p, sip->sip_route->r_url)) {
		sip_route_remove(msg, sip);
		removed++;
	}
	return removed;
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

/* Forwards an ACK for a 2xx (or any stray ACK) without state. */
static int forward_ack(struct proxy *p, msg_t *msg, sip_t *sip, const url_string_t *route)
{
	msg_t *copy = msg_copy(msg);

	if (!copy)
		return -ENOMEM;
	if (!nta_outgoing_mcreate(p->agent, NULL, NULL, route, copy, NTATAG_STATELESS(1),
				  TAG_END())) {
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

	(void)leg;
	if (!msg)
		return 500;
	sip = sip_object(msg);
	p->stats.requests++;
	src_str(msg, src, sizeof src);

	if (!sip->sip_request || !sip->sip_via || !sip->sip_call_id || !sip->sip_cseq ||
	    !sip->sip_from || !sip->sip_to) {
		log_warn("malformed request from %s: missing mandatory header; 400", src);
		msg_destroy(msg);
		return 400;
	}

	if (sip->sip_request->rq_method != sip_method_ack && p->draining) {
		msg_destroy(msg);
		return 503;
	}

	/* Loop check comes before anything else changes the request. */
	lh = loop_hash(sip);
	snprintf(loopkey, sizeof loopkey, LOOP_BRANCH_TAG "%016llx", (unsigned long long)lh);
	if (sip->sip_request->rq_method != sip_method_ack && is_loop(p, sip, loopkey)) {
		p->stats.loops++;
		log_warn("loop detected for %s from %s; 482", sip->sip_request->rq_method_name, src);
		msg_destroy(msg);
		return 482;
	}

	er.had_own_route = strip_own_routes(p, msg, sip) > 0;
	ai = msg_addrinfo(msg);
	er.from_upstream = ai && ai->ai_addr && from_upstream(p, ai->ai_addr);
	er.is_options = sip->sip_request->rq_method == sip_method_options;
	er.ruri_has_user = sip->sip_request->rq_url->url_user != NULL;
	er.ruri_is_self = url_is_self(p, sip->sip_request->rq_url);
	er.have_upstream = p->n_up > 0;
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
	log_debug("%s %s from %s (%s): %s, %s", sip->sip_request->rq_method_name,
		  sip->sip_call_id->i_id, src, er.from_upstream ? "upstream" : "device",
		  edge_verdict_name(v), why);

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
		if (v == EDGE_TO_TARGET) {
			forward_ack(p, msg, sip, NULL);
		} else if (v == EDGE_TO_UPSTREAM) {
			int u = pick_upstream(p, -1);
			if (u >= 0)
				forward_ack(p, msg, sip, (url_string_t *)p->up[u].url);
		} else {
			log_debug("ACK from %s dropped: %s", src, why);
		}
		msg_destroy(msg);
		return 200; /* nta never answers an ACK; it only frees it */
	}

	if (v == EDGE_REFUSE) {
		p->stats.refused++;
		log_warn("refused %s to " URL_PRINT_FORMAT " from %s: %s; 403",
			 sip->sip_request->rq_method_name,
			 URL_PRINT_ARGS(sip->sip_request->rq_url), src, why);
		msg_destroy(msg);
		return 403;
	}
	if (v == EDGE_NOT_FOUND) {
		log_info("%s to " URL_PRINT_FORMAT " from %s: %s; 404", sip->sip_request->rq_method_name,
			 URL_PRINT_ARGS(sip->sip_request->rq_url), src, why);
		msg_destroy(msg);
		return 404;
	}

	t = su_zalloc(p->home, sizeof *t);
	if (!t) {
		msg_destroy(msg);
		return 500;
	}
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

static uint16_t port_for(struct proxy *p, const char *proto)
{
	if (!strcmp(proto, "tcp"))
		return p->port_of[CFG_TP_TCP] ? p->port_of[CFG_TP_TCP] : p->port_of[CFG_TP_UDP];
	if (!strcmp(proto, "tls"))
		return p->port_of[CFG_TP_TLS];
	return p->port_of[CFG_TP_UDP] ? p->port_of[CFG_TP_UDP] : p->port_of[CFG_TP_TCP];
}

static int add_rr(struct proxy *p, msg_t *msg, sip_t *sip, const char *proto)
{
	char rr[CFG_HOST_MAX + 64];
	uint16_t port = port_for(p, proto);

	if (!port)
		return -EINVAL;
	if (!strcmp(proto, "udp"))
		snprintf(rr, sizeof rr, "<sip:%s:%u;lr>", p->rr_host, port);
	else if (!strcmp(proto, "tls"))
		snprintf(rr, sizeof rr, "<sips:%s:%u;lr>", p->rr_host, port);
	else
		snprintf(rr, sizeof rr, "<sip:%s:%u;transport=%s;lr>", p->rr_host, port, proto);
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

/* Builds the forwarded copy once: Max-Forwards decremented, Record-Route
 * added for dialog-creating requests (two entries when the transport
 * changes, RFC 3261 §16.6 item 4 and RFC 5658), then hands it to nta. */
static int ptr_prepare(struct ptr *t, const url_t *next_hop)
{
	struct proxy *p = t->proxy;
	msg_t *c = msg_copy(t->msg);
	sip_t *cs;
	tport_t *in_tp;
	const char *in_proto = "udp", *out_proto;

	if (!c)
		return -ENOMEM;
	cs = sip_object(c);
	if (cs->sip_max_forwards) {
		if (cs->sip_max_forwards->mf_count > 0)
			cs->sip_max_forwards->mf_count--;
		/* Drop the cached wire form so the new count is encoded. */
		msg_fragment_clear(cs->sip_max_forwards->mf_common);
	} else {
		sip_add_tl(c, cs, SIPTAG_MAX_FORWARDS_STR("70"), TAG_END());
	}
	if (creates_dialog(t->method) && !(cs->sip_to && cs->sip_to->a_tag)) {
		in_tp = nta_incoming_transport(p->agent, t->server, NULL);
		if (in_tp) {
			in_proto = tport_name(in_tp)->tpn_proto;
			tport_unref(in_tp);
		}
		out_proto = out_transport(next_hop);
		if (strcasecmp(in_proto, out_proto) != 0) {
			add_rr(p, c, cs, su_casematch(in_proto, "tcp")   ? "tcp"
					 : su_casematch(in_proto, "tls") ? "tls"
									 : "udp");
			add_rr(p, c, cs, out_proto);
		} else {
			add_rr(p, c, cs, out_proto);
		}
	}
	if (t->fwd)
		msg_destroy(t->fwd);
	t->fwd = c;
	return 0;
}

static int ptr_send(struct ptr *t, const url_string_t *route)
{
	struct proxy *p = t->proxy;
	msg_t *copy;

	/* nta takes the message it is given; we keep t->fwd for failover. */
	copy = msg_copy(t->fwd);
	if (!copy)
		return -ENOMEM;
	t->client = nta_outgoing_mcreate(p->agent, ptr_response, t, route, copy,
					 NTATAG_BRANCH_KEY(t->branch), TAG_END());
	if (!t->client) {
		msg_destroy(copy);
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
		if (ptr_prepare(t, p->up[u].url) < 0)
			return -ENOMEM;
		if (ptr_send(t, (url_string_t *)p->up[u].url) == 0)
			break;
		log_warn("upstream %s: cannot send; trying the next", p->up[u].uri);
		p->up[u].down_until = time(NULL) + UPSTREAM_HOLDDOWN_SEC;
	}
	t->saw_response = 0;
	if (!t->timer)
		t->timer = su_timer_create(su_root_task(p->root),
					   p->cfg->sip.failover_timeout * 1000);
	if (t->timer && p->n_up > (size_t)u + 1)
		su_timer_set_interval(t->timer, ptr_failover_timeout, t,
				      p->cfg->sip.failover_timeout * 1000);
	return 0;
}

static int ptr_forward(struct ptr *t, enum edge_verdict v)
{
	int r;

	if (v == EDGE_TO_UPSTREAM) {
		r = ptr_try_upstream(t);
		return r == 0 ? 0 : r == -ENOENT ? 503 : 500;
	}
	r = ptr_prepare(t, t->sip->sip_route ? t->sip->sip_route->r_url
					      : t->sip->sip_request->rq_url);
	if (r < 0)
		return 500;
	return ptr_send(t, NULL) == 0 ? 0 : 502;
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
			sip_via_remove(response, sip_object(response));
			if (nta_incoming_mreply(t->server, response) == 0)
				p->stats.responses++;
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
		sip_via_remove(response, sip_object(response));
		nta_incoming_mreply(t->server, response);
		t->proxy->stats.responses++;
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
/* 5) life cycle */

/* Sofia's TLS wants a directory with agent.pem (key and certificate
 * together).  We build one from tls_key and tls_cert in a private temporary
 * directory and remove it as soon as the transport has read it. */
static int make_tls_dir(const struct cfg_sip *sip, char *dir, size_t len)
{
	char path[4096];
	FILE *out, *in;
	const char *src[2] = {sip->tls_key, sip->tls_cert};
	char buf[4096];
	size_t n;
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, len, "%s/sipnat-tls.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return -errno;
	snprintf(path, sizeof path, "%s/agent.pem", dir);
	out = fopen(path, "w");
	if (!out)
		return -errno;
	for (int i = 0; i < 2; i++) {
		in = fopen(src[i], "r");
		if (!in) {
			int e = errno;
			log_err("tls: cannot open %s: %s", src[i], strerror(e));
			fclose(out);
			return -e;
		}
		while ((n = fread(buf, 1, sizeof buf, in)) > 0)
			fwrite(buf, 1, n, out);
		fclose(in);
		fputc('\n', out);
	}
	if (fclose(out) != 0)
		return -errno;
	return 0;
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

static int add_listeners(struct proxy *p)
{
	const struct cfg_sip *sip = &p->cfg->sip;
	char tlsdir[256] = "";
	int r = 0;

	for (size_t i = 0; i < sip->n_listen; i++) {
		const struct cfg_listen *l = &sip->listen[i];
		char url[CFG_HOST_MAX + 64];
		const char *h = l->host;
		int v6 = strchr(h, ':') != NULL;

		if (l->transport == CFG_TP_TLS) {
			if (!tlsdir[0] && (r = make_tls_dir(sip, tlsdir, sizeof tlsdir)) < 0)
				break;
			snprintf(url, sizeof url, "sips:%s%s%s:%u;transport=tls", v6 ? "[" : "", h,
				 v6 ? "]" : "", l->port);
		} else {
			snprintf(url, sizeof url, "sip:%s%s%s:%u;transport=%s", v6 ? "[" : "", h,
				 v6 ? "]" : "", l->port, cfg_transport_name(l->transport));
		}
		if (nta_agent_add_tport(p->agent, (url_string_t *)url,
					TAG_IF(l->transport == CFG_TP_TLS, TPTAG_CERTIFICATE(tlsdir)),
					TAG_IF(l->transport == CFG_TP_TLS,
					       TPTAG_TLS_VERIFY_POLICY(0)),
					TAG_END()) < 0) {
			r = errno ? -errno : -EINVAL;
			log_err("cannot listen on %s:%s:%u: %s", cfg_transport_name(l->transport), h,
				l->port, strerror(-r));
			break;
		}
		if (!p->port_of[l->transport])
			p->port_of[l->transport] = l->port;
		log_info("listening on %s", url);
	}
	if (tlsdir[0])
		remove_tls_dir(tlsdir);
	return r;
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

int proxy_create(struct proxy **pp, su_root_t *root, const struct cfg *cfg)
{
	struct proxy *p;
	int r = 0;
	struct ptr *s;

	p = su_home_new(sizeof *p);
	if (!p)
		return -ENOMEM;
	p->root = root;
	p->cfg = cfg;
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());

	p->agent = nta_agent_create(root, (url_string_t *)-1 /* no transport yet */, agent_message, p, NTATAG_UA(0),
				    NTATAG_CANCEL_487(0), NTATAG_SERVER_RPORT(1),
				    NTATAG_CLIENT_RPORT(1), NTATAG_PASS_100(1), NTATAG_EXTRA_100(0),
				    NTATAG_MAXSIZE(65536), TAG_END());
	if (!p->agent) {
		r = errno ? -errno : -ENOMEM;
		log_err("cannot create the SIP agent: %s", strerror(-r));
		goto out;
	}
	r = add_listeners(p);
	if (r < 0)
		goto out;
	collect_self(p);
	choose_rr_host(p);
	r = load_upstreams(p, cfg);
	if (r < 0)
		goto out;

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
	log_info("Record-Route host %s; %zu upstream(s)", p->rr_host, p->n_up);
out:
	if (r < 0)
		proxy_destroy(p);
	else
		*pp = p;
	return r;
}

int proxy_reload(struct proxy *p, const struct cfg *cfg)
{
	const struct cfg_sip *a = &p->cfg->sip, *b = &cfg->sip;
	int r;

	if (a->n_listen != b->n_listen || memcmp(a->listen, b->listen, sizeof a->listen) != 0)
		log_warn("reload: listener changes take effect after a restart");
	p->cfg = cfg;
	r = load_upstreams(p, cfg);
	collect_self(p);
	choose_rr_host(p);
	return r;
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
	if (!p->drain_timer ||
	    su_timer_set_interval(p->drain_timer, drain_timeout, p->stateless,
				  p->cfg->sip.shutdown_timeout * 1000) < 0) {
		p->drain_done = NULL;
		done(arg);
	}
}

void proxy_get_stats(const struct proxy *p, struct proxy_stats *out)
{
	*out = p->stats;
}

void proxy_destroy(struct proxy *p)
{
	if (!p)
		return;
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
