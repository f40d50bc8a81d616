/* ice: ICE candidate lines (RFC 8839 §5.1) and the relay-candidate policy.
 *
 * The proxy never runs ICE itself.  It only has to read the candidates an
 * endpoint offers and add one candidate of type "relay" per component that
 * points at our media relay, so that an ICE peer still sees the c=/m= default
 * destination among the candidates (RFC 8839 §4.2.1: otherwise it would
 * report ice-mismatch) and so that a direct path, when one works, wins over
 * the relay (RFC 8445 §5.1.2.2: relay gets the lowest type preference).
 *
 * Everything here works on text: an attribute value in, a struct out, and
 * back.  sdpr_rewrite() uses it to inject candidates; see sdpr.h.
 *
 * Threads: [pure] for every function: no globals, no I/O, no allocation.
 * Memory: nothing is allocated; pointers passed in are borrowed for the
 * duration of the call only.
 */
#ifndef SIPNAT_ICE_H
#define SIPNAT_ICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 8445 §5.1.2.2 recommended type preferences. */
#define ICE_TYPE_PREF_HOST  126u
#define ICE_TYPE_PREF_PRFLX 110u
#define ICE_TYPE_PREF_SRFLX 100u
#define ICE_TYPE_PREF_RELAY 0u

/* Local preference used for the candidates we inject: we offer exactly one
 * relay address per component, so there is nothing to rank among them. */
#define ICE_LOCAL_PREF_MAX 65535u

#define ICE_FOUNDATION_MAX 32 /* RFC 8839 §5.1: foundation = 1*32ice-char */
#define ICE_ADDR_MAX       64 /* IPv4, IPv6 or a (mDNS) host name, NUL included */
#define ICE_EXT_MAX        256

/* One parsed candidate.  Strings are NUL-terminated copies. */
struct ice_candidate {
	char foundation[ICE_FOUNDATION_MAX + 1];
	unsigned component; /* 1..256; 1 = RTP, 2 = RTCP */
	char transport[8];  /* as written: "udp", "UDP", "tcp"... */
	uint32_t priority;
	char addr[ICE_ADDR_MAX];
	unsigned port;            /* 0..65535 */
	char type[8];             /* "host", "srflx", "prflx", "relay" or another token */
	char raddr[ICE_ADDR_MAX]; /* "" when the candidate has no raddr */
	unsigned rport;
	bool has_rport;
	/* Extension attributes after the fixed part ("generation 0 tcptype
	 * active ..."), verbatim, single-space separated; "" when none. */
	char ext[ICE_EXT_MAX];
};

/* Parse the value of an a=candidate attribute, i.e. the text after
 * "a=candidate:" (a leading "candidate:" is accepted and skipped, as trickle
 * ICE fragments carry it).  value is NUL-terminated and holds no line end.
 * Returns 0, or -EINVAL when a mandatory field is missing or malformed
 * (foundation not 1..32 ice-chars, component not 1..256, priority not a
 * 32-bit number, port > 65535, missing "typ", "raddr"/"rport" without a
 * value...), or -E2BIG when a field does not fit its buffer.  *out is
 * written only on success. */
int ice_parse_candidate(const char *value, struct ice_candidate *out);

/* Write c as an a=candidate value (no "a=candidate:" prefix, no line end)
 * into buf.  Returns 0, -EINVAL for NULL arguments or an empty mandatory
 * field, or -ENOSPC when buf is too small (buf then holds "" if len > 0). */
int ice_format_candidate(const struct ice_candidate *c, char *buf, size_t len);

/* RFC 8445 §5.1.2.1: priority = 2^24 * type_pref + 2^8 * local_pref +
 * (256 - component).  Out-of-range arguments are clamped to the ranges the
 * RFC allows (type_pref 0..126, local_pref 0..65535, component 1..256) so
 * the result always fits the formula's 32 bits. */
uint32_t ice_priority(unsigned type_pref, unsigned local_pref, unsigned component);

/* True when addr (an IP literal as found in a candidate) cannot be reached
 * from the public Internet: the ranges of natd_host_is_private(), plus mDNS
 * host names ("*.local", draft-ietf-mmusic-mdns-ice-candidates), which only
 * resolve on the endpoint's own link. */
bool ice_addr_is_private(const char *addr);

/* Choose a foundation not among taken[0..n_taken) (entries may be NULL):
 * "rly1", "rly2"... the first free one, so the result is deterministic.
 * Foundations are per agent, not per m-line (RFC 8445 §5.1.1.3), so callers
 * pass every foundation of the whole SDP.  Returns 0, -EINVAL for NULL
 * buf, or -ENOSPC when buf is too small. */
int ice_pick_foundation(const char *const *taken, size_t n_taken, char *buf, size_t len);

/* Fill *out with a relay candidate for one component: transport udp, type
 * relay, priority ice_priority(ICE_TYPE_PREF_RELAY, ICE_LOCAL_PREF_MAX,
 * component), raddr/rport = the endpoint's own address and port as the
 * SDP gave them (RFC 8839 §5.1: the related address of a relayed candidate).
 * raddr may be NULL or "" to omit raddr/rport.  Returns 0 or -EINVAL (bad
 * foundation, component, port or address) or -E2BIG. */
int ice_relay_candidate(const char *foundation, unsigned component, const char *addr, unsigned port,
                        const char *raddr, unsigned rport, struct ice_candidate *out);

#endif
