/* natd: NAT detection predicates and address classification.
 *
 * Every address is handled in a single 16-byte form: IPv6 as is, IPv4 as its
 * IPv4-mapped IPv6 address ::ffff:a.b.c.d (RFC 4291 §2.5.5.2).  One prefix
 * matcher then serves both families, and a dual-stack socket's mapped view of
 * an IPv4 peer classifies exactly like the plain IPv4 address.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "sipnat/natd.h"

struct span {
	unsigned char a[16];
	unsigned plen; /* over the 128-bit form */
};

#define V4(a, b, c, d, len)                                                                        \
	{                                                                                          \
		{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d}, 96 + (len)                 \
	}

static const struct span private_spans[] = {
        V4(0, 0, 0, 0, 8),      /* RFC 1122 §3.2.1.3: "this network", never a peer */
        V4(10, 0, 0, 0, 8),     /* RFC 1918 */
        V4(100, 64, 0, 0, 10),  /* RFC 6598: carrier-grade NAT shared space */
        V4(127, 0, 0, 0, 8),    /* RFC 1122 loopback */
        V4(169, 254, 0, 0, 16), /* RFC 3927 link-local */
        V4(172, 16, 0, 0, 12),  /* RFC 1918 */
        V4(192, 168, 0, 0, 16), /* RFC 1918 */
        {{0}, 128},             /* RFC 4291 §2.5.2 unspecified */
        {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128}, /* RFC 4291 §2.5.3 loopback */
        {{0xfc}, 7},                                             /* RFC 4193 unique local */
        {{0xfe, 0x80}, 10},                                      /* RFC 4291 §2.5.6 link-local */
};

static const unsigned char v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool prefix_equal(const unsigned char *a, const unsigned char *b, unsigned plen)
{
	unsigned full = plen / 8, rest = plen % 8;
	unsigned char m;

	if (memcmp(a, b, full))
		return false;
	if (!rest)
		return true;
	m = (unsigned char)(0xffu << (8 - rest));
	return (a[full] & m) == (b[full] & m);
}

static void clear_host_bits(unsigned char *a, size_t nbytes, unsigned plen)
{
	size_t i;

	for (i = 0; i < nbytes; i++) {
		if (plen >= 8) {
			plen -= 8;
		} else {
			a[i] &= (unsigned char)(0xffu << (8 - plen));
			plen = 0;
		}
	}
}

static bool sa_to_16(const struct sockaddr *sa, unsigned char out[16])
{
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		memcpy(out, v4_mapped_prefix, 12);
		memcpy(out + 12, &sin->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		memcpy(out, &sin6->sin6_addr, 16);
		return true;
	}
	return false;
}

static unsigned sa_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

/* Parse an address literal as it appears in SIP and SDP: dotted IPv4, or
 * IPv6 bare or in brackets (RFC 3261 §25.1), optionally with a zone
 * (RFC 6874 writes it "%25zone" inside a URI, hosts print "%zone").  The
 * zone does not change whether an address is private, so it is dropped. */
static bool parse_literal(const char *host, unsigned char out[16])
{
	char tmp[INET6_ADDRSTRLEN];
	const char *start = host, *pct;
	size_t len;
	bool bracketed = false;

	if (!host)
		return false;
	len = strlen(host);
	if (len && host[0] == '[') {
		if (len < 2 || host[len - 1] != ']')
			return false;
		start++;
		len -= 2;
		bracketed = true;
	}
	pct = memchr(start, '%', len);
	if (pct) {
		if (pct + 1 == start + len)
			return false; /* an empty zone is malformed */
		len = (size_t)(pct - start);
	}
	if (len == 0 || len >= sizeof(tmp))
		return false;
	memcpy(tmp, start, len);
	tmp[len] = '\0';

	if (!bracketed && !pct && inet_pton(AF_INET, tmp, out + 12) == 1) {
		memcpy(out, v4_mapped_prefix, 12);
		return true;
	}
	return inet_pton(AF_INET6, tmp, out) == 1;
}

static bool is_private_16(const unsigned char a[16])
{
	size_t i;

	for (i = 0; i < sizeof(private_spans) / sizeof(private_spans[0]); i++)
		if (prefix_equal(a, private_spans[i].a, private_spans[i].plen))
			return true;
	return false;
}

bool natd_addr_is_private(const struct sockaddr *sa)
{
	unsigned char a[16];

	return sa_to_16(sa, a) && is_private_16(a);
}

bool natd_host_is_private(const char *host)
{
	unsigned char a[16];

	return parse_literal(host, a) && is_private_16(a);
}

