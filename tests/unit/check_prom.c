/* Unit tests for prom_: exact Prometheus text exposition format output. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sipnat/prom.h"

static char *finish(struct prom *p)
{
	char *text = NULL;
	size_t len = 0;

	ck_assert_int_eq(prom_finish(p, &text, &len), 0);
	ck_assert_uint_eq(len, strlen(text));
	return text;
}

START_TEST(test_counter_and_gauge)
{
	struct prom p;
	char *t;

	prom_init(&p);
	prom_counter(&p, "sipnat_sip_requests_total", "SIP requests received.", 42);
	prom_gauge(&p, "sipnat_uptime_seconds", "Seconds since start.", 12.5);
	t = finish(&p);
	ck_assert_str_eq(t, "# HELP sipnat_sip_requests_total SIP requests received.\n"
	                    "# TYPE sipnat_sip_requests_total counter\n"
	                    "sipnat_sip_requests_total 42\n"
	                    "# HELP sipnat_uptime_seconds Seconds since start.\n"
	                    "# TYPE sipnat_uptime_seconds gauge\n"
	                    "sipnat_uptime_seconds 12.5\n");
	free(t);
}
END_TEST

START_TEST(test_u64_exact)
{
	struct prom p;
	char *t;

	prom_init(&p);
	prom_counter(&p, "big_total", NULL, UINT64_C(18446744073709551615));
	t = finish(&p);
	ck_assert_str_eq(t, "# TYPE big_total counter\nbig_total 18446744073709551615\n");
	free(t);
}
END_TEST

START_TEST(test_labels_escaped)
{
	struct prom p;
	char *t;
	const struct prom_label l[] = {
	        {"uri", "sip:a\"b\\c\nd@192.0.2.1"},
	        {"transport", "udp"},
	};

	prom_init(&p);
	prom_family(&p, "up", PROM_GAUGE, "Help with \\ and \"quotes\"\nand a newline.");
	prom_sample(&p, "up", l, 2, 1);
	t = finish(&p);
	ck_assert_str_eq(t, "# HELP up Help with \\\\ and \"quotes\"\\nand a newline.\n"
	                    "# TYPE up gauge\n"
	                    "up{uri=\"sip:a\\\"b\\\\c\\nd@192.0.2.1\",transport=\"udp\"} 1\n");
	free(t);
}
END_TEST

START_TEST(test_invalid_utf8_replaced)
{
	struct prom p;
	char *t;
	const struct prom_label l[] = {{"v", "a\xff"
	                                     "b\xc3\xa9"
	                                     "c\xed\xa0\x80"}};

	prom_init(&p);
	prom_family(&p, "m", PROM_GAUGE, NULL);
	prom_sample(&p, "m", l, 1, 0);
	t = finish(&p);
	/* the valid e-acute stays, the stray byte and the surrogate do not */
	ck_assert_str_eq(t, "# TYPE m gauge\nm{v=\"a?b\xc3\xa9"
	                    "c???\"} 0\n");
	free(t);
}
END_TEST

START_TEST(test_special_values)
{
	char v[32];

	prom_format_value(NAN, v, sizeof v);
	ck_assert_str_eq(v, "NaN");
	prom_format_value(INFINITY, v, sizeof v);
	ck_assert_str_eq(v, "+Inf");
	prom_format_value(-INFINITY, v, sizeof v);
	ck_assert_str_eq(v, "-Inf");
	prom_format_value(0.1, v, sizeof v);
	ck_assert_str_eq(v, "0.1");
	prom_format_value(-3, v, sizeof v);
	ck_assert_str_eq(v, "-3");
	prom_format_value(1e21, v, sizeof v);
	ck_assert_str_eq(v, "1e+21");
	prom_format_value(0.30000000000000004, v, sizeof v);
	ck_assert_double_eq(strtod(v, NULL), 0.30000000000000004);
}
END_TEST

START_TEST(test_histogram)
{
	static const double bounds[] = {0.005, 0.1, 1};
	uint64_t counts[3] = {0};
	struct prom_hist h = {.bounds = bounds, .n_bounds = 3, .counts = counts};
	const struct prom_label l[] = {{"method", "INVITE"}};
	struct prom p;
	char *t;

	prom_hist_observe(&h, 0.001);
	prom_hist_observe(&h, 0.05);
	prom_hist_observe(&h, 0.1);
	prom_hist_observe(&h, 2.5);
	prom_init(&p);
	prom_family(&p, "sip_setup_seconds", PROM_HISTOGRAM, "Setup time.");
	ck_assert_int_eq(prom_histogram(&p, "sip_setup_seconds", l, 1, &h), 0);
	t = finish(&p);
	ck_assert_str_eq(t, "# HELP sip_setup_seconds Setup time.\n"
	                    "# TYPE sip_setup_seconds histogram\n"
	                    "sip_setup_seconds_bucket{method=\"INVITE\",le=\"0.005\"} 1\n"
	                    "sip_setup_seconds_bucket{method=\"INVITE\",le=\"0.1\"} 3\n"
	                    "sip_setup_seconds_bucket{method=\"INVITE\",le=\"1\"} 3\n"
	                    "sip_setup_seconds_bucket{method=\"INVITE\",le=\"+Inf\"} 4\n"
	                    "sip_setup_seconds_sum{method=\"INVITE\"} 2.651\n"
	                    "sip_setup_seconds_count{method=\"INVITE\"} 4\n");
	free(t);
}
END_TEST

