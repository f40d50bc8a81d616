/* log: line-at-a-time logging shared by every thread. */
#include "config.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <sofia-sip/su_log.h>

#include "sipnat/log.h"

/* Sofia exports these log objects without declaring them in its headers. */
extern su_log_t nta_log[];
extern su_log_t tport_log[];

static atomic_int log_level = CFG_LOG_INFO;
/* Level Sofia's lines are logged at: warnings when Sofia only reports
 * problems (its level 3), debug when it narrates every message. */
static enum cfg_log_level sofia_as = CFG_LOG_WARN;
static atomic_int log_target = CFG_LOG_STDERR;
static int syslog_open;

static const char *level_tag(enum cfg_log_level l)
{
	switch (l) {
	case CFG_LOG_ERROR:
		return "error";
	case CFG_LOG_WARN:
		return "warn";
	case CFG_LOG_INFO:
		return "info";
	case CFG_LOG_DEBUG:
		return "debug";
	}
	return "?";
}

void log_open(const char *ident, enum cfg_log_target target, enum cfg_log_level level)
{
	if (target == CFG_LOG_SYSLOG && !syslog_open) {
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
		syslog_open = 1;
	}
	atomic_store_explicit(&log_target, target, memory_order_relaxed);
	atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

void log_close(void)
{
	if (syslog_open) {
		closelog();
		syslog_open = 0;
	}
	atomic_store_explicit(&log_target, CFG_LOG_STDERR, memory_order_relaxed);
}

void log_set_level(enum cfg_log_level level)
{
	atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

enum cfg_log_level log_get_level(void)
{
	return atomic_load_explicit(&log_level, memory_order_relaxed);
}

int log_enabled(enum cfg_log_level level)
{
	return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

static void log_vmsg(enum cfg_log_level level, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));

static void log_vmsg(enum cfg_log_level level, const char *fmt, va_list ap)
{
	char line[2048];
	size_t n = 0;
	int r;

	if (atomic_load_explicit(&log_target, memory_order_relaxed) == CFG_LOG_SYSLOG) {
		vsnprintf(line, sizeof line, fmt, ap);
		syslog((int)level, "%s", line);
		return;
	}

	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof line - n, ".%03ldZ %s: ", ts.tv_nsec / 1000000L,
	             level_tag(level));
	if (r > 0)
		n += (size_t)r;
	r = vsnprintf(line + n, sizeof line - n, fmt, ap);
	if (r < 0)
		return;
	n += (size_t)r;
	if (n > sizeof line - 2)
		n = sizeof line - 2; /* truncated: still one line */
	/* Control characters from the network must not forge log lines. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
			line[i] = ' ';
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w; /* nowhere left to report a failing stderr */
}

void log_msg(enum cfg_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

/* Sofia calls its logger with fragments that may or may not end in a
 * newline; we gather them until the newline so each event stays one line.
 * Sofia runs only on the SIP thread, so the static buffer is not shared. */
static void sofia_logger(void *stream, char const *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));

static void sofia_logger(void *stream, char const *fmt, va_list ap)
{
	static char pending[2048];
	static size_t used;
	int r;

	(void)stream;
	r = vsnprintf(pending + used, sizeof pending - used, fmt, ap);
	if (r < 0)
		return;
	used += (size_t)r;
	if (used >= sizeof pending - 1)
		used = sizeof pending - 1;
	if (used > 0 && pending[used - 1] != '\n' && used < sizeof pending - 1)
		return;
	while (used > 0 && (pending[used - 1] == '\n' || pending[used - 1] == '\r'))
		used--;
	pending[used] = '\0';
	if (used > 0)
		log_msg(sofia_as, "sofia: %s", pending);
	used = 0;
}

void log_route_sofia(unsigned sofia_level)
{
	sofia_as = sofia_level > 3 ? CFG_LOG_DEBUG : CFG_LOG_WARN;
	su_log_redirect(su_log_default, sofia_logger, NULL);
	su_log_redirect(nta_log, sofia_logger, NULL);
	su_log_redirect(tport_log, sofia_logger, NULL);
	su_log_set_level(su_log_default, sofia_level);
	su_log_set_level(nta_log, sofia_level);
	su_log_set_level(tport_log, sofia_level);
}