int natd_cidr_parse(const char *text, struct natd_cidr *out)
{
	struct natd_cidr c;
	char tmp[INET6_ADDRSTRLEN];
	const char *slash, *p;
	size_t alen;
	unsigned max, v;

	if (!text || !out)
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	slash = strchr(text, '/');
	alen = slash ? (size_t)(slash - text) : strlen(text);
	if (alen == 0 || alen >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, text, alen);
	tmp[alen] = '\0';

	if (inet_pton(AF_INET, tmp, c.addr) == 1) {
		c.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, tmp, c.addr) == 1) {
		c.family = AF_INET6;
		max = 128;
	} else {
		return -EINVAL;
	}

	c.prefix = max;
	if (slash) {
		p = slash + 1;
		if (!*p)
			return -EINVAL;
		for (v = 0; *p; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			v = v * 10 + (unsigned)(*p - '0');
			if (v > max)
				return -EINVAL; /* also stops any overflow */
		}
		c.prefix = v;
	}
	clear_host_bits(c.addr, max / 8, c.prefix);
	*out = c;
	return 0;
}

bool natd_cidr_match(const struct natd_cidr *c, const struct sockaddr *sa)
{
	unsigned char net[16], a[16];
	unsigned plen;

	if (!c || !sa_to_16(sa, a))
		return false;
	if (c->family == AF_INET && c->prefix <= 32) {
		memcpy(net, v4_mapped_prefix, 12);
		memcpy(net + 12, c->addr, 4);
		plen = 96 + c->prefix;
	} else if (c->family == AF_INET6 && c->prefix <= 128) {
		memcpy(net, c->addr, 16);
		plen = c->prefix;
	} else {
		return false;
	}
	return prefix_equal(a, net, plen);
}

/* RFC 3261 §18.2.1: a sent-by that is a domain name, or an address other
 * than the packet's source, is what makes a server add "received". */
static bool via_addr_differs(const struct natd_input *in)
{
	unsigned char via[16], src[16];

	if (!in->via_host || !sa_to_16(in->src, src))
		return false;
	if (!parse_literal(in->via_host, via))
		return true;
	return memcmp(via, src, 16) != 0;
}

/* RFC 3261 §18.1.2 / RFC 3581 §4: an absent sent-by port means the default
 * port of the transport, 5061 for TLS (RFC 3261 §26.2, RFC 4168 for SCTP). */
static bool via_port_differs(const struct natd_input *in)
{
	unsigned port = in->via_port;
	unsigned char src[16];

	if (!in->via_host || !sa_to_16(in->src, src))
		return false;
	if (!port) {
		const char *t = in->via_transport;

		port = t && (!strcasecmp(t, "TLS") || !strcasecmp(t, "TLS-SCTP")) ? 5061 : 5060;
	}
	return port != sa_port(in->src);
}

static bool any_private(const char *const *hosts, size_t n, bool skip_unspecified)
{
	static const unsigned char unspec4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const unsigned char unspec6[16];
	unsigned char a[16];
	size_t i;

	if (!hosts)
		return false;
	for (i = 0; i < n; i++) {
		if (!parse_literal(hosts[i], a))
			continue;
		if (skip_unspecified && (!memcmp(a, unspec4, 16) || !memcmp(a, unspec6, 16)))
			continue;
		if (is_private_16(a))
			return true;
	}
	return false;
}

