/* sdpr: SDP inspection and rewriting for the media relay.
 *
 * Why a line editor and not sdp_print():
 * Sofia's parser is our gate - an SDP it refuses is malformed for us too -
 * and its parsed session gives us the m-line count, ports and connection
 * data.  But its printer cannot be used to write the result.  Checked
 * against Debian's 1.12.11: it drops an explicit a=sendrecv, moves
 * a=sendonly/recvonly/inactive to the top of the media section, prints
 * every a=rtpmap/a=fmtp before all other attributes, and turns unknown
 * bandwidth modifiers into b=AS (b=TIAS:64000 came out as b=AS:64000, a
 * thousandfold change).  We promise that a=crypto, a=fingerprint, a=setup
 * and unknown attributes pass through byte for byte and in order, so we
 * split the original text into lines, find the lines that matter with the
 * help of the parsed structure, and edit only those (c=, m=, o=, a=rtcp,
 * a=rtcp-mux, a=candidate).  Every other line is copied as it was.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <sofia-sip/su_alloc.h>
#include <sofia-sip/sdp.h>

#include "sipnat/ice.h"
#include "sipnat/sdpr.h"

#define NONE SIZE_MAX
/* A c= value as we copy it: "IN IP6 " + address + a multicast suffix. */
#define SDPR_CONN_MAX (SDPR_ADDR_MAX + 32)

struct line {
	const char *p; /* not NUL-terminated */
	size_t len;    /* without the line end */
};

/* What we learnt about one m-line: values plus the indexes of the lines
 * that may need an edit.  Line indexes are NONE when the line is absent. */
struct mstate {
	size_t m_line, end; /* section is lines [m_line, end) */
	size_t c_line;      /* first media-level c= */
	size_t rtcp_line;
	size_t last_cand;  /* last a=candidate */
	size_t eoc_line;   /* a=end-of-candidates */
	struct line c_val; /* effective c= value (after "c=") */
	char addr[SDPR_ADDR_MAX];
	int family;
	bool hold_zero;
	unsigned port;
	bool disabled;
	unsigned rtcp_port;
	char rtcp_addr[SDPR_ADDR_MAX];
	bool rtcp_has_addr;
	bool rtcp_mux;
	bool ice;
	bool crypto;
	bool dtls;
	enum sdpr_direction dir;
	bool has_dir;
	/* A relay candidate equal to the one we would add is already there
	 * (a re-rewrite of our own output); index = component - 1. */
	bool relay_present[2];
	struct line media, proto;
};

struct doc {
	struct line *lines;
	size_t n;
	size_t o_line;
	size_t c_line; /* session-level c= */
	size_t first_m;
	struct mstate *ms;
	size_t n_media;
	bool sess_ufrag, sess_fingerprint;
	enum sdpr_direction sess_dir;
	/* Every a=candidate foundation of the SDP, for ice_pick_foundation(). */
	const char **found;
	char (*found_buf)[ICE_FOUNDATION_MAX + 1];
	size_t n_found;
	uint64_t o_version;
	struct line o_vtok; /* the sess-version token inside the o= line */
	char o_addr[SDPR_ADDR_MAX];
	int o_family;
};

static void doc_free(struct doc *d)
{
	free(d->lines);
	free(d->ms);
	free(d->found);
	free(d->found_buf);
	memset(d, 0, sizeof(*d));
}

/* ---- small text helpers ---- */

static bool line_is(const struct line *l, char type)
{
	return l->len >= 2 && l->p[0] == type && l->p[1] == '=';
}

/* For an a= line: does the attribute name equal name?  Sets *val to the
 * value after ':' (empty if none). */
static bool attr_is(const struct line *l, const char *name, struct line *val)
{
	size_t n = strlen(name);

	if (!line_is(l, 'a') || l->len < 2 + n || memcmp(l->p + 2, name, n) != 0)
		return false;
	if (l->len == 2 + n) {
		if (val != NULL)
			*val = (struct line){l->p + l->len, 0};
		return true;
	}
	if (l->p[2 + n] != ':')
		return false;
	if (val != NULL)
		*val = (struct line){l->p + 3 + n, l->len - 3 - n};
	return true;
}

/* Split a value into blank-separated tokens; returns the count (may exceed
 * max, extra tokens are not stored). */
static size_t tokens(struct line v, struct line *tok, size_t max)
{
	size_t n = 0, i = 0;

	while (i < v.len) {
		while (i < v.len && v.p[i] == ' ')
			i++;
		if (i == v.len)
			break;
		size_t s = i;
		while (i < v.len && v.p[i] != ' ')
			i++;
		if (n < max)
			tok[n] = (struct line){v.p + s, i - s};
		n++;
	}
	return n;
}

