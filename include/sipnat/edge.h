/* edge: the routing policy of an edge proxy, and the address sets it needs.
 *
 * Pure: the proxy extracts facts from a request (where it came from, what
 * its Request-URI and Route name) and edge_decide() says where it may go.
 * Keeping the policy out of nta callbacks lets every branch be unit-tested,
 * which matters because a wrong branch here makes an open relay.
 *
 * Threads: [pure].  An edge_addrset is a plain value; the caller owns it.
 */
#ifndef SIPNAT_EDGE_H
#define SIPNAT_EDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define EDGE_MAX_ADDRS 64

/* A set of IP addresses, each with a port or 0 for "any port". */
struct edge_addrset {
	struct sockaddr_storage addr[EDGE_MAX_ADDRS];
	size_t n;
};

/* Adds host (numeric IPv4, IPv6 with or without brackets) with port (0 =
 * any).  Returns 0, -EINVAL for a non-numeric host, -ENOSPC when full.
 * Adding an address already present is a no-op. */
int edge_addrset_add(struct edge_addrset *s, const char *host, uint16_t port);
int edge_addrset_add_sa(struct edge_addrset *s, const struct sockaddr *sa, uint16_t port);

/* True when sa (its port ignored if the set entry has port 0, and
 * IPv4-mapped IPv6 compared as IPv4) is in the set. */
bool edge_addrset_has(const struct edge_addrset *s, const struct sockaddr *sa);

/* Same for a textual host and port; port 0 in the query matches only
 * entries with port 0.  A host name (not a literal) never matches. */
bool edge_addrset_has_host(const struct edge_addrset *s, const char *host, uint16_t port);

/* Parses a numeric host (brackets allowed around IPv6) into sa with port.
 * Returns 0 or -EINVAL. */
int edge_parse_host(const char *host, uint16_t port, struct sockaddr_storage *sa);

enum edge_verdict {
	EDGE_LOCAL,       /* answer it here (OPTIONS to sipnatd) */
	EDGE_TO_UPSTREAM, /* send to the configured upstream, R-URI unchanged */
	EDGE_TO_TARGET,   /* send where Route / Request-URI point */
	EDGE_REFUSE,      /* 403: would make us an open relay */
	EDGE_NOT_FOUND,   /* 404: for us, but nobody is known there */
};

/* Facts about one request, after sipnatd's own Route entries were removed. */
struct edge_request {
	bool from_upstream;     /* source address is an upstream's */
	bool is_options;        /* method is OPTIONS */
	bool ruri_has_user;     /* Request-URI has a user part */
	bool ruri_is_self;      /* Request-URI host:port is sipnatd */
	bool ruri_is_upstream;  /* Request-URI host is an upstream (name or address) */
	bool ruri_in_domain;    /* Request-URI host is a configured [sip] domain */
	bool had_own_route;     /* we removed at least one Route of ours */
	bool has_route;         /* a Route header remains */
	bool route_is_upstream; /* ...and its host is an upstream */
	bool have_upstream;     /* at least one upstream is configured */
	bool in_dialog;         /* To has a tag: a mid-dialog request */
};

/* Returns the verdict; *why (if not NULL) gets a static phrase for logs. */
enum edge_verdict edge_decide(const struct edge_request *r, const char **why);

const char *edge_verdict_name(enum edge_verdict v);

#endif
