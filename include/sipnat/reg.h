/* reg: registration state – which device is reachable over which flow.
 *
 * sipnatd is not the registrar (the upstream is); it keeps what it must to
 * reach devices again: every binding that passed through it with the
 * expiry the upstream granted, the flow it arrived on, its NAT verdict and
 * keepalive state.  A device that re-registers from a new NAT port replaces
 * its old flow; Expires: 0 removes it.  The table is saved to disk and
 * restored on restart.
 *
 * Timers cost one heap entry per binding: reg_next_due() gives the binding
 * whose expiry or keepalive is next, so one periodic timer serves 100 000
 * devices.
 *
 * Threads: [sip] only (no locking).  Memory: the table owns its bindings
 * (kept in its own size-classed slabs, see reg.c); pointers returned stay
 * valid until the binding is removed, updated with reg_update(), or the
 * table freed.
 */
#ifndef SIPNAT_REG_H
#define SIPNAT_REG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "sipnat/flow.h"

#define REG_AOR_MAX      256
#define REG_CONTACT_MAX  512
#define REG_INSTANCE_MAX 128

/* A binding.  The strings of a stored binding live in the same block as
 * the struct (about 230 bytes plus the strings, rounded up to 64: with the
 * hash and heap entries about 400 bytes per device); as input to
 * reg_update() they are the caller's and are copied.  None is NULL (""
 * when absent). */
struct reg_binding {
	const char *aor;      /* To URI of the REGISTER, < REG_AOR_MAX */
	const char *contact;  /* the device's own Contact URI */
	const char *instance; /* +sip.instance, "" if none */
	unsigned reg_id;      /* RFC 5626 reg-id, 0 if none */
	bool outbound;        /* RFC 5626 ;ob in the Contact */
	bool unreachable;     /* keepalive_failures misses in a row */
	bool ka_waiting;      /* keepalive ka_seq not answered yet */
	struct flow flow;
	time_t expires; /* absolute, as granted upstream */
	unsigned natd;  /* natd predicates that fired */
	/* keepalive state */
	time_t ka_due; /* 0 = no keepalive */
	time_t last_ka_ok;
	unsigned ka_failures; /* consecutive keepalive misses */
	unsigned ka_seq;      /* sequence of the last keepalive sent */
	/* private */
	size_t heap_index;
	struct reg_binding *hnext; /* AOR hash chain */
	struct reg_binding *fnext; /* flow hash chain */
};

struct reg;

int reg_create(struct reg **out);
void reg_free(struct reg *r);

/* Inserts or updates the binding identified by (aor, instance, reg_id) when
 * an instance is given, else by (aor, contact).  The new flow replaces the
 * old one; every other field is taken from *in too (the caller carries
 * over keepalive state it wants to keep).  *out (optional) gets the stored binding, which may have
 * moved (pointers to the previous one are invalid).  Returns 0, 1 when a
 * new binding was created, or -ENOMEM / -ENOSPC (a string too long). */
int reg_update(struct reg *r, const struct reg_binding *b, struct reg_binding **out);

/* Removes one binding (matched as in reg_update) or, with contact "*",
 * every binding of aor.  Returns how many were removed. */
int reg_remove(struct reg *r, const char *aor, const char *contact, const char *instance,
               unsigned reg_id);
void reg_remove_binding(struct reg *r, struct reg_binding *b);

struct reg_binding *reg_find(struct reg *r, const char *aor, const char *contact,
                             const char *instance, unsigned reg_id);
/* A binding whose flow is f (any of them), or NULL.  Hashed: O(1). */
struct reg_binding *reg_find_flow(struct reg *r, const struct flow *f);
size_t reg_count(const struct reg *r);

/* The time of the next expiry or keepalive, or 0 when the table is empty. */
time_t reg_next_time(const struct reg *r);
/* Returns a binding whose expiry or keepalive is due at now, or NULL.  The
 * caller must then remove it, or change expires/ka_due and call
 * reg_reschedule(). */
struct reg_binding *reg_next_due(struct reg *r, time_t now);
void reg_reschedule(struct reg *r, struct reg_binding *b);

void reg_foreach(struct reg *r, void (*fn)(void *arg, struct reg_binding *b), void *arg);

/* Writes every binding to path atomically (temp file, fsync, rename).
 * Returns 0 or -errno. */
int reg_save(const struct reg *r, const char *path);
/* Adds the bindings of path that have not expired by now.  A missing file
 * is not an error (returns 0); a malformed line is skipped and counted in
 * *bad.  Returns the number loaded or -errno. */
int reg_load(struct reg *r, const char *path, time_t now, unsigned *bad);

#endif
