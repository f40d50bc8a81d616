/* ctl: control socket (JSON lines over UNIX stream) and /metrics (HTTP).
 *
 * One struct ctl_conn per client, each with its own registration in the
 * su_root.  A connection is either reading (SU_WAIT_IN) or writing
 * (SU_WAIT_OUT), never both: while an answer is pending no further input
 * is read, which bounds the memory a client can make us hold to one
 * request plus one answer.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
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
#include "sipnat/log.h"

/* Accepting is bounded per wakeup so that a flood of connections cannot
 * keep the SIP thread in one callback. */
#define ACCEPT_BATCH 16
#define SWEEP_MS     2000

struct ctl_conn {
	struct ctl *ctl;
	struct ctl_conn *next;
	int fd;
	int index; /* su_root registration */
	bool http;
	bool writing;
	bool close_after; /* close once out is written */
	bool eof;         /* the peer shut down its side */
	su_wait_t wait[1];
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off;
	time_t last; /* monotonic seconds of the last activity */
};

struct ctl {
	su_root_t *root;
	const struct ctl_ops *ops;
	void *arg;
	char *path;
	dev_t dev;
	ino_t ino;
	int ufd, uindex;
	su_wait_t uwait[1];
	int hfd, hindex;
	su_wait_t hwait[1];
	struct ctl_conn *conns;
	size_t n_ctl, n_http;
	su_timer_t *sweep;
};

static time_t now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void conn_close(struct ctl_conn *k)
{
	struct ctl *c = k->ctl;

	for (struct ctl_conn **pp = &c->conns; *pp; pp = &(*pp)->next) {
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	}
	if (k->http)
		c->n_http--;
	else
		c->n_ctl--;
	if (k->index > 0)
		su_root_deregister(c->root, k->index);
	close(k->fd);
	free(k->in);
	free(k->out);
	free(k);
}

/* Switch the registration between reading and writing. */
static void conn_want(struct ctl_conn *k, bool writing)
{
	if (k->writing == writing)
		return;
	k->writing = writing;
	su_root_eventmask(k->ctl->root, k->index, k->fd, writing ? SU_WAIT_OUT : SU_WAIT_IN);
}

/* Writes what it can of the pending answer.  Returns 1 when all is
 * written, 0 when the socket is full, -1 when the connection is gone. */
