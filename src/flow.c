/* flow: flow tokens (pure). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "sipnat/edge.h"
#include "sipnat/flow.h"

#define TOKEN_VERSION 1
#define MAC_LEN       12
#define CONTACT_MAX   512

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_encode(const uint8_t *in, size_t n, char *out, size_t outlen)
{
	size_t need = (n * 4 + 2) / 3, o = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (need + 1 > outlen)
		return -ENOSPC;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = b64[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = b64[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	return (int)o;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;

	return p ? (int)(p - b64) : -1;
}

static int b64_decode(const char *in, size_t n, uint8_t *out, size_t outlen)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int v = b64_value(in[i]);
		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outlen)
				return -EINVAL;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return (int)o;
}

static int mac(const uint8_t key[FLOW_KEY_LEN], const uint8_t *data, size_t n, uint8_t out[MAC_LEN])
{
	uint8_t full[32];

	if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, FLOW_KEY_LEN, data, n, full) < 0)
		return -EIO;
	memcpy(out, full, MAC_LEN);
	return 0;
}

/* Packs a flow: version, transport, family (4 or 6), address, port. */
static int pack_flow(const struct flow *f, uint8_t *buf, size_t *n)
{
	size_t o = 0;

	buf[o++] = TOKEN_VERSION;
	buf[o++] = (uint8_t)f->transport;
	if (f->remote.ss_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)&f->remote;
		buf[o++] = 4;
		memcpy(buf + o, &v4->sin_addr, 4);
		o += 4;
		memcpy(buf + o, &v4->sin_port, 2);
	} else if (f->remote.ss_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&f->remote;
		buf[o++] = 6;
		memcpy(buf + o, &v6->sin6_addr, 16);
		o += 16;
		memcpy(buf + o, &v6->sin6_port, 2);
	} else {
		return -EINVAL;
	}
	o += 2;
	*n = o;
	return 0;
}

static int unpack_flow(const uint8_t *buf, size_t n, struct flow *f, size_t *used)
{
	size_t alen;

	if (n < 3 || buf[0] != TOKEN_VERSION || buf[1] > CFG_TP_TLS)
		return -EINVAL;
	memset(f, 0, sizeof *f);
	f->transport = (enum cfg_transport)buf[1];
	if (buf[2] == 4)
		alen = 4;
	else if (buf[2] == 6)
		alen = 16;
	else
		return -EINVAL;
	if (n < 3 + alen + 2)
		return -EINVAL;
	if (alen == 4) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)&f->remote;
		v4->sin_family = AF_INET;
		memcpy(&v4->sin_addr, buf + 3, 4);
		memcpy(&v4->sin_port, buf + 7, 2);
	} else {
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&f->remote;
		v6->sin6_family = AF_INET6;
		memcpy(&v6->sin6_addr, buf + 3, 16);
		memcpy(&v6->sin6_port, buf + 19, 2);
	}
	*used = 3 + alen + 2;
	return 0;
}

int flow_token_encode(const struct flow *f, const uint8_t key[FLOW_KEY_LEN], char *out,
                      size_t outlen)
{
	uint8_t buf[64];
	size_t n;
	int r = pack_flow(f, buf, &n);

	if (r < 0)
		return r;
	r = mac(key, buf, n, buf + n);
	if (r < 0)
		return r;
	return b64_encode(buf, n + MAC_LEN, out, outlen);
}

int flow_token_decode(const char *tok, size_t len, const uint8_t key[FLOW_KEY_LEN],
                      struct flow *out)
{
	uint8_t buf[64], want[MAC_LEN];
	int n = b64_decode(tok, len, buf, sizeof buf);
	size_t used;
	struct flow f;

	if (n < 0)
		return -EINVAL;
	if (unpack_flow(buf, (size_t)n, &f, &used) < 0 || (size_t)n != used + MAC_LEN)
		return -EINVAL;
	if (mac(key, buf, used, want) < 0)
		return -EIO;
	if (gnutls_memcmp(want, buf + used, MAC_LEN) != 0)
		return -EBADMSG;
	*out = f;
	return 0;
}

