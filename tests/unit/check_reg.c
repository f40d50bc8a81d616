/* Unit tests for the registration table: keys, replacement, heap order,
 * persistence. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "sipnat/edge.h"
#include "sipnat/reg.h"

static struct reg *r;

static void setup(void)
{
	ck_assert_int_eq(reg_create(&r), 0);
}

static void teardown(void)
{
	reg_free(r);
	r = NULL;
}

static struct reg_binding mk(const char *aor, const char *contact, const char *inst, unsigned regid,
                             const char *ip, uint16_t port, time_t expires)
{
	struct reg_binding b;

	memset(&b, 0, sizeof b);
	/* reg_update copies the strings: borrowing the caller's is fine. */
	b.aor = aor;
	b.contact = contact;
	b.instance = inst;
	b.reg_id = regid;
	b.flow.transport = CFG_TP_UDP;
	ck_assert_int_eq(edge_parse_host(ip, port, &b.flow.remote), 0);
	b.expires = expires;
	return b;
}

START_TEST(insert_and_replace_flow)
{
	struct reg_binding a = mk("sip:101@example.net", "sip:101@192.168.1.10", "", 0,
	                          "203.0.113.101", 5060, 1000);
	struct reg_binding *got;

	ck_assert_int_eq(reg_update(r, &a, &got), 1);
	ck_assert_uint_eq(reg_count(r), 1);
	/* Same device re-registers from a new NAT port: flow replaced. */
	a = mk("sip:101@example.net", "sip:101@192.168.1.10", "", 0, "203.0.113.101", 40000, 2000);
	ck_assert_int_eq(reg_update(r, &a, &got), 0);
	ck_assert_uint_eq(reg_count(r), 1);
	got = reg_find(r, "sip:101@example.net", "sip:101@192.168.1.10", "", 0);
	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(ntohs(((struct sockaddr_in *)&got->flow.remote)->sin_port), 40000);
	ck_assert_int_eq(got->expires, 2000);
	struct reg_binding probe = mk("x", "y", "", 0, "203.0.113.101", 5060, 1);
	ck_assert_ptr_null(reg_find_flow(r, &probe.flow));
	probe = mk("x", "y", "", 0, "203.0.113.101", 40000, 1);
	ck_assert_ptr_eq(reg_find_flow(r, &probe.flow), got);
}
END_TEST

START_TEST(instance_key_wins_over_contact)
{
	struct reg_binding a = mk("sip:101@example.net", "sip:101@192.168.1.10:5060",
	                          "<urn:uuid:1>", 1, "203.0.113.101", 5060, 1000);
	struct reg_binding b = mk("sip:101@example.net", "sip:101@10.0.0.7:5062", "<urn:uuid:1>", 1,
	                          "203.0.113.9", 6000, 1000);
	struct reg_binding c = mk("sip:101@example.net", "sip:101@10.0.0.7:5062", "<urn:uuid:1>", 2,
	                          "203.0.113.9", 6001, 1000);

	ck_assert_int_eq(reg_update(r, &a, NULL), 1);
	/* Same instance and reg-id from a new address replaces (RFC 5626). */
	ck_assert_int_eq(reg_update(r, &b, NULL), 0);
	ck_assert_uint_eq(reg_count(r), 1);
	/* Another reg-id is another flow. */
	ck_assert_int_eq(reg_update(r, &c, NULL), 1);
	ck_assert_uint_eq(reg_count(r), 2);
}
END_TEST

START_TEST(instance_rereg_new_contact_moves_flow)
{
	struct reg_binding a = mk("sip:101@example.net", "sip:101@192.168.1.10:5060",
	                          "<urn:uuid:1>", 1, "203.0.113.101", 5060, 1000);
	struct reg_binding b = mk("sip:101@example.net", "sip:101@10.0.0.7:5062;transport=udp;ob",
	                          "<urn:uuid:1>", 1, "203.0.113.9", 6000, 900);
	struct reg_binding *got;

	ck_assert_int_eq(reg_update(r, &a, NULL), 1);
	/* A longer Contact for the same instance: the binding moves to a new
	 * block; heap, AOR chain and flow index must all follow. */
	ck_assert_int_eq(reg_update(r, &b, &got), 0);
	ck_assert_str_eq(got->contact, "sip:101@10.0.0.7:5062;transport=udp;ob");
	ck_assert_ptr_null(reg_find_flow(r, &a.flow));
	ck_assert_ptr_eq(reg_find_flow(r, &b.flow), got);
	ck_assert_ptr_eq(reg_find(r, b.aor, "whatever", "<urn:uuid:1>", 1), got);
	ck_assert_ptr_eq(reg_next_due(r, 900), got);
	reg_remove_binding(r, got);
	ck_assert_uint_eq(reg_count(r), 0);
	ck_assert_ptr_null(reg_find_flow(r, &b.flow));
}
END_TEST

