/* stunmsg: STUN (RFC 8489) and TURN (RFC 8656) message codec.
 *
 * Bytes in, structs out, and back.  No sockets, no clock, no globals: the
 * TURN server core and the relay loops call it, and so do the RFC 5769
 * vectors and the fuzz harness.
 *
 * Threads: [pure] – every function may be called from any thread; nothing
 * here keeps state between calls.
 *
 * Memory: nothing is allocated that outlives a call.  struct stunmsg and
 * struct stunmsg_chandata BORROW the buffer they were decoded from: every
 * pointer in them (attribute values, strings, DATA) is valid only while the
 * caller keeps that buffer alive and unchanged.  Strings are NOT
 * NUL-terminated.  struct stunmsg_builder writes only into the buffer the
 * caller gives it and never past its capacity.
 *
 * Errors: every int function returns 0 or a negative errno:
 *   -EINVAL   bad argument from the caller (programming error),
 *   -EBADMSG  the bytes are not a well-formed message / attribute,
 *   -ENOENT   the attribute asked for is absent,
 *   -EACCES   MESSAGE-INTEGRITY(-SHA256) or FINGERPRINT does not match,
 *   -ENOBUFS  the builder's buffer is too small,
 *   -E2BIG    more attributes than STUNMSG_MAX_ATTRS,
 *   -ERANGE   a value is outside the range the RFC allows,
 *   -EAFNOSUPPORT  an address family other than IPv4/IPv6,
 *   -EAGAIN   (stunmsg_frame_len) more bytes are needed,
 *   -EIO      GnuTLS failed to compute a hash.
 * Out-parameters are written only on success.
 */
#ifndef SIPNAT_STUNMSG_H
#define SIPNAT_STUNMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define STUNMSG_HDR_LEN      20
#define STUNMSG_MAGIC_COOKIE 0x2112A442u
#define STUNMSG_TID_LEN      12
/* A STUN message length field is 16 bits, so no message is longer. */
#define STUNMSG_MAX_LEN (STUNMSG_HDR_LEN + 65535)

/* Decoded attributes kept per message.  A legitimate TURN request carries
 * about ten; a message with more is refused with -E2BIG (answer 400). */
#define STUNMSG_MAX_ATTRS 48
/* Unknown comprehension-required types remembered for a 420 answer. */
#define STUNMSG_MAX_UNKNOWN 16

#define STUNMSG_SHA1_LEN              20 /* MESSAGE-INTEGRITY value */
#define STUNMSG_SHA256_LEN            32 /* MESSAGE-INTEGRITY-SHA256 value, untruncated */
#define STUNMSG_MD5_LEN               16 /* long-term key, MD5 password algorithm */
#define STUNMSG_RESERVATION_TOKEN_LEN 8
#define STUNMSG_USERHASH_LEN          32

/* RFC 8656 §12: the only channel numbers a client may bind. */
#define STUNMSG_CHANNEL_MIN      0x4000
#define STUNMSG_CHANNEL_MAX      0x4FFF
#define STUNMSG_CHANDATA_HDR_LEN 4

/* RFC 8656 §14.7: REQUESTED-TRANSPORT protocol numbers. */
#define STUNMSG_TRANSPORT_UDP 17
#define STUNMSG_TRANSPORT_TCP 6

enum stunmsg_class {
	STUNMSG_CLASS_REQUEST = 0,
	STUNMSG_CLASS_INDICATION = 1,
	STUNMSG_CLASS_SUCCESS = 2,
	STUNMSG_CLASS_ERROR = 3,
};

enum stunmsg_method {
	STUNMSG_METHOD_BINDING = 0x001,
	STUNMSG_METHOD_ALLOCATE = 0x003,
	STUNMSG_METHOD_REFRESH = 0x004,
	STUNMSG_METHOD_SEND = 0x006,
	STUNMSG_METHOD_DATA = 0x007,
	STUNMSG_METHOD_CREATE_PERMISSION = 0x008,
	STUNMSG_METHOD_CHANNEL_BIND = 0x009,
};

