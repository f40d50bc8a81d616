/* flow: the exact way back to a device, and the signed tokens that carry it.
 *
 * A flow is the transport and the remote address:port a device's requests
 * came from (RFC 5626 §3: for UDP the NAT binding, for TCP/TLS the
 * connection, which Sofia finds again by the same remote address).  sipnatd
 * writes a flow into the user part of the Path and Record-Route URIs it
 * adds, and, when Contact rewriting is on, into a Contact parameter together
 * with the device's own Contact.  Tokens are HMAC-SHA256-signed with a
 * per-install secret so that nobody can forge one to make sipnatd send
 * requests to an address of their choosing.
 *
 * Threads: [pure] (GnuTLS's HMAC is thread-safe).  Strings written into
 * caller buffers; nothing allocated except by flow_contact_decode (caller
 * frees *contact with free()).
 */
#ifndef SIPNAT_FLOW_H
#define SIPNAT_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sipnat/cfg.h"

#define FLOW_KEY_LEN 32
/* Longest flow token: version, transport, family, 16 address bytes, port
 * and a 12-byte MAC, base64url-encoded. */
#define FLOW_TOKEN_MAX 64

struct flow {
	enum cfg_transport transport;
	struct sockaddr_storage remote;
};

/* Token for a URI user part: [A-Za-z0-9_-] only.  Returns the length
 * written (without NUL), -ENOSPC if out is too small, -EINVAL for a flow
 * with an unsupported family. */
int flow_token_encode(const struct flow *f, const uint8_t key[FLOW_KEY_LEN], char *out,
                      size_t outlen);

/* Returns 0, -EINVAL for something that is not a token, -EBADMSG when the
 * signature does not match (forged or made with another secret). */
int flow_token_decode(const char *tok, size_t len, const uint8_t key[FLOW_KEY_LEN],
                      struct flow *out);

/* A Contact parameter value holding the flow and the device's own Contact
 * URI, signed together.  Same return conventions as above. */
int flow_contact_encode(const struct flow *f, const char *contact, const uint8_t key[FLOW_KEY_LEN],
                        char *out, size_t outlen);
int flow_contact_decode(const char *tok, size_t len, const uint8_t key[FLOW_KEY_LEN],
                        struct flow *out, char **contact);

/* Same transport, address and port (other sockaddr bytes are ignored). */
bool flow_equal(const struct flow *a, const struct flow *b);

/* "udp:192.0.2.1:5060" style, for logs and state files. */
int flow_format(const struct flow *f, char *out, size_t outlen);
int flow_parse(const char *text, struct flow *out);

/* Loads the secret from path, or creates it there (mode 0600) with
 * GnuTLS's key-level random generator when the file does not exist.
 * Returns 0 or -errno. */
int flow_secret_load(const char *path, uint8_t key[FLOW_KEY_LEN]);
/* Derives a key from a configured secret string. */
void flow_secret_from_string(const char *secret, uint8_t key[FLOW_KEY_LEN]);

#endif
