/* Unit tests for relay: real loops (2 threads) on loopback.
 *
 * The "parties" are plain UDP sockets of the test.  The relay reports
 * 127.0.0.1 and takes ports from a test-private range (41000-41299); the
 * parties use fixed ports 41900+ so that RTP/RTCP pairs are consecutive.
 * SDP addresses of NATed parties are RFC 5737 documentation addresses,
 * which the relay must never send to.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sipnat/relay.h"

/* ---- event collector (events arrive on relay loop threads) ---- */

#define MAXEV 256
#define MAXST 8

struct tev {
	enum relay_event_type type;
	uint64_t sid;
	int side, mline, component;
	struct sockaddr_storage addr;
	unsigned nstreams;
	struct relay_stream_stats st[MAXST];
};

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ev_cond = PTHREAD_COND_INITIALIZER;
static struct tev evs[MAXEV];
static unsigned nev;

static void on_event(void *arg, const struct relay_event *ev)
{
	struct tev *t;
	unsigned i;

	(void)arg;
	pthread_mutex_lock(&ev_lock);
	if (nev < MAXEV) {
		t = &evs[nev++];
		memset(t, 0, sizeof(*t));
		t->type = ev->type;
		t->sid = ev->sid;
		t->side = ev->side;
		t->mline = ev->mline;
		t->component = ev->component;
		if (ev->addr)
			memcpy(&t->addr, ev->addr,
			       ev->addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
			                                      : sizeof(struct sockaddr_in6));
		t->nstreams = ev->nstreams;
		for (i = 0; i < ev->nstreams && i < MAXST; i++)
			t->st[i] = ev->streams[i];
	}
	pthread_cond_broadcast(&ev_cond);
	pthread_mutex_unlock(&ev_lock);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait for the first not-yet-consumed event of type for sid; copy it out and
 * mark it consumed.  Returns false on timeout. */
static bool wait_ev(enum relay_event_type type, uint64_t sid, unsigned ms, struct tev *out)
{
	uint64_t end = now_ms() + ms;
	bool found = false;
	unsigned i;

	pthread_mutex_lock(&ev_lock);
	while (!found) {
		for (i = 0; i < nev; i++) {
			if (evs[i].type == type && evs[i].sid == sid) {
				if (out)
					*out = evs[i];
				evs[i].type = 0; /* consumed */
				found = true;
				break;
			}
		}
		if (found)
			break;
		uint64_t n = now_ms();
		if (n >= end)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&ev_cond, &ev_lock, &ts);
	}
	pthread_mutex_unlock(&ev_lock);
	return found;
}

static unsigned count_ev(enum relay_event_type type, uint64_t sid)
{
	unsigned i, n = 0;

	pthread_mutex_lock(&ev_lock);
	for (i = 0; i < nev; i++)
		if (evs[i].type == type && evs[i].sid == sid)
			n++;
	pthread_mutex_unlock(&ev_lock);
	return n;
}

/* ---- helpers ---- */

static struct relay_config base_cfg(void)
{
	struct relay_config c;

	memset(&c, 0, sizeof(c));
	c.threads = 2;
	c.port_min = 41000;
	c.port_max = 41099;
	c.timeout_sec = 0;
	c.relatch_silence_ms = 300;
	strcpy(c.addr4, "127.0.0.1");
	return c;
}

static struct relay *start(const struct relay_config *c)
{
	struct relay *r = NULL;

	nev = 0;
	ck_assert_int_eq(relay_start(&r, c, on_event, NULL), 0);
	ck_assert_ptr_nonnull(r);
	return r;
}

static struct sockaddr_in sin4(const char *ip, unsigned port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	ck_assert_int_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	return a;
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
	ck_assert_int_eq(ss->ss_family, AF_INET);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* A party's UDP socket on ip:port (port 0 = ephemeral). */
static int party(const char *ip, unsigned port)
{
	struct sockaddr_in a = sin4(ip, port);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_msg(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind %s:%u: %s", ip, port,
	              strerror(errno));
	return fd;
}

static unsigned local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	return ntohs(a.sin_port);
}

static void send_to(int fd, const struct sockaddr_storage *dst, const void *p, size_t n)
{
	ck_assert_int_eq(
	        sendto(fd, p, n, 0, (const struct sockaddr *)dst, sizeof(struct sockaddr_in)),
	        (ssize_t)n);
}

/* Receive one datagram within ms; returns its length or -1; *from_port set. */
static ssize_t recv_within(int fd, void *buf, size_t n, unsigned ms, unsigned *from_port)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	struct sockaddr_in a;
	socklen_t l = sizeof(a);
	ssize_t r;

	if (poll(&p, 1, (int)ms) != 1)
		return -1;
	r = recvfrom(fd, buf, n, 0, (struct sockaddr *)&a, &l);
	if (r >= 0 && from_port)
		*from_port = ntohs(a.sin_port);
	return r;
}