static bool tok_eq(struct line t, const char *s)
{
	return t.len == strlen(s) && memcmp(t.p, s, t.len) == 0;
}

static int tok_u64(struct line t, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (t.len == 0 || t.len > 20)
		return -EINVAL;
	for (size_t i = 0; i < t.len; i++) {
		if (t.p[i] < '0' || t.p[i] > '9')
			return -EINVAL;
		unsigned d = (unsigned)(t.p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static void tok_copy(struct line t, char *dst, size_t size)
{
	size_t n = t.len < size - 1 ? t.len : size - 1;

	memcpy(dst, t.p, n);
	dst[n] = '\0';
}

/* RFC 8866 §9: token-char = ALPHA / DIGIT / "!#$%&'*+-.^_`{|}~". */
static bool is_token(struct line t, bool slash_ok)
{
	static const char extra[] = "!#$%&'*+-.^_`{|}~";

	if (t.len == 0)
		return false;
	for (size_t i = 0; i < t.len; i++) {
		char c = t.p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c != '\0' && strchr(extra, c) != NULL) || (slash_ok && c == '/')))
			return false;
	}
	return true;
}

/* A c= value, "IN IP4 192.0.2.1" (a multicast "/ttl/n" suffix is dropped
 * from the address).  RFC 8866 §5.7. */
static int parse_conn(struct line v, char *addr, int *family)
{
	struct line t[3];

	/* Bounded so that a c= value always fits the buffers we copy it
	 * into; a real one is "IN IP6 " plus at most 45 characters. */
	if (v.len > SDPR_CONN_MAX - 1 || tokens(v, t, 3) != 3 || !tok_eq(t[0], "IN"))
		return -EINVAL;
	if (tok_eq(t[1], "IP4"))
		*family = AF_INET;
	else if (tok_eq(t[1], "IP6"))
		*family = AF_INET6;
	else
		return -EINVAL;
	for (size_t i = 0; i < t[2].len; i++)
		if (t[2].p[i] == '/')
			t[2].len = i;
	if (t[2].len == 0 || t[2].len >= SDPR_ADDR_MAX)
		return -EINVAL;
	tok_copy(t[2], addr, SDPR_ADDR_MAX);
	return 0;
}

static bool zero_addr(const char *addr, int family)
{
	unsigned char a[16];
	static const unsigned char zero[16];

	if (inet_pton(family, addr, a) != 1)
		return false;
	return memcmp(a, zero, family == AF_INET ? 4 : 16) == 0;
}

static bool dir_attr(const struct line *l, enum sdpr_direction *d)
{
	static const struct {
		const char *name;
		enum sdpr_direction dir;
	} map[] = {{"sendrecv", SDPR_SENDRECV},
	           {"sendonly", SDPR_SENDONLY},
	           {"recvonly", SDPR_RECVONLY},
	           {"inactive", SDPR_INACTIVE}};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (line_is(l, 'a') && l->len == 2 + strlen(map[i].name) &&
		    memcmp(l->p + 2, map[i].name, l->len - 2) == 0) {
			*d = map[i].dir;
			return true;
		}
	}
	return false;
}

/* ---- splitting and analysis ---- */

static int split_lines(const char *sdp, size_t len, struct doc *d)
{
	size_t cap = 1;

	for (size_t i = 0; i < len; i++)
		if (sdp[i] == '\n')
			cap++;
	d->lines = calloc(cap, sizeof(*d->lines));
	if (d->lines == NULL)
		return -ENOMEM;

	size_t i = 0;
	while (i < len) {
		size_t s = i;
		while (i < len && sdp[i] != '\n' && sdp[i] != '\r') {
			if (sdp[i] == '\0')
				return -EINVAL;
			i++;
		}
		size_t e = i;
		if (i < len && sdp[i] == '\r') {
			/* A CR is only allowed as the first half of CRLF. */
			if (i + 1 >= len || sdp[i + 1] != '\n')
				return -EINVAL;
			i++;
		}
		if (i < len)
			i++; /* the LF */
		if (e == s)
			continue; /* tolerate blank lines, e.g. a trailing one */
		struct line l = {sdp + s, e - s};
		if (l.len < 2 || l.p[0] < 'a' || l.p[0] > 'z' || l.p[1] != '=')
			return -EINVAL;
		d->lines[d->n++] = l;
	}
	return 0;
}

