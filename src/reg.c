/* reg: registration table with one min-heap for expiries and keepalives. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sipnat/reg.h"

#define BUCKETS_MIN 1024

struct reg {
	struct reg_binding **bucket;
	size_t nbuckets;
	size_t count;
	struct reg_binding **heap;
	size_t heap_len, heap_cap;
};

static uint64_t hash_str(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h ^ 0xff;
}

/* Bindings hash by AOR so that every binding of one AOR shares a chain. */
static size_t bucket_of(const struct reg *r, const char *aor)
{
	return hash_str(1469598103934665603ULL, aor) & (r->nbuckets - 1);
}

static bool same_key(const struct reg_binding *b, const char *aor, const char *contact,
		     const char *instance, unsigned reg_id)
{
	if (strcmp(b->aor, aor) != 0)
		return false;
	if (instance && *instance)
		return !strcmp(b->instance, instance) && b->reg_id == reg_id;
	return !b->instance[0] && !strcmp(b->contact, contact);
}

static time_t due_of(const struct reg_binding *b)
{
	if (b->ka_due && b->ka_due < b->expires)
		return b->ka_due;
	return b->expires;
}

static void heap_swap(struct reg *r, size_t i, size_t j)
{
	struct reg_binding *t = r->heap[i];

	r->heap[i] = r->heap[j];
	r->heap[j] = t;
	r->heap[i]->heap_index = i;
	r->heap[j]->heap_index = j;
}

static void heap_up(struct reg *r, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (due_of(r->heap[parent]) <= due_of(r->heap[i]))
			break;
		heap_swap(r, i, parent);
		i = parent;
	}
}

static void heap_down(struct reg *r, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < r->heap_len && due_of(r->heap[l]) < due_of(r->heap[m]))
			m = l;
		if (l + 1 < r->heap_len && due_of(r->heap[l + 1]) < due_of(r->heap[m]))
			m = l + 1;
		if (m == i)
			return;
		heap_swap(r, i, m);
		i = m;
	}
}

static int heap_push(struct reg *r, struct reg_binding *b)
{
	if (r->heap_len == r->heap_cap) {
		size_t cap = r->heap_cap ? r->heap_cap * 2 : 256;
		struct reg_binding **h = realloc(r->heap, cap * sizeof *h);
		if (!h)
			return -ENOMEM;
		r->heap = h;
		r->heap_cap = cap;
	}
	b->heap_index = r->heap_len;
	r->heap[r->heap_len++] = b;
	heap_up(r, b->heap_index);
	return 0;
}

static void heap_remove(struct reg *r, struct reg_binding *b)
{
	size_t i = b->heap_index;

	if (i >= r->heap_len || r->heap[i] != b)
		return;
	r->heap_len--;
	if (i != r->heap_len) {
		r->heap[i] = r->heap[r->heap_len];
		r->heap[i]->heap_index = i;
		heap_down(r, i);
		heap_up(r, i);
	}
	b->heap_index = SIZE_MAX;
}

