/* stunmsg: STUN/TURN message codec (RFC 8489, RFC 8656).
 *
 * Everything works on caller-owned byte buffers.  Integers on the wire are
 * big-endian and may sit at any alignment, so they are read and written a
 * byte at a time; structs are never overlaid on packet bytes.  Every length
 * read from the wire is compared with what is left of the buffer before it
 * is used, in size_t arithmetic that cannot wrap (values are at most 16
 * bits, buffers at most STUNMSG_MAX_LEN).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <string.h>
#include <netinet/in.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "sipnat/stunmsg.h"

/* RFC 8489 §14.7: the CRC is XORed with this so that an application
 * protocol that also uses CRC-32 cannot be mistaken for STUN. */
#define FINGERPRINT_XOR 0x5354554eu

/* Text limits.  RFC 8489 §14.3: USERNAME fewer than 509 bytes; RFC 5389
 * allowed fewer than 513, which older clients still send, so we accept that
 * much.  §14.8/§14.9/§14.10/§14.14: fewer than 128 characters, "as long as
 * 509 bytes when encoding them and as long as 763 bytes when decoding". */
#define TEXT_ENCODE_MAX     508
#define TEXT_DECODE_MAX     762
#define USERNAME_DECODE_MAX 512

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* --- message type ---------------------------------------------------- */

/* RFC 8489 §5: the class bits C0 and C1 sit at type bits 4 and 8, between
 * the method bits, so that the first two bits stay zero. */
uint16_t stunmsg_type(uint16_t method, unsigned cls)
{
	return (uint16_t)((method & 0x000F) | (method & 0x0070) << 1 | (method & 0x0F80) << 2 |
	                  (cls & 1) << 4 | (cls & 2) << 7);
}

void stunmsg_type_split(uint16_t type, uint16_t *method, unsigned *cls)
{
	if (method)
		*method = (uint16_t)((type & 0x000F) | (type >> 1 & 0x0070) | (type >> 2 & 0x0F80));
	if (cls)
		*cls = (unsigned)((type >> 4 & 1) | (type >> 7 & 2));
}

const char *stunmsg_method_name(uint16_t method)
{
	switch (method) {
	case STUNMSG_METHOD_BINDING:
		return "Binding";
	case STUNMSG_METHOD_ALLOCATE:
		return "Allocate";
	case STUNMSG_METHOD_REFRESH:
		return "Refresh";
	case STUNMSG_METHOD_SEND:
		return "Send";
	case STUNMSG_METHOD_DATA:
		return "Data";
	case STUNMSG_METHOD_CREATE_PERMISSION:
		return "CreatePermission";
	case STUNMSG_METHOD_CHANNEL_BIND:
		return "ChannelBind";
	}
	return NULL;
}

const char *stunmsg_class_name(unsigned cls)
{
	switch (cls) {
	case STUNMSG_CLASS_REQUEST:
		return "request";
	case STUNMSG_CLASS_INDICATION:
		return "indication";
	case STUNMSG_CLASS_SUCCESS:
		return "success response";
	case STUNMSG_CLASS_ERROR:
		return "error response";
	}
	return NULL;
}

const char *stunmsg_reason(int code)
{
	switch (code) {
	case 300:
		return "Try Alternate";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthenticated"; /* RFC 8489 renamed "Unauthorized" */
	case 403:
		return "Forbidden";
	case 420:
		return "Unknown Attribute";
	case 437:
		return "Allocation Mismatch";
	case 438:
		return "Stale Nonce";
	case 440:
		return "Address Family not Supported";
	case 441:
		return "Wrong Credentials";
	case 442:
		return "Unsupported Transport Protocol";
	case 443:
		return "Peer Address Family Mismatch";
	case 446:
		return "Connection Already Exists"; /* RFC 6062 */
	case 447:
		return "Connection Timeout or Failure"; /* RFC 6062 */
	case 486:
		return "Allocation Quota Reached";
	case 500:
		return "Server Error";
	case 508:
		return "Insufficient Capacity";
	}
	return NULL;
}

bool stunmsg_attr_known(uint16_t type)
{
	switch (type) {
	case STUNMSG_ATTR_MAPPED_ADDRESS:
	case STUNMSG_ATTR_USERNAME:
	case STUNMSG_ATTR_MESSAGE_INTEGRITY:
	case STUNMSG_ATTR_ERROR_CODE:
	case STUNMSG_ATTR_UNKNOWN_ATTRIBUTES:
	case STUNMSG_ATTR_CHANNEL_NUMBER:
	case STUNMSG_ATTR_LIFETIME:
	case STUNMSG_ATTR_XOR_PEER_ADDRESS:
	case STUNMSG_ATTR_DATA:
	case STUNMSG_ATTR_REALM:
	case STUNMSG_ATTR_NONCE:
	case STUNMSG_ATTR_XOR_RELAYED_ADDRESS:
	case STUNMSG_ATTR_REQUESTED_ADDRESS_FAMILY:
	case STUNMSG_ATTR_EVEN_PORT:
	case STUNMSG_ATTR_REQUESTED_TRANSPORT:
	case STUNMSG_ATTR_DONT_FRAGMENT:
	case STUNMSG_ATTR_MESSAGE_INTEGRITY_SHA256:
	case STUNMSG_ATTR_PASSWORD_ALGORITHM:
	case STUNMSG_ATTR_USERHASH:
	case STUNMSG_ATTR_XOR_MAPPED_ADDRESS:
	case STUNMSG_ATTR_RESERVATION_TOKEN:
	case STUNMSG_ATTR_PRIORITY:
	case STUNMSG_ATTR_USE_CANDIDATE:
	case STUNMSG_ATTR_PASSWORD_ALGORITHMS:
	case STUNMSG_ATTR_ALTERNATE_DOMAIN:
	case STUNMSG_ATTR_SOFTWARE:
	case STUNMSG_ATTR_ALTERNATE_SERVER:
	case STUNMSG_ATTR_FINGERPRINT:
	case STUNMSG_ATTR_ICE_CONTROLLED:
	case STUNMSG_ATTR_ICE_CONTROLLING:
		return true;
	}
	return false;
}