static int add_foundation(struct doc *d, struct line value)
{
	struct line t[1];

	if (tokens(value, t, 1) < 1)
		return 0;
	/* Foundations longer than the RFC allows cannot collide with ours. */
	if (t[0].len > ICE_FOUNDATION_MAX)
		return 0;
	tok_copy(t[0], d->found_buf[d->n_found], ICE_FOUNDATION_MAX + 1);
	d->found[d->n_found] = d->found_buf[d->n_found];
	d->n_found++;
	return 0;
}

static int analyze_session(struct doc *d)
{
	struct line t[6];
	uint64_t v;
	bool has_s = false, has_t = false;

	d->o_line = d->c_line = d->first_m = NONE;
	d->sess_dir = SDPR_SENDRECV;
	for (size_t i = 0; i < d->n; i++) {
		struct line *l = &d->lines[i];
		struct line val;
		if (line_is(l, 'm')) {
			if (d->first_m == NONE)
				d->first_m = i;
			d->n_media++;
			continue;
		}
		if (attr_is(l, "candidate", &val))
			d->n_found++;
		if (d->first_m != NONE)
			continue;
		has_s |= line_is(l, 's');
		has_t |= line_is(l, 't');
		/* RFC 8866 §5 allows one o=; with two, Sofia and we would each
		 * read a different one (found by fuzz_sdpr). */
		if (line_is(l, 'o') && d->o_line != NONE)
			return -EINVAL;
		if (line_is(l, 'o'))
			d->o_line = i;
		else if (line_is(l, 'c') && d->c_line == NONE)
			d->c_line = i;
		else if (attr_is(l, "ice-ufrag", NULL))
			d->sess_ufrag = true;
		else if (attr_is(l, "fingerprint", NULL))
			d->sess_fingerprint = true;
		else
			dir_attr(l, &d->sess_dir);
	}
	/* RFC 8866 §5: v=, o=, s= and t= are mandatory.  Sofia's lax mode
	 * lets s= and t= go missing, its strict mode refuses them; we check
	 * them here rather than take every other strict-mode rule along. */
	if (d->o_line == NONE || !has_s || !has_t)
		return -EINVAL;

	/* o=<username> <sess-id> <sess-version> <nettype> <addrtype> <addr> */
	struct line *o = &d->lines[d->o_line];
	if (tokens((struct line){o->p + 2, o->len - 2}, t, 6) != 6)
		return -EINVAL;
	if (tok_u64(t[2], UINT64_MAX, &v) < 0)
		return -EINVAL;
	d->o_version = v;
	d->o_vtok = t[2];
	d->o_family = tok_eq(t[4], "IP6") ? AF_INET6 : tok_eq(t[4], "IP4") ? AF_INET : 0;
	tok_copy(t[5], d->o_addr, sizeof(d->o_addr));

	d->ms = calloc(d->n_media ? d->n_media : 1, sizeof(*d->ms));
	d->found = calloc(d->n_found ? d->n_found : 1, sizeof(*d->found));
	d->found_buf = calloc(d->n_found ? d->n_found : 1, sizeof(*d->found_buf));
	if (d->ms == NULL || d->found == NULL || d->found_buf == NULL)
		return -ENOMEM;
	d->n_found = 0;
	return 0;
}