/* All earlier calls on sid applied by its loop (mailbox FIFO). */
static void barrier(struct relay *r, uint64_t sid, struct tev *out)
{
	ck_assert_int_eq(relay_session_query(r, sid), 0);
	ck_assert(wait_ev(RELAY_EV_STATS, sid, 2000, out));
}

static const uint8_t RTP[12] = {0x80, 0x00, 0x12, 0x34};
static const uint8_t RTCP[8] = {0x80, 200, 0x00, 0x01};

/* ---- tests ---- */

START_TEST(alloc_pairs_in_range)
{
	struct relay_config c = base_cfg();
	struct relay *r = start(&c);
	struct relay_addr a[4], again, mux;
	uint64_t sid;
	unsigned i, j;

	ck_assert_int_eq(relay_session_open(r, &sid), 0);
	ck_assert_uint_ne(sid, 0);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(relay_stream_alloc(r, sid, (int)(i & 1), (int)(i / 2), AF_INET,
		                                    false, &a[i]),
		                 0);
		unsigned p = port_of(&a[i].rtp);

		ck_assert_uint_eq(p % 2, 0);
		ck_assert_uint_eq(port_of(&a[i].rtcp), p + 1);
		ck_assert_uint_ge(p, c.port_min);
		ck_assert_uint_le(p + 1, c.port_max);
		ck_assert_uint_eq(((struct sockaddr_in *)&a[i].rtp)->sin_addr.s_addr,
		                  htonl(INADDR_LOOPBACK));
		for (j = 0; j < i; j++)
			ck_assert_uint_ne(port_of(&a[j].rtp), p);
	}
	/* re-INVITE keeps its ports, whatever the mux wish now */
	ck_assert_int_eq(relay_stream_alloc(r, sid, 1, 0, AF_INET, true, &again), 0);
	ck_assert_uint_eq(port_of(&again.rtp), port_of(&a[1].rtp));
	ck_assert_uint_eq(port_of(&again.rtcp), port_of(&a[1].rtcp));

	/* mux: one port reported twice */
	ck_assert_int_eq(relay_stream_alloc(r, sid, 0, 2, AF_INET, true, &mux), 0);
	ck_assert_uint_eq(port_of(&mux.rtcp), port_of(&mux.rtp));
	ck_assert_uint_eq(port_of(&mux.rtp) % 2, 0);
	/* ...and asking it for a separate RTCP port later is refused */
	ck_assert_int_eq(relay_stream_alloc(r, sid, 0, 2, AF_INET, false, &again), -EEXIST);
	ck_assert_int_eq(relay_stream_alloc(r, sid, 0, 0, AF_INET6, false, &again), -EAFNOSUPPORT);
	ck_assert_int_eq(relay_stream_alloc(r, sid, 2, 0, AF_INET, false, &again), -EINVAL);
	ck_assert_int_eq(relay_stream_alloc(r, sid + 1000, 0, 0, AF_INET, false, &again), -ENOENT);

	struct relay_counters k;
	relay_get_counters(r, &k);
	ck_assert_uint_eq(k.port_pairs_used, 5);
	ck_assert_uint_eq(k.port_pairs_total, 50);
	ck_assert_uint_eq(k.sessions, 1);
	relay_stop(r);
}
END_TEST

