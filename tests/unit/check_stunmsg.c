/* Unit tests for stunmsg: RFC 5769 / RFC 8489 B.1 vectors, every attribute
 * round-tripped, malformed input, ChannelData and stream framing.
 *
 * Vectors live in tests/data/stunmsg/ as .hex files (hex pairs, '#' comments), found
 * through $SIPNAT_SRCDIR or, without it, next to the test binary.
 * Addresses are RFC 5737 / RFC 3849 documentation addresses.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "sipnat/stunmsg.h"

#define SHORT_PW "VOkJxbRl1RmTxUk/WvJxBt"
/* U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9, RFC 5769 §2.4 */
#define MATRIX_USER  "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9"
#define MATRIX_REALM "example.org"
#define MATRIX_PASS  "TheMatrIX"
#define MATRIX_NONCE "f//499k954d6OL34oL9FSTvy64sA"

static const uint8_t rfc_tid[12] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                    0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};
static const uint8_t matrix_tid[12] = {0x78, 0xad, 0x34, 0x33, 0xc6, 0xad,
                                       0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e};

/* --- helpers --------------------------------------------------------- */

static void data_path(char *out, size_t cap, const char *name)
{
	const char *src = getenv("SIPNAT_SRCDIR");

	if (src && *src) {
		snprintf(out, cap, "%s/tests/data/stunmsg/%s", src, name);
	} else {
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

		ck_assert_int_gt(n, 0);
		exe[n] = '\0';
		snprintf(out, cap, "%s/../data/stunmsg/%s", dirname(exe), name);
	}
}

/* Load a .hex vector into a heap block of exactly its size, so that ASan
 * reports any read past the message. */
static uint8_t *load_vec(const char *name, size_t *len)
{
	char path[PATH_MAX + 64], line[512];
	uint8_t *buf = malloc(STUNMSG_MAX_LEN);
	size_t n = 0;
	FILE *f;

	ck_assert_ptr_nonnull(buf);
	data_path(path, sizeof(path), name);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, '#');
		unsigned v;
		int used;

		if (p)
			*p = '\0';
		for (p = line; sscanf(p, " %2x%n", &v, &used) == 1; p += used)
			buf[n++] = (uint8_t)v;
	}
	fclose(f);
	ck_assert_uint_gt(n, 0);
	*len = n;
	return realloc(buf, n);
}

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(c);
	memcpy(c, p, n);
	return c;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* A header for a hand-made message with `alen` bytes of attributes. */
static size_t mk_hdr(uint8_t *buf, uint16_t type, size_t alen)
{
	put16(buf, type);
	put16(buf + 2, (uint16_t)alen);
	buf[4] = 0x21;
	buf[5] = 0x12;
	buf[6] = 0xA4;
	buf[7] = 0x42;
	memcpy(buf + 8, rfc_tid, 12);
	return STUNMSG_HDR_LEN;
}

static void sin4(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in *s = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET, ip, &s->sin_addr), 1);
}

static void sin6(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
}

static void ck_addr_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	ck_assert_int_eq(a->ss_family, b->ss_family);
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		ck_assert_uint_eq(ntohs(x->sin_port), ntohs(y->sin_port));
		ck_assert_mem_eq(&x->sin_addr, &y->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		ck_assert_uint_eq(ntohs(x->sin6_port), ntohs(y->sin6_port));
		ck_assert_mem_eq(&x->sin6_addr, &y->sin6_addr, 16);
	}
}

static void ck_text(int r, const char *got, size_t got_len, const char *want)
{
	ck_assert_int_eq(r, 0);
	ck_assert_uint_eq(got_len, strlen(want));
	ck_assert_mem_eq(got, want, got_len);
}

typedef int text_getter(const struct stunmsg *, const char **, size_t *);

static void ck_get_text(text_getter *get, const struct stunmsg *m, const char *want)
{
	const char *s = NULL;
	size_t len = 0;
	int r = get(m, &s, &len);

	ck_text(r, s, len, want);
}

/* --- message type ------------------------------------------------------- */

START_TEST(type_known_values)
{
	uint16_t m;
	unsigned c;

	/* RFC 8489 §5 and RFC 8656 §17 give these on-the-wire values. */
	ck_assert_uint_eq(stunmsg_type(STUNMSG_METHOD_BINDING, STUNMSG_CLASS_REQUEST), 0x0001);
	ck_assert_uint_eq(stunmsg_type(STUNMSG_METHOD_BINDING, STUNMSG_CLASS_SUCCESS), 0x0101);
	ck_assert_uint_eq(stunmsg_type(STUNMSG_METHOD_BINDING, STUNMSG_CLASS_ERROR), 0x0111);
	ck_assert_uint_eq(stunmsg_type(STUNMSG_METHOD_BINDING, STUNMSG_CLASS_INDICATION), 0x0011);
	ck_assert_uint_eq(stunmsg_type(STUNMSG_METHOD_ALLOCATE, STUNMSG_CLASS_ERROR), 0x0113);
	ck_assert_uint_eq(stunmsg_type(STUNMSG_METHOD_SEND, STUNMSG_CLASS_INDICATION), 0x0016);
	ck_assert_uint_eq(stunmsg_type(STUNMSG_METHOD_DATA, STUNMSG_CLASS_INDICATION), 0x0017);
	ck_assert_uint_eq(stunmsg_type(STUNMSG_METHOD_CHANNEL_BIND, STUNMSG_CLASS_SUCCESS), 0x0109);
	ck_assert_uint_eq(stunmsg_type(0xFFF, STUNMSG_CLASS_ERROR), 0x3FFF);
	for (m = 0; m <= 0xFFF; m++) {
		for (c = 0; c < 4; c++) {
			uint16_t m2;
			unsigned c2;

			stunmsg_type_split(stunmsg_type(m, c), &m2, &c2);
			ck_assert_uint_eq(m2, m);
			ck_assert_uint_eq(c2, c);
		}
	}
}
END_TEST

START_TEST(type_names_and_reasons)
{
	static const int codes[] = {300, 400, 401, 403, 420, 437, 438, 440,
	                            441, 442, 443, 446, 447, 486, 500, 508};
	size_t i;

	ck_assert_str_eq(stunmsg_method_name(STUNMSG_METHOD_BINDING), "Binding");
	ck_assert_str_eq(stunmsg_method_name(STUNMSG_METHOD_ALLOCATE), "Allocate");
	ck_assert_str_eq(stunmsg_method_name(STUNMSG_METHOD_REFRESH), "Refresh");
	ck_assert_str_eq(stunmsg_method_name(STUNMSG_METHOD_SEND), "Send");
	ck_assert_str_eq(stunmsg_method_name(STUNMSG_METHOD_DATA), "Data");
	ck_assert_str_eq(stunmsg_method_name(STUNMSG_METHOD_CREATE_PERMISSION), "CreatePermission");
	ck_assert_str_eq(stunmsg_method_name(STUNMSG_METHOD_CHANNEL_BIND), "ChannelBind");
	ck_assert_ptr_null(stunmsg_method_name(0x002));
	ck_assert_str_eq(stunmsg_class_name(STUNMSG_CLASS_ERROR), "error response");
	ck_assert_ptr_null(stunmsg_class_name(4));
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		ck_assert_msg(stunmsg_reason(codes[i]) != NULL, "no phrase for %d", codes[i]);
	ck_assert_str_eq(stunmsg_reason(401), "Unauthenticated");
	ck_assert_str_eq(stunmsg_reason(420), "Unknown Attribute");
	ck_assert_str_eq(stunmsg_reason(437), "Allocation Mismatch");
	ck_assert_str_eq(stunmsg_reason(508), "Insufficient Capacity");
	ck_assert_ptr_null(stunmsg_reason(499));
	ck_assert(stunmsg_attr_known(STUNMSG_ATTR_XOR_PEER_ADDRESS));
	ck_assert(!stunmsg_attr_known(0x0033));
}
END_TEST

/* --- RFC 5769 vectors ------------------------------------------------------ */

START_TEST(vec_request)
{
	struct stunmsg m;
	size_t len;
	uint32_t prio;
	uint64_t tie;
	uint8_t *b = load_vec("rfc5769-request.hex", &len);

	ck_assert_int_eq(stunmsg_decode(&m, b, len), 0);
	ck_assert_uint_eq(m.method, STUNMSG_METHOD_BINDING);
	ck_assert_uint_eq(m.cls, STUNMSG_CLASS_REQUEST);
	ck_assert_mem_eq(m.tid, rfc_tid, 12);
	ck_assert_uint_eq(m.n_attrs, 6);
	/* PRIORITY (0x0024) is comprehension-required and known. */
	ck_assert_uint_eq(m.n_unknown, 0);
	ck_get_text(stunmsg_get_software, &m, "STUN test client");
	ck_get_text(stunmsg_get_username, &m, "evtj:h6vY");
	ck_assert_int_eq(stunmsg_get_u32(&m, STUNMSG_ATTR_PRIORITY, &prio), 0);
	ck_assert_uint_eq(prio, 0x6e0001ff);
	ck_assert_int_eq(stunmsg_get_u64(&m, STUNMSG_ATTR_ICE_CONTROLLED, &tie), 0);
	ck_assert(tie == 0x932ff9b151263b36ULL);
	ck_assert_int_eq(stunmsg_check_integrity(&m, SHORT_PW, strlen(SHORT_PW)), 0);
	ck_assert_int_eq(stunmsg_check_fingerprint(&m), 0);
	ck_assert_int_eq(stunmsg_check_integrity(&m, "VOkJxbRl1RmTxUk/WvJxBu", 22), -EACCES);
	ck_assert_int_eq(stunmsg_check_integrity_sha256(&m, SHORT_PW, strlen(SHORT_PW)), -ENOENT);
	free(b);
}
END_TEST

