/* calllog: one JSON object per line for every finished call ([log]
 * call_log), for billing, troubleshooting and log shippers.
 *
 * The file is opened with O_APPEND and each record is written with a single
 * write(2), so a line is never interleaved or cut by another writer, and a
 * log rotator may rename the file at any time: calllog_reopen() (on SIGHUP
 * and `sipnatctl reload`) then starts a new file under the configured name.
 * A failed write is reported once and counted, never fatal: the call is
 * over either way, and the summary line in the daemon's log stays.
 *
 * Threads: a struct calllog belongs to the SIP thread ([sip]); the
 * formatting function is [pure].  Memory: calllog_open() returns an object
 * freed by calllog_close(); records are borrowed for the call only.
 * Errors: 0 or a negative errno.
 */
#ifndef SIPNAT_CALLLOG_H
#define SIPNAT_CALLLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct calllog;

struct calllog_stream {
	char side; /* 'A' caller, 'B' callee */
	int mline;
	unsigned rtp_port;   /* the relay port the party sent to */
	const char *latched; /* "IP:PORT", NULL if never latched */
	uint64_t packets_in, bytes_in, packets_out, bytes_out;
	uint64_t dropped; /* foreign source + nowhere to forward */
	bool have_rtcp;   /* the party sent RTCP reports: loss and jitter valid */
	double loss_pct, jitter_ms, jitter_max_ms;
};

struct calllog_record {
	const char *call_id, *caller, *callee; /* From / To URIs */
	const char *reason;                    /* why it ended */
	const char *codecs; /* "PCMU/8000 telephone-event/8000"; NULL if unknown */
	time_t start, end;  /* INVITE seen, call ended */
	bool answered, relayed, caller_nat, callee_nat;
	const struct calllog_stream *streams;
	size_t nstreams;
};

/* [sip] Opens (creates, mode 0640) path for appending.  *out is set only
 * on success.  Errors from open(2). */
int calllog_open(struct calllog **out, const char *path);

/* [sip] Closes and opens the same path again (after a rotation).  On error
 * the old descriptor stays in use and the error is returned. */
int calllog_reopen(struct calllog *cl);

/* [sip] The path it was opened with. */
const char *calllog_path(const struct calllog *cl);

/* [sip] Appends the record as one line.  -EIO (or the write error) when the
 * line could not be written whole; the first failure after an open or a
 * reopen is logged, later ones only counted. */
int calllog_write(struct calllog *cl, const struct calllog_record *r);

/* [sip] Records that could not be written since the start. */
uint64_t calllog_failures(const struct calllog *cl);

/* [sip] NULL is a no-op. */
void calllog_close(struct calllog *cl);

/* [pure] The record as one JSON object followed by "\n", NUL-terminated,
 * in *out (free() it).  Times are ISO 8601 UTC; text from the network
 * that is not UTF-8 has its bad bytes replaced by '?'.  -ENOMEM. */
int calllog_format(const struct calllog_record *r, char **out, size_t *len);

#endif
