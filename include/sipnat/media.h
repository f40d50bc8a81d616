/* media: the SIP side of media anchoring – offer/answer bookkeeping per
 * call, SDP rewriting through sdpr_, and the bridge to the relay.
 *
 * The proxy hands every message it forwards to media_request() or
 * media_response(); they rewrite the SDP body in place so that media goes
 * through the relay, and tear the relay session down on BYE, CANCEL and
 * failed INVITEs.  Relay events (which arrive on relay loop threads) are
 * posted to the SIP thread with su_msg and handled there: a media timeout
 * ends the call with a BYE to both sides through media_hooks.send_bye.
 *
 * Threads: [sip] for every function here.  Memory: struct media owns its
 * calls; the relay is borrowed (started and stopped by the caller, after
 * media_destroy()).
 */
#ifndef SIPNAT_MEDIA_H
#define SIPNAT_MEDIA_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <sofia-sip/msg.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/su_wait.h>

#include "sipnat/cfg.h"
#include "sipnat/prom.h"
#include "sipnat/flow.h"

struct relay;
struct media;

/* Who sent a message, as the proxy saw it. */
struct media_party {
	bool from_upstream;
	bool nated;                 /* natd verdict for a device */
	const struct sockaddr *src; /* signalling source address */
	const struct flow *flow;    /* the device's flow, NULL for an upstream */
};

/* One side of a dialog, enough to send it a BYE. */
struct media_dialog_side {
	const char *uri;     /* its From/To URI */
	const char *tag;     /* its tag */
	const char *contact; /* its remote target */
	uint32_t cseq;       /* next CSeq to use towards it */
	bool from_upstream;
	bool have_flow;
	struct flow flow; /* device flow, or the upstream's address */
};

struct media_hooks {
	/* Send a BYE to `to`, as if from `from`.  reason goes into a Reason
	 * header. */
	void (*send_bye)(void *arg, const char *call_id, const struct media_dialog_side *from,
	                 const struct media_dialog_side *to, const char *reason);
};

/* Per-call listing for the control socket. */
struct relay_stream_stats;

struct media_call_info {
	const char *call_id;
	const char *caller, *callee; /* From and To URIs */
	uint64_t sid;                /* relay session, 0 if not relayed */
	long age;                    /* seconds since the INVITE */
	bool established;            /* a 2xx was seen */
	bool caller_nated, callee_nated;
	/* The relay's figures per stream (side A = caller), as of stats_age
	 * seconds ago (-1, streams NULL: none yet).  Valid during the
	 * callback only. */
	const struct relay_stream_stats *streams;
	unsigned nstreams;
	long stats_age;
};

/* The relay reports events on its own threads; they reach the SIP thread
 * through a bridge that outlives the media module, so that events still in
 * flight after media_destroy() are dropped safely.  main() owns the bridge,
 * passes media_relay_event and &bridge to relay_start(), and gives the same
 * bridge to media_create(). */
struct media_bridge {
	su_root_t *root; /* set before relay_start(), constant afterwards */
	struct media *m; /* [sip] NULL when no media module is alive */
};
/* [loop] relay_event_f for relay_start(); arg is a struct media_bridge. */
struct relay_event;
void media_relay_event(void *arg, const struct relay_event *ev);

int media_create(struct media **out, struct media_bridge *bridge, const struct cfg *cfg,
                 struct relay *relay, const struct media_hooks *hooks, void *arg);
/* Closes every relay session still open; their CLOSED events are ignored. */
void media_destroy(struct media *m);
/* cfg is borrowed from now on (mode, timeout policy, strip option). */
void media_reload(struct media *m, const struct cfg *cfg);

/* A request about to be forwarded (msg/sip is the copy that will be sent).
 * target is what the proxy knows of the receiver (may be NULL).
 * Returns 0, or -ENOSPC when the offer in an INVITE or UPDATE needs relay
 * ports and the pool has none left: the request must not be forwarded and
 * its sender gets 503 (a call without media is worse than a call refused).
 * Ports for BOTH sides are reserved at the offer, so that an answer can
 * never find the pool empty; a refused initial INVITE leaves no state. */
int media_request(struct media *m, msg_t *msg, sip_t *sip, const struct media_party *sender,
                  const struct media_party *target);

/* A response about to be relayed back (also a stray 2xx retransmission);
 * request is the request it answers when known (may be NULL: the response's
 * own From and CSeq tell the direction), responder who sent it. */
void media_response(struct media *m, msg_t *msg, sip_t *sip, sip_t const *request,
                    const struct media_party *responder);

/* Ends a call now: BYE to both sides, relay session closed.  -ENOENT if no
 * call has this Call-ID. */
int media_hangup(struct media *m, const char *call_id, const char *reason);

void media_foreach_call(struct media *m, void (*fn)(void *arg, const struct media_call_info *c),
                        void *arg);
size_t media_active_calls(const struct media *m);

/* [sip] What the parties of finished calls reported in RTCP about the
 * media they received through the relay, one observation per stream that
 * sent reports: the last fraction lost (percent) and the largest
 * interarrival jitter (ms).  Owned by m. */
struct media_quality {
	struct prom_hist loss_pct, jitter_ms;
};
const struct media_quality *media_quality(const struct media *m);

/* [sip] Relay sockets latched (or re-latched) to a party's address. */
uint64_t media_latches(const struct media *m);

/* [sip] Ask the relay for fresh per-stream figures of every relayed call;
 * they arrive asynchronously (a few ms) and show in media_foreach_call.
 * Also done every 5 s. */
void media_refresh_stats(struct media *m);
uint64_t media_completed_calls(const struct media *m);

#endif