/* --- decoding --------------------------------------------------------- */

static void note_unknown(struct stunmsg *m, uint16_t type)
{
	size_t i;

	for (i = 0; i < m->n_unknown; i++)
		if (m->unknown[i] == type)
			return;
	if (m->n_unknown < STUNMSG_MAX_UNKNOWN)
		m->unknown[m->n_unknown++] = type;
}

/* Which attributes a receiver still processes, RFC 8489 §14.5-§14.7. */
enum stage { OPEN, AFTER_MI, AFTER_MI256, AFTER_FP };

int stunmsg_decode(struct stunmsg *m, const uint8_t *buf, size_t len)
{
	enum stage stage = OPEN;
	size_t off;
	unsigned cls;

	if (!m || (!buf && len))
		return -EINVAL;
	/* §5: the top two bits distinguish STUN from RTP, ChannelData etc. */
	if (len < STUNMSG_HDR_LEN || len > STUNMSG_MAX_LEN || (buf[0] & 0xC0))
		return -EBADMSG;
	if (get32(buf + 4) != STUNMSG_MAGIC_COOKIE)
		return -EBADMSG;
	/* §5: attributes are 4-aligned, so the length is a multiple of 4;
	 * a datagram with trailing bytes is not one STUN message. */
	if (get16(buf + 2) % 4 || (size_t)get16(buf + 2) + STUNMSG_HDR_LEN != len)
		return -EBADMSG;

	stunmsg_type_split(get16(buf), &m->method, &cls);
	m->cls = (uint8_t)cls;
	memcpy(m->tid, buf + 8, STUNMSG_TID_LEN);
	m->buf = buf;
	m->len = len;
	m->n_attrs = 0;
	m->n_unknown = 0;

	for (off = STUNMSG_HDR_LEN; off < len;) {
		uint16_t type, alen;
		size_t next;
		bool keep;

		if (len - off < 4)
			return -EBADMSG;
		type = get16(buf + off);
		alen = get16(buf + off + 2);
		if (alen > len - off - 4)
			return -EBADMSG;
		next = off + 4 + pad4(alen);
		if (next > len)
			return -EBADMSG;
		/* §14.7: FINGERPRINT is last; anything after it means the
		 * packet is not what its sender signed. */
		if (stage == AFTER_FP)
			return -EBADMSG;

		keep = stage == OPEN ||
		       (stage == AFTER_MI && (type == STUNMSG_ATTR_MESSAGE_INTEGRITY_SHA256 ||
		                              type == STUNMSG_ATTR_FINGERPRINT)) ||
		       (stage == AFTER_MI256 && type == STUNMSG_ATTR_FINGERPRINT);
		if (type == STUNMSG_ATTR_FINGERPRINT)
			stage = AFTER_FP;
		else if (keep && type == STUNMSG_ATTR_MESSAGE_INTEGRITY_SHA256)
			stage = AFTER_MI256;
		else if (keep && type == STUNMSG_ATTR_MESSAGE_INTEGRITY)
			stage = AFTER_MI;

		if (keep) {
			struct stunmsg_attr *a;

			if (m->n_attrs == STUNMSG_MAX_ATTRS)
				return -E2BIG;
			a = &m->attrs[m->n_attrs++];
			a->type = type;
			a->len = alen;
			a->val = buf + off + 4;
			a->off = off;
			if (type < 0x8000 && !stunmsg_attr_known(type))
				note_unknown(m, type);
		}
		off = next;
	}
	return 0;
}

const struct stunmsg_attr *stunmsg_find(const struct stunmsg *m, uint16_t type)
{
	size_t i;

	if (!m)
		return NULL;
	for (i = 0; i < m->n_attrs && i < STUNMSG_MAX_ATTRS; i++)
		if (m->attrs[i].type == type)
			return &m->attrs[i];
	return NULL;
}

const struct stunmsg_attr *stunmsg_find_next(const struct stunmsg *m,
                                             const struct stunmsg_attr *prev)
{
	size_t i;

	if (!m || !prev || prev < m->attrs || prev >= m->attrs + m->n_attrs)
		return NULL;
	for (i = (size_t)(prev - m->attrs) + 1; i < m->n_attrs; i++)
		if (m->attrs[i].type == prev->type)
			return &m->attrs[i];
	return NULL;
}

bool stunmsg_has(const struct stunmsg *m, uint16_t type)
{
	return stunmsg_find(m, type) != NULL;
}

/* RFC 8489 §14.1/§14.2.  `pad` is the 16 bytes XORed with the address
 * (cookie then transaction id, i.e. header bytes 4..19), or NULL for the
 * plain MAPPED-ADDRESS encoding. */
static int addr_decode(const struct stunmsg_attr *a, const uint8_t *pad,
                       struct sockaddr_storage *out)
{
	uint16_t port;
	uint8_t ip[16];
	size_t n, i;

	if (!a || !out)
		return -EINVAL;
	if (a->len < 4)
		return -EBADMSG;
	switch (a->val[1]) {
	case 0x01:
		n = 4;
		break;
	case 0x02:
		n = 16;
		break;
	default:
		return -EBADMSG;
	}
	if (a->len != 4 + n)
		return -EBADMSG;
	port = get16(a->val + 2);
	memcpy(ip, a->val + 4, n);
	if (pad) {
		port ^= (uint16_t)(STUNMSG_MAGIC_COOKIE >> 16);
		for (i = 0; i < n; i++)
			ip[i] ^= pad[i];
	}