START_TEST(pool_exhaustion_and_return)
{
	struct relay_config c = base_cfg();
	struct relay *r;
	struct relay_addr a;
	struct relay_counters k;
	struct tev ev;
	uint64_t s1, s2;
	int i;

	c.port_min = 41100;
	c.port_max = 41107; /* 4 pairs */
	r = start(&c);
	ck_assert_int_eq(relay_session_open(r, &s1), 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(relay_stream_alloc(r, s1, 0, i, AF_INET, i == 3, &a), 0);
	ck_assert_int_eq(relay_session_open(r, &s2), 0);
	ck_assert_int_eq(relay_stream_alloc(r, s2, 0, 0, AF_INET, false, &a), -ENOSPC);
	ck_assert_int_eq(relay_stream_alloc(r, s2, 0, 0, AF_INET, true, &a), -ENOSPC);
	relay_get_counters(r, &k);
	ck_assert_uint_eq(k.pool_exhausted, 2);
	ck_assert_uint_eq(k.port_pairs_used, 4);

	ck_assert_int_eq(relay_session_close(r, s1), 0);
	ck_assert_int_eq(relay_session_close(r, s1), -ENOENT);
	ck_assert(wait_ev(RELAY_EV_CLOSED, s1, 3000, &ev));
	ck_assert_uint_eq(ev.nstreams, 4);
	/* The final figures still name each stream's relay port (the call
	 * log prints them) although the ports are back in the pool. */
	for (i = 0; i < 4; i++) {
		ck_assert_uint_ge(ev.st[i].rtp_port, 41100);
		ck_assert_uint_le(ev.st[i].rtp_port, 41107);
	}
	relay_get_counters(r, &k);
	ck_assert_uint_eq(k.port_pairs_used, 0);
	ck_assert_uint_eq(k.sessions, 1);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(relay_stream_alloc(r, s2, 1, i, AF_INET, false, &a), 0);
	relay_stop(r);
}
END_TEST

START_TEST(port_in_use_is_skipped)
{
	struct relay_config c = base_cfg();
	struct relay *r;
	struct relay_addr a;
	struct relay_counters k;
	uint64_t sid;
	int squat;

	c.port_min = 41200;
	c.port_max = 41205;                /* 3 pairs */
	squat = party("127.0.0.1", 41200); /* someone else holds the first even port */
	r = start(&c);
	ck_assert_int_eq(relay_session_open(r, &sid), 0);
	ck_assert_int_eq(relay_stream_alloc(r, sid, 0, 0, AF_INET, false, &a), 0);
	ck_assert_uint_eq(port_of(&a.rtp), 41202);
	relay_get_counters(r, &k);
	ck_assert_uint_ge(k.ports_skipped, 1);
	relay_stop(r);
	close(squat);
}
END_TEST

/* Two non-NATed parties on 127.0.0.1: RTP and RTCP both ways, from the
 * relay port the other party was given (symmetric RTP). */
START_TEST(forward_both_ways)
{
	struct relay_config c = base_cfg();
	struct relay *r = start(&c);
	struct relay_addr ra, rb;
	struct relay_counters k;
	struct sockaddr_in sa, sb;
	uint8_t buf[64];
	unsigned from;
	uint64_t sid;
	struct tev ev;
	int a = party("127.0.0.1", 41900), a2 = party("127.0.0.1", 41901);
	int b = party("127.0.0.1", 41910), b2 = party("127.0.0.1", 41911);

	ck_assert_int_eq(relay_session_open(r, &sid), 0);
	ck_assert_int_eq(relay_stream_alloc(r, sid, RELAY_SIDE_A, 0, AF_INET, false, &ra), 0);
	ck_assert_int_eq(relay_stream_alloc(r, sid, RELAY_SIDE_B, 0, AF_INET, false, &rb), 0);
	sa = sin4("127.0.0.1", 41900);
	sb = sin4("127.0.0.1", 41910);
	ck_assert_int_eq(relay_stream_remote(r, sid, 0, 0, (struct sockaddr *)&sa,
	                                     (struct sockaddr *)&sa, 0),
	                 0);
	/* a packet from A before B is known cannot go anywhere */
	barrier(r, sid, NULL);
	send_to(a, &ra.rtp, RTP, sizeof(RTP));
	ck_assert_int_eq(recv_within(b, buf, sizeof(buf), 200, NULL), -1);

	ck_assert_int_eq(relay_stream_remote(r, sid, 1, 0, (struct sockaddr *)&sb,
	                                     (struct sockaddr *)&sb, 0),
	                 0);
	barrier(r, sid, NULL);

	send_to(a, &ra.rtp, RTP, sizeof(RTP));
	ck_assert_int_eq(recv_within(b, buf, sizeof(buf), 1000, &from), sizeof(RTP));
	ck_assert_uint_eq(from, port_of(&rb.rtp));
	ck_assert_int_eq(memcmp(buf, RTP, sizeof(RTP)), 0);

	send_to(b, &rb.rtp, RTP, sizeof(RTP));
	ck_assert_int_eq(recv_within(a, buf, sizeof(buf), 1000, &from), sizeof(RTP));
	ck_assert_uint_eq(from, port_of(&ra.rtp));

	send_to(a2, &ra.rtcp, RTCP, sizeof(RTCP));
	ck_assert_int_eq(recv_within(b2, buf, sizeof(buf), 1000, &from), sizeof(RTCP));
	ck_assert_uint_eq(from, port_of(&rb.rtcp));
	send_to(b2, &rb.rtcp, RTCP, sizeof(RTCP));
	ck_assert_int_eq(recv_within(a2, buf, sizeof(buf), 1000, &from), sizeof(RTCP));
	ck_assert_uint_eq(from, port_of(&ra.rtcp));

	/* hold on B: A's media is no longer sent to B */
	ck_assert_int_eq(relay_stream_remote(r, sid, 1, 0, NULL, (struct sockaddr *)&sb, 0), 0);
	barrier(r, sid, NULL);
	send_to(a, &ra.rtp, RTP, sizeof(RTP));
	ck_assert_int_eq(recv_within(b, buf, sizeof(buf), 200, NULL), -1);

	barrier(r, sid, &ev);
	ck_assert_uint_eq(ev.nstreams, 2);
	for (unsigned i = 0; i < 2; i++) {
		if (ev.st[i].side == 0) {
			ck_assert_uint_eq(ev.st[i].packets_in, 4); /* 3 RTP + 1 RTCP */
			ck_assert_uint_eq(ev.st[i].packets_out, 2);
			ck_assert_uint_eq(ev.st[i].dropped_no_remote, 2);
		} else {
			ck_assert_uint_eq(ev.st[i].packets_in, 2);
			ck_assert_uint_eq(ev.st[i].packets_out, 2);
		}
	}
	relay_get_counters(r, &k);
	ck_assert_uint_eq(k.rx_packets, 6);
	ck_assert_uint_eq(k.fwd_packets, 4);
	ck_assert_uint_eq(k.fwd_bytes, 2 * sizeof(RTP) + 2 * sizeof(RTCP));
	ck_assert_uint_eq(k.dropped_no_remote, 2);
	ck_assert_uint_eq(k.dropped_foreign, 0);
	relay_stop(r);
	close(a);
	close(a2);
	close(b);
	close(b2);
}
END_TEST

/* Safe symmetric latching: side A NATed, signalled from 127.0.0.5. */
START_TEST(latching_refuses_bleed)
{
	struct relay_config c = base_cfg();
	struct relay *r;
	struct relay_addr ra, rb;
	struct relay_counters k;
	struct sockaddr_in sdp_a, sig_a, sb;
	uint8_t buf[64];
	unsigned from;
	uint64_t sid;
	struct tev ev;
	int genuine = party("127.0.0.5", 0), other_ip = party("127.0.0.6", 0),
	    same_ip = party("127.0.0.5", 0), b = party("127.0.0.1", 41920);

	c.relatch_silence_ms = 400;
	r = start(&c);
	ck_assert_int_eq(relay_session_open(r, &sid), 0);
	ck_assert_int_eq(relay_stream_alloc(r, sid, 0, 0, AF_INET, true, &ra), 0);
	ck_assert_int_eq(relay_stream_alloc(r, sid, 1, 0, AF_INET, true, &rb), 0);
	sdp_a = sin4("192.0.2.10", 4000); /* private view of A: never used */
	sig_a = sin4("127.0.0.5", 5060);
	sb = sin4("127.0.0.1", 41920);
	ck_assert_int_eq(relay_stream_remote(r, sid, 0, 0, (struct sockaddr *)&sdp_a,
	                                     (struct sockaddr *)&sig_a,
	                                     RELAY_NATED | RELAY_RTCP_MUX),
	                 0);
	ck_assert_int_eq(relay_stream_remote(r, sid, 1, 0, (struct sockaddr *)&sb,
	                                     (struct sockaddr *)&sb, RELAY_RTCP_MUX),
	                 0);
	barrier(r, sid, NULL);

	/* B talks first: A has not latched, nothing may go anywhere */
	send_to(b, &rb.rtp, RTP, sizeof(RTP));
	ck_assert_int_eq(recv_within(genuine, buf, sizeof(buf), 200, NULL), -1);

	/* attacker from another IP, first: dropped, counted, not latched */
	send_to(other_ip, &ra.rtp, RTP, sizeof(RTP));
	ck_assert_int_eq(recv_within(b, buf, sizeof(buf), 200, NULL), -1);
	relay_get_counters(r, &k);
	ck_assert_uint_eq(k.dropped_foreign, 1);

	/* genuine: latches and is forwarded */
	send_to(genuine, &ra.rtp, RTP, sizeof(RTP));
	ck_assert_int_eq(recv_within(b, buf, sizeof(buf), 1000, &from), sizeof(RTP));
	ck_assert_uint_eq(from, port_of(&rb.rtp));
	ck_assert(wait_ev(RELAY_EV_LATCHED, sid, 1000, &ev));
	ck_assert_int_eq(ev.side, 0);
	ck_assert_int_eq(ev.component, 1);
	ck_assert_uint_eq(port_of(&ev.addr), local_port(genuine));

	/* B's media now reaches A at its NAT mapping */
	send_to(b, &rb.rtp, RTP, sizeof(RTP));
	ck_assert_int_eq(recv_within(genuine, buf, sizeof(buf), 1000, &from), sizeof(RTP));
	ck_assert_uint_eq(from, port_of(&ra.rtp));

	/* the other IP stays refused, and so does the same IP on another
	 * port while the latched one is active */
	send_to(other_ip, &ra.rtp, RTP, sizeof(RTP));
	send_to(same_ip, &ra.rtp, RTP, sizeof(RTP));
	ck_assert_int_eq(recv_within(b, buf, sizeof(buf), 200, NULL), -1);
	relay_get_counters(r, &k);
	ck_assert_uint_eq(k.dropped_foreign, 3);
	send_to(b, &rb.rtp, RTP, sizeof(RTP));
	ck_assert_int_eq(recv_within(genuine, buf, sizeof(buf), 1000, NULL), sizeof(RTP));
	ck_assert_int_eq(recv_within(same_ip, buf, sizeof(buf), 100, NULL), -1);

	/* after relatch_silence without the latched address: same IP, new
	 * port is a NAT rebinding and is believed... */
	usleep(600 * 1000);
	send_to(same_ip, &ra.rtp, RTP, sizeof(RTP));
	ck_assert_int_eq(recv_within(b, buf, sizeof(buf), 1000, NULL), sizeof(RTP));
	send_to(b, &rb.rtp, RTP, sizeof(RTP));
	ck_assert_int_eq(recv_within(same_ip, buf, sizeof(buf), 1000, NULL), sizeof(RTP));
	ck_assert_int_eq(recv_within(genuine, buf, sizeof(buf), 100, NULL), -1);
	/* ...but a silent period never lets another IP in */
	usleep(600 * 1000);
	send_to(other_ip, &ra.rtp, RTP, sizeof(RTP));
	ck_assert_int_eq(recv_within(b, buf, sizeof(buf), 200, NULL), -1);

	barrier(r, sid, &ev);
	for (unsigned i = 0; i < ev.nstreams; i++) {
		if (ev.st[i].side != 0)
			continue;
		ck_assert_uint_eq(ev.st[i].dropped_foreign, 4);
		ck_assert_uint_eq(ev.st[i].packets_in, 2);
		ck_assert_uint_eq(port_of(&ev.st[i].latched_rtp), local_port(same_ip));
	}
	ck_assert_uint_eq(count_ev(RELAY_EV_LATCHED, sid), 1); /* the first was consumed */
	relay_stop(r);
	close(genuine);
	close(other_ip);
	close(same_ip);
	close(b);
}
END_TEST

/* A mux party (one socket) talks to a non-mux party (two sockets): RTP and
 * RTCP are told apart by the RFC 5761 rule. */
START_TEST(rtcp_mux_to_non_mux)
{
	struct relay_config c = base_cfg();
	struct relay *r = start(&c);
	struct relay_addr ra, rb;
	struct sockaddr_in sa, sb;
	uint8_t buf[64];
	unsigned from;
	uint64_t sid;
	int a = party("127.0.0.1", 41930);
	int b = party("127.0.0.1", 41940), b2 = party("127.0.0.1", 41941);

	ck_assert_int_eq(relay_session_open(r, &sid), 0);
	ck_assert_int_eq(relay_stream_alloc(r, sid, 0, 0, AF_INET, true, &ra), 0);
	ck_assert_int_eq(relay_stream_alloc(r, sid, 1, 0, AF_INET, false, &rb), 0);
	sa = sin4("127.0.0.1", 41930);
	sb = sin4("127.0.0.1", 41940);
	ck_assert_int_eq(relay_stream_remote(r, sid, 0, 0, (struct sockaddr *)&sa,
	                                     (struct sockaddr *)&sa, RELAY_RTCP_MUX),
	                 0);
	ck_assert_int_eq(relay_stream_remote(r, sid, 1, 0, (struct sockaddr *)&sb,
	                                     (struct sockaddr *)&sb, 0),
	                 0);
	barrier(r, sid, NULL);

	send_to(a, &ra.rtp, RTP, sizeof(RTP));
	ck_assert_int_eq(recv_within(b, buf, sizeof(buf), 1000, &from), sizeof(RTP));
	ck_assert_uint_eq(from, port_of(&rb.rtp));
	send_to(a, &ra.rtp, RTCP, sizeof(RTCP));
	ck_assert_int_eq(recv_within(b2, buf, sizeof(buf), 1000, &from), sizeof(RTCP));
	ck_assert_uint_eq(from, port_of(&rb.rtcp));
	ck_assert_int_eq(recv_within(b, buf, sizeof(buf), 100, NULL), -1);

	send_to(b2, &rb.rtcp, RTCP, sizeof(RTCP));
	ck_assert_int_eq(recv_within(a, buf, sizeof(buf), 1000, &from), sizeof(RTCP));
	ck_assert_uint_eq(from, port_of(&ra.rtp));
	send_to(b, &rb.rtp, RTP, sizeof(RTP));
	ck_assert_int_eq(recv_within(a, buf, sizeof(buf), 1000, &from), sizeof(RTP));
	ck_assert_uint_eq(from, port_of(&ra.rtp));
	relay_stop(r);
	close(a);
	close(b);
	close(b2);
}
END_TEST

/* Inactivity: no TIMEOUT while media flows, one TIMEOUT once it stops. */
START_TEST(timeout_after_media_stops)
{
	struct relay_config c = base_cfg();
	struct relay *r;
	struct relay_addr ra;
	struct sockaddr_in sa;
	uint64_t sid, idle_sid, t0;
	int a = party("127.0.0.1", 41950);

	c.timeout_sec = 1;
	r = start(&c);
	ck_assert_int_eq(relay_session_open(r, &sid), 0);
	ck_assert_int_eq(relay_session_open(r, &idle_sid), 0);
	ck_assert_int_eq(relay_stream_alloc(r, sid, 0, 0, AF_INET, true, &ra), 0);
	sa = sin4("127.0.0.1", 41950);
	ck_assert_int_eq(relay_stream_remote(r, sid, 0, 0, (struct sockaddr *)&sa,
	                                     (struct sockaddr *)&sa, 0),
	                 0);
	barrier(r, sid, NULL);
	t0 = now_ms();
	while (now_ms() - t0 < 2500) {
		send_to(a, &ra.rtp, RTP, sizeof(RTP));
		usleep(100 * 1000);
	}
	ck_assert_uint_eq(count_ev(RELAY_EV_TIMEOUT, sid), 0);
	/* the session without any media timed out meanwhile (since creation) */
	ck_assert_uint_eq(count_ev(RELAY_EV_TIMEOUT, idle_sid), 1);
	ck_assert(wait_ev(RELAY_EV_TIMEOUT, sid, 3000, NULL));
	usleep(1200 * 1000);
	ck_assert_uint_eq(count_ev(RELAY_EV_TIMEOUT, sid), 0); /* once, not repeated */
	relay_stop(r);
	close(a);
}
END_TEST

/* relay_session_rearm(): a session that timed out (a call ringing longer
 * than the timeout) is reported again one timeout after the rearm (the
 * answer) when still no packet came, and not before. */
START_TEST(timeout_rearmed)
{
	struct relay_config c = base_cfg();
	struct relay *r;
	uint64_t sid, t0;

	c.timeout_sec = 1;
	r = start(&c);
	ck_assert_int_eq(relay_session_open(r, &sid), 0);
	ck_assert(wait_ev(RELAY_EV_TIMEOUT, sid, 3000, NULL));
	usleep(1200 * 1000);
	ck_assert_uint_eq(count_ev(RELAY_EV_TIMEOUT, sid), 0); /* once, until... */
	t0 = now_ms();
	ck_assert_int_eq(relay_session_rearm(r, sid), 0);
	ck_assert(wait_ev(RELAY_EV_TIMEOUT, sid, 3000, NULL)); /* ...the rearm */
	ck_assert_uint_ge(now_ms() - t0, 900);                 /* counted from it */
	ck_assert_int_eq(relay_session_rearm(r, 12345), -ENOENT);
	relay_stop(r);
}
END_TEST

/* relay_stop() closes what is left, with a CLOSED event each; run with
 * --enable-sanitizers so that LeakSanitizer checks nothing is left. */
START_TEST(stop_closes_everything)
{
	struct relay_config c = base_cfg();
	struct relay *r = start(&c);
	struct relay_addr ra;
	struct sockaddr_in sa;
	uint64_t sid[6];
	int a = party("127.0.0.1", 41960);
	unsigned i, closed = 0;

	sa = sin4("127.0.0.1", 41960);
	for (i = 0; i < 6; i++) {
		ck_assert_int_eq(relay_session_open(r, &sid[i]), 0);
		ck_assert_int_eq(relay_stream_alloc(r, sid[i], 0, 0, AF_INET, i & 1, &ra), 0);
		ck_assert_int_eq(relay_stream_alloc(r, sid[i], 1, 0, AF_INET, false, &ra), 0);
		ck_assert_int_eq(relay_stream_remote(r, sid[i], 0, 0, (struct sockaddr *)&sa,
		                                     (struct sockaddr *)&sa, 0),
		                 0);
		send_to(a, &ra.rtp, RTP, sizeof(RTP)); /* sits in a kernel queue */
	}
	ck_assert_int_eq(relay_session_close(r, sid[0]), 0);
	ck_assert_int_eq(relay_session_close(r, sid[1]), 0);
	relay_stop(r); /* also while messages may still be in flight */
	for (i = 0; i < 6; i++)
		closed += count_ev(RELAY_EV_CLOSED, sid[i]);
	ck_assert_uint_eq(closed, 6);
	close(a);
	/* every port is free again: a new relay gets the same first pair */
	r = start(&c);
	ck_assert_int_eq(relay_session_open(r, &sid[0]), 0);
	ck_assert_int_eq(relay_stream_alloc(r, sid[0], 0, 0, AF_INET, false, &ra), 0);
	ck_assert_uint_eq(port_of(&ra.rtp), 41000);
	relay_stop(r);
}
END_TEST

/* IPv6: its own public address, V6ONLY sockets, same forwarding. */
START_TEST(forward_ipv6)
{
	struct relay_config c = base_cfg();
	struct relay *r;
	struct relay_addr ra, rb, r4;
	struct sockaddr_in6 sa, sb;
	uint8_t buf[64];
	uint64_t sid;
	int a, b;
	socklen_t l = sizeof(sa);

	strcpy(c.addr6, "::1");
	r = start(&c);
	memset(&sa, 0, sizeof(sa));
	sa.sin6_family = AF_INET6;
	sa.sin6_addr = in6addr_loopback;
	sb = sa;
	a = socket(AF_INET6, SOCK_DGRAM, 0);
	b = socket(AF_INET6, SOCK_DGRAM, 0);
	ck_assert_int_eq(bind(a, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(bind(b, (struct sockaddr *)&sb, sizeof(sb)), 0);
	ck_assert_int_eq(getsockname(a, (struct sockaddr *)&sa, &l), 0);
	l = sizeof(sb);
	ck_assert_int_eq(getsockname(b, (struct sockaddr *)&sb, &l), 0);

	ck_assert_int_eq(relay_session_open(r, &sid), 0);
	ck_assert_int_eq(relay_stream_alloc(r, sid, 0, 0, AF_INET6, true, &ra), 0);
	ck_assert_int_eq(relay_stream_alloc(r, sid, 1, 0, AF_INET6, true, &rb), 0);
	ck_assert_int_eq(ra.rtp.ss_family, AF_INET6);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ra.rtp)->sin6_addr));
	/* an IPv4 remote for an IPv6 stream is refused */
	struct sockaddr_in v4 = sin4("192.0.2.1", 4000);
	ck_assert_int_eq(relay_stream_remote(r, sid, 0, 0, (struct sockaddr *)&v4,
	                                     (struct sockaddr *)&v4, 0),
	                 -EAFNOSUPPORT);
	ck_assert_int_eq(relay_stream_remote(r, sid, 0, 0, (struct sockaddr *)&sa,
	                                     (struct sockaddr *)&sa, RELAY_NATED),
	                 0);
	ck_assert_int_eq(relay_stream_remote(r, sid, 1, 0, (struct sockaddr *)&sb,
	                                     (struct sockaddr *)&sb, 0),
	                 0);
	barrier(r, sid, NULL);
	ck_assert_int_eq(sendto(a, RTP, sizeof(RTP), 0, (struct sockaddr *)&ra.rtp, sizeof(sa)),
	                 (ssize_t)sizeof(RTP));
	ck_assert_int_eq(recv_within(b, buf, sizeof(buf), 1000, NULL), sizeof(RTP));
	ck_assert_int_eq(sendto(b, RTP, sizeof(RTP), 0, (struct sockaddr *)&rb.rtp, sizeof(sb)),
	                 (ssize_t)sizeof(RTP));
	ck_assert_int_eq(recv_within(a, buf, sizeof(buf), 1000, NULL), sizeof(RTP));
	/* both families from one relay */
	ck_assert_int_eq(relay_stream_alloc(r, sid, 0, 1, AF_INET, false, &r4), 0);
	ck_assert_int_eq(r4.rtp.ss_family, AF_INET);
	relay_stop(r);
	close(a);
	close(b);
}
END_TEST

