/* Unit tests for calllog: the JSON record of a finished call, the file it
 * goes to, and the reopen a log rotation needs. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "sipnat/calllog.h"

static const struct calllog_stream two_streams[] = {
        {.side = 'A',
         .mline = 0,
         .rtp_port = 30002,
         .latched = "203.0.113.101:7000",
         .packets_in = 150,
         .bytes_in = 25800,
         .packets_out = 149,
         .bytes_out = 25628,
         .dropped = 3,
         .have_rtcp = true,
         .loss_pct = 0.5,
         .jitter_ms = 1.25,
         .jitter_max_ms = 4.0},
        {.side = 'B', .mline = 0, .rtp_port = 30000, .latched = NULL, .packets_in = 0},
};

static struct calllog_record sample(const char *call_id)
{
	struct calllog_record r = {
	        .call_id = call_id,
	        .caller = "sip:101@198.51.100.20",
	        .callee = "sip:102@198.51.100.20",
	        .reason = "BYE from caller",
	        .codecs = "PCMU/8000 telephone-event/8000",
	        .start = 1795536000, /* 2026-11-24T16:00:00Z */
	        .end = 1795536062,
	        .answered = true,
	        .relayed = true,
	        .caller_nat = true,
	        .callee_nat = false,
	        .streams = two_streams,
	        .nstreams = 2,
	};
	return r;
}

static json_t *parse_line(const char *line, size_t len)
{
	json_error_t e;
	json_t *o;

	ck_assert_uint_gt(len, 2);
	ck_assert_int_eq(line[len - 1], '\n');
	ck_assert_ptr_null(memchr(line, '\n', len - 1)); /* one line per record */
	o = json_loadb(line, len, 0, &e);
	ck_assert_msg(o != NULL, "not JSON (%s): %s", e.text, line);
	return o;
}

START_TEST(test_format_fields)
{
	struct calllog_record r = sample("a84b4c76e66710@pc33.example.com");
	char *line;
	size_t len;
	json_t *o, *st;

	ck_assert_int_eq(calllog_format(&r, &line, &len), 0);
	ck_assert_uint_eq(strlen(line), len);
	o = parse_line(line, len);
	ck_assert_str_eq(json_string_value(json_object_get(o, "call_id")),
	                 "a84b4c76e66710@pc33.example.com");
	ck_assert_str_eq(json_string_value(json_object_get(o, "caller")), "sip:101@198.51.100.20");
	ck_assert_str_eq(json_string_value(json_object_get(o, "callee")), "sip:102@198.51.100.20");
	ck_assert_str_eq(json_string_value(json_object_get(o, "start")), "2026-11-24T16:00:00Z");
	ck_assert_str_eq(json_string_value(json_object_get(o, "end")), "2026-11-24T16:01:02Z");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "duration_s")), 62);
	ck_assert(json_is_true(json_object_get(o, "answered")));
	ck_assert(json_is_true(json_object_get(o, "relayed")));
	ck_assert(json_is_true(json_object_get(o, "caller_nat")));
	ck_assert(json_is_false(json_object_get(o, "callee_nat")));
	ck_assert_str_eq(json_string_value(json_object_get(o, "codecs")),
	                 "PCMU/8000 telephone-event/8000");
	ck_assert_str_eq(json_string_value(json_object_get(o, "reason")), "BYE from caller");

	st = json_object_get(o, "streams");
	ck_assert_uint_eq(json_array_size(st), 2);
	json_t *a = json_array_get(st, 0), *b = json_array_get(st, 1);
	ck_assert_str_eq(json_string_value(json_object_get(a, "side")), "A");
	ck_assert_int_eq(json_integer_value(json_object_get(a, "relay_port")), 30002);
	ck_assert_str_eq(json_string_value(json_object_get(a, "latched")), "203.0.113.101:7000");
	ck_assert_int_eq(json_integer_value(json_object_get(a, "packets_in")), 150);
	ck_assert_int_eq(json_integer_value(json_object_get(a, "bytes_out")), 25628);
	ck_assert_int_eq(json_integer_value(json_object_get(a, "dropped")), 3);
	ck_assert_double_eq_tol(json_real_value(json_object_get(a, "loss_pct")), 0.5, 1e-9);
	ck_assert_double_eq_tol(json_real_value(json_object_get(a, "jitter_ms")), 1.25, 1e-9);
	/* no RTCP from B: no made-up quality figures, and no latch */
	ck_assert_str_eq(json_string_value(json_object_get(b, "side")), "B");
	ck_assert(json_is_null(json_object_get(b, "latched")));
	ck_assert_ptr_null(json_object_get(b, "loss_pct"));
	ck_assert_ptr_null(json_object_get(b, "jitter_ms"));
	json_decref(o);
	free(line);
}
END_TEST

