/* edge: routing policy and address sets (pure). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "sipnat/edge.h"

int edge_parse_host(const char *host, uint16_t port, struct sockaddr_storage *sa)
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(host);

	memset(sa, 0, sizeof *sa);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		if (n - 2 >= sizeof buf)
			return -EINVAL;
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
		host = buf;
	}
	struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		return 0;
	}
	memset(sa, 0, sizeof *sa);
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		return 0;
	}
	return -EINVAL;
}

/* Reduces an address to family, 16 address bytes and port, turning
 * IPv4-mapped IPv6 into IPv4 so that a dual-stack socket's view of an IPv4
 * peer matches the configured IPv4 address. */
static int normalize(const struct sockaddr *sa, int *family, unsigned char addr[16], uint16_t *port)
{
	memset(addr, 0, 16);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
		*family = AF_INET;
		memcpy(addr, &v4->sin_addr, 4);
		*port = ntohs(v4->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
		*port = ntohs(v6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
			*family = AF_INET;
			memcpy(addr, &v6->sin6_addr.s6_addr[12], 4);
		} else {
			*family = AF_INET6;
			memcpy(addr, &v6->sin6_addr, 16);
		}
		return 0;
	}
	return -EAFNOSUPPORT;
}

static bool entry_matches(const struct sockaddr_storage *e, int fam, const unsigned char *a,
                          uint16_t port, bool any_port_query)
{
	int efam;
	unsigned char ea[16];
	uint16_t eport;

	if (normalize((const struct sockaddr *)e, &efam, ea, &eport) < 0)
		return false;
	if (efam != fam || memcmp(ea, a, 16) != 0)
		return false;
	if (eport == 0)
		return true;
	return !any_port_query && eport == port;
}

int edge_addrset_add_sa(struct edge_addrset *s, const struct sockaddr *sa, uint16_t port)
{
	int fam;
	unsigned char a[16];
	uint16_t ignored;

	if (normalize(sa, &fam, a, &ignored) < 0)
		return -EINVAL;
	for (size_t i = 0; i < s->n; i++) {
		int efam = 0;
		unsigned char ea[16];
		uint16_t eport = 0;
		normalize((const struct sockaddr *)&s->addr[i], &efam, ea, &eport);
		if (efam == fam && !memcmp(ea, a, 16) && eport == port)
			return 0;
	}
	if (s->n >= EDGE_MAX_ADDRS)
		return -ENOSPC;
	struct sockaddr_storage *e = &s->addr[s->n];
	memset(e, 0, sizeof *e);
	if (fam == AF_INET) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)e;
		v4->sin_family = AF_INET;
		memcpy(&v4->sin_addr, a, 4);
		v4->sin_port = htons(port);
	} else {
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)e;
		v6->sin6_family = AF_INET6;
		memcpy(&v6->sin6_addr, a, 16);
		v6->sin6_port = htons(port);
	}
	s->n++;
	return 0;
}

int edge_addrset_add(struct edge_addrset *s, const char *host, uint16_t port)
{
	struct sockaddr_storage sa;
	int r = edge_parse_host(host, port, &sa);

	if (r < 0)
		return r;
	return edge_addrset_add_sa(s, (struct sockaddr *)&sa, port);
}

bool edge_addrset_has(const struct edge_addrset *s, const struct sockaddr *sa)
{
	int fam;
	unsigned char a[16];
	uint16_t port;

	if (!sa || normalize(sa, &fam, a, &port) < 0)
		return false;
	for (size_t i = 0; i < s->n; i++)
		if (entry_matches(&s->addr[i], fam, a, port, false))
			return true;
	return false;
}

bool edge_addrset_has_host(const struct edge_addrset *s, const char *host, uint16_t port)
{
	struct sockaddr_storage sa;
	int fam;
	unsigned char a[16];
	uint16_t p;

	if (!host || edge_parse_host(host, port, &sa) < 0)
		return false;
	normalize((struct sockaddr *)&sa, &fam, a, &p);
	for (size_t i = 0; i < s->n; i++)
		if (entry_matches(&s->addr[i], fam, a, port, port == 0))
			return true;
	return false;
}

/* The policy.  The order of the tests matters: a Route that remains after
 * ours were removed is where the request goes next, so it is judged before
 * the Request-URI. */
enum edge_verdict edge_decide(const struct edge_request *r, const char **why)
{
	const char *dummy;

	if (!why)
		why = &dummy;

	if (r->from_upstream) {
		if (r->has_route) {
			*why = "upstream request loose-routed onward";
			return EDGE_TO_TARGET;
		}
		if (r->ruri_is_self) {
			if (r->is_options && !r->ruri_has_user) {
				*why = "OPTIONS to sipnatd";
				return EDGE_LOCAL;
			}
			*why = "no registered device for this URI";
			return EDGE_NOT_FOUND;
		}
		*why = "upstream request toward its Request-URI";
		return EDGE_TO_TARGET;
	}

	/* From a device (anything that is not an upstream). */
	if (r->has_route) {
		if (r->route_is_upstream) {
			*why = "device request routed to an upstream";
			return EDGE_TO_TARGET;
		}
		*why = "device request routed to a foreign host";
		return EDGE_REFUSE;
	}
	if (r->ruri_is_self && !r->ruri_has_user && r->is_options) {
		*why = "OPTIONS to sipnatd";
		return EDGE_LOCAL;
	}
	/* A Request-URI on an upstream's host: mid-dialog it is the PBX's
	 * Contact, exact as the PBX gave it (a FreeSWITCH profile may answer
	 * on another port than the one configured); a new request goes where
	 * the upstream is configured, with its failover, whatever port or
	 * transport the phone's account wrote (sip:pbx;transport=tls from a
	 * phone that only speaks TLS to us). */
	if (r->ruri_is_upstream && (r->in_dialog || !r->have_upstream)) {
		*why = "device request to an upstream";
		return EDGE_TO_TARGET;
	}
	if (r->ruri_is_upstream) {
		*why = "device request to an upstream's host, sent to the upstream";
		return EDGE_TO_UPSTREAM;
	}
	if (r->ruri_is_self || r->ruri_in_domain) {
		if (!r->have_upstream) {
			*why = "no upstream configured";
			return EDGE_NOT_FOUND;
		}
		*why = "device request for our domain, sent upstream";
		return EDGE_TO_UPSTREAM;
	}
	*why = "device request for a foreign domain";
	return EDGE_REFUSE;
}

const char *edge_verdict_name(enum edge_verdict v)
{
	switch (v) {
	case EDGE_LOCAL:
		return "local";
	case EDGE_TO_UPSTREAM:
		return "upstream";
	case EDGE_TO_TARGET:
		return "target";
	case EDGE_REFUSE:
		return "refuse";
	case EDGE_NOT_FOUND:
		return "not-found";
	}
	return "?";
}