int reg_create(struct reg **out)
{
	struct reg *r = calloc(1, sizeof *r);

	if (!r)
		return -ENOMEM;
	r->nbuckets = BUCKETS_MIN;
	r->bucket = calloc(r->nbuckets, sizeof *r->bucket);
	if (!r->bucket) {
		free(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

void reg_free(struct reg *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nbuckets; i++) {
		struct reg_binding *b = r->bucket[i], *n;
		for (; b; b = n) {
			n = b->hnext;
			free(b);
		}
	}
	free(r->bucket);
	free(r->heap);
	free(r);
}

/* Keeps chains short as the table grows: 100 000 devices must not turn
 * lookups into list walks. */
static void maybe_grow(struct reg *r)
{
	size_t n = r->nbuckets * 2;
	struct reg_binding **nb;

	if (r->count < r->nbuckets)
		return;
	nb = calloc(n, sizeof *nb);
	if (!nb)
		return; /* still correct, only slower */
	for (size_t i = 0; i < r->nbuckets; i++) {
		struct reg_binding *b = r->bucket[i], *next;
		for (; b; b = next) {
			size_t k = hash_str(1469598103934665603ULL, b->aor) & (n - 1);
			next = b->hnext;
			b->hnext = nb[k];
			nb[k] = b;
		}
	}
	free(r->bucket);
	r->bucket = nb;
	r->nbuckets = n;
}

struct reg_binding *reg_find(struct reg *r, const char *aor, const char *contact,
			     const char *instance, unsigned reg_id)
{
	for (struct reg_binding *b = r->bucket[bucket_of(r, aor)]; b; b = b->hnext)
		if (same_key(b, aor, contact, instance, reg_id))
			return b;
	return NULL;
}

int reg_update(struct reg *r, const struct reg_binding *in, struct reg_binding **out)
{
	struct reg_binding *b = reg_find(r, in->aor, in->contact, in->instance, in->reg_id);
	size_t k;

	if (b) {
		size_t hi = b->heap_index;
		struct reg_binding *hn = b->hnext;
		*b = *in;
		b->heap_index = hi;
		b->hnext = hn;
		reg_reschedule(r, b);
		if (out)
			*out = b;
		return 0;
	}
	b = malloc(sizeof *b);
	if (!b)
		return -ENOMEM;
	*b = *in;
	if (heap_push(r, b) < 0) {
		free(b);
		return -ENOMEM;
	}
	k = bucket_of(r, b->aor);
	b->hnext = r->bucket[k];
	r->bucket[k] = b;
	r->count++;
	maybe_grow(r);
	if (out)
		*out = b;
	return 1;
}

void reg_remove_binding(struct reg *r, struct reg_binding *b)
{
	struct reg_binding **pp = &r->bucket[bucket_of(r, b->aor)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == b) {
			*pp = b->hnext;
			heap_remove(r, b);
			r->count--;
			free(b);
			return;
		}
	}
}

int reg_remove(struct reg *r, const char *aor, const char *contact, const char *instance,
	       unsigned reg_id)
{
	int n = 0;

	if (contact && !strcmp(contact, "*")) {
		struct reg_binding *b = r->bucket[bucket_of(r, aor)], *next;
		for (; b; b = next) {
			next = b->hnext;
			if (!strcmp(b->aor, aor)) {
				reg_remove_binding(r, b);
				n++;
			}
		}
		return n;
	}
	struct reg_binding *b = reg_find(r, aor, contact, instance, reg_id);
	if (b) {
		reg_remove_binding(r, b);
		n = 1;
	}
	return n;
}

static bool same_flow(const struct flow *a, const struct flow *b)
{
	if (a->transport != b->transport || a->remote.ss_family != b->remote.ss_family)
		return false;
	if (a->remote.ss_family == AF_INET)
		return !memcmp(&((const struct sockaddr_in *)&a->remote)->sin_addr,
			       &((const struct sockaddr_in *)&b->remote)->sin_addr, 4) &&
		       ((const struct sockaddr_in *)&a->remote)->sin_port ==
			       ((const struct sockaddr_in *)&b->remote)->sin_port;
	return !memcmp(&((const struct sockaddr_in6 *)&a->remote)->sin6_addr,
		       &((const struct sockaddr_in6 *)&b->remote)->sin6_addr, 16) &&
	       ((const struct sockaddr_in6 *)&a->remote)->sin6_port ==
		       ((const struct sockaddr_in6 *)&b->remote)->sin6_port;
}

struct reg_binding *reg_find_flow(struct reg *r, const struct flow *f)
{
	/* Linear, but only used for rare lookups (status, tests); the hot
	 * paths carry the flow in a signed token instead. */
	for (size_t i = 0; i < r->heap_len; i++)
		if (same_flow(&r->heap[i]->flow, f))
			return r->heap[i];
	return NULL;
}

size_t reg_count(const struct reg *r)
{
	return r->count;
}

time_t reg_next_time(const struct reg *r)
{
	return r->heap_len ? due_of(r->heap[0]) : 0;
}

struct reg_binding *reg_next_due(struct reg *r, time_t now)
{
	if (!r->heap_len || due_of(r->heap[0]) > now)
		return NULL;
	return r->heap[0];
}

void reg_reschedule(struct reg *r, struct reg_binding *b)
{
	if (b->heap_index >= r->heap_len || r->heap[b->heap_index] != b)
		return;
	heap_down(r, b->heap_index);
	heap_up(r, b->heap_index);
}

void reg_foreach(struct reg *r, void (*fn)(void *arg, struct reg_binding *b), void *arg)
{
	/* Iterate over a snapshot of the heap order: fn may not remove. */
	for (size_t i = 0; i < r->heap_len; i++)
		fn(arg, r->heap[i]);
}

/* One binding per line, space-separated, with every free-text field
 * percent-encoded so that no field can contain a space or newline:
 *   v1 expires natd outbound reg_id flow aor contact instance */
static void put_field(FILE *f, const char *s)
{
	if (!*s) {
		fputc('-', f);
		return;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c == '%' || c >= 0x7f || (c == '-' && s[1] == '\0' && s[-1] == '\0'))
			fprintf(f, "%%%02X", c);
		else
			fputc(c, f);
	}
}