	memset(out, 0, sizeof(*out));
	if (n == 4) {
		struct sockaddr_in sin;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(port);
		memcpy(&sin.sin_addr, ip, 4);
		memcpy(out, &sin, sizeof(sin));
	} else {
		struct sockaddr_in6 sin6;

		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons(port);
		memcpy(&sin6.sin6_addr, ip, 16);
		memcpy(out, &sin6, sizeof(sin6));
	}
	return 0;
}

int stunmsg_attr_xor_addr(const struct stunmsg *m, const struct stunmsg_attr *a,
                          struct sockaddr_storage *out)
{
	if (!m || !m->buf)
		return -EINVAL;
	return addr_decode(a, m->buf + 4, out);
}

int stunmsg_attr_addr(const struct stunmsg_attr *a, struct sockaddr_storage *out)
{
	return addr_decode(a, NULL, out);
}

int stunmsg_get_xor_addr(const struct stunmsg *m, uint16_t type, struct sockaddr_storage *out)
{
	const struct stunmsg_attr *a = stunmsg_find(m, type);

	if (!m || !out)
		return -EINVAL;
	if (!a)
		return -ENOENT;
	return stunmsg_attr_xor_addr(m, a, out);
}

int stunmsg_get_addr(const struct stunmsg *m, uint16_t type, struct sockaddr_storage *out)
{
	const struct stunmsg_attr *a = stunmsg_find(m, type);

	if (!m || !out)
		return -EINVAL;
	if (!a)
		return -ENOENT;
	return stunmsg_attr_addr(a, out);
}

/* Find `type` and insist on an exact value length (or a minimum when
 * exact is false). */
static int want(const struct stunmsg *m, uint16_t type, size_t n, bool exact,
                const struct stunmsg_attr **ap)
{
	const struct stunmsg_attr *a;

	if (!m)
		return -EINVAL;
	a = stunmsg_find(m, type);
	if (!a)
		return -ENOENT;
	if (exact ? a->len != n : a->len < n)
		return -EBADMSG;
	*ap = a;
	return 0;
}

static int get_text(const struct stunmsg *m, uint16_t type, size_t max, const char **s, size_t *len)
{
	const struct stunmsg_attr *a;
	int r;

	if (!s || !len)
		return -EINVAL;
	r = want(m, type, 0, false, &a);
	if (r)
		return r;
	if (a->len > max)
		return -EBADMSG;
	*s = (const char *)a->val;
	*len = a->len;
	return 0;
}

int stunmsg_get_username(const struct stunmsg *m, const char **s, size_t *len)
{
	return get_text(m, STUNMSG_ATTR_USERNAME, USERNAME_DECODE_MAX, s, len);
}

int stunmsg_get_realm(const struct stunmsg *m, const char **s, size_t *len)
{
	return get_text(m, STUNMSG_ATTR_REALM, TEXT_DECODE_MAX, s, len);
}

int stunmsg_get_nonce(const struct stunmsg *m, const char **s, size_t *len)
{
	return get_text(m, STUNMSG_ATTR_NONCE, TEXT_DECODE_MAX, s, len);
}

int stunmsg_get_software(const struct stunmsg *m, const char **s, size_t *len)
{
	return get_text(m, STUNMSG_ATTR_SOFTWARE, TEXT_DECODE_MAX, s, len);
}

/* RFC 8489 §14.8: 21 reserved bits, a 3-bit class (3..6), an 8-bit number
 * (0..99), then the reason phrase. */
int stunmsg_get_error(const struct stunmsg *m, int *code, const char **reason, size_t *reason_len)
{
	const struct stunmsg_attr *a;
	unsigned cls, num;
	int r;

	if (!code)
		return -EINVAL;
	r = want(m, STUNMSG_ATTR_ERROR_CODE, 4, false, &a);
	if (r)
		return r;
	cls = a->val[2] & 0x07;
	num = a->val[3];
	if (cls < 3 || cls > 6 || num > 99 || a->len - 4 > TEXT_DECODE_MAX)
		return -EBADMSG;
	*code = (int)(cls * 100 + num);
	if (reason)
		*reason = (const char *)a->val + 4;
	if (reason_len)
		*reason_len = a->len - 4u;
	return 0;
}

int stunmsg_get_unknown(const struct stunmsg *m, uint16_t *types, size_t max, size_t *n)
{
	const struct stunmsg_attr *a;
	size_t i, k = 0;
	int r;

	if (!n || (!types && max))
		return -EINVAL;
	r = want(m, STUNMSG_ATTR_UNKNOWN_ATTRIBUTES, 0, false, &a);
	if (r)
		return r;
	if (a->len % 2)
		return -EBADMSG;
	for (i = 0; i + 2 <= a->len && k < max; i += 2)
		types[k++] = get16(a->val + i);
	*n = k;
	return 0;
}

int stunmsg_get_u32(const struct stunmsg *m, uint16_t type, uint32_t *v)
{
	const struct stunmsg_attr *a;
	int r;

	if (!v)
		return -EINVAL;
	r = want(m, type, 4, true, &a);
	if (r)
		return r;
	*v = get32(a->val);
	return 0;
}

int stunmsg_get_u64(const struct stunmsg *m, uint16_t type, uint64_t *v)
{
	const struct stunmsg_attr *a;
	int r;

	if (!v)
		return -EINVAL;
	r = want(m, type, 8, true, &a);
	if (r)
		return r;
	*v = (uint64_t)get32(a->val) << 32 | get32(a->val + 4);
	return 0;
}

int stunmsg_get_lifetime(const struct stunmsg *m, uint32_t *seconds)
{
	return stunmsg_get_u32(m, STUNMSG_ATTR_LIFETIME, seconds);
}

int stunmsg_get_data(const struct stunmsg *m, const uint8_t **data, size_t *len)
{
	const struct stunmsg_attr *a;
	int r;

	if (!data || !len)
		return -EINVAL;
	r = want(m, STUNMSG_ATTR_DATA, 0, false, &a);
	if (r)
		return r;
	*data = a->val;
	*len = a->len;
	return 0;
}

