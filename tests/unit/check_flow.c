/* Unit tests for flow tokens: round trips, forgery, malformed input. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sipnat/edge.h"
#include "sipnat/flow.h"

static uint8_t key[FLOW_KEY_LEN], other_key[FLOW_KEY_LEN];

static void setup(void)
{
	flow_secret_from_string("test secret", key);
	flow_secret_from_string("another secret", other_key);
}

static struct flow mkflow(enum cfg_transport t, const char *host, uint16_t port)
{
	struct flow f;

	memset(&f, 0, sizeof f);
	f.transport = t;
	ck_assert_int_eq(edge_parse_host(host, port, &f.remote), 0);
	return f;
}

static void assert_same_flow(const struct flow *a, const struct flow *b)
{
	char x[128], y[128];

	ck_assert_int_gt(flow_format(a, x, sizeof x), 0);
	ck_assert_int_gt(flow_format(b, y, sizeof y), 0);
	ck_assert_str_eq(x, y);
}

START_TEST(token_round_trip_v4_v6)
{
	struct flow in[3] = {mkflow(CFG_TP_UDP, "203.0.113.101", 40123),
	                     mkflow(CFG_TP_TCP, "2001:db8::5", 5060),
	                     mkflow(CFG_TP_TLS, "198.51.100.7", 1)};
	for (int i = 0; i < 3; i++) {
		char tok[FLOW_TOKEN_MAX];
		struct flow out;
		int n = flow_token_encode(&in[i], key, tok, sizeof tok);
		ck_assert_int_gt(n, 0);
		ck_assert_uint_eq(strlen(tok), (size_t)n);
		ck_assert_uint_eq(
		        strspn(tok,
		               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
		        (size_t)n);
		ck_assert_int_eq(flow_token_decode(tok, (size_t)n, key, &out), 0);
		assert_same_flow(&in[i], &out);
	}
}
END_TEST

START_TEST(token_forged_or_foreign_key_rejected)
{
	struct flow f = mkflow(CFG_TP_UDP, "203.0.113.101", 40123), out;
	char tok[FLOW_TOKEN_MAX];
	int n = flow_token_encode(&f, key, tok, sizeof tok);

	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(flow_token_decode(tok, (size_t)n, other_key, &out), -EBADMSG);
	/* Change one character of the address part: the MAC must catch it. */
	tok[5] = tok[5] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(flow_token_decode(tok, (size_t)n, key, &out), -EBADMSG);
}
END_TEST

START_TEST(token_malformed_rejected)
{
	struct flow out;
	const char *bad[] = {
	        "",
	        "A",
	        "!!!!",
	        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	        "AQAE",
	        "sip:evil@example.com"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_int_eq(flow_token_decode(bad[i], strlen(bad[i]), key, &out), -EINVAL);
}
END_TEST

START_TEST(token_small_buffer)
{
	struct flow f = mkflow(CFG_TP_UDP, "2001:db8::1", 5060);
	char tok[10];

	ck_assert_int_eq(flow_token_encode(&f, key, tok, sizeof tok), -ENOSPC);
}
END_TEST

START_TEST(contact_round_trip_and_forgery)
{
	struct flow f = mkflow(CFG_TP_TCP, "203.0.113.102", 61000), out;
	const char *contact = "sip:101@192.168.2.10:5060;transport=tcp;ob";
	char tok[1024];
	char *c = NULL;
	int n = flow_contact_encode(&f, contact, key, tok, sizeof tok);

	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(flow_contact_decode(tok, (size_t)n, key, &out, &c), 0);
	ck_assert_str_eq(c, contact);
	assert_same_flow(&f, &out);
	free(c);
	c = NULL;
	ck_assert_int_eq(flow_contact_decode(tok, (size_t)n, other_key, &out, &c), -EBADMSG);
	ck_assert_ptr_null(c);
	tok[n - 20] = tok[n - 20] == 'x' ? 'y' : 'x';
	ck_assert_int_eq(flow_contact_decode(tok, (size_t)n, key, &out, &c), -EBADMSG);
}
END_TEST

START_TEST(equal_ignores_padding_not_port_or_transport)
{
	struct flow a = mkflow(CFG_TP_UDP, "203.0.113.101", 40123), b = a;
	struct flow c = mkflow(CFG_TP_UDP, "203.0.113.101", 40124);
	struct flow d = mkflow(CFG_TP_TCP, "203.0.113.101", 40123);
	struct flow e = mkflow(CFG_TP_UDP, "2001:db8::1", 40123), f = e;

	/* Bytes past the address (sin_zero, the rest of the storage) must
	 * not matter: flows from the state file and from the socket differ
	 * there. */
	memset((char *)&b.remote + sizeof(struct sockaddr_in), 0x5a,
	       sizeof b.remote - sizeof(struct sockaddr_in));
	ck_assert(flow_equal(&a, &b));
	ck_assert(!flow_equal(&a, &c));
	ck_assert(!flow_equal(&a, &d));
	ck_assert(!flow_equal(&a, &e));
	ck_assert(flow_equal(&e, &f));
	((struct sockaddr_in6 *)&f.remote)->sin6_addr.s6_addr[15] ^= 1;
	ck_assert(!flow_equal(&e, &f));
}
END_TEST

START_TEST(format_parse)
{
	struct flow f, g;
	char buf[128];

	ck_assert_int_eq(flow_parse("tcp:[2001:db8::9]:5070", &f), 0);
	ck_assert_int_gt(flow_format(&f, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "tcp:[2001:db8::9]:5070");
	ck_assert_int_eq(flow_parse("udp:203.0.113.5:1", &g), 0);
	ck_assert_int_gt(flow_format(&g, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "udp:203.0.113.5:1");
	ck_assert_int_eq(flow_parse("sctp:203.0.113.5:1", &g), -EINVAL);
	ck_assert_int_eq(flow_parse("udp:example.com:5060", &g), -EINVAL);
	ck_assert_int_eq(flow_format(&g, buf, 4), -ENOSPC);
}
END_TEST

START_TEST(secret_file_created_then_reused)
{
	char dir[] = "/tmp/check_flow.XXXXXX", path[256];
	uint8_t a[FLOW_KEY_LEN], b[FLOW_KEY_LEN], zero[FLOW_KEY_LEN] = {0};
	struct stat st;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/flow_secret", dir);
	ck_assert_int_eq(flow_secret_load(path, a), 0);
	ck_assert_int_ne(memcmp(a, zero, sizeof a), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(flow_secret_load(path, b), 0);
	ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
	unlink(path);
	rmdir(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("flow");
	TCase *tc;
	SRunner *sr;
	int failed;

	tc = tcase_create("token");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, token_round_trip_v4_v6);
	tcase_add_test(tc, token_forged_or_foreign_key_rejected);
	tcase_add_test(tc, token_malformed_rejected);
	tcase_add_test(tc, token_small_buffer);
	suite_add_tcase(s, tc);
	tc = tcase_create("contact");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, contact_round_trip_and_forgery);
	suite_add_tcase(s, tc);
	tc = tcase_create("text");
	tcase_add_test(tc, format_parse);
	tcase_add_test(tc, equal_ignores_padding_not_port_or_transport);
	tcase_add_test(tc, secret_file_created_then_reused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
