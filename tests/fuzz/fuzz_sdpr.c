/* libFuzzer harness for the SDP rewriter (sdpr) and the ICE candidate
 * parser (ice).  Built and run by tests/fuzz/run-fuzzers (see
 * tests/fuzz/README); seeded with the golden inputs of tests/data/sdp.
 *
 * Properties checked on every input, any violation aborts (this is the one
 * place where abort() is the point: it is how libFuzzer learns of a bug):
 *  - sdpr_inspect and sdpr_rewrite never crash, leak or read out of bounds;
 *  - whatever sdpr_rewrite accepts, its output parses again with the same
 *    number of m-lines, and every relayed stream now names the relay;
 *  - rewriting that output again with the same targets succeeds (a re-INVITE
 *    carrying our own SDP must never be refused);
 *  - every a=candidate line that ice_parse_candidate accepts formats back
 *    to text that parses to the same candidate.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sipnat/ice.h"
#include "sipnat/sdpr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STREAMS 16
#define RELAY_V4    "192.0.2.1"
#define RELAY_V6    "2001:db8::1"

static void must(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_sdpr: property violated: %s\n", what);
		abort();
	}
}

static void check_candidates(const uint8_t *data, size_t size)
{
	static const char tag[] = "a=candidate:";
	const char *p = (const char *)data, *end = p + size;
	char line[1024], text[1024];
	struct ice_candidate c, again;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);

		if (n && p[n - 1] == '\r')
			n--;
		if (n > sizeof tag - 1 && n - (sizeof tag - 1) < sizeof line &&
		    memcmp(p, tag, sizeof tag - 1) == 0) {
			memcpy(line, p + sizeof tag - 1, n - (sizeof tag - 1));
			line[n - (sizeof tag - 1)] = '\0';
			if (!memchr(line, '\0', n - (sizeof tag - 1)) &&
			    ice_parse_candidate(line, &c) == 0 &&
			    ice_format_candidate(&c, text, sizeof text) == 0) {
				must(ice_parse_candidate(text, &again) == 0,
				     "a formatted candidate parses again");
				must(memcmp(&c, &again, sizeof c) == 0 ||
				             (strcmp(c.foundation, again.foundation) == 0 &&
				              c.component == again.component &&
				              c.priority == again.priority &&
				              strcmp(c.addr, again.addr) == 0 &&
				              c.port == again.port &&
				              strcmp(c.type, again.type) == 0),
				     "a formatted candidate is the same candidate");
			}
		}
		p = nl ? nl + 1 : end;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sdpr_session_info session, out_session;
	struct sdpr_stream_info streams[MAX_STREAMS], out_streams[MAX_STREAMS];
	struct sdpr_media_target targets[MAX_STREAMS];
	struct sdpr_options opt;
	struct sdpr_version version = {0};
	char *out = NULL, *out2 = NULL;
	size_t out_len = 0, out2_len = 0, n;

	check_candidates(data, size);

	if (sdpr_inspect((const char *)data, size, &session, streams, MAX_STREAMS) != 0)
		return 0;
	n = session.n_streams;
	memset(targets, 0, sizeof targets);
	for (size_t i = 0; i < n; i++) {
		bool v6 = streams[i].family == AF_INET6;

		targets[i].family = v6 ? AF_INET6 : AF_INET;
		snprintf(targets[i].addr, sizeof targets[i].addr, "%s", v6 ? RELAY_V6 : RELAY_V4);
		targets[i].rtp_port = 30000 + 2 * (unsigned)i;
		targets[i].rtcp_mux = streams[i].rtcp_mux;
		targets[i].rtcp_port =
		        targets[i].rtcp_mux ? targets[i].rtp_port : targets[i].rtp_port + 1;
	}
	sdpr_options_init(&opt);
	opt.strip_private_candidates = size & 1; /* both settings, chosen by the input */
	opt.version = &version;

	if (sdpr_rewrite((const char *)data, size, targets, n, &opt, &out, &out_len) != 0)
		return 0;
	must(out && strlen(out) == out_len, "the output is one NUL-terminated string of out_len");
	must(sdpr_inspect(out, out_len, &out_session, out_streams, MAX_STREAMS) == 0,
	     "the rewritten SDP parses again");
	must(out_session.n_streams == n, "the rewritten SDP keeps its m-lines");
	for (size_t i = 0; i < n; i++) {
		if (streams[i].disabled) {
			must(out_streams[i].disabled, "a disabled stream stays disabled");
			continue;
		}
		must(out_streams[i].port == targets[i].rtp_port,
		     "a relayed stream names the relay port");
		must(strcmp(out_streams[i].addr, targets[i].addr) == 0 ||
		             out_streams[i].hold_zero_addr,
		     "a relayed stream names the relay address (or stays on 0.0.0.0 hold)");
	}
	must(sdpr_rewrite(out, out_len, targets, n, &opt, &out2, &out2_len) == 0,
	     "our own SDP can be rewritten again");
	free(out);
	free(out2);
	return 0;
}
