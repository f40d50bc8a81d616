/* libFuzzer harness for stunmsg.  Not built by `make`; build and run by hand
 * from the top of the source tree:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
 *       src/stunmsg.c tests/fuzz/fuzz_stunmsg.c \
 *       $(pkg-config --cflags --libs gnutls) -o /tmp/fuzz_stunmsg
 *   mkdir -p /tmp/stunmsg-corpus
 *   /tmp/fuzz_stunmsg -max_total_time=60 /tmp/stunmsg-corpus
 *
 * tests/fuzz/run-fuzzers does all of this.  A useful seed corpus is the RFC vectors
 * (tests/data/stunmsg, one .hex file each) turned into binary, one file per vector, e.g. with cut
 * -d'#' -f1 rfc5769-request.hex | xxd -r -p > /tmp/stunmsg-corpus/req
 *
 * Each input is treated as a UDP datagram (decode + every reader), as a
 * ChannelData message, and as a TCP stream cut into frames.  A message that
 * decodes is rebuilt attribute by attribute with the builder and decoded
 * again; the two views must agree.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sipnat/stunmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_everything(const struct stunmsg *m)
{
	struct sockaddr_storage ss;
	struct stunmsg_pwalg algs[4], alg;
	const struct stunmsg_attr *a;
	const char *s;
	const uint8_t *d;
	uint8_t tok[8], proto;
	uint16_t t[8], ch;
	uint32_t u32;
	uint64_t u64;
	size_t n, i;
	int code, fam;
	bool r;

	for (i = 0; i < m->n_attrs; i++) {
		stunmsg_attr_xor_addr(m, &m->attrs[i], &ss);
		stunmsg_attr_addr(&m->attrs[i], &ss);
	}
	for (a = stunmsg_find(m, STUNMSG_ATTR_XOR_PEER_ADDRESS); a; a = stunmsg_find_next(m, a))
		stunmsg_attr_xor_addr(m, a, &ss);
	stunmsg_get_username(m, &s, &n);
	stunmsg_get_realm(m, &s, &n);
	stunmsg_get_nonce(m, &s, &n);
	stunmsg_get_software(m, &s, &n);
	stunmsg_get_error(m, &code, &s, &n);
	stunmsg_get_unknown(m, t, 8, &n);
	stunmsg_get_u32(m, STUNMSG_ATTR_PRIORITY, &u32);
	stunmsg_get_u64(m, STUNMSG_ATTR_ICE_CONTROLLING, &u64);
	stunmsg_get_lifetime(m, &u32);
	stunmsg_get_data(m, &d, &n);
	stunmsg_get_requested_transport(m, &proto);
	stunmsg_get_even_port(m, &r);
	stunmsg_get_reservation_token(m, tok);
	stunmsg_get_requested_family(m, &fam);
	stunmsg_get_channel(m, &ch);
	stunmsg_get_password_algorithms(m, algs, 4, &n);
	stunmsg_get_password_algorithm(m, &alg);
	stunmsg_get_userhash(m, &d);
	stunmsg_get_fingerprint(m, &u32);
	stunmsg_get_integrity(m, STUNMSG_ATTR_MESSAGE_INTEGRITY, &d, &n);
	stunmsg_get_integrity(m, STUNMSG_ATTR_MESSAGE_INTEGRITY_SHA256, &d, &n);
	stunmsg_check_integrity(m, "VOkJxbRl1RmTxUk/WvJxBt", 22);
	stunmsg_check_integrity_sha256(m, "key", 3);
	stunmsg_check_fingerprint(m);
}

/* Copy the kept attributes into a fresh message and check the decoder sees
 * the same thing.  Integrity and fingerprint attributes are copied raw, the
 * builder's stage rules permitting. */
static void rebuild(const struct stunmsg *m)
{
	static uint8_t out[STUNMSG_MAX_LEN];
	struct stunmsg_builder b;
	struct stunmsg m2;
	size_t i, len;

	if (stunmsg_build_init(&b, out, sizeof(out), m->method, m->cls, m->tid) != 0)
		abort();
	for (i = 0; i < m->n_attrs; i++)
		if (stunmsg_add(&b, m->attrs[i].type, m->attrs[i].val, m->attrs[i].len) != 0)
			abort();
	if (stunmsg_build_finish(&b, &len) != 0)
		abort();
	if (stunmsg_decode(&m2, out, len) != 0)
		abort();
	if (m2.n_attrs != m->n_attrs || m2.method != m->method || m2.cls != m->cls ||
	    memcmp(m2.tid, m->tid, STUNMSG_TID_LEN) != 0 || m2.n_unknown != m->n_unknown)
		abort();
	for (i = 0; i < m->n_attrs; i++)
		if (m2.attrs[i].type != m->attrs[i].type || m2.attrs[i].len != m->attrs[i].len ||
		    memcmp(m2.attrs[i].val, m->attrs[i].val, m->attrs[i].len) != 0)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stunmsg m;
	struct stunmsg_chandata cd;
	size_t off, fl;

	if (stunmsg_decode(&m, data, size) == 0) {
		read_everything(&m);
		rebuild(&m);
	}
	if (stunmsg_chandata_parse(&cd, data, size) == 0 && (size_t)cd.len + 4 > size)
		abort();

	/* As a TCP stream: frames must tile the input exactly. */
	for (off = 0; off < size && stunmsg_frame_len(data + off, size - off, &fl) == 0;
	     off += fl) {
		if (fl == 0 || fl > size - off)
			abort();
		if (data[off] < 0x40) {
			if (stunmsg_decode(&m, data + off, fl) == 0)
				read_everything(&m);
		} else if (stunmsg_chandata_parse(&cd, data + off, fl) != 0) {
			abort();
		}
	}
	return 0;
}
