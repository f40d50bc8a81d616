/* Unit tests for mbox: the cross-thread mailbox into a libuv loop.
 *
 * Real threads and a real loop: many producers, one consumer; every message
 * must arrive exactly once, in order per producer; a post from inside the
 * callback is delivered; close hands back what was not delivered and
 * refuses later posts.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sipnat/mbox.h"

#define NPROD 8
#define NMSG  20000

struct tmsg {
	struct mbox_msg link;
	unsigned prod, seq;
};

#define TMSG(m) ((struct tmsg *)((char *)(m)-offsetof(struct tmsg, link)))

struct ctx {
	struct mbox mb;
	struct tmsg *msgs; /* NPROD * NMSG */
	unsigned char *seen;
	int next_seq[NPROD];
	unsigned total, dup, order_err, callbacks;
	bool closed;
	struct mbox_msg *left;
};

static void on_closed(struct mbox *mb)
{
	struct ctx *c = mb->data;

	c->closed = true;
}

static void recv_many(struct mbox *mb, struct mbox_msg *m)
{
	struct ctx *c = mb->data;
	struct tmsg *t = TMSG(m);
	size_t i = (size_t)t->prod * NMSG + t->seq;

	if (c->seen[i]++)
		c->dup++;
	if ((int)t->seq != c->next_seq[t->prod])
		c->order_err++;
	c->next_seq[t->prod] = (int)t->seq + 1;
	if (++c->total == NPROD * NMSG)
		c->left = mbox_close(mb, on_closed);
}

struct prod {
	struct ctx *c;
	unsigned id;
	int errs;
};

static void *producer(void *arg)
{
	struct prod *p = arg;
	unsigned i;

	for (i = 0; i < NMSG; i++) {
		struct tmsg *t = &p->c->msgs[(size_t)p->id * NMSG + i];

		t->prod = p->id;
		t->seq = i;
		if (mbox_post(&p->c->mb, &t->link) != 0)
			p->errs++;
	}
	return NULL;
}

START_TEST(many_producers_exactly_once)
{
	uv_loop_t loop;
	struct ctx c;
	pthread_t th[NPROD];
	struct prod p[NPROD];
	unsigned i;
	size_t n = (size_t)NPROD * NMSG;

	memset(&c, 0, sizeof(c));
	c.msgs = calloc(n, sizeof(*c.msgs));
	c.seen = calloc(n, 1);
	ck_assert_ptr_nonnull(c.msgs);
	ck_assert_ptr_nonnull(c.seen);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(mbox_init(&c.mb, &loop, recv_many), 0);
	c.mb.data = &c;

	/* producers start before the loop runs: the first messages wait */
	for (i = 0; i < NPROD; i++) {
		p[i] = (struct prod){.c = &c, .id = i};
		ck_assert_int_eq(pthread_create(&th[i], NULL, producer, &p[i]), 0);
	}
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	for (i = 0; i < NPROD; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(p[i].errs, 0);
	}
	ck_assert(c.closed);
	ck_assert_uint_eq(c.total, n);
	ck_assert_uint_eq(c.dup, 0);
	ck_assert_uint_eq(c.order_err, 0);
	ck_assert_ptr_null(c.left);
	for (i = 0; i < n; i++)
		ck_assert_uint_eq(c.seen[i], 1);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	free(c.msgs);
	free(c.seen);
}
END_TEST

/* A message posted from inside the callback must still be delivered: the
 * list is empty at that moment, so this exercises the re-arm path. */
static void recv_repost(struct mbox *mb, struct mbox_msg *m)
{
	struct ctx *c = mb->data;
	struct tmsg *t = TMSG(m);

	c->total++;
	if (t->seq < 9) {
		t->seq++;
		ck_assert_int_eq(mbox_post(mb, m), 0);
	} else {
		c->left = mbox_close(mb, on_closed);
	}
}

START_TEST(post_from_callback)
{
	uv_loop_t loop;
	struct ctx c;
	struct tmsg t = {.seq = 0};

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(mbox_init(&c.mb, &loop, recv_repost), 0);
	c.mb.data = &c;
	ck_assert_int_eq(mbox_post(&c.mb, &t.link), 0);
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	ck_assert_uint_eq(c.total, 10);
	ck_assert(c.closed);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* Close returns the undelivered messages in order, and refuses new ones
 * (the caller keeps them). */
START_TEST(close_returns_pending_and_refuses)
{
	uv_loop_t loop;
	struct ctx c;
	struct tmsg t[3], late;
	struct mbox_msg *m;
	unsigned i;

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(mbox_init(&c.mb, &loop, recv_many), 0);
	c.mb.data = &c;
	for (i = 0; i < 3; i++) {
		t[i].seq = i;
		ck_assert_int_eq(mbox_post(&c.mb, &t[i].link), 0);
	}
	/* we are the loop thread: the loop has not run yet */
	m = mbox_close(&c.mb, on_closed);
	for (i = 0; i < 3; i++) {
		ck_assert_ptr_eq(m, &t[i].link);
		m = m->next;
	}
	ck_assert_ptr_null(m);
	ck_assert_int_eq(mbox_post(&c.mb, &late.link), -ESHUTDOWN);
	ck_assert_int_eq(mbox_post(NULL, &late.link), -EINVAL);
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	ck_assert(c.closed);
	ck_assert_uint_eq(c.total, 0);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static Suite *mbox_suite(void)
{
	Suite *s = suite_create("mbox");
	TCase *tc;

	tc = tcase_create("many_producers_exactly_once");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, many_producers_exactly_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("post_from_callback");
	tcase_add_test(tc, post_from_callback);
	suite_add_tcase(s, tc);

	tc = tcase_create("close_returns_pending_and_refuses");
	tcase_add_test(tc, close_returns_pending_and_refuses);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(mbox_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