static int analyze_media(struct doc *d, size_t idx, size_t start, size_t end)
{
	struct mstate *m = &d->ms[idx];
	struct line t[4], val;
	uint64_t v;

	memset(m, 0, sizeof(*m));
	m->m_line = start;
	m->end = end;
	m->c_line = m->rtcp_line = m->last_cand = m->eoc_line = NONE;

	/* m=<media> <port>[/<n>] <proto> 1*(SP <fmt>) (RFC 8866 §5.14).
	 * Every token is checked here, before Sofia sees the line: the
	 * 1.12.11 parser loops forever, allocating, on a non-RTP m= line
	 * whose format list does not start with a token character (e.g.
	 * "m=audio 4000 RT:/AVP 0"; fixed upstream in freeswitch/sofia-sip
	 * a953f25, not in Debian's package). */
	struct line *ml = &d->lines[start];
	struct line rest = {ml->p + 2, ml->len - 2}, tk[1];
	size_t nt = 0;
	for (size_t i = 0; i < rest.len; i++)
		if (rest.p[i] == '\t')
			return -EINVAL;
	while (tokens(rest, tk, 1) > 0) {
		if (nt < 4)
			t[nt] = tk[0];
		if (nt != 1 && !is_token(tk[0], nt == 2))
			return -EINVAL;
		nt++;
		rest.len -= (size_t)(tk[0].p + tk[0].len - rest.p);
		rest.p = tk[0].p + tk[0].len;
	}
	if (nt < 4)
		return -EINVAL;
	m->media = t[0];
	m->proto = t[2];
	struct line port = t[1], count = {NULL, 0};
	uint64_t n_ports;
	for (size_t i = 0; i < port.len; i++) {
		if (port.p[i] == '/') {
			count = (struct line){port.p + i + 1, port.len - i - 1};
			port.len = i;
		}
	}
	if (count.p != NULL && tok_u64(count, 65535, &n_ports) < 0)
		return -EINVAL;
	if (tok_u64(port, 65535, &v) < 0)
		return -EINVAL;
	m->port = (unsigned)v;
	m->disabled = m->port == 0;

	for (size_t i = start + 1; i < end; i++) {
		struct line *l = &d->lines[i];
		if (line_is(l, 'c')) {
			if (m->c_line == NONE)
				m->c_line = i;
		} else if (attr_is(l, "rtcp", &val)) {
			if (m->rtcp_line == NONE)
				m->rtcp_line = i;
		} else if (attr_is(l, "rtcp-mux", NULL)) {
			m->rtcp_mux = true;
		} else if (attr_is(l, "candidate", &val)) {
			m->ice = true;
			m->last_cand = i;
			add_foundation(d, val);
		} else if (attr_is(l, "ice-ufrag", NULL)) {
			m->ice = true;
		} else if (attr_is(l, "end-of-candidates", NULL)) {
			if (m->eoc_line == NONE)
				m->eoc_line = i;
		} else if (attr_is(l, "crypto", NULL)) {
			m->crypto = true;
		} else if (attr_is(l, "fingerprint", NULL)) {
			m->dtls = true;
		} else if (dir_attr(l, &m->dir)) {
			m->has_dir = true;
		}
	}
	if (d->sess_ufrag)
		m->ice = true;
	if (d->sess_fingerprint)
		m->dtls = true;
	if (!m->has_dir)
		m->dir = d->sess_dir;

	size_t cl = m->c_line != NONE ? m->c_line : d->c_line;
	if (cl == NONE)
		return -EINVAL; /* RFC 8866 §5.7; Sofia refuses this as well */
	m->c_val = (struct line){d->lines[cl].p + 2, d->lines[cl].len - 2};
	if (parse_conn(m->c_val, m->addr, &m->family) < 0)
		return -EINVAL;
	m->hold_zero = zero_addr(m->addr, m->family);

	/* a=rtcp:<port> [<nettype> <addrtype> <addr>] (RFC 3605 §2.1) */
	strcpy(m->rtcp_addr, m->addr);
	m->rtcp_port = m->port + 1;
	if (m->rtcp_line != NONE) {
		attr_is(&d->lines[m->rtcp_line], "rtcp", &val);
		size_t n = tokens(val, t, 4);
		int fam;
		if ((n != 1 && n != 4) || tok_u64(t[0], 65535, &v) < 0)
			return -EINVAL;
		m->rtcp_port = (unsigned)v;
		if (n == 4) {
			struct line conn = {t[1].p, (size_t)(t[3].p + t[3].len - t[1].p)};
			if (parse_conn(conn, m->rtcp_addr, &fam) < 0)
				return -EINVAL;
			m->rtcp_has_addr = true;
		}
	} else if (m->rtcp_mux) {
		m->rtcp_port = m->port;
	}
	return 0;
}

/* Sofia must accept the SDP, and agree with our reading of it: the line
 * editor below trusts that every m-line it sees is one Sofia parsed. */
static int sofia_check(const char *sdp, size_t len, struct doc *d)
{
	su_home_t home[1] = {SU_HOME_INIT(home)};
	sdp_parser_t *p;
	sdp_session_t *s;
	int err = 0;

	p = sdp_parse(home, sdp, (issize_t)len, 0);
	if (p == NULL) {
		err = -ENOMEM;
		goto out;
	}
	if (sdp_parsing_error(p) != NULL) {
		err = -EINVAL;
		goto out;
	}
	s = sdp_session(p);
	if (s == NULL || s->sdp_origin == NULL || s->sdp_origin->o_version != d->o_version) {
		err = -EINVAL;
		goto out;
	}
	size_t i = 0;
	for (sdp_media_t *m = s->sdp_media; m != NULL; m = m->m_next, i++) {
		if (i >= d->n_media || m->m_port != d->ms[i].port) {
			err = -EINVAL;
			goto out;
		}
	}
	if (i != d->n_media)
		err = -EINVAL;
out:
	if (p != NULL)
		sdp_parser_free(p);
	su_home_deinit(home);
	return err;
}

