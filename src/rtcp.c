/* rtcp: reception report blocks out of an RTCP datagram (RFC 3550 §6.4).
 *
 * Two passes over the datagram: the first proves the whole thing is well
 * formed (so that a datagram rejected half-way stores nothing), the second
 * copies the blocks out.  Both only read, with every offset checked against
 * the packet's own length before use.
 */
#include "config.h"

#include <errno.h>

#include "sipnat/rtcp.h"

#define HDR_LEN         4 /* V P RC/FMT PT length */
#define SSRC_LEN        4
#define SENDER_INFO_LEN 20 /* NTP(8) RTP ts(4) packet count(4) octet count(4) */
#define BLOCK_LEN       24

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Where the report blocks of an SR/RR start, relative to the packet. */
static inline size_t blocks_off(unsigned pt)
{
	return HDR_LEN + SSRC_LEN + (pt == RTCP_PT_SR ? SENDER_INFO_LEN : 0);
}

/* Checks one packet at p[0..avail) and returns its length in octets, or 0 if
 * it is not well formed.  *blocks gets the number of report blocks. */
static size_t packet_check(const uint8_t *p, size_t avail, unsigned *blocks)
{
	unsigned pt, rc;
	size_t len, payload;

	*blocks = 0;
	if (avail < HDR_LEN || (p[0] & 0xc0) != 0x80)
		return 0;
	pt = p[1];
	if (pt < 192 || pt > 223)
		return 0;
	/* length is in 32-bit words minus one (RFC 3550 §6.4.1) */
	len = ((size_t)((unsigned)p[2] << 8 | p[3]) + 1) * 4;
	if (len > avail)
		return 0;
	payload = len;
	if (p[0] & 0x20) {
		/* padding: only legal on the last packet (checked by the caller);
		 * the count includes itself and cannot eat the header */
		unsigned pad = p[len - 1];

		if (pad == 0 || pad > len - HDR_LEN)
			return 0;
		payload = len - pad;
	}
	if (pt == RTCP_PT_SR || pt == RTCP_PT_RR) {
		rc = p[0] & 0x1f;
		if (payload < blocks_off(pt) + (size_t)rc * BLOCK_LEN)
			return 0;
		*blocks = rc;
	}
	return len;
}

int rtcp_parse_reports(const uint8_t *p, size_t n, struct rtcp_block *out, unsigned max,
                       unsigned *count)
{
	size_t off, len;
	unsigned total = 0, nb, i, stored = 0;

	if ((!p && n) || (!out && max))
		return -EINVAL;
	if (n == 0)
		return -EBADMSG;
	for (off = 0; off < n; off += len) {
		len = packet_check(p + off, n - off, &nb);
		if (!len)
			return -EBADMSG;
		if ((p[off] & 0x20) && off + len != n)
			return -EBADMSG; /* padding before the last packet */
		total += nb;
	}
	for (off = 0; off < n && stored < max; off += len) {
		const uint8_t *q = p + off;
		unsigned pt = q[1];

		len = packet_check(q, n - off, &nb);
		for (i = 0; i < nb && stored < max; i++) {
			const uint8_t *b = q + blocks_off(pt) + (size_t)i * BLOCK_LEN;
			struct rtcp_block *o = &out[stored++];
			uint32_t cl = (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];

			o->reporter_ssrc = rd32(q + HDR_LEN);
			o->source_ssrc = rd32(b);
			o->fraction_lost = b[4];
			/* sign-extend the 24-bit two's complement field */
			o->cumulative_lost = (int32_t)(cl ^ 0x800000u) - 0x800000;
			o->ext_highest_seq = rd32(b + 8);
			o->jitter = rd32(b + 12);
			o->lsr = rd32(b + 16);
			o->dlsr = rd32(b + 20);
		}
	}
	if (count)
		*count = total;
	return 0;
}

/* RFC 3551 §6, tables 4 and 5; zero = unassigned or dynamic. */
static const unsigned static_clock[35] = {
        [0] = 8000,   [3] = 8000,   [4] = 8000,   [5] = 8000,   [6] = 16000,  [7] = 8000,
        [8] = 8000,   [9] = 8000,   [10] = 44100, [11] = 44100, [12] = 8000,  [13] = 8000,
        [14] = 90000, [15] = 8000,  [16] = 11025, [17] = 22050, [18] = 8000,  [25] = 90000,
        [26] = 90000, [28] = 90000, [31] = 90000, [32] = 90000, [33] = 90000, [34] = 90000,
};

unsigned rtcp_static_clock(unsigned pt)
{
	return pt < sizeof static_clock / sizeof static_clock[0] ? static_clock[pt] : 0;
}
