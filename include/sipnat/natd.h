/* natd: NAT detection for SIP messages, as independent predicates.
 *
 * A SIP element behind NAT gives itself away in several ways: the top Via
 * names an address or port other than the one the packet came from, or the
 * Contact, Via or SDP carry addresses that cannot be routed on the public
 * Internet.  Each of these is one bit below; a deployment chooses which ones
 * to trust (config key nat_detect), and natd_test() says which of the chosen
 * ones fired for one message.
 *
 * The module knows nothing about Sofia's parser: the proxy copies the few
 * fields it needs into a struct natd_input.  That keeps it pure and lets the
 * tests drive it with plain strings.
 *
 * Threads: [pure] for every function: no globals, no I/O, no allocation.
 * Memory: nothing is allocated; every pointer passed in is borrowed for the
 * duration of the call only.
 */
#ifndef SIPNAT_NATD_H
#define SIPNAT_NATD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Top Via sent-by host is a name, or an address other than the source
 * address of the packet (RFC 3261 §18.2.1, the "received" rule). */
#define NATD_VIA_ADDR 0x01u
/* Top Via port (5060, or 5061 for TLS, when absent) differs from the source
 * port of the packet (RFC 3581 §4, the "rport" rule). */
#define NATD_VIA_PORT 0x02u
/* At least one Contact host is a private address literal. */
#define NATD_CONTACT_PRIV 0x04u
/* Top Via sent-by host is a private address literal. */
#define NATD_VIA_PRIV 0x08u
/* A session- or media-level SDP c= address is a private address literal. */
#define NATD_SDP_PRIV 0x10u
/* The packet itself came from a private address. */
#define NATD_SRC_PRIV 0x20u

#define NATD_ALL     0x3fu
#define NATD_DEFAULT (NATD_VIA_ADDR | NATD_VIA_PORT | NATD_CONTACT_PRIV | NATD_SDP_PRIV)

/* ---- address classification ---- */

/* True for addresses that are not reachable from the public Internet:
 * IPv4 0.0.0.0/8, 10/8, 100.64/10 (RFC 6598), 127/8, 169.254/16, 172.16/12,
 * 192.168/16 (RFC 1918); IPv6 ::/128, ::1/128, fc00::/7 (RFC 4193),
 * fe80::/10; and the IPv4-mapped IPv6 form (::ffff:a.b.c.d) of every IPv4
 * range.  False for NULL and for families other than AF_INET/AF_INET6. */
bool natd_addr_is_private(const struct sockaddr *sa);

/* Same for a textual host as found in a SIP URI, Via or SDP: an IPv4
 * literal, or an IPv6 literal with or without brackets (a zone, "%eth0" or
 * URI-encoded "%25eth0", is ignored).  A host name is never private: we do
 * not resolve names here.  False for NULL. */
bool natd_host_is_private(const char *host);

/* An address prefix, e.g. for TURN's denied peers.  Fields are set by
 * natd_cidr_parse() and are read-only for callers. */
struct natd_cidr {
	int family;             /* AF_INET or AF_INET6, as written */
	unsigned prefix;        /* 0..32 or 0..128, as written */
	unsigned char addr[16]; /* network address, host bits cleared; IPv4 uses addr[0..3] */
};

/* Parse "a.b.c.d/n", "x::y/n" or a bare address (a host route, /32 or
 * /128).  Host bits set in the address are cleared ("10.1.2.3/8" is 10/8).
 * No blanks, brackets or zones are accepted.  Returns 0 or -EINVAL; *out is
 * written only on success. */
int natd_cidr_parse(const char *text, struct natd_cidr *out);

/* True if sa lies in c.  IPv4 and IPv4-mapped IPv6 are one address space:
 * 10.0.0.0/8 matches ::ffff:10.1.2.3, and ::ffff:0:0/96 matches every IPv4
 * address, because a dual-stack socket reports IPv4 peers in mapped form.
 * False for NULL arguments and unknown families. */
bool natd_cidr_match(const struct natd_cidr *c, const struct sockaddr *sa);

/* ---- predicates ---- */

/* What the proxy extracted from one request or response.  Any pointer may be
 * NULL (or a count 0): a predicate whose input is missing does not fire.  In
 * particular via_host NULL means "no Via", and neither VIA_ADDR nor VIA_PORT
 * fires; src NULL silences VIA_ADDR, VIA_PORT and SRC_PRIV.  SDP_PRIV ignores
 * the unspecified addresses 0.0.0.0 and :: (RFC 3264 §8.4 hold). */
struct natd_input {
	const struct sockaddr *src; /* where the packet came from */
	const char *via_host;       /* top Via sent-by host, brackets allowed */
	unsigned via_port;          /* top Via sent-by port; 0 = absent */
	const char *via_transport;  /* "UDP", "TCP", "TLS"...: picks the default port */
	const char *const *contact_hosts;
	size_t n_contact_hosts;
	const char *const *sdp_hosts; /* c= addresses, e.g. from natd_sdp_hosts() */
	size_t n_sdp_hosts;
};

/* Returns the predicates among `which` that fire for in (0 if in is NULL).
 * Predicates not in `which` are not evaluated. */
unsigned natd_test(const struct natd_input *in, unsigned which);

/* Collect the connection addresses of an SDP body: the address of every
 * "c=IN IP4 <addr>" and "c=IN IP6 <addr>" line, session and media level, in
 * order, without any multicast "/ttl/count" suffix.  The body need not be
 * NUL-terminated; lines may end in CRLF, LF or CR; only sdp[0..len) is read.
 * Each address is copied, NUL-terminated, into buf and hosts[i] points to the
 * copy.  *n is always set to the number of hosts stored.  Returns 0 when all
 * were stored, -ENOSPC when some did not fit in hosts[max] or buf (the *n
 * stored ones are still valid), -EINVAL for NULL hosts/buf/n, or NULL sdp with len > 0.
 * The unspecified address is returned like any other; natd_test() skips it. */
int natd_sdp_hosts(const char *sdp, size_t len, const char **hosts, size_t max, char *buf,
                   size_t bufsize, size_t *n);

/* ---- configuration and logging ---- */

/* Parse a nat_detect value: names separated by blanks and/or commas, case
 * insensitive: via_addr, via_port, contact_private, via_private,
 * sdp_private, source_private, all, default, none.  The result is the union
 * of the names; "none" must stand alone.  Returns 0 and sets *mask, or
 * -EINVAL with *bad_word (if bad_word is not NULL) pointing at the offending
 * word inside text (its length is strcspn(*bad_word, " \t,")), or at text
 * itself when it holds no word at all. */
int natd_parse_list(const char *text, unsigned *mask, const char **bad_word);

/* Write the names of the bits of mask, comma separated, in the order of the
 * NATD_* values ("via_port,contact_private"), or "none" for 0; unknown bits
 * are ignored.  buf is always NUL-terminated when len > 0.  Returns 0,
 * -ENOSPC if the text was cut short, -EINVAL if buf is NULL or len is 0. */
int natd_describe(unsigned mask, char *buf, size_t len);

#endif
