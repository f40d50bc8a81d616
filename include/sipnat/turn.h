/* turn: STUN Binding (RFC 8489) and TURN (RFC 8656) server on the relay
 * loops, over UDP, TCP and TLS (gtls.h).
 *
 * Threads.  turn_start(), turn_stop() and turn_reload() are called by the
 * daemon's SIP thread, never by a relay loop.  Everything else the server
 * does runs on the relay's loops: each loop owns one UDP socket and one TCP
 * listening socket per configured listener, all bound to the same address
 * with SO_REUSEPORT, so the kernel spreads clients over the loops and keeps
 * a client's 5-tuple on one loop; an allocation, its relayed socket, its
 * permissions and channels live and die on that loop and need no lock.
 * Shared between loops: the configuration (read-only after start), the
 * per-user allocation counts (one mutex), the TLS credentials (a mutex
 * around a reference-counted pointer, swapped by turn_reload()) and the
 * counters (relaxed atomics).
 *
 * Reading allocations from another thread (`sipnatctl turn`, on the SIP
 * thread): the loop-owned struct alloc is never touched.  Each allocation
 * has a directory entry that its loop fills before linking it into one
 * list under the directory mutex (when it answers the Allocate) and
 * unlinks under that mutex (then frees) only in the relayed socket's
 * close callback.  The fields that change afterwards (expiry on Refresh,
 * packet counts) are relaxed atomics the loop stores without the lock.
 * turn_foreach_alloc() holds the mutex for the whole walk, so an entry
 * cannot be freed under it; a loop therefore waits for the walk only when
 * an allocation opens or closes, never to relay a packet.
 *
 * Relayed addresses are the relay's public address ([relay] address) with
 * a port pair taken from the relay's pool, the same pool as SIP media.
 *
 * Safety (RFC 8656 §21): a peer address is refused with 403 (permission,
 * channel) or dropped (Send indication) when it is one of sipnatd's own
 * endpoints (our addresses with a TURN/SIP listening port or a relay port:
 * always), or, unless it matches allowed_peers, when it is one of our
 * addresses or lies in denied_peers.  Requests that carry no valid
 * credentials are rate-limited per source address (TURN_RL_RATE/BURST).
 *
 * Errors: 0 or a negative errno.
 */
#ifndef SIPNAT_TURN_H
#define SIPNAT_TURN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sipnat/cfg.h"
#include "sipnat/natd.h"

struct relay;
struct turn;

#define TURN_NONCE_KEY_LEN    32
#define TURN_NONCE_MAX        64
#define TURN_PERM_LIFETIME    300 /* RFC 8656 §9 */
#define TURN_CHAN_LIFETIME    600 /* RFC 8656 §12 */
#define TURN_DEFAULT_LIFETIME 600 /* RFC 8656 §7.2 */
#define TURN_MAX_LIFETIME     3600
/* Unauthenticated requests (Binding, and TURN requests answered 401/438)
 * per source address: a token bucket of TURN_RL_BURST refilled at
 * TURN_RL_RATE per second; beyond it requests are dropped unanswered. */
#define TURN_RL_RATE  20
#define TURN_RL_BURST 60
#define TURN_RL_SLOTS 1024

/* Process-wide counters (relaxed atomics summed on read). */
struct turn_counters {
	uint64_t binding;     /* Binding success responses */
	uint64_t allocations; /* currently open */
	uint64_t alloc_ok;    /* Allocate successes */
	uint64_t refresh_ok, perm_ok, chanbind_ok;
	uint64_t err_400, err_401, err_403, err_420, err_437, err_438, err_440;
	uint64_t err_441, err_442, err_486, err_508;
	uint64_t ratelimited;     /* requests dropped by the per-source limit */
	uint64_t peer_denied;     /* 403s and dropped Send/ChannelData to denied peers */
	uint64_t no_permission;   /* packets dropped: no permission/channel */
	uint64_t bandwidth_drops; /* packets dropped by the per-allocation cap */
	uint64_t to_peer_packets, to_peer_bytes;
	uint64_t to_client_packets, to_client_bytes;
	uint64_t tls_handshakes, tls_failures;
	uint64_t tcp_connections; /* accepted TCP and TLS connections */
};

/* [sip] Start listening on cfg->turn.listen on every loop of relay (which
 * must stay running until turn_stop()).  Copies what it needs from cfg
 * (the TURN section, the SIP listeners and relay addresses for the own-
 * endpoint check).  *tp is set only on success.  Errors: -EINVAL (no
 * listener, bad certificate, ...), socket errors (-EADDRINUSE ...). */