/* RFC 8656 §14.7: protocol number, then 24 RFFU bits. */
int stunmsg_get_requested_transport(const struct stunmsg *m, uint8_t *proto)
{
	const struct stunmsg_attr *a;
	int r;

	if (!proto)
		return -EINVAL;
	r = want(m, STUNMSG_ATTR_REQUESTED_TRANSPORT, 4, true, &a);
	if (r)
		return r;
	*proto = a->val[0];
	return 0;
}

/* RFC 8656 §14.6: one byte, the R bit first, 7 RFFU bits. */
int stunmsg_get_even_port(const struct stunmsg *m, bool *reserve)
{
	const struct stunmsg_attr *a;
	int r;

	if (!reserve)
		return -EINVAL;
	r = want(m, STUNMSG_ATTR_EVEN_PORT, 1, true, &a);
	if (r)
		return r;
	*reserve = (a->val[0] & 0x80) != 0;
	return 0;
}

int stunmsg_get_reservation_token(const struct stunmsg *m,
                                  uint8_t token[STUNMSG_RESERVATION_TOKEN_LEN])
{
	const struct stunmsg_attr *a;
	int r;

	if (!token)
		return -EINVAL;
	r = want(m, STUNMSG_ATTR_RESERVATION_TOKEN, STUNMSG_RESERVATION_TOKEN_LEN, true, &a);
	if (r)
		return r;
	memcpy(token, a->val, STUNMSG_RESERVATION_TOKEN_LEN);
	return 0;
}

/* RFC 8656 §14.8: family byte (0x01 IPv4, 0x02 IPv6), 24 reserved bits. */
int stunmsg_get_requested_family(const struct stunmsg *m, int *family)
{
	const struct stunmsg_attr *a;
	int r;

	if (!family)
		return -EINVAL;
	r = want(m, STUNMSG_ATTR_REQUESTED_ADDRESS_FAMILY, 4, true, &a);
	if (r)
		return r;
	switch (a->val[0]) {
	case 0x01:
		*family = AF_INET;
		return 0;
	case 0x02:
		*family = AF_INET6;
		return 0;
	}
	return -EAFNOSUPPORT;
}

/* RFC 8656 §14.1: channel number, then 16 RFFU bits. */
int stunmsg_get_channel(const struct stunmsg *m, uint16_t *channel)
{
	const struct stunmsg_attr *a;
	uint16_t ch;
	int r;

	if (!channel)
		return -EINVAL;
	r = want(m, STUNMSG_ATTR_CHANNEL_NUMBER, 4, true, &a);
	if (r)
		return r;
	ch = get16(a->val);
	if (ch < STUNMSG_CHANNEL_MIN || ch > STUNMSG_CHANNEL_MAX)
		return -ERANGE;
	*channel = ch;
	return 0;
}

/* One {algorithm, parameter length, parameters} entry starting at val[off]
 * (RFC 8489 §14.11/§14.12).  *next skips the parameters' padding, clamped
 * to the value's end so a last entry without padding is accepted. */
static int pwalg_entry(const uint8_t *val, size_t len, size_t off, struct stunmsg_pwalg *out,
                       size_t *next)
{
	uint16_t plen;
	size_t end;

	if (len - off < 4)
		return -EBADMSG;
	plen = get16(val + off + 2);
	if (plen > len - off - 4)
		return -EBADMSG;
	out->alg = get16(val + off);
	out->params_len = plen;
	out->params = val + off + 4;
	end = off + 4 + pad4(plen);
	*next = end < len ? end : len;
	return 0;
}

int stunmsg_get_password_algorithms(const struct stunmsg *m, struct stunmsg_pwalg *algs, size_t max,
                                    size_t *n)
{
	const struct stunmsg_attr *a;
	size_t off = 0, k = 0;
	int r;

	if (!n || (!algs && max))
		return -EINVAL;
	r = want(m, STUNMSG_ATTR_PASSWORD_ALGORITHMS, 0, false, &a);
	if (r)
		return r;
	/* Validate every entry first, so a bad one past `max` is still
	 * seen and *algs is untouched on error. */
	while (off < a->len) {
		struct stunmsg_pwalg e;

		r = pwalg_entry(a->val, a->len, off, &e, &off);
		if (r)
			return r;
	}
	off = 0;
	while (off < a->len && k < max)
		pwalg_entry(a->val, a->len, off, &algs[k++], &off);
	*n = k;
	return 0;
}

int stunmsg_get_password_algorithm(const struct stunmsg *m, struct stunmsg_pwalg *alg)
{
	const struct stunmsg_attr *a;
	struct stunmsg_pwalg e;
	size_t next;
	int r;

	if (!alg)
		return -EINVAL;
	r = want(m, STUNMSG_ATTR_PASSWORD_ALGORITHM, 4, false, &a);
	if (r)
		return r;
	r = pwalg_entry(a->val, a->len, 0, &e, &next);
	if (r)
		return r;
	if (next != a->len)
		return -EBADMSG;
	*alg = e;
	return 0;
}

int stunmsg_get_userhash(const struct stunmsg *m, const uint8_t **hash)
{
	const struct stunmsg_attr *a;
	int r;

	if (!hash)
		return -EINVAL;
	r = want(m, STUNMSG_ATTR_USERHASH, STUNMSG_USERHASH_LEN, true, &a);
	if (r)
		return r;
	*hash = a->val;
	return 0;
}

int stunmsg_get_fingerprint(const struct stunmsg *m, uint32_t *crc)
{
	return stunmsg_get_u32(m, STUNMSG_ATTR_FINGERPRINT, crc);
}

