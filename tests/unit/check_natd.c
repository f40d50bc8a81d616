/* Unit tests for natd: address classification, CIDR, each NAT predicate on
 * its own, SDP c= extraction, and the nat_detect list syntax.
 *
 * Public fixtures use RFC 5737 (192.0.2/24, 198.51.100/24, 203.0.113/24)
 * and RFC 3849 (2001:db8::/32) documentation addresses.
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

#include "sipnat/natd.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Build a sockaddr from a literal; IPv6 if it contains ':'. */
static struct sockaddr_storage mk(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
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

#define SA(ss) ((const struct sockaddr *)&(ss))

/* ---- classification ---- */

struct cls {
	const char *ip;
	bool priv;
};

/* Every range, its first and last address, and the neighbours just outside. */
static const struct cls v4_table[] = {
        {"0.0.0.0", true},          {"0.255.255.255", true},   {"1.0.0.0", false},
        {"9.255.255.255", false},   {"10.0.0.0", true},        {"10.255.255.255", true},
        {"11.0.0.0", false},        {"100.63.255.255", false}, {"100.64.0.0", true},
        {"100.127.255.255", true},  {"100.128.0.0", false},    {"126.255.255.255", false},
        {"127.0.0.1", true},        {"127.255.255.255", true}, {"128.0.0.0", false},
        {"169.253.255.255", false}, {"169.254.0.0", true},     {"169.254.255.255", true},
        {"169.255.0.0", false},     {"172.15.255.255", false}, {"172.16.0.0", true},
        {"172.31.255.255", true},   {"172.32.0.0", false},     {"192.167.255.255", false},
        {"192.168.0.0", true},      {"192.168.255.255", true}, {"192.169.0.0", false},
        {"192.0.2.1", false},       {"198.51.100.1", false},   {"203.0.113.255", false},
        {"255.255.255.255", false},
};

static const struct cls v6_table[] = {
        {"::", true},
        {"::1", true},
        {"::2", false},
        {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
        {"fc00::", true},
        {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
        {"fe00::", false},
        {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
        {"fe80::", true},
        {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
        {"fec0::", false},
        {"2001:db8::1", false},
        {"ff02::1", false},
        /* The IPv4-compatible form is deprecated and is not the mapped form. */
        {"::10.0.0.1", false},
        {"::ffff:10.0.0.1", true},
        {"::ffff:172.32.0.0", false},
};

START_TEST(classify_v4_sockaddr)
{
	const struct cls *c = &v4_table[_i];
	struct sockaddr_storage ss = mk(c->ip, 5060);

	ck_assert_msg(natd_addr_is_private(SA(ss)) == c->priv, "%s", c->ip);
	ck_assert_msg(natd_host_is_private(c->ip) == c->priv, "text %s", c->ip);
}
END_TEST

/* The same IPv4 table, seen through a dual-stack socket. */
START_TEST(classify_v4_mapped)
{
	const struct cls *c = &v4_table[_i];
	char mapped[64];
	struct sockaddr_storage ss;

	snprintf(mapped, sizeof(mapped), "::ffff:%s", c->ip);
	ss = mk(mapped, 5060);
	ck_assert_msg(natd_addr_is_private(SA(ss)) == c->priv, "%s", mapped);
	ck_assert_msg(natd_host_is_private(mapped) == c->priv, "text %s", mapped);
}
END_TEST

START_TEST(classify_v6)
{
	const struct cls *c = &v6_table[_i];
	struct sockaddr_storage ss = mk(c->ip, 5060);
	char br[80];

	snprintf(br, sizeof(br), "[%s]", c->ip);
	ck_assert_msg(natd_addr_is_private(SA(ss)) == c->priv, "%s", c->ip);
	ck_assert_msg(natd_host_is_private(c->ip) == c->priv, "text %s", c->ip);
	ck_assert_msg(natd_host_is_private(br) == c->priv, "text %s", br);
}
END_TEST

START_TEST(classify_host_text)
{
	struct sockaddr_un un;

	/* Names are never private, even ones that look like it. */
	ck_assert(!natd_host_is_private("localhost"));
	ck_assert(!natd_host_is_private("10.0.0.1.example.com"));
	ck_assert(!natd_host_is_private("pbx.example.com"));
	/* Malformed literals. */
	ck_assert(!natd_host_is_private("10.0.0"));
	ck_assert(!natd_host_is_private("010.0.0.1x"));
	ck_assert(!natd_host_is_private("10.0.0.1:5060"));
	ck_assert(!natd_host_is_private("[10.0.0.1]"));
	ck_assert(!natd_host_is_private("[::1"));
	ck_assert(!natd_host_is_private("::1]"));
	ck_assert(!natd_host_is_private("[]"));
	ck_assert(!natd_host_is_private("["));
	ck_assert(!natd_host_is_private(""));
	ck_assert(!natd_host_is_private(NULL));
	ck_assert(!natd_host_is_private("10.0.0.1%eth0"));
	ck_assert(!natd_host_is_private("fe80::1%"));
	ck_assert(!natd_host_is_private("fe80::1:2:3:4:5:6:7:8:9:a:b:c:d:e:f:10:11:12:13:14:15"));
	/* Zones, bare and URI-encoded (RFC 6874). */
	ck_assert(natd_host_is_private("fe80::1%eth0"));
	ck_assert(natd_host_is_private("[fe80::1%25eth0]"));
	ck_assert(!natd_host_is_private("[2001:db8::1%25eth0]"));

	ck_assert(!natd_addr_is_private(NULL));
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	ck_assert(!natd_addr_is_private((const struct sockaddr *)&un));
}
END_TEST

/* ---- CIDR ---- */

START_TEST(cidr_parse_good)
{
	struct natd_cidr c;
	unsigned char a[16];

	ck_assert_int_eq(natd_cidr_parse("10.0.0.0/8", &c), 0);
	ck_assert_int_eq(c.family, AF_INET);
	ck_assert_uint_eq(c.prefix, 8);
	ck_assert_int_eq(memcmp(c.addr, "\x0a\0\0\0", 4), 0);

	ck_assert_int_eq(natd_cidr_parse("::1/128", &c), 0);
	ck_assert_int_eq(c.family, AF_INET6);
	ck_assert_uint_eq(c.prefix, 128);
	inet_pton(AF_INET6, "::1", a);
	ck_assert_int_eq(memcmp(c.addr, a, 16), 0);

	/* A bare address is a host route. */
	ck_assert_int_eq(natd_cidr_parse("192.0.2.7", &c), 0);
	ck_assert_int_eq(c.family, AF_INET);
	ck_assert_uint_eq(c.prefix, 32);
	ck_assert_int_eq(natd_cidr_parse("2001:db8::7", &c), 0);
	ck_assert_uint_eq(c.prefix, 128);

	/* Host bits are cleared, also inside a partial byte. */
	ck_assert_int_eq(natd_cidr_parse("198.51.100.200/25", &c), 0);
	ck_assert_int_eq(memcmp(c.addr, "\xc6\x33\x64\x80", 4), 0);
	ck_assert_int_eq(natd_cidr_parse("2001:db8:ffff::1/33", &c), 0);
	inet_pton(AF_INET6, "2001:db8:8000::", a);
	ck_assert_int_eq(memcmp(c.addr, a, 16), 0);

	ck_assert_int_eq(natd_cidr_parse("0.0.0.0/0", &c), 0);
	ck_assert_uint_eq(c.prefix, 0);
	ck_assert_int_eq(natd_cidr_parse("::/0", &c), 0);
	ck_assert_uint_eq(c.prefix, 0);
}
END_TEST

START_TEST(cidr_parse_bad)
{
	static const char *const bad[] = {
	        "10.0.0.0/33",
	        "abc",
	        "1.2.3.4/",
	        "/8",
	        "",
	        "::1/129",
	        "1.2.3.4/-1",
	        "1.2.3.4/+8",
	        "1.2.3.4/ 8",
	        "1.2.3.4/8x",
	        " 1.2.3.4",
	        "1.2.3.4 ",
	        "1.2.3.4/8/8",
	        "[::1]/128",
	        "fe80::1%eth0/64",
	        "1.2.3/24",
	        "1.2.3.4/4294967304",
	        "1.2.3.4/99999999999999999999",
	        "0000:0000:0000:0000:0000:0000:0000:0000:0000/8",
	        "example.com/24",
	};
	struct natd_cidr c, sentinel;
	size_t i;

	memset(&sentinel, 0xa5, sizeof(sentinel));
	for (i = 0; i < N(bad); i++) {
		c = sentinel;
		ck_assert_msg(natd_cidr_parse(bad[i], &c) == -EINVAL, "accepted '%s'", bad[i]);
		ck_assert_msg(!memcmp(&c, &sentinel, sizeof(c)), "wrote out for '%s'", bad[i]);
	}
	ck_assert_int_eq(natd_cidr_parse(NULL, &c), -EINVAL);
	ck_assert_int_eq(natd_cidr_parse("10.0.0.0/8", NULL), -EINVAL);
}
END_TEST

static bool match(const char *cidr, const char *ip)
{
	struct natd_cidr c;
	struct sockaddr_storage ss = mk(ip, 0);

	ck_assert_msg(natd_cidr_parse(cidr, &c) == 0, "%s", cidr);
	return natd_cidr_match(&c, SA(ss));
}

START_TEST(cidr_match)
{
	struct natd_cidr c;
	struct sockaddr_un un;

	ck_assert(match("10.0.0.0/8", "10.0.0.0"));
	ck_assert(match("10.0.0.0/8", "10.255.255.255"));
	ck_assert(!match("10.0.0.0/8", "11.0.0.0"));
	ck_assert(!match("10.0.0.0/8", "9.255.255.255"));
	ck_assert(match("198.51.100.0/25", "198.51.100.127"));
	ck_assert(!match("198.51.100.0/25", "198.51.100.128"));
	ck_assert(match("192.0.2.7", "192.0.2.7"));
	ck_assert(!match("192.0.2.7", "192.0.2.6"));
	ck_assert(match("0.0.0.0/0", "203.0.113.9"));
	ck_assert(!match("0.0.0.0/0", "2001:db8::1"));

	ck_assert(match("2001:db8::/32", "2001:db8:ffff::1"));
	ck_assert(!match("2001:db8::/32", "2001:db9::"));
	ck_assert(!match("2001:db8::/32", "192.0.2.1"));
	ck_assert(match("::1/128", "::1"));
	ck_assert(!match("::1/128", "::2"));
	ck_assert(match("::/0", "2001:db8::1"));

	/* IPv4 and IPv4-mapped IPv6 are one address space. */
	ck_assert(match("10.0.0.0/8", "::ffff:10.1.2.3"));
	ck_assert(!match("10.0.0.0/8", "::ffff:11.1.2.3"));
	ck_assert(!match("10.0.0.0/8", "::10.1.2.3"));
	ck_assert(match("::ffff:0:0/96", "192.0.2.1"));
	ck_assert(match("::ffff:198.51.100.0/120", "198.51.100.9"));
	ck_assert(!match("::ffff:198.51.100.0/120", "198.51.101.9"));

	ck_assert_int_eq(natd_cidr_parse("10.0.0.0/8", &c), 0);
	ck_assert(!natd_cidr_match(&c, NULL));
	ck_assert(!natd_cidr_match(NULL, NULL));
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	ck_assert(!natd_cidr_match(&c, (const struct sockaddr *)&un));
}
END_TEST

/* ---- predicates, one at a time ----
 *
 * base() is a phone on a public address that tells the truth everywhere:
 * nothing may fire.  Each test breaks one thing and checks that exactly the
 * matching predicate fires, and that it is not reported when not asked for. */

struct fixture {
	struct sockaddr_storage src;
	const char *contacts[3];
	const char *sdp[3];
	struct natd_input in;
};

static void base(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->src = mk("192.0.2.10", 5060);
	f->contacts[0] = "192.0.2.10";
	f->sdp[0] = "192.0.2.10";
	f->in.src = SA(f->src);
	f->in.via_host = "192.0.2.10";
	f->in.via_port = 0;
	f->in.via_transport = "UDP";
	f->in.contact_hosts = f->contacts;
	f->in.n_contact_hosts = 1;
	f->in.sdp_hosts = f->sdp;
	f->in.n_sdp_hosts = 1;
}

/* Exactly `bit` fires among all, and nothing when `bit` is masked out. */
static void only(const struct fixture *f, unsigned bit)
{
	ck_assert_uint_eq(natd_test(&f->in, NATD_ALL), bit);
	ck_assert_uint_eq(natd_test(&f->in, bit), bit);
	ck_assert_uint_eq(natd_test(&f->in, NATD_ALL & ~bit), 0);
}

static void none(const struct fixture *f)
{
	ck_assert_uint_eq(natd_test(&f->in, NATD_ALL), 0);
}

START_TEST(pred_baseline)
{
	struct fixture f;

	base(&f);
	none(&f);
	ck_assert_uint_eq(natd_test(NULL, NATD_ALL), 0);
	/* Everything broken, nothing asked. */
	f.src = mk("10.0.0.1", 1234);
	f.in.via_host = "192.168.0.1";
	f.contacts[0] = "10.0.0.2";
	f.sdp[0] = "10.0.0.3";
	ck_assert_uint_eq(natd_test(&f.in, 0), 0);
	ck_assert_uint_eq(natd_test(&f.in, NATD_ALL), NATD_ALL);
}
END_TEST

START_TEST(pred_via_addr)
{
	struct fixture f;

	base(&f);
	f.in.via_host = "198.51.100.20";
	only(&f, NATD_VIA_ADDR);
	/* RFC 3261 §18.2.1: a name always counts as different. */
	f.in.via_host = "phone.example.com";
	only(&f, NATD_VIA_ADDR);
	/* The same address in another spelling is not different. */
	base(&f);
	f.src = mk("::ffff:192.0.2.10", 5060);
	none(&f);
	f.src = mk("2001:db8::a", 5060);
	f.in.via_host = "[2001:DB8:0:0::A]";
	none(&f);
	f.in.via_host = "2001:db8::a";
	none(&f);
	f.in.via_host = "[2001:db8::b]";
	only(&f, NATD_VIA_ADDR);
	/* Missing input never fires. */
	f.in.via_host = NULL;
	none(&f);
	base(&f);
	f.in.via_host = "198.51.100.20";
	f.in.src = NULL;
	ck_assert_uint_eq(natd_test(&f.in, NATD_VIA_ADDR), 0);
}
END_TEST

START_TEST(pred_via_port)
{
	struct fixture f;

	base(&f);
	f.src = mk("192.0.2.10", 40000);
	only(&f, NATD_VIA_PORT);
	f.in.via_port = 40000;
	none(&f);
	f.in.via_port = 5060;
	only(&f, NATD_VIA_PORT);

	/* Default port per transport when the Via has none. */
	f.in.via_port = 0;
	f.src = mk("192.0.2.10", 5060);
	f.in.via_transport = "TCP";
	none(&f);
	f.in.via_transport = NULL;
	none(&f);
	f.in.via_transport = "tls";
	only(&f, NATD_VIA_PORT);
	f.src = mk("192.0.2.10", 5061);
	none(&f);
	f.in.via_transport = "TLS-SCTP"; /* RFC 4168 */
	none(&f);
	f.in.via_transport = "UDP";
	only(&f, NATD_VIA_PORT);

	/* Out of range can never match a real port. */
	f.in.via_port = 5061 + 65536;
	only(&f, NATD_VIA_PORT);

	/* IPv6 source port. */
	base(&f);
	f.src = mk("2001:db8::a", 5070);
	f.in.via_host = "[2001:db8::a]";
	only(&f, NATD_VIA_PORT);
	f.in.via_port = 5070;
	none(&f);

	f.in.via_port = 1;
	f.in.via_host = NULL;
	ck_assert_uint_eq(natd_test(&f.in, NATD_VIA_PORT), 0);
	f.in.via_host = "[2001:db8::a]";
	f.in.src = NULL;
	ck_assert_uint_eq(natd_test(&f.in, NATD_VIA_PORT), 0);
}
END_TEST

START_TEST(pred_contact_private)
{
	struct fixture f;

	base(&f);
	/* Any Contact counts, not only the first. */
	f.contacts[1] = "172.20.1.1";
	f.in.n_contact_hosts = 2;
	only(&f, NATD_CONTACT_PRIV);
	f.contacts[1] = "[fd00::1]";
	only(&f, NATD_CONTACT_PRIV);
	f.contacts[1] = "pbx.example.com";
	none(&f);
	f.contacts[1] = "[2001:db8::1]";
	none(&f);
	/* Only the first n entries are looked at. */
	f.contacts[1] = "10.0.0.1";
	f.in.n_contact_hosts = 1;
	none(&f);
	f.contacts[0] = NULL;
	f.in.n_contact_hosts = 1;
	none(&f);
	f.in.contact_hosts = NULL;
	f.in.n_contact_hosts = 3;
	none(&f);
}
END_TEST

START_TEST(pred_via_private)
{
	struct fixture f;

	base(&f);
	f.in.via_host = "192.168.1.2";
	ck_assert_uint_eq(natd_test(&f.in, NATD_VIA_PRIV), NATD_VIA_PRIV);
	/* A private Via from a public source also differs from the source. */
	ck_assert_uint_eq(natd_test(&f.in, NATD_ALL), NATD_VIA_PRIV | NATD_VIA_ADDR);
	ck_assert_uint_eq(natd_test(&f.in, NATD_ALL & ~NATD_VIA_PRIV), NATD_VIA_ADDR);
	f.in.via_host = "[fe80::1]";
	ck_assert_uint_eq(natd_test(&f.in, NATD_VIA_PRIV), NATD_VIA_PRIV);
	f.in.via_host = "203.0.113.1";
	ck_assert_uint_eq(natd_test(&f.in, NATD_VIA_PRIV), 0);
	f.in.via_host = "host.example.com";
	ck_assert_uint_eq(natd_test(&f.in, NATD_VIA_PRIV), 0);
	f.in.via_host = NULL;
	ck_assert_uint_eq(natd_test(&f.in, NATD_VIA_PRIV), 0);
}
END_TEST

START_TEST(pred_sdp_private)
{
	struct fixture f;

	base(&f);
	f.sdp[1] = "198.51.100.1";
	f.sdp[2] = "100.64.0.1";
	f.in.n_sdp_hosts = 3;
	only(&f, NATD_SDP_PRIV);
	f.in.n_sdp_hosts = 2;
	none(&f);
	f.sdp[0] = "[fc00::5]";
	only(&f, NATD_SDP_PRIV);
	f.sdp[0] = "media.example.com";
	none(&f);
	/* RFC 3264 §8.4 hold is not evidence of NAT... */
	f.sdp[0] = "0.0.0.0";
	none(&f);
	f.sdp[0] = "::";
	none(&f);
	/* ...but the rest of 0/8 is private like everywhere else. */
	f.sdp[0] = "0.0.0.1";
	only(&f, NATD_SDP_PRIV);
	f.in.sdp_hosts = NULL;
	none(&f);
}
END_TEST

START_TEST(pred_source_private)
{
	struct fixture f;

	base(&f);
	f.src = mk("10.1.1.1", 5060);
	f.in.via_host = "10.1.1.1";
	ck_assert_uint_eq(natd_test(&f.in, NATD_SRC_PRIV), NATD_SRC_PRIV);
	/* The Via is private too; keep that out to see SRC_PRIV alone. */
	ck_assert_uint_eq(natd_test(&f.in, NATD_ALL & ~NATD_VIA_PRIV), NATD_SRC_PRIV);
	ck_assert_uint_eq(natd_test(&f.in, NATD_ALL & ~NATD_SRC_PRIV & ~NATD_VIA_PRIV), 0);
	f.src = mk("::ffff:172.16.0.1", 5060);
	ck_assert_uint_eq(natd_test(&f.in, NATD_SRC_PRIV), NATD_SRC_PRIV);
	f.src = mk("203.0.113.5", 5060);
	ck_assert_uint_eq(natd_test(&f.in, NATD_SRC_PRIV), 0);
	f.in.src = NULL;
	ck_assert_uint_eq(natd_test(&f.in, NATD_SRC_PRIV), 0);
}
END_TEST

/* ---- SDP c= extraction ---- */

/* Run natd_sdp_hosts on an exact-size heap copy, so that ASan reports any
 * read past len (the body is not NUL-terminated). */
static int extract(const char *body, size_t len, const char **hosts, size_t max, char *buf,
                   size_t bufsize, size_t *n)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, body, len);
	rc = natd_sdp_hosts(copy, len, hosts, max, buf, bufsize, n);
	free(copy);
	return rc;
}

#define BODY(le)                                                                                   \
	"v=0" le "o=- 1 1 IN IP4 198.51.100.99" le "s=-" le "c=IN IP4 192.0.2.1" le "t=0 0" le     \
	"m=audio 4000 RTP/AVP 0" le "c=IN IP4 10.0.0.7" le "m=video 4002 RTP/AVP 96" le            \
	"c=IN IP6 2001:db8::2" le "a=rtpmap:96 H264/90000" le

static void expect_three(const char *body)
{
	const char *hosts[8];
	char buf[128];
	size_t n = 99;

	ck_assert_int_eq(extract(body, strlen(body), hosts, 8, buf, sizeof(buf), &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(hosts[0], "192.0.2.1");
	ck_assert_str_eq(hosts[1], "10.0.0.7");
	ck_assert_str_eq(hosts[2], "2001:db8::2");
}

START_TEST(sdp_line_endings)
{
	expect_three(BODY("\r\n"));
	expect_three(BODY("\n"));
	expect_three(BODY("\r"));
	expect_three("c=IN IP4 192.0.2.1\r\n\r\nc=IN IP4 10.0.0.7\n\rc=IN IP6 2001:db8::2");
}
END_TEST

START_TEST(sdp_session_and_media)
{
	static const char body[] = BODY("\r\n");
	const char *hosts[8];
	char buf[128];
	size_t n, cut;
	struct fixture f;

	/* The session part alone gives the session-level address. */
	cut = (size_t)(strstr(body, "m=audio") - body);
	ck_assert_int_eq(extract(body, cut, hosts, 8, buf, sizeof(buf), &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(hosts[0], "192.0.2.1");

	ck_assert_int_eq(extract(body, sizeof(body) - 1, hosts, 8, buf, sizeof(buf), &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(hosts[1], "10.0.0.7");
	/* Fed to the predicate, the private media-level address fires. */
	base(&f);
	f.in.sdp_hosts = hosts;
	f.in.n_sdp_hosts = n;
	only(&f, NATD_SDP_PRIV);
	f.in.n_sdp_hosts = 1;
	none(&f);
}
END_TEST

START_TEST(sdp_truncated)
{
	static const char body[] = "v=0\r\nc=IN IP4 198.51.100.77\r\nc=IN IP4 10.9.8.7\r\n";
	const char *hosts[4];
	char buf[64];
	size_t n, cut;

	/* Cut right before the line end: the last line still counts. */
	cut = strstr(body, "\r\nc=IN IP4 10") - body;
	ck_assert_int_eq(extract(body, cut, hosts, 4, buf, sizeof(buf), &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(hosts[0], "198.51.100.77");
	/* Cut inside the second address: only what is inside len is read. */
	ck_assert_int_eq(extract(body, sizeof(body) - 5, hosts, 4, buf, sizeof(buf), &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(hosts[1], "10.9.8");
	/* Every prefix of the body is safe (ASan watches the reads). */
	for (cut = 0; cut < sizeof(body); cut++)
		ck_assert_int_eq(extract(body, cut, hosts, 4, buf, sizeof(buf), &n), 0);
	ck_assert_int_eq(natd_sdp_hosts(NULL, 0, hosts, 4, buf, sizeof(buf), &n), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(sdp_syntax)
{
	static const struct {
		const char *line;
		const char *host; /* NULL: no address expected */
	} t[] = {
	        {"c=IN IP4 224.2.1.1/127/3", "224.2.1.1"},
	        {"c=IN IP6 ff15::101/3", "ff15::101"},
	        {"c=in ip4 192.0.2.5", "192.0.2.5"},
	        {"c=IN  IP4\t192.0.2.5 ", "192.0.2.5"},
	        {"c=IN IP4 media.example.com", "media.example.com"},
	        {"C=IN IP4 10.0.0.1", NULL},
	        {" c=IN IP4 10.0.0.1", NULL},
	        {"a=c=IN IP4 10.0.0.1", NULL},
	        {"c=IN IP4", NULL},
	        {"c=IN IP4 ", NULL},
	        {"c=IN IP4 /127", NULL},
	        {"c=INX IP4 10.0.0.1", NULL},
	        {"c=IN IP5 10.0.0.1", NULL},
	        {"c=IN IP410.0.0.1", NULL},
	        {"c=IN", NULL},
	        {"c=", NULL},
	        {"c", NULL},
	        {"c=IN IP4 10.0\x01.0.1", NULL},
	        {"c=IN IP4 10.0\x7f.0.1", NULL},
	};
	const char *hosts[2];
	char buf[64];
	size_t i, n;

	for (i = 0; i < N(t); i++) {
		ck_assert_int_eq(
		        extract(t[i].line, strlen(t[i].line), hosts, 2, buf, sizeof(buf), &n), 0);
		if (!t[i].host) {
			ck_assert_msg(n == 0, "'%s' gave %zu", t[i].line, n);
			continue;
		}
		ck_assert_msg(n == 1, "'%s' gave %zu", t[i].line, n);
		ck_assert_str_eq(hosts[0], t[i].host);
	}
	/* An embedded NUL ends nothing early and is not taken as a host. */
	ck_assert_int_eq(extract("c=IN IP4 10.0.0.1\0x", 19, hosts, 2, buf, sizeof(buf), &n), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(sdp_no_space)
{
	static const char body[] = "c=IN IP4 192.0.2.1\nc=IN IP4 10.0.0.7\nc=IN IP4 192.0.2.3\n";
	const char *hosts[3];
	char buf[64];
	size_t n = 99;

	ck_assert_int_eq(extract(body, strlen(body), hosts, 2, buf, sizeof(buf), &n), -ENOSPC);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(hosts[0], "192.0.2.1");
	ck_assert_str_eq(hosts[1], "10.0.0.7");

	/* Exactly enough buffer for all three. */
	ck_assert_int_eq(extract(body, strlen(body), hosts, 3, buf, 10 + 9 + 10, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(hosts[2], "192.0.2.3");
	/* One byte short. */
	ck_assert_int_eq(extract(body, strlen(body), hosts, 3, buf, 10 + 9 + 9, &n), -ENOSPC);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(extract(body, strlen(body), hosts, 3, buf, 0, &n), -ENOSPC);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(extract(body, strlen(body), hosts, 0, buf, sizeof(buf), &n), -ENOSPC);
	ck_assert_uint_eq(n, 0);

	n = 99;
	ck_assert_int_eq(natd_sdp_hosts(body, 5, NULL, 3, buf, sizeof(buf), &n), -EINVAL);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(natd_sdp_hosts(body, 5, hosts, 3, NULL, 0, &n), -EINVAL);
	ck_assert_int_eq(natd_sdp_hosts(NULL, 5, hosts, 3, buf, sizeof(buf), &n), -EINVAL);
	ck_assert_int_eq(natd_sdp_hosts(body, 5, hosts, 3, buf, sizeof(buf), NULL), -EINVAL);
}
END_TEST

/* ---- nat_detect syntax ---- */

START_TEST(list_good)
{
	static const struct {
		const char *text;
		unsigned mask;
	} t[] = {
	        {"via_addr", NATD_VIA_ADDR},
	        {"via_port", NATD_VIA_PORT},
	        {"contact_private", NATD_CONTACT_PRIV},
	        {"via_private", NATD_VIA_PRIV},
	        {"sdp_private", NATD_SDP_PRIV},
	        {"source_private", NATD_SRC_PRIV},
	        {"all", NATD_ALL},
	        {"default", NATD_DEFAULT},
	        {"none", 0},
	        {"  none\t", 0},
	        {"via_addr,via_port", NATD_VIA_ADDR | NATD_VIA_PORT},
	        {"VIA_PORT,, \tSdp_Private ,", NATD_VIA_PORT | NATD_SDP_PRIV},
	        {"default source_private", NATD_DEFAULT | NATD_SRC_PRIV},
	        {"via_addr via_addr", NATD_VIA_ADDR},
	};
	unsigned mask;
	size_t i;

	for (i = 0; i < N(t); i++) {
		mask = 0xdead;
		ck_assert_msg(natd_parse_list(t[i].text, &mask, NULL) == 0, "'%s'", t[i].text);
		ck_assert_msg(mask == t[i].mask, "'%s' gave %#x", t[i].text, mask);
	}
}
END_TEST

START_TEST(list_bad)
{
	static const struct {
		const char *text;
		size_t bad_at;
		const char *bad; /* the word reported */
	} t[] = {
	        {"via_adr", 0, "via_adr"},
	        {"via_addr bogus,via_port", 9, "bogus"},
	        {"via_addr,via_addrx", 9, "via_addrx"},
	        {"via", 0, "via"},
	        {"none via_addr", 0, "none"},
	        {"via_addr, none", 10, "none"},
	        {"", 0, ""},
	        {" ,\t", 0, ""},
	};
	const char *bad;
	unsigned mask;
	size_t i;

	for (i = 0; i < N(t); i++) {
		mask = 0xdead;
		bad = NULL;
		ck_assert_msg(natd_parse_list(t[i].text, &mask, &bad) == -EINVAL, "'%s'",
		              t[i].text);
		ck_assert_uint_eq(mask, 0xdead);
		ck_assert_ptr_eq(bad, t[i].text + t[i].bad_at);
		ck_assert_uint_eq(strcspn(bad, " \t,"), strlen(t[i].bad));
		ck_assert_int_eq(strncmp(bad, t[i].bad, strlen(t[i].bad)), 0);
	}
	ck_assert_int_eq(natd_parse_list("bogus", &mask, NULL), -EINVAL);
	ck_assert_int_eq(natd_parse_list(NULL, &mask, &bad), -EINVAL);
	ck_assert_int_eq(natd_parse_list("all", NULL, &bad), -EINVAL);
}
END_TEST

START_TEST(describe)
{
	char buf[128];
	unsigned mask, back;

	ck_assert_int_eq(natd_describe(NATD_VIA_PORT | NATD_CONTACT_PRIV, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "via_port,contact_private");
	ck_assert_int_eq(natd_describe(0, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "none");
	ck_assert_int_eq(natd_describe(0x40, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "none");
	ck_assert_int_eq(natd_describe(NATD_ALL, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "via_addr,via_port,contact_private,via_private,sdp_private,"
	                      "source_private");

	/* Every mask survives a round trip through the config syntax. */
	for (mask = 0; mask <= NATD_ALL; mask++) {
		ck_assert_int_eq(natd_describe(mask, buf, sizeof(buf)), 0);
		ck_assert_msg(natd_parse_list(buf, &back, NULL) == 0, "'%s'", buf);
		ck_assert_uint_eq(back, mask);
	}

	/* Short buffers: cut, terminated, reported. */
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(natd_describe(NATD_VIA_PORT, buf, 6), -ENOSPC);
	ck_assert_str_eq(buf, "via_p");
	ck_assert_int_eq(natd_describe(NATD_VIA_ADDR | NATD_VIA_PORT, buf, 10), -ENOSPC);
	ck_assert_str_eq(buf, "via_addr,");
	ck_assert_int_eq(natd_describe(NATD_VIA_PORT, buf, 9), 0);
	ck_assert_str_eq(buf, "via_port");
	ck_assert_int_eq(natd_describe(NATD_VIA_PORT, buf, 1), -ENOSPC);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(natd_describe(NATD_VIA_PORT, buf, 0), -EINVAL);
	ck_assert_int_eq(natd_describe(NATD_VIA_PORT, NULL, 10), -EINVAL);
}
END_TEST

static Suite *natd_suite(void)
{
	Suite *s = suite_create("natd");
	TCase *tc;

#define TC(name)                                                                                   \
	do {                                                                                       \
		tc = tcase_create(name);                                                           \
		tcase_set_timeout(tc, 5);                                                          \
		suite_add_tcase(s, tc);                                                            \
	} while (0)

	TC("classify_v4");
	tcase_add_loop_test(tc, classify_v4_sockaddr, 0, (int)N(v4_table));
	tcase_add_loop_test(tc, classify_v4_mapped, 0, (int)N(v4_table));
	TC("classify_v6");
	tcase_add_loop_test(tc, classify_v6, 0, (int)N(v6_table));
	TC("classify_host_text");
	tcase_add_test(tc, classify_host_text);
	TC("cidr_parse");
	tcase_add_test(tc, cidr_parse_good);
	tcase_add_test(tc, cidr_parse_bad);
	TC("cidr_match");
	tcase_add_test(tc, cidr_match);
	TC("pred_baseline");
	tcase_add_test(tc, pred_baseline);
	TC("pred_via_addr");
	tcase_add_test(tc, pred_via_addr);
	TC("pred_via_port");
	tcase_add_test(tc, pred_via_port);
	TC("pred_contact_private");
	tcase_add_test(tc, pred_contact_private);
	TC("pred_via_private");
	tcase_add_test(tc, pred_via_private);
	TC("pred_sdp_private");
	tcase_add_test(tc, pred_sdp_private);
	TC("pred_source_private");
	tcase_add_test(tc, pred_source_private);
	TC("sdp_extract");
	tcase_add_test(tc, sdp_line_endings);
	tcase_add_test(tc, sdp_session_and_media);
	tcase_add_test(tc, sdp_truncated);
	tcase_add_test(tc, sdp_syntax);
	tcase_add_test(tc, sdp_no_space);
	TC("parse_list");
	tcase_add_test(tc, list_good);
	tcase_add_test(tc, list_bad);
	TC("describe");
	tcase_add_test(tc, describe);
#undef TC
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(natd_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
