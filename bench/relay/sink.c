/* sink: counts what the relay under test delivers (relay benchmark).
 *
 * Binds one UDP socket (a loopback address), drains it with recvmmsg(),
 * counts packets and octets, and follows the RTP sequence number per SSRC
 * (the generator uses SSRC = stream index + 1) to count gaps (lost or
 * reordered packets) without trusting the relay's own counters.
 *
 * Bounded by -t seconds (1..600) and optionally -c packets, or SIGTERM.
 * SIGUSR1 prints "SNAP pkts=.. bytes=.. gaps=.. t_ns=..", the end "DONE".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH  64
#define NSSRC  65536u /* SSRCs 1..65535 tracked; others only counted */
#define SLOT   2048

static volatile sig_atomic_t want_snap, want_stop;

static void on_sig(int s)
{
	if (s == SIGUSR1)
		want_snap = 1;
	else
		want_stop = 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* next expected sequence number + 1 per SSRC; 0 = not seen yet */
static uint32_t expect1[NSSRC];

int main(int argc, char **argv)
{
	const char *ip = "127.0.3.1";
	unsigned port = 9000, secs = 0, i;
	unsigned long long max_pkts = 0, pkts = 0, bytes = 0, gaps = 0, late = 0;
	static uint8_t buf[BATCH][SLOT];
	struct mmsghdr mh[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_in sa;
	uint64_t t0, end, now;
	int c, fd, rcvbuf = 32 << 20;

	while ((c = getopt(argc, argv, "a:p:t:c:")) != -1) {
		switch (c) {
		case 'a': ip = optarg; break;
		case 'p': port = (unsigned)atoi(optarg); break;
		case 't': secs = (unsigned)atoi(optarg); break;
		case 'c': max_pkts = strtoull(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: sink -t maxsecs [-a ip] [-p port] [-c maxpkts]\n");
			return 2;
		}
	}
	if (!secs || secs > 600 || !port || port > 65535) {
		fprintf(stderr, "sink: need -t 1..600 and a port\n");
		return 2;
	}
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || inet_pton(AF_INET, ip, &sa.sin_addr) != 1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("sink: socket/bind");
		return 1;
	}
	/* SO_RCVBUFFORCE needs CAP_NET_ADMIN; fall back to the capped one */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = buf[i];
		iov[i].iov_len = SLOT;
		memset(&mh[i], 0, sizeof mh[i]);
		mh[i].msg_hdr.msg_iov = &iov[i];
		mh[i].msg_hdr.msg_iovlen = 1;
	}
	signal(SIGUSR1, on_sig);
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	printf("READY sink=%s:%u\n", ip, port);
	fflush(stdout);

	t0 = mono_ns();
	end = t0 + (uint64_t)secs * 1000000000u;
	while (!want_stop && (!max_pkts || pkts < max_pkts)) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int r;

		if (want_snap) {
			want_snap = 0;
			printf("SNAP pkts=%llu bytes=%llu gaps=%llu late=%llu t_ns=%llu\n", pkts, bytes,
			       gaps, late, (unsigned long long)mono_ns());
			fflush(stdout);
		}
		if (mono_ns() >= end)
			break;
		r = recvmmsg(fd, mh, BATCH, MSG_DONTWAIT, NULL);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				poll(&pf, 1, 50);
				continue;
			}
			perror("sink: recvmmsg");
			break;
		}
		for (i = 0; i < (unsigned)r; i++) {
			const uint8_t *p = buf[i];
			unsigned len = mh[i].msg_len;
			uint32_t ssrc, seq, *e;

			pkts++;
			bytes += len;
			if (len < 12 || (p[0] & 0xc0) != 0x80)
				continue;
			ssrc = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11];
			if (ssrc == 0 || ssrc >= NSSRC)
				continue;
			seq = (uint32_t)p[2] << 8 | p[3];
			e = &expect1[ssrc];
			if (*e) {
				uint32_t want = *e - 1, d = (seq - want) & 0xffff;

				if (d >= 0x8000) {
					late++; /* older than expected: reordered or duplicate */
					continue;
				}
				gaps += d;
			}
			*e = ((seq + 1) & 0xffff) + 1;
		}
	}
	now = mono_ns();
	printf("DONE pkts=%llu bytes=%llu gaps=%llu late=%llu elapsed=%.3f\n", pkts, bytes, gaps,
	       late, (double)(now - t0) / 1e9);
	fflush(stdout);
	close(fd);
	return 0;
}