/* §14.6: MESSAGE-INTEGRITY-SHA256 may be truncated to 16..32 bytes, in
 * steps of 4; MESSAGE-INTEGRITY is always a whole SHA-1. */
static bool mac_len_ok(uint16_t type, size_t len)
{
	if (type == STUNMSG_ATTR_MESSAGE_INTEGRITY)
		return len == STUNMSG_SHA1_LEN;
	return len >= 16 && len <= STUNMSG_SHA256_LEN && len % 4 == 0;
}

int stunmsg_get_integrity(const struct stunmsg *m, uint16_t type, const uint8_t **mac, size_t *len)
{
	const struct stunmsg_attr *a;
	int r;

	if (!mac || !len ||
	    (type != STUNMSG_ATTR_MESSAGE_INTEGRITY &&
	     type != STUNMSG_ATTR_MESSAGE_INTEGRITY_SHA256))
		return -EINVAL;
	r = want(m, type, 0, false, &a);
	if (r)
		return r;
	if (!mac_len_ok(type, a->len))
		return -EBADMSG;
	*mac = a->val;
	*len = a->len;
	return 0;
}

/* --- verification ------------------------------------------------------ */

/* Reflected CRC-32 (ISO-HDLC, as zlib), four bits at a time: the table is
 * 64 bytes of constants, which keeps the module free of mutable state. */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
	static const uint32_t nib[16] = {
	        0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
	        0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
	        0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
	};
	size_t i;

	for (i = 0; i < n; i++) {
		crc ^= p[i];
		crc = (crc >> 4) ^ nib[crc & 15];
		crc = (crc >> 4) ^ nib[crc & 15];
	}
	return crc;
}

/* The header as it was when the sender computed the attribute at `off`
 * whose value is `vlen` bytes: RFC 8489 §14.5-§14.7 have the length field
 * count up to and including that attribute, and nothing after it. */
static void covered_header(const struct stunmsg *m, size_t off, size_t vlen,
                           uint8_t hdr[STUNMSG_HDR_LEN])
{
	memcpy(hdr, m->buf, STUNMSG_HDR_LEN);
	put16(hdr + 2, (uint16_t)(off + 4 + pad4(vlen) - STUNMSG_HDR_LEN));
}

/* Comparison whose time does not depend on where the bytes differ, so an
 * attacker cannot guess a MAC byte by byte. */