static void check_response(const char *file, const struct sockaddr_storage *want)
{
	struct stunmsg m;
	struct sockaddr_storage got;
	size_t len;
	uint8_t *b = load_vec(file, &len);

	ck_assert_int_eq(stunmsg_decode(&m, b, len), 0);
	ck_assert_uint_eq(m.method, STUNMSG_METHOD_BINDING);
	ck_assert_uint_eq(m.cls, STUNMSG_CLASS_SUCCESS);
	ck_assert_mem_eq(m.tid, rfc_tid, 12);
	ck_get_text(stunmsg_get_software, &m, "test vector");
	ck_assert_int_eq(stunmsg_get_xor_addr(&m, STUNMSG_ATTR_XOR_MAPPED_ADDRESS, &got), 0);
	ck_addr_eq(&got, want);
	ck_assert_int_eq(stunmsg_get_addr(&m, STUNMSG_ATTR_MAPPED_ADDRESS, &got), -ENOENT);
	ck_assert_int_eq(stunmsg_check_integrity(&m, SHORT_PW, strlen(SHORT_PW)), 0);
	ck_assert_int_eq(stunmsg_check_fingerprint(&m), 0);
	ck_assert_int_eq(stunmsg_check_integrity(&m, SHORT_PW, strlen(SHORT_PW) - 1), -EACCES);
	free(b);
}

START_TEST(vec_response_ipv4)
{
	struct sockaddr_storage want;

	sin4(&want, "192.0.2.1", 32853);
	check_response("rfc5769-response-ipv4.hex", &want);
}
END_TEST

START_TEST(vec_response_ipv6)
{
	struct sockaddr_storage want;

	sin6(&want, "2001:db8:1234:5678:11:2233:4455:6677", 32853);
	check_response("rfc5769-response-ipv6.hex", &want);
}
END_TEST

START_TEST(vec_longterm)
{
	struct stunmsg m;
	uint8_t key[STUNMSG_MD5_LEN], bad[STUNMSG_MD5_LEN];
	size_t len;
	uint8_t *b = load_vec("rfc5769-request-longterm.hex", &len);

	ck_assert_int_eq(stunmsg_decode(&m, b, len), 0);
	ck_assert_mem_eq(m.tid, matrix_tid, 12);
	ck_get_text(stunmsg_get_username, &m, MATRIX_USER);
	ck_get_text(stunmsg_get_realm, &m, MATRIX_REALM);
	ck_get_text(stunmsg_get_nonce, &m, MATRIX_NONCE);
	ck_assert_int_eq(stunmsg_key_md5(key, MATRIX_USER, strlen(MATRIX_USER), MATRIX_REALM,
	                                 strlen(MATRIX_REALM), MATRIX_PASS, strlen(MATRIX_PASS)),
	                 0);
	ck_assert_int_eq(stunmsg_check_integrity(&m, key, sizeof(key)), 0);
	ck_assert_int_eq(stunmsg_check_fingerprint(&m), -ENOENT);
	/* The password as the key (short-term) must not pass. */
	ck_assert_int_eq(stunmsg_check_integrity(&m, MATRIX_PASS, strlen(MATRIX_PASS)), -EACCES);
	ck_assert_int_eq(stunmsg_key_md5(bad, MATRIX_USER, strlen(MATRIX_USER), MATRIX_REALM,
	                                 strlen(MATRIX_REALM), "TheMatrix", 9),
	                 0);
	ck_assert_int_eq(stunmsg_check_integrity(&m, bad, sizeof(bad)), -EACCES);
	free(b);
}
END_TEST

START_TEST(vec_rfc8489_sha256)
{
	struct stunmsg m;
	struct stunmsg_pwalg alg;
	uint8_t key[STUNMSG_SHA256_LEN], uh[32];
	const uint8_t *hash;
	size_t len;
	uint8_t *b = load_vec("rfc8489-b1-sha256.hex", &len);

	ck_assert_int_eq(stunmsg_decode(&m, b, len), 0);
	ck_assert_uint_eq(m.n_unknown, 0);
	ck_assert_int_eq(stunmsg_get_password_algorithm(&m, &alg), 0);
	ck_assert_uint_eq(alg.alg, STUNMSG_PWALG_SHA256);
	ck_assert_uint_eq(alg.params_len, 0);
	ck_assert_int_eq(stunmsg_get_userhash(&m, &hash), 0);
	ck_assert_int_eq(gnutls_hash_fast(GNUTLS_DIG_SHA256, MATRIX_USER ":" MATRIX_REALM,
	                                  strlen(MATRIX_USER ":" MATRIX_REALM), uh),
	                 0);
	ck_assert_mem_eq(hash, uh, 32);
	ck_assert_int_eq(stunmsg_key_sha256(key, MATRIX_USER, strlen(MATRIX_USER), MATRIX_REALM,
	                                    strlen(MATRIX_REALM), MATRIX_PASS, strlen(MATRIX_PASS)),
	                 0);
	ck_assert_int_eq(stunmsg_check_integrity_sha256(&m, key, sizeof(key)), 0);
	ck_assert_int_eq(stunmsg_check_integrity(&m, key, sizeof(key)), -ENOENT);
	key[31] ^= 1;
	ck_assert_int_eq(stunmsg_check_integrity_sha256(&m, key, sizeof(key)), -EACCES);
	free(b);
}
END_TEST

START_TEST(keys_known_values)
{
	static const uint8_t md5_matrix[16] = {0xe8, 0xca, 0x7a, 0xd5, 0x9d, 0x5e, 0xb0, 0x51,
	                                       0x8e, 0x31, 0x29, 0x11, 0xd2, 0xda, 0xb2, 0xa9};
	static const uint8_t md5_urp[16] = {0x84, 0x93, 0xfb, 0xc5, 0x3b, 0xa5, 0x82, 0xfb,
	                                    0x4c, 0x04, 0x4c, 0x45, 0x6b, 0xdc, 0x40, 0xeb};
	static const uint8_t md5_empty[16] = {0x45, 0x01, 0xc0, 0x91, 0xb0, 0x36, 0x6d, 0x76,
	                                      0xea, 0x32, 0x18, 0xb6, 0xcf, 0xdd, 0x80, 0x97};
	static const uint8_t sha_matrix[32] = {0xdd, 0x29, 0x5a, 0x61, 0x3b, 0x90, 0x58, 0xc3,
	                                       0xc2, 0x3d, 0x6d, 0xc7, 0x16, 0x5b, 0xda, 0x07,
	                                       0x23, 0x04, 0xd9, 0x89, 0xc9, 0xd0, 0xaf, 0x3a,
	                                       0x8c, 0x7e, 0x18, 0x4b, 0x4f, 0x9b, 0xb4, 0xa1};
	uint8_t k[32];

	ck_assert_int_eq(stunmsg_key_md5(k, MATRIX_USER, strlen(MATRIX_USER), MATRIX_REALM, 11,
	                                 MATRIX_PASS, 9),
	                 0);
	ck_assert_mem_eq(k, md5_matrix, 16);
	ck_assert_int_eq(stunmsg_key_md5(k, "user", 4, "realm", 5, "pass", 4), 0);
	ck_assert_mem_eq(k, md5_urp, 16);
	ck_assert_int_eq(stunmsg_key_md5(k, NULL, 0, NULL, 0, NULL, 0), 0);
	ck_assert_mem_eq(k, md5_empty, 16);
	ck_assert_int_eq(stunmsg_key_sha256(k, MATRIX_USER, strlen(MATRIX_USER), MATRIX_REALM, 11,
	                                    MATRIX_PASS, 9),
	                 0);
	ck_assert_mem_eq(k, sha_matrix, 32);
	ck_assert_int_eq(stunmsg_key_md5(NULL, "u", 1, "r", 1, "p", 1), -EINVAL);
	ck_assert_int_eq(stunmsg_key_md5(k, NULL, 1, "r", 1, "p", 1), -EINVAL);
}
END_TEST

/* Flip every bit of every vector.  Where the flipped bit is covered by
 * MESSAGE-INTEGRITY(-SHA256) or FINGERPRINT, verification must fail (or
 * the message must no longer decode); a flip in the FINGERPRINT value must
 * leave MESSAGE-INTEGRITY valid, since it is not covered. */
struct vec {
	const char *file;
	const void *key;
	size_t keylen;
	bool sha256;
};