/* Types 0x0000-0x7FFF are comprehension-required, 0x8000-0xFFFF optional
 * (RFC 8489 §14). */
enum stunmsg_attr_type {
	STUNMSG_ATTR_MAPPED_ADDRESS = 0x0001,
	STUNMSG_ATTR_USERNAME = 0x0006,
	STUNMSG_ATTR_MESSAGE_INTEGRITY = 0x0008,
	STUNMSG_ATTR_ERROR_CODE = 0x0009,
	STUNMSG_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,
	STUNMSG_ATTR_CHANNEL_NUMBER = 0x000C,
	STUNMSG_ATTR_LIFETIME = 0x000D,
	STUNMSG_ATTR_XOR_PEER_ADDRESS = 0x0012,
	STUNMSG_ATTR_DATA = 0x0013,
	STUNMSG_ATTR_REALM = 0x0014,
	STUNMSG_ATTR_NONCE = 0x0015,
	STUNMSG_ATTR_XOR_RELAYED_ADDRESS = 0x0016,
	STUNMSG_ATTR_REQUESTED_ADDRESS_FAMILY = 0x0017,
	STUNMSG_ATTR_EVEN_PORT = 0x0018,
	STUNMSG_ATTR_REQUESTED_TRANSPORT = 0x0019,
	STUNMSG_ATTR_DONT_FRAGMENT = 0x001A,
	STUNMSG_ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001C,
	STUNMSG_ATTR_PASSWORD_ALGORITHM = 0x001D,
	STUNMSG_ATTR_USERHASH = 0x001E,
	STUNMSG_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
	STUNMSG_ATTR_RESERVATION_TOKEN = 0x0022,
	STUNMSG_ATTR_PRIORITY = 0x0024,      /* RFC 8445 (ICE) */
	STUNMSG_ATTR_USE_CANDIDATE = 0x0025, /* RFC 8445 (ICE) */
	STUNMSG_ATTR_PASSWORD_ALGORITHMS = 0x8002,
	STUNMSG_ATTR_ALTERNATE_DOMAIN = 0x8003,
	STUNMSG_ATTR_SOFTWARE = 0x8022,
	STUNMSG_ATTR_ALTERNATE_SERVER = 0x8023,
	STUNMSG_ATTR_FINGERPRINT = 0x8028,
	STUNMSG_ATTR_ICE_CONTROLLED = 0x8029,  /* RFC 8445 */
	STUNMSG_ATTR_ICE_CONTROLLING = 0x802A, /* RFC 8445 */
};

/* RFC 8489 §18.5: PASSWORD-ALGORITHM(S) algorithm numbers. */
enum stunmsg_pwalg_id {
	STUNMSG_PWALG_MD5 = 0x0001,
	STUNMSG_PWALG_SHA256 = 0x0002,
};

/* One attribute as it sits in the decoded buffer.  `val` points into that
 * buffer (borrowed); `off` is the offset of the attribute header from the
 * start of the message. */
struct stunmsg_attr {
	uint16_t type;
	uint16_t len; /* value length, without padding */
	const uint8_t *val;
	size_t off;
};

/* A parsed view of one STUN message (filled by stunmsg_decode, read-only
 * afterwards).  Borrowed from the decoded buffer, see the top of the file.
 *
 * `attrs` holds the attributes a receiver must process, in wire order:
 * RFC 8489 §14.5/§14.6 tell it to ignore whatever follows
 * MESSAGE-INTEGRITY (except MESSAGE-INTEGRITY-SHA256 and FINGERPRINT) and
 * whatever follows MESSAGE-INTEGRITY-SHA256 (except FINGERPRINT), so those
 * are left out.  Duplicates are kept; getters use the first (§14). */
