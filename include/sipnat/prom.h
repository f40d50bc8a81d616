/* prom: a builder for the Prometheus text exposition format (version
 * 0.0.4), so that /metrics can be produced without a client library.
 *
 * Every metric family starts with prom_family(), which writes its # HELP
 * and # TYPE lines; its samples follow with prom_sample() (or the histogram
 * helper).  The format requires the samples of a family to be grouped under
 * its header and each family to appear once, so a sample whose name does not
 * belong to the current family, or a family given twice, is an error.
 *
 * Errors are sticky: the first one is kept in the builder, later calls do
 * nothing, and prom_finish() returns it.  Callers can therefore chain calls
 * and check once.  Label values are escaped (backslash, double quote, line
 * feed) and invalid UTF-8 in them is replaced by '?', since the format is
 * UTF-8; metric and label names are checked against the format's grammar.
 *
 * Threads: [pure] – a builder belongs to its caller, no globals.
 * Memory: the builder owns its buffer until prom_finish() hands it over;
 * prom_reset() frees whatever is left.
 */
#ifndef SIPNAT_PROM_H
#define SIPNAT_PROM_H

#include <stddef.h>
#include <stdint.h>

enum prom_type { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM, PROM_UNTYPED };

struct prom_label {
	const char *name;
	const char *value;
};

#define PROM_MAX_FAMILIES 128

struct prom {
	char *buf;
	size_t len, cap;
	int err; /* first error, 0 if none */
	enum prom_type type;
	char family[128]; /* the family whose samples may follow */
	/* names of the families written so far, to refuse duplicates */
	char *families[PROM_MAX_FAMILIES];
	size_t n_families;
};

void prom_init(struct prom *p);
/* Frees everything the builder holds; it can be used again afterwards. */
void prom_reset(struct prom *p);

/* Starts family name: "# HELP name help" and "# TYPE name type".
 * -EINVAL for a bad name or a family already written. */
int prom_family(struct prom *p, const char *name, enum prom_type type, const char *help);

/* One sample line "name{labels} value".  name is the family's name, or for
 * a histogram its _bucket, _sum or _count series.  labels may be NULL when
 * n is 0. */
int prom_sample(struct prom *p, const char *name, const struct prom_label *labels, size_t n,
                double value);
/* Same with an exact integer value (counters above 2^53 stay exact). */
int prom_sample_u64(struct prom *p, const char *name, const struct prom_label *labels, size_t n,
                    uint64_t value);

/* Family header plus one unlabelled sample: the common case. */
int prom_counter(struct prom *p, const char *name, const char *help, uint64_t value);
int prom_gauge(struct prom *p, const char *name, const char *help, double value);

/* A histogram's observations, for prom_histogram().  counts has n_bounds
 * entries: counts[i] is the number of observations <= bounds[i] and above
 * bounds[i-1] (not cumulative; prom_histogram() accumulates).  Observations
 * above the last bound are only in count.  bounds must increase. */
struct prom_hist {
	const double *bounds;
	size_t n_bounds;
	uint64_t *counts;
	uint64_t count;
	double sum;
};

/* Records one observation. */
void prom_hist_observe(struct prom_hist *h, double v);

/* Writes the _bucket series (cumulative, le="+Inf" last), _sum and _count
 * of a histogram family started with prom_family(..., PROM_HISTOGRAM, ...),
 * with labels (which must not contain "le"). */
int prom_histogram(struct prom *p, const char *name, const struct prom_label *labels, size_t n,
                   const struct prom_hist *h);

/* Formats a sample value as the format wants it: "NaN", "+Inf", "-Inf", or
 * the shortest decimal that reads back as v.  Returns the length. */
int prom_format_value(double v, char *out, size_t outlen);

/* Hands over the text (NUL-terminated, caller frees with free()) and resets
 * the builder.  Returns 0, or the first error, in which case nothing is
 * handed over.  An empty builder gives an empty string. */
int prom_finish(struct prom *p, char **text, size_t *len);

#endif