static int get_field(const char *in, char *out, size_t len)
{
	size_t o = 0;

	if (!strcmp(in, "-")) {
		out[0] = '\0';
		return 0;
	}
	for (; *in; in++) {
		char c = *in;
		if (c == '%') {
			unsigned v;
			if (sscanf(in + 1, "%2x", &v) != 1)
				return -EINVAL;
			c = (char)v;
			in += 2;
		}
		if (o + 1 >= len)
			return -EINVAL;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

int reg_save(const struct reg *r, const char *path)
{
	char tmp[4096];
	FILE *f;
	int fd, err = 0;

	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		unlink(tmp);
		return err;
	}
	fprintf(f, "# sipnat registrations v1\n");
	for (size_t i = 0; i < r->heap_len; i++) {
		const struct reg_binding *b = r->heap[i];
		char flow[128];
		if (flow_format(&b->flow, flow, sizeof flow) < 0)
			continue;
		fprintf(f, "v1 %lld %u %d %u %s ", (long long)b->expires, b->natd, b->outbound ? 1 : 0,
			b->reg_id, flow);
		put_field(f, b->aor);
		fputc(' ', f);
		put_field(f, b->contact);
		fputc(' ', f);
		put_field(f, b->instance);
		fputc('\n', f);
	}
	if (fflush(f) != 0 || fsync(fd) != 0)
		err = -errno;
	if (fclose(f) != 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) != 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

int reg_load(struct reg *r, const char *path, time_t now, unsigned *bad)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	int loaded = 0;

	if (bad)
		*bad = 0;
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof line, f)) {
		struct reg_binding b;
		char flow[128], aor[REG_AOR_MAX * 3], contact[REG_CONTACT_MAX * 3],
			inst[REG_INSTANCE_MAX * 3];
		long long exp;
		int ob;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		memset(&b, 0, sizeof b);
		if (sscanf(line, "v1 %lld %u %d %u %127s %767s %1535s %383s", &exp, &b.natd, &ob,
			   &b.reg_id, flow, aor, contact, inst) != 8 ||
		    flow_parse(flow, &b.flow) < 0 || get_field(aor, b.aor, sizeof b.aor) < 0 ||
		    get_field(contact, b.contact, sizeof b.contact) < 0 ||
		    get_field(inst, b.instance, sizeof b.instance) < 0) {
			if (bad)
				(*bad)++;
			continue;
		}
		if (exp <= now)
			continue;
		b.expires = (time_t)exp;
		b.outbound = ob != 0;
		if (reg_update(r, &b, NULL) >= 0)
			loaded++;
	}
	fclose(f);
	return loaded;
}
