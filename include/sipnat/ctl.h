/* ctl: the control socket and the Prometheus /metrics endpoint.
 *
 * Control socket: a UNIX stream socket; each client sends one JSON object
 * per line and gets one JSON object per line back, in order:
 *
 *   {"cmd":"status"}                      -> {"ok":true, ...status fields}
 *   {"cmd":"registrations"}               -> {"ok":true,"registrations":[...]}
 *   {"cmd":"calls"}                       -> {"ok":true,"calls":[...]}
 *   {"cmd":"turn"}                        -> {"ok":true,"turn":[...]}
 *   {"cmd":"reload"}                      -> {"ok":true}
 *   {"cmd":"drain"}                       -> {"ok":true}
 *   {"cmd":"hangup","call_id":"..."}      -> {"ok":true}
 *   {"cmd":"loglevel","level":"debug"}    -> {"ok":true,"level":"debug"}
 *   {"cmd":"metrics"}                     -> {"ok":true,"text":"..."}
 *
 * Any failure is {"ok":false,"error":"..."}: bad JSON, an unknown command,
 * a missing argument, an operation the daemon refused, or one this build
 * does not have (its op is NULL: "not available in this build").  A line
 * longer than CTL_MAX_REQUEST is answered with an error and the connection
 * is closed.  A client gets its answer before the next line is read, so a
 * client that does not read its answers only ever costs one answer of
 * memory.
 *
 * Metrics: a minimal HTTP/1.0 and 1.1 server: "GET /metrics" (or HEAD)
 * answers 200 with Content-Type "text/plain; version=0.0.4" and the text
 * of ops->metrics; other paths 404, other methods 405, anything that is
 * not an HTTP request or is longer than CTL_MAX_HTTP_REQUEST 400.  The
 * connection is closed after each response.
 *
 * Every socket is non-blocking and registered with the su_root: a slow or
 * malicious client never blocks the SIP thread.  Idle clients are closed
 * (CTL_IDLE_SECONDS for the control socket, CTL_HTTP_IDLE_SECONDS for
 * HTTP) and the number of clients is capped (CTL_MAX_CLIENTS each).
 *
 * ctl knows nothing about the daemon: everything daemon-specific comes
 * through struct ctl_ops (see daemon_ops.h for sipnatd's).
 *
 * Threads: [sip] – every function here and every op runs on the thread
 * that runs the su_root.  Memory: struct ctl owns its sockets and clients;
 * the ops table and arg are borrowed until ctl_stop().  The cfg_control is
 * only read during ctl_start() (the path is copied): changing [control] on
 * reload needs a restart.
 */
#ifndef SIPNAT_CTL_H
#define SIPNAT_CTL_H

#include <stddef.h>

#include <jansson.h>
#include <sofia-sip/su_wait.h>

#include "sipnat/cfg.h"

#define CTL_MAX_REQUEST       (64 * 1024)
#define CTL_MAX_HTTP_REQUEST  8192
#define CTL_MAX_CLIENTS       32
#define CTL_IDLE_SECONDS      60
#define CTL_HTTP_IDLE_SECONDS 10

/* Operations the daemon offers.  Each returns 0 or a negative errno; the
 * json_t given is owned by ctl (add to it, do not keep it).  Any op may be
 * NULL when the daemon does not have it. */
struct ctl_ops {
	/* Adds the status fields to out (an object that already has "ok"). */
	int (*status)(void *arg, json_t *out);
	/* Appends one object per registration / call / TURN allocation. */
	int (*registrations)(void *arg, json_t *out_array);
	int (*calls)(void *arg, json_t *out_array);
	int (*turn)(void *arg, json_t *out_array);
	/* 0: reloaded; -errno: refused; 1: reloaded except some parts.  Unless
	 * 0, writes the reasons (one per line, "file:line: reason") to err. */
	int (*reload)(void *arg, char *err, size_t errlen);
	/* Stop taking new dialogs (503) without exiting. */
	int (*drain)(void *arg);
	/* -ENOENT when no call has this Call-ID, -EBUSY when it is not
	 * answered yet (no dialog for a BYE). */
	int (*hangup)(void *arg, const char *call_id);
	/* -EINVAL for a level name it does not know. */
	int (*loglevel)(void *arg, const char *level);
	/* Prometheus text in *text (malloc'd, the caller frees it). */
	int (*metrics)(void *arg, char **text, size_t *len);
};

struct ctl;

/* Opens the control socket at c->socket (unless NULL or "") with mode
 * c->socket_mode, creating its parent directory (0750) if missing and
 * replacing a stale socket file; refuses (-EADDRINUSE) when another
 * process answers on it, and (-EEXIST) when the path is not a socket.
 * Opens the metrics listener when c->metrics_port is not 0.  *out is NULL
 * when both are off.  Returns 0 or -errno after logging the reason. */
int ctl_start(struct ctl **out, su_root_t *root, const struct cfg_control *c,
              const struct ctl_ops *ops, void *arg);

/* Closes every socket and client and unlinks the socket file (if it is
 * still the one ctl_start created).  NULL is a no-op. */
void ctl_stop(struct ctl *c);

#endif
