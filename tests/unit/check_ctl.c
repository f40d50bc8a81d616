/* Unit tests for ctl_: a real su_root, the control socket on a temporary
 * path and the metrics endpoint on 127.0.0.1, fake ops, and clients on
 * plain sockets driven in step with su_root_step(). */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sofia-sip/su.h>
#include <sofia-sip/su_wait.h>

#include "sipnat/ctl.h"

static su_root_t *root;
static struct ctl *ctl;
static char dir[48], sock_path[100];
static struct cfg_control cc;

/* What the fake ops saw. */
static char last_level[32];
static int drained;

static int fake_status(void *arg, json_t *out)
{
	return json_object_set_new(out, "version", json_string("test"));
}

static int fake_regs(void *arg, json_t *arr)
{
	json_t *o = json_object();
	json_object_set_new(o, "aor", json_string("sip:alice@example.com"));
	return json_array_append_new(arr, o);
}

static int fake_reload(void *arg, char *err, size_t errlen)
{
	snprintf(err, errlen, "/etc/x.conf:3: failover_timeout: expected a number\n");
	return -EINVAL;
}

static int fake_drain(void *arg)
{
	drained++;
	return 0;
}

static int fake_hangup(void *arg, const char *call_id)
{
	return strcmp(call_id, "abc@192.0.2.1") == 0 ? 0 : -ENOENT;
}

static int fake_loglevel(void *arg, const char *level)
{
	if (strcmp(level, "debug") != 0 && strcmp(level, "info") != 0)
		return -EINVAL;
	snprintf(last_level, sizeof last_level, "%s", level);
	return 0;
}

static const char metrics_text[] = "# TYPE sipnat_x_total counter\nsipnat_x_total 7\n";

static int fake_metrics(void *arg, char **text, size_t *len)
{
	*text = strdup(metrics_text);
	*len = strlen(metrics_text);
	return 0;
}

static const struct ctl_ops ops = {
        .status = fake_status,
        .registrations = fake_regs,
        .calls = NULL, /* "not available" */
        .turn = NULL,
        .reload = fake_reload,
        .drain = fake_drain,
        .hangup = fake_hangup,
        .loglevel = fake_loglevel,
        .metrics = fake_metrics,
};

