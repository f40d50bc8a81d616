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
/* Bindings come from size-classed slabs of their own, not from malloc:
 * they live for hours, and mixed into the heap among the short-lived
 * transactions of a registration storm each one would pin a page that the
 * storm's freed memory could otherwise give back (measured: ~4 KiB RSS per
 * device with malloc, the binding's own size with slabs). */
#define SLAB_GRAIN 64
#define SLAB_CHUNK (64 * 1024)
#define SLAB_CLASSES                                                                               \
	((sizeof(struct reg_binding) + REG_AOR_MAX + REG_CONTACT_MAX + REG_INSTANCE_MAX +          \
	  SLAB_GRAIN - 1) /                                                                        \
	 SLAB_GRAIN)

struct slab_free {
	struct slab_free *next;
};

struct slab_chunk {
	struct slab_chunk *next;
};

struct slab_class {
	struct slab_free *free; /* freed blocks of this size */
	char *cur;              /* unused tail of the newest chunk */
	size_t left;
};

struct reg {
	struct reg_binding **bucket;  /* by AOR */
	struct reg_binding **fbucket; /* by flow, same size */
	size_t nbuckets;
	size_t count;
	struct reg_binding **heap;
	size_t heap_len, heap_cap;
	struct slab_class slab[SLAB_CLASSES];
	struct slab_chunk *chunks; /* every chunk, for reg_free */
};

static size_t slab_class_of(size_t n)
{
	return (n + SLAB_GRAIN - 1) / SLAB_GRAIN - 1;
}

static void *slab_alloc(struct reg *r, size_t n)
{
	size_t k = slab_class_of(n), size = (k + 1) * SLAB_GRAIN;
	struct slab_class *c;
	void *p;

	if (k >= SLAB_CLASSES)
		return NULL;
	c = &r->slab[k];
	if (c->free) {
		p = c->free;
		c->free = c->free->next;
		return p;
	}
	if (c->left < size) {
		/* The chunk header takes the first grain. */
		struct slab_chunk *ch = malloc(SLAB_CHUNK);
		if (!ch)
			return NULL;
		ch->next = r->chunks;
		r->chunks = ch;
		c->cur = (char *)ch + SLAB_GRAIN;
		c->left = SLAB_CHUNK - SLAB_GRAIN;
	}
	p = c->cur;
	c->cur += size;
	c->left -= size;
	return p;
}

static void slab_free(struct reg *r, void *p, size_t n)
{
	struct slab_free *f = p;
	size_t k = slab_class_of(n);

	f->next = r->slab[k].free;
	r->slab[k].free = f;
}

static size_t binding_size(const struct reg_binding *b)
{
	return sizeof *b + strlen(b->aor) + strlen(b->contact) + strlen(b->instance) + 3;
}

static void binding_free(struct reg *r, struct reg_binding *b)
{
	slab_free(r, b, binding_size(b));
}

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

/* The bytes of a flow that identify it: transport, address, port. */
static uint64_t hash_flow(const struct flow *f)
{
	uint64_t h = 1469598103934665603ULL;
	const uint8_t *p;
	size_t n;
	uint16_t port;

	if (f->remote.ss_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&f->remote;
		p = (const uint8_t *)&v6->sin6_addr;
		n = 16;
		port = v6->sin6_port;
	} else {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)&f->remote;
		p = (const uint8_t *)&v4->sin_addr;
		n = 4;
		port = v4->sin_port;
	}
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	h ^= (uint64_t)port << 8 | (uint64_t)f->transport;
	h *= 1099511628211ULL;
	return h ^ (h >> 29);
}

