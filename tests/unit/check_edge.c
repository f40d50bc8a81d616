/* Unit tests for edge: one TCase per rule of the routing policy, an
 * exhaustive "never an open relay" sweep over every combination of facts,
 * and the address sets the proxy uses to recognise itself and upstreams.
 *
 * Addresses are RFC 5737 (192.0.2/24, 198.51.100/24, 203.0.113/24) and
 * RFC 3849 (2001:db8::/32) documentation ones.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "sipnat/edge.h"

/* ---- policy ---- */

/* Runs edge_decide() and checks that it always explains itself. */
static enum edge_verdict decide(const struct edge_request *r)
{
	const char *why = NULL;
	enum edge_verdict v = edge_decide(r, &why);

	ck_assert_ptr_nonnull(why);
	ck_assert_uint_gt(strlen(why), 0);
	/* why may be NULL. */
	ck_assert_int_eq(edge_decide(r, NULL), v);
	return v;
}

/* A device's INVITE to user@our-domain with one upstream configured. */
static struct edge_request device_invite(void)
{
	struct edge_request r = {
	        .ruri_has_user = true,
	        .ruri_in_domain = true,
	        .have_upstream = true,
	};
	return r;
}

/* An upstream's INVITE toward a device. */
static struct edge_request upstream_invite(void)
{
	struct edge_request r = {
	        .from_upstream = true,
	        .ruri_has_user = true,
	        .have_upstream = true,
	};
	return r;
}

START_TEST(up_to_target)
{
	struct edge_request r = upstream_invite();

	/* Toward a device's contact (not us, not in a domain). */
	ck_assert_int_eq(decide(&r), EDGE_TO_TARGET);
	/* Toward a domain or even another upstream: the PBX is trusted. */
	r.ruri_in_domain = true;
	ck_assert_int_eq(decide(&r), EDGE_TO_TARGET);
	r.ruri_is_upstream = true;
	ck_assert_int_eq(decide(&r), EDGE_TO_TARGET);
	/* A remaining Route wins, even over a Request-URI naming us. */
	r = upstream_invite();
	r.ruri_is_self = true;
	r.has_route = true;
	r.had_own_route = true;
	ck_assert_int_eq(decide(&r), EDGE_TO_TARGET);
	r.is_options = true;
	r.ruri_has_user = false;
	ck_assert_int_eq(decide(&r), EDGE_TO_TARGET);
}
END_TEST

START_TEST(up_options_self_local)
{
	struct edge_request r = upstream_invite();

	r.is_options = true;
	r.ruri_has_user = false;
	r.ruri_is_self = true;
	ck_assert_int_eq(decide(&r), EDGE_LOCAL);
	/* Same without any upstream configured (the flag is about config). */
	r.have_upstream = false;
	ck_assert_int_eq(decide(&r), EDGE_LOCAL);
}
END_TEST

START_TEST(up_self_with_user_not_found)
{
	struct edge_request r = upstream_invite();

	r.ruri_is_self = true;
	ck_assert_int_eq(decide(&r), EDGE_NOT_FOUND);
	/* OPTIONS to a user at our address is not for sipnatd itself. */
	r.is_options = true;
	ck_assert_int_eq(decide(&r), EDGE_NOT_FOUND);
	/* Anything but OPTIONS to sipnatd itself has nobody to go to. */
	r.is_options = false;
	r.ruri_has_user = false;
	ck_assert_int_eq(decide(&r), EDGE_NOT_FOUND);
}
END_TEST

START_TEST(dev_route_upstream)
{
	struct edge_request r = device_invite();

	/* In-dialog request whose route set leads to the PBX. */
	r.ruri_in_domain = false;
	r.had_own_route = true;
	r.has_route = true;
	r.route_is_upstream = true;
	ck_assert_int_eq(decide(&r), EDGE_TO_TARGET);
	/* The Request-URI does not matter once the Route is an upstream's. */
	r.ruri_is_self = true;
	ck_assert_int_eq(decide(&r), EDGE_TO_TARGET);
}
END_TEST

