/* log: one line per event, to stderr or syslog, with a level filter.
 *
 * Threads: [any].  Each line is formatted into a local buffer and written with
 * a single write(2) (or syslog(3)), so lines from several threads never mix.
 * The level is a relaxed atomic: log_set_level() may run on the SIP thread
 * while relay loops log.
 */
#ifndef SIPNAT_LOG_H
#define SIPNAT_LOG_H

#include "sipnat/cfg.h"

/* Open the log.  ident is the syslog identity ("sipnatd").  May be called
 * again (reload) to change level and target. */
void log_open(const char *ident, enum cfg_log_target target, enum cfg_log_level level);
void log_close(void);
void log_set_level(enum cfg_log_level level);
enum cfg_log_level log_get_level(void);
int log_enabled(enum cfg_log_level level);

void log_msg(enum cfg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Route Sofia-SIP's own logs (default, nta, tport) into ours.  [sip]
 * sofia_level is Sofia's 0..9 scale; 0 keeps Sofia quiet. */
void log_route_sofia(unsigned sofia_level);

#define log_err(...)  log_msg(CFG_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(CFG_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(CFG_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_enabled(CFG_LOG_DEBUG))                                                    \
			log_msg(CFG_LOG_DEBUG, __VA_ARGS__);                                       \
	} while (0)

#endif