static size_t fbucket_of(const struct reg *r, const struct flow *f)
{
	return hash_flow(f) & (r->nbuckets - 1);
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
	r->fbucket = calloc(r->nbuckets, sizeof *r->fbucket);
	if (!r->bucket || !r->fbucket) {
		free(r->bucket);
		free(r->fbucket);
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
	while (r->chunks) {
		struct slab_chunk *n = r->chunks->next;
		free(r->chunks);
		r->chunks = n;
	}
	free(r->bucket);
	free(r->fbucket);
	free(r->heap);
	free(r);
}

/* Keeps chains short as the table grows: 100 000 devices must not turn
 * lookups into list walks. */
static void maybe_grow(struct reg *r)
{
	size_t n = r->nbuckets * 2;
	struct reg_binding **nb, **nf;

	if (r->count < r->nbuckets)
		return;
	nb = calloc(n, sizeof *nb);
	nf = calloc(n, sizeof *nf);
	if (!nb || !nf) {
		free(nb);
		free(nf);
		return; /* still correct, only slower */
	}
	for (size_t i = 0; i < r->nbuckets; i++) {
		struct reg_binding *b = r->bucket[i], *next;
		for (; b; b = next) {
			size_t k = hash_str(1469598103934665603ULL, b->aor) & (n - 1);
			next = b->hnext;
			b->hnext = nb[k];
			nb[k] = b;
		}
		for (b = r->fbucket[i]; b; b = next) {
			size_t k = hash_flow(&b->flow) & (n - 1);
			next = b->fnext;
			b->fnext = nf[k];
			nf[k] = b;
		}
	}
	free(r->bucket);
	free(r->fbucket);
	r->bucket = nb;
	r->fbucket = nf;
	r->nbuckets = n;
}

static void flow_link(struct reg *r, struct reg_binding *b)
{
	size_t k = fbucket_of(r, &b->flow);

	b->fnext = r->fbucket[k];
	r->fbucket[k] = b;
}

static void flow_unlink(struct reg *r, struct reg_binding *b)
{
	struct reg_binding **pp = &r->fbucket[fbucket_of(r, &b->flow)];

	for (; *pp; pp = &(*pp)->fnext) {
		if (*pp == b) {
			*pp = b->fnext;
			return;
		}
	}
}

static void aor_unlink(struct reg *r, struct reg_binding *b)
{
	struct reg_binding **pp = &r->bucket[bucket_of(r, b->aor)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == b) {
			*pp = b->hnext;
			return;
		}
	}
}

