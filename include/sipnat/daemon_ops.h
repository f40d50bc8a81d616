/* daemon_ops: sipnatd's side of the control socket – the struct ctl_ops
 * that answers status, registrations, calls, reload, drain, hangup,
 * loglevel and /metrics from the proxy, its registrations and its media
 * module.
 *
 * Threads: [sip] – the ops run from the su_root, like the proxy.
 * Memory: struct daemon_ctx belongs to the caller (main) and must outlive
 * the ctl; everything in it is borrowed.
 */
#ifndef SIPNAT_DAEMON_OPS_H
#define SIPNAT_DAEMON_OPS_H

#include <stddef.h>
#include <time.h>

#include "sipnat/cfg.h"
#include "sipnat/ctl.h"

struct proxy;

struct daemon_ctx {
	struct proxy *proxy;
	/* The running configuration; main swaps *cfg on reload. */
	struct cfg *const *cfg;
	/* The reload SIGHUP does: 0; -errno when refused (the running
	 * configuration stays); 1 when applied except some parts.  The
	 * reasons (one "file:line: reason" or other reason per line) go to
	 * err. */
	int (*reload)(void *arg, char *err, size_t errlen);
	void *reload_arg;
	struct timespec started; /* CLOCK_MONOTONIC, set by daemon_ctx_init */
	/* Borrowed, may be NULL (no relay, no TURN server); main sets them
	 * after daemon_ctx_init() and before ctl_start(). */
	struct relay *relay;
	struct turn *turn;
	/* Reloads by outcome, for /metrics (daemon_note_reload). */
	uint64_t reloads_applied, reloads_partial, reloads_refused;
	bool last_reload_failed; /* the last one was refused or partial */
	time_t last_reload_ok;   /* wall clock of the start or last full reload */
};

/* [sip] Counts a reload that returned result (0, 1 or -errno, see
 * reload above). */
void daemon_note_reload(struct daemon_ctx *d, int result);

/* Fills d and records the start time. */
void daemon_ctx_init(struct daemon_ctx *d, struct proxy *proxy, struct cfg *const *cfg,
                     int (*reload)(void *arg, char *err, size_t errlen), void *reload_arg);

/* The ops to give to ctl_start() with a struct daemon_ctx as arg. */
extern const struct ctl_ops daemon_ctl_ops;

/* The Prometheus text of /metrics (caller frees *text).  Returns 0 or
 * -ENOMEM. */
int daemon_metrics(struct daemon_ctx *d, char **text, size_t *len);

#endif