static int doc_load(const char *sdp, size_t len, struct doc *d)
{
	int err;

	memset(d, 0, sizeof(*d));
	if (sdp == NULL)
		return -EINVAL;
	if (len > SDPR_MAX_LEN)
		return -EMSGSIZE;
	err = split_lines(sdp, len, d);
	if (err < 0)
		goto out;
	if (d->n == 0 || !(d->lines[0].len == 3 && memcmp(d->lines[0].p, "v=0", 3) == 0)) {
		err = -EINVAL;
		goto out;
	}
	err = analyze_session(d);
	if (err < 0)
		goto out;
	size_t idx = 0;
	for (size_t i = d->first_m; i < d->n && err == 0; idx++) {
		size_t e = i + 1;
		while (e < d->n && !line_is(&d->lines[e], 'm'))
			e++;
		err = analyze_media(d, idx, i, e);
		i = e;
	}
	if (err < 0)
		goto out;
	err = sofia_check(sdp, len, d);
out:
	if (err < 0)
		doc_free(d);
	return err;
}

/* ---- inspect ---- */

int sdpr_inspect(const char *sdp, size_t len, struct sdpr_session_info *session,
                 struct sdpr_stream_info *streams, size_t max)
{
	struct doc d;
	int err;

	if (streams == NULL && max > 0)
		return -EINVAL;
	err = doc_load(sdp, len, &d);
	if (err < 0)
		return err;
	if (session != NULL) {
		memset(session, 0, sizeof(*session));
		strcpy(session->origin_addr, d.o_addr);
		session->origin_family = d.o_family;
		session->origin_version = d.o_version;
		session->n_streams = d.n_media;
	}
	for (size_t i = 0; i < d.n_media && i < max; i++) {
		const struct mstate *m = &d.ms[i];
		struct sdpr_stream_info *s = &streams[i];
		memset(s, 0, sizeof(*s));
		s->index = (unsigned)i;
		tok_copy(m->media, s->media, sizeof(s->media));
		tok_copy(m->proto, s->proto, sizeof(s->proto));
		s->disabled = m->disabled;
		s->direction = m->dir;
		s->hold_zero_addr = m->hold_zero;
		s->family = m->family;
		strcpy(s->addr, m->addr);
		s->port = m->port;
		strcpy(s->rtcp_addr, m->rtcp_addr);
		s->rtcp_port = m->rtcp_port;
		s->rtcp_attr = m->rtcp_line != NONE;
		s->rtcp_mux = m->rtcp_mux;
		s->ice = m->ice;
		s->crypto = m->crypto;
		s->dtls = m->dtls;
	}
	if (d.n_media > max)
		err = -E2BIG;
	doc_free(&d);
	return err;
}

/* ---- output buffer ---- */

struct obuf {
	char *p;
	size_t len, cap;
	int err;
	bool changed; /* the output differs from the input so far */
};