int flow_contact_encode(const struct flow *f, const char *contact, const uint8_t key[FLOW_KEY_LEN],
                        char *out, size_t outlen)
{
	uint8_t buf[64 + CONTACT_MAX + MAC_LEN];
	size_t n, clen = strlen(contact);
	int r;

	if (clen > CONTACT_MAX)
		return -ENOSPC;
	r = pack_flow(f, buf, &n);
	if (r < 0)
		return r;
	memcpy(buf + n, contact, clen);
	n += clen;
	r = mac(key, buf, n, buf + n);
	if (r < 0)
		return r;
	return b64_encode(buf, n + MAC_LEN, out, outlen);
}

int flow_contact_decode(const char *tok, size_t len, const uint8_t key[FLOW_KEY_LEN],
                        struct flow *out, char **contact)
{
	uint8_t buf[64 + CONTACT_MAX + MAC_LEN], want[MAC_LEN];
	int n = b64_decode(tok, len, buf, sizeof buf);
	size_t used, clen;
	struct flow f;
	char *c;

	if (n < 0)
		return -EINVAL;
	if (unpack_flow(buf, (size_t)n, &f, &used) < 0 || (size_t)n < used + MAC_LEN + 1)
		return -EINVAL;
	clen = (size_t)n - used - MAC_LEN;
	if (mac(key, buf, used + clen, want) < 0)
		return -EIO;
	if (gnutls_memcmp(want, buf + used + clen, MAC_LEN) != 0)
		return -EBADMSG;
	if (memchr(buf + used, '\0', clen))
		return -EINVAL;
	c = malloc(clen + 1);
	if (!c)
		return -ENOMEM;
	memcpy(c, buf + used, clen);
	c[clen] = '\0';
	*out = f;
	*contact = c;
	return 0;
}

bool flow_equal(const struct flow *a, const struct flow *b)
{
	if (a->transport != b->transport || a->remote.ss_family != b->remote.ss_family)
		return false;
	if (a->remote.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)&a->remote;
		const struct sockaddr_in *y = (const struct sockaddr_in *)&b->remote;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->remote.ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->remote;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->remote;
		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr);
	}
	return false;
}

int flow_format(const struct flow *f, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN];
	unsigned port;
	int r;

	if (f->remote.ss_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)&f->remote;
		inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
		port = ntohs(v4->sin_port);
		r = snprintf(out, outlen, "%s:%s:%u", cfg_transport_name(f->transport), host, port);
	} else if (f->remote.ss_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&f->remote;
		inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
		port = ntohs(v6->sin6_port);
		r = snprintf(out, outlen, "%s:[%s]:%u", cfg_transport_name(f->transport), host,
		             port);
	} else {
		return -EINVAL;
	}
	return r < 0 || (size_t)r >= outlen ? -ENOSPC : r;
}

int flow_parse(const char *text, struct flow *out)
{
	struct cfg_listen l;
	const char *why;
	struct flow f;

	if (cfg_parse_listen(text, &l, &why) < 0)
		return -EINVAL;
	memset(&f, 0, sizeof f);
	f.transport = l.transport;
	if (edge_parse_host(l.host, l.port, &f.remote) < 0)
		return -EINVAL;
	*out = f;
	return 0;
}

void flow_secret_from_string(const char *secret, uint8_t key[FLOW_KEY_LEN])
{
	static const uint8_t label[] = "sipnat flow secret v1";

	gnutls_hmac_fast(GNUTLS_MAC_SHA256, label, sizeof label - 1, secret, strlen(secret), key);
}

int flow_secret_load(const char *path, uint8_t key[FLOW_KEY_LEN])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char tmp[4096];
	ssize_t n;

	if (fd >= 0) {
		n = read(fd, key, FLOW_KEY_LEN);
		close(fd);
		return n == FLOW_KEY_LEN ? 0 : -EINVAL;
	}
	if (errno != ENOENT)
		return -errno;
	if (gnutls_rnd(GNUTLS_RND_KEY, key, FLOW_KEY_LEN) < 0)
		return -EIO;
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	n = write(fd, key, FLOW_KEY_LEN);
	if (n != FLOW_KEY_LEN || fsync(fd) < 0) {
		close(fd);
		unlink(tmp);
		return -EIO;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int e = -errno;
		unlink(tmp);
		return e;
	}
	return 0;
}