START_TEST(dev_route_foreign_refused)
{
	struct edge_request r = device_invite();

	r.has_route = true;
	r.route_is_upstream = false;
	ck_assert_int_eq(decide(&r), EDGE_REFUSE);
	/* A Request-URI naming an upstream does not launder a foreign Route. */
	r.ruri_is_upstream = true;
	ck_assert_int_eq(decide(&r), EDGE_REFUSE);
	/* Nor does OPTIONS to sipnatd. */
	r.ruri_is_upstream = false;
	r.ruri_in_domain = false;
	r.ruri_is_self = true;
	r.ruri_has_user = false;
	r.is_options = true;
	ck_assert_int_eq(decide(&r), EDGE_REFUSE);
}
END_TEST

START_TEST(dev_ruri_upstream_target)
{
	struct edge_request r = device_invite();

	/* Request-URI is the PBX's own Contact (in-dialog, no Route). */
	r.ruri_in_domain = false;
	r.ruri_is_upstream = true;
	r.in_dialog = true;
	ck_assert_int_eq(decide(&r), EDGE_TO_TARGET);
	r.ruri_has_user = false;
	ck_assert_int_eq(decide(&r), EDGE_TO_TARGET);
}
END_TEST

START_TEST(dev_new_request_to_upstream_host)
{
	struct edge_request r = device_invite();

	/* REGISTER sip:pbx;transport=tls from a phone that speaks TLS only to
	 * us: to the upstream as configured, not to the PBX's port 5061. */
	r.ruri_in_domain = false;
	r.ruri_is_upstream = true;
	r.in_dialog = false;
	ck_assert_int_eq(decide(&r), EDGE_TO_UPSTREAM);
	/* A Route still decides first. */
	r.has_route = true;
	r.route_is_upstream = true;
	ck_assert_int_eq(decide(&r), EDGE_TO_TARGET);
	r.route_is_upstream = false;
	ck_assert_int_eq(decide(&r), EDGE_REFUSE);
}
END_TEST

START_TEST(dev_self_or_domain_upstream)
{
	struct edge_request r = device_invite();

	ck_assert_int_eq(decide(&r), EDGE_TO_UPSTREAM);
	r.ruri_in_domain = false;
	r.ruri_is_self = true;
	ck_assert_int_eq(decide(&r), EDGE_TO_UPSTREAM);
	/* REGISTER to our domain (no user part in the Request-URI). */
	r.ruri_is_self = false;
	r.ruri_in_domain = true;
	r.ruri_has_user = false;
	ck_assert_int_eq(decide(&r), EDGE_TO_UPSTREAM);
	/* OPTIONS to a user at our address goes to the PBX too. */
	r.ruri_is_self = true;
	r.ruri_has_user = true;
	r.is_options = true;
	ck_assert_int_eq(decide(&r), EDGE_TO_UPSTREAM);
	/* Our own Route removed, none left: same decision. */
	r.had_own_route = true;
	ck_assert_int_eq(decide(&r), EDGE_TO_UPSTREAM);
}
END_TEST

START_TEST(dev_self_no_upstream_not_found)
{
	struct edge_request r = device_invite();

	r.have_upstream = false;
	ck_assert_int_eq(decide(&r), EDGE_NOT_FOUND);
	r.ruri_in_domain = false;
	r.ruri_is_self = true;
	ck_assert_int_eq(decide(&r), EDGE_NOT_FOUND);
}
END_TEST

START_TEST(dev_foreign_refused)
{
	struct edge_request r = device_invite();

	r.ruri_in_domain = false;
	ck_assert_int_eq(decide(&r), EDGE_REFUSE);
	r.is_options = true;
	r.ruri_has_user = false;
	ck_assert_int_eq(decide(&r), EDGE_REFUSE);
	r.have_upstream = false;
	ck_assert_int_eq(decide(&r), EDGE_REFUSE);
	/* Having removed our own Route does not make a foreign target ours. */
	r.had_own_route = true;
	ck_assert_int_eq(decide(&r), EDGE_REFUSE);
}
END_TEST