static bool same_bytes(const uint8_t *a, const uint8_t *b, size_t n)
{
	volatile uint8_t d = 0;
	size_t i;

	for (i = 0; i < n; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

static int check_mac(const struct stunmsg *m, uint16_t type, gnutls_mac_algorithm_t alg,
                     const void *key, size_t keylen)
{
	const struct stunmsg_attr *a;
	uint8_t hdr[STUNMSG_HDR_LEN];
	uint8_t mac[STUNMSG_SHA256_LEN];
	gnutls_hmac_hd_t h;

	if (!m || !m->buf || (!key && keylen))
		return -EINVAL;
	a = stunmsg_find(m, type);
	if (!a)
		return -ENOENT;
	if (!mac_len_ok(type, a->len))
		return -EBADMSG;
	covered_header(m, a->off, a->len, hdr);
	if (gnutls_hmac_init(&h, alg, key, keylen) < 0)
		return -EIO;
	if (gnutls_hmac(h, hdr, sizeof(hdr)) < 0 ||
	    gnutls_hmac(h, m->buf + STUNMSG_HDR_LEN, a->off - STUNMSG_HDR_LEN) < 0) {
		gnutls_hmac_deinit(h, NULL);
		return -EIO;
	}
	gnutls_hmac_deinit(h, mac);
	return same_bytes(mac, a->val, a->len) ? 0 : -EACCES;
}

int stunmsg_check_integrity(const struct stunmsg *m, const void *key, size_t keylen)
{
	return check_mac(m, STUNMSG_ATTR_MESSAGE_INTEGRITY, GNUTLS_MAC_SHA1, key, keylen);
}

int stunmsg_check_integrity_sha256(const struct stunmsg *m, const void *key, size_t keylen)
{
	return check_mac(m, STUNMSG_ATTR_MESSAGE_INTEGRITY_SHA256, GNUTLS_MAC_SHA256, key, keylen);
}

int stunmsg_check_fingerprint(const struct stunmsg *m)
{
	const struct stunmsg_attr *a;
	uint8_t hdr[STUNMSG_HDR_LEN];
	uint32_t crc;

	if (!m || !m->buf)
		return -EINVAL;
	a = stunmsg_find(m, STUNMSG_ATTR_FINGERPRINT);
	if (!a)
		return -ENOENT;
	if (a->len != 4)
		return -EBADMSG;
	covered_header(m, a->off, a->len, hdr);
	crc = crc32_update(0xFFFFFFFFu, hdr, sizeof(hdr));
	crc = crc32_update(crc, m->buf + STUNMSG_HDR_LEN, a->off - STUNMSG_HDR_LEN);
	crc = ~crc ^ FINGERPRINT_XOR;
	return crc == get32(a->val) ? 0 : -EACCES;
}

/* --- keys --------------------------------------------------------------- */

static int long_term_key(gnutls_digest_algorithm_t alg, uint8_t *key, const char *user,
                         size_t user_len, const char *realm, size_t realm_len, const char *pass,
                         size_t pass_len)
{
	gnutls_hash_hd_t h;

	if (!key || (!user && user_len) || (!realm && realm_len) || (!pass && pass_len))
		return -EINVAL;
	if (gnutls_hash_init(&h, alg) < 0)
		return -EIO;
	/* gnutls_hash() of zero bytes is harmless, so empty parts need no
	 * special case. */
	if (gnutls_hash(h, user, user_len) < 0 || gnutls_hash(h, ":", 1) < 0 ||
	    gnutls_hash(h, realm, realm_len) < 0 || gnutls_hash(h, ":", 1) < 0 ||
	    gnutls_hash(h, pass, pass_len) < 0) {
		gnutls_hash_deinit(h, NULL);
		return -EIO;
	}
	gnutls_hash_deinit(h, key);
	return 0;
}

int stunmsg_key_md5(uint8_t key[STUNMSG_MD5_LEN], const char *user, size_t user_len,
                    const char *realm, size_t realm_len, const char *pass, size_t pass_len)
{
	return long_term_key(GNUTLS_DIG_MD5, key, user, user_len, realm, realm_len, pass, pass_len);
}

int stunmsg_key_sha256(uint8_t key[STUNMSG_SHA256_LEN], const char *user, size_t user_len,
                       const char *realm, size_t realm_len, const char *pass, size_t pass_len)
{
	return long_term_key(GNUTLS_DIG_SHA256, key, user, user_len, realm, realm_len, pass,
	                     pass_len);
}

/* --- building ----------------------------------------------------------- */

static int fail(struct stunmsg_builder *b, int err)
{
	if (!b->_err)
		b->_err = err;
	return b->_err;
}

/* Append an attribute header for a `vlen`-byte value plus its zeroed
 * padding, bring the header's length up to date, and return where the
 * value goes; NULL (with the sticky error set) if it cannot. */
static uint8_t *attr_begin(struct stunmsg_builder *b, uint16_t type, size_t vlen)
{
	uint8_t *p;
	size_t need;

	if (b->_err)
		return NULL;
	if (vlen > 0xFFFF) {
		fail(b, -EINVAL);
		return NULL;
	}
	need = 4 + pad4(vlen);
	if (need > b->_cap - b->_len) {
		fail(b, -ENOBUFS);
		return NULL;
	}
	p = b->_buf + b->_len;
	put16(p, type);
	put16(p + 2, (uint16_t)vlen);
	memset(p + 4 + vlen, 0, pad4(vlen) - vlen);
	b->_len += need;
	put16(b->_buf + 2, (uint16_t)(b->_len - STUNMSG_HDR_LEN));
	return p + 4;
}

/* Ordinary attributes are refused once an integrity attribute or the
 * fingerprint is in, since a receiver would ignore them (§14.5). */
static uint8_t *plain_begin(struct stunmsg_builder *b, uint16_t type, size_t vlen)
{
	if (!b->_err && b->_stage != OPEN)
		fail(b, -EINVAL);
	return attr_begin(b, type, vlen);
}

int stunmsg_build_init(struct stunmsg_builder *b, uint8_t *buf, size_t cap, uint16_t method,
                       unsigned cls, const uint8_t tid[STUNMSG_TID_LEN])
{
	if (!b)
		return -EINVAL;
	memset(b, 0, sizeof(*b));
	if (!buf || !tid || method > 0x0FFF || cls > 3)
		return fail(b, -EINVAL);
	if (cap > STUNMSG_MAX_LEN)
		cap = STUNMSG_MAX_LEN;
	if (cap < STUNMSG_HDR_LEN)
		return fail(b, -ENOBUFS);
	b->_buf = buf;
	b->_cap = cap;
	put16(buf, stunmsg_type(method, cls));
	put16(buf + 2, 0);
	put32(buf + 4, STUNMSG_MAGIC_COOKIE);
	memcpy(buf + 8, tid, STUNMSG_TID_LEN);
	b->_len = STUNMSG_HDR_LEN;
	b->_stage = OPEN;
	return 0;
}

int stunmsg_add(struct stunmsg_builder *b, uint16_t type, const void *val, size_t len)
{
	uint8_t *p;

	if (!b)
		return -EINVAL;
	if (!val && len)
		return fail(b, -EINVAL);
	p = plain_begin(b, type, len);
	if (!p)
		return b->_err;
	if (len)
		memcpy(p, val, len);
	return 0;
}

static int addr_encode(struct stunmsg_builder *b, uint16_t type, const struct sockaddr *sa,
                       bool xor)
{
	uint8_t ip[16], *p;
	uint16_t port;
	size_t n, i;

	if (!b)
		return -EINVAL;
	if (!sa)
		return fail(b, -EINVAL);
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in sin;

		memcpy(&sin, sa, sizeof(sin));
		port = ntohs(sin.sin_port);
		memcpy(ip, &sin.sin_addr, 4);
		n = 4;
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, sa, sizeof(sin6));
		port = ntohs(sin6.sin6_port);
		memcpy(ip, &sin6.sin6_addr, 16);
		n = 16;
	} else {
		return fail(b, -EAFNOSUPPORT);
	}
	p = plain_begin(b, type, 4 + n);
	if (!p)
		return b->_err;
	if (xor) {
		/* §14.2: port XOR the cookie's top half; address XOR the
		 * cookie (IPv4) or cookie + transaction id (IPv6), which are
		 * header bytes 4..19 already in the buffer. */
		port ^= (uint16_t)(STUNMSG_MAGIC_COOKIE >> 16);
		for (i = 0; i < n; i++)
			ip[i] ^= b->_buf[4 + i];
	}
	p[0] = 0;
	p[1] = n == 4 ? 0x01 : 0x02;
	put16(p + 2, port);
	memcpy(p + 4, ip, n);
	return 0;
}

int stunmsg_add_xor_addr(struct stunmsg_builder *b, uint16_t type, const struct sockaddr *sa)
{
	return addr_encode(b, type, sa, true);
}

int stunmsg_add_addr(struct stunmsg_builder *b, uint16_t type, const struct sockaddr *sa)
{
	return addr_encode(b, type, sa, false);
}

int stunmsg_add_text(struct stunmsg_builder *b, uint16_t type, const char *s, size_t len)
{
	if (!b)
		return -EINVAL;
	if (len > TEXT_ENCODE_MAX)
		return fail(b, -EINVAL);
	return stunmsg_add(b, type, s, len);
}