/* An RTCP RR (RFC 3550 §6.4.2) from reporter ssrc with one block. */
static size_t make_rr(uint8_t *b, unsigned rc, uint8_t frac, uint32_t cum24, uint32_t jitter)
{
	memset(b, 0, 32);
	b[0] = (uint8_t)(0x80 | rc);
	b[1] = 201;
	b[3] = 7;               /* 8 words */
	memset(b + 4, 0x0a, 4); /* reporter SSRC */
	memset(b + 8, 0x0b, 4); /* source SSRC */
	b[12] = frac;
	b[13] = (uint8_t)(cum24 >> 16);
	b[14] = (uint8_t)(cum24 >> 8);
	b[15] = (uint8_t)cum24;
	b[20] = (uint8_t)(jitter >> 24);
	b[21] = (uint8_t)(jitter >> 16);
	b[22] = (uint8_t)(jitter >> 8);
	b[23] = (uint8_t)jitter;
	return 32;
}

static const struct relay_stream_stats *side_stats(const struct tev *ev, int side)
{
	for (unsigned i = 0; i < ev->nstreams; i++)
		if (ev->st[i].side == side)
			return &ev->st[i];
	ck_abort_msg("no stats for side %d", side);
	return NULL;
}

/* RTCP receiver reports sent through the relay end up in the reporting
 * side's stream stats, from the RTCP socket and from the RTP socket (RFC
 * 5761 rule); a malformed one is still forwarded but not read. */
