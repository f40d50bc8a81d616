/* cfg: the daemon's configuration, parsed from an INI file with inih.
 *
 * A struct cfg is immutable once cfg_load() has returned it: every thread may
 * read it without a lock.  A reload builds a new struct cfg and swaps the
 * pointer on the SIP thread; the old one is freed there once nothing borrows
 * it any more.
 *
 * Threads: [pure] – no globals, no I/O except reading the file given.
 * Memory: the caller owns the struct returned through *out and frees it with
 * cfg_free(); every string inside belongs to the struct.
 */
#ifndef SIPNAT_CFG_H
#define SIPNAT_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sipnat/natd.h"

#define CFG_MAX_LISTEN   16
#define CFG_MAX_UPSTREAM 8
#define CFG_MAX_DOMAIN   16
#define CFG_HOST_MAX     64

enum cfg_transport { CFG_TP_UDP, CFG_TP_TCP, CFG_TP_TLS };

struct cfg_listen {
	enum cfg_transport transport;
	/* Numeric IPv4 or IPv6 address without brackets; "0.0.0.0" or "::"
	 * means every local address. */
	char host[CFG_HOST_MAX];
	uint16_t port;
};

enum cfg_log_target { CFG_LOG_STDERR, CFG_LOG_SYSLOG };

enum cfg_keepalive { CFG_KA_OPTIONS, CFG_KA_CRLF, CFG_KA_OFF };

/* Levels follow syslog ordering so they can be handed to syslog(3). */
enum cfg_log_level {
	CFG_LOG_ERROR = 3,
	CFG_LOG_WARN = 4,
	CFG_LOG_INFO = 6,
	CFG_LOG_DEBUG = 7,
};

struct cfg_sip {
	struct cfg_listen listen[CFG_MAX_LISTEN];
	size_t n_listen;
	/* SIP URIs of the PBX or trunk, tried in order (failover). */
	char *upstream[CFG_MAX_UPSTREAM];
	size_t n_upstream;
	/* Domains a device may address besides the upstream hosts and our own
	 * addresses.  Anything else from a device is refused with 403. */
	char *domain[CFG_MAX_DOMAIN];
	size_t n_domain;
	/* Host written into Record-Route; NULL = the listening address. */
	char *advertise;
	char *tls_cert; /* PEM file; with tls_key enables tls listeners */
	char *tls_key;
	/* PEM CA certificates; set: upstreams reached over TLS must present a
	 * certificate they signed, for the upstream's host.  NULL: not
	 * verified. */
	char *tls_ca;
	/* Seconds without any response before the next upstream is tried. */
	unsigned failover_timeout;
	/* Seconds a graceful stop waits for open transactions. */
	unsigned shutdown_timeout;
	/* RFC 3261's 64*T1 in seconds: how long a transaction waits for any
	 * response (Timers B, F) and how long a finished one is kept to absorb
	 * retransmissions (Timers H, J). */
	unsigned transaction_timeout;
	/* NAT traversal for signaling. */
	unsigned nat_detect; /* NATD_* predicates applied */
	bool path;           /* Path (RFC 3327); false: rewrite Contact */
	enum cfg_keepalive keepalive;
	unsigned keepalive_interval; /* seconds between keepalives */
	unsigned keepalive_failures; /* unanswered OPTIONS before unreachable */
	char *state_dir;             /* saved registrations and flow secret */
	char *flow_secret;           /* NULL: generated and kept in state_dir */
};

enum cfg_relay_mode { CFG_RELAY_ALWAYS, CFG_RELAY_NAT, CFG_RELAY_NEVER };

#define CFG_MAX_RELAY_ADDR 4

struct cfg_relay {
	/* Public addresses written into SDP; at most one per family is used
	 * for calls.  Empty: [sip] advertise, else the first non-loopback
	 * local IPv4 address. */
	char addr[CFG_MAX_RELAY_ADDR][CFG_HOST_MAX];
	size_t n_addr;
	uint16_t port_min, port_max; /* RTP/RTCP port range, inclusive */
	unsigned threads;            /* relay loops; 0 = one per core */
	unsigned timeout;            /* media inactivity, seconds; 0 = never */
	bool strip_private_candidates;
	enum cfg_relay_mode mode;
};

