/* mbox: the one way into a libuv loop from another thread.
 *
 * A mutex-protected intrusive FIFO plus a uv_async_t.  Producers on any
 * thread append a message they embed in their own struct; the loop thread
 * gets every message, in order, through one callback.  uv_async_send() is
 * issued only when the list goes from empty to non-empty, because libuv
 * coalesces sends anyway and a wake-up per message would only cost a
 * syscall; the callback therefore drains the whole list each time.
 *
 * Ownership: after mbox_post() returns 0 the message belongs to the loop
 * thread (the callback frees or reuses it).  On failure the caller keeps it.
 *
 * Lifetime: struct mbox is caller memory (usually embedded in a per-loop
 * struct).  It must stay valid until the closed callback passed to
 * mbox_close() has run; it may be freed from that callback on.
 */
#ifndef SIPNAT_MBOX_H
#define SIPNAT_MBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <uv.h>

/* Embed as a member of your message struct; recover it with offsetof. */
struct mbox_msg {
	struct mbox_msg *next;
};

struct mbox;

/* [loop] Called once per message, in posting order (FIFO per producer, and
 * globally in the order the producers took the lock).  The callee owns msg.
 * It may call mbox_post() (the message is delivered in a later pass) and
 * mbox_close() (no further message is delivered). */
typedef void mbox_recv_f(struct mbox *mb, struct mbox_msg *msg);

/* [loop] The async handle is closed; mb may now be freed. */
typedef void mbox_closed_f(struct mbox *mb);

/* Fields other than data are private: touch them only through mbox_*(). */
struct mbox {
	void *data; /* public: free for the owner */

	uv_async_t async_;
	pthread_mutex_t lock_;   /* protects head_, tail_, closed_ */
	struct mbox_msg *head_;  /* lock_ */
	struct mbox_msg **tail_; /* lock_ */
	bool closed_;            /* lock_ (also read unlocked on the loop thread) */
	struct mbox_msg *batch_; /* loop thread only: taken, not yet delivered */
	mbox_recv_f *recv_;
	mbox_closed_f *closed_cb_;
};

/* [loop] (or any thread before the loop runs).  Initialises mb on loop; the
 * async handle keeps the loop alive until mbox_close().  Returns 0 or -errno. */
int mbox_init(struct mbox *mb, uv_loop_t *loop, mbox_recv_f *recv);

/* [any] Append msg.  Returns 0 (the loop now owns msg) or -ESHUTDOWN once
 * mbox_close() has run (the caller still owns msg), -EINVAL on NULL.
 * The wake-up is sent while holding the lock, so that the loop thread can
 * never close the async handle between our "was empty" test and the send. */
int mbox_post(struct mbox *mb, struct mbox_msg *msg);

/* [loop] Stop accepting messages and close the async handle; closed (may be
 * NULL) runs from the handle's close callback.  Returns the messages that
 * were posted but not delivered, oldest first, linked by next: the caller
 * owns them.  Call once. */
struct mbox_msg *mbox_close(struct mbox *mb, mbox_closed_f *closed);

#endif