START_TEST(freed_blocks_are_reused_intact)
{
	char aor[64], contact[REG_CONTACT_MAX];

	/* Bindings of many sizes; remove every other one and add new ones of
	 * other sizes: blocks are recycled, and no string may be clobbered. */
	for (int i = 0; i < 2000; i++) {
		snprintf(aor, sizeof aor, "sip:%d@example.net", i);
		snprintf(contact, sizeof contact, "sip:%d@192.168.0.1:5060;x=%0*d", i, i % 300, 0);
		struct reg_binding b =
		        mk(aor, contact, "", 0, "203.0.113.1", (uint16_t)(i + 1), 100);
		ck_assert_int_eq(reg_update(r, &b, NULL), 1);
	}
	for (int i = 0; i < 2000; i += 2) {
		snprintf(aor, sizeof aor, "sip:%d@example.net", i);
		snprintf(contact, sizeof contact, "sip:%d@192.168.0.1:5060;x=%0*d", i, i % 300, 0);
		ck_assert_int_eq(reg_remove(r, aor, contact, "", 0), 1);
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(aor, sizeof aor, "sip:new%d@example.net", i);
		snprintf(contact, sizeof contact, "sip:new%d@192.168.0.2;y=%0*d", i, (i * 7) % 400,
		         0);
		struct reg_binding b =
		        mk(aor, contact, "<urn:uuid:x>", 1, "203.0.113.2", (uint16_t)(i + 1), 200);
		ck_assert_int_eq(reg_update(r, &b, NULL), 1);
	}
	ck_assert_uint_eq(reg_count(r), 2000);
	for (int i = 1; i < 2000; i += 2) {
		snprintf(aor, sizeof aor, "sip:%d@example.net", i);
		snprintf(contact, sizeof contact, "sip:%d@192.168.0.1:5060;x=%0*d", i, i % 300, 0);
		struct reg_binding *got = reg_find(r, aor, contact, "", 0);
		ck_assert_ptr_nonnull(got);
		ck_assert_str_eq(got->contact, contact);
		ck_assert_str_eq(got->instance, "");
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(aor, sizeof aor, "sip:new%d@example.net", i);
		snprintf(contact, sizeof contact, "sip:new%d@192.168.0.2;y=%0*d", i, (i * 7) % 400,
		         0);
		struct reg_binding *got = reg_find(r, aor, "", "<urn:uuid:x>", 1);
		ck_assert_ptr_nonnull(got);
		ck_assert_str_eq(got->contact, contact);
		ck_assert_str_eq(got->aor, aor);
	}
}
END_TEST

START_TEST(too_long_is_enospc)
{
	char big[REG_CONTACT_MAX + 10];

	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	struct reg_binding a = mk("sip:101@example.net", big, "", 0, "203.0.113.101", 5060, 1000);
	ck_assert_int_eq(reg_update(r, &a, NULL), -ENOSPC);
	ck_assert_uint_eq(reg_count(r), 0);
}
END_TEST

START_TEST(remove_one_and_star)
{
	struct reg_binding a =
	        mk("sip:101@example.net", "sip:101@192.168.1.10", "", 0, "203.0.113.1", 1, 100);
	struct reg_binding b =
	        mk("sip:101@example.net", "sip:101@192.168.1.11", "", 0, "203.0.113.1", 2, 100);
	struct reg_binding c =
	        mk("sip:102@example.net", "sip:102@192.168.1.12", "", 0, "203.0.113.1", 3, 100);

	reg_update(r, &a, NULL);
	reg_update(r, &b, NULL);
	reg_update(r, &c, NULL);
	ck_assert_int_eq(reg_remove(r, "sip:101@example.net", "sip:101@192.168.1.10", "", 0), 1);
	ck_assert_int_eq(reg_remove(r, "sip:101@example.net", "sip:101@192.168.1.10", "", 0), 0);
	ck_assert_int_eq(reg_remove(r, "sip:101@example.net", "*", "", 0), 1);
	ck_assert_uint_eq(reg_count(r), 1);
	ck_assert_ptr_nonnull(reg_find(r, "sip:102@example.net", "sip:102@192.168.1.12", "", 0));
}
END_TEST