struct stunmsg {
	uint16_t method; /* 12 bits, enum stunmsg_method or another */
	uint8_t cls;     /* enum stunmsg_class */
	uint8_t tid[STUNMSG_TID_LEN];
	const uint8_t *buf; /* the whole message */
	size_t len;
	size_t n_attrs;
	struct stunmsg_attr attrs[STUNMSG_MAX_ATTRS];
	/* Comprehension-required types (< 0x8000) this codec does not know,
	 * in wire order, without duplicates.  A server answers a request that
	 * has any with 420 and UNKNOWN-ATTRIBUTES (RFC 8489 §6.3.1.1).
	 * n_unknown counts at most STUNMSG_MAX_UNKNOWN. */
	size_t n_unknown;
	uint16_t unknown[STUNMSG_MAX_UNKNOWN];
};

/* One entry of PASSWORD-ALGORITHMS, or the value of PASSWORD-ALGORITHM.
 * `params` is borrowed from the message (decoding) or from the caller
 * (building). */
struct stunmsg_pwalg {
	uint16_t alg; /* enum stunmsg_pwalg_id */
	uint16_t params_len;
	const uint8_t *params;
};

/* --- message type --------------------------------------------------- */

/* [pure] Pack a 12-bit method and a class into the 14-bit message type
 * (RFC 8489 §5, the M/C bit interleave).  Bits above are dropped. */
uint16_t stunmsg_type(uint16_t method, unsigned cls);
/* [pure] The reverse of stunmsg_type(). */
void stunmsg_type_split(uint16_t type, uint16_t *method, unsigned *cls);
/* [pure] "Binding", "Allocate", …, or NULL for a method we do not know. */
const char *stunmsg_method_name(uint16_t method);
/* [pure] "request", "indication", "success response", "error response". */
const char *stunmsg_class_name(unsigned cls);
/* [pure] Default reason phrase for an error code (RFC 8489 §14.8, RFC 8656
 * §18, RFC 6062 §6.3), or NULL for a code we do not know. */
const char *stunmsg_reason(int code);
/* [pure] True if this codec knows the attribute type. */
bool stunmsg_attr_known(uint16_t type);

/* --- decoding ------------------------------------------------------- */

/* [pure] Parse one whole STUN message of exactly `len` bytes (one UDP
 * datagram, or one frame cut with stunmsg_frame_len).  Checks the header
 * (top two bits zero, magic cookie, length a multiple of 4 and equal to
 * len - 20) and every attribute's bounds, and refuses anything after
 * FINGERPRINT, which must come last (§14.7).  Does NOT check integrity or
 * fingerprint: call the stunmsg_check_* functions.  On error *m is left
 * unspecified. */
int stunmsg_decode(struct stunmsg *m, const uint8_t *buf, size_t len);

/* [pure] The first attribute of that type, or NULL. */
const struct stunmsg_attr *stunmsg_find(const struct stunmsg *m, uint16_t type);
/* [pure] The next attribute of the same type after `prev` (which must point
 * into m->attrs), or NULL.  For repeated XOR-PEER-ADDRESS (RFC 8656 §9). */
const struct stunmsg_attr *stunmsg_find_next(const struct stunmsg *m,
                                             const struct stunmsg_attr *prev);
/* [pure] stunmsg_find(m, type) != NULL; e.g. DONT-FRAGMENT, USE-CANDIDATE. */
bool stunmsg_has(const struct stunmsg *m, uint16_t type);

/* Address attributes.  The port and address come out in a sockaddr_in or
 * sockaddr_in6 inside *out, in network byte order as usual. */
/* [pure] Decode one XOR-MAPPED/XOR-PEER/XOR-RELAYED-ADDRESS attribute; needs
 * the message for its transaction id (RFC 8489 §14.2). */
int stunmsg_attr_xor_addr(const struct stunmsg *m, const struct stunmsg_attr *a,
                          struct sockaddr_storage *out);
/* [pure] Decode one MAPPED-ADDRESS / ALTERNATE-SERVER (RFC 8489 §14.1). */
int stunmsg_attr_addr(const struct stunmsg_attr *a, struct sockaddr_storage *out);
/* [pure] First attribute of `type`, decoded as above. */
int stunmsg_get_xor_addr(const struct stunmsg *m, uint16_t type, struct sockaddr_storage *out);
int stunmsg_get_addr(const struct stunmsg *m, uint16_t type, struct sockaddr_storage *out);