START_TEST(dev_options_self_local)
{
	struct edge_request r = device_invite();

	r.is_options = true;
	r.ruri_has_user = false;
	r.ruri_in_domain = false;
	r.ruri_is_self = true;
	ck_assert_int_eq(decide(&r), EDGE_LOCAL);
	/* Answered here even with no upstream configured. */
	r.have_upstream = false;
	ck_assert_int_eq(decide(&r), EDGE_LOCAL);
	/* And when our address is also a configured domain. */
	r.ruri_in_domain = true;
	ck_assert_int_eq(decide(&r), EDGE_LOCAL);
}
END_TEST

/* Every one of the 2^11 combinations of facts: a request that does not come
 * from an upstream may reach only an upstream, and only when the request
 * itself leads there; Route, when present, is what is judged. */
START_TEST(never_open_relay)
{
	unsigned counts[5] = {0};

	for (unsigned m = 0; m < 1u << 11; m++) {
		struct edge_request r = {
		        .from_upstream = m & 1u,
		        .is_options = m & 2u,
		        .ruri_has_user = m & 4u,
		        .ruri_is_self = m & 8u,
		        .ruri_is_upstream = m & 16u,
		        .ruri_in_domain = m & 32u,
		        .had_own_route = m & 64u,
		        .has_route = m & 128u,
		        .route_is_upstream = m & 256u,
		        .have_upstream = m & 512u,
		        .in_dialog = m & 1024u,
		};
		enum edge_verdict v = decide(&r);

		ck_assert_int_ge(v, EDGE_LOCAL);
		ck_assert_int_le(v, EDGE_NOT_FOUND);
		counts[v]++;
		if (r.from_upstream) {
			ck_assert_int_ne(v, EDGE_REFUSE);
			ck_assert_int_ne(v, EDGE_TO_UPSTREAM);
			continue;
		}
		if (v == EDGE_TO_TARGET) {
			if (r.has_route)
				ck_assert(r.route_is_upstream);
			else
				ck_assert(r.ruri_is_upstream);
		}
		if (v == EDGE_TO_UPSTREAM) {
			ck_assert(r.have_upstream);
			ck_assert(!r.has_route);
			ck_assert(r.ruri_is_self || r.ruri_in_domain || r.ruri_is_upstream);
			if (r.ruri_is_upstream && !r.ruri_is_self && !r.ruri_in_domain)
				ck_assert(!r.in_dialog);
		}
		if (v == EDGE_LOCAL)
			ck_assert(r.is_options && r.ruri_is_self && !r.ruri_has_user &&
			          !r.has_route);
		if (r.has_route && !r.route_is_upstream)
			ck_assert_int_eq(v, EDGE_REFUSE);
		if (!r.has_route && !r.ruri_is_self && !r.ruri_is_upstream && !r.ruri_in_domain)
			ck_assert_int_eq(v, EDGE_REFUSE);
	}
	/* Every verdict is reachable. */
	for (unsigned v = 0; v < 5; v++)
		ck_assert_uint_gt(counts[v], 0);
}
END_TEST

START_TEST(verdict_names)
{
	static const enum edge_verdict all[] = {EDGE_LOCAL, EDGE_TO_UPSTREAM, EDGE_TO_TARGET,
	                                        EDGE_REFUSE, EDGE_NOT_FOUND};

	ck_assert_str_eq(edge_verdict_name(EDGE_LOCAL), "local");
	ck_assert_str_eq(edge_verdict_name(EDGE_TO_UPSTREAM), "upstream");
	ck_assert_str_eq(edge_verdict_name(EDGE_TO_TARGET), "target");
	ck_assert_str_eq(edge_verdict_name(EDGE_REFUSE), "refuse");
	ck_assert_str_eq(edge_verdict_name(EDGE_NOT_FOUND), "not-found");
	ck_assert_str_eq(edge_verdict_name((enum edge_verdict)99), "?");
	for (size_t i = 0; i < 5; i++)
		for (size_t j = i + 1; j < 5; j++)
			ck_assert_str_ne(edge_verdict_name(all[i]), edge_verdict_name(all[j]));
}
END_TEST

/* ---- address sets ---- */

static struct sockaddr_storage mk(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof ss);
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		ck_assert_int_eq(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return ss;
}

static bool has(const struct edge_addrset *s, const char *ip, unsigned port)
{
	struct sockaddr_storage ss = mk(ip, port);

	return edge_addrset_has(s, (struct sockaddr *)&ss);
}