int stunmsg_add_error(struct stunmsg_builder *b, int code, const char *reason)
{
	size_t rlen;
	uint8_t *p;

	if (!b)
		return -EINVAL;
	if (code < 300 || code > 699)
		return fail(b, -EINVAL);
	if (!reason)
		reason = stunmsg_reason(code);
	if (!reason)
		reason = "";
	rlen = strlen(reason);
	if (rlen > TEXT_ENCODE_MAX)
		return fail(b, -EINVAL);
	p = plain_begin(b, STUNMSG_ATTR_ERROR_CODE, 4 + rlen);
	if (!p)
		return b->_err;
	p[0] = 0;
	p[1] = 0;
	p[2] = (uint8_t)(code / 100);
	p[3] = (uint8_t)(code % 100);
	memcpy(p + 4, reason, rlen);
	return 0;
}

int stunmsg_add_unknown(struct stunmsg_builder *b, const uint16_t *types, size_t n)
{
	uint8_t *p;
	size_t i;

	if (!b)
		return -EINVAL;
	if ((!types && n) || n > 0xFFFF / 2)
		return fail(b, -EINVAL);
	p = plain_begin(b, STUNMSG_ATTR_UNKNOWN_ATTRIBUTES, 2 * n);
	if (!p)
		return b->_err;
	for (i = 0; i < n; i++)
		put16(p + 2 * i, types[i]);
	return 0;
}

int stunmsg_add_u32(struct stunmsg_builder *b, uint16_t type, uint32_t v)
{
	uint8_t val[4];

	put32(val, v);
	return stunmsg_add(b, type, val, sizeof(val));
}

int stunmsg_add_u64(struct stunmsg_builder *b, uint16_t type, uint64_t v)
{
	uint8_t val[8];

	put32(val, (uint32_t)(v >> 32));
	put32(val + 4, (uint32_t)v);
	return stunmsg_add(b, type, val, sizeof(val));
}

int stunmsg_add_requested_transport(struct stunmsg_builder *b, uint8_t proto)
{
	const uint8_t val[4] = {proto, 0, 0, 0};

	return stunmsg_add(b, STUNMSG_ATTR_REQUESTED_TRANSPORT, val, sizeof(val));
}

int stunmsg_add_even_port(struct stunmsg_builder *b, bool reserve)
{
	const uint8_t val = reserve ? 0x80 : 0x00;

	return stunmsg_add(b, STUNMSG_ATTR_EVEN_PORT, &val, 1);
}

int stunmsg_add_reservation_token(struct stunmsg_builder *b,
                                  const uint8_t token[STUNMSG_RESERVATION_TOKEN_LEN])
{
	if (!b)
		return -EINVAL;
	if (!token)
		return fail(b, -EINVAL);
	return stunmsg_add(b, STUNMSG_ATTR_RESERVATION_TOKEN, token, STUNMSG_RESERVATION_TOKEN_LEN);
}

int stunmsg_add_requested_family(struct stunmsg_builder *b, int family)
{
	uint8_t val[4] = {0, 0, 0, 0};

	if (!b)
		return -EINVAL;
	if (family == AF_INET)
		val[0] = 0x01;
	else if (family == AF_INET6)
		val[0] = 0x02;
	else
		return fail(b, -EAFNOSUPPORT);
	return stunmsg_add(b, STUNMSG_ATTR_REQUESTED_ADDRESS_FAMILY, val, sizeof(val));
}

int stunmsg_add_channel(struct stunmsg_builder *b, uint16_t channel)
{
	uint8_t val[4] = {0, 0, 0, 0};

	if (!b)
		return -EINVAL;
	if (channel < STUNMSG_CHANNEL_MIN || channel > STUNMSG_CHANNEL_MAX)
		return fail(b, -EINVAL);
	put16(val, channel);
	return stunmsg_add(b, STUNMSG_ATTR_CHANNEL_NUMBER, val, sizeof(val));
}

static size_t pwalg_size(const struct stunmsg_pwalg *a)
{
	return 4 + pad4(a->params_len);
}

static void pwalg_write(uint8_t *p, const struct stunmsg_pwalg *a)
{
	put16(p, a->alg);
	put16(p + 2, a->params_len);
	if (a->params_len)
		memcpy(p + 4, a->params, a->params_len);
	memset(p + 4 + a->params_len, 0, pad4(a->params_len) - a->params_len);
}

int stunmsg_add_password_algorithms(struct stunmsg_builder *b, const struct stunmsg_pwalg *algs,
                                    size_t n)
{
	size_t i, total = 0;
	uint8_t *p;

	if (!b)
		return -EINVAL;
	if (!algs && n)
		return fail(b, -EINVAL);
	for (i = 0; i < n; i++) {
		if (!algs[i].params && algs[i].params_len)
			return fail(b, -EINVAL);
		total += pwalg_size(&algs[i]);
		if (total > 0xFFFF)
			return fail(b, -EINVAL);
	}
	p = plain_begin(b, STUNMSG_ATTR_PASSWORD_ALGORITHMS, total);
	if (!p)
		return b->_err;
	for (i = 0; i < n; i++) {
		pwalg_write(p, &algs[i]);
		p += pwalg_size(&algs[i]);
	}
	return 0;
}

int stunmsg_add_password_algorithm(struct stunmsg_builder *b, const struct stunmsg_pwalg *alg)
{
	uint8_t *p;

	if (!b)
		return -EINVAL;
	if (!alg || (!alg->params && alg->params_len))
		return fail(b, -EINVAL);
	p = plain_begin(b, STUNMSG_ATTR_PASSWORD_ALGORITHM, pwalg_size(alg));
	if (!p)
		return b->_err;
	pwalg_write(p, alg);
	return 0;
}

/* The HMAC covers the message up to the attribute's own header, with the
 * header's length already counting the attribute (§14.5/§14.6); attr_begin
 * has updated that length by the time we hash. */