/* [pure] Text attributes, borrowed and not NUL-terminated.  Each refuses a
 * value longer than its RFC limit (USERNAME < 513 bytes, the others < 763)
 * with -EBADMSG. */
int stunmsg_get_username(const struct stunmsg *m, const char **s, size_t *len);
int stunmsg_get_realm(const struct stunmsg *m, const char **s, size_t *len);
int stunmsg_get_nonce(const struct stunmsg *m, const char **s, size_t *len);
int stunmsg_get_software(const struct stunmsg *m, const char **s, size_t *len);

/* [pure] ERROR-CODE: *code = class * 100 + number (300..699); the reason
 * phrase is borrowed, not NUL-terminated, and may be empty. */
int stunmsg_get_error(const struct stunmsg *m, int *code, const char **reason, size_t *reason_len);
/* [pure] UNKNOWN-ATTRIBUTES: copies up to `max` types into types[] and sets
 * *n to the number copied. */
int stunmsg_get_unknown(const struct stunmsg *m, uint16_t *types, size_t max, size_t *n);
/* [pure] Any attribute whose value is exactly 4 or 8 bytes, host order:
 * LIFETIME, PRIORITY (u32); ICE-CONTROLLED/-CONTROLLING (u64). */
int stunmsg_get_u32(const struct stunmsg *m, uint16_t type, uint32_t *v);
int stunmsg_get_u64(const struct stunmsg *m, uint16_t type, uint64_t *v);
int stunmsg_get_lifetime(const struct stunmsg *m, uint32_t *seconds);
/* [pure] DATA, borrowed; may be empty. */
int stunmsg_get_data(const struct stunmsg *m, const uint8_t **data, size_t *len);
/* [pure] REQUESTED-TRANSPORT protocol number (17 = UDP, RFC 8656 §14.7). */
int stunmsg_get_requested_transport(const struct stunmsg *m, uint8_t *proto);
/* [pure] EVEN-PORT: *reserve = the R bit (RFC 8656 §14.6). */
int stunmsg_get_even_port(const struct stunmsg *m, bool *reserve);
int stunmsg_get_reservation_token(const struct stunmsg *m,
                                  uint8_t token[STUNMSG_RESERVATION_TOKEN_LEN]);
/* [pure] REQUESTED-ADDRESS-FAMILY as AF_INET or AF_INET6; -EAFNOSUPPORT
 * for any other family value (the server answers 440, RFC 8656 §7.2). */
int stunmsg_get_requested_family(const struct stunmsg *m, int *family);
/* [pure] CHANNEL-NUMBER; -ERANGE outside 0x4000-0x4FFF (answer 400). */
int stunmsg_get_channel(const struct stunmsg *m, uint16_t *channel);
/* [pure] PASSWORD-ALGORITHMS (RFC 8489 §14.11): up to `max` entries into
 * algs[], *n = number copied.  Entries are checked even past `max`. */
int stunmsg_get_password_algorithms(const struct stunmsg *m, struct stunmsg_pwalg *algs, size_t max,
                                    size_t *n);
/* [pure] PASSWORD-ALGORITHM (RFC 8489 §14.12). */
int stunmsg_get_password_algorithm(const struct stunmsg *m, struct stunmsg_pwalg *alg);
int stunmsg_get_userhash(const struct stunmsg *m, const uint8_t **hash);
/* [pure] The raw FINGERPRINT value (verify with stunmsg_check_fingerprint). */
int stunmsg_get_fingerprint(const struct stunmsg *m, uint32_t *crc);
/* [pure] The raw HMAC of MESSAGE-INTEGRITY (20 bytes) or
 * MESSAGE-INTEGRITY-SHA256 (16..32 bytes, a multiple of 4, §14.6). */
