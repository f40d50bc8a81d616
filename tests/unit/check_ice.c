/* Unit tests for ice: candidate parsing/formatting, RFC 8445 priorities,
 * private-address classification, foundations and relay candidates. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sipnat/ice.h"

START_TEST(test_parse_host)
{
	struct ice_candidate c;

	/* RFC 8839 §5.1 example. */
	ck_assert_int_eq(ice_parse_candidate("1 1 UDP 2130706431 203.0.113.141 8998 typ host", &c),
	                 0);
	ck_assert_str_eq(c.foundation, "1");
	ck_assert_uint_eq(c.component, 1);
	ck_assert_str_eq(c.transport, "UDP");
	ck_assert_uint_eq(c.priority, 2130706431u);
	ck_assert_str_eq(c.addr, "203.0.113.141");
	ck_assert_uint_eq(c.port, 8998);
	ck_assert_str_eq(c.type, "host");
	ck_assert_str_eq(c.raddr, "");
	ck_assert(!c.has_rport);
	ck_assert_str_eq(c.ext, "");
}
END_TEST

START_TEST(test_parse_related)
{
	struct ice_candidate c;

	ck_assert_int_eq(ice_parse_candidate("2 1 UDP 1694498815 192.0.2.3 45664 typ srflx raddr "
	                                     "203.0.113.141 rport 8998",
	                                     &c),
	                 0);
	ck_assert_str_eq(c.type, "srflx");
	ck_assert_str_eq(c.raddr, "203.0.113.141");
	ck_assert(c.has_rport);
	ck_assert_uint_eq(c.rport, 8998);

	/* RFC 6544 TCP candidate with extensions, and a "candidate:" prefix
	 * as trickle ICE fragments carry it. */
	ck_assert_int_eq(ice_parse_candidate("candidate:a+/9 2 tcp 1518280447 2001:db8::5 9 typ "
	                                     "host tcptype active generation 0",
	                                     &c),
	                 0);
	ck_assert_str_eq(c.foundation, "a+/9");
	ck_assert_uint_eq(c.component, 2);
	ck_assert_str_eq(c.addr, "2001:db8::5");
	ck_assert_str_eq(c.ext, "tcptype active generation 0");
	ck_assert_str_eq(c.raddr, "");
}
END_TEST

START_TEST(test_round_trip)
{
	static const char *const canon[] = {
	        "1 1 UDP 2130706431 203.0.113.141 8998 typ host",
	        "2 1 UDP 1694498815 192.0.2.3 45664 typ srflx raddr 203.0.113.141 rport 8998",
	        "rly1 2 udp 16777214 203.0.113.10 30001 typ relay raddr 192.0.2.10 rport 49171",
	        "3 1 tcp 1518280447 2001:db8::5 9 typ host tcptype active",
	        ("4 1 udp 1677729535 198.51.100.4 50000 typ prflx raddr 0.0.0.0 rport 0 "
	         "generation 0 network-cost 10"),
	        "x 256 udp 0 uuid-1234.local 1 typ host",
	};
	for (size_t i = 0; i < sizeof(canon) / sizeof(canon[0]); i++) {
		struct ice_candidate a, b;
		char buf[512];
		ck_assert_int_eq(ice_parse_candidate(canon[i], &a), 0);
		ck_assert_int_eq(ice_format_candidate(&a, buf, sizeof(buf)), 0);
		ck_assert_str_eq(buf, canon[i]);
		ck_assert_int_eq(ice_parse_candidate(buf, &b), 0);
		ck_assert_mem_eq(&a, &b, sizeof(a));
	}
}
END_TEST