START_TEST(heap_gives_earliest_of_expiry_and_keepalive)
{
	char contact[64];
	struct reg_binding *due;

	/* 1000 bindings with shuffled expiries; keepalive on one of them. */
	for (int i = 0; i < 1000; i++) {
		snprintf(contact, sizeof contact, "sip:%d@192.168.0.1", i);
		struct reg_binding b = mk("sip:a@example.net", contact, "", 0, "203.0.113.1",
		                          (uint16_t)(1000 + i), 10000 + (i * 7919) % 1000);
		if (i == 500)
			b.ka_due = 9000;
		ck_assert_int_ge(reg_update(r, &b, NULL), 0);
	}
	ck_assert_int_eq(reg_next_time(r), 9000);
	ck_assert_ptr_null(reg_next_due(r, 8999));
	due = reg_next_due(r, 9000);
	ck_assert_ptr_nonnull(due);
	ck_assert_str_eq(due->contact, "sip:500@192.168.0.1");
	due->ka_due = 0;
	reg_reschedule(r, due);
	/* Now expiries come out in order. */
	time_t last = 0;
	for (int n = 0; n < 1000; n++) {
		due = reg_next_due(r, 20000);
		ck_assert_ptr_nonnull(due);
		ck_assert_int_ge(due->expires, last);
		last = due->expires;
		reg_remove_binding(r, due);
	}
	ck_assert_uint_eq(reg_count(r), 0);
	ck_assert_int_eq(reg_next_time(r), 0);
}
END_TEST

START_TEST(save_and_load)
{
	char dir[] = "/tmp/check_reg.XXXXXX", path[256];
	struct reg *r2;
	unsigned bad = 0;
	struct reg_binding a = mk("sip:101@example.net", "sip:101@192.168.1.10;transport=udp;ob",
	                          "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>", 1,
	                          "203.0.113.101", 40000, 5000);
	struct reg_binding old = mk("sip:102@example.net", "sip:102@192.168.1.10", "", 0,
	                            "203.0.113.101", 40001, 50);
	struct reg_binding sp = mk("sip:has space@example.net", "sip:x%20y@192.168.1.10", "", 0,
	                           "2001:db8::1", 5060, 5000);

	a.natd = 5;
	a.outbound = true;
	reg_update(r, &a, NULL);
	reg_update(r, &old, NULL);
	reg_update(r, &sp, NULL);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/registrations", dir);
	ck_assert_int_eq(reg_save(r, path), 0);
	/* Append a malformed line: it is skipped and counted. */
	FILE *f = fopen(path, "a");
	fputs("v1 garbage\n", f);
	fclose(f);

	ck_assert_int_eq(reg_create(&r2), 0);
	ck_assert_int_eq(reg_load(r2, path, 100, &bad), 2); /* "old" expired at 50 */
	ck_assert_uint_eq(bad, 1);
	struct reg_binding *got = reg_find(r2, a.aor, a.contact, a.instance, 1);
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got->contact, a.contact);
	ck_assert_int_eq(got->natd, 5);
	ck_assert(got->outbound);
	ck_assert_int_eq(got->expires, 5000);
	ck_assert_ptr_nonnull(reg_find(r2, sp.aor, sp.contact, "", 0));
	ck_assert_int_eq(reg_load(r2, "/nonexistent/file", 0, NULL), 0);
	reg_free(r2);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(grows_to_many_devices)
{
	char contact[64];

	for (int i = 0; i < 100000; i++) {
		snprintf(contact, sizeof contact, "sip:%d@192.168.0.1", i);
		char aor[64];
		snprintf(aor, sizeof aor, "sip:%d@example.net", i);
		struct reg_binding b =
		        mk(aor, contact, "", 0, "203.0.113.1", (uint16_t)(i % 60000 + 1), 100 + i);
		ck_assert_int_eq(reg_update(r, &b, NULL), 1);
	}
	ck_assert_uint_eq(reg_count(r), 100000);
	ck_assert_ptr_nonnull(reg_find(r, "sip:99999@example.net", "sip:99999@192.168.0.1", "", 0));
	ck_assert_int_eq(reg_next_time(r), 100);
	/* The flow index survived the table's growth. */
	struct reg_binding probe =
	        mk("x", "y", "", 0, "203.0.113.1", (uint16_t)(77777 % 60000 + 1), 1);
	struct reg_binding *got = reg_find_flow(r, &probe.flow);
	ck_assert_ptr_nonnull(got);
	ck_assert(!strcmp(got->aor, "sip:17777@example.net") ||
	          !strcmp(got->aor, "sip:77777@example.net"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reg");
	TCase *tc = tcase_create("table");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, insert_and_replace_flow);
	tcase_add_test(tc, instance_key_wins_over_contact);
	tcase_add_test(tc, instance_rereg_new_contact_moves_flow);
	tcase_add_test(tc, too_long_is_enospc);
	tcase_add_test(tc, freed_blocks_are_reused_intact);
	tcase_add_test(tc, remove_one_and_star);
	tcase_add_test(tc, heap_gives_earliest_of_expiry_and_keepalive);
	tcase_add_test(tc, save_and_load);
	tcase_add_test(tc, grows_to_many_devices);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
