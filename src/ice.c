/* ice: ICE candidate lines (RFC 8839 §5.1) and the relay-candidate policy. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sipnat/ice.h"
#include "sipnat/natd.h"

/* A cursor over one candidate value.  Tokens are separated by blanks; the
 * RFC grammar says exactly one SP, but some stacks emit two, and being
 * lenient on spacing costs nothing. */
struct tok {
	const char *p;
	size_t len;
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool next_token(const char **s, struct tok *t)
{
	const char *p = *s;

	while (is_blank(*p))
		p++;
	t->p = p;
	while (*p != '\0' && !is_blank(*p))
		p++;
	t->len = (size_t)(p - t->p);
	*s = p;
	return t->len > 0;
}

static bool tok_is(const struct tok *t, const char *word)
{
	return t->len == strlen(word) && strncasecmp(t->p, word, t->len) == 0;
}

/* Decimal digits only, at most max_digits of them, value <= max. */
static int tok_number(const struct tok *t, size_t max_digits, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (t->len == 0 || t->len > max_digits)
		return -EINVAL;
	for (size_t i = 0; i < t->len; i++) {
		if (t->p[i] < '0' || t->p[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(t->p[i] - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int tok_copy(const struct tok *t, char *dst, size_t size)
{
	if (t->len >= size)
		return -E2BIG;
	memcpy(dst, t->p, t->len);
	dst[t->len] = '\0';
	return 0;
}

/* RFC 8839 §5.1: ice-char = ALPHA / DIGIT / "+" / "/". */
static bool is_ice_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

static bool valid_foundation(const char *p, size_t len)
{
	if (len == 0 || len > ICE_FOUNDATION_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_ice_char(p[i]))
			return false;
	return true;
}

/* connection-address (RFC 8839 §5.1) is an IP literal or an FQDN.  We do not
 * resolve, we only refuse characters that could never appear there, so a
 * hostile value cannot smuggle SDP syntax into a line we write back. */
static bool valid_addr(const char *p, size_t len)
{
	if (len == 0 || len >= ICE_ADDR_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == ':' || c == '-' || c == '_' || c == '%'))
			return false;
	}
	return true;
}

static bool valid_token(const struct tok *t)
{
	for (size_t i = 0; i < t->len; i++) {
		unsigned char c = (unsigned char)t->p[i];
		if (c < 0x21 || c > 0x7e)
			return false;
	}
	return true;
}

int ice_parse_candidate(const char *value, struct ice_candidate *out)
{
	struct ice_candidate c;
	struct tok t;
	uint64_t v;
	const char *s = value;
	int err;

	if (value == NULL || out == NULL)
		return -EINVAL;
	for (const char *q = value; *q != '\0'; q++)
		if (*q == '\r' || *q == '\n')
			return -EINVAL;
	memset(&c, 0, sizeof(c));

	while (is_blank(*s))
		s++;
	if (strncasecmp(s, "candidate:", 10) == 0)
		s += 10;

	if (!next_token(&s, &t) || !valid_foundation(t.p, t.len))
		return -EINVAL;
	memcpy(c.foundation, t.p, t.len);

	if (!next_token(&s, &t) || tok_number(&t, 3, 256, &v) < 0 || v < 1)
		return -EINVAL;
	c.component = (unsigned)v;

	if (!next_token(&s, &t) || !valid_token(&t))
		return -EINVAL;
	err = tok_copy(&t, c.transport, sizeof(c.transport));
	if (err < 0)
		return err;

	if (!next_token(&s, &t) || tok_number(&t, 10, UINT32_MAX, &v) < 0)
		return -EINVAL;
	c.priority = (uint32_t)v;

	if (!next_token(&s, &t) || !valid_addr(t.p, t.len))
		return -EINVAL;
	memcpy(c.addr, t.p, t.len);

	if (!next_token(&s, &t) || tok_number(&t, 5, 65535, &v) < 0)
		return -EINVAL;
	c.port = (unsigned)v;

	if (!next_token(&s, &t) || !tok_is(&t, "typ"))
		return -EINVAL;
	if (!next_token(&s, &t) || !valid_token(&t))
		return -EINVAL;
	err = tok_copy(&t, c.type, sizeof(c.type));
	if (err < 0)
		return err;

	/* rel-addr and rel-port are optional and in this order; anything
	 * after them is an extension name/value pair kept verbatim. */
	const char *rest = s;
	if (next_token(&s, &t) && tok_is(&t, "raddr")) {
		if (!next_token(&s, &t) || !valid_addr(t.p, t.len))
			return -EINVAL;
		memcpy(c.raddr, t.p, t.len);
		rest = s;
		next_token(&s, &t);
	}
	if (t.len > 0 && tok_is(&t, "rport")) {
		if (!next_token(&s, &t) || tok_number(&t, 5, 65535, &v) < 0)
			return -EINVAL;
		c.rport = (unsigned)v;
		c.has_rport = true;
		rest = s;
	}

	/* Normalise the extension list to single spaces so that format()
	 * reproduces it and the struct compares equal after a round trip. */
	size_t n = 0;
	s = rest;
	while (next_token(&s, &t)) {
		if (!valid_token(&t))
			return -EINVAL;
		if (n + (n ? 1 : 0) + t.len >= sizeof(c.ext))
			return -E2BIG;
		if (n)
			c.ext[n++] = ' ';
		memcpy(c.ext + n, t.p, t.len);
		n += t.len;
	}
	c.ext[n] = '\0';

	*out = c;
	return 0;
}

int ice_format_candidate(const struct ice_candidate *c, char *buf, size_t len)
{
	char rel[ICE_ADDR_MAX + 32] = "";
	int n;

	if (c == NULL || buf == NULL)
		return -EINVAL;
	if (len > 0)
		buf[0] = '\0';
	if (!valid_foundation(c->foundation, strnlen(c->foundation, sizeof(c->foundation))) ||
	    c->transport[0] == '\0' || c->addr[0] == '\0' || c->type[0] == '\0' ||
	    c->component < 1 || c->component > 256 || c->port > 65535 ||
	    (c->has_rport && c->rport > 65535))
		return -EINVAL;

	if (c->raddr[0] != '\0' && c->has_rport)
		snprintf(rel, sizeof(rel), " raddr %s rport %u", c->raddr, c->rport);
	else if (c->raddr[0] != '\0')
		snprintf(rel, sizeof(rel), " raddr %s", c->raddr);
	else if (c->has_rport)
		snprintf(rel, sizeof(rel), " rport %u", c->rport);

	n = snprintf(buf, len, "%s %u %s %" PRIu32 " %s %u typ %s%s%s%s", c->foundation,
	             c->component, c->transport, c->priority, c->addr, c->port, c->type, rel,
	             c->ext[0] != '\0' ? " " : "", c->ext);
	if (n < 0 || (size_t)n >= len) {
		if (len > 0)
			buf[0] = '\0';
		return -ENOSPC;
	}
	return 0;
}

uint32_t ice_priority(unsigned type_pref, unsigned local_pref, unsigned component)
{
	if (type_pref > 126)
		type_pref = 126;
	if (local_pref > 65535)
		local_pref = 65535;
	if (component < 1)
		component = 1;
	if (component > 256)
		component = 256;
	return ((uint32_t)type_pref << 24) + ((uint32_t)local_pref << 8) + (256u - component);
}

/* The ranges are natd's, so that "private" means the same thing for NAT
 * detection and for candidate stripping. */
bool ice_addr_is_private(const char *addr)
{
	size_t len;

	if (addr == NULL)
		return false;
	len = strlen(addr);
	/* mDNS candidate names only resolve on the endpoint's own link. */
	if (len > 6 && strcasecmp(addr + len - 6, ".local") == 0)
		return true;
	return natd_host_is_private(addr);
}

int ice_pick_foundation(const char *const *taken, size_t n_taken, char *buf, size_t len)
{
	if (buf == NULL || (taken == NULL && n_taken > 0))
		return -EINVAL;
	/* n_taken + 1 attempts always suffice: each taken entry rules out at
	 * most one of them. */
	for (size_t k = 1; k <= n_taken + 1; k++) {
		int n = snprintf(buf, len, "rly%zu", k);
		if (n < 0 || (size_t)n >= len) {
			if (len > 0)
				buf[0] = '\0';
			return -ENOSPC;
		}
		bool used = false;
		for (size_t i = 0; i < n_taken && !used; i++)
			used = taken[i] != NULL && strcmp(taken[i], buf) == 0;
		if (!used)
			return 0;
	}
	return -ENOSPC; /* not reached */
}

int ice_relay_candidate(const char *foundation, unsigned component, const char *addr, unsigned port,
                        const char *raddr, unsigned rport, struct ice_candidate *out)
{
	struct ice_candidate c;

	if (foundation == NULL || addr == NULL || out == NULL)
		return -EINVAL;
	if (!valid_foundation(foundation, strlen(foundation)) || component < 1 || component > 256 ||
	    port > 65535 || rport > 65535 || !valid_addr(addr, strlen(addr)))
		return -EINVAL;
	if (raddr != NULL && raddr[0] != '\0' && !valid_addr(raddr, strlen(raddr)))
		return -EINVAL;

	memset(&c, 0, sizeof(c));
	strcpy(c.foundation, foundation);
	c.component = component;
	strcpy(c.transport, "udp");
	c.priority = ice_priority(ICE_TYPE_PREF_RELAY, ICE_LOCAL_PREF_MAX, component);
	strcpy(c.addr, addr);
	c.port = port;
	strcpy(c.type, "relay");
	if (raddr != NULL && raddr[0] != '\0') {
		strcpy(c.raddr, raddr);
		c.rport = rport;
		c.has_rport = true;
	}
	*out = c;
	return 0;
}
