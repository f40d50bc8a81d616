/* sdpr: SDP inspection and rewriting for the media relay (RFC 8866, RFC 3264).
 *
 * The proxy calls sdpr_inspect() on an offer or answer to learn what each
 * m-line wants (family, mux, hold, ICE...), asks the relay for ports, then
 * calls sdpr_rewrite() so that every relayed stream points at the relay:
 * c= (session and media level), the m= port, a=rtcp (RFC 3605), a=rtcp-mux
 * (RFC 5761) and, for ICE streams, an injected "typ relay" candidate per
 * component (RFC 8839; see ice.h).  Everything else - a=crypto (RFC 4568),
 * a=fingerprint/a=setup (RFC 8122/4145), direction attributes, codecs and
 * unknown attributes - is passed through byte for byte, in order.
 *
 * The input may use CRLF or bare LF line ends; the output always uses CRLF
 * (RFC 8866 §5).  Stream index i in every array below is the i-th m-line,
 * counting from 0, disabled ones included.
 *
 * Threads: [pure] for every function: no globals, no I/O; the only state
 * carried across calls is the caller-owned struct sdpr_version.
 * Memory: inputs are borrowed for the duration of the call; sdpr_rewrite()
 * returns a malloc()ed buffer that the caller frees with free().
 */
#ifndef SIPNAT_SDPR_H
#define SIPNAT_SDPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SDPR_ADDR_MAX 64
/* Bodies larger than this are refused with -EMSGSIZE: a SIP body over UDP
 * cannot be this big, and it bounds the work one message can cause. */
#define SDPR_MAX_LEN 65536

enum sdpr_direction {
	SDPR_SENDRECV = 0,
	SDPR_SENDONLY,
	SDPR_RECVONLY,
	SDPR_INACTIVE,
};

/* What one m-line asks for, as written by the endpoint. */
struct sdpr_stream_info {
	unsigned index;
	char media[16]; /* m= media, "audio", "video"...; cut if longer */
	char proto[32]; /* m= proto, "RTP/AVP", "UDP/TLS/RTP/SAVPF"...; cut if longer */
	bool disabled;  /* m= port 0 (RFC 3264 §6): never relayed, never edited */
	/* Media-level direction attribute, else session-level, else sendrecv. */
	enum sdpr_direction direction;
	/* The effective c= is 0.0.0.0 (or ::): RFC 2543-style hold, which
	 * RFC 3264 §8.4 still asks us to understand. */
	bool hold_zero_addr;
	int family;                    /* AF_INET / AF_INET6 of the effective c= */
	char addr[SDPR_ADDR_MAX];      /* effective c= address (media, else session) */
	unsigned port;                 /* m= port */
	char rtcp_addr[SDPR_ADDR_MAX]; /* a=rtcp address, else addr */
	unsigned rtcp_port;            /* a=rtcp port, else port + 1 (RFC 3605 §2.1) */
	bool rtcp_attr;                /* an a=rtcp line is present */
	bool rtcp_mux;                 /* a=rtcp-mux is present (an offer or an acceptance) */
	bool ice;                      /* a=ice-ufrag (media or session level) or a=candidate */
	bool crypto;                   /* a=crypto (SDES-SRTP) */
	bool dtls;                     /* a=fingerprint (media or session level) */
};

struct sdpr_session_info {
	char origin_addr[SDPR_ADDR_MAX]; /* o= unicast-address as written */
	int origin_family;               /* AF_INET / AF_INET6 from o= addrtype */
	uint64_t origin_version;         /* o= sess-version */
	size_t n_streams;                /* number of m-lines in the SDP */
};

/* Parse sdp[0..len) (need not be NUL-terminated) and describe it.  Fills
 * *session (if not NULL) and streams[0..min(max, n_streams)).  Returns 0,
 * -EINVAL for malformed SDP or NULL sdp, -EMSGSIZE above SDPR_MAX_LEN,
 * -E2BIG when the SDP has more than max m-lines (session->n_streams and the
 * first max entries are still filled in), -ENOMEM. */
int sdpr_inspect(const char *sdp, size_t len, struct sdpr_session_info *session,
                 struct sdpr_stream_info *streams, size_t max);

/* Where one m-line's media must go now: the relay ports of this side. */
struct sdpr_media_target {
	int family;               /* AF_INET / AF_INET6: the c= we write */
	char addr[SDPR_ADDR_MAX]; /* relay address, an IP literal of family */
	unsigned rtp_port;        /* 1..65535 */
	unsigned rtcp_port;       /* == rtp_port when rtcp_mux */
	/* Keep a=rtcp-mux (if the endpoint wrote it) and offer no RTCP
	 * component; when false an a=rtcp-mux line is removed. */
	bool rtcp_mux;
	/* Do not relay this stream (e.g. a TCP stream the relay cannot carry):
	 * its lines are left alone, and it gets a media-level c= with its own
	 * address if the session-level c= changes under it. */
	bool passthrough;
};

/* Caller-owned state that keeps o= versions stable across re-rewrites.
 * Keep one per dialog and direction, zero-initialised before first use.
 * RFC 3264 §8 wants the version to stay the same when the SDP we send is
 * unchanged and to grow by exactly one when it changes; without this state
 * sdpr only sees the endpoint's version, which is not enough when the relay
 * ports change under an unchanged endpoint SDP. */
struct sdpr_version {
	bool valid;       /* false until the first successful rewrite */
	uint64_t version; /* the o= version we last sent */
	uint64_t digest;  /* hash of what we last sent, o= version excluded */
};

struct sdpr_options {
	/* Add a=candidate ... typ relay for each ICE stream (default true). */
	bool ice_relay_candidates;
	/* Remove host candidates whose address is private (ice.h's
	 * ice_addr_is_private()): they can only work on the endpoint's LAN
	 * and make the far end waste checks on them (default false). */
	bool strip_private_candidates;
	/* NULL: the o= version becomes the input's plus one whenever the
	 * output differs from the input.  Otherwise: the version we last sent
	 * when the output is the same as last time, else that plus one; the
	 * state is updated on success. */
	struct sdpr_version *version;
};

/* Defaults as documented on each field above. */
void sdpr_options_init(struct sdpr_options *opt);

/* Rewrite sdp[0..len) so that each stream i (not disabled, not
 * passthrough) points at targets[i].  n_targets must be at least the number
 * of m-lines; targets of disabled streams are ignored.  opt NULL means
 * sdpr_options_init() defaults.  On success *out is a NUL-terminated,
 * malloc()ed SDP with CRLF line ends (caller frees it with free()) and
 * *out_len its length without the NUL.  Returns 0, -EINVAL for malformed SDP
 * or a bad target (family/address mismatch, port 0 or > 65535), -ERANGE
 * when n_targets is smaller than the number of m-lines, -EMSGSIZE above
 * SDPR_MAX_LEN, -EOVERFLOW when the o= version cannot be incremented,
 * -ENOMEM.  *out and *out_len are written only on success. */
int sdpr_rewrite(const char *sdp, size_t len, const struct sdpr_media_target *targets,
                 size_t n_targets, const struct sdpr_options *opt, char **out, size_t *out_len);

#endif