START_TEST(test_bad_names_refused)
{
	struct prom p;
	char *t = NULL;
	const struct prom_label bad_label[] = {{"1x", "v"}};
	const struct prom_label reserved[] = {{"__name", "v"}};
	const struct prom_label dup[] = {{"a", "1"}, {"a", "2"}};

	prom_init(&p);
	ck_assert_int_eq(prom_family(&p, "9lives", PROM_GAUGE, NULL), -EINVAL);
	ck_assert_int_eq(prom_finish(&p, &t, NULL), -EINVAL);
	ck_assert_ptr_null(t);

	prom_init(&p);
	prom_family(&p, "ok:name_1", PROM_GAUGE, NULL);
	ck_assert_int_eq(prom_sample(&p, "ok:name_1", bad_label, 1, 1), -EINVAL);
	prom_reset(&p);

	prom_family(&p, "g", PROM_GAUGE, NULL);
	ck_assert_int_eq(prom_sample(&p, "g", reserved, 1, 1), -EINVAL);
	prom_reset(&p);

	prom_family(&p, "g", PROM_GAUGE, NULL);
	ck_assert_int_eq(prom_sample(&p, "g", dup, 2, 1), -EINVAL);
	prom_reset(&p);
}
END_TEST

START_TEST(test_grouping_enforced)
{
	struct prom p;
	char *t = NULL;

	/* a sample outside its family's group */
	prom_init(&p);
	prom_family(&p, "a", PROM_GAUGE, NULL);
	prom_family(&p, "b", PROM_GAUGE, NULL);
	ck_assert_int_eq(prom_sample(&p, "a", NULL, 0, 1), -EINVAL);
	prom_reset(&p);

	/* a family twice */
	prom_family(&p, "a", PROM_GAUGE, NULL);
	prom_family(&p, "b", PROM_GAUGE, NULL);
	ck_assert_int_eq(prom_family(&p, "a", PROM_GAUGE, NULL), -EINVAL);
	prom_reset(&p);

	/* a sample before any family; a histogram's bare name */
	ck_assert_int_eq(prom_sample(&p, "a", NULL, 0, 1), -EINVAL);
	prom_reset(&p);
	prom_family(&p, "h", PROM_HISTOGRAM, NULL);
	ck_assert_int_eq(prom_sample(&p, "h", NULL, 0, 1), -EINVAL);
	prom_reset(&p);

	/* the error is sticky: later good calls do not clear it */
	prom_family(&p, "x y", PROM_GAUGE, NULL);
	prom_gauge(&p, "fine", NULL, 1);
	ck_assert_int_eq(prom_finish(&p, &t, NULL), -EINVAL);
	ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_empty_and_reuse)
{
	struct prom p;
	char *t;

	prom_init(&p);
	t = finish(&p);
	ck_assert_str_eq(t, "");
	free(t);
	/* after finish the builder is fresh: the same family may come again */
	prom_gauge(&p, "g", NULL, 1);
	free(finish(&p));
	prom_gauge(&p, "g", NULL, 2);
	t = finish(&p);
	ck_assert_str_eq(t, "# TYPE g gauge\ng 2\n");
	free(t);
}
END_TEST

START_TEST(test_large_output_grows)
{
	struct prom p;
	char *t, name[32];
	size_t len;

	prom_init(&p);
	for (int i = 0; i < PROM_MAX_FAMILIES; i++) {
		snprintf(name, sizeof name, "metric_%d", i);
		prom_gauge(&p, name, "A fairly long help text to make the buffer grow.", i);
	}
	ck_assert_int_eq(prom_finish(&p, &t, &len), 0);
	ck_assert_ptr_nonnull(strstr(t, "\nmetric_127 127\n"));
	ck_assert_uint_gt(len, 4096);
	free(t);
}
END_TEST

static Suite *prom_suite(void)
{
	Suite *s = suite_create("prom");
	struct {
		const char *name;
		const TTest *fn;
	} cases[] = {
	        {"counter_and_gauge", test_counter_and_gauge},
	        {"u64_exact", test_u64_exact},
	        {"labels_escaped", test_labels_escaped},
	        {"invalid_utf8_replaced", test_invalid_utf8_replaced},
	        {"special_values", test_special_values},
	        {"histogram", test_histogram},
	        {"bad_names_refused", test_bad_names_refused},
	        {"grouping_enforced", test_grouping_enforced},
	        {"empty_and_reuse", test_empty_and_reuse},
	        {"large_output_grows", test_large_output_grows},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_add_test(tc, cases[i].fn);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(prom_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