struct cfg_control {
	char *socket;         /* UNIX control socket path; NULL or "" = off */
	bool socket_default;  /* socket is the built-in default (ctlpath.h) */
	unsigned socket_mode; /* permissions of the socket file */
	/* address:port of the Prometheus /metrics endpoint; n/a when empty */
	char metrics_host[CFG_HOST_MAX];
	uint16_t metrics_port; /* 0 = off */
};

/* [turn]: the STUN/TURN server (turn.h).  TURN is off when n_listen is 0. */
#define CFG_MAX_TURN_CIDR 32

struct cfg_turn_user {
	char *name;
	char *password;
};

struct cfg_turn {
	struct cfg_listen listen[CFG_MAX_LISTEN]; /* udp:, tcp:, tls: */
	size_t n_listen;
	char *realm;                 /* never NULL after cfg_defaults() */
	struct cfg_turn_user *users; /* static long-term credentials */
	size_t n_users;
	char *secret;         /* coturn use-auth-secret (TURN REST); NULL = off */
	char *tls_cert;       /* PEM; may hold the chain after the leaf */
	char *tls_key;        /* PEM */
	char *tls_priorities; /* GnuTLS priority string; NULL = built-in */
	/* Peers refused unless allowed (RFC 8656 §21.3 abuse). */
	struct natd_cidr denied[CFG_MAX_TURN_CIDR];
	size_t n_denied;
	struct natd_cidr allowed[CFG_MAX_TURN_CIDR];
	size_t n_allowed;
	unsigned quota_per_user;  /* allocations per user; 0 = unlimited */
	unsigned max_allocations; /* allocations in total; 0 = unlimited */
	unsigned bandwidth;       /* bytes/s per allocation, each way; 0 = unlimited */
	bool allow_anonymous;     /* TURN without credentials */
	unsigned nonce_lifetime;  /* seconds before 438 Stale Nonce */
};

struct cfg_log {
	enum cfg_log_level level;
	enum cfg_log_target target;
	char *call_log; /* JSON call records appended here; NULL = none */
};

struct cfg {
	char *path; /* file it came from, NULL for built-in defaults */
	struct cfg_sip sip;
	struct cfg_relay relay;
	struct cfg_control control;
	struct cfg_log log;
	struct cfg_turn turn;
};

/* Called once per problem found.  line is 0 for problems not tied to a line
 * (e.g. the file cannot be opened, or a required combination is missing). */
typedef void cfg_error_f(void *arg, const char *file, unsigned line, const char *reason);

/* Built-in defaults, documented in sipnat.conf(5).  Returns 0 or -ENOMEM. */
int cfg_defaults(struct cfg **out);

/* Parse path on top of the defaults.  Every problem is reported through
 * on_error (which may be NULL); parsing goes on after a problem so that all
 * of them are listed at once.  Returns 0 and sets *out on success, -EINVAL
 * when at least one problem was reported, -errno when the file cannot be
 * read, -ENOMEM.  *out is written only on success. */
int cfg_load(const char *path, struct cfg **out, cfg_error_f *on_error, void *arg);

/* Same as cfg_load() on a string; name is used in messages.  For tests and
 * for --check-config on standard input. */
int cfg_load_string(const char *text, const char *name, struct cfg **out, cfg_error_f *on_error,
                    void *arg);

void cfg_free(struct cfg *c);

/* Parse one "transport:address:port" listen item (IPv6 address in brackets).
 * Returns 0 or -EINVAL with a static reason in *why. */
int cfg_parse_listen(const char *item, struct cfg_listen *out, const char **why);

/* The default [turn] denied_peers list, space separated (sipnat.conf(5)). */
extern const char cfg_turn_default_denied[];

const char *cfg_transport_name(enum cfg_transport t);

/* [pure] True for a sips: URI or one with transport=tls. */
bool cfg_uri_is_tls(const char *uri);
const char *cfg_log_level_name(enum cfg_log_level l);

#endif