static struct edge_addrset set;

static void set_setup(void)
{
	memset(&set, 0, sizeof set);
}

START_TEST(set_add_and_match)
{
	ck_assert(!has(&set, "192.0.2.1", 5060));
	ck_assert_int_eq(edge_addrset_add(&set, "192.0.2.1", 5060), 0);
	ck_assert_int_eq(edge_addrset_add(&set, "2001:db8::1", 5080), 0);
	ck_assert_uint_eq(set.n, 2);

	ck_assert(has(&set, "192.0.2.1", 5060));
	ck_assert(!has(&set, "192.0.2.1", 5061));
	ck_assert(!has(&set, "192.0.2.2", 5060));
	ck_assert(has(&set, "2001:db8::1", 5080));
	ck_assert(!has(&set, "2001:db8::1", 5060));
	ck_assert(!has(&set, "2001:db8::2", 5080));
	/* Families do not mix (except IPv4-mapped, below). */
	ck_assert(!has(&set, "::c000:201", 5060));
}
END_TEST

START_TEST(set_duplicates)
{
	ck_assert_int_eq(edge_addrset_add(&set, "192.0.2.1", 5060), 0);
	ck_assert_int_eq(edge_addrset_add(&set, "192.0.2.1", 5060), 0);
	ck_assert_uint_eq(set.n, 1);
	/* The same address in other spellings is the same entry. */
	ck_assert_int_eq(edge_addrset_add(&set, "::ffff:192.0.2.1", 5060), 0);
	ck_assert_int_eq(edge_addrset_add(&set, "[::ffff:192.0.2.1]", 5060), 0);
	ck_assert_uint_eq(set.n, 1);
	ck_assert_int_eq(edge_addrset_add(&set, "2001:db8::1", 0), 0);
	ck_assert_int_eq(edge_addrset_add(&set, "[2001:DB8:0::1]", 0), 0);
	ck_assert_uint_eq(set.n, 2);
	/* Another port is another entry. */
	ck_assert_int_eq(edge_addrset_add(&set, "192.0.2.1", 5061), 0);
	ck_assert_int_eq(edge_addrset_add(&set, "192.0.2.1", 0), 0);
	ck_assert_uint_eq(set.n, 4);

	/* add_sa takes the port from its argument, not from sa. */
	struct sockaddr_storage ss = mk("192.0.2.1", 9999);
	ck_assert_int_eq(edge_addrset_add_sa(&set, (struct sockaddr *)&ss, 5061), 0);
	ck_assert_uint_eq(set.n, 4);
	ss = mk("203.0.113.9", 9999);
	ck_assert_int_eq(edge_addrset_add_sa(&set, (struct sockaddr *)&ss, 5062), 0);
	ck_assert_uint_eq(set.n, 5);
	ck_assert(has(&set, "203.0.113.9", 5062));
	ck_assert(!has(&set, "203.0.113.9", 9999));
}
END_TEST

START_TEST(set_port_zero_any)
{
	ck_assert_int_eq(edge_addrset_add(&set, "198.51.100.7", 0), 0);
	ck_assert(has(&set, "198.51.100.7", 5060));
	ck_assert(has(&set, "198.51.100.7", 1));
	ck_assert(has(&set, "198.51.100.7", 65535));
	ck_assert(has(&set, "198.51.100.7", 0));
	ck_assert(!has(&set, "198.51.100.8", 5060));

	/* has_host: a query with port 0 ("no port written") matches only
	 * entries that accept any port. */
	ck_assert(edge_addrset_has_host(&set, "198.51.100.7", 0));
	ck_assert(edge_addrset_has_host(&set, "198.51.100.7", 5070));
	ck_assert_int_eq(edge_addrset_add(&set, "203.0.113.1", 5060), 0);
	ck_assert(edge_addrset_has_host(&set, "203.0.113.1", 5060));
	ck_assert(!edge_addrset_has_host(&set, "203.0.113.1", 0));
	ck_assert(!edge_addrset_has_host(&set, "203.0.113.1", 5061));
}
END_TEST

