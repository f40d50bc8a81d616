/* prom: Prometheus text exposition format builder (see prom.h).
 *
 * Reference: Prometheus "Exposition formats", text format version 0.0.4:
 * metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]* (names starting with "__" are reserved); in label
 * values backslash, double quote and line feed are escaped as \\, \" and
 * \n; in HELP text only backslash and line feed are escaped.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sipnat/prom.h"

void prom_init(struct prom *p)
{
	memset(p, 0, sizeof *p);
}

void prom_reset(struct prom *p)
{
	free(p->buf);
	for (size_t i = 0; i < p->n_families; i++)
		free(p->families[i]);
	prom_init(p);
}

static int fail(struct prom *p, int err)
{
	if (!p->err)
		p->err = err;
	return p->err;
}

static int reserve(struct prom *p, size_t more)
{
	size_t want = p->len + more + 1;
	char *nb;
	size_t cap;

	if (want <= p->cap)
		return 0;
	cap = p->cap ? p->cap : 1024;
	while (cap < want)
		cap *= 2;
	nb = realloc(p->buf, cap);
	if (!nb)
		return fail(p, -ENOMEM);
	p->buf = nb;
	p->cap = cap;
	return 0;
}

static void put(struct prom *p, const char *s, size_t n)
{
	if (p->err || reserve(p, n) < 0)
		return;
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	p->buf[p->len] = '\0';
}

static void puts_(struct prom *p, const char *s)
{
	put(p, s, strlen(s));
}

static bool name_ok(const char *s, bool metric)
{
	if (!s || !*s)
		return false;
	for (size_t i = 0; s[i]; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		             (metric && c == ':');
		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return metric || strncmp(s, "__", 2) != 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 if invalid.  Overlong
 * forms and surrogates are invalid (RFC 3629 section 4). */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

/* label: escape ", \ and LF; help: escape \ and LF only. */
static void put_escaped(struct prom *p, const char *s, bool label)
{
	const unsigned char *u = (const unsigned char *)s;

	while (*u && !p->err) {
		size_t n = utf8_len(u);
		if (n == 0) {
			put(p, "?", 1);
			u++;
		} else if (*u == '\\') {
			put(p, "\\\\", 2);
			u++;
		} else if (*u == '\n') {
			put(p, "\\n", 2);
			u++;
		} else if (*u == '"' && label) {
			put(p, "\\\"", 2);
			u++;
		} else {
			put(p, (const char *)u, n);
			u += n;
		}
	}
}

int prom_format_value(double v, char *out, size_t outlen)
{
	if (isnan(v))
		return snprintf(out, outlen, "NaN");
	if (isinf(v))
		return snprintf(out, outlen, v > 0 ? "+Inf" : "-Inf");
	/* The shortest of %.15g..%.17g that reads back exactly. */
	for (int prec = 15; prec <= 17; prec++) {
		int n = snprintf(out, outlen, "%.*g", prec, v);
		if (n < 0 || (size_t)n >= outlen || strtod(out, NULL) == v || prec == 17)
			return n;
	}
	return -EINVAL;
}

static const char *type_name(enum prom_type t)
{
	switch (t) {
	case PROM_COUNTER:
		return "counter";
	case PROM_GAUGE:
		return "gauge";
	case PROM_HISTOGRAM:
		return "histogram";
	default:
		return "untyped";
	}
}

int prom_family(struct prom *p, const char *name, enum prom_type type, const char *help)
{
	char *copy;

	if (p->err)
		return p->err;
	if (!name_ok(name, true) || strlen(name) >= sizeof p->family)
		return fail(p, -EINVAL);
	for (size_t i = 0; i < p->n_families; i++)
		if (!strcmp(p->families[i], name))
			return fail(p, -EINVAL);
	if (p->n_families == PROM_MAX_FAMILIES)
		return fail(p, -ENOSPC);
	copy = strdup(name);
	if (!copy)
		return fail(p, -ENOMEM);
	p->families[p->n_families++] = copy;
	snprintf(p->family, sizeof p->family, "%s", name);
	p->type = type;

	if (help) {
		puts_(p, "# HELP ");
		puts_(p, name);
		puts_(p, " ");
		put_escaped(p, help, false);
		puts_(p, "\n");
	}
	puts_(p, "# TYPE ");
	puts_(p, name);
	puts_(p, " ");
	puts_(p, type_name(type));
	puts_(p, "\n");
	return p->err;
}

/* A sample name belongs to the current family: the name itself, or for a
 * histogram the _bucket/_sum/_count series. */
