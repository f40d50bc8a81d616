/* relayctl_bench: sipnatd's media relay (libsipnat.a) as a benchmark target.
 *
 * Starts relay_start() with -T loops, pinned with sched_setaffinity() to the
 * CPUs of -c before the loops are created (they inherit the mask), and
 * opens sessions the way media.c does for a call: one stream per side on
 * m-line 0, both parties non-NATed, both SDP addresses = the sink.  So a
 * packet sent to side A's port leaves through side B's port to the sink and
 * vice versa: -n streams need ceil(n/2) sessions.  Writes one "ip port" line
 * per stream (A, B, A, B, ...) to -f, then prints READY and waits.
 *
 * Memory: RSS (VmRSS) is read before and after the sessions are opened and
 * printed as "MEM sessions=.. rss_before_kb=.. rss_after_kb=.. per_1000_kb=..".
 * Kernel socket memory is not in it.
 *
 * SIGUSR1: "SNAP rx=.. fwd=.. drop_foreign=.. drop_no_remote=.. drop_send=..
 * t_ns=.." from relay_get_counters().  SIGTERM/SIGINT or -t seconds: stop
 * (relay_stop() closes every session), "DONE ...".  Loopback only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "sipnat/relay.h"

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ev_cond = PTHREAD_COND_INITIALIZER;
static unsigned stats_seen;

/* [loop] only STATS matter: they tell that every earlier call was applied */
static void on_event(void *arg, const struct relay_event *ev)
{
	(void)arg;
	if (ev->type != RELAY_EV_STATS)
		return;
	pthread_mutex_lock(&ev_lock);
	stats_seen++;
	pthread_cond_broadcast(&ev_cond);
	pthread_mutex_unlock(&ev_lock);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static int pin(const char *list)
{
	cpu_set_t set;
	char *copy = strdup(list), *tok, *save = NULL;

	CPU_ZERO(&set);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		CPU_SET(atoi(tok), &set);
	free(copy);
	return sched_setaffinity(0, sizeof set, &set);
}

static volatile sig_atomic_t want_snap, want_stop;

static void on_sig(int s)
{
	if (s == SIGUSR1)
		want_snap = 1;
	else
		want_stop = 1;
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

int main(int argc, char **argv)
{
	struct relay_config rc;
	struct relay *r = NULL;
	struct relay_counters k;
	struct sockaddr_in sink;
	const char *sink_ip = "127.0.3.1", *pfile = NULL, *cpus = NULL;
	unsigned n = 1, sessions, i, secs = 0, sink_port = 9000;
	uint64_t *sid, t_end;
	long rss0, rss1;
	struct rlimit rl;
	sigset_t ss;
	FILE *pf;
	int c, err;

	memset(&rc, 0, sizeof rc);
	rc.threads = 1;
	rc.port_min = 30000;
	rc.port_max = 59999;
	rc.relatch_silence_ms = 1000;
	strcpy(rc.addr4, "127.0.1.2");
	while ((c = getopt(argc, argv, "n:T:c:a:P:Q:s:p:f:t:")) != -1) {
		switch (c) {
		case 'n': n = (unsigned)atoi(optarg); break;
		case 'T': rc.threads = (unsigned)atoi(optarg); break;
		case 'c': cpus = optarg; break;
		case 'a': snprintf(rc.addr4, sizeof rc.addr4, "%s", optarg); break;
		case 'P': rc.port_min = (uint16_t)atoi(optarg); break;
		case 'Q': rc.port_max = (uint16_t)atoi(optarg); break;
		case 's': sink_ip = optarg; break;
		case 'p': sink_port = (unsigned)atoi(optarg); break;
		case 'f': pfile = optarg; break;
		case 't': secs = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: relayctl_bench -n streams -f portfile -t maxsecs "
			                "[-T threads] [-c cpu,cpu] [-a relay-ip] [-P pmin -Q pmax] "
			                "[-s sink-ip -p sink-port]\n");
			return 2;
		}
	}
	if (!n || !pfile || !secs || secs > 600) {
		fprintf(stderr, "relayctl_bench: need -n, -f and -t (1..600)\n");
		return 2;
	}
	snprintf(rc.bind4, sizeof rc.bind4, "%s", rc.addr4);
	memset(&sink, 0, sizeof sink);
	sink.sin_family = AF_INET;
	sink.sin_port = htons((uint16_t)sink_port);
	if (inet_pton(AF_INET, sink_ip, &sink.sin_addr) != 1 ||
	    (ntohl(sink.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "relayctl_bench: the sink must be a 127.x address\n");
		return 2;
	}
	/* two sockets per stream */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (cpus && pin(cpus) < 0) {
		perror("relayctl_bench: sched_setaffinity");
		return 1;
	}
	/* signals go to this thread only (sigwait-free polling below) */
	sigemptyset(&ss);
	sigaddset(&ss, SIGUSR1);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	err = relay_start(&r, &rc, on_event, NULL);
	if (err) {
		fprintf(stderr, "relayctl_bench: relay_start: %s\n", strerror(-err));
		return 1;
	}
	pthread_sigmask(SIG_UNBLOCK, &ss, NULL);
	signal(SIGUSR1, on_sig);
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);

	sessions = (n + 1) / 2;
	sid = calloc(sessions, sizeof *sid);
	pf = fopen(pfile, "w");
	if (!sid || !pf) {
		perror("relayctl_bench");
		relay_stop(r);
		return 1;
	}
	rss0 = rss_kb();
	for (i = 0; i < sessions; i++) {
		struct relay_addr a[2];
		int side;

		err = relay_session_open(r, &sid[i]);
		for (side = 0; !err && side < 2; side++)
			err = relay_stream_alloc(r, sid[i], side, 0, AF_INET, false, &a[side]);
		for (side = 0; !err && side < 2; side++)
			err = relay_stream_remote(r, sid[i], side, 0, (struct sockaddr *)&sink,
			                          (struct sockaddr *)&sink, 0);
		if (err) {
			fprintf(stderr, "relayctl_bench: session %u: %s\n", i, strerror(-err));
			relay_stop(r);
			return 1;
		}
		for (side = 0; side < 2 && 2 * i + (unsigned)side < n; side++)
			fprintf(pf, "%s %u\n", rc.addr4, port_of(&a[side].rtp));
	}
	fclose(pf);
	/* every session's messages applied before READY: one query each */
	for (i = 0; i < sessions; i++)
		relay_session_query(r, sid[i]);
	pthread_mutex_lock(&ev_lock);
	while (stats_seen < sessions)
		pthread_cond_wait(&ev_cond, &ev_lock);
	pthread_mutex_unlock(&ev_lock);
	rss1 = rss_kb();
	printf("MEM sessions=%u streams=%u rss_before_kb=%ld rss_after_kb=%ld per_1000_kb=%.0f\n",
	       sessions, 2 * sessions, rss0, rss1,
	       (double)(rss1 - rss0) * 1000.0 / (double)sessions);
	printf("READY streams=%u sessions=%u threads=%u portfile=%s\n", n, sessions,
	       relay_threads(r), pfile);
	fflush(stdout);

	t_end = mono_ns() + (uint64_t)secs * 1000000000u;
	while (!want_stop && mono_ns() < t_end) {
		struct timespec ts = {0, 20 * 1000000};

		if (want_snap) {
			want_snap = 0;
			relay_get_counters(r, &k);
			printf("SNAP rx=%llu fwd=%llu drop_foreign=%llu drop_no_remote=%llu "
			       "drop_send=%llu drop_error=%llu t_ns=%llu\n",
			       (unsigned long long)k.rx_packets, (unsigned long long)k.fwd_packets,
			       (unsigned long long)k.dropped_foreign,
			       (unsigned long long)k.dropped_no_remote,
			       (unsigned long long)k.dropped_send, (unsigned long long)k.dropped_error,
			       (unsigned long long)mono_ns());
			fflush(stdout);
		}
		nanosleep(&ts, NULL);
	}
	relay_get_counters(r, &k);
	relay_stop(r);
	printf("DONE rx=%llu fwd=%llu drop_send=%llu\n", (unsigned long long)k.rx_packets,
	       (unsigned long long)k.fwd_packets, (unsigned long long)k.dropped_send);
	fflush(stdout);
	free(sid);
	return 0;
}
