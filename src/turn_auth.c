/* turn_auth: the pure parts of the TURN server: REST credentials, nonces,
 * the peer policy and the per-source rate limit.  No sockets, no clock: the
 * time is an argument, so the unit tests can drive every branch.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <limits.h>
#include <string.h>

#include "sipnat/turn.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t base64_enc(const uint8_t *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = b64[(v >> 6) & 63];
		out[o++] = b64[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);

		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

int turn_rest_password(const char *secret, const char *user, size_t user_len, char *out,
                       size_t outlen)
{
	uint8_t mac[20];

	if (!secret || !user || !out)
		return -EINVAL;
	if (outlen < 29)
		return -ENOBUFS;
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA1, secret, strlen(secret), user, user_len, mac) < 0)
		return -EIO;
	base64_enc(mac, sizeof mac, out);
	return 0;
}

int turn_rest_valid(const char *user, size_t user_len, int64_t now)
{
	int64_t exp = 0;
	size_t i;

	/* coturn writes the expiry first and the user name after a ':'
	 * (rest-api-separator); a bare timestamp is accepted too. */
	for (i = 0; i < user_len && user[i] != ':'; i++) {
		if (user[i] < '0' || user[i] > '9' || i >= 18)
			return -EINVAL;
		exp = exp * 10 + (user[i] - '0');
	}
	if (i == 0)
		return -EINVAL;
	return exp < now ? -EKEYEXPIRED : 0;
}

/* ---- nonces ---- */

static size_t ip_bytes(const struct sockaddr *sa, const uint8_t **p)
{
	if (sa && sa->sa_family == AF_INET) {
		*p = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		return 4;
	}
	if (sa && sa->sa_family == AF_INET6) {
		*p = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		return 16;
	}
	*p = NULL;
	return 0;
}

static int nonce_mac(const uint8_t key[TURN_NONCE_KEY_LEN], uint64_t ts, const struct sockaddr *src,
                     uint8_t out[8])
{
	uint8_t in[8 + 16], mac[32];
	const uint8_t *ip;
	size_t n = ip_bytes(src, &ip);

	for (int i = 0; i < 8; i++)
		in[i] = (uint8_t)(ts >> (56 - 8 * i));
	if (n)
		memcpy(in + 8, ip, n);
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, TURN_NONCE_KEY_LEN, in, 8 + n, mac) < 0)
		return -EIO;
	memcpy(out, mac, 8);
	return 0;
}

static const char hexd[] = "0123456789abcdef";

int turn_nonce_make(const uint8_t key[TURN_NONCE_KEY_LEN], int64_t now, const struct sockaddr *src,
                    char *out, size_t outlen)
{
	uint8_t mac[8];
	uint64_t ts = (uint64_t)now;
	int err;

	if (!key || !out)
		return -EINVAL;
	if (outlen < 33)
		return -ENOBUFS;
	err = nonce_mac(key, ts, src, mac);
	if (err)
		return err;
	for (int i = 0; i < 16; i++)
		out[i] = hexd[(ts >> (60 - 4 * i)) & 15];
	for (int i = 0; i < 8; i++) {
		out[16 + 2 * i] = hexd[mac[i] >> 4];
		out[17 + 2 * i] = hexd[mac[i] & 15];
	}
	out[32] = '\0';
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int turn_nonce_check(const uint8_t key[TURN_NONCE_KEY_LEN], int64_t now, unsigned lifetime,
                     const struct sockaddr *src, const char *nonce, size_t len)
{
	uint64_t ts = 0;
	uint8_t mac[8], got[8], diff = 0;

	if (!key || !nonce || len != 32)
		return -EBADMSG;
	for (int i = 0; i < 16; i++) {
		int v = hexval(nonce[i]);

		if (v < 0)
			return -EBADMSG;
		ts = ts << 4 | (uint64_t)v;
	}
	for (int i = 0; i < 8; i++) {
		int hi = hexval(nonce[16 + 2 * i]), lo = hexval(nonce[17 + 2 * i]);

		if (hi < 0 || lo < 0)
			return -EBADMSG;
		got[i] = (uint8_t)(hi << 4 | lo);
	}
	if (nonce_mac(key, ts, src, mac) < 0)
		return -EBADMSG;
	for (int i = 0; i < 8; i++)
		diff |= (uint8_t)(mac[i] ^ got[i]);
	if (diff)
		return -EBADMSG;
	/* a nonce from the future (clock stepped back) is stale too */
	if (ts > (uint64_t)now || (uint64_t)now - ts > lifetime)
		return -ESTALE;
	return 0;
}

/* ---- peers ---- */

static bool same_ip(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	const uint8_t *pa, *pb;
	size_t na = ip_bytes((const struct sockaddr *)a, &pa), nb = ip_bytes(b, &pb);

	return na && na == nb && memcmp(pa, pb, na) == 0;
}

static unsigned port_of(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

/* An IPv4-mapped IPv6 peer is judged as the IPv4 address it stands for,
 * so "::ffff:127.0.0.1" cannot slip past 127.0.0.0/8 (natd_cidr_match
 * already treats them alike; our own addresses need the same care). */
static void unmap(const struct sockaddr *in, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (in->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)in;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)out;

			s4->sin_family = AF_INET;
			s4->sin_port = s6->sin6_port;
			memcpy(&s4->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
			return;
		}
		memcpy(out, in, sizeof(struct sockaddr_in6));
		return;
	}
	memcpy(out, in, sizeof(struct sockaddr_in));
}

