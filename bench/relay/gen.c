/* gen: bounded RTP load generator for the relay benchmark (loopback only).
 *
 * Sends G.711-shaped RTP (12-octet header + 160 octets, PT 0, one SSRC and
 * sequence per stream) to N destinations read from a port file ("ip port"
 * per line), round robin, at a total rate in packets/s (0 = as fast as the
 * socket takes them).  One unconnected socket bound to -a (the relay only
 * believes the address a non-NATed party signalled, so the generator speaks
 * as the sink's IP); sendmmsg() batches keep the load side cheap.
 *
 * Bounded: stops after -c packets or -t seconds (both required to be > 0,
 * max 600 s), or on SIGTERM/SIGINT.  SIGUSR1 prints "SNAP sent=.. t_ns=..";
 * the end prints "DONE ...".  Destinations must be loopback addresses.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH_MAX 64

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

struct stream {
	struct sockaddr_in dst;
	uint16_t seq;
	uint32_t ts;
};

static int load_ports(const char *path, struct stream *v, unsigned n)
{
	FILE *f = fopen(path, "r");
	char ip[64];
	unsigned port, i = 0;

	if (!f) {
		perror(path);
		return -1;
	}
	while (i < n && fscanf(f, "%63s %u", ip, &port) == 2) {
		memset(&v[i], 0, sizeof v[i]);
		v[i].dst.sin_family = AF_INET;
		v[i].dst.sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, ip, &v[i].dst.sin_addr) != 1 ||
		    (ntohl(v[i].dst.sin_addr.s_addr) >> 24) != 127 || port == 0 || port > 65535) {
			fprintf(stderr, "gen: %s line %u: need a 127.x address and a port\n", path,
			        i + 1);
			fclose(f);
			return -1;
		}
		i++;
	}
	fclose(f);
	if (i < n) {
		fprintf(stderr, "gen: %s has %u destinations, %u wanted\n", path, i, n);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *pfile = NULL, *src = "127.0.0.1";
	unsigned n = 1, len = 172, batch = 32, secs = 0, i, next = 0;
	unsigned long long rate = 0, max_pkts = 0, sent = 0, errs = 0;
	struct mmsghdr mh[BATCH_MAX];
	struct iovec iov[BATCH_MAX];
	uint8_t pkt[BATCH_MAX][1500];
	struct sockaddr_in sa;
	struct stream *st;
	uint64_t t0, now, end;
	int c, fd, sndbuf = 4 << 20;

	while ((c = getopt(argc, argv, "f:n:r:c:t:a:l:b:")) != -1) {
		switch (c) {
		case 'f': pfile = optarg; break;
		case 'n': n = (unsigned)atoi(optarg); break;
		case 'r': rate = strtoull(optarg, NULL, 10); break;
		case 'c': max_pkts = strtoull(optarg, NULL, 10); break;
		case 't': secs = (unsigned)atoi(optarg); break;
		case 'a': src = optarg; break;
		case 'l': len = (unsigned)atoi(optarg); break;
		case 'b': batch = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: gen -f portfile -n streams -r pps(0=max) -c maxpkts "
			                "-t maxsecs [-a srcip] [-l len] [-b batch]\n");
			return 2;
		}
	}
	if (!pfile || !n || !max_pkts || !secs || secs > 600 || len < 12 || len > 1500 ||
	    !batch || batch > BATCH_MAX) {
		fprintf(stderr, "gen: need -f, -n, -c and -t (1..600), 12 <= len <= 1500\n");
		return 2;
	}
	st = calloc(n, sizeof *st);
	if (!st || load_ports(pfile, st, n) < 0)
		return 1;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	if (fd < 0 || inet_pton(AF_INET, src, &sa.sin_addr) != 1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("gen: socket/bind");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

	memset(pkt, 0xd5, sizeof pkt); /* PCMU near-silence */
	for (i = 0; i < BATCH_MAX; i++) {
		iov[i].iov_base = pkt[i];
		iov[i].iov_len = len;
		memset(&mh[i], 0, sizeof mh[i]);
		mh[i].msg_hdr.msg_iov = &iov[i];
		mh[i].msg_hdr.msg_iovlen = 1;
		mh[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
	}

	signal(SIGUSR1, on_sig);
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	printf("READY streams=%u rate=%llu len=%u\n", n, rate, len);
	fflush(stdout);

	t0 = mono_ns();
	end = t0 + (uint64_t)secs * 1000000000u;
	while (!want_stop && sent < max_pkts) {
		unsigned long long due = max_pkts - sent;
		unsigned k;
		int r;

		now = mono_ns();
		if (now >= end)
			break;
		if (want_snap) {
			want_snap = 0;
			printf("SNAP sent=%llu errs=%llu t_ns=%llu\n", sent, errs,
			       (unsigned long long)now);
			fflush(stdout);
		}
		if (rate) {
			/* pacing from the start time, so a late wake-up catches up
			 * in the next batches instead of lowering the rate */
			unsigned long long target = (unsigned long long)((double)(now - t0) *
			                                                 (double)rate / 1e9);

			if (target <= sent) {
				struct timespec ts = {0, 100000}; /* 0.1 ms */

				nanosleep(&ts, NULL);
				continue;
			}
			if (target - sent < due)
				due = target - sent;
		}
		k = due < batch ? (unsigned)due : batch;
		for (i = 0; i < k; i++) {
			struct stream *s = &st[next];
			uint8_t *p = pkt[i];
			uint32_t ssrc = next + 1;

			p[0] = 0x80;
			p[1] = 0; /* PT 0 PCMU */
			p[2] = (uint8_t)(s->seq >> 8);
			p[3] = (uint8_t)s->seq;
			p[4] = (uint8_t)(s->ts >> 24);
			p[5] = (uint8_t)(s->ts >> 16);
			p[6] = (uint8_t)(s->ts >> 8);
			p[7] = (uint8_t)s->ts;
			p[8] = (uint8_t)(ssrc >> 24);
			p[9] = (uint8_t)(ssrc >> 16);
			p[10] = (uint8_t)(ssrc >> 8);
			p[11] = (uint8_t)ssrc;
			mh[i].msg_hdr.msg_name = &s->dst;
			s->seq++;
			s->ts += 160;
			next = next + 1 == n ? 0 : next + 1;
		}
		r = sendmmsg(fd, mh, k, 0);
		if (r < 0) {
			errs++;
			if (errno != EAGAIN && errno != ENOBUFS && errno != ECONNREFUSED &&
			    errno != EINTR) {
				perror("gen: sendmmsg");
				break;
			}
			continue;
		}
		sent += (unsigned)r;
		if ((unsigned)r < k)
			errs += k - (unsigned)r;
	}
	now = mono_ns();
	printf("DONE sent=%llu errs=%llu elapsed=%.3f\n", sent, errs, (double)(now - t0) / 1e9);
	fflush(stdout);
	free(st);
	close(fd);
	return 0;
}