static int add_mac(struct stunmsg_builder *b, uint16_t type, gnutls_mac_algorithm_t alg,
                   size_t maclen, int max_stage, int new_stage, const void *key, size_t keylen)
{
	uint8_t *p;
	size_t off;

	if (!b)
		return -EINVAL;
	if (!key && keylen)
		return fail(b, -EINVAL);
	if (!b->_err && b->_stage > max_stage)
		fail(b, -EINVAL);
	off = b->_len;
	p = attr_begin(b, type, maclen);
	if (!p)
		return b->_err;
	if (gnutls_hmac_fast(alg, key, keylen, b->_buf, off, p) < 0) {
		b->_len = off;
		put16(b->_buf + 2, (uint16_t)(off - STUNMSG_HDR_LEN));
		return fail(b, -EIO);
	}
	b->_stage = new_stage;
	return 0;
}

int stunmsg_add_integrity(struct stunmsg_builder *b, const void *key, size_t keylen)
{
	return add_mac(b, STUNMSG_ATTR_MESSAGE_INTEGRITY, GNUTLS_MAC_SHA1, STUNMSG_SHA1_LEN, OPEN,
	               AFTER_MI, key, keylen);
}

int stunmsg_add_integrity_sha256(struct stunmsg_builder *b, const void *key, size_t keylen)
{
	return add_mac(b, STUNMSG_ATTR_MESSAGE_INTEGRITY_SHA256, GNUTLS_MAC_SHA256,
	               STUNMSG_SHA256_LEN, AFTER_MI, AFTER_MI256, key, keylen);
}

int stunmsg_add_fingerprint(struct stunmsg_builder *b)
{
	uint8_t *p;
	size_t off;
	uint32_t crc;

	if (!b)
		return -EINVAL;
	if (!b->_err && b->_stage > AFTER_MI256)
		fail(b, -EINVAL);
	off = b->_len;
	p = attr_begin(b, STUNMSG_ATTR_FINGERPRINT, 4);
	if (!p)
		return b->_err;
	crc = ~crc32_update(0xFFFFFFFFu, b->_buf, off) ^ FINGERPRINT_XOR;
	put32(p, crc);
	b->_stage = AFTER_FP;
	return 0;
}

int stunmsg_build_finish(const struct stunmsg_builder *b, size_t *len)
{
	if (!b || !len)
		return -EINVAL;
	if (b->_err)
		return b->_err;
	*len = b->_len;
	return 0;
}

/* --- ChannelData -------------------------------------------------------- */

static bool channel_ok(uint16_t ch)
{
	return ch >= STUNMSG_CHANNEL_MIN && ch <= STUNMSG_CHANNEL_MAX;
}

int stunmsg_chandata_parse(struct stunmsg_chandata *cd, const uint8_t *buf, size_t len)
{
	uint16_t ch, dlen;

	if (!cd || (!buf && len))
		return -EINVAL;
	if (len < STUNMSG_CHANDATA_HDR_LEN)
		return -EBADMSG;
	ch = get16(buf);
	dlen = get16(buf + 2);
	/* §12: 0x5000-0xFFFF are reserved or not ChannelData at all. */
	if (!channel_ok(ch) || dlen > len - STUNMSG_CHANDATA_HDR_LEN)
		return -EBADMSG;
	cd->channel = ch;
	cd->len = dlen;
	cd->data = buf + STUNMSG_CHANDATA_HDR_LEN;
	return 0;
}

int stunmsg_chandata_build(uint8_t *buf, size_t cap, uint16_t channel, const void *data, size_t len,
                           bool pad, size_t *out_len)
{
	size_t total;

	if (!buf || !out_len || (!data && len) || !channel_ok(channel) || len > 0xFFFF)
		return -EINVAL;
	total = STUNMSG_CHANDATA_HDR_LEN + (pad ? pad4(len) : len);
	if (total > cap)
		return -ENOBUFS;
	put16(buf, channel);
	put16(buf + 2, (uint16_t)len);
	if (len)
		memmove(buf + STUNMSG_CHANDATA_HDR_LEN, data, len);
	memset(buf + STUNMSG_CHANDATA_HDR_LEN + len, 0, total - STUNMSG_CHANDATA_HDR_LEN - len);
	*out_len = total;
	return 0;
}

/* --- stream framing ------------------------------------------------------- */

int stunmsg_frame_len(const uint8_t *buf, size_t len, size_t *flen)
{
	static const uint8_t cookie[4] = {0x21, 0x12, 0xA4, 0x42};
	size_t frame, i;

	if (!flen || (!buf && len))
		return -EINVAL;
	*flen = 0;
	if (len == 0)
		return -EAGAIN;

	switch (buf[0] >> 6) {
	case 0:
		/* STUN.  Reject garbage as early as the bytes allow, so a
		 * peer cannot park a connection on a fake partial header. */
		if (len >= 4 && get16(buf + 2) % 4)
			return -EBADMSG;
		for (i = 4; i < len && i < 8; i++)
			if (buf[i] != cookie[i - 4])
				return -EBADMSG;
		if (len < STUNMSG_HDR_LEN)
			return -EAGAIN;
		frame = STUNMSG_HDR_LEN + (size_t)get16(buf + 2);
		break;
	case 1:
		/* ChannelData: 0x4000-0x4FFF only (§12); over a stream it is
		 * always padded to 4 (§12.5). */
		if (buf[0] > (STUNMSG_CHANNEL_MAX >> 8))
			return -EBADMSG;
		if (len < STUNMSG_CHANDATA_HDR_LEN)
			return -EAGAIN;
		frame = STUNMSG_CHANDATA_HDR_LEN + pad4(get16(buf + 2));
		break;
	default:
		return -EBADMSG;
	}
	*flen = frame;
	return len >= frame ? 0 : -EAGAIN;
}
