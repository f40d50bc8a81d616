/* proxy: the stateful SIP edge proxy on Sofia-SIP nta.
 *
 * Threads: [sip] – every function here runs on the thread that created the
 * su_root given to proxy_create(); nta and every tport live there.
 *
 * Routing policy (not an open relay):
 *   - requests from a device go to an upstream (the configured PBX/trunk,
 *     tried in order with failover), or straight to an upstream address the
 *     request already names (in-dialog requests to the PBX's Contact);
 *   - requests from an upstream go where the Request-URI / Route says;
 *   - a device's request for any other destination is refused with 403;
 *   - OPTIONS to sipnatd's own URI is answered 200 here.
 *
 * Memory: struct proxy owns its nta agent and every transaction; the cfg is
 * borrowed and must outlive the proxy or be replaced with proxy_reload().
 */
#ifndef SIPNAT_PROXY_H
#define SIPNAT_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sofia-sip/su_wait.h>

#include "sipnat/cfg.h"

struct proxy;

/* Counters for status output and tests; read on the SIP thread. */
enum proxy_method_idx {
	PROXY_M_INVITE,
	PROXY_M_ACK,
	PROXY_M_BYE,
	PROXY_M_CANCEL,
	PROXY_M_REGISTER,
	PROXY_M_OPTIONS,
	PROXY_M_PRACK,
	PROXY_M_UPDATE,
	PROXY_M_INFO,
	PROXY_M_MESSAGE,
	PROXY_M_SUBSCRIBE,
	PROXY_M_NOTIFY,
	PROXY_M_REFER,
	PROXY_M_OTHER,
	PROXY_N_METHODS
};

/* [pure] "INVITE", ..., "other". */
const char *proxy_method_name(enum proxy_method_idx m);

struct proxy_stats {
	uint64_t requests;      /* requests received (all methods) */
	uint64_t forwarded;     /* requests forwarded statefully or not */
	uint64_t responses;     /* responses relayed back */
	uint64_t refused;       /* 403 for relay attempts and bad flow tokens */
	uint64_t bad_tokens;    /* flow tokens that failed verification (403) */
	uint64_t flow_failed;   /* valid tokens for flows that are gone (430) */
	uint64_t loops;         /* 482 */
	uint64_t too_many_hops; /* 483 */
	uint64_t failovers;     /* upstream switched on timeout/503 */
	uint64_t local_options; /* OPTIONS answered by us */
	uint64_t malformed;     /* malformed messages nta rejected or dropped */
	uint64_t relay_full;    /* 503: no relay ports for an offer */
	/* requests received by method (PROXY_M_*), responses relayed back by
	 * class (index 1..6 for 1xx..6xx) */
	uint64_t by_method[PROXY_N_METHODS];
	uint64_t by_class[7];
	uint64_t by_code[600]; /* index status - 100 */
	size_t transactions;   /* open server transactions now */
};

struct relay;
struct media;
struct media_bridge;

/* Creates the nta agent, binds every listener of cfg->sip and starts
 * serving.  With a relay (borrowed; may be NULL), media of calls is
 * anchored there through a media module the proxy owns; bridge is the one
 * given to relay_start().  Returns 0 or -errno (-EADDRINUSE, -EINVAL...)
 * after logging the reason. */
int proxy_create(struct proxy **pp, su_root_t *root, const struct cfg *cfg, struct relay *relay,
                 struct media_bridge *bridge);

/* The media module, for listings and hangup; NULL without a relay. */
struct media *proxy_media(struct proxy *p);

/* Applies what can change at run time: upstreams, domains, advertise,
 * timeouts, listeners (added ones open; removed TCP/TLS ones stop listening
 * and keep their connections; a removed UDP one stays open, with a
 * warning), and a new [sip] TLS key/certificate (new connections get it).
 * cfg is borrowed from now on; the previous one may be freed after return.
 * Returns 0, or a negative errno when something could not be applied (it
 * was logged, and written to why, one line each, when why is not NULL; the
 * rest was applied). */
int proxy_reload(struct proxy *p, const struct cfg *cfg, char *why, size_t why_len);

/* Graceful stop: new requests get 503, open transactions finish.  done(arg)
 * is called once (from the su_root) when none is left or after
 * cfg->sip.shutdown_timeout seconds, whichever is first. */
void proxy_drain(struct proxy *p, void (*done)(void *arg), void *arg);

/* Refuse new dialogs and out-of-dialog requests with 503 while current
 * dialogs continue (sipnatctl drain); proxy_drain() does the same and
 * then waits for open transactions. */
void proxy_set_draining(struct proxy *p, bool on);
bool proxy_is_draining(const struct proxy *p);

void proxy_get_stats(const struct proxy *p, struct proxy_stats *out);

struct reg_binding;
/* Calls fn for every device binding sipnatd keeps (see reg.h); fn must not
 * keep the pointer nor change the table. */
void proxy_foreach_binding(struct proxy *p, void (*fn)(void *arg, const struct reg_binding *b),
                           void *arg);

struct proxy_upstream_info {
	const char *uri; /* borrowed until the next reload */
	bool healthy;    /* false while held down after a timeout or 503 */
	long down_for;   /* seconds it stays held down, 0 when healthy */
};
/* Returns the number of upstreams; fills out[0..max-1]. */
size_t proxy_upstreams(const struct proxy *p, struct proxy_upstream_info *out, size_t max);

void proxy_destroy(struct proxy *p);

#endif