static void flip_all(const struct vec *v)
{
	size_t len, i;
	uint8_t *orig = load_vec(v->file, &len);
	struct stunmsg m;
	const struct stunmsg_attr *fp, *mi;
	size_t mi_end;
	bool has_fp;
	uint16_t mi_type =
	        v->sha256 ? STUNMSG_ATTR_MESSAGE_INTEGRITY_SHA256 : STUNMSG_ATTR_MESSAGE_INTEGRITY;

	ck_assert_int_eq(stunmsg_decode(&m, orig, len), 0);
	mi = stunmsg_find(&m, mi_type);
	ck_assert_ptr_nonnull(mi);
	mi_end = mi->off + 4 + mi->len;
	fp = stunmsg_find(&m, STUNMSG_ATTR_FINGERPRINT);
	has_fp = fp != NULL;

	for (i = 0; i < len * 8; i++) {
		uint8_t *b = dup_exact(orig, len);
		size_t byte = i / 8;
		int ri, rf;

		b[byte] ^= (uint8_t)(1u << (i % 8));
		if (stunmsg_decode(&m, b, len) != 0) {
			free(b);
			continue;
		}
		ri = v->sha256 ? stunmsg_check_integrity_sha256(&m, v->key, v->keylen)
		               : stunmsg_check_integrity(&m, v->key, v->keylen);
		rf = stunmsg_check_fingerprint(&m);
		if (byte < mi_end)
			ck_assert_msg(ri != 0, "%s: flip of bit %zu not caught by MAC", v->file, i);
		else
			ck_assert_msg(ri == 0, "%s: MAC covers byte %zu past it", v->file, byte);
		if (has_fp)
			ck_assert_msg(rf != 0, "%s: flip of bit %zu not caught by CRC", v->file, i);
		free(b);
	}
	free(orig);
}

START_TEST(vec_bitflips)
{
	uint8_t md5[16], sha[32];
	struct vec v[5] = {
	        {"rfc5769-request.hex", SHORT_PW, sizeof(SHORT_PW) - 1, false},
	        {"rfc5769-response-ipv4.hex", SHORT_PW, sizeof(SHORT_PW) - 1, false},
	        {"rfc5769-response-ipv6.hex", SHORT_PW, sizeof(SHORT_PW) - 1, false},
	        {"rfc5769-request-longterm.hex", md5, sizeof(md5), false},
	        {"rfc8489-b1-sha256.hex", sha, sizeof(sha), true},
	};
	size_t i;

	ck_assert_int_eq(stunmsg_key_md5(md5, MATRIX_USER, strlen(MATRIX_USER), MATRIX_REALM, 11,
	                                 MATRIX_PASS, 9),
	                 0);
	ck_assert_int_eq(stunmsg_key_sha256(sha, MATRIX_USER, strlen(MATRIX_USER), MATRIX_REALM, 11,
	                                    MATRIX_PASS, 9),
	                 0);
	for (i = 0; i < 5; i++)
		flip_all(&v[i]);
}
END_TEST

/* --- the builder reproduces the vectors byte for byte ----------------------- */

/* RFC 5769 pads with spaces; our builder pads with zeros.  Patch the padding
 * of the attribute just added before anything is computed over it. */
static void space_pad(struct stunmsg_builder *b, uint8_t *buf, size_t n)
{
	size_t len;

	ck_assert_int_eq(stunmsg_build_finish(b, &len), 0);
	memset(buf + len - n, 0x20, n);
}

static void ck_same_as_vector(const uint8_t *buf, struct stunmsg_builder *b, const char *file)
{
	size_t len, vlen;
	uint8_t *v = load_vec(file, &vlen);

	ck_assert_int_eq(stunmsg_build_finish(b, &len), 0);
	ck_assert_uint_eq(len, vlen);
	ck_assert_mem_eq(buf, v, len);
	free(v);
}

START_TEST(build_rfc5769_request)
{
	uint8_t buf[256];
	struct stunmsg_builder b;

	ck_assert_int_eq(stunmsg_build_init(&b, buf, sizeof(buf), STUNMSG_METHOD_BINDING,
	                                    STUNMSG_CLASS_REQUEST, rfc_tid),
	                 0);
	ck_assert_int_eq(stunmsg_add_text(&b, STUNMSG_ATTR_SOFTWARE, "STUN test client", 16), 0);
	ck_assert_int_eq(stunmsg_add_u32(&b, STUNMSG_ATTR_PRIORITY, 0x6e0001ff), 0);
	ck_assert_int_eq(stunmsg_add_u64(&b, STUNMSG_ATTR_ICE_CONTROLLED, 0x932ff9b151263b36ULL),
	                 0);
	ck_assert_int_eq(stunmsg_add_text(&b, STUNMSG_ATTR_USERNAME, "evtj:h6vY", 9), 0);
	space_pad(&b, buf, 3);
	ck_assert_int_eq(stunmsg_add_integrity(&b, SHORT_PW, strlen(SHORT_PW)), 0);
	ck_assert_int_eq(stunmsg_add_fingerprint(&b), 0);
	ck_same_as_vector(buf, &b, "rfc5769-request.hex");
}
END_TEST

START_TEST(build_rfc5769_responses)
{
	uint8_t buf[256];
	struct stunmsg_builder b;
	struct sockaddr_storage ss;

	sin4(&ss, "192.0.2.1", 32853);
	stunmsg_build_init(&b, buf, sizeof(buf), STUNMSG_METHOD_BINDING, STUNMSG_CLASS_SUCCESS,
	                   rfc_tid);
	stunmsg_add_text(&b, STUNMSG_ATTR_SOFTWARE, "test vector", 11);
	space_pad(&b, buf, 1);
	stunmsg_add_xor_addr(&b, STUNMSG_ATTR_XOR_MAPPED_ADDRESS, (struct sockaddr *)&ss);
	stunmsg_add_integrity(&b, SHORT_PW, strlen(SHORT_PW));
	stunmsg_add_fingerprint(&b);
	ck_same_as_vector(buf, &b, "rfc5769-response-ipv4.hex");

	sin6(&ss, "2001:db8:1234:5678:11:2233:4455:6677", 32853);
	stunmsg_build_init(&b, buf, sizeof(buf), STUNMSG_METHOD_BINDING, STUNMSG_CLASS_SUCCESS,
	                   rfc_tid);
	stunmsg_add_text(&b, STUNMSG_ATTR_SOFTWARE, "test vector", 11);
	space_pad(&b, buf, 1);
	stunmsg_add_xor_addr(&b, STUNMSG_ATTR_XOR_MAPPED_ADDRESS, (struct sockaddr *)&ss);
	stunmsg_add_integrity(&b, SHORT_PW, strlen(SHORT_PW));
	stunmsg_add_fingerprint(&b);
	ck_same_as_vector(buf, &b, "rfc5769-response-ipv6.hex");
}
END_TEST

START_TEST(build_longterm_vectors)
{
	uint8_t buf[256], key[32], uh[32];
	struct stunmsg_builder b;
	const struct stunmsg_pwalg sha = {STUNMSG_PWALG_SHA256, 0, NULL};

	stunmsg_key_md5(key, MATRIX_USER, strlen(MATRIX_USER), MATRIX_REALM, 11, MATRIX_PASS, 9);
	stunmsg_build_init(&b, buf, sizeof(buf), STUNMSG_METHOD_BINDING, STUNMSG_CLASS_REQUEST,
	                   matrix_tid);
	stunmsg_add_text(&b, STUNMSG_ATTR_USERNAME, MATRIX_USER, strlen(MATRIX_USER));
	stunmsg_add_text(&b, STUNMSG_ATTR_NONCE, MATRIX_NONCE, strlen(MATRIX_NONCE));
	stunmsg_add_text(&b, STUNMSG_ATTR_REALM, MATRIX_REALM, 11);
	stunmsg_add_integrity(&b, key, 16);
	ck_same_as_vector(buf, &b, "rfc5769-request-longterm.hex");

	/* RFC 8489 B.1: MESSAGE-INTEGRITY-SHA256 without MESSAGE-INTEGRITY. */
	stunmsg_key_sha256(key, MATRIX_USER, strlen(MATRIX_USER), MATRIX_REALM, 11, MATRIX_PASS, 9);
	gnutls_hash_fast(GNUTLS_DIG_SHA256, MATRIX_USER ":" MATRIX_REALM,
	                 strlen(MATRIX_USER ":" MATRIX_REALM), uh);
	stunmsg_build_init(&b, buf, sizeof(buf), STUNMSG_METHOD_BINDING, STUNMSG_CLASS_REQUEST,
	                   matrix_tid);
	stunmsg_add(&b, STUNMSG_ATTR_USERHASH, uh, 32);
	stunmsg_add_text(&b, STUNMSG_ATTR_NONCE, "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA", 41);
	stunmsg_add_text(&b, STUNMSG_ATTR_REALM, MATRIX_REALM, 11);
	stunmsg_add_password_algorithm(&b, &sha);
	stunmsg_add_integrity_sha256(&b, key, 32);
	ck_same_as_vector(buf, &b, "rfc8489-b1-sha256.hex");
}
END_TEST

/* --- every attribute round-trips ------------------------------------------ */