START_TEST(rtcp_reports_in_stats)
{
	struct relay_config c = base_cfg();
	struct relay *r = start(&c);
	struct relay_addr ra, rb;
	struct sockaddr_in sa, sb;
	uint8_t rr[32], buf[64], rtp[12];
	const struct relay_stream_stats *A, *B;
	uint64_t sid;
	struct tev ev;
	int a = party("127.0.0.1", 41970), a2 = party("127.0.0.1", 41971);
	int b = party("127.0.0.1", 41980), b2 = party("127.0.0.1", 41981);

	ck_assert_int_eq(relay_session_open(r, &sid), 0);
	ck_assert_int_eq(relay_stream_alloc(r, sid, 0, 0, AF_INET, false, &ra), 0);
	ck_assert_int_eq(relay_stream_alloc(r, sid, 1, 0, AF_INET, false, &rb), 0);
	sa = sin4("127.0.0.1", 41970);
	sb = sin4("127.0.0.1", 41980);
	ck_assert_int_eq(relay_stream_remote(r, sid, 0, 0, (struct sockaddr *)&sa,
	                                     (struct sockaddr *)&sa, 0),
	                 0);
	ck_assert_int_eq(relay_stream_remote(r, sid, 1, 0, (struct sockaddr *)&sb,
	                                     (struct sockaddr *)&sb, 0),
	                 0);
	barrier(r, sid, &ev);
	A = side_stats(&ev, 0);
	ck_assert_uint_eq(A->rtcp_reports, 0);
	ck_assert_uint_eq(A->rtcp_clock_hz, 0);

	/* no RTP seen yet: 8 kHz assumed; 160 units = 20 ms */
	send_to(a2, &ra.rtcp, rr, make_rr(rr, 1, 64, 5, 160));
	ck_assert_int_eq(recv_within(b2, buf, sizeof(buf), 1000, NULL), 32);
	barrier(r, sid, &ev);
	A = side_stats(&ev, 0);
	ck_assert_uint_eq(A->rtcp_reports, 1);
	ck_assert_uint_eq(A->rtcp_fraction_lost, 64);
	ck_assert_int_eq(A->rtcp_cum_lost, 5);
	ck_assert_uint_eq(A->rtcp_jitter_last, 160);
	ck_assert_uint_eq(A->rtcp_clock_hz, 8000);
	ck_assert(A->rtcp_jitter_last_ms > 19.99 && A->rtcp_jitter_last_ms < 20.01);

	/* B sends L16 (static PT 10, 44.1 kHz) to A; A's next report, on its
	 * RTP socket this time, is read with that clock */
	memcpy(rtp, RTP, sizeof rtp);
	rtp[1] = 10;
	send_to(b, &rb.rtp, rtp, sizeof rtp);
	ck_assert_int_eq(recv_within(a, buf, sizeof(buf), 1000, NULL), sizeof rtp);
	send_to(a, &ra.rtp, rr, make_rr(rr, 1, 3, 0xfffffe, 441));
	ck_assert_int_eq(recv_within(b2, buf, sizeof(buf), 1000, NULL), 32);
	/* malformed (RC 2 in an 8-word RR): forwarded, not read */
	send_to(a2, &ra.rtcp, rr, make_rr(rr, 2, 200, 99, 99999));
	ck_assert_int_eq(recv_within(b2, buf, sizeof(buf), 1000, NULL), 32);
	barrier(r, sid, &ev);
	A = side_stats(&ev, 0);
	B = side_stats(&ev, 1);
	ck_assert_uint_eq(A->rtcp_reports, 2);
	ck_assert_uint_eq(A->rtcp_unparsed, 1);
	ck_assert_uint_eq(A->rtcp_fraction_lost, 3);
	ck_assert_int_eq(A->rtcp_cum_lost, -2);
	ck_assert_uint_eq(A->rtcp_jitter_last, 441);
	ck_assert_uint_eq(A->rtcp_jitter_max, 441);
	ck_assert_uint_eq(A->rtcp_clock_hz, 44100);
	ck_assert(A->rtcp_jitter_last_ms > 9.99 && A->rtcp_jitter_last_ms < 10.01);
	ck_assert_uint_eq(B->rtcp_reports, 0); /* B reported nothing */
	ck_assert_uint_eq(B->rtcp_unparsed, 0);

	/* the final figures come with CLOSED too */
	ck_assert_int_eq(relay_session_close(r, sid), 0);
	ck_assert(wait_ev(RELAY_EV_CLOSED, sid, 3000, &ev));
	A = side_stats(&ev, 0);
	ck_assert_uint_eq(A->rtcp_reports, 2);
	ck_assert_uint_eq(A->rtcp_jitter_max, 441);
	relay_stop(r);
	close(a);
	close(a2);
	close(b);
	close(b2);
}
END_TEST

