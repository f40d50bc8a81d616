/* Unit tests for rtcp: crafted SR/RR/compound datagrams, well formed and
 * not.  Packets are built octet by octet here (not by the code under test),
 * so a wrong offset or sign in the parser shows up as a wrong value. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sipnat/rtcp.h"

struct pkt {
	uint8_t b[1500];
	size_t n;
};

static void put8(struct pkt *p, unsigned v)
{
	ck_assert_uint_lt(p->n, sizeof p->b);
	p->b[p->n++] = (uint8_t)v;
}

static void put32(struct pkt *p, uint32_t v)
{
	put8(p, v >> 24);
	put8(p, (v >> 16) & 0xff);
	put8(p, (v >> 8) & 0xff);
	put8(p, v & 0xff);
}

/* Header with the length field patched by end_packet(). */
static size_t begin_packet(struct pkt *p, unsigned pt, unsigned rc, uint32_t ssrc)
{
	size_t start = p->n;

	put8(p, 0x80 | rc);
	put8(p, pt);
	put8(p, 0);
	put8(p, 0);
	put32(p, ssrc);
	return start;
}

static void end_packet(struct pkt *p, size_t start)
{
	size_t words = (p->n - start) / 4 - 1;

	ck_assert_uint_eq((p->n - start) % 4, 0);
	p->b[start + 2] = (uint8_t)(words >> 8);
	p->b[start + 3] = (uint8_t)words;
}

static void sender_info(struct pkt *p)
{
	put32(p, 0xe1234567); /* NTP msw */
	put32(p, 0x89abcdef); /* NTP lsw */
	put32(p, 160000);     /* RTP ts */
	put32(p, 1000);       /* packets */
	put32(p, 172000);     /* octets */
}

static void block(struct pkt *p, uint32_t ssrc, unsigned frac, uint32_t cum24, uint32_t seq,
                  uint32_t jitter)
{
	put32(p, ssrc);
	put8(p, frac);
	put8(p, (cum24 >> 16) & 0xff);
	put8(p, (cum24 >> 8) & 0xff);
	put8(p, cum24 & 0xff);
	put32(p, seq);
	put32(p, jitter);
	put32(p, 0x45670000); /* LSR */
	put32(p, 65536 / 2);  /* DLSR: 0.5 s */
}

/* SDES with one CNAME item "a@b" (RFC 3550 §6.5), padded to 32 bits. */
static void sdes(struct pkt *p, uint32_t ssrc)
{
	size_t s = begin_packet(p, 202, 1, ssrc);

	put8(p, 1);
	put8(p, 3);
	put8(p, 'a');
	put8(p, '@');
	put8(p, 'b');
	put8(p, 0);
	put8(p, 0);
	put8(p, 0);
	end_packet(p, s);
}

static struct pkt rr_one(void)
{
	struct pkt p = {.n = 0};
	size_t s = begin_packet(&p, RTCP_PT_RR, 1, 0x11111111);

	block(&p, 0x22222222, 64, 0x000123, 0x00010005, 480);
	end_packet(&p, s);
	return p;
}

/* SR with two blocks + SDES: the usual compound of a sending endpoint. */
static struct pkt sr_compound(void)
{
	struct pkt p = {.n = 0};
	size_t s = begin_packet(&p, RTCP_PT_SR, 2, 0xaaaa0001);

	sender_info(&p);
	block(&p, 0xbbbb0001, 0, 0, 100, 12);
	block(&p, 0xbbbb0002, 255, 0xfffffe, 200, 0x80000001u);
	end_packet(&p, s);
	sdes(&p, 0xaaaa0001);
	return p;
}

START_TEST(rr_single_block)
{
	struct pkt p = rr_one();
	struct rtcp_block b[4];
	unsigned n = 99;

	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 4, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(b[0].reporter_ssrc, 0x11111111);
	ck_assert_uint_eq(b[0].source_ssrc, 0x22222222);
	ck_assert_uint_eq(b[0].fraction_lost, 64);
	ck_assert_int_eq(b[0].cumulative_lost, 0x123);
	ck_assert_uint_eq(b[0].ext_highest_seq, 0x00010005);
	ck_assert_uint_eq(b[0].jitter, 480);
	ck_assert_uint_eq(b[0].lsr, 0x45670000);
	ck_assert_uint_eq(b[0].dlsr, 32768);
}
END_TEST

START_TEST(sr_compound_two_blocks)
{
	struct pkt p = sr_compound();
	struct rtcp_block b[4];
	unsigned n = 0;

	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 4, &n), 0);
	ck_assert_uint_eq(n, 2);
	/* the sender info is skipped, not read as a block */
	ck_assert_uint_eq(b[0].reporter_ssrc, 0xaaaa0001);
	ck_assert_uint_eq(b[0].source_ssrc, 0xbbbb0001);
	ck_assert_uint_eq(b[0].jitter, 12);
	ck_assert_uint_eq(b[1].source_ssrc, 0xbbbb0002);
	ck_assert_uint_eq(b[1].fraction_lost, 255);
	ck_assert_int_eq(b[1].cumulative_lost, -2); /* 24-bit two's complement */
	ck_assert_uint_eq(b[1].jitter, 0x80000001u);
}
END_TEST