unsigned natd_test(const struct natd_input *in, unsigned which)
{
	unsigned char a[16];
	unsigned fired = 0;

	if (!in)
		return 0;
	if ((which & NATD_VIA_ADDR) && via_addr_differs(in))
		fired |= NATD_VIA_ADDR;
	if ((which & NATD_VIA_PORT) && via_port_differs(in))
		fired |= NATD_VIA_PORT;
	if ((which & NATD_CONTACT_PRIV) &&
	    any_private(in->contact_hosts, in->n_contact_hosts, false))
		fired |= NATD_CONTACT_PRIV;
	if ((which & NATD_VIA_PRIV) && natd_host_is_private(in->via_host))
		fired |= NATD_VIA_PRIV;
	/* RFC 3264 §8.4: c=0.0.0.0 is the old way to put a stream on hold; it
	 * says nothing about where the offerer sits, so it is not evidence. */
	if ((which & NATD_SDP_PRIV) && any_private(in->sdp_hosts, in->n_sdp_hosts, true))
		fired |= NATD_SDP_PRIV;
	if ((which & NATD_SRC_PRIV) && sa_to_16(in->src, a) && is_private_16(a))
		fired |= NATD_SRC_PRIV;
	return fired;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Consume `word` (ASCII case-insensitive) and the blanks after it; at least
 * one blank must follow. */
static bool skip_word(const char **p, const char *end, const char *word)
{
	size_t wl = strlen(word);
	const char *q = *p;

	if ((size_t)(end - q) <= wl || strncasecmp(q, word, wl) || !is_blank(q[wl]))
		return false;
	q += wl;
	while (q < end && is_blank(*q))
		q++;
	*p = q;
	return true;
}

/* RFC 4566 §5.7: c=<nettype> <addrtype> <connection-address>, where a
 * multicast address may carry "/ttl" and "/count".  The type letter is
 * case-significant (§5); the tokens are ABNF literals, so case-insensitive. */
static bool connection_address(const char *line, const char *end, const char **addr, size_t *alen)
{
	const char *p = line, *q;

	if (end - p < 2 || p[0] != 'c' || p[1] != '=')
		return false;
	p += 2;
	if (!skip_word(&p, end, "IN"))
		return false;
	if (!skip_word(&p, end, "IP4") && !skip_word(&p, end, "IP6"))
		return false;
	for (q = p; q < end && !is_blank(*q) && *q != '/'; q++)
		if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
			return false;
	if (q == p)
		return false;
	*addr = p;
	*alen = (size_t)(q - p);
	return true;
}

int natd_sdp_hosts(const char *sdp, size_t len, const char **hosts, size_t max, char *buf,
                   size_t bufsize, size_t *n)
{
	const char *p, *end, *eol, *addr;
	size_t count = 0, used = 0, alen;
	int rc = 0;

	if (!n)
		return -EINVAL;
	*n = 0;
	if ((!sdp && len) || !hosts || !buf)
		return -EINVAL;

	if (!len)
		return 0; /* sdp may be NULL, and NULL + 0 is undefined */
	end = sdp + len;
	for (p = sdp; p < end; p = eol < end ? eol + 1 : end) {
		eol = p;
		while (eol < end && *eol != '\r' && *eol != '\n')
			eol++;
		if (!connection_address(p, eol, &addr, &alen))
			continue;
		if (count == max || alen >= bufsize - used) {
			rc = -ENOSPC;
			break;
		}
		memcpy(buf + used, addr, alen);
		buf[used + alen] = '\0';
		hosts[count++] = buf + used;
		used += alen + 1;
	}
	*n = count;
	return rc;
}

/* Single-bit entries first, in bit order: natd_describe() walks them. */
static const struct {
	const char *name;
	unsigned mask;
} words[] = {
        {"via_addr", NATD_VIA_ADDR},
        {"via_port", NATD_VIA_PORT},
        {"contact_private", NATD_CONTACT_PRIV},
        {"via_private", NATD_VIA_PRIV},
        {"sdp_private", NATD_SDP_PRIV},
        {"source_private", NATD_SRC_PRIV},
        {"all", NATD_ALL},
        {"default", NATD_DEFAULT},
        {"none", 0},
};

#define N_WORDS (sizeof(words) / sizeof(words[0]))

int natd_parse_list(const char *text, unsigned *mask, const char **bad_word)
{
	static const char seps[] = " \t,";
	const char *p = text, *bad = text, *none_at = NULL;
	unsigned m = 0;
	size_t nwords = 0, wl, i;

	if (!text || !mask)
		goto fail;
	for (;;) {
		p += strspn(p, seps);
		if (!*p)
			break;
		wl = strcspn(p, seps);
		for (i = 0; i < N_WORDS; i++)
			if (strlen(words[i].name) == wl && !strncasecmp(p, words[i].name, wl))
				break;
		if (i == N_WORDS) {
			bad = p;
			goto fail;
		}
		if (!words[i].mask)
			none_at = p;
		m |= words[i].mask;
		nwords++;
		p += wl;
	}
	if (!nwords)
		goto fail;
	if (none_at && nwords > 1) {
		bad = none_at;
		goto fail;
	}
	*mask = m;
	return 0;
fail:
	if (bad_word)
		*bad_word = bad;
	return -EINVAL;
}

/* Append s to buf; on overflow keep what fits and report -ENOSPC. */
static int append(char *buf, size_t len, size_t *used, const char *s)
{
	size_t sl = strlen(s), room = len - *used - 1;

	if (sl > room) {
		memcpy(buf + *used, s, room);
		*used += room;
		buf[*used] = '\0';
		return -ENOSPC;
	}
	memcpy(buf + *used, s, sl + 1);
	*used += sl;
	return 0;
}

int natd_describe(unsigned mask, char *buf, size_t len)
{
	size_t used = 0, i;
	int rc = 0;

	if (!buf || !len)
		return -EINVAL;
	buf[0] = '\0';
	if (!(mask & NATD_ALL))
		return append(buf, len, &used, "none");
	for (i = 0; i < N_WORDS && !rc; i++) {
		unsigned bit = words[i].mask;

		if (!bit || (bit & (bit - 1)) || !(mask & bit))
			continue;
		if (used)
			rc = append(buf, len, &used, ",");
		if (!rc)
			rc = append(buf, len, &used, words[i].name);
	}
	return rc;
}
