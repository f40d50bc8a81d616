/* gtls: GnuTLS sessions fed from libuv buffers (see gtls.h). */
#include "config.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sipnat/gtls.h"

struct gtls_ctx {
	atomic_uint refs;
	bool server;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
};

struct gtls_conn {
	struct gtls_ctx *ctx;
	gnutls_session_t s;
	gtls_push_f *push;
	gtls_recv_f *recv;
	void *arg;
	bool ready, failed;
	/* the bytes of the current gtls_conn_feed() call, read by pull */
	const uint8_t *in;
	size_t in_len, in_off;
};

/* TLS 1.2 is the floor (issue 5, and RFC 8996 deprecates 1.0/1.1). */
static const char version_floor[] = ":-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1:-VERS-DTLS-ALL";

int gtls_ctx_new(struct gtls_ctx **out, const char *cert_file, const char *key_file,
                 const char *priorities, const char **why)
{
	struct gtls_ctx *c;
	const char *err_pos = NULL, *dummy;
	char *prio;
	size_t n;
	int rc;

	if (!why)
		why = &dummy;
	if (!out || (cert_file == NULL) != (key_file == NULL)) {
		*why = "tls_cert and tls_key go together";
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	atomic_init(&c->refs, 1);
	c->server = cert_file != NULL;
	rc = gnutls_certificate_allocate_credentials(&c->cred);
	if (rc < 0) {
		free(c);
		*why = gnutls_strerror(rc);
		return -ENOMEM;
	}
	if (cert_file) {
		rc = gnutls_certificate_set_x509_key_file(c->cred, cert_file, key_file,
		                                          GNUTLS_X509_FMT_PEM);
		if (rc < 0) {
			*why = gnutls_strerror(rc);
			gtls_ctx_unref(c);
			return -EIO;
		}
	}
	if (!priorities || !*priorities)
		priorities = GTLS_DEFAULT_PRIORITIES;
	n = strlen(priorities) + sizeof(version_floor);
	prio = malloc(n);
	if (!prio) {
		gtls_ctx_unref(c);
		return -ENOMEM;
	}
	snprintf(prio, n, "%s%s", priorities, version_floor);
	rc = gnutls_priority_init(&c->prio, prio, &err_pos);
	free(prio);
	if (rc < 0) {
		*why = "bad tls_priorities";
		c->prio = NULL;
		gtls_ctx_unref(c);
		return -EIO;
	}
	*out = c;
	return 0;
}

void gtls_ctx_ref(struct gtls_ctx *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void gtls_ctx_unref(struct gtls_ctx *c)
{
	if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (c->prio)
		gnutls_priority_deinit(c->prio);
	gnutls_certificate_free_credentials(c->cred);
	free(c);
}

static ssize_t pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct gtls_conn *c = p;
	size_t avail = c->in_len - c->in_off;

	if (!avail) {
		gnutls_transport_set_errno(c->s, EAGAIN);
		return -1;
	}
	if (len > avail)
		len = avail;
	memcpy(buf, c->in + c->in_off, len);
	c->in_off += len;
	return (ssize_t)len;
}

static ssize_t push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
	struct gtls_conn *c = p;

	if (c->push(c->arg, buf, len) < 0) {
		gnutls_transport_set_errno(c->s, EPIPE);
		return -1;
	}
	return (ssize_t)len;
}

int gtls_conn_new(struct gtls_conn **out, struct gtls_ctx *ctx, bool server, gtls_push_f *pushf,
                  gtls_recv_f *recv, void *arg)
{
	struct gtls_conn *c;
	int rc;

	if (!out || !ctx || !pushf || !recv || (server && !ctx->server))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	rc = gnutls_init(&c->s, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK);
	if (rc < 0) {
		free(c);
		return -ENOMEM;
	}
	if (gnutls_priority_set(c->s, ctx->prio) < 0 ||
	    gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, ctx->cred) < 0) {
		gnutls_deinit(c->s);
		free(c);
		return -EIO;
	}
	gtls_ctx_ref(ctx);
	c->ctx = ctx;
	c->push = pushf;
	c->recv = recv;
	c->arg = arg;
	gnutls_transport_set_ptr(c->s, c);
	gnutls_transport_set_push_function(c->s, push);
	gnutls_transport_set_pull_function(c->s, pull);
	gnutls_handshake_set_timeout(c->s, 0);
	*out = c;
	return 0;
}

int gtls_conn_feed(struct gtls_conn *c, const uint8_t *data, size_t len)
{
	uint8_t buf[16384];
	ssize_t n;
	int rc = 0;

	if (!c)
		return -EINVAL;
	if (c->failed)
		return -EPROTO;
	c->in = data;
	c->in_len = data ? len : 0;
	c->in_off = 0;
	if (!c->ready) {
		rc = gnutls_handshake(c->s);
		if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
			rc = 0;
			goto out;
		}
		if (rc < 0) {
			c->failed = true;
			rc = -EPROTO;
			goto out;
		}
		/* priorities already exclude older versions; this guards a
		 * caller-supplied string that re-adds them */
		if (gnutls_protocol_get_version(c->s) < GNUTLS_TLS1_2) {
			c->failed = true;
			rc = -EPROTO;
			goto out;
		}
		c->ready = true;
	}
	for (;;) {
		n = gnutls_record_recv(c->s, buf, sizeof(buf));
		if (n > 0) {
			c->recv(c->arg, buf, (size_t)n);
			continue;
		}
		if (n == 0) {
			rc = -ECONNRESET;
			break;
		}
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			break;
		if (!gnutls_error_is_fatal((int)n))
			continue; /* e.g. a TLS 1.3 key update or ticket */
		c->failed = true;
		rc = -EPROTO;
		break;
	}
out:
	c->in = NULL;
	c->in_len = c->in_off = 0;
	return rc;
}

int gtls_conn_send(struct gtls_conn *c, const uint8_t *data, size_t len)
{
	ssize_t n;

	if (!c)
		return -EINVAL;
	if (c->failed)
		return -EPROTO;
	if (!c->ready)
		return -EAGAIN;
	while (len) {
		/* push never returns EAGAIN (the owner queues), so one call
		 * takes a whole record's worth or fails */
		n = gnutls_record_send(c->s, data, len);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n < 0) {
			c->failed = true;
			return -EPROTO;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

bool gtls_conn_ready(const struct gtls_conn *c)
{
	return c && c->ready;
}

const char *gtls_conn_describe(const struct gtls_conn *c, char *buf, size_t len)
{
	if (!c || !c->ready) {
		snprintf(buf, len, "handshake");
		return buf;
	}
	snprintf(buf, len, "%s/%s", gnutls_protocol_get_name(gnutls_protocol_get_version(c->s)),
	         gnutls_cipher_get_name(gnutls_cipher_get(c->s)));
	return buf;
}

void gtls_conn_free(struct gtls_conn *c)
{
	if (!c)
		return;
	if (c->ready && !c->failed)
		gnutls_bye(c->s, GNUTLS_SHUT_WR);
	gnutls_deinit(c->s);
	gtls_ctx_unref(c->ctx);
	free(c);
}