START_TEST(test_format_unanswered_no_streams)
{
	struct calllog_record r = sample("x");
	char *line;
	size_t len;
	json_t *o;

	r.answered = false;
	r.relayed = false;
	r.codecs = NULL;
	r.reason = "INVITE answered 486";
	r.streams = NULL;
	r.nstreams = 0;
	r.end = r.start - 5; /* a clock step must not give a negative duration */
	ck_assert_int_eq(calllog_format(&r, &line, &len), 0);
	o = parse_line(line, len);
	ck_assert(json_is_false(json_object_get(o, "answered")));
	ck_assert(json_is_null(json_object_get(o, "codecs")));
	ck_assert_int_eq(json_integer_value(json_object_get(o, "duration_s")), 0);
	ck_assert_uint_eq(json_array_size(json_object_get(o, "streams")), 0);
	ck_assert_str_eq(json_string_value(json_object_get(o, "reason")), "INVITE answered 486");
	json_decref(o);
	free(line);
}
END_TEST

/* A display name in Latin-1, or a JSON metacharacter in a Call-ID, must
 * neither lose the record nor break the line. */
START_TEST(test_format_hostile_text)
{
	struct calllog_record r = sample("quote\"back\\slash\nnewline");
	char *line;
	size_t len;
	json_t *o;

	r.caller = "sip:J\xf6rg@198.51.100.20";
	ck_assert_int_eq(calllog_format(&r, &line, &len), 0);
	o = parse_line(line, len);
	ck_assert_str_eq(json_string_value(json_object_get(o, "call_id")),
	                 "quote\"back\\slash\nnewline");
	ck_assert_str_eq(json_string_value(json_object_get(o, "caller")), "sip:J?rg@198.51.100.20");
	json_decref(o);
	free(line);
}
END_TEST

static char tmpdir[64];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/check_calllog.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* Lines of path whose call_id is want; -1 if the file is missing. */
static int count_records(const char *path, const char *want)
{
	FILE *f = fopen(path, "r");
	char buf[4096];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(buf, sizeof buf, f)) {
		json_t *o = parse_line(buf, strlen(buf));
		if (!strcmp(json_string_value(json_object_get(o, "call_id")), want))
			n++;
		json_decref(o);
	}
	fclose(f);
	return n;
}

START_TEST(test_write_rotate_reopen)
{
	char path[128], rotated[140];
	struct calllog *cl;
	struct calllog_record r1 = sample("first"), r2 = sample("second");

	make_tmpdir();
	snprintf(path, sizeof path, "%s/calls.json", tmpdir);
	snprintf(rotated, sizeof rotated, "%s.1", path);
	ck_assert_int_eq(calllog_open(&cl, path), 0);
	ck_assert_str_eq(calllog_path(cl), path);
	ck_assert_int_eq(calllog_write(cl, &r1), 0);
	ck_assert_int_eq(calllog_write(cl, &r1), 0);
	/* logrotate: rename, then SIGHUP */
	ck_assert_int_eq(rename(path, rotated), 0);
	ck_assert_int_eq(calllog_reopen(cl), 0);
	ck_assert_int_eq(calllog_write(cl, &r2), 0);
	calllog_close(cl);
	ck_assert_int_eq(count_records(rotated, "first"), 2);
	ck_assert_int_eq(count_records(rotated, "second"), 0);
	ck_assert_int_eq(count_records(path, "second"), 1);
	ck_assert_int_eq(count_records(path, "first"), 0);

	/* appending: a restart does not truncate what is there */
	ck_assert_int_eq(calllog_open(&cl, path), 0);
	ck_assert_int_eq(calllog_write(cl, &r1), 0);
	calllog_close(cl);
	ck_assert_int_eq(count_records(path, "second"), 1);
	ck_assert_int_eq(count_records(path, "first"), 1);
	unlink(path);
	unlink(rotated);
	rmdir(tmpdir);
}
END_TEST

START_TEST(test_open_and_write_errors)
{
	struct calllog *cl = NULL;
	struct calllog_record r = sample("lost");
	char path[128];

	make_tmpdir();
	snprintf(path, sizeof path, "%s/no/such/dir/calls.json", tmpdir);
	ck_assert_int_eq(calllog_open(&cl, path), -ENOENT);
	ck_assert_ptr_null(cl);
	ck_assert_int_eq(calllog_open(&cl, ""), -EINVAL);
	rmdir(tmpdir);

	/* a full disk: the error comes back and is counted, nothing aborts */
	if (access("/dev/full", W_OK) != 0)
		return;
	ck_assert_int_eq(calllog_open(&cl, "/dev/full"), 0);
	ck_assert_int_eq(calllog_write(cl, &r), -ENOSPC);
	ck_assert_int_eq(calllog_write(cl, &r), -ENOSPC);
	ck_assert_uint_eq(calllog_failures(cl), 2);
	calllog_close(cl);
	calllog_close(NULL);
}
END_TEST

static Suite *calllog_suite(void)
{
	Suite *s = suite_create("calllog");
	TCase *tc;

	tc = tcase_create("format");
	tcase_add_test(tc, test_format_fields);
	tcase_add_test(tc, test_format_unanswered_no_streams);
	tcase_add_test(tc, test_format_hostile_text);
	suite_add_tcase(s, tc);
	tc = tcase_create("file");
	tcase_add_test(tc, test_write_rotate_reopen);
	tcase_add_test(tc, test_open_and_write_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(calllog_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
