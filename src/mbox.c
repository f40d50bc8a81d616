/* mbox: cross-thread mailbox for a libuv loop (see include/sipnat/mbox.h). */
#include "config.h"

#include <errno.h>
#include <stddef.h>

#include "sipnat/mbox.h"

/* Runs on the loop thread after one or more uv_async_send() calls.  It takes
 * the whole shared list in one short critical section and delivers outside
 * the lock, so producers never wait for a callback to finish. */
static void on_async(uv_async_t *a)
{
	struct mbox *mb = a->data;
	struct mbox_msg *m;
	struct mbox_msg **end;

	pthread_mutex_lock(&mb->lock_);
	if (mb->head_) {
		/* append to whatever a previous pass left (only possible after close) */
		end = &mb->batch_;
		while (*end)
			end = &(*end)->next;
		*end = mb->head_;
		mb->head_ = NULL;
		mb->tail_ = &mb->head_;
	}
	pthread_mutex_unlock(&mb->lock_);

	while (mb->batch_ && !mb->closed_) {
		m = mb->batch_;
		mb->batch_ = m->next;
		m->next = NULL;
		mb->recv_(mb, m);
	}
}

int mbox_init(struct mbox *mb, uv_loop_t *loop, mbox_recv_f *recv)
{
	int err;

	if (!mb || !loop || !recv)
		return -EINVAL;
	mb->head_ = NULL;
	mb->tail_ = &mb->head_;
	mb->batch_ = NULL;
	mb->closed_ = false;
	mb->recv_ = recv;
	mb->closed_cb_ = NULL;
	err = -pthread_mutex_init(&mb->lock_, NULL);
	if (err)
		return err;
	err = uv_async_init(loop, &mb->async_, on_async);
	if (err) {
		pthread_mutex_destroy(&mb->lock_);
		return err;
	}
	mb->async_.data = mb;
	return 0;
}

int mbox_post(struct mbox *mb, struct mbox_msg *msg)
{
	int err = 0;

	if (!mb || !msg)
		return -EINVAL;
	msg->next = NULL;
	pthread_mutex_lock(&mb->lock_);
	if (mb->closed_) {
		err = -ESHUTDOWN;
	} else {
		bool was_empty = mb->head_ == NULL;

		*mb->tail_ = msg;
		mb->tail_ = &msg->next;
		if (was_empty)
			err = uv_async_send(&mb->async_);
		if (err) {
			/* cannot happen on Linux (eventfd write); keep the list
			 * consistent and let the caller keep msg */
			mb->head_ = NULL;
			mb->tail_ = &mb->head_;
		}
	}
	pthread_mutex_unlock(&mb->lock_);
	return err;
}

static void on_closed(uv_handle_t *h)
{
	struct mbox *mb = h->data;

	/* No producer may be inside mbox_post() by now: they all saw closed_
	 * under the lock and left, or came before the close. */
	pthread_mutex_destroy(&mb->lock_);
	if (mb->closed_cb_)
		mb->closed_cb_(mb);
}

struct mbox_msg *mbox_close(struct mbox *mb, mbox_closed_f *closed)
{
	struct mbox_msg *left;

	pthread_mutex_lock(&mb->lock_);
	mb->closed_ = true;
	left = mb->batch_;
	mb->batch_ = NULL;
	if (left) {
		struct mbox_msg **end = &left;

		while (*end)
			end = &(*end)->next;
		*end = mb->head_;
	} else {
		left = mb->head_;
	}
	mb->head_ = NULL;
	mb->tail_ = &mb->head_;
	pthread_mutex_unlock(&mb->lock_);

	mb->closed_cb_ = closed;
	uv_close((uv_handle_t *)&mb->async_, on_closed);
	return left;
}