int turn_peer_check(const struct turn_policy *p, const struct sockaddr *peer, bool with_port)
{
	struct sockaddr_storage ss;
	const struct sockaddr *sa = (const struct sockaddr *)&ss;
	bool own = false;
	size_t i;

	if (!p || !peer || (peer->sa_family != AF_INET && peer->sa_family != AF_INET6))
		return -EPERM;
	unmap(peer, &ss);
	for (i = 0; i < p->n_own && !own; i++)
		own = same_ip(&p->own[i], sa);
	if (own && with_port) {
		/* Our own relay and listening ports: a loop through ourselves,
		 * refused whatever the allow list says. */
		unsigned port = port_of(sa);

		if (p->relay_max && port >= p->relay_min && port <= p->relay_max)
			return -EPERM;
		for (i = 0; i < p->n_own_ports; i++)
			if (p->own_ports[i] == port)
				return -EPERM;
	}
	for (i = 0; i < p->n_allowed; i++)
		if (natd_cidr_match(&p->allowed[i], sa))
			return 0;
	if (own)
		return -EPERM;
	for (i = 0; i < p->n_denied; i++)
		if (natd_cidr_match(&p->denied[i], sa))
			return -EPERM;
	return 0;
}

/* ---- rate limit ---- */

bool turn_rl_take(struct turn_rl *rl, const struct sockaddr *src, uint64_t now_ms)
{
	const uint8_t *ip;
	size_t n = ip_bytes(src, &ip), i;
	uint32_t h = 2166136261u;
	uint64_t tokens;

	if (!rl || !n)
		return false;
	for (i = 0; i < n; i++)
		h = (h ^ ip[i]) * 16777619u;
	i = h % TURN_RL_SLOTS;
	tokens = rl->slot[i].tokens_milli;
	if (rl->slot[i].last_ms == 0)
		tokens = (uint64_t)TURN_RL_BURST * 1000;
	else if (now_ms > rl->slot[i].last_ms)
		tokens += (now_ms - rl->slot[i].last_ms) * TURN_RL_RATE;
	if (tokens > (uint64_t)TURN_RL_BURST * 1000)
		tokens = (uint64_t)TURN_RL_BURST * 1000;
	rl->slot[i].last_ms = now_ms ? now_ms : 1;
	memcpy(rl->slot[i].ip, ip, n);
	if (tokens < 1000) {
		rl->slot[i].tokens_milli = (uint32_t)tokens;
		return false;
	}
	rl->slot[i].tokens_milli = (uint32_t)(tokens - 1000);
	return true;
}