START_TEST(count_beyond_max)
{
	struct pkt p = sr_compound();
	struct rtcp_block b[2];
	unsigned n = 0;

	memset(b, 0xee, sizeof b);
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 1, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(b[0].source_ssrc, 0xbbbb0001);
	ck_assert_uint_eq(b[1].source_ssrc, 0xeeeeeeee); /* untouched */
	/* counting only */
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, NULL, 0, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, NULL, 1, &n), -EINVAL);
	ck_assert_int_eq(rtcp_parse_reports(NULL, 4, NULL, 0, &n), -EINVAL);
}
END_TEST

/* Packets other than SR/RR (SDES, BYE, APP, feedback) carry no blocks and
 * are fine on their own (reduced-size RTCP, RFC 5506). */
START_TEST(non_report_packets)
{
	struct pkt p = {.n = 0};
	size_t s;
	unsigned n = 7;

	sdes(&p, 1);
	s = begin_packet(&p, 203, 1, 1); /* BYE */
	end_packet(&p, s);
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, NULL, 0, &n), 0);
	ck_assert_uint_eq(n, 0);
	/* an RR with RC 0 (receiver that got nothing yet) */
	p.n = 0;
	s = begin_packet(&p, RTCP_PT_RR, 0, 5);
	end_packet(&p, s);
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, NULL, 0, &n), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

/* Profile-specific extension words after the blocks are allowed. */
START_TEST(extension_after_blocks)
{
	struct pkt p = {.n = 0};
	struct rtcp_block b[1];
	size_t s = begin_packet(&p, RTCP_PT_RR, 1, 9);
	unsigned n = 0;

	block(&p, 10, 1, 2, 3, 4);
	put32(&p, 0xdeadbeef);
	end_packet(&p, s);
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 1, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(b[0].jitter, 4);
}
END_TEST

START_TEST(padding_on_last_packet)
{
	struct pkt p = rr_one();
	struct rtcp_block b[1];
	size_t s;
	unsigned n = 0;

	/* SDES + 4 octets of padding, P set on the SDES (the last packet) */
	s = p.n;
	sdes(&p, 0x11111111);
	put8(&p, 0);
	put8(&p, 0);
	put8(&p, 0);
	put8(&p, 4);
	end_packet(&p, s);
	p.b[s] |= 0x20;
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 1, &n), 0);
	ck_assert_uint_eq(n, 1);

	/* a padding count of 0, or one that eats the header, is refused */
	p.b[p.n - 1] = 0;
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 1, &n), -EBADMSG);
	p.b[p.n - 1] = 200;
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 1, &n), -EBADMSG);
}
END_TEST

START_TEST(padding_not_last_refused)
{
	struct pkt p = {.n = 0};
	size_t s = begin_packet(&p, RTCP_PT_RR, 0, 7);
	unsigned n;

	/* an RR with one extension word whose last octet is a valid padding
	 * count: fine as the only packet... */
	put32(&p, 0x00000004);
	end_packet(&p, s);
	p.b[0] |= 0x20;
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, NULL, 0, &n), 0);
	/* ...but not with a packet after it (RFC 3550 §6.4.1) */
	sdes(&p, 7);
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, NULL, 0, &n), -EBADMSG);
}
END_TEST

/* Padding that hides the last block: RC says 1 but after removing the
 * padding the block no longer fits. */
START_TEST(padding_eats_block)
{
	struct pkt p = rr_one();
	unsigned n;

	p.b[0] |= 0x20;
	p.b[p.n - 1] = 4; /* last DLSR octet read as a padding count */
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, NULL, 0, &n), -EBADMSG);
}
END_TEST

START_TEST(malformed_headers)
{
	struct pkt p;
	struct rtcp_block b[2], keep[2];
	unsigned n = 42;

	memset(b, 0x5a, sizeof b);
	memcpy(keep, b, sizeof b);

	p = rr_one();
	p.b[0] = (p.b[0] & 0x3f) | 0x40; /* version 1 */
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 2, &n), -EBADMSG);

	p = rr_one();
	p.b[1] = 0; /* an RTP packet with PT 0 */
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 2, &n), -EBADMSG);
	p.b[1] = 191;
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 2, &n), -EBADMSG);
	p.b[1] = 224;
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 2, &n), -EBADMSG);

	p = rr_one();
	p.b[0] = 0x80 | 2; /* RC 2, room for 1 */
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 2, &n), -EBADMSG);
	p.b[0] = 0x80 | 31;
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 2, &n), -EBADMSG);

	p = rr_one();
	p.b[3]++; /* length one word beyond the datagram */
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 2, &n), -EBADMSG);
	p.b[2] = 0xff;
	p.b[3] = 0xff;
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 2, &n), -EBADMSG);

	/* trailing octets after the last packet (what SRTCP's index and tag
	 * look like) */
	p = rr_one();
	put32(&p, 0x80000001);
	put32(&p, 0x12345678);
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 2, &n), -EBADMSG);
	p.n -= 6; /* 2 stray octets: no room for a header */
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, b, 2, &n), -EBADMSG);

	ck_assert_int_eq(rtcp_parse_reports(p.b, 0, b, 2, &n), -EBADMSG);
	ck_assert_int_eq(rtcp_parse_reports(p.b, 3, b, 2, &n), -EBADMSG);

	/* nothing was stored by any of the refused datagrams */
	ck_assert_int_eq(memcmp(b, keep, sizeof b), 0);
	ck_assert_uint_eq(n, 42);
}
END_TEST

