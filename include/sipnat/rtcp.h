/* rtcp: reception report blocks out of an RTCP datagram (RFC 3550 §6.4).
 *
 * [pure] No allocation, no global state: callable from any thread, and
 * cheap enough for the relay's packet path (it only reads the datagram).
 *
 * What is accepted (everything is bounds-checked; network input never
 * asserts):
 *  - a compound packet (RFC 3550 §6.1) or a single / reduced-size one
 *    (RFC 5506): one or more RTCP packets back to back, each with version
 *    2, a packet type in 192..223 (the RTCP range of RFC 5761 §4) and a
 *    length field that stays inside the datagram; the lengths must add up to
 *    the datagram size exactly;
 *  - padding (P bit) only on the last packet, its count (last octet) at
 *    least 1 and inside that packet's payload (RFC 3550 §6.4.1, A.2);
 *  - SR (200) and RR (201): the header, sender info (SR) and RC report
 *    blocks must fit in the packet's length; profile extensions after the
 *    blocks are skipped.  Other packet types are skipped by length.
 * SRTCP (RFC 3711 §3.4) appends an index and an authentication tag after
 * the compound, so the exact-length rule refuses it: report blocks that are
 * encrypted are never read as numbers.
 */
#ifndef SIPNAT_RTCP_H
#define SIPNAT_RTCP_H

#include <stddef.h>
#include <stdint.h>

#define RTCP_PT_SR 200
#define RTCP_PT_RR 201

/* RC is 5 bits: at most 31 blocks per SR/RR packet (RFC 3550 §6.4.1). */
#define RTCP_RC_MAX 31

/* One reception report block, host byte order. */
struct rtcp_block {
	uint32_t reporter_ssrc;   /* SSRC of the SR/RR sender (who measured) */
	uint32_t source_ssrc;     /* SSRC_n: the stream the block is about */
	uint8_t fraction_lost;    /* since the previous report, in 1/256 */
	int32_t cumulative_lost;  /* signed 24-bit, sign-extended (duplicates
	                           * can make it negative, RFC 3550 §6.4.1) */
	uint32_t ext_highest_seq; /* extended highest sequence number received */
	uint32_t jitter;          /* interarrival jitter, RTP timestamp units */
	uint32_t lsr, dlsr;       /* last SR timestamp, delay since last SR */
};

/* [pure] Parse the datagram p[0..n) and store its report blocks, in packet
 * order, in out[0..max) (out may be NULL when max is 0).  *count (may be
 * NULL) receives the number of blocks in the datagram, which may exceed max:
 * only the first max are stored.  Nothing is stored on error.
 * Returns 0, -EINVAL (p NULL with n > 0, or out NULL with max > 0) or
 * -EBADMSG (not a well-formed RTCP datagram, see above). */
int rtcp_parse_reports(const uint8_t *p, size_t n, struct rtcp_block *out, unsigned max,
                       unsigned *count);

/* [pure] The RTP clock rate of a static payload type (RFC 3551 §6, table
 * 4 and 5), or 0 when pt is dynamic, reserved or unassigned.  G.722 answers
 * 8000: its RTP clock is 8 kHz although it samples at 16 kHz. */
unsigned rtcp_static_clock(unsigned pt);

#endif