static void put(struct obuf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void put_line(struct obuf *b, const struct line *l)
{
	put(b, l->p, l->len);
	put(b, "\r\n", 2);
}

/* A line we built ourselves, replacing orig (NULL: a new line). */
static void put_new(struct obuf *b, const struct line *orig, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void put_new(struct obuf *b, const struct line *orig, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->err = -EINVAL;
		return;
	}
	if (orig == NULL || orig->len != (size_t)n || memcmp(orig->p, tmp, (size_t)n) != 0)
		b->changed = true;
	put(b, tmp, (size_t)n);
	put(b, "\r\n", 2);
}

/* ---- rewrite ---- */

void sdpr_options_init(struct sdpr_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->ice_relay_candidates = true;
}

static const char *ipver(int family)
{
	return family == AF_INET6 ? "IP6" : "IP4";
}

static int check_target(const struct sdpr_media_target *t)
{
	unsigned char a[16];

	if (t->passthrough)
		return 0;
	if ((t->family != AF_INET && t->family != AF_INET6) ||
	    memchr(t->addr, '\0', sizeof(t->addr)) == NULL ||
	    inet_pton(t->family, t->addr, a) != 1 || t->rtp_port < 1 || t->rtp_port > 65535 ||
	    t->rtcp_port < 1 || t->rtcp_port > 65535)
		return -EINVAL;
	return 0;
}

static bool relayed(const struct mstate *m, const struct sdpr_media_target *t)
{
	return !m->disabled && !t->passthrough;
}

/* The c= value stream i must end up with. */
static void desired_conn(const struct mstate *m, const struct sdpr_media_target *t, char *buf,
                         size_t size)
{
	/* Passthrough keeps its own address; a zero-address hold stays a hold
	 * (RFC 3264 §8.4) - pointing it at the relay would resume media. */
	if (!relayed(m, t) || m->hold_zero)
		snprintf(buf, size, "%.*s", (int)m->c_val.len, m->c_val.p);
	else
		snprintf(buf, size, "IN %s %s", ipver(t->family), t->addr);
}

/* Relay candidates already in an ICE stream (our own earlier output being
 * rewritten again) are not added twice. */
static void find_relay_candidates(struct doc *d, const struct sdpr_media_target *targets)
{
	for (size_t i = 0; i < d->n_media; i++) {
		struct mstate *m = &d->ms[i];
		const struct sdpr_media_target *t = &targets[i];
		struct line val;
		if (!relayed(m, t))
			continue;
		for (size_t k = m->m_line + 1; k < m->end; k++) {
			struct ice_candidate c;
			char tmp[512];
			if (!attr_is(&d->lines[k], "candidate", &val) || val.len >= sizeof(tmp))
				continue;
			memcpy(tmp, val.p, val.len);
			tmp[val.len] = '\0';
			if (ice_parse_candidate(tmp, &c) < 0 || strcmp(c.type, "relay") != 0 ||
			    strcmp(c.addr, t->addr) != 0 || c.component > 2)
				continue;
			unsigned want = c.component == 1 ? t->rtp_port : t->rtcp_port;
			if (c.port == want)
				m->relay_present[c.component - 1] = true;
		}
	}
}

struct fmap {
	char addr[SDPR_ADDR_MAX];
	char foundation[ICE_FOUNDATION_MAX + 1];
};

/* RFC 8445 §5.1.1.3: candidates of the same type from the same base share
 * a foundation, different bases must not.  One foundation per relay
 * address, distinct from every foundation the endpoint used. */
static int relay_foundation(struct doc *d, struct fmap *map, size_t *n_map, const char *addr,
                            const char **fnd)
{
	size_t n_taken = 0;

	for (size_t i = 0; i < *n_map; i++) {
		if (strcmp(map[i].addr, addr) == 0) {
			*fnd = map[i].foundation;
			return 0;
		}
	}
	/* Taken: the endpoint's foundations plus the ones we chose so far. */
	const char **all = calloc(d->n_found + *n_map + 1, sizeof(*all));
	if (all == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_found; i++)
		all[n_taken++] = d->found[i];
	for (size_t i = 0; i < *n_map; i++)
		all[n_taken++] = map[i].foundation;
	struct fmap *e = &map[*n_map];
	int err = ice_pick_foundation(all, n_taken, e->foundation, sizeof(e->foundation));
	free(all);
	if (err < 0)
		return err;
	strcpy(e->addr, addr);
	(*n_map)++;
	*fnd = e->foundation;
	return 0;
}

static void put_candidates(struct obuf *b, struct doc *d, const struct mstate *m,
                           const struct sdpr_media_target *t, struct fmap *map, size_t *n_map)
{
	const char *fnd;
	int err;

	err = relay_foundation(d, map, n_map, t->addr, &fnd);
	if (err < 0) {
		b->err = err;
		return;
	}
	for (unsigned comp = 1; comp <= (t->rtcp_mux ? 1u : 2u); comp++) {
		struct ice_candidate c;
		char val[512];
		if (m->relay_present[comp - 1])
			continue;
		/* raddr/rport: where the endpoint said it receives, i.e. what
		 * this relayed candidate stands in for (RFC 8839 §5.1). */
		err = ice_relay_candidate(
		        fnd, comp, t->addr, comp == 1 ? t->rtp_port : t->rtcp_port,
		        comp == 1 ? m->addr : m->rtcp_addr, comp == 1 ? m->port : m->rtcp_port, &c);
		if (err == 0)
			err = ice_format_candidate(&c, val, sizeof(val));
		if (err < 0) {
			b->err = err;
			return;
		}
		put_new(b, NULL, "a=candidate:%s", val);
	}
}

static bool strip_candidate(const struct line *l, const struct sdpr_options *opt)
{
	struct ice_candidate c;
	struct line val;
	char tmp[512];

	if (!opt->strip_private_candidates || !attr_is(l, "candidate", &val) ||
	    val.len >= sizeof(tmp))
		return false;
	memcpy(tmp, val.p, val.len);
	tmp[val.len] = '\0';
	/* A candidate we cannot parse is not ours to judge: keep it. */
	if (ice_parse_candidate(tmp, &c) < 0)
		return false;
	return strcasecmp(c.type, "host") == 0 && ice_addr_is_private(c.addr);
}

static void put_media(struct obuf *b, struct doc *d, size_t idx, const char *sess_conn,
                      const struct sdpr_media_target *t, const struct sdpr_options *opt,
                      struct fmap *map, size_t *n_map)
{
	const struct mstate *m = &d->ms[idx];
	char conn[SDPR_CONN_MAX];
	bool inject = false;
	size_t after;

	if (m->disabled) {
		/* RFC 3264 §6: a rejected stream is left exactly as it was. */
		for (size_t i = m->m_line; i < m->end; i++)
			put_line(b, &d->lines[i]);
		return;
	}
	desired_conn(m, t, conn, sizeof(conn));

	if (relayed(m, t) && opt->ice_relay_candidates && m->ice &&
	    !(m->relay_present[0] && (t->rtcp_mux || m->relay_present[1])))
		inject = true;
	/* Relay candidates go after the endpoint's last candidate, else just
	 * before a=end-of-candidates (a candidate after it would contradict
	 * it, RFC 8840 §8.2), else at the end of the section. */
	after = m->last_cand;

	for (size_t i = m->m_line; i < m->end; i++) {
		const struct line *l = &d->lines[i];
		if (inject && after == NONE && i == m->eoc_line) {
			put_candidates(b, d, m, t, map, n_map);
			inject = false;
		}
		if (i == m->m_line) {
			if (relayed(m, t)) {
				/* Only the port token changes.  Written piece by
				 * piece: a long format list must not be cut. */
				struct line tk[2];
				char port[8];
				tokens((struct line){l->p + 2, l->len - 2}, tk, 2);
				const char *port_end = tk[1].p;
				while (port_end < l->p + l->len && *port_end != '/' &&
				       *port_end != ' ')
					port_end++;
				int pn = snprintf(port, sizeof(port), "%u", t->rtp_port);
				if (pn != (int)(port_end - tk[1].p) ||
				    memcmp(port, tk[1].p, (size_t)pn) != 0)
					b->changed = true;
				put(b, l->p, (size_t)(tk[1].p - l->p));
				put(b, port, (size_t)pn);
				put(b, port_end, (size_t)(l->p + l->len - port_end));
				put(b, "\r\n", 2);
			} else {
				put_line(b, l);
			}
			/* RFC 8866 §5: c= comes after i=; add ours there when
			 * the session-level one no longer fits this stream. */
			size_t k = i + 1;
			while (k < m->end && line_is(&d->lines[k], 'i'))
				put_line(b, &d->lines[k++]);
			if (m->c_line == NONE && strcmp(conn, sess_conn) != 0)
				put_new(b, NULL, "c=%s", conn);
			i = k - 1;
			continue;
		}
		if (!relayed(m, t)) {
			put_line(b, l);
			continue;
		}
		if (line_is(l, 'c')) {
			put_new(b, l, "c=%s", conn);
		} else if (i == m->rtcp_line) {
			if (m->rtcp_has_addr)
				put_new(b, l, "a=rtcp:%u %s", t->rtcp_port, conn);
			else
				put_new(b, l, "a=rtcp:%u", t->rtcp_port);
		} else if (attr_is(l, "rtcp-mux", NULL) && !t->rtcp_mux) {
			b->changed = true; /* dropped: the relay side does not mux */
		} else if (strip_candidate(l, opt)) {
			b->changed = true;
		} else {
			put_line(b, l);
		}
		if (inject && i == after) {
			put_candidates(b, d, m, t, map, n_map);
			inject = false;
		}
	}
	/* RFC 3605: without a=rtcp the far end sends RTCP to port + 1. */
	if (relayed(m, t) && m->rtcp_line == NONE && !t->rtcp_mux &&
	    t->rtcp_port != t->rtp_port + 1)
		put_new(b, NULL, "a=rtcp:%u", t->rtcp_port);
	if (inject)
		put_candidates(b, d, m, t, map, n_map);
}

/* FNV-1a, 64 bit: only compares our own outputs with each other. */
static uint64_t fnv1a(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

int sdpr_rewrite(const char *sdp, size_t len, const struct sdpr_media_target *targets,
                 size_t n_targets, const struct sdpr_options *opt, char **out, size_t *out_len)
{
	struct sdpr_options defaults;
	struct obuf b = {0};
	struct doc d;
	struct fmap *map = NULL;
	size_t n_map = 0, voff = 0, vlen = 0;
	char sess_conn[SDPR_CONN_MAX] = "";
	char *res = NULL;
	int err;

	if (out == NULL || out_len == NULL || (targets == NULL && n_targets > 0))
		return -EINVAL;
	if (opt == NULL) {
		sdpr_options_init(&defaults);
		opt = &defaults;
	}
	err = doc_load(sdp, len, &d);
	if (err < 0)
		return err;
	if (n_targets < d.n_media) {
		err = -ERANGE;
		goto out;
	}
	for (size_t i = 0; i < d.n_media; i++) {
		if (!d.ms[i].disabled) {
			err = check_target(&targets[i]);
			if (err < 0)
				goto out;
		}
	}
	map = calloc(d.n_media ? d.n_media : 1, sizeof(*map));
	if (map == NULL) {
		err = -ENOMEM;
		goto out;
	}
	find_relay_candidates(&d, targets);

	/* The session-level c= follows the first relayed stream that relies
	 * on it, so that in the common case (one relay address) no stream
	 * needs a media-level c= of its own.  A zero-address hold at session
	 * level stays as it is. */
	if (d.c_line != NONE) {
		const struct line *cl = &d.lines[d.c_line];
		char addr[SDPR_ADDR_MAX];
		int fam;
		size_t pick = NONE;
		snprintf(sess_conn, sizeof(sess_conn), "%.*s", (int)cl->len - 2, cl->p + 2);
		if (parse_conn((struct line){cl->p + 2, cl->len - 2}, addr, &fam) < 0) {
			err = -EINVAL;
			goto out;
		}
		for (size_t i = 0; i < d.n_media && !zero_addr(addr, fam); i++) {
			if (!relayed(&d.ms[i], &targets[i]) || d.ms[i].hold_zero)
				continue;
			if (pick == NONE || (d.ms[pick].c_line != NONE && d.ms[i].c_line == NONE))
				pick = i;
		}
		if (pick != NONE)
			desired_conn(&d.ms[pick], &targets[pick], sess_conn, sizeof(sess_conn));
	}

	for (size_t i = 0; i < (d.first_m == NONE ? d.n : d.first_m); i++) {
		const struct line *l = &d.lines[i];
		if (i == d.o_line) {
			voff = b.len + (size_t)(d.o_vtok.p - l->p);
			vlen = d.o_vtok.len;
			put_line(&b, l);
		} else if (i == d.c_line) {
			put_new(&b, l, "c=%s", sess_conn);
		} else {
			put_line(&b, l);
		}
	}
	for (size_t i = 0; i < d.n_media; i++)
		put_media(&b, &d, i, sess_conn, &targets[i], opt, map, &n_map);
	if (b.err) {
		err = b.err;
		goto out;
	}
	/* Dropping blank lines or turning LF into CRLF is not a change. */
	if (!b.changed && d.n > 0) {
		size_t norm = 0;
		for (size_t i = 0; i < d.n; i++)
			norm += d.lines[i].len + 2;
		b.changed = norm != b.len;
	}

	/* RFC 3264 §8: the version grows by exactly one when what we send
	 * changes, and stays put when it does not. */
	uint64_t version = d.o_version;
	uint64_t digest = fnv1a(fnv1a(0xcbf29ce484222325ull, b.p, voff), b.p + voff + vlen,
	                        b.len - voff - vlen);
	struct sdpr_version *st = opt->version;
	bool bump;
	if (st != NULL && st->valid) {
		version = st->version;
		bump = digest != st->digest;
	} else {
		bump = b.changed;
	}
	if (bump) {
		if (version == UINT64_MAX) {
			err = -EOVERFLOW;
			goto out;
		}
		version++;
	}

	/* An unchanged version keeps its original spelling ("007"). */
	char vbuf[24];
	int vn = snprintf(vbuf, sizeof(vbuf), "%" PRIu64, version);
	if (version == d.o_version) {
		vn = (int)vlen;
		memcpy(vbuf, b.p + voff, vlen);
	}
	size_t total = b.len - vlen + (size_t)vn;
	res = malloc(total + 1);
	if (res == NULL) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(res, b.p, voff);
	memcpy(res + voff, vbuf, (size_t)vn);
	memcpy(res + voff + vn, b.p + voff + vlen, b.len - voff - vlen);
	res[total] = '\0';

	if (st != NULL) {
		st->valid = true;
		st->version = version;
		st->digest = digest;
	}
	*out = res;
	*out_len = total;
out:
	free(b.p);
	free(map);
	doc_free(&d);
	return err;
}