/* An SR whose length covers the header and SSRC but not the sender info
 * must not be read as an RR. */
START_TEST(sr_without_sender_info)
{
	struct pkt p = {.n = 0};
	size_t s = begin_packet(&p, RTCP_PT_SR, 0, 1);
	unsigned n;

	put32(&p, 0);
	end_packet(&p, s); /* 12 octets, sender info needs 28 */
	ck_assert_int_eq(rtcp_parse_reports(p.b, p.n, NULL, 0, &n), -EBADMSG);
}
END_TEST

/* Every truncation of a valid compound is refused, except those that end
 * exactly on a packet boundary (which are valid compounds themselves). */
START_TEST(every_truncation)
{
	struct pkt p = sr_compound();
	struct rtcp_block b[4];
	size_t sr_len = ((size_t)(p.b[2] << 8 | p.b[3]) + 1) * 4, k;
	unsigned n;

	for (k = 0; k < p.n; k++) {
		int want = k == sr_len ? 0 : -EBADMSG;

		ck_assert_msg(rtcp_parse_reports(p.b, k, b, 4, &n) == want, "length %zu", k);
	}
}
END_TEST

/* Random octets behind a valid first header: never a crash (run under the
 * sanitizers), and anything accepted has a consistent block count. */
START_TEST(random_garbage)
{
	struct pkt p;
	struct rtcp_block b[RTCP_RC_MAX];
	unsigned i, n, seed = 12345, ok = 0;

	for (i = 0; i < 20000; i++) {
		size_t len = (size_t)(rand_r(&seed) % 200), k;

		for (k = 0; k < len; k++)
			p.b[k] = (uint8_t)rand_r(&seed);
		if (len >= 2 && (i & 1)) {
			p.b[0] = 0x80 | (p.b[0] & 0x3f);
			p.b[1] = (uint8_t)(200 + (p.b[1] & 1));
		}
		if (rtcp_parse_reports(p.b, len, b, RTCP_RC_MAX, &n) == 0) {
			ok++;
			ck_assert_uint_le((size_t)n * 24, len);
		}
	}
	(void)ok;
}
END_TEST

START_TEST(static_clock)
{
	ck_assert_uint_eq(rtcp_static_clock(0), 8000);
	ck_assert_uint_eq(rtcp_static_clock(8), 8000);
	ck_assert_uint_eq(rtcp_static_clock(9), 8000); /* G.722 */
	ck_assert_uint_eq(rtcp_static_clock(18), 8000);
	ck_assert_uint_eq(rtcp_static_clock(6), 16000);
	ck_assert_uint_eq(rtcp_static_clock(10), 44100);
	ck_assert_uint_eq(rtcp_static_clock(34), 90000);
	ck_assert_uint_eq(rtcp_static_clock(1), 0);
	ck_assert_uint_eq(rtcp_static_clock(96), 0);
	ck_assert_uint_eq(rtcp_static_clock(200), 0);
}
END_TEST

static void add(Suite *s, const char *name, const TTest *t)
{
	TCase *tc = tcase_create(name);

	tcase_add_test(tc, t);
	suite_add_tcase(s, tc);
}

int main(void)
{
	Suite *s = suite_create("rtcp");
	SRunner *sr;
	int failed;

	add(s, "rr_single_block", rr_single_block);
	add(s, "sr_compound_two_blocks", sr_compound_two_blocks);
	add(s, "count_beyond_max", count_beyond_max);
	add(s, "non_report_packets", non_report_packets);
	add(s, "extension_after_blocks", extension_after_blocks);
	add(s, "padding_on_last_packet", padding_on_last_packet);
	add(s, "padding_not_last_refused", padding_not_last_refused);
	add(s, "padding_eats_block", padding_eats_block);
	add(s, "malformed_headers", malformed_headers);
	add(s, "sr_without_sender_info", sr_without_sender_info);
	add(s, "every_truncation", every_truncation);
	add(s, "random_garbage", random_garbage);
	add(s, "static_clock", static_clock);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