START_TEST(test_parse_lenient_spacing)
{
	struct ice_candidate c;
	char buf[256];

	ck_assert_int_eq(ice_parse_candidate("1  1 UDP  2130706431 192.0.2.1 8998  typ host  "
	                                     "generation   0 ",
	                                     &c),
	                 0);
	ck_assert_int_eq(ice_format_candidate(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "1 1 UDP 2130706431 192.0.2.1 8998 typ host generation 0");
}
END_TEST

START_TEST(test_parse_bad)
{
	static const char *const bad[] = {
	        "",
	        "1",
	        "1 1",
	        "1 1 UDP",
	        "1 1 UDP 2130706431",
	        "1 1 UDP 2130706431 192.0.2.1",
	        "1 1 UDP 2130706431 192.0.2.1 8998",
	        "1 1 UDP 2130706431 192.0.2.1 8998 typ",
	        "1 1 UDP 2130706431 192.0.2.1 8998 host",      /* no "typ" */
	        "1 1 UDP 2130706431 192.0.2.1 65536 typ host", /* port > 65535 */
	        "1 1 UDP 2130706431 192.0.2.1 99999999 typ host",
	        "1 1 UDP 2130706431 192.0.2.1 80a typ host",    /* non-numeric port */
	        "1 x UDP 2130706431 192.0.2.1 8998 typ host",   /* non-numeric component */
	        "1 0 UDP 2130706431 192.0.2.1 8998 typ host",   /* component 0 */
	        "1 257 UDP 2130706431 192.0.2.1 8998 typ host", /* component > 256 */
	        "1 1 UDP 4294967296 192.0.2.1 8998 typ host",   /* priority > 2^32-1 */
	        "1 1 UDP -1 192.0.2.1 8998 typ host",
	        "1 1 UDP 12ab 192.0.2.1 8998 typ host",
	        "f*o 1 UDP 1 192.0.2.1 8998 typ host", /* '*' is not an ice-char */
	        "123456789012345678901234567890123 1 UDP 1 192.0.2.1 8998 typ host", /* 33 chars */
	        "1 1 UDP 1 192.0.2.1;x 8998 typ host",
	        "1 1 UDP 1 192.0.2.1 8998 typ srflx raddr",
	        "1 1 UDP 1 192.0.2.1 8998 typ srflx raddr 192.0.2.2 rport",
	        "1 1 UDP 1 192.0.2.1 8998 typ srflx raddr 192.0.2.2 rport x",
	        "1 1 UDP 1 192.0.2.1 8998 typ srflx raddr 192.0.2.2 rport 70000",
	        "1 1 UDP 1 192.0.2.1 8998 typ host\r\na=evil",
	        "1 1 UDP 1 192.0.2.1 8998 typ hostverylong", /* type does not fit */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ice_candidate c;
		memset(&c, 0x5a, sizeof(c));
		int rc = ice_parse_candidate(bad[i], &c);
		ck_assert_msg(rc == -EINVAL || rc == -E2BIG, "accepted '%s' (%d)", bad[i], rc);
		/* *out is untouched on failure. */
		ck_assert_uint_eq((unsigned char)c.foundation[0], 0x5a);
	}
	ck_assert_int_eq(ice_parse_candidate(NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_format_errors)
{
	struct ice_candidate c;
	char small[10];

	ck_assert_int_eq(ice_parse_candidate("1 1 UDP 2130706431 192.0.2.1 8998 typ host", &c), 0);
	ck_assert_int_eq(ice_format_candidate(&c, small, sizeof(small)), -ENOSPC);
	ck_assert_str_eq(small, "");
	c.port = 65536;
	ck_assert_int_eq(ice_format_candidate(&c, small, sizeof(small)), -EINVAL);
	ck_assert_int_eq(ice_format_candidate(NULL, small, sizeof(small)), -EINVAL);
}
END_TEST

/* RFC 8445 §5.1.2.1 formula, checked against the values in RFC 8839's
 * examples (host 126, srflx 100) and the recommended relay preference 0. */
START_TEST(test_priority)
{
	ck_assert_uint_eq(ice_priority(ICE_TYPE_PREF_HOST, 65535, 1), 2130706431u);
	ck_assert_uint_eq(ice_priority(ICE_TYPE_PREF_HOST, 65535, 2), 2130706430u);
	ck_assert_uint_eq(ice_priority(ICE_TYPE_PREF_SRFLX, 65535, 1), 1694498815u);
	ck_assert_uint_eq(ice_priority(ICE_TYPE_PREF_PRFLX, 65535, 1), 1862270975u);
	ck_assert_uint_eq(ice_priority(ICE_TYPE_PREF_RELAY, 65535, 1), 16777215u);
	ck_assert_uint_eq(ice_priority(ICE_TYPE_PREF_RELAY, 65535, 2), 16777214u);
	ck_assert_uint_eq(ice_priority(0, 0, 256), 0u);
	ck_assert_uint_eq(ice_priority(1, 2, 3), (1u << 24) + (2u << 8) + 253u);
	/* Out-of-range inputs are clamped, never wrap into another type. */
	ck_assert_uint_eq(ice_priority(500, 70000, 0), ice_priority(126, 65535, 1));
	ck_assert_uint_eq(ice_priority(0, 0, 1000), 0u);
	/* A relay candidate always loses against any host/srflx one. */
	ck_assert_uint_lt(ice_priority(ICE_TYPE_PREF_RELAY, 65535, 1),
	                  ice_priority(ICE_TYPE_PREF_SRFLX, 0, 2));
}
END_TEST

START_TEST(test_private)
{
	static const char *const priv[] = {
	        "10.1.2.3",
	        "172.16.0.1",
	        "172.31.255.254",
	        "192.168.1.20",
	        "100.64.0.1",
	        "100.127.1.1",
	        "169.254.1.1",
	        "127.0.0.1",
	        "0.0.0.0",
	        "::1",
	        "::",
	        "fc00::1",
	        "fd12:3456::1",
	        "fe80::1",
	        "fe80::1%eth0",
	        "febf::1",
	        "::ffff:10.0.0.1",
	        "abc.local",
	        "4f1b2c3d-aaaa.LOCAL",
	};
	static const char *const pub[] = {
	        "192.0.2.1",        "203.0.113.10",   "172.32.0.1",  "172.15.255.255",
	        "100.128.0.1",      "100.63.255.255", "2001:db8::1", "fec0::1",
	        "::ffff:192.0.2.1", "example.com",    "local",       "",
	        "11.0.0.1",
	};
	for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
		ck_assert_msg(ice_addr_is_private(priv[i]), "%s should be private", priv[i]);
	for (size_t i = 0; i < sizeof(pub) / sizeof(pub[0]); i++)
		ck_assert_msg(!ice_addr_is_private(pub[i]), "%s should be public", pub[i]);
	ck_assert(!ice_addr_is_private(NULL));
}
END_TEST

START_TEST(test_pick_foundation)
{
	const char *taken[] = {"1", "rly1", NULL, "rly3", "rly2"};
	char buf[16];

	ck_assert_int_eq(ice_pick_foundation(NULL, 0, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "rly1");
	ck_assert_int_eq(ice_pick_foundation(taken, 2, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "rly2");
	ck_assert_int_eq(ice_pick_foundation(taken, 5, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "rly4");
	ck_assert_int_eq(ice_pick_foundation(taken, 5, buf, 4), -ENOSPC);
	ck_assert_int_eq(ice_pick_foundation(taken, 5, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_relay_candidate)
{
	struct ice_candidate c;
	char buf[256];

	ck_assert_int_eq(
	        ice_relay_candidate("rly1", 1, "203.0.113.10", 30000, "192.0.2.10", 49170, &c), 0);
	ck_assert_int_eq(ice_format_candidate(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf,
	                 "rly1 1 udp 16777215 203.0.113.10 30000 typ relay raddr 192.0.2.10 rport "
	                 "49170");
	ck_assert_int_eq(ice_relay_candidate("rly1", 2, "2001:db8::10", 30001, NULL, 0, &c), 0);
	ck_assert_int_eq(ice_format_candidate(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "rly1 2 udp 16777214 2001:db8::10 30001 typ relay");

	ck_assert_int_eq(ice_relay_candidate("bad foundation", 1, "203.0.113.10", 1, NULL, 0, &c),
	                 -EINVAL);
	ck_assert_int_eq(ice_relay_candidate("r", 0, "203.0.113.10", 1, NULL, 0, &c), -EINVAL);
	ck_assert_int_eq(ice_relay_candidate("r", 1, "203.0.113.10", 65536, NULL, 0, &c), -EINVAL);
	ck_assert_int_eq(ice_relay_candidate("r", 1, "a b", 1, NULL, 0, &c), -EINVAL);
}
END_TEST

static Suite *ice_suite(void)
{
	Suite *s = suite_create("ice");
	TCase *tc;

#define ADD(name, fn)                                                                              \
	do {                                                                                       \
		tc = tcase_create(name);                                                           \
		tcase_add_test(tc, fn);                                                            \
		suite_add_tcase(s, tc);                                                            \
	} while (0)
	ADD("parse-host", test_parse_host);
	ADD("parse-related", test_parse_related);
	ADD("round-trip", test_round_trip);
	ADD("parse-lenient-spacing", test_parse_lenient_spacing);
	ADD("parse-bad", test_parse_bad);
	ADD("format-errors", test_format_errors);
	ADD("priority", test_priority);
	ADD("private", test_private);
	ADD("pick-foundation", test_pick_foundation);
	ADD("relay-candidate", test_relay_candidate);
#undef ADD
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ice_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