static uint16_t free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void setup(void)
{
	su_init();
	root = su_root_create(NULL);
	ck_assert_ptr_nonnull(root);
	snprintf(dir, sizeof dir, "/tmp/check_ctl.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* a subdirectory that does not exist yet: ctl creates it */
	snprintf(sock_path, sizeof sock_path, "%s/run/ctl.sock", dir);
	memset(&cc, 0, sizeof cc);
	cc.socket = sock_path;
	cc.socket_mode = 0600;
	snprintf(cc.metrics_host, sizeof cc.metrics_host, "127.0.0.1");
	cc.metrics_port = free_port();
	last_level[0] = '\0';
	drained = 0;
	ck_assert_int_eq(ctl_start(&ctl, root, &cc, &ops, NULL), 0);
	ck_assert_ptr_nonnull(ctl);
}

static void teardown(void)
{
	char p[160];

	ctl_stop(ctl);
	ctl = NULL;
	su_root_destroy(root);
	su_deinit();
	unlink(sock_path);
	snprintf(p, sizeof p, "%s/run", dir);
	rmdir(p);
	rmdir(dir);
}

static int connect_unix(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static int connect_tcp(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(cc.metrics_port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* Seconds exchange() waits for what it expects. */
static double wait_limit = 5;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sends data (may be large) while running the root, then collects what
 * comes back until `lines` newlines were read, or until the server closes
 * when lines is 0.  Sets *closed when the server closed.  Returns a
 * malloc'd NUL-terminated string. */
static char *exchange(int fd, const char *data, size_t len, int lines, bool *closed)
{
	size_t off = 0, got = 0, cap = 1 << 16;
	char *buf = malloc(cap + 1);
	double end = now_s() + wait_limit;
	int seen = 0;

	if (closed)
		*closed = false;
	while (now_s() < end) {
		if (off < len) {
			ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
			if (n > 0)
				off += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				off = len; /* the server closed on us */
		}
		su_root_step(root, 5);
		for (;;) {
			if (got == cap) {
				cap *= 2;
				buf = realloc(buf, cap + 1);
			}
			ssize_t n = recv(fd, buf + got, cap - got, 0);
			if (n == 0 || (n < 0 && errno == ECONNRESET)) {
				if (closed)
					*closed = true;
				buf[got] = '\0';
				return buf;
			}
			if (n < 0)
				break;
			for (ssize_t i = 0; i < n; i++)
				seen += buf[got + (size_t)i] == '\n';
			got += (size_t)n;
		}
		if (lines && seen >= lines && off == len)
			break;
	}
	buf[got] = '\0';
	return buf;
}

static char *ask(int fd, const char *req)
{
	return exchange(fd, req, strlen(req), 1, NULL);
}

static void check_answer(const char *req, const char *want)
{
	int fd = connect_unix();
	char *got = ask(fd, req);

	ck_assert_str_eq(got, want);
	free(got);
	close(fd);
}

START_TEST(test_status)
{
	check_answer("{\"cmd\":\"status\"}\n", "{\"ok\":true,\"version\":\"test\"}\n");
	check_answer("{\"cmd\":\"registrations\"}\n",
	             "{\"ok\":true,\"registrations\":[{\"aor\":\"sip:alice@example.com\"}]}\n");
}
END_TEST

START_TEST(test_loglevel)
{
	check_answer("{\"cmd\":\"loglevel\",\"level\":\"debug\"}\n",
	             "{\"ok\":true,\"level\":\"debug\"}\n");
	ck_assert_str_eq(last_level, "debug");
	check_answer(
	        "{\"cmd\":\"loglevel\",\"level\":\"loud\"}\n",
	        "{\"ok\":false,\"error\":\"unknown level 'loud' (expected error, warn, info or "
	        "debug)\"}\n");
	ck_assert_str_eq(last_level, "debug");
	check_answer("{\"cmd\":\"loglevel\"}\n",
	             "{\"ok\":false,\"error\":\"loglevel needs \\\"level\\\" (a string)\"}\n");
}
END_TEST

START_TEST(test_unknown_command)
{
	check_answer("{\"cmd\":\"frobnicate\"}\n",
	             "{\"ok\":false,\"error\":\"unknown command 'frobnicate'\"}\n");
	check_answer("{\"verb\":\"status\"}\n",
	             "{\"ok\":false,\"error\":\"missing \\\"cmd\\\" (a string)\"}\n");
}
END_TEST

START_TEST(test_bad_json_then_usable)
{
	int fd = connect_unix();
	char *got;

	got = ask(fd, "{\"cmd\":\"status\"\n");
	ck_assert_msg(strncmp(got, "{\"ok\":false,\"error\":\"bad JSON: ", 31) == 0, "got %s", got);
	free(got);
	got = ask(fd, "[\"status\"]\n");
	ck_assert_str_eq(got, "{\"ok\":false,\"error\":\"a request is a JSON object\"}\n");
	free(got);
	got = ask(fd, "\xff\xfe{}\n");
	ck_assert_msg(strncmp(got, "{\"ok\":false,\"error\":\"bad JSON: ", 31) == 0, "got %s", got);
	free(got);
	/* the connection survives bad requests */
	got = ask(fd, "{\"cmd\":\"status\"}\r\n");
	ck_assert_str_eq(got, "{\"ok\":true,\"version\":\"test\"}\n");
	free(got);
	close(fd);
}
END_TEST

START_TEST(test_oversized_request)
{
	size_t n = CTL_MAX_REQUEST + 4096;
	char *big = malloc(n);
	bool closed;
	int fd = connect_unix();
	char *got;

	memset(big, ' ', n);
	memcpy(big, "{\"cmd\":\"status\",\"pad\":\"", 23);
	got = exchange(fd, big, n, 0, &closed);
	ck_assert_str_eq(got,
	                 "{\"ok\":false,\"error\":\"request too large (limit 65536 bytes)\"}\n");
	ck_assert(closed);
	free(got);
	free(big);
	close(fd);

	/* just under the limit is still answered (as bad JSON here) */
	n = CTL_MAX_REQUEST - 1;
	big = malloc(n + 1);
	memset(big, ' ', n);
	big[0] = 'x';
	big[n - 1] = '\n';
	fd = connect_unix();
	got = exchange(fd, big, n, 1, &closed);
	ck_assert_msg(strncmp(got, "{\"ok\":false,\"error\":\"bad JSON: ", 31) == 0, "got %.80s",
	              got);
	ck_assert(!closed);
	free(got);
	free(big);
	close(fd);
}
END_TEST

START_TEST(test_null_op)
{
	check_answer("{\"cmd\":\"calls\"}\n",
	             "{\"ok\":false,\"error\":\"not available in this build\"}\n");
	check_answer("{\"cmd\":\"turn\"}\n",
	             "{\"ok\":false,\"error\":\"not available in this build\"}\n");
}
END_TEST

START_TEST(test_reload_drain_hangup)
{
	check_answer("{\"cmd\":\"reload\"}\n",
	             "{\"ok\":false,\"error\":\"refused, the running configuration stays:\\n"
	             "/etc/x.conf:3: failover_timeout: "
	             "expected a number\"}\n");
	check_answer("{\"cmd\":\"drain\"}\n", "{\"ok\":true}\n");
	ck_assert_int_eq(drained, 1);
	check_answer("{\"cmd\":\"hangup\",\"call_id\":\"abc@192.0.2.1\"}\n", "{\"ok\":true}\n");
	check_answer("{\"cmd\":\"hangup\",\"call_id\":\"nope\"}\n",
	             "{\"ok\":false,\"error\":\"no such call: nope\"}\n");
	check_answer("{\"cmd\":\"hangup\"}\n",
	             "{\"ok\":false,\"error\":\"hangup needs \\\"call_id\\\" (a string)\"}\n");
}
END_TEST

START_TEST(test_pipelined_and_several_clients)
{
	int a = connect_unix(), b = connect_unix();
	char *got;
	bool closed;

	/* two requests in one write: two answers, in order */
	got = exchange(a, "{\"cmd\":\"drain\"}\n{\"cmd\":\"status\"}\n", 33, 2, NULL);
	ck_assert_str_eq(got, "{\"ok\":true}\n{\"ok\":true,\"version\":\"test\"}\n");
	free(got);
	/* b was connected all along and is served independently */
	got = ask(b, "{\"cmd\":\"nope\"}\n");
	ck_assert_str_eq(got, "{\"ok\":false,\"error\":\"unknown command 'nope'\"}\n");
	free(got);
	/* a last line without newline, then end of input: still answered */
	ck_assert_int_eq(send(a, "{\"cmd\":\"drain\"}", 15, 0), 15);
	shutdown(a, SHUT_WR);
	got = exchange(a, "", 0, 0, &closed);
	ck_assert_str_eq(got, "{\"ok\":true}\n");
	ck_assert(closed);
	free(got);
	close(a);
	close(b);
}
END_TEST

START_TEST(test_socket_file)
{
	struct stat st;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ctl *other = NULL;
	char parent[128];
	int fd;

	ck_assert_int_eq(stat(sock_path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	snprintf(parent, sizeof parent, "%s/run", dir);
	ck_assert_int_eq(stat(parent, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0750);

	/* a second instance on the same live socket is refused */
	ck_assert_int_eq(
	        ctl_start(&other, root, &(struct cfg_control){.socket = sock_path}, &ops, NULL),
	        -EADDRINUSE);
	ck_assert_ptr_null(other);

	/* stop unlinks; a stale socket file (nobody listening) is replaced */
	ctl_stop(ctl);
	ctl = NULL;
	ck_assert_int_eq(stat(sock_path, &st), -1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	close(fd);
	ck_assert_int_eq(ctl_start(&ctl, root, &cc, &ops, NULL), 0);
	check_answer("{\"cmd\":\"status\"}\n", "{\"ok\":true,\"version\":\"test\"}\n");

	/* a path that is not a socket is never deleted */
	ctl_stop(ctl);
	ctl = NULL;
	fd = open(sock_path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	ck_assert_int_eq(ctl_start(&ctl, root, &cc, &ops, NULL), -EEXIST);
	ck_assert_int_eq(stat(sock_path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
}
END_TEST

START_TEST(test_both_off)
{
	struct ctl *none = (struct ctl *)1;

	ck_assert_int_eq(ctl_start(&none, root, &(struct cfg_control){.socket = ""}, &ops, NULL),
	                 0);
	ck_assert_ptr_null(none);
	ctl_stop(none);
}
END_TEST

static char *http(const char *req, bool *closed)
{
	int fd = connect_tcp();
	char *got = exchange(fd, req, strlen(req), 0, closed);

	close(fd);
	return got;
}

START_TEST(test_metrics_get)
{
	bool closed;
	char *got = http("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", &closed);
	char want[512];

	snprintf(want, sizeof want,
	         "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
	         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
	         strlen(metrics_text), metrics_text);
	ck_assert_str_eq(got, want);
	ck_assert(closed);
	free(got);

	/* HTTP/1.0, bare LF line ends, and a query string */
	got = http("GET /metrics?x=1 HTTP/1.0\n\n", &closed);
	ck_assert_str_eq(got, want);
	free(got);

	/* HEAD: the headers only */
	got = http("HEAD /metrics HTTP/1.1\r\n\r\n", &closed);
	ck_assert_ptr_nonnull(strstr(got, "Content-Length: 47\r\n"));
	ck_assert(strstr(got, "\r\n\r\n")[4] == '\0');
	free(got);
}
END_TEST

START_TEST(test_metrics_errors)
{
	bool closed;
	char *got, *big;

	got = http("GET /other HTTP/1.1\r\n\r\n", &closed);
	ck_assert_str_eq(got,
	                 "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
	                 "Content-Length: 14\r\nConnection: close\r\n\r\n404 Not Found\n");
	ck_assert(closed);
	free(got);

	got = http("GET /metricsX HTTP/1.1\r\n\r\n", &closed);
	ck_assert_ptr_nonnull(strstr(got, "HTTP/1.1 404 "));
	free(got);

	got = http("POST /metrics HTTP/1.1\r\n\r\n", &closed);
	ck_assert_msg(strncmp(got, "HTTP/1.1 405 ", 13) == 0, "got %s", got);
	ck_assert_ptr_nonnull(strstr(got, "\r\nAllow: GET, HEAD\r\n"));
	free(got);

	const char *junk[] = {
	        "hello\r\n\r\n",
	        "GET /metrics\r\n\r\n",
	        "GET /metrics HTTP/2.0\r\n\r\n",
	        "GET metrics HTTP/1.1\r\n\r\n",
	        "GET  /metrics HTTP/1.1\r\n\r\n",
	        "\x16\x03\x01\x02\x10\x01\xfc\x03\x03\n\n",
	};
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		got = http(junk[i], &closed);
		ck_assert_msg(strncmp(got, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "%zu: got %s",
		              i, got);
		ck_assert(closed);
		free(got);
	}

	/* a head that never ends within the limit */
	big = malloc(CTL_MAX_HTTP_REQUEST * 2 + 1);
	memcpy(big, "GET /metrics HTTP/1.1\r\n", 23);
	memset(big + 23, 'a', CTL_MAX_HTTP_REQUEST * 2 - 23);
	big[CTL_MAX_HTTP_REQUEST * 2] = '\0';
	got = http(big, &closed);
	ck_assert_msg(strncmp(got, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "got %.60s", got);
	ck_assert(closed);
	free(got);
	free(big);
}
END_TEST

START_TEST(test_metrics_incomplete_then_complete)
{
	/* the request arrives in pieces: no answer until the head ends */
	int fd = connect_tcp();
	char *got;

	wait_limit = 0.3;
	got = exchange(fd, "GET /metrics HTTP/1.1\r\n", 23, 1, NULL);
	wait_limit = 5;

	ck_assert_str_eq(got, "");
	free(got);
	got = exchange(fd, "Host: x\r\n\r\n", 11, 0, NULL);
	ck_assert_msg(strncmp(got, "HTTP/1.1 200 OK\r\n", 17) == 0, "got %s", got);
	free(got);
	close(fd);
}
END_TEST

static Suite *ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	struct {
		const char *name;
		const TTest *fn;
	} cases[] = {
	        {"status", test_status},
	        {"loglevel", test_loglevel},
	        {"unknown_command", test_unknown_command},
	        {"bad_json_then_usable", test_bad_json_then_usable},
	        {"oversized_request", test_oversized_request},
	        {"null_op", test_null_op},
	        {"reload_drain_hangup", test_reload_drain_hangup},
	        {"pipelined_and_several_clients", test_pipelined_and_several_clients},
	        {"socket_file", test_socket_file},
	        {"both_off", test_both_off},
	        {"metrics_get", test_metrics_get},
	        {"metrics_errors", test_metrics_errors},
	        {"metrics_incomplete_then_complete", test_metrics_incomplete_then_complete},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_set_timeout(tc, 20);
		tcase_add_test(tc, cases[i].fn);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ctl_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
