/* gtls: TLS 1.2/1.3 through GnuTLS for byte streams driven by libuv.
 *
 * GnuTLS never touches a socket here: its pull function reads from the
 * bytes the owner hands to gtls_conn_feed() (what uv_read delivered), and its
 * push function calls the owner's push callback (which writes to the uv
 * stream).  So a connection is a pure state machine the owner drives from
 * its loop, and the unit tests can connect two of them back to back.
 *
 * Threads: a struct gtls_ctx is [any]: reference-counted, immutable after
 * gtls_ctx_new(), shared by every loop; a struct gtls_conn is [loop]: used
 * by one thread only.  Memory: a conn holds a reference to its ctx until
 * gtls_conn_free(); replacing the ctx (certificate reload) leaves existing
 * connections on the old one.
 *
 * Errors: 0 or a negative errno: -EINVAL, -ENOMEM, -EIO (GnuTLS refused the
 * files or the priority string), -EPROTO (TLS failure on a connection),
 * -ECONNRESET (the peer closed the TLS session).
 */
#ifndef SIPNAT_GTLS_H
#define SIPNAT_GTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gtls_ctx;
struct gtls_conn;

/* Versions below TLS 1.2 and DTLS are always removed from the priorities
 * (appended after the caller's string). */
#define GTLS_DEFAULT_PRIORITIES "NORMAL:%SERVER_PRECEDENCE"

/* [any] Credentials and priorities.  cert_file holds the leaf certificate
 * optionally followed by its chain (PEM); key_file the private key (PEM).
 * Both NULL: a client context that does not verify the server (tests).
 * priorities NULL = GTLS_DEFAULT_PRIORITIES.  why (may be NULL) gets a
 * static or GnuTLS text on failure. */
int gtls_ctx_new(struct gtls_ctx **out, const char *cert_file, const char *key_file,
                 const char *priorities, const char **why);
void gtls_ctx_ref(struct gtls_ctx *c);
void gtls_ctx_unref(struct gtls_ctx *c); /* NULL is a no-op */

/* [loop] Ciphertext to send to the peer: write all of it (queue what the
 * socket does not take) and return 0, or a negative errno to fail the
 * session. */
typedef int gtls_push_f(void *arg, const uint8_t *data, size_t len);
/* [loop] Plaintext received from the peer, borrowed for the call. */
typedef void gtls_recv_f(void *arg, const uint8_t *data, size_t len);

/* [loop] A server (server = true) or client session on ctx. */
int gtls_conn_new(struct gtls_conn **out, struct gtls_ctx *ctx, bool server, gtls_push_f *push,
                  gtls_recv_f *recv, void *arg);
/* [loop] Bytes read from the stream: advances the handshake and delivers
 * every complete record to recv.  A client starts its handshake with
 * gtls_conn_feed(c, NULL, 0). */
int gtls_conn_feed(struct gtls_conn *c, const uint8_t *data, size_t len);
/* [loop] Encrypt and push plaintext; -EAGAIN before the handshake is done. */
int gtls_conn_send(struct gtls_conn *c, const uint8_t *data, size_t len);
bool gtls_conn_ready(const struct gtls_conn *c);
/* [loop] "TLS1.3/AES-256-GCM" once ready, else "handshake". */
const char *gtls_conn_describe(const struct gtls_conn *c, char *buf, size_t len);
/* [loop] Send close_notify (best effort) and free.  NULL is a no-op. */
void gtls_conn_free(struct gtls_conn *c);

#endif
