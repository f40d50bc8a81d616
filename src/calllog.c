/* calllog: JSON call records, one per line (see calllog.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "sipnat/calllog.h"
#include "sipnat/log.h"

struct calllog {
	int fd;
	char *path;
	uint64_t failures;
	bool warned; /* since the last (re)open */
};

static int open_append(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	return fd < 0 ? -errno : fd;
}

int calllog_open(struct calllog **out, const char *path)
{
	struct calllog *cl;
	int fd;

	if (!path || !path[0])
		return -EINVAL;
	fd = open_append(path);
	if (fd < 0)
		return fd;
	cl = calloc(1, sizeof *cl);
	if (!cl || !(cl->path = strdup(path))) {
		free(cl);
		close(fd);
		return -ENOMEM;
	}
	cl->fd = fd;
	*out = cl;
	return 0;
}

int calllog_reopen(struct calllog *cl)
{
	int fd = open_append(cl->path);

	if (fd < 0)
		return fd;
	close(cl->fd);
	cl->fd = fd;
	cl->warned = false;
	return 0;
}

const char *calllog_path(const struct calllog *cl)
{
	return cl->path;
}

uint64_t calllog_failures(const struct calllog *cl)
{
	return cl->failures;
}

void calllog_close(struct calllog *cl)
{
	if (!cl)
		return;
	close(cl->fd);
	free(cl->path);
	free(cl);
}

/* jansson refuses invalid UTF-8; a record must not lose a field because a
 * phone put Latin-1 in its display name. */
static json_t *text(const char *s)
{
	json_t *v;
	char *copy;

	if (!s)
		return json_null();
	if ((v = json_string(s)))
		return v;
	if (!(copy = strdup(s)))
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	v = json_string(copy);
	free(copy);
	return v;
}

static json_t *iso_time(time_t t)
{
	struct tm tm;
	char buf[32];

	if (!gmtime_r(&t, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return json_null();
	return json_string(buf);
}

/* Sets key to v, which it takes; false when v is NULL (out of memory). */
static bool put(json_t *o, const char *key, json_t *v)
{
	return v && json_object_set_new(o, key, v) == 0;
}

static json_t *stream_json(const struct calllog_stream *s)
{
	json_t *o = json_object();
	char side[2] = {s->side, '\0'};
	bool ok = o && put(o, "side", json_string(side)) &&
	          put(o, "mline", json_integer(s->mline)) &&
	          put(o, "relay_port", json_integer(s->rtp_port)) &&
	          put(o, "latched", text(s->latched)) &&
	          put(o, "packets_in", json_integer((json_int_t)s->packets_in)) &&
	          put(o, "bytes_in", json_integer((json_int_t)s->bytes_in)) &&
	          put(o, "packets_out", json_integer((json_int_t)s->packets_out)) &&
	          put(o, "bytes_out", json_integer((json_int_t)s->bytes_out)) &&
	          put(o, "dropped", json_integer((json_int_t)s->dropped));

	if (ok && s->have_rtcp)
		ok = put(o, "loss_pct", json_real(s->loss_pct)) &&
		     put(o, "jitter_ms", json_real(s->jitter_ms)) &&
		     put(o, "jitter_max_ms", json_real(s->jitter_max_ms));
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int calllog_format(const struct calllog_record *r, char **out, size_t *len)
{
	json_t *o = json_object(), *streams = json_array();
	char *s = NULL;
	bool ok = o && streams;
	long dur = r->end >= r->start ? (long)(r->end - r->start) : 0;

	ok = ok && put(o, "call_id", text(r->call_id)) && put(o, "caller", text(r->caller)) &&
	     put(o, "callee", text(r->callee)) && put(o, "start", iso_time(r->start)) &&
	     put(o, "end", iso_time(r->end)) && put(o, "duration_s", json_integer(dur)) &&
	     put(o, "answered", json_boolean(r->answered)) &&
	     put(o, "relayed", json_boolean(r->relayed)) &&
	     put(o, "caller_nat", json_boolean(r->caller_nat)) &&
	     put(o, "callee_nat", json_boolean(r->callee_nat)) &&
	     put(o, "codecs", text(r->codecs)) && put(o, "reason", text(r->reason));
	for (size_t i = 0; ok && i < r->nstreams; i++) {
		json_t *st = stream_json(&r->streams[i]);
		ok = st && json_array_append_new(streams, st) == 0;
	}
	if (ok) {
		ok = json_object_set_new(o, "streams", streams) == 0;
		streams = NULL;
	}
	if (ok)
		s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(streams);
	json_decref(o);
	if (!s)
		return -ENOMEM;
	size_t n = strlen(s);
	char *line = realloc(s, n + 2);
	if (!line) {
		free(s);
		return -ENOMEM;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	*out = line;
	*len = n + 1;
	return 0;
}

int calllog_write(struct calllog *cl, const struct calllog_record *r)
{
	char *line;
	size_t len;
	ssize_t n;
	int err;

	err = calllog_format(r, &line, &len);
	if (err == 0) {
		do
			n = write(cl->fd, line, len);
		while (n < 0 && errno == EINTR);
		err = n < 0 ? -errno : (size_t)n != len ? -EIO : 0;
		free(line);
	}
	if (err < 0) {
		cl->failures++;
		if (!cl->warned)
			log_warn("call log %s: cannot write a record (%s); more failures are only "
			         "counted until the next reload",
			         cl->path, strerror(-err));
		cl->warned = true;
	}
	return err;
}
