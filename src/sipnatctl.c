/* sipnatctl: talks to a running sipnatd over its control socket.
 *
 * One request per run: a JSON line out, a JSON line back (see ctl.h for
 * the protocol).  The answer is printed as aligned text, or raw with
 * --json.  Exit status: 0 success, 1 the daemon refused or cannot be
 * reached, 2 usage error.  Links only jansson, not the daemon's library.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "sipnat/ctlpath.h"

/* A reload parses the whole file and may log a lot: be patient. */
#define ANSWER_TIMEOUT_MS 30000

static void usage(FILE *out)
{
	fprintf(out, "Usage: sipnatctl [-s SOCKET] [--json] COMMAND [ARGS]\n"
	             "\n"
	             "Commands:\n"
	             "  status             version, uptime, listeners, upstreams, counters\n"
	             "  registrations      devices sipnatd keeps a way back to\n"
	             "  calls              calls whose media goes through the relay\n"
	             "  turn               TURN allocations\n"
	             "  reload             re-read the configuration (like SIGHUP)\n"
	             "  drain              refuse new dialogs with 503, keep current ones\n"
	             "  hangup CALL-ID     end a call (BYE to both sides)\n"
	             "  loglevel LEVEL     error, warn, info or debug\n"
	             "\n"
	             "Options:\n"
	             "  -s, --socket PATH  control socket (default " CTLPATH_SYSTEM ",\n"
	             "                     then, not as root, sipnatd's per-user one)\n"
	             "  -j, --json         print the daemon's JSON answer as it is\n"
	             "  -V, --version      print the version and exit\n"
	             "  -h, --help         print this help and exit\n"
	             "\n"
	             "See sipnatctl(8).\n");
}

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("sipnatctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

/* --- talking to the daemon --- */

/* A connected socket, or -errno. */
static int try_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd, e;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die(1, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* path NULL: the system daemon's socket, then (not as root) the one a
 * sipnatd run by this user makes when given none (ctlpath.h). */
static int connect_daemon(const char *path)
{
	char user[4096];
	int fd, e;

	if (path) {
		fd = try_connect(path);
		if (fd < 0)
			die(1, "cannot connect to %s: %s; is sipnatd running?", path,
			    strerror(-fd));
		return fd;
	}
	fd = try_connect(CTLPATH_SYSTEM);
	if (fd >= 0 || geteuid() == 0 || ctlpath_user(user, sizeof user) < 0) {
		if (fd < 0)
			die(1, "cannot connect to %s: %s; is sipnatd running?", CTLPATH_SYSTEM,
			    strerror(-fd));
		return fd;
	}
	e = -fd;
	fd = try_connect(user);
	if (fd < 0)
		die(1, "cannot connect to %s (%s) nor to %s (%s); is sipnatd running?",
		    CTLPATH_SYSTEM, strerror(e), user, strerror(-fd));
	return fd;
}

static void send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die(1, "cannot send to sipnatd: %s", strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
}

/* Reads one line (without its newline); the caller frees it. */
static char *read_line(int fd, size_t *len)
{
	size_t cap = 4096, got = 0;
	char *buf = malloc(cap);

	if (!buf)
		die(1, "out of memory");
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int r = poll(&pfd, 1, ANSWER_TIMEOUT_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			die(1, "no answer from sipnatd within %d s", ANSWER_TIMEOUT_MS / 1000);
		if (got + 1 >= cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				die(1, "out of memory");
		}
		ssize_t n = recv(fd, buf + got, cap - got - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(1, "cannot read the answer: %s", strerror(errno));
		if (n == 0)
			die(1, "sipnatd closed the connection without an answer");
		char *nl = memchr(buf + got, '\n', (size_t)n);
		got += (size_t)n;
		if (nl) {
			*nl = '\0';
			*len = (size_t)(nl - buf);
			return buf;
		}
	}
}

/* --- aligned tables --- */

struct table {
	size_t cols, rows;
	char **cell; /* rows x cols, row 0 is the header */
};

static void table_row(struct table *t, ...)
{
	va_list ap;

	t->cell = realloc(t->cell, (t->rows + 1) * t->cols * sizeof *t->cell);
	if (!t->cell)
		die(1, "out of memory");
	va_start(ap, t);
	for (size_t c = 0; c < t->cols; c++) {
		const char *s = va_arg(ap, const char *);
		t->cell[t->rows * t->cols + c] = strdup(s ? s : "");
	}
	va_end(ap);
	t->rows++;
}

static void table_print(struct table *t)
{
	size_t w[16] = {0};

	for (size_t r = 0; r < t->rows; r++)
		for (size_t c = 0; c < t->cols; c++) {
			size_t l = strlen(t->cell[r * t->cols + c]);
			if (l > w[c])
				w[c] = l;
		}
	for (size_t r = 0; r < t->rows; r++) {
		for (size_t c = 0; c < t->cols; c++) {
			const char *s = t->cell[r * t->cols + c];
			if (c + 1 == t->cols)
				printf("%s\n", s);
			else
				printf("%-*s  ", (int)w[c], s);
		}
	}
	for (size_t i = 0; i < t->rows * t->cols; i++)
		free(t->cell[i]);
	free(t->cell);
}

/* --- formatting --- */

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static long long num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static bool flag(json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}

static void fmt_duration(long long s, char *out, size_t len)
{
	if (s < 0)
		snprintf(out, len, "-%llds", -s);
	else if (s < 60)
		snprintf(out, len, "%llds", s);
	else if (s < 3600)
		snprintf(out, len, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(out, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

static void print_status(json_t *a)
{
	char buf[1024], dur[32];
	size_t i, off;
	json_t *v, *arr;
	const char *key;

	printf("%-15s%s\n", "version", str(a, "version"));
	printf("%-15s%lld\n", "pid", num(a, "pid"));
	fmt_duration(num(a, "uptime"), dur, sizeof dur);
	printf("%-15s%s\n", "uptime", dur);
	printf("%-15s%s\n", "config",
	       json_is_string(json_object_get(a, "config")) ? str(a, "config")
	                                                    : "(built-in defaults)");
	printf("%-15s%s\n", "state",
	       flag(a, "draining") ? "draining (new dialogs get 503)" : "running");
	printf("%-15s%s\n", "log level", str(a, "log_level"));

	arr = json_object_get(a, "listeners");
	off = 0;
	buf[0] = '\0';
	json_array_foreach(arr, i, v)
	{
		const char *addr = str(v, "address");
		bool v6 = strchr(addr, ':') != NULL;
		off += (size_t)snprintf(buf + off, off < sizeof buf ? sizeof buf - off : 0,
		                        "%s%s:%s%s%s:%lld", i ? ", " : "", str(v, "transport"),
		                        v6 ? "[" : "", addr, v6 ? "]" : "", num(v, "port"));
		if (off >= sizeof buf)
			break;
	}
	printf("%-15s%s\n", "listeners", buf);

	arr = json_object_get(a, "upstreams");
	json_array_foreach(arr, i, v)
	{
		if (flag(v, "healthy"))
			snprintf(dur, sizeof dur, "up");
		else
			snprintf(dur, sizeof dur, "DOWN (%llds more)", num(v, "down_for"));
		printf("%-15s%s  %s\n", i ? "" : "upstreams", str(v, "uri"), dur);
	}
	if (json_array_size(arr) == 0)
		printf("%-15s%s\n", "upstreams", "(none)");

	printf("%-15s%lld\n", "registrations", num(a, "registrations"));
	if (flag(a, "media_relay"))
		printf("%-15s%lld active, %lld completed\n", "calls", num(a, "calls_active"),
		       num(a, "calls_completed"));
	else
		printf("%-15s%s\n", "calls", "(media relay off)");

	v = json_object_get(a, "counters");
	i = 0;
	json_object_foreach(v, key, arr)
	{
		printf("%-15s%-16s%lld\n", i++ ? "" : "counters", key,
		       (long long)json_integer_value(arr));
	}
}

static void print_registrations(json_t *arr)
{
	struct table t = {.cols = 6};
	size_t i;
	json_t *b;

	if (json_array_size(arr) == 0) {
		printf("no registrations\n");
		return;
	}
	table_row(&t, "AOR", "CONTACT", "FLOW", "NAT", "EXPIRES IN", "LAST KEEPALIVE ANSWER");
	json_array_foreach(arr, i, b)
	{
		char nat[128] = "no", exp[32], ka[64];
		json_t *why = json_object_get(b, "natd"), *w;
		size_t j, off;

		if (flag(b, "nat")) {
			off = (size_t)snprintf(nat, sizeof nat, "yes");
			json_array_foreach(why, j, w)
			{
				off += (size_t)snprintf(
				        nat + off, off < sizeof nat ? sizeof nat - off : 0, "%s%s",
				        j ? "," : " (", json_string_value(w));
				if (off >= sizeof nat)
					break;
			}
			if (json_array_size(why) && off + 1 < sizeof nat)
				strcat(nat, ")");
		}
		fmt_duration(num(b, "expires_in"), exp, sizeof exp);
		if (!flag(b, "keepalive"))
			snprintf(ka, sizeof ka, "-");
		else if (json_is_integer(json_object_get(b, "last_keepalive_ok"))) {
			char d[32];
			fmt_duration(num(b, "last_keepalive_ok"), d, sizeof d);
			snprintf(ka, sizeof ka, "%s ago", d);
		} else
			snprintf(ka, sizeof ka, "none yet");
		if (flag(b, "unreachable"))
			snprintf(ka + strlen(ka), sizeof ka - strlen(ka),
			         ", UNREACHABLE (%lld missed)", num(b, "keepalive_failures"));
		table_row(&t, str(b, "aor"), str(b, "contact"), str(b, "flow"), nat, exp, ka);
	}
	table_print(&t);
}

/* One stream of a call, compact: "A0 :40000 <- 203.0.113.101:7000 in 150
 * out 149 drop 0 loss 0.0% jitter 1.2ms". */
static void fmt_stream(json_t *st, char *out, size_t len)
{
	size_t o = 0;
	json_t *latched = json_object_get(st, "latched");

	o += (size_t)snprintf(out + o, len - o, "%s%lld :%lld <- %s in %lld out %lld drop %lld",
	                      str(st, "side"), num(st, "mline"), num(st, "rtp_port"),
	                      json_is_string(latched) ? json_string_value(latched)
	                                              : "(not latched)",
	                      num(st, "packets_in"), num(st, "packets_out"),
	                      num(st, "dropped_foreign") + num(st, "dropped_no_remote"));
	if (o < len && json_is_number(json_object_get(st, "loss_pct")))
		snprintf(out + o, len - o, " loss %.1f%% jitter %.1fms",
		         json_number_value(json_object_get(st, "loss_pct")),
		         json_number_value(json_object_get(st, "jitter_ms")));
}

static void print_calls(json_t *arr)
{
	struct table t = {.cols = 7};
	size_t i, j;
	json_t *c, *st;

	if (json_array_size(arr) == 0) {
		printf("no calls\n");
		return;
	}
	table_row(&t, "CALL-ID", "CALLER", "CALLEE", "AGE", "STATE", "NAT", "MEDIA");
	json_array_foreach(arr, i, c)
	{
		char age[32], nat[32], media[1024] = "";
		size_t o = 0;
		fmt_duration(num(c, "age"), age, sizeof age);
		snprintf(nat, sizeof nat, "%s/%s", flag(c, "caller_nat") ? "yes" : "no",
		         flag(c, "callee_nat") ? "yes" : "no");
		json_array_foreach(json_object_get(c, "streams"), j, st)
		{
			char one[256];
			fmt_stream(st, one, sizeof one);
			if (o < sizeof media)
				o += (size_t)snprintf(media + o, sizeof media - o, "%s%s",
				                      o ? "; " : "", one);
		}
		if (!media[0])
			snprintf(media, sizeof media, "%s",
			         num(c, "relay_session") ? "(no figures yet)" : "(not relayed)");
		table_row(&t, str(c, "call_id"), str(c, "caller"), str(c, "callee"), age,
		          flag(c, "established") ? "established" : "setup", nat, media);
	}
	table_print(&t);
}

static void print_turn(json_t *arr)
{
	struct table t = {.cols = 7};
	size_t i;
	json_t *a;

	if (json_array_size(arr) == 0) {
		printf("no TURN allocations\n");
		return;
	}
	table_row(&t, "USER", "CLIENT", "RELAYED", "AGE", "EXPIRES", "TO-PEER", "TO-CLIENT");
	json_array_foreach(arr, i, a)
	{
		char client[96], age[32], exp[32], up[32], down[32];
		snprintf(client, sizeof client, "%s:%s", str(a, "transport"), str(a, "client"));
		fmt_duration(num(a, "age"), age, sizeof age);
		fmt_duration(num(a, "expires_in"), exp, sizeof exp);
		snprintf(up, sizeof up, "%lld", num(a, "to_peer_packets"));
		snprintf(down, sizeof down, "%lld", num(a, "to_client_packets"));
		table_row(&t,
		          json_is_string(json_object_get(a, "user")) ? str(a, "user")
		                                                     : "(anonymous)",
		          client, str(a, "relayed"), age, exp, up, down);
	}
	table_print(&t);
}

/* --- main --- */

struct command {
	const char *name;
	const char *arg_name; /* NULL: no argument */
	const char *arg_key;  /* JSON key of the argument */
};

static const struct command commands[] = {
        {"status", NULL, NULL},
        {"registrations", NULL, NULL},
        {"calls", NULL, NULL},
        {"turn", NULL, NULL},
        {"reload", NULL, NULL},
        {"drain", NULL, NULL},
        {"hangup", "CALL-ID", "call_id"},
        {"loglevel", "LEVEL", "level"},
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"socket", required_argument, NULL, 's'},
	        {"json", no_argument, NULL, 'j'},
	        {"version", no_argument, NULL, 'V'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *sock = NULL; /* connect_daemon() looks where sipnatd does */
	const struct command *cmd = NULL;
	bool raw = false;
	json_t *req, *ans;
	json_error_t jerr;
	char *line, *text;
	size_t len;
	int c, fd;

	while ((c = getopt_long(argc, argv, "+s:jVh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 'j':
			raw = true;
			break;
		case 'V':
			printf("sipnatctl %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "sipnatctl: no command given\n");
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[optind], commands[i].name))
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "sipnatctl: unknown command '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (argc - optind - 1 != (cmd->arg_name ? 1 : 0)) {
		if (cmd->arg_name)
			fprintf(stderr, "sipnatctl: usage: sipnatctl %s %s\n", cmd->name,
			        cmd->arg_name);
		else
			fprintf(stderr, "sipnatctl: %s takes no argument\n", cmd->name);
		return 2;
	}

	req = json_object();
	json_object_set_new(req, "cmd", json_string(cmd->name));
	if (cmd->arg_key &&
	    json_object_set_new(req, cmd->arg_key, json_string(argv[optind + 1])) < 0)
		die(2, "%s: not valid UTF-8", cmd->arg_name);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text)
		die(1, "out of memory");

	fd = connect_daemon(sock);
	send_all(fd, text, strlen(text));
	send_all(fd, "\n", 1);
	free(text);
	line = read_line(fd, &len);
	close(fd);

	ans = json_loadb(line, len, 0, &jerr);
	if (!ans || !json_is_object(ans))
		die(1, "sipnatd's answer is not JSON: %s", jerr.text);
	bool ok = flag(ans, "ok");
	if (raw) {
		printf("%s\n", line);
	} else if (!ok) {
		const char *e = str(ans, "error");
		fprintf(stderr, "sipnatctl: %s: %s\n", cmd->name, *e ? e : "failed");
	} else if (!strcmp(cmd->name, "status")) {
		print_status(ans);
	} else if (!strcmp(cmd->name, "registrations")) {
		print_registrations(json_object_get(ans, "registrations"));
	} else if (!strcmp(cmd->name, "calls")) {
		print_calls(json_object_get(ans, "calls"));
	} else if (!strcmp(cmd->name, "turn")) {
		print_turn(json_object_get(ans, "turn"));
	} else if (!strcmp(cmd->name, "reload")) {
		printf("configuration reloaded\n");
	} else if (!strcmp(cmd->name, "drain")) {
		printf("draining: new dialogs and out-of-dialog requests get 503, current dialogs "
		       "go on\n");
	} else if (!strcmp(cmd->name, "hangup")) {
		printf("call %s hung up\n", argv[optind + 1]);
	} else if (!strcmp(cmd->name, "loglevel")) {
		printf("log level is now %s\n", str(ans, "level"));
	}
	json_decref(ans);
	free(line);
	return ok ? 0 : 1;
}