START_TEST(bad_config)
{
	struct relay_config c = base_cfg();
	struct relay *r = NULL;

	c.port_max = c.port_min; /* no pair */
	ck_assert_int_eq(relay_start(&r, &c, on_event, NULL), -EINVAL);
	c = base_cfg();
	c.addr4[0] = '\0';
	ck_assert_int_eq(relay_start(&r, &c, on_event, NULL), -EINVAL);
	c = base_cfg();
	strcpy(c.addr4, "not-an-ip");
	ck_assert_int_eq(relay_start(&r, &c, on_event, NULL), -EINVAL);
	ck_assert_ptr_null(r);
	relay_stop(NULL);
}
END_TEST

static void add(Suite *s, const char *name, const TTest *t, int tmo)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, tmo);
	tcase_add_test(tc, t);
	suite_add_tcase(s, tc);
}

int main(void)
{
	Suite *s = suite_create("relay");
	SRunner *sr;
	int failed;

	add(s, "alloc_pairs_in_range", alloc_pairs_in_range, 10);
	add(s, "pool_exhaustion_and_return", pool_exhaustion_and_return, 10);
	add(s, "port_in_use_is_skipped", port_in_use_is_skipped, 10);
	add(s, "forward_both_ways", forward_both_ways, 10);
	add(s, "latching_refuses_bleed", latching_refuses_bleed, 15);
	add(s, "rtcp_mux_to_non_mux", rtcp_mux_to_non_mux, 10);
	add(s, "timeout_after_media_stops", timeout_after_media_stops, 20);
	add(s, "timeout_rearmed", timeout_rearmed, 20);
	add(s, "stop_closes_everything", stop_closes_everything, 10);
	add(s, "forward_ipv6", forward_ipv6, 10);
	add(s, "bad_config", bad_config, 10);
	add(s, "rtcp_reports_in_stats", rtcp_reports_in_stats, 10);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