int turn_start(struct turn **tp, const struct cfg *cfg, struct relay *relay);

/* [sip] Close every allocation, connection and listener, and wait until
 * the loops have closed their handles.  Must be called before
 * relay_stop().  NULL is a no-op. */
void turn_stop(struct turn *t);

/* [sip] SIGHUP: load tls_cert/tls_key/tls_priorities from cfg again.  New
 * TLS connections use the new certificate; existing connections and every
 * allocation stay.  On error the old certificate stays.  Other [turn]
 * changes need a restart. */
int turn_reload(struct turn *t, const struct cfg *cfg);

/* [any] */
void turn_get_counters(struct turn *t, struct turn_counters *out);

/* One allocation as `sipnatctl turn` shows it.  Pointers are valid during
 * the callback only. */
struct turn_alloc_info {
	const char *user; /* "" when anonymous */
	bool anon;
	enum cfg_transport transport; /* how the client reaches us */
	const struct sockaddr *client, *relayed;
	long age, expires_in; /* seconds */
	uint64_t to_peer_packets, to_client_packets;
};

/* [any] Calls fn for every open allocation, under a mutex the loops take
 * only when an allocation opens or closes: fn must be quick and must not
 * call back into the TURN server.  NULL t: no call. */
void turn_foreach_alloc(struct turn *t, void (*fn)(void *arg, const struct turn_alloc_info *a),
                        void *arg);

/* ---- pure helpers (exposed for the unit tests) ---- */

/* [pure] coturn's use-auth-secret / TURN REST API password:
 * base64(HMAC-SHA1(secret, username)), NUL-terminated, into out (at least
 * 29 bytes).  -ENOBUFS, -EIO. */
int turn_rest_password(const char *secret, const char *user, size_t user_len, char *out,
                       size_t outlen);

/* [pure] Is the REST username ("expiry:name", expiry in Unix seconds; a
 * bare number also works) still valid at now?  0 = valid,
 * -EKEYEXPIRED = expired, -EINVAL = not of that form. */
int turn_rest_valid(const char *user, size_t user_len, int64_t now);

/* [pure] A nonce for src at time now (seconds), bound to src's IP and
 * authenticated with key: 16 characters of time + 16 of MAC, in out
 * (NUL-terminated, at least TURN_NONCE_MAX bytes).  Stateless, so it is
 * valid on every loop. */
int turn_nonce_make(const uint8_t key[TURN_NONCE_KEY_LEN], int64_t now, const struct sockaddr *src,
                    char *out, size_t outlen);
/* [pure] 0 = ours, for src, and not older than lifetime seconds;
 * -ESTALE = ours but expired (438); -EBADMSG = not ours. */
int turn_nonce_check(const uint8_t key[TURN_NONCE_KEY_LEN], int64_t now, unsigned lifetime,
                     const struct sockaddr *src, const char *nonce, size_t len);

/* Which peers may be reached (see the top of the file).  All borrowed. */
struct turn_policy {
	const struct natd_cidr *denied;
	size_t n_denied;
	const struct natd_cidr *allowed;
	size_t n_allowed;
	const struct sockaddr_storage *own; /* our addresses (ports ignored) */
	size_t n_own;
	const uint16_t *own_ports; /* TURN and SIP listening ports */
	size_t n_own_ports;
	uint16_t relay_min, relay_max; /* relay pool, inclusive; 0 0 = none */
};

/* [pure] 0 if peer may be reached, -EPERM if not.  with_port = false
 * for CreatePermission (RFC 8656 §9: the port is ignored), which then
 * skips the own-endpoint test that needs a port. */
int turn_peer_check(const struct turn_policy *p, const struct sockaddr *peer, bool with_port);

/* Per-source token buckets for unauthenticated requests; one per loop
 * ([loop] state, no lock).  Collisions share a bucket: memory is bounded
 * and an attacker can only make a limit stricter. */
struct turn_rl {
	struct {
		uint8_t ip[16];
		uint32_t tokens_milli;
		uint64_t last_ms;
	} slot[TURN_RL_SLOTS];
};

/* [pure on rl] true = allowed (a token taken), false = over the limit. */
bool turn_rl_take(struct turn_rl *rl, const struct sockaddr *src, uint64_t now_ms);

#endif