static int conn_flush(struct ctl_conn *k)
{
	while (k->out_off < k->out_len) {
		ssize_t n = send(k->fd, k->out + k->out_off, k->out_len - k->out_off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		k->out_off += (size_t)n;
	}
	free(k->out);
	k->out = NULL;
	k->out_len = k->out_off = 0;
	return 1;
}

/* Takes ownership of text (malloc'd). */
static void conn_set_answer(struct ctl_conn *k, char *text, size_t len)
{
	free(k->out);
	k->out = text;
	k->out_len = len;
	k->out_off = 0;
}

/* --- control protocol --- */

static json_t *error_obj(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *error_obj(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *o = json_object();

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (o) {
		json_object_set_new(o, "ok", json_false());
		/* json_string refuses invalid UTF-8 (an echoed command name
		 * can hold anything); the message then stays generic. */
		if (json_object_set_new(o, "error", json_string(msg)) < 0)
			json_object_set_new(o, "error", json_string("invalid request"));
	}
	return o;
}

static json_t *ok_obj(void)
{
	json_t *o = json_object();

	if (o)
		json_object_set_new(o, "ok", json_true());
	return o;
}

static json_t *op_error(int r, const char *what)
{
	return error_obj("%s failed: %s", what, strerror(r < 0 ? -r : r));
}

static json_t *list_cmd(struct ctl *c, int (*fn)(void *, json_t *), const char *key)
{
	json_t *arr = json_array(), *o;
	int r;

	if (!arr)
		return NULL;
	r = fn(c->arg, arr);
	if (r < 0) {
		json_decref(arr);
		return op_error(r, key);
	}
	o = ok_obj();
	if (o)
		json_object_set_new(o, key, arr);
	else
		json_decref(arr);
	return o;
}

static const char *str_arg(json_t *req, const char *key)
{
	json_t *v = json_object_get(req, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_t *dispatch(struct ctl *c, json_t *req)
{
	const struct ctl_ops *ops = c->ops;
	const char *cmd = str_arg(req, "cmd");
	const char *s;
	json_t *o;
	int r;

	if (!cmd)
		return error_obj("missing \"cmd\" (a string)");

#define NEED(op)                                                                                   \
	do {                                                                                       \
		if (!ops->op)                                                                      \
			return error_obj("not available in this build");                           \
	} while (0)

	if (!strcmp(cmd, "status")) {
		NEED(status);
		o = ok_obj();
		if (!o)
			return NULL;
		r = ops->status(c->arg, o);
		if (r < 0) {
			json_decref(o);
			return op_error(r, "status");
		}
		return o;
	}
	if (!strcmp(cmd, "registrations")) {
		NEED(registrations);
		return list_cmd(c, ops->registrations, "registrations");
	}
	if (!strcmp(cmd, "calls")) {
		NEED(calls);
		return list_cmd(c, ops->calls, "calls");
	}
	if (!strcmp(cmd, "turn")) {
		NEED(turn);
		return list_cmd(c, ops->turn, "turn");
	}
	if (!strcmp(cmd, "reload")) {
		char err[4096] = "";
		NEED(reload);
		r = ops->reload(c->arg, err, sizeof err);
		if (r < 0) {
			size_t n = strlen(err);
			while (n && err[n - 1] == '\n')
				err[--n] = '\0';
			if (n)
				return error_obj("refused, the running configuration stays:\n%s",
				                 err);
			return op_error(r, "reload");
		}
		if (r > 0) {
			size_t n = strlen(err);
			while (n && err[n - 1] == '\n')
				err[--n] = '\0';
			return error_obj("reloaded, except:\n%s", n ? err : "(see the log)");
		}
		return ok_obj();
	}
	if (!strcmp(cmd, "drain")) {
		NEED(drain);
		r = ops->drain(c->arg);
		return r < 0 ? op_error(r, "drain") : ok_obj();
	}
	if (!strcmp(cmd, "hangup")) {
		NEED(hangup);
		s = str_arg(req, "call_id");
		if (!s || !*s)
			return error_obj("hangup needs \"call_id\" (a string)");
		r = ops->hangup(c->arg, s);
		if (r == -ENOENT)
			return error_obj("no such call: %s", s);
		if (r == -EBUSY)
			return error_obj("call %s is not answered yet: only its caller can end "
			                 "it (CANCEL)",
			                 s);
		return r < 0 ? op_error(r, "hangup") : ok_obj();
	}
	if (!strcmp(cmd, "loglevel")) {
		NEED(loglevel);
		s = str_arg(req, "level");
		if (!s)
			return error_obj("loglevel needs \"level\" (a string)");
		r = ops->loglevel(c->arg, s);
		if (r == -EINVAL)
			return error_obj("unknown level '%s' (expected error, warn, info or debug)",
			                 s);
		if (r < 0)
			return op_error(r, "loglevel");
		o = ok_obj();
		if (o)
			json_object_set_new(o, "level", json_string(s));
		return o;
	}
	if (!strcmp(cmd, "metrics")) {
		char *text = NULL;
		size_t len = 0;
		NEED(metrics);
		r = ops->metrics(c->arg, &text, &len);
		if (r < 0)
			return op_error(r, "metrics");
		o = ok_obj();
		if (o)
			json_object_set_new(o, "text", json_stringn(text, len));
		free(text);
		return o;
	}
#undef NEED
	return error_obj("unknown command '%s'", cmd);
}

/* Answers one request line; returns the answer line (malloc'd, with its
 * newline) or NULL when out of memory. */
static char *handle_line(struct ctl *c, const char *line, size_t len, size_t *out_len)
{
	json_error_t jerr;
	json_t *req, *resp;
	char *text, *full;
	size_t n;

	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req)
		resp = error_obj("bad JSON: %s (column %d)", jerr.text, jerr.column);
	else if (!json_is_object(req))
		resp = error_obj("a request is a JSON object");
	else
		resp = dispatch(c, req);
	json_decref(req);

	text = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
	json_decref(resp);
	if (!text)
		text = strdup("{\"ok\":false,\"error\":\"internal error\"}");
	if (!text)
		return NULL;
	n = strlen(text);
	full = realloc(text, n + 2);
	if (!full) {
		free(text);
		return NULL;
	}
	full[n] = '\n';
	full[n + 1] = '\0';
	*out_len = n + 1;
	return full;
}

/* Answers the next complete line in the input, if any.  Returns true when
 * an answer was queued. */
static bool ctl_next_answer(struct ctl_conn *k)
{
	char *nl, *answer;
	size_t line_len, alen = 0;

	for (;;) {
		nl = memchr(k->in, '\n', k->in_len);
		if (!nl) {
			if (k->in_len > CTL_MAX_REQUEST) {
				static const char big[] =
				        "{\"ok\":false,\"error\":\"request too large (limit 65536 "
				        "bytes)\"}\n";
				conn_set_answer(k, strdup(big), sizeof big - 1);
				k->close_after = true;
				k->in_len = 0;
				return true;
			}
			if (!k->eof || k->in_len == 0)
				return false;
			/* The last line of a client that shut down its side
			 * without a newline still counts. */
			nl = k->in + k->in_len;
			k->in_len++;
		}
		line_len = (size_t)(nl - k->in);
		if (line_len && k->in[line_len - 1] == '\r')
			line_len--;
		bool blank = true;
		for (size_t i = 0; i < line_len; i++)
			if (k->in[i] != ' ' && k->in[i] != '\t')
				blank = false;
		answer = blank ? NULL : handle_line(k->ctl, k->in, line_len, &alen);
		size_t used = (size_t)(nl - k->in) + 1;
		if (used > k->in_len)
			used = k->in_len;
		memmove(k->in, k->in + used, k->in_len - used);
		k->in_len -= used;
		if (blank)
			continue;
		if (!answer) {
			k->close_after = true;
			return false;
		}
		conn_set_answer(k, answer, alen);
		return true;
	}
}

/* --- HTTP for /metrics --- */

static void http_answer(struct ctl_conn *k, int status, const char *reason, const char *ctype,
                        const char *body, size_t blen, bool head, const char *extra)
{
	char hdr[512];
	int n = snprintf(hdr, sizeof hdr,
	                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
	                 "Connection: close\r\n\r\n",
	                 status, reason, ctype, blen, extra ? extra : "");
	size_t total = (size_t)n + (head ? 0 : blen);
	char *out = malloc(total + 1);

	k->close_after = true;
	if (!out)
		return;
	memcpy(out, hdr, (size_t)n);
	if (!head && blen)
		memcpy(out + n, body, blen);
	out[total] = '\0';
	conn_set_answer(k, out, total);
}

static void http_simple(struct ctl_conn *k, int status, const char *reason, const char *extra)
{
	char body[64];
	int n = snprintf(body, sizeof body, "%d %s\n", status, reason);

	http_answer(k, status, reason, "text/plain; charset=utf-8", body, (size_t)n, false, extra);
}

static bool is_token(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return false;
	return true;
}

/* RFC 9112 section 3: request-line = method SP request-target SP
 * HTTP-version.  Only the request line matters to us; header fields are
 * ignored (but must be complete, i.e. end with an empty line). */
static void http_request(struct ctl_conn *k)
{
	struct ctl *c = k->ctl;
	char *line = k->in, *eol, *sp1, *sp2;
	size_t mlen, tlen;
	bool head;

	eol = memchr(line, '\n', k->in_len);
	if (!eol)
		goto bad;
	if (eol > line && eol[-1] == '\r')
		eol--;
	*eol = '\0';
	sp1 = strchr(line, ' ');
	if (!sp1)
		goto bad;
	sp2 = strchr(sp1 + 1, ' ');
	if (!sp2 || strchr(sp2 + 1, ' '))
		goto bad;
	mlen = (size_t)(sp1 - line);
	tlen = (size_t)(sp2 - sp1 - 1);
	if (!is_token(line, mlen) || tlen == 0 || sp1[1] != '/' ||
	    (strcmp(sp2 + 1, "HTTP/1.0") != 0 && strcmp(sp2 + 1, "HTTP/1.1") != 0))
		goto bad;
	for (char *t = sp1 + 1; t < sp2; t++)
		if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
			goto bad;
	head = mlen == 4 && !memcmp(line, "HEAD", 4);
	if (!head && !(mlen == 3 && !memcmp(line, "GET", 3))) {
		http_simple(k, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
		return;
	}
	size_t plen = strcspn(sp1 + 1, "? ");
	if (plen != 8 || memcmp(sp1 + 1, "/metrics", 8) != 0) {
		http_simple(k, 404, "Not Found", NULL);
		return;
	}
	if (!c->ops->metrics) {
		http_simple(k, 503, "Service Unavailable", NULL);
		return;
	}
	char *text = NULL;
	size_t len = 0;
	if (c->ops->metrics(c->arg, &text, &len) < 0 || !text) {
		free(text);
		http_simple(k, 500, "Internal Server Error", NULL);
		return;
	}
	/* Prometheus text exposition format, version 0.0.4. */
	http_answer(k, 200, "OK", "text/plain; version=0.0.4", text, len, head, NULL);
	free(text);
	return;
bad:
	http_simple(k, 400, "Bad Request", NULL);
}

/* True once the request head is complete (an empty line ends it). */
static bool http_complete(const struct ctl_conn *k)
{
	for (size_t i = 0; i + 1 < k->in_len; i++) {
		if (k->in[i] != '\n')
			continue;
		if (k->in[i + 1] == '\n')
			return true;
		if (i + 2 < k->in_len && k->in[i + 1] == '\r' && k->in[i + 2] == '\n')
			return true;
	}
	return false;
}

/* --- connection events --- */

/* Queues the next answer, if input allows one.  Returns true if queued. */
static bool conn_next_answer(struct ctl_conn *k)
{
	if (!k->http)
		return ctl_next_answer(k);
	if (k->close_after)
		return false;
	if (http_complete(k)) {
		http_request(k);
		return true;
	}
	if (k->in_len >= CTL_MAX_HTTP_REQUEST || (k->eof && k->in_len)) {
		http_simple(k, 400, "Bad Request", NULL);
		return true;
	}
	return false;
}

/* Closes after the last answer.  Unread input is drained first (bounded):
 * closing a TCP socket with unread data sends a reset, which can make the
 * peer lose the answer it has not read yet. */
static void conn_finish(struct ctl_conn *k)
{
	char sink[4096];

	shutdown(k->fd, SHUT_WR);
	for (int i = 0; i < 16; i++)
		if (recv(k->fd, sink, sizeof sink, MSG_DONTWAIT) <= 0)
			break;
	conn_close(k);
}

/* Runs answers and writes until input is exhausted or the socket is
 * full.  Returns false when the connection was closed. */
static bool conn_pump(struct ctl_conn *k)
{
	for (int rounds = 0; rounds < 64; rounds++) {
		if (k->out) {
			int w = conn_flush(k);
			if (w < 0) {
				conn_close(k);
				return false;
			}
			if (w == 0) {
				conn_want(k, true);
				return true;
			}
		}
		if (k->close_after)
			break;
		if (!conn_next_answer(k))
			break;
	}
	if (k->close_after && !k->out) {
		conn_finish(k);
		return false;
	}
	if (k->eof && !k->out) {
		conn_close(k);
		return false;
	}
	conn_want(k, k->out != NULL);
	return true;
}

static int conn_event(void *magic, su_wait_t *w, void *arg)
{
	struct ctl_conn *k = arg;
	int ev = su_wait_events(w, k->fd);
	size_t limit = k->http ? CTL_MAX_HTTP_REQUEST : CTL_MAX_REQUEST + 1;

	(void)magic;
	k->last = now_mono();
	if (k->writing) {
		if (ev & (SU_WAIT_ERR | SU_WAIT_HUP) && !(ev & SU_WAIT_OUT)) {
			conn_close(k);
			return 0;
		}
		conn_pump(k);
		return 0;
	}
	if (k->in_cap < limit + 1) {
		char *nb = realloc(k->in, limit + 1);
		if (!nb) {
			conn_close(k);
			return 0;
		}
		k->in = nb;
		k->in_cap = limit + 1;
	}
	/* Read what fits; input beyond the limit waits in the kernel. */
	while (k->in_len < limit && !k->eof) {
		ssize_t n = recv(k->fd, k->in + k->in_len, limit - k->in_len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			conn_close(k);
			return 0;
		}
		if (n == 0) {
			k->eof = true;
			break;
		}
		k->in_len += (size_t)n;
	}
	if (k->in_len >= limit && !k->http && !memchr(k->in, '\n', k->in_len))
		k->in_len = CTL_MAX_REQUEST + 1; /* over the limit: refused */
	conn_pump(k);
	return 0;
}

static void accept_clients(struct ctl *c, int lfd, bool http)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ctl_conn *k;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("ctl: accept: %s", strerror(errno));
			return;
		}
		if ((http ? c->n_http : c->n_ctl) >= CTL_MAX_CLIENTS) {
			log_warn("ctl: too many %s clients, refusing one",
			         http ? "metrics" : "control");
			close(fd);
			continue;
		}
		k = calloc(1, sizeof *k);
		if (!k || su_wait_create(k->wait, fd, SU_WAIT_IN) < 0) {
			free(k);
			close(fd);
			continue;
		}
		k->ctl = c;
		k->fd = fd;
		k->http = http;
		k->last = now_mono();
		k->index = su_root_register(c->root, k->wait, conn_event, k, su_pri_normal);
		if (k->index <= 0) {
			su_wait_destroy(k->wait);
			close(fd);
			free(k);
			continue;
		}
		k->next = c->conns;
		c->conns = k;
		if (http)
			c->n_http++;
		else
			c->n_ctl++;
	}
}

static int ctl_listen_event(void *magic, su_wait_t *w, void *arg)
{
	struct ctl *c = arg;

	(void)magic;
	(void)w;
	accept_clients(c, c->ufd, false);
	return 0;
}

static int http_listen_event(void *magic, su_wait_t *w, void *arg)
{
	struct ctl *c = arg;

	(void)magic;
	(void)w;
	accept_clients(c, c->hfd, true);
	return 0;
}

static void sweep(void *magic, su_timer_t *t, void *arg)
{
	struct ctl *c = arg;
	time_t now = now_mono();
	struct ctl_conn *k = c->conns, *next;

	(void)magic;
	(void)t;
	for (; k; k = next) {
		next = k->next;
		if (now - k->last > (k->http ? CTL_HTTP_IDLE_SECONDS : CTL_IDLE_SECONDS))
			conn_close(k);
	}
}

/* --- listeners --- */

/* Creates the missing directories above path, each 0750. */
static int make_parent_dirs(const char *path)
{
	char buf[sizeof(((struct sockaddr_un *)0)->sun_path)];
	size_t n = strlen(path);

	if (n >= sizeof buf)
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *s = buf + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(buf, 0750) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return 0;
}

/* A socket file nobody answers on is left over from a crash. */
static int remove_stale(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof *sa);
	if (r == 0 || errno == EAGAIN) {
		close(fd);
		return -EADDRINUSE;
	}
	close(fd);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int open_unix(struct ctl *c, const char *path, unsigned mode)
{
	struct sockaddr_un sa;
	struct stat st;
	mode_t old;
	int fd, r;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		log_err("control socket %s: path too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r = make_parent_dirs(path);
	if (r < 0) {
		log_err("control socket %s: cannot create its directory: %s", path, strerror(-r));
		return r;
	}
	r = remove_stale(path, &sa);
	if (r < 0) {
		log_err("control socket %s: %s", path,
		        r == -EADDRINUSE ? "another process is answering on it"
		        : r == -EEXIST   ? "the path exists and is not a socket"
		                         : strerror(-r));
		return r;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Bind under a umask that leaves the file closed to everybody, then
	 * open it up to the configured mode: no window where it is wider. */
	old = umask(0077);
	r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r < 0 || chmod(path, mode & 0777) < 0 || listen(fd, 16) < 0 || stat(path, &st) < 0) {
		r = -errno;
		log_err("control socket %s: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	c->ufd = fd;
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	return 0;
}

static int open_tcp(struct ctl *c, const char *host, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
		len = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
		len = sizeof(struct sockaddr_in6);
	} else {
		log_err("metrics: '%s' is not a numeric address", host);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0) {
		int r = -errno;
		log_err("metrics: cannot listen on %s%s%s:%u: %s",
		        ss.ss_family == AF_INET6 ? "[" : "", host,
		        ss.ss_family == AF_INET6 ? "]" : "", port, strerror(-r));
		close(fd);
		return r;
	}
	c->hfd = fd;
	return 0;
}

int ctl_start(struct ctl **out, su_root_t *root, const struct cfg_control *cc,
              const struct ctl_ops *ops, void *arg)
{
	struct ctl *c;
	int r = 0;

	*out = NULL;
	if ((!cc->socket || !cc->socket[0]) && cc->metrics_port == 0)
		return 0;
	c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->root = root;
	c->ops = ops;
	c->arg = arg;
	c->ufd = c->hfd = -1;

	if (cc->socket && cc->socket[0]) {
		c->path = strdup(cc->socket);
		if (!c->path) {
			r = -ENOMEM;
			goto fail;
		}
		r = open_unix(c, c->path, cc->socket_mode);
		if (r < 0)
			goto fail;
		if (su_wait_create(c->uwait, c->ufd, SU_WAIT_IN) < 0 ||
		    (c->uindex = su_root_register(root, c->uwait, ctl_listen_event, c,
		                                  su_pri_normal)) <= 0) {
			r = -ENOMEM;
			goto fail;
		}
		log_info("control socket %s (mode %04o)", c->path, cc->socket_mode & 0777);
	}
	if (cc->metrics_port) {
		r = open_tcp(c, cc->metrics_host, cc->metrics_port);
		if (r < 0)
			goto fail;
		if (su_wait_create(c->hwait, c->hfd, SU_WAIT_IN) < 0 ||
		    (c->hindex = su_root_register(root, c->hwait, http_listen_event, c,
		                                  su_pri_normal)) <= 0) {
			r = -ENOMEM;
			goto fail;
		}
		log_info("metrics on http://%s%s%s:%u/metrics",
		         strchr(cc->metrics_host, ':') ? "[" : "", cc->metrics_host,
		         strchr(cc->metrics_host, ':') ? "]" : "", cc->metrics_port);
	}
	c->sweep = su_timer_create(su_root_task(root), SWEEP_MS);
	if (!c->sweep || su_timer_set_for_ever(c->sweep, sweep, c) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	*out = c;
	return 0;
fail:
	ctl_stop(c);
	return r;
}

void ctl_stop(struct ctl *c)
{
	struct stat st;

	if (!c)
		return;
	while (c->conns)
		conn_close(c->conns);
	if (c->sweep)
		su_timer_destroy(c->sweep);
	if (c->uindex > 0)
		su_root_deregister(c->root, c->uindex);
	if (c->hindex > 0)
		su_root_deregister(c->root, c->hindex);
	if (c->ufd >= 0) {
		close(c->ufd);
		/* Only our own socket file: a newer daemon may have replaced
		 * it already. */
		if (stat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
			unlink(c->path);
	}
	if (c->hfd >= 0)
		close(c->hfd);
	free(c->path);
	free(c);
}