/* One allocation holds the struct and its three strings. */
static struct reg_binding *binding_new(struct reg *r, const struct reg_binding *in, size_t la,
                                       size_t lc, size_t li)
{
	struct reg_binding *b = slab_alloc(r, sizeof *b + la + lc + li + 3);
	char *s;

	if (!b)
		return NULL;
	*b = *in;
	s = (char *)(b + 1);
	memcpy(s, in->aor, la + 1);
	b->aor = s;
	s += la + 1;
	memcpy(s, in->contact, lc + 1);
	b->contact = s;
	s += lc + 1;
	memcpy(s, in->instance, li + 1);
	b->instance = s;
	return b;
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
	struct reg_binding tmp = *in, *b, *nb;
	size_t k, la, lc, li;

	if (!tmp.instance)
		tmp.instance = "";
	if (!tmp.aor || !tmp.contact)
		return -EINVAL;
	la = strlen(tmp.aor);
	lc = strlen(tmp.contact);
	li = strlen(tmp.instance);
	if (la >= REG_AOR_MAX || lc >= REG_CONTACT_MAX || li >= REG_INSTANCE_MAX)
		return -ENOSPC;
	b = reg_find(r, tmp.aor, tmp.contact, tmp.instance, tmp.reg_id);
	if (b) {
		/* The key strings are equal; only the contact may differ when
		 * the binding is keyed by instance.  Reuse the block when the
		 * strings are the same, else move to a new one. */
		bool same = !strcmp(b->contact, tmp.contact);
		nb = same ? b : binding_new(r, &tmp, la, lc, li);
		if (!nb)
			return -ENOMEM;
		flow_unlink(r, b);
		if (nb != b) {
			aor_unlink(r, b);
			nb->heap_index = b->heap_index;
			r->heap[b->heap_index] = nb;
			k = bucket_of(r, nb->aor);
			nb->hnext = r->bucket[k];
			r->bucket[k] = nb;
			binding_free(r, b);
		} else {
			size_t hi = b->heap_index;
			struct reg_binding *hn = b->hnext;
			const char *a = b->aor, *c = b->contact, *i = b->instance;
			*b = tmp;
			b->aor = a;
			b->contact = c;
			b->instance = i;
			b->heap_index = hi;
			b->hnext = hn;
		}
		flow_link(r, nb);
		reg_reschedule(r, nb);
		if (out)
			*out = nb;
		return 0;
	}
	b = binding_new(r, &tmp, la, lc, li);
	if (!b)
		return -ENOMEM;
	if (heap_push(r, b) < 0) {
		binding_free(r, b);
		return -ENOMEM;
	}
	k = bucket_of(r, b->aor);
	b->hnext = r->bucket[k];
	r->bucket[k] = b;
	flow_link(r, b);
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
			flow_unlink(r, b);
			heap_remove(r, b);
			r->count--;
			binding_free(r, b);
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

struct reg_binding *reg_find_flow(struct reg *r, const struct flow *f)
{
	for (struct reg_binding *b = r->fbucket[fbucket_of(r, f)]; b; b = b->fnext)
		if (flow_equal(&b->flow, f))
			return b;
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
 *   v1 expires natd outbound reg_id flow aor contact instance
 * Lines are built in a buffer and written with one fwrite each: the whole
 * table is rewritten on every save, 100 000 lines at a time. */
static size_t put_field(char *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	/* "-" stands for the empty string, so a field that is "-" itself is
	 * written encoded. */
	bool dash = !strcmp(s, "-");
	size_t o = 0;

	if (!*s) {
		out[0] = '-';
		return 1;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c == '%' || c >= 0x7f || dash) {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	return o;
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
		/* Every field is bounded: 3 bytes per encoded character. */
		char line[256 + 3 * (REG_AOR_MAX + REG_CONTACT_MAX + REG_INSTANCE_MAX)], flow[128];
		int n;
		size_t o;

		if (flow_format(&b->flow, flow, sizeof flow) < 0)
			continue;
		n = snprintf(line, 256, "v1 %lld %u %d %u %s ", (long long)b->expires, b->natd,
		             b->outbound ? 1 : 0, b->reg_id, flow);
		if (n < 0 || n >= 256)
			continue;
		o = (size_t)n;
		o += put_field(line + o, b->aor);
		line[o++] = ' ';
		o += put_field(line + o, b->contact);
		line[o++] = ' ';
		o += put_field(line + o, b->instance);
		line[o++] = '\n';
		fwrite(line, 1, o, f);
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
		        inst[REG_INSTANCE_MAX * 3], baor[REG_AOR_MAX], bcontact[REG_CONTACT_MAX],
		        binst[REG_INSTANCE_MAX];
		long long exp;
		int ob;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		memset(&b, 0, sizeof b);
		if (sscanf(line, "v1 %lld %u %d %u %127s %767s %1535s %383s", &exp, &b.natd, &ob,
		           &b.reg_id, flow, aor, contact, inst) != 8 ||
		    flow_parse(flow, &b.flow) < 0 || get_field(aor, baor, sizeof baor) < 0 ||
		    get_field(contact, bcontact, sizeof bcontact) < 0 ||
		    get_field(inst, binst, sizeof binst) < 0) {
			if (bad)
				(*bad)++;
			continue;
		}
		if (exp <= now)
			continue;
		b.aor = baor;
		b.contact = bcontact;
		b.instance = binst;
		b.expires = (time_t)exp;
		b.outbound = ob != 0;
		if (reg_update(r, &b, NULL) >= 0)
			loaded++;
	}
	fclose(f);
	return loaded;
}