static const uint8_t token[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t payload[5] = {0xde, 0xad, 0xbe, 0xef, 0x01};
static const uint16_t unk[3] = {0x0033, 0x7abc, 0x0002};
static const uint8_t params[3] = {9, 8, 7};

/* Builds an Allocate error response carrying one of every attribute this
 * codec knows, then MESSAGE-INTEGRITY, -SHA256 and FINGERPRINT. */
static int build_everything(uint8_t *buf, size_t cap, size_t *len)
{
	struct stunmsg_builder b;
	struct sockaddr_storage a4, a6, p4, r6, m4, alt;
	const struct stunmsg_pwalg algs[3] = {
	        {STUNMSG_PWALG_MD5, 0, NULL},
	        {STUNMSG_PWALG_SHA256, 0, NULL},
	        {0x7777, 3, params},
	};

	sin4(&a4, "192.0.2.10", 3478);
	sin6(&a6, "2001:db8::10", 5349);
	sin4(&p4, "198.51.100.7", 40000);
	sin6(&r6, "2001:db8:1::7", 49152);
	sin4(&m4, "203.0.113.9", 1);
	sin6(&alt, "2001:db8::3478", 65535);

	stunmsg_build_init(&b, buf, cap, STUNMSG_METHOD_ALLOCATE, STUNMSG_CLASS_ERROR, rfc_tid);
	stunmsg_add_xor_addr(&b, STUNMSG_ATTR_XOR_MAPPED_ADDRESS, (struct sockaddr *)&a4);
	stunmsg_add_xor_addr(&b, STUNMSG_ATTR_XOR_PEER_ADDRESS, (struct sockaddr *)&p4);
	stunmsg_add_xor_addr(&b, STUNMSG_ATTR_XOR_PEER_ADDRESS, (struct sockaddr *)&a6);
	stunmsg_add_xor_addr(&b, STUNMSG_ATTR_XOR_RELAYED_ADDRESS, (struct sockaddr *)&r6);
	stunmsg_add_addr(&b, STUNMSG_ATTR_MAPPED_ADDRESS, (struct sockaddr *)&m4);
	stunmsg_add_addr(&b, STUNMSG_ATTR_ALTERNATE_SERVER, (struct sockaddr *)&alt);
	stunmsg_add_text(&b, STUNMSG_ATTR_USERNAME, "alice", 5);
	stunmsg_add_text(&b, STUNMSG_ATTR_REALM, "example.net", 11);
	stunmsg_add_text(&b, STUNMSG_ATTR_NONCE, "obMatJos2AAAB", 13);
	stunmsg_add_text(&b, STUNMSG_ATTR_SOFTWARE, "sipnat", 6);
	stunmsg_add_error(&b, 438, NULL);
	stunmsg_add_unknown(&b, unk, 3);
	stunmsg_add_u32(&b, STUNMSG_ATTR_LIFETIME, 600);
	stunmsg_add(&b, STUNMSG_ATTR_DATA, payload, sizeof(payload));
	stunmsg_add_requested_transport(&b, STUNMSG_TRANSPORT_UDP);
	stunmsg_add_even_port(&b, true);
	stunmsg_add_reservation_token(&b, token);
	stunmsg_add(&b, STUNMSG_ATTR_DONT_FRAGMENT, NULL, 0);
	stunmsg_add_requested_family(&b, AF_INET6);
	stunmsg_add_channel(&b, 0x4ffe);
	stunmsg_add_password_algorithms(&b, algs, 3);
	stunmsg_add_password_algorithm(&b, &algs[1]);
	stunmsg_add_integrity(&b, "k1", 2);
	stunmsg_add_integrity_sha256(&b, "k256", 4);
	stunmsg_add_fingerprint(&b);
	return stunmsg_build_finish(&b, len);
}

START_TEST(roundtrip_all_attributes)
{
	uint8_t buf[1024], tok[8];
	size_t len, sl, n;
	struct stunmsg m;
	struct sockaddr_storage got, want;
	const struct stunmsg_attr *a;
	const char *s;
	const uint8_t *d;
	int code, fam;
	uint32_t life;
	uint16_t types[8], ch;
	uint8_t proto;
	bool r;
	struct stunmsg_pwalg algs[8], alg;

	ck_assert_int_eq(build_everything(buf, sizeof(buf), &len), 0);
	ck_assert_int_eq(stunmsg_decode(&m, buf, len), 0);
	ck_assert_uint_eq(m.method, STUNMSG_METHOD_ALLOCATE);
	ck_assert_uint_eq(m.cls, STUNMSG_CLASS_ERROR);
	ck_assert_mem_eq(m.tid, rfc_tid, 12);
	ck_assert_uint_eq(m.n_attrs, 25);
	ck_assert_uint_eq(m.n_unknown, 0);

	sin4(&want, "192.0.2.10", 3478);
	ck_assert_int_eq(stunmsg_get_xor_addr(&m, STUNMSG_ATTR_XOR_MAPPED_ADDRESS, &got), 0);
	ck_addr_eq(&got, &want);
	/* Two XOR-PEER-ADDRESS, one of each family, in order. */
	a = stunmsg_find(&m, STUNMSG_ATTR_XOR_PEER_ADDRESS);
	ck_assert_ptr_nonnull(a);
	sin4(&want, "198.51.100.7", 40000);
	ck_assert_int_eq(stunmsg_attr_xor_addr(&m, a, &got), 0);
	ck_addr_eq(&got, &want);
	a = stunmsg_find_next(&m, a);
	ck_assert_ptr_nonnull(a);
	sin6(&want, "2001:db8::10", 5349);
	ck_assert_int_eq(stunmsg_attr_xor_addr(&m, a, &got), 0);
	ck_addr_eq(&got, &want);
	ck_assert_ptr_null(stunmsg_find_next(&m, a));
	sin6(&want, "2001:db8:1::7", 49152);
	ck_assert_int_eq(stunmsg_get_xor_addr(&m, STUNMSG_ATTR_XOR_RELAYED_ADDRESS, &got), 0);
	ck_addr_eq(&got, &want);
	sin4(&want, "203.0.113.9", 1);
	ck_assert_int_eq(stunmsg_get_addr(&m, STUNMSG_ATTR_MAPPED_ADDRESS, &got), 0);
	ck_addr_eq(&got, &want);
	sin6(&want, "2001:db8::3478", 65535);
	ck_assert_int_eq(stunmsg_get_addr(&m, STUNMSG_ATTR_ALTERNATE_SERVER, &got), 0);
	ck_addr_eq(&got, &want);
	/* The XOR really is applied: the plain decoding differs. */
	ck_assert_int_eq(stunmsg_get_addr(&m, STUNMSG_ATTR_XOR_RELAYED_ADDRESS, &got), 0);
	ck_assert(memcmp(&((struct sockaddr_in6 *)&got)->sin6_addr,
	                 &((struct sockaddr_in6 *)&want)->sin6_addr, 16) != 0);

	ck_get_text(stunmsg_get_username, &m, "alice");
	ck_get_text(stunmsg_get_realm, &m, "example.net");
	ck_get_text(stunmsg_get_nonce, &m, "obMatJos2AAAB");
	ck_get_text(stunmsg_get_software, &m, "sipnat");
	ck_assert_int_eq(stunmsg_get_error(&m, &code, &s, &sl), 0);
	ck_assert_int_eq(code, 438);
	ck_text(0, s, sl, "Stale Nonce");
	ck_assert_int_eq(stunmsg_get_unknown(&m, types, 8, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_mem_eq(types, unk, sizeof(unk));
	ck_assert_int_eq(stunmsg_get_unknown(&m, types, 2, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(stunmsg_get_lifetime(&m, &life), 0);
	ck_assert_uint_eq(life, 600);
	ck_assert_int_eq(stunmsg_get_data(&m, &d, &sl), 0);
	ck_assert_uint_eq(sl, sizeof(payload));
	ck_assert_mem_eq(d, payload, sl);
	ck_assert_int_eq(stunmsg_get_requested_transport(&m, &proto), 0);
	ck_assert_uint_eq(proto, 17);
	ck_assert_int_eq(stunmsg_get_even_port(&m, &r), 0);
	ck_assert(r);
	ck_assert_int_eq(stunmsg_get_reservation_token(&m, tok), 0);
	ck_assert_mem_eq(tok, token, 8);
	ck_assert(stunmsg_has(&m, STUNMSG_ATTR_DONT_FRAGMENT));
	ck_assert(!stunmsg_has(&m, STUNMSG_ATTR_USE_CANDIDATE));
	ck_assert_int_eq(stunmsg_get_requested_family(&m, &fam), 0);
	ck_assert_int_eq(fam, AF_INET6);
	ck_assert_int_eq(stunmsg_get_channel(&m, &ch), 0);
	ck_assert_uint_eq(ch, 0x4ffe);
	ck_assert_int_eq(stunmsg_get_password_algorithms(&m, algs, 8, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(algs[0].alg, STUNMSG_PWALG_MD5);
	ck_assert_uint_eq(algs[1].alg, STUNMSG_PWALG_SHA256);
	ck_assert_uint_eq(algs[2].alg, 0x7777);
	ck_assert_uint_eq(algs[2].params_len, 3);
	ck_assert_mem_eq(algs[2].params, params, 3);
	ck_assert_int_eq(stunmsg_get_password_algorithm(&m, &alg), 0);
	ck_assert_uint_eq(alg.alg, STUNMSG_PWALG_SHA256);

	ck_assert_int_eq(stunmsg_check_integrity(&m, "k1", 2), 0);
	ck_assert_int_eq(stunmsg_check_integrity_sha256(&m, "k256", 4), 0);
	ck_assert_int_eq(stunmsg_check_fingerprint(&m), 0);
	ck_assert_int_eq(stunmsg_check_integrity(&m, "k2", 2), -EACCES);
	ck_assert_int_eq(stunmsg_check_integrity_sha256(&m, "k1", 2), -EACCES);
	ck_assert_int_eq(stunmsg_get_integrity(&m, STUNMSG_ATTR_MESSAGE_INTEGRITY, &d, &sl), 0);
	ck_assert_uint_eq(sl, 20);
	ck_assert_int_eq(stunmsg_get_integrity(&m, STUNMSG_ATTR_MESSAGE_INTEGRITY_SHA256, &d, &sl),
	                 0);
	ck_assert_uint_eq(sl, 32);
	ck_assert_int_eq(stunmsg_get_fingerprint(&m, &life), 0);
}
END_TEST

START_TEST(roundtrip_small_values)
{
	uint8_t buf[256];
	struct stunmsg_builder b;
	struct stunmsg m;
	size_t len, sl;
	const char *s;
	int code, fam;
	bool r = true;

	stunmsg_build_init(&b, buf, sizeof(buf), STUNMSG_METHOD_REFRESH, STUNMSG_CLASS_ERROR,
	                   rfc_tid);
	stunmsg_add_error(&b, 699, "");
	stunmsg_add_even_port(&b, false);
	stunmsg_add_requested_family(&b, AF_INET);
	stunmsg_add(&b, STUNMSG_ATTR_DATA, NULL, 0);
	ck_assert_int_eq(stunmsg_build_finish(&b, &len), 0);
	ck_assert_int_eq(stunmsg_decode(&m, buf, len), 0);
	ck_assert_int_eq(stunmsg_get_error(&m, &code, &s, &sl), 0);
	ck_assert_int_eq(code, 699);
	ck_assert_uint_eq(sl, 0);
	ck_assert_int_eq(stunmsg_get_even_port(&m, &r), 0);
	ck_assert(!r);
	ck_assert_int_eq(stunmsg_get_requested_family(&m, &fam), 0);
	ck_assert_int_eq(fam, AF_INET);
	ck_assert_int_eq(stunmsg_get_data(&m, (const uint8_t **)&s, &sl), 0);
	ck_assert_uint_eq(sl, 0);
	ck_assert_int_eq(stunmsg_get_lifetime(&m, (uint32_t *)&code), -ENOENT);
	ck_assert_int_eq(stunmsg_check_integrity(&m, "k", 1), -ENOENT);
	ck_assert_int_eq(stunmsg_check_fingerprint(&m), -ENOENT);
}
END_TEST

/* A truncated MESSAGE-INTEGRITY-SHA256 (16 bytes, §14.6) verifies; the HMAC
 * is computed here independently with GnuTLS. */
START_TEST(sha256_truncated)
{
	uint8_t buf[128], mac[32];
	struct stunmsg m;
	size_t off;

	off = mk_hdr(buf, 0x0001, 8 + 20);
	memcpy(buf + off,
	       "\x80\x22\x00\x04"
	       "sip!",
	       8);
	off += 8;
	put16(buf + off, STUNMSG_ATTR_MESSAGE_INTEGRITY_SHA256);
	put16(buf + off + 2, 16);
	ck_assert_int_eq(gnutls_hmac_fast(GNUTLS_MAC_SHA256, "key", 3, buf, off, mac), 0);
	memcpy(buf + off + 4, mac, 16);
	ck_assert_int_eq(stunmsg_decode(&m, buf, off + 20), 0);
	ck_assert_int_eq(stunmsg_check_integrity_sha256(&m, "key", 3), 0);
	buf[off + 4 + 15] ^= 0x80;
	ck_assert_int_eq(stunmsg_check_integrity_sha256(&m, "key", 3), -EACCES);
	/* 12 bytes is below the §14.6 minimum. */
	put16(buf + 2, 8 + 16);
	put16(buf + off + 2, 12);
	ck_assert_int_eq(stunmsg_decode(&m, buf, off + 16), 0);
	ck_assert_int_eq(stunmsg_check_integrity_sha256(&m, "key", 3), -EBADMSG);
}
END_TEST

/* --- what follows MESSAGE-INTEGRITY, and unknown attributes ------------------ */

START_TEST(unknown_comprehension_required)
{
	uint8_t buf[256];
	struct stunmsg_builder b;
	struct stunmsg m;
	size_t len;

	stunmsg_build_init(&b, buf, sizeof(buf), STUNMSG_METHOD_ALLOCATE, STUNMSG_CLASS_REQUEST,
	                   rfc_tid);
	stunmsg_add(&b, 0x0033, "x", 1);
	stunmsg_add(&b, 0x8033, "y", 1); /* optional: never reported */
	stunmsg_add_requested_transport(&b, 17);
	stunmsg_add(&b, 0x7FFF, NULL, 0);
	stunmsg_add(&b, 0x0033, "x", 1); /* duplicate: reported once */
	stunmsg_add(&b, 0x0000, NULL, 0);
	ck_assert_int_eq(stunmsg_build_finish(&b, &len), 0);
	ck_assert_int_eq(stunmsg_decode(&m, buf, len), 0);
	ck_assert_uint_eq(m.n_attrs, 6);
	ck_assert_uint_eq(m.n_unknown, 3);
	ck_assert_uint_eq(m.unknown[0], 0x0033);
	ck_assert_uint_eq(m.unknown[1], 0x7FFF);
	ck_assert_uint_eq(m.unknown[2], 0x0000);
}
END_TEST

/* §14.5/§14.6: after MESSAGE-INTEGRITY only -SHA256 and FINGERPRINT count;
 * after -SHA256 only FINGERPRINT.  Hand-made, since the builder refuses. */
START_TEST(after_integrity_ignored)
{
	uint8_t buf[256];
	struct stunmsg m;
	size_t off = STUNMSG_HDR_LEN;

	/* MI, then USERNAME, an unknown required attribute, MI-SHA256, a
	 * second MI, then nothing else. */
	put16(buf + off, STUNMSG_ATTR_MESSAGE_INTEGRITY);
	put16(buf + off + 2, 20);
	memset(buf + off + 4, 0, 20);
	off += 24;
	memcpy(buf + off,
	       "\x00\x06\x00\x04"
	       "mall",
	       8);
	off += 8;
	memcpy(buf + off, "\x00\x33\x00\x00", 4);
	off += 4;
	put16(buf + off, STUNMSG_ATTR_MESSAGE_INTEGRITY_SHA256);
	put16(buf + off + 2, 32);
	memset(buf + off + 4, 0, 32);
	off += 36;
	memcpy(buf + off,
	       "\x00\x06\x00\x04"
	       "eve!",
	       8);
	off += 8;
	mk_hdr(buf, 0x0001, off - STUNMSG_HDR_LEN);
	ck_assert_int_eq(stunmsg_decode(&m, buf, off), 0);
	ck_assert_uint_eq(m.n_attrs, 2);
	ck_assert_uint_eq(m.attrs[0].type, STUNMSG_ATTR_MESSAGE_INTEGRITY);
	ck_assert_uint_eq(m.attrs[1].type, STUNMSG_ATTR_MESSAGE_INTEGRITY_SHA256);
	ck_assert(!stunmsg_has(&m, STUNMSG_ATTR_USERNAME));
	ck_assert_uint_eq(m.n_unknown, 0);
}
END_TEST

START_TEST(nothing_after_fingerprint)
{
	uint8_t buf[64];
	struct stunmsg m;
	size_t off = STUNMSG_HDR_LEN;

	memcpy(buf + off, "\x80\x28\x00\x04\x00\x00\x00\x00", 8);
	off += 8;
	memcpy(buf + off, "\x80\x22\x00\x00", 4);
	off += 4;
	mk_hdr(buf, 0x0001, off - STUNMSG_HDR_LEN);
	ck_assert_int_eq(stunmsg_decode(&m, buf, off), -EBADMSG);
	/* Without the trailing attribute it decodes, and the zero CRC is
	 * wrong. */
	mk_hdr(buf, 0x0001, 8);
	ck_assert_int_eq(stunmsg_decode(&m, buf, STUNMSG_HDR_LEN + 8), 0);
	ck_assert_int_eq(stunmsg_check_fingerprint(&m), -EACCES);
}
END_TEST

/* --- malformed input --------------------------------------------------------- */

static int decode_copy(const uint8_t *p, size_t n)
{
	struct stunmsg m;
	uint8_t *c = dup_exact(p, n);
	int r = stunmsg_decode(&m, c, n);

	free(c);
	return r;
}

START_TEST(malformed_headers)
{
	uint8_t buf[64];
	struct stunmsg m;

	mk_hdr(buf, 0x0001, 0);
	ck_assert_int_eq(decode_copy(buf, 20), 0); /* empty message is fine */
	ck_assert_int_eq(stunmsg_decode(&m, NULL, 0), -EBADMSG);
	ck_assert_int_eq(stunmsg_decode(NULL, buf, 20), -EINVAL);
	ck_assert_int_eq(decode_copy(buf, 19), -EBADMSG);
	ck_assert_int_eq(decode_copy(buf, 1), -EBADMSG);

	buf[0] = 0x80; /* first bits 10: RTP-ish */
	ck_assert_int_eq(decode_copy(buf, 20), -EBADMSG);
	buf[0] = 0x40; /* first bits 01: ChannelData */
	ck_assert_int_eq(decode_copy(buf, 20), -EBADMSG);

	mk_hdr(buf, 0x0001, 0);
	buf[7] = 0x43; /* cookie */
	ck_assert_int_eq(decode_copy(buf, 20), -EBADMSG);

	mk_hdr(buf, 0x0001, 2); /* not a multiple of 4 */
	memset(buf + 20, 0, 4);
	ck_assert_int_eq(decode_copy(buf, 22), -EBADMSG);
	mk_hdr(buf, 0x0001, 4); /* says 4, buffer has 8 */
	memset(buf + 20, 0, 8);
	ck_assert_int_eq(decode_copy(buf, 28), -EBADMSG);
	mk_hdr(buf, 0x0001, 8); /* says 8, buffer has 4 */
	ck_assert_int_eq(decode_copy(buf, 24), -EBADMSG);
	mk_hdr(buf, 0x0001, 0xFFFC); /* huge length, short buffer */
	ck_assert_int_eq(decode_copy(buf, 24), -EBADMSG);
}
END_TEST

START_TEST(malformed_attributes)
{
	uint8_t buf[64];

	/* Attribute value longer than the message. */
	mk_hdr(buf, 0x0001, 8);
	memcpy(buf + 20,
	       "\x00\x06\x00\x05"
	       "abcd",
	       8);
	ck_assert_int_eq(decode_copy(buf, 28), -EBADMSG);
	/* Huge attribute length. */
	memcpy(buf + 20, "\x00\x06\xff\xff\x00\x00\x00\x00", 8);
	ck_assert_int_eq(decode_copy(buf, 28), -EBADMSG);
	/* Exactly fits: 4 bytes, no padding. */
	memcpy(buf + 20,
	       "\x00\x06\x00\x04"
	       "abcd",
	       8);
	ck_assert_int_eq(decode_copy(buf, 28), 0);
	/* Padding of the last attribute missing. */
	mk_hdr(buf, 0x0001, 8);
	memcpy(buf + 20,
	       "\x00\x06\x00\x01"
	       "a\0\0\0\x00\x06\x00\x01",
	       12);
	ck_assert_int_eq(decode_copy(buf, 28), 0);
	mk_hdr(buf, 0x0001, 12);
	buf[31] = 0x02; /* second attribute 2 bytes, 0 left */
	ck_assert_int_eq(decode_copy(buf, 32), -EBADMSG);
	/* Zero-length attributes. */
	mk_hdr(buf, 0x0001, 8);
	memcpy(buf + 20, "\x00\x1a\x00\x00\x00\x25\x00\x00", 8);
	ck_assert_int_eq(decode_copy(buf, 28), 0);
}
END_TEST

START_TEST(too_many_attributes)
{
	uint8_t buf[STUNMSG_HDR_LEN + 4 * (STUNMSG_MAX_ATTRS + 1)];
	struct stunmsg m;
	size_t i;

	for (i = 0; i <= STUNMSG_MAX_ATTRS; i++)
		memcpy(buf + STUNMSG_HDR_LEN + 4 * i, "\x80\x22\x00\x00", 4);
	mk_hdr(buf, 0x0001, 4 * STUNMSG_MAX_ATTRS);
	ck_assert_int_eq(stunmsg_decode(&m, buf, STUNMSG_HDR_LEN + 4 * STUNMSG_MAX_ATTRS), 0);
	ck_assert_uint_eq(m.n_attrs, STUNMSG_MAX_ATTRS);
	mk_hdr(buf, 0x0001, 4 * (STUNMSG_MAX_ATTRS + 1));
	ck_assert_int_eq(stunmsg_decode(&m, buf, sizeof(buf)), -E2BIG);
}
END_TEST

/* A message holding one attribute, for getter checks. */
static void one_attr(struct stunmsg *m, uint8_t *buf, uint16_t type, const void *val, size_t len)
{
	size_t padded = (len + 3) & ~(size_t)3;

	mk_hdr(buf, 0x0001, 4 + padded);
	put16(buf + 20, type);
	put16(buf + 22, (uint16_t)len);
	memset(buf + 24, 0, padded);
	memcpy(buf + 24, val, len);
	ck_assert_int_eq(stunmsg_decode(m, buf, 24 + padded), 0);
}

START_TEST(malformed_values)
{
	uint8_t buf[1024], big[800], tok[8];
	struct stunmsg m;
	struct sockaddr_storage ss;
	const char *s;
	const uint8_t *d;
	size_t n;
	int code;
	uint16_t ch, t[4];
	uint32_t u;
	bool r;
	struct stunmsg_pwalg alg;

	one_attr(&m, buf, STUNMSG_ATTR_XOR_MAPPED_ADDRESS, "\x00\x03\x00\x01\x01\x02\x03\x04", 8);
	ck_assert_int_eq(stunmsg_get_xor_addr(&m, STUNMSG_ATTR_XOR_MAPPED_ADDRESS, &ss), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_XOR_MAPPED_ADDRESS, "\x00\x02\x00\x01\x01\x02\x03\x04", 8);
	ck_assert_int_eq(stunmsg_get_xor_addr(&m, STUNMSG_ATTR_XOR_MAPPED_ADDRESS, &ss),
	                 -EBADMSG); /* IPv6 family, IPv4 length */
	one_attr(&m, buf, STUNMSG_ATTR_MAPPED_ADDRESS, "\x00\x01\x00", 3);
	ck_assert_int_eq(stunmsg_get_addr(&m, STUNMSG_ATTR_MAPPED_ADDRESS, &ss), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_ERROR_CODE, "\x00\x00\x07\x00", 4);
	ck_assert_int_eq(stunmsg_get_error(&m, &code, NULL, NULL), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_ERROR_CODE, "\x00\x00\x04\x64", 4); /* number 100 */
	ck_assert_int_eq(stunmsg_get_error(&m, &code, NULL, NULL), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_ERROR_CODE, "\x00\x00\x04", 3);
	ck_assert_int_eq(stunmsg_get_error(&m, &code, NULL, NULL), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_UNKNOWN_ATTRIBUTES, "\x00\x33\x00", 3);
	ck_assert_int_eq(stunmsg_get_unknown(&m, t, 4, &n), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_CHANNEL_NUMBER, "\x3f\xff\x00\x00", 4);
	ck_assert_int_eq(stunmsg_get_channel(&m, &ch), -ERANGE);
	one_attr(&m, buf, STUNMSG_ATTR_CHANNEL_NUMBER, "\x50\x00\x00\x00", 4);
	ck_assert_int_eq(stunmsg_get_channel(&m, &ch), -ERANGE);
	one_attr(&m, buf, STUNMSG_ATTR_CHANNEL_NUMBER, "\x40\x00", 2);
	ck_assert_int_eq(stunmsg_get_channel(&m, &ch), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_REQUESTED_ADDRESS_FAMILY, "\x03\x00\x00\x00", 4);
	ck_assert_int_eq(stunmsg_get_requested_family(&m, &code), -EAFNOSUPPORT);
	one_attr(&m, buf, STUNMSG_ATTR_LIFETIME, "\x00\x00\x01", 3);
	ck_assert_int_eq(stunmsg_get_lifetime(&m, &u), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_EVEN_PORT, "\x80\x00", 2);
	ck_assert_int_eq(stunmsg_get_even_port(&m, &r), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_RESERVATION_TOKEN, "1234567", 7);
	ck_assert_int_eq(stunmsg_get_reservation_token(&m, tok), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_REQUESTED_TRANSPORT, "\x11", 1);
	ck_assert_int_eq(stunmsg_get_requested_transport(&m, tok), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_PASSWORD_ALGORITHMS, "\x00\x01\x00\x09\x00", 5);
	ck_assert_int_eq(stunmsg_get_password_algorithms(&m, &alg, 1, &n), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_PASSWORD_ALGORITHMS, "\x00\x01\x00\x00\x00\x02", 6);
	ck_assert_int_eq(stunmsg_get_password_algorithms(&m, &alg, 1, &n), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_PASSWORD_ALGORITHM, "\x00\x01\x00\x00\x00\x00\x00\x00", 8);
	ck_assert_int_eq(stunmsg_get_password_algorithm(&m, &alg), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_USERHASH, "short", 5);
	ck_assert_int_eq(stunmsg_get_userhash(&m, &d), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_MESSAGE_INTEGRITY, "0123456789abcdef", 16);
	ck_assert_int_eq(stunmsg_check_integrity(&m, "k", 1), -EBADMSG);
	ck_assert_int_eq(stunmsg_get_integrity(&m, STUNMSG_ATTR_MESSAGE_INTEGRITY, &d, &n),
	                 -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_FINGERPRINT, "\x00\x00", 2);
	ck_assert_int_eq(stunmsg_check_fingerprint(&m), -EBADMSG);

	memset(big, 'a', sizeof(big));
	one_attr(&m, buf, STUNMSG_ATTR_USERNAME, big, 513);
	ck_assert_int_eq(stunmsg_get_username(&m, &s, &n), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_USERNAME, big, 512);
	ck_assert_int_eq(stunmsg_get_username(&m, &s, &n), 0);
	one_attr(&m, buf, STUNMSG_ATTR_REALM, big, 763);
	ck_assert_int_eq(stunmsg_get_realm(&m, &s, &n), -EBADMSG);
	one_attr(&m, buf, STUNMSG_ATTR_NONCE, big, 763);
	ck_assert_int_eq(stunmsg_get_nonce(&m, &s, &n), -EBADMSG);
}
END_TEST

/* Every prefix of every vector must be refused, and no read may leave the
 * exact-size heap copy (ASan builds catch it). */
START_TEST(truncations)
{
	static const char *files[] = {"rfc5769-request.hex", "rfc5769-response-ipv4.hex",
	                              "rfc5769-response-ipv6.hex", "rfc5769-request-longterm.hex",
	                              "rfc8489-b1-sha256.hex"};
	size_t f, len, n;

	for (f = 0; f < 5; f++) {
		uint8_t *v = load_vec(files[f], &len);

		bool boundary[STUNMSG_MAX_LEN / 4 + 1] = {false};
		size_t off;

		for (n = 0; n < len; n++)
			ck_assert_int_eq(decode_copy(v, n), -EBADMSG);
		/* Cut at every multiple of 4 with the header length made to
		 * agree: only cuts at an attribute boundary may decode. */
		for (off = 20; off < len; off += 4 + ((v[off + 2] << 8 | v[off + 3]) + 3) / 4 * 4)
			boundary[off / 4] = true;
		for (n = 20; n < len; n += 4) {
			uint8_t *c = dup_exact(v, n);
			struct stunmsg m;

			put16(c + 2, (uint16_t)(n - 20));
			ck_assert_int_eq(stunmsg_decode(&m, c, n),
			                 (boundary[n / 4] ? 0 : -EBADMSG));
			free(c);
		}
		free(v);
	}
}
END_TEST

/* Random mutations of the vectors through every reader.  Deterministic
 * (fixed LCG seed); its point is to crash under the sanitizers if any
 * bounds check is missing. */
START_TEST(mutations)
{
	static const char *files[] = {"rfc5769-request.hex", "rfc5769-response-ipv4.hex",
	                              "rfc8489-b1-sha256.hex"};
	uint32_t seed = 12345;
	size_t f, it, len;
	unsigned decoded = 0;

	for (f = 0; f < 3; f++) {
		uint8_t *v = load_vec(files[f], &len);

		for (it = 0; it < 5000; it++) {
			uint8_t *b = dup_exact(v, len);
			struct stunmsg m;
			struct sockaddr_storage ss;
			struct stunmsg_pwalg algs[4];
			const char *s;
			size_t n, k;
			int code;
			uint16_t t[4];

			for (k = 0; k < 1 + it % 4; k++) {
				seed = seed * 1103515245u + 12345u;
				/* Leave the header alone half the time, so
				 * attribute parsing is reached. */
				b[(it % 2 ? 20 : 0) + (seed >> 8) % (len - 20)] =
				        (uint8_t)(seed >> 24);
			}
			if (stunmsg_decode(&m, b, len) == 0) {
				decoded++;
				for (k = 0; k < m.n_attrs; k++) {
					stunmsg_attr_xor_addr(&m, &m.attrs[k], &ss);
					stunmsg_attr_addr(&m.attrs[k], &ss);
				}
				stunmsg_get_username(&m, &s, &n);
				stunmsg_get_error(&m, &code, &s, &n);
				stunmsg_get_unknown(&m, t, 4, &n);
				stunmsg_get_password_algorithms(&m, algs, 4, &n);
				stunmsg_check_integrity(&m, "k", 1);
				stunmsg_check_integrity_sha256(&m, "k", 1);
				stunmsg_check_fingerprint(&m);
			}
			free(b);
		}
		free(v);
	}
	ck_assert_uint_gt(decoded, 100);
}
END_TEST

/* --- builder errors ------------------------------------------------------------ */

START_TEST(builder_overflow)
{
	uint8_t ref[1024], *buf;
	size_t full, cap, len;

	ck_assert_int_eq(build_everything(ref, sizeof(ref), &full), 0);
	buf = malloc(full + 64);
	ck_assert_ptr_nonnull(buf);
	for (cap = 0; cap < full; cap++) {
		size_t i;

		memset(buf, 0xAA, full + 64);
		ck_assert_int_eq(build_everything(buf, cap, &len), -ENOBUFS);
		for (i = cap; i < full + 64; i++)
			ck_assert_msg(buf[i] == 0xAA, "cap %zu: byte %zu written", cap, i);
	}
	ck_assert_int_eq(build_everything(buf, full, &len), 0);
	ck_assert_uint_eq(len, full);
	ck_assert_mem_eq(buf, ref, full);
	free(buf);
}
END_TEST

START_TEST(builder_rules)
{
	uint8_t buf[256];
	char big[600];
	struct stunmsg_builder b;
	struct sockaddr sa;
	size_t len;

	/* Errors stick: later adds do nothing, finish reports the first. */
	stunmsg_build_init(&b, buf, 40, STUNMSG_METHOD_BINDING, STUNMSG_CLASS_REQUEST, rfc_tid);
	ck_assert_int_eq(stunmsg_add(&b, STUNMSG_ATTR_DATA, big, 100), -ENOBUFS);
	ck_assert_int_eq(stunmsg_add(&b, STUNMSG_ATTR_DATA, big, 4), -ENOBUFS);
	ck_assert_int_eq(stunmsg_build_finish(&b, &len), -ENOBUFS);

	stunmsg_build_init(&b, buf, sizeof(buf), STUNMSG_METHOD_BINDING, STUNMSG_CLASS_REQUEST,
	                   rfc_tid);
	ck_assert_int_eq(stunmsg_add_integrity(&b, "k", 1), 0);
	ck_assert_int_eq(stunmsg_add_text(&b, STUNMSG_ATTR_USERNAME, "late", 4), -EINVAL);

	stunmsg_build_init(&b, buf, sizeof(buf), STUNMSG_METHOD_BINDING, STUNMSG_CLASS_REQUEST,
	                   rfc_tid);
	ck_assert_int_eq(stunmsg_add_integrity_sha256(&b, "k", 1), 0);
	ck_assert_int_eq(stunmsg_add_integrity(&b, "k", 1), -EINVAL);

	stunmsg_build_init(&b, buf, sizeof(buf), STUNMSG_METHOD_BINDING, STUNMSG_CLASS_REQUEST,
	                   rfc_tid);
	ck_assert_int_eq(stunmsg_add_fingerprint(&b), 0);
	ck_assert_int_eq(stunmsg_add_fingerprint(&b), -EINVAL);

	memset(big, 'a', sizeof(big));
	stunmsg_build_init(&b, buf, sizeof(buf), 1, 0, rfc_tid);
	ck_assert_int_eq(stunmsg_add_text(&b, STUNMSG_ATTR_REALM, big, 509), -EINVAL);
	stunmsg_build_init(&b, buf, sizeof(buf), 1, 0, rfc_tid);
	ck_assert_int_eq(stunmsg_add_channel(&b, 0x5000), -EINVAL);
	stunmsg_build_init(&b, buf, sizeof(buf), 1, 0, rfc_tid);
	ck_assert_int_eq(stunmsg_add_requested_family(&b, AF_UNIX), -EAFNOSUPPORT);
	stunmsg_build_init(&b, buf, sizeof(buf), 1, 0, rfc_tid);
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	ck_assert_int_eq(stunmsg_add_xor_addr(&b, STUNMSG_ATTR_XOR_PEER_ADDRESS, &sa),
	                 -EAFNOSUPPORT);
	stunmsg_build_init(&b, buf, sizeof(buf), 1, 0, rfc_tid);
	ck_assert_int_eq(stunmsg_add_error(&b, 200, NULL), -EINVAL);

	ck_assert_int_eq(stunmsg_build_init(&b, buf, 19, 1, 0, rfc_tid), -ENOBUFS);
	ck_assert_int_eq(stunmsg_build_init(&b, buf, sizeof(buf), 0x1000, 0, rfc_tid), -EINVAL);
	ck_assert_int_eq(stunmsg_build_init(&b, buf, sizeof(buf), 1, 4, rfc_tid), -EINVAL);
	ck_assert_int_eq(stunmsg_add_fingerprint(&b), -EINVAL);
	ck_assert_int_eq(stunmsg_build_finish(&b, &len), -EINVAL);
}
END_TEST

/* --- ChannelData and stream framing ----------------------------------------------- */

START_TEST(chandata_parse_build)
{
	uint8_t buf[64], tiny[8];
	struct stunmsg_chandata cd;
	size_t n, i;

	ck_assert_int_eq(stunmsg_chandata_build(buf, sizeof(buf), 0x4001, payload, 5, false, &n),
	                 0);
	ck_assert_uint_eq(n, 9);
	ck_assert_mem_eq(buf, "\x40\x01\x00\x05", 4);
	ck_assert_int_eq(stunmsg_chandata_parse(&cd, buf, n), 0);
	ck_assert_uint_eq(cd.channel, 0x4001);
	ck_assert_uint_eq(cd.len, 5);
	ck_assert_mem_eq(cd.data, payload, 5);

	memset(buf, 0xEE, sizeof(buf));
	ck_assert_int_eq(stunmsg_chandata_build(buf, sizeof(buf), 0x4FFF, payload, 5, true, &n), 0);
	ck_assert_uint_eq(n, 12);
	ck_assert_mem_eq(buf + 9, "\0\0\0", 3);
	ck_assert_int_eq(stunmsg_chandata_parse(&cd, buf, n), 0); /* padding ignored */
	ck_assert_uint_eq(cd.len, 5);
	ck_assert_int_eq(stunmsg_chandata_build(buf, sizeof(buf), 0x4000, NULL, 0, true, &n), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(stunmsg_chandata_parse(&cd, buf, n), 0);
	ck_assert_uint_eq(cd.len, 0);

	/* Too small a buffer: error, nothing written. */
	memset(tiny, 0xAA, sizeof(tiny));
	ck_assert_int_eq(stunmsg_chandata_build(tiny, 8, 0x4000, payload, 5, true, &n), -ENOBUFS);
	for (i = 0; i < sizeof(tiny); i++)
		ck_assert_uint_eq(tiny[i], 0xAA);
	ck_assert_int_eq(stunmsg_chandata_build(tiny, 8, 0x3FFF, payload, 1, false, &n), -EINVAL);
	ck_assert_int_eq(stunmsg_chandata_build(tiny, 8, 0x5000, payload, 1, false, &n), -EINVAL);

	ck_assert_int_eq(stunmsg_chandata_parse(&cd, (const uint8_t *)"\x40\x00\x00", 3), -EBADMSG);
	ck_assert_int_eq(stunmsg_chandata_parse(&cd,
	                                        (const uint8_t *)"\x40\x00\x00\x05"
	                                                         "abcd",
	                                        8),
	                 -EBADMSG);
	ck_assert_int_eq(stunmsg_chandata_parse(&cd, (const uint8_t *)"\x3f\xff\x00\x00", 4),
	                 -EBADMSG);
	ck_assert_int_eq(stunmsg_chandata_parse(&cd, (const uint8_t *)"\x50\x00\x00\x00", 4),
	                 -EBADMSG);
	ck_assert_int_eq(stunmsg_chandata_parse(&cd, (const uint8_t *)"\xff\xff\x00\x00", 4),
	                 -EBADMSG);
}
END_TEST

/* A TCP stream of STUN, ChannelData (odd length, so padded) and STUN again,
 * fed in every possible prefix. */
START_TEST(frame_len_stream)
{
	uint8_t stream[512], *p;
	size_t lens[3], total = 0, n, fl, i, at;
	size_t v;
	uint8_t *vec = load_vec("rfc5769-request.hex", &v);
	int r;

	memcpy(stream, vec, v);
	lens[0] = v;
	ck_assert_int_eq(stunmsg_chandata_build(stream + v, sizeof(stream) - v, 0x4123, payload, 5,
	                                        true, &n),
	                 0);
	lens[1] = n;
	ck_assert_uint_eq(n, 12);
	memcpy(stream + v + n, vec, v);
	lens[2] = v;
	total = 2 * v + n;
	free(vec);

	/* Every prefix of each frame: -EAGAIN until complete; the size is
	 * known once the header is. */
	for (at = 0, i = 0; i < 3; at += lens[i], i++) {
		size_t hdr = i == 1 ? 4 : 20;

		for (n = 0; n < lens[i]; n++) {
			p = malloc(n ? n : 1);
			memcpy(p, stream + at, n);
			r = stunmsg_frame_len(p, n, &fl);
			ck_assert_int_eq(r, -EAGAIN);
			ck_assert_uint_eq(fl, n < hdr ? 0 : lens[i]);
			free(p);
		}
		ck_assert_int_eq(stunmsg_frame_len(stream + at, total - at, &fl), 0);
		ck_assert_uint_eq(fl, lens[i]);
	}
	/* The framing loop a TCP reader would run. */
	for (at = 0, i = 0; stunmsg_frame_len(stream + at, total - at, &fl) == 0; i++)
		at += fl;
	ck_assert_uint_eq(i, 3);
	ck_assert_uint_eq(at, total);
}
END_TEST

START_TEST(frame_len_garbage)
{
	size_t fl;
	uint8_t b[20];

	ck_assert_int_eq(stunmsg_frame_len(NULL, 0, &fl), -EAGAIN);
	ck_assert_int_eq(stunmsg_frame_len((const uint8_t *)"\x80", 1, &fl), -EBADMSG);
	ck_assert_int_eq(stunmsg_frame_len((const uint8_t *)"\x16\x03\x01", 3, &fl), -EAGAIN);
	ck_assert_int_eq(stunmsg_frame_len((const uint8_t *)"POST / HTTP/1.1", 15, &fl), -EBADMSG);
	ck_assert_int_eq(stunmsg_frame_len((const uint8_t *)"\x50\x00", 2, &fl), -EBADMSG);
	ck_assert_int_eq(stunmsg_frame_len((const uint8_t *)"\x7f", 1, &fl), -EBADMSG);
	ck_assert_int_eq(stunmsg_frame_len((const uint8_t *)"\xc0", 1, &fl), -EBADMSG);
	/* Bad cookie is spotted from its first byte. */
	ck_assert_int_eq(stunmsg_frame_len((const uint8_t *)"\x00\x01\x00\x00\x22", 5, &fl),
	                 -EBADMSG);
	ck_assert_int_eq(stunmsg_frame_len((const uint8_t *)"\x00\x01\x00\x00\x21", 5, &fl),
	                 -EAGAIN);
	/* Length not a multiple of 4. */
	ck_assert_int_eq(stunmsg_frame_len((const uint8_t *)"\x00\x01\x00\x03", 4, &fl), -EBADMSG);
	/* Largest STUN frame. */
	mk_hdr(b, 0x0001, 0xFFFC);
	ck_assert_int_eq(stunmsg_frame_len(b, 20, &fl), -EAGAIN);
	ck_assert_uint_eq(fl, 20 + 0xFFFC);
	/* Largest ChannelData frame: 65535 rounds up to 65536. */
	ck_assert_int_eq(stunmsg_frame_len((const uint8_t *)"\x4f\xff\xff\xff", 4, &fl), -EAGAIN);
	ck_assert_uint_eq(fl, 4 + 65536);
	ck_assert_int_eq(stunmsg_frame_len(b, 20, NULL), -EINVAL);
}
END_TEST

static Suite *stunmsg_suite(void)
{
	Suite *s = suite_create("stunmsg");
	struct {
		const char *name;
		const TTest *t;
	} cases[] = {
	        {"type_known_values", type_known_values},
	        {"type_names_and_reasons", type_names_and_reasons},
	        {"vec_request", vec_request},
	        {"vec_response_ipv4", vec_response_ipv4},
	        {"vec_response_ipv6", vec_response_ipv6},
	        {"vec_longterm", vec_longterm},
	        {"vec_rfc8489_sha256", vec_rfc8489_sha256},
	        {"keys_known_values", keys_known_values},
	        {"vec_bitflips", vec_bitflips},
	        {"build_rfc5769_request", build_rfc5769_request},
	        {"build_rfc5769_responses", build_rfc5769_responses},
	        {"build_longterm_vectors", build_longterm_vectors},
	        {"roundtrip_all_attributes", roundtrip_all_attributes},
	        {"roundtrip_small_values", roundtrip_small_values},
	        {"sha256_truncated", sha256_truncated},
	        {"unknown_comprehension_required", unknown_comprehension_required},
	        {"after_integrity_ignored", after_integrity_ignored},
	        {"nothing_after_fingerprint", nothing_after_fingerprint},
	        {"malformed_headers", malformed_headers},
	        {"malformed_attributes", malformed_attributes},
	        {"too_many_attributes", too_many_attributes},
	        {"malformed_values", malformed_values},
	        {"truncations", truncations},
	        {"mutations", mutations},
	        {"builder_overflow", builder_overflow},
	        {"builder_rules", builder_rules},
	        {"chandata_parse_build", chandata_parse_build},
	        {"frame_len_stream", frame_len_stream},
	        {"frame_len_garbage", frame_len_garbage},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);

		tcase_set_timeout(tc, 30);
		tcase_add_test(tc, cases[i].t);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(stunmsg_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