static bool in_family(const struct prom *p, const char *name)
{
	size_t fl = strlen(p->family);

	if (!p->family[0])
		return false;
	if (!strcmp(name, p->family))
		return p->type != PROM_HISTOGRAM;
	if (p->type != PROM_HISTOGRAM || strncmp(name, p->family, fl) != 0)
		return false;
	return !strcmp(name + fl, "_bucket") || !strcmp(name + fl, "_sum") ||
	       !strcmp(name + fl, "_count");
}

static int sample_text(struct prom *p, const char *name, const struct prom_label *labels, size_t n,
                       const char *extra_name, const char *extra_value, const char *value)
{
	if (p->err)
		return p->err;
	if (!name || !in_family(p, name))
		return fail(p, -EINVAL);
	for (size_t i = 0; i < n; i++) {
		if (!name_ok(labels[i].name, false) || !labels[i].value)
			return fail(p, -EINVAL);
		if (extra_name && !strcmp(labels[i].name, extra_name))
			return fail(p, -EINVAL);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(labels[i].name, labels[j].name))
				return fail(p, -EINVAL);
	}
	puts_(p, name);
	if (n || extra_name) {
		puts_(p, "{");
		for (size_t i = 0; i < n; i++) {
			if (i)
				puts_(p, ",");
			puts_(p, labels[i].name);
			puts_(p, "=\"");
			put_escaped(p, labels[i].value, true);
			puts_(p, "\"");
		}
		if (extra_name) {
			if (n)
				puts_(p, ",");
			puts_(p, extra_name);
			puts_(p, "=\"");
			puts_(p, extra_value);
			puts_(p, "\"");
		}
		puts_(p, "}");
	}
	puts_(p, " ");
	puts_(p, value);
	puts_(p, "\n");
	return p->err;
}

int prom_sample(struct prom *p, const char *name, const struct prom_label *labels, size_t n,
                double value)
{
	char v[32];

	prom_format_value(value, v, sizeof v);
	return sample_text(p, name, labels, n, NULL, NULL, v);
}

int prom_sample_u64(struct prom *p, const char *name, const struct prom_label *labels, size_t n,
                    uint64_t value)
{
	char v[32];

	snprintf(v, sizeof v, "%" PRIu64, value);
	return sample_text(p, name, labels, n, NULL, NULL, v);
}

int prom_counter(struct prom *p, const char *name, const char *help, uint64_t value)
{
	prom_family(p, name, PROM_COUNTER, help);
	return prom_sample_u64(p, name, NULL, 0, value);
}

int prom_gauge(struct prom *p, const char *name, const char *help, double value)
{
	prom_family(p, name, PROM_GAUGE, help);
	return prom_sample(p, name, NULL, 0, value);
}

void prom_hist_observe(struct prom_hist *h, double v)
{
	for (size_t i = 0; i < h->n_bounds; i++) {
		if (v <= h->bounds[i]) {
			h->counts[i]++;
			break;
		}
	}
	h->count++;
	h->sum += v;
}

int prom_histogram(struct prom *p, const char *name, const struct prom_label *labels, size_t n,
                   const struct prom_hist *h)
{
	char series[160], le[32], v[32];
	uint64_t cum = 0;

	if (p->err)
		return p->err;
	if (p->type != PROM_HISTOGRAM || strcmp(name, p->family) != 0)
		return fail(p, -EINVAL);
	for (size_t i = 1; i < h->n_bounds; i++)
		if (!(h->bounds[i] > h->bounds[i - 1]))
			return fail(p, -EINVAL);
	snprintf(series, sizeof series, "%s_bucket", name);
	for (size_t i = 0; i < h->n_bounds; i++) {
		cum += h->counts[i];
		prom_format_value(h->bounds[i], le, sizeof le);
		snprintf(v, sizeof v, "%" PRIu64, cum);
		sample_text(p, series, labels, n, "le", le, v);
	}
	snprintf(v, sizeof v, "%" PRIu64, h->count);
	sample_text(p, series, labels, n, "le", "+Inf", v);
	snprintf(series, sizeof series, "%s_sum", name);
	prom_sample(p, series, labels, n, h->sum);
	snprintf(series, sizeof series, "%s_count", name);
	return prom_sample_u64(p, series, labels, n, h->count);
}

int prom_finish(struct prom *p, char **text, size_t *len)
{
	int err = p->err;

	if (!err && !p->buf) {
		p->buf = strdup("");
		if (!p->buf)
			err = -ENOMEM;
	}
	if (err) {
		prom_reset(p);
		return err;
	}
	*text = p->buf;
	if (len)
		*len = p->len;
	p->buf = NULL;
	prom_reset(p);
	return 0;
}