START_TEST(set_v4_mapped)
{
	/* A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d. */
	ck_assert_int_eq(edge_addrset_add(&set, "192.0.2.10", 5060), 0);
	ck_assert(has(&set, "::ffff:192.0.2.10", 5060));
	ck_assert(!has(&set, "::ffff:192.0.2.10", 5061));
	ck_assert(!has(&set, "::ffff:192.0.2.11", 5060));
	ck_assert(edge_addrset_has_host(&set, "[::ffff:192.0.2.10]", 5060));

	/* And the other way round: a mapped entry matches plain IPv4. */
	ck_assert_int_eq(edge_addrset_add(&set, "::ffff:203.0.113.4", 0), 0);
	ck_assert(has(&set, "203.0.113.4", 7));
	ck_assert(edge_addrset_has_host(&set, "203.0.113.4", 0));
}
END_TEST

START_TEST(set_has_host_forms)
{
	ck_assert_int_eq(edge_addrset_add(&set, "[2001:db8::5]", 5060), 0);
	ck_assert(edge_addrset_has_host(&set, "[2001:db8::5]", 5060));
	ck_assert(edge_addrset_has_host(&set, "2001:db8::5", 5060));
	ck_assert(edge_addrset_has_host(&set, "[2001:db8:0:0::5]", 5060));
	ck_assert(!edge_addrset_has_host(&set, "[2001:db8::5]", 5061));
	ck_assert(!edge_addrset_has_host(&set, "[2001:db8::5", 5060));
	ck_assert(!edge_addrset_has_host(&set, "2001:db8::5]", 5060));
	ck_assert(!edge_addrset_has_host(&set, NULL, 5060));
	ck_assert(!edge_addrset_has_host(&set, "", 5060));
}
END_TEST

START_TEST(set_names_never_match)
{
	ck_assert_int_eq(edge_addrset_add(&set, "pbx.example.com", 5060), -EINVAL);
	ck_assert_int_eq(edge_addrset_add(&set, "localhost", 0), -EINVAL);
	ck_assert_uint_eq(set.n, 0);
	ck_assert_int_eq(edge_addrset_add(&set, "0.0.0.0", 0), 0);
	ck_assert_int_eq(edge_addrset_add(&set, "127.0.0.1", 0), 0);
	/* Even "localhost" is not taken for 127.0.0.1: no resolving here. */
	ck_assert(!edge_addrset_has_host(&set, "localhost", 0));
	ck_assert(!edge_addrset_has_host(&set, "pbx.example.com", 5060));
	ck_assert(!edge_addrset_has_host(&set, "127.0.0.1.example.com", 0));
	ck_assert(edge_addrset_has_host(&set, "127.0.0.1", 0));
}
END_TEST

START_TEST(set_full)
{
	char ip[32];

	for (unsigned i = 0; i < EDGE_MAX_ADDRS; i++) {
		snprintf(ip, sizeof ip, "198.51.100.%u", i + 1);
		ck_assert_int_eq(edge_addrset_add(&set, ip, 5060), 0);
	}
	ck_assert_uint_eq(set.n, EDGE_MAX_ADDRS);
	ck_assert_int_eq(edge_addrset_add(&set, "203.0.113.1", 5060), -ENOSPC);
	ck_assert_int_eq(edge_addrset_add(&set, "198.51.100.1", 5061), -ENOSPC);
	/* Adding what is already there still succeeds when full. */
	ck_assert_int_eq(edge_addrset_add(&set, "198.51.100.1", 5060), 0);
	ck_assert_uint_eq(set.n, EDGE_MAX_ADDRS);
	ck_assert(has(&set, "198.51.100.64", 5060));
	ck_assert(!has(&set, "203.0.113.1", 5060));
}
END_TEST

START_TEST(set_bad_family)
{
	struct sockaddr_un un;

	memset(&un, 0, sizeof un);
	un.sun_family = AF_UNIX;
	ck_assert_int_eq(edge_addrset_add_sa(&set, (struct sockaddr *)&un, 0), -EINVAL);
	ck_assert_uint_eq(set.n, 0);
	ck_assert_int_eq(edge_addrset_add(&set, "192.0.2.1", 0), 0);
	ck_assert(!edge_addrset_has(&set, (struct sockaddr *)&un));
	ck_assert(!edge_addrset_has(&set, NULL));
}
END_TEST