int stunmsg_get_integrity(const struct stunmsg *m, uint16_t type, const uint8_t **mac, size_t *len);

/* --- verification and keys ------------------------------------------ */

/* [pure] Verify MESSAGE-INTEGRITY (HMAC-SHA1) over the message up to that
 * attribute, with the header length adjusted as RFC 8489 §14.5 says.
 * 0 = match, -ENOENT = no such attribute, -EACCES = mismatch.  The
 * comparison takes the same time wherever the bytes differ. */
int stunmsg_check_integrity(const struct stunmsg *m, const void *key, size_t keylen);
/* [pure] Same for MESSAGE-INTEGRITY-SHA256 (§14.6), truncated MACs
 * included. */
int stunmsg_check_integrity_sha256(const struct stunmsg *m, const void *key, size_t keylen);
/* [pure] Verify FINGERPRINT (§14.7): 0, -ENOENT or -EACCES. */
int stunmsg_check_fingerprint(const struct stunmsg *m);

/* Keys (RFC 8489 §9).  Short-term credentials: the key IS the password's
 * bytes (after OpaqueString), no function needed.  Long-term: the inputs
 * must already be prepared (OpaqueString / SASLprep, §9.2.2) by the caller;
 * they are hashed as given, joined with ':'. */
/* [pure] key = MD5(username ":" realm ":" password). */
int stunmsg_key_md5(uint8_t key[STUNMSG_MD5_LEN], const char *user, size_t user_len,
                    const char *realm, size_t realm_len, const char *pass, size_t pass_len);
/* [pure] key = SHA-256(username ":" realm ":" password). */
int stunmsg_key_sha256(uint8_t key[STUNMSG_SHA256_LEN], const char *user, size_t user_len,
                       const char *realm, size_t realm_len, const char *pass, size_t pass_len);

/* --- building ------------------------------------------------------- */

/* A message under construction in the caller's buffer.  Fields are
 * private; read the result with stunmsg_build_finish().  Errors are sticky:
 * after one add fails, every later add and finish return the same error,
 * so a caller may chain adds and test only finish.  The header length is
 * kept current after every add. */
struct stunmsg_builder {
	uint8_t *_buf;
	size_t _cap;
	size_t _len;
	int _err;
	/* 0 = open, 1 = after MESSAGE-INTEGRITY, 2 = after -SHA256,
	 * 3 = after FINGERPRINT: what may still be added (§14.5-14.7). */
	int _stage;
};

/* [pure] Start a message: writes the 20-byte header.  tid is the caller's
 * 12 random bytes (a request) or the request's (a response).  cap need not
 * exceed STUNMSG_MAX_LEN; a larger one is treated as STUNMSG_MAX_LEN. */
int stunmsg_build_init(struct stunmsg_builder *b, uint8_t *buf, size_t cap, uint16_t method,
                       unsigned cls, const uint8_t tid[STUNMSG_TID_LEN]);
/* [pure] Any attribute with a raw value (zero padding added).  DATA,
 * DONT-FRAGMENT (len 0), USE-CANDIDATE, or anything not covered below. */
int stunmsg_add(struct stunmsg_builder *b, uint16_t type, const void *val, size_t len);
/* [pure] XOR-MAPPED/XOR-PEER/XOR-RELAYED-ADDRESS from an AF_INET/AF_INET6
 * sockaddr. */
int stunmsg_add_xor_addr(struct stunmsg_builder *b, uint16_t type, const struct sockaddr *sa);
/* [pure] MAPPED-ADDRESS / ALTERNATE-SERVER. */
int stunmsg_add_addr(struct stunmsg_builder *b, uint16_t type, const struct sockaddr *sa);
/* [pure] USERNAME, REALM, NONCE, SOFTWARE: -EINVAL above 508 bytes (RFC 8489
 * §14.3/§14.9/§14.10/§14.14: fewer than 509 bytes when encoding). */