/* ---- edge_parse_host ---- */

START_TEST(parse_host_good)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	struct in6_addr want6;

	ck_assert_int_eq(edge_parse_host("203.0.113.7", 5070, &ss), 0);
	ck_assert_int_eq(v4->sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(v4->sin_port), 5070);
	ck_assert_uint_eq(ntohl(v4->sin_addr.s_addr), 0xcb007107u);

	inet_pton(AF_INET6, "2001:db8::7", &want6);
	ck_assert_int_eq(edge_parse_host("[2001:db8::7]", 5061, &ss), 0);
	ck_assert_int_eq(v6->sin6_family, AF_INET6);
	ck_assert_uint_eq(ntohs(v6->sin6_port), 5061);
	ck_assert_mem_eq(&v6->sin6_addr, &want6, sizeof want6);
	ck_assert_int_eq(edge_parse_host("2001:db8::7", 0, &ss), 0);
	ck_assert_int_eq(v6->sin6_family, AF_INET6);
	ck_assert_uint_eq(ntohs(v6->sin6_port), 0);
	ck_assert_mem_eq(&v6->sin6_addr, &want6, sizeof want6);
	ck_assert_int_eq(edge_parse_host("::", 1, &ss), 0);
	ck_assert_int_eq(v6->sin6_family, AF_INET6);
}
END_TEST

START_TEST(parse_host_bad)
{
	static const char *const no[] = {
	        "",
	        "[",
	        "[]",
	        "]",
	        "[2001:db8::1",
	        "2001:db8::1]",
	        "pbx.example.com",
	        "192.0.2.1:5060",
	        "[2001:db8::1]:5060",
	        "192.0.2.256",
	        "192.0.2",
	        " 192.0.2.1",
	        "fe80::1%eth0",
	        "[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]",
	};
	struct sockaddr_storage ss;

	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		ck_assert_msg(edge_parse_host(no[i], 5060, &ss) == -EINVAL, "'%s' accepted", no[i]);
}
END_TEST

static Suite *edge_suite(void)
{
	Suite *s = suite_create("edge");
	TCase *tc;

#define TC(name) (tc = tcase_create(name), suite_add_tcase(s, tc))
	TC("upstream_to_target");
	tcase_add_test(tc, up_to_target);
	TC("upstream_options_self_local");
	tcase_add_test(tc, up_options_self_local);
	TC("upstream_self_user_not_found");
	tcase_add_test(tc, up_self_with_user_not_found);
	TC("device_route_upstream_target");
	tcase_add_test(tc, dev_route_upstream);
	TC("device_route_foreign_refuse");
	tcase_add_test(tc, dev_route_foreign_refused);
	TC("device_ruri_upstream_target");
	tcase_add_test(tc, dev_ruri_upstream_target);
	tcase_add_test(tc, dev_new_request_to_upstream_host);
	TC("device_self_domain_to_upstream");
	tcase_add_test(tc, dev_self_or_domain_upstream);
	TC("device_self_no_upstream_not_found");
	tcase_add_test(tc, dev_self_no_upstream_not_found);
	TC("device_foreign_refuse");
	tcase_add_test(tc, dev_foreign_refused);
	TC("device_options_self_local");
	tcase_add_test(tc, dev_options_self_local);
	TC("never_open_relay");
	tcase_add_test(tc, never_open_relay);
	TC("verdict_names");
	tcase_add_test(tc, verdict_names);
	TC("addrset");
	tcase_add_checked_fixture(tc, set_setup, NULL);
	tcase_add_test(tc, set_add_and_match);
	tcase_add_test(tc, set_duplicates);
	tcase_add_test(tc, set_port_zero_any);
	tcase_add_test(tc, set_v4_mapped);
	tcase_add_test(tc, set_has_host_forms);
	tcase_add_test(tc, set_names_never_match);
	tcase_add_test(tc, set_full);
	tcase_add_test(tc, set_bad_family);
	TC("parse_host");
	tcase_add_test(tc, parse_host_good);
	tcase_add_test(tc, parse_host_bad);
#undef TC
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(edge_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