int stunmsg_add_text(struct stunmsg_builder *b, uint16_t type, const char *s, size_t len);
/* [pure] ERROR-CODE; reason NULL = stunmsg_reason(code) (or ""). */
int stunmsg_add_error(struct stunmsg_builder *b, int code, const char *reason);
int stunmsg_add_unknown(struct stunmsg_builder *b, const uint16_t *types, size_t n);
int stunmsg_add_u32(struct stunmsg_builder *b, uint16_t type, uint32_t v);
int stunmsg_add_u64(struct stunmsg_builder *b, uint16_t type, uint64_t v);
int stunmsg_add_requested_transport(struct stunmsg_builder *b, uint8_t proto);
int stunmsg_add_even_port(struct stunmsg_builder *b, bool reserve);
int stunmsg_add_reservation_token(struct stunmsg_builder *b,
                                  const uint8_t token[STUNMSG_RESERVATION_TOKEN_LEN]);
/* [pure] family is AF_INET or AF_INET6. */
int stunmsg_add_requested_family(struct stunmsg_builder *b, int family);
/* [pure] -EINVAL outside 0x4000-0x4FFF. */
int stunmsg_add_channel(struct stunmsg_builder *b, uint16_t channel);
int stunmsg_add_password_algorithms(struct stunmsg_builder *b, const struct stunmsg_pwalg *algs,
                                    size_t n);
int stunmsg_add_password_algorithm(struct stunmsg_builder *b, const struct stunmsg_pwalg *alg);
/* [pure] MESSAGE-INTEGRITY: HMAC-SHA1 over everything so far (§14.5).
 * Afterwards only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT may follow. */
int stunmsg_add_integrity(struct stunmsg_builder *b, const void *key, size_t keylen);
/* [pure] MESSAGE-INTEGRITY-SHA256, full 32 bytes (§14.6).  Afterwards only
 * FINGERPRINT may follow. */
int stunmsg_add_integrity_sha256(struct stunmsg_builder *b, const void *key, size_t keylen);
/* [pure] FINGERPRINT (§14.7); nothing may follow. */
int stunmsg_add_fingerprint(struct stunmsg_builder *b);
/* [pure] The sticky error, or 0 and the message length in *len. */
int stunmsg_build_finish(const struct stunmsg_builder *b, size_t *len);

/* --- ChannelData and stream framing (RFC 8656 §12) ------------------ */

/* A parsed ChannelData message; `data` is borrowed from the input. */
struct stunmsg_chandata {
	uint16_t channel;
	uint16_t len;
	const uint8_t *data;
};

/* [pure] Parse one ChannelData message.  The buffer must hold the 4-byte
 * header and `len` data bytes; more bytes are padding and are ignored
 * (§12.5: padding is optional over UDP).  -EBADMSG if short or if the
 * channel is outside 0x4000-0x4FFF. */
int stunmsg_chandata_parse(struct stunmsg_chandata *cd, const uint8_t *buf, size_t len);
/* [pure] Write a ChannelData message; with `pad` (TCP/TLS, required there
 * by §12.5) zero bytes round it up to a multiple of 4.  *out_len = bytes
 * written.  -EINVAL for a bad channel or len > 65535, -ENOBUFS if cap is
 * too small. */
int stunmsg_chandata_build(uint8_t *buf, size_t cap, uint16_t channel, const void *data, size_t len,
                           bool pad, size_t *out_len);

/* [pure] For a TCP/TLS byte stream (RFC 8656 §12.5): how long is the frame
 * at the start of buf?  A STUN message is 20 + its length; a ChannelData
 * message is 4 + its length rounded up to 4.
 *   0        *flen = frame size, and buf holds the whole frame;
 *   -EAGAIN  buf holds only part of it: *flen = the size once the header
 *            is readable (20 bytes of STUN, 4 of ChannelData), else 0;
 *   -EBADMSG the stream is neither STUN nor ChannelData (wrong first bits,
 *            a channel outside the range, bad cookie, length not a
 *            multiple of 4): the connection cannot be resynchronised. */
int stunmsg_frame_len(const uint8_t *buf, size_t len, size_t *flen);

#endif
