/* media: offer/answer bookkeeping, SDP rewriting and the relay bridge.
 *
 * Side A is the party that sent the dialog-creating INVITE, side B the one
 * that answered.  Whoever sends an SDP, we tell the relay where that party
 * receives (relay_stream_remote on its side) and rewrite the SDP so that
 * the other party sends to the relay (relay_stream_alloc on the other
 * side).  Offer and answer are therefore handled by the same code.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct media;
struct media_bridge;
#define SU_MSG_ARG_T struct media_event_msg

#include <sofia-sip/sdp.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_string.h>
#include <sofia-sip/su_wait.h>

#include "sipnat/calllog.h"
#include "sipnat/edge.h"
#include "sipnat/log.h"
#include "sipnat/media.h"
#include "sipnat/relay.h"
#include "sipnat/sdpr.h"

#define MEDIA_MAX_STREAMS      16
#define CALL_BUCKETS           4096
#define MEDIA_STATS_INTERVAL_S 5

struct side_stream {
	bool known;
	bool rtcp_mux;
	struct sockaddr_storage rtp; /* where the party receives RTP */
};

struct side {
	char *uri, *tag, *contact;
	uint32_t cseq; /* highest CSeq seen in its requests */
	bool known;    /* we saw a message from this side */
	bool from_upstream, nated, have_src, have_flow;
	struct sockaddr_storage src;
	struct flow flow;
	int family;              /* relay family for this side */
	struct sdpr_version ver; /* o= state of its SDP as we forward it */
	struct side_stream streams[MEDIA_MAX_STREAMS];
};

struct call {
	struct call *next;
	struct call *snext; /* in m->sbucket, by sid, while the session is live */
	char *call_id, *caller_tag;
	uint64_t sid; /* relay session, 0 when not relayed */
	bool relay_decided, relay;
	bool established;
	time_t started;
	struct side side[2];
	char reason[64];
	/* The relay's figures from the last RELAY_EV_STATS (stats_refresh),
	 * for `sipnatctl calls`; NULL until the first one. */
	struct relay_stream_stats *stats;
	unsigned nstats;
	time_t stats_at;
	char codecs[160]; /* of the last SDP anchored: the answer, once there is one */
};

/* A relay event copied for the trip to the SIP thread. */
struct media_event_msg {
	struct media_bridge *bridge;
	enum relay_event_type type;
	uint64_t sid;
	int side, mline, component;
	struct sockaddr_storage addr;
	unsigned nstreams;
	struct relay_stream_stats streams[MEDIA_MAX_STREAMS * 2];
};

struct media {
	su_root_t *root;
	struct media_bridge *bridge;
	const struct cfg *cfg;
	struct relay *relay;
	struct media_hooks hooks;
	void *hooks_arg;
	struct call *bucket[CALL_BUCKETS];
	struct call *sbucket[CALL_BUCKETS]; /* the same calls by relay session */
	su_timer_t *stats_timer;
	struct calllog *calllog; /* [log] call_log, NULL when not configured */
	uint64_t latches;
	struct media_quality quality;
	uint64_t loss_counts[8], jitter_counts[8];
	size_t active;
	uint64_t completed;
	/* Calls already ended whose relay session is still closing; their
	 * summary line is written when RELAY_EV_CLOSED brings the figures. */
	struct call *closing;
	char relay4[CFG_HOST_MAX], relay6[CFG_HOST_MAX];
};

static unsigned hash_callid(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h % CALL_BUCKETS;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void side_clear(struct side *s)
{
	free(s->uri);
	free(s->tag);
	free(s->contact);
	s->uri = s->tag = s->contact = NULL;
}

static void call_free(struct call *c)
{
	if (!c)
		return;
	side_clear(&c->side[0]);
	side_clear(&c->side[1]);
	free(c->call_id);
	free(c->caller_tag);
	free(c->stats);
	free(c);
}

static void sid_link(struct media *m, struct call *c)
{
	unsigned h = (unsigned)(c->sid % CALL_BUCKETS);

	c->snext = m->sbucket[h];
	m->sbucket[h] = c;
}

static void sid_unlink(struct media *m, struct call *c)
{
	if (!c->sid)
		return;
	for (struct call **pp = &m->sbucket[c->sid % CALL_BUCKETS]; *pp; pp = &(*pp)->snext)
		if (*pp == c) {
			*pp = c->snext;
			c->snext = NULL;
			return;
		}
}

static struct call *sid_find(struct media *m, uint64_t sid)
{
	for (struct call *c = m->sbucket[sid % CALL_BUCKETS]; c; c = c->snext)
		if (c->sid == sid)
			return c;
	return NULL;
}

static struct call *call_find(struct media *m, const char *call_id)
{
	for (struct call *c = m->bucket[hash_callid(call_id)]; c; c = c->next)
		if (!strcmp(c->call_id, call_id))
			return c;
	return NULL;
}

static void call_unlink(struct media *m, struct call *c)
{
	struct call **pp = &m->bucket[hash_callid(c->call_id)];

	for (; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			c->next = NULL;
			m->active--;
			return;
		}
}

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "-";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, host, sizeof host);
		port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, host,
		          sizeof host);
		port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	} else {
		snprintf(buf, len, "-");
		return buf;
	}
	snprintf(buf, len, ss->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
	return buf;
}

/* The call's JSON record, when a call log is configured. */
static void write_record(struct media *m, struct call *c, const struct relay_stream_stats *st,
                         unsigned n)
{
	struct calllog_stream cs[MEDIA_MAX_STREAMS * 2];
	char latched[MEDIA_MAX_STREAMS * 2][64];
	struct calllog_record r = {
	        .call_id = c->call_id,
	        .caller = c->side[0].uri,
	        .callee = c->side[1].uri,
	        .reason = c->reason[0] ? c->reason : NULL,
	        .codecs = c->codecs[0] ? c->codecs : NULL,
	        .start = c->started,
	        .end = time(NULL),
	        .answered = c->established,
	        .relayed = c->sid != 0,
	        .caller_nat = c->side[0].nated,
	        .callee_nat = c->side[1].nated,
	        .streams = cs,
	};

	if (!m->calllog)
		return;
	for (unsigned i = 0; i < n && i < MEDIA_MAX_STREAMS * 2; i++) {
		cs[i] = (struct calllog_stream){
		        .side = st[i].side == RELAY_SIDE_A ? 'A' : 'B',
		        .mline = st[i].mline,
		        .rtp_port = st[i].rtp_port,
		        .packets_in = st[i].packets_in,
		        .bytes_in = st[i].bytes_in,
		        .packets_out = st[i].packets_out,
		        .bytes_out = st[i].bytes_out,
		        .dropped = st[i].dropped_foreign + st[i].dropped_no_remote,
		        .have_rtcp = st[i].rtcp_reports > 0,
		        .loss_pct = st[i].rtcp_fraction_lost * 100.0 / 256,
		        .jitter_ms = st[i].rtcp_jitter_last_ms,
		        .jitter_max_ms = st[i].rtcp_jitter_max_ms,
		};
		if (st[i].latched_rtp.ss_family)
			cs[i].latched = addr_str(&st[i].latched_rtp, latched[i], sizeof latched[i]);
		r.nstreams++;
	}
	(void)calllog_write(m->calllog, &r);
}

/* The codecs an SDP offers or accepts, "PCMU/8000 telephone-event/8000",
 * per m-line separated by ", ", for the call record. */
static void note_codecs(struct call *c, const char *body, size_t len)
{
	su_home_t home[1] = {SU_HOME_INIT(home)};
	sdp_parser_t *p = sdp_parse(home, body, (issize_t)len, 0);
	sdp_session_t *sess = p ? sdp_session(p) : NULL;
	size_t o = 0;

	if (sess) {
		c->codecs[0] = '\0';
		for (sdp_media_t *mm = sess->sdp_media; mm && o < sizeof c->codecs;
		     mm = mm->m_next) {
			if (mm->m_rejected || !mm->m_port)
				continue;
			if (o && o < sizeof c->codecs)
				o += (size_t)snprintf(c->codecs + o, sizeof c->codecs - o, ", ");
			for (sdp_rtpmap_t *rm = mm->m_rtpmaps; rm && o < sizeof c->codecs;
			     rm = rm->rm_next)
				o += (size_t)snprintf(c->codecs + o, sizeof c->codecs - o,
				                      "%s%s/%lu", rm == mm->m_rtpmaps ? "" : " ",
				                      rm->rm_encoding ? rm->rm_encoding : "?",
				                      rm->rm_rate);
		}
	}
	sdp_parser_free(p);
	su_home_deinit(home);
}

/* One line per finished call, the accounting the issue asks for. */
static void log_summary(struct call *c, const struct relay_stream_stats *st, unsigned n)
{
	char line[1536];
	size_t o = 0;
	long dur = (long)(time(NULL) - c->started);

	o += (size_t)snprintf(line + o, sizeof line - o,
	                      "call end %s: %s -> %s, %lds, %s, nat %s/%s, reason: %s", c->call_id,
	                      c->side[0].uri ? c->side[0].uri : "?",
	                      c->side[1].uri ? c->side[1].uri : "?", dur,
	                      c->sid ? "relayed" : "not relayed", c->side[0].nated ? "yes" : "no",
	                      c->side[1].nated ? "yes" : "no", c->reason[0] ? c->reason : "?");
	for (unsigned i = 0; i < n && o < sizeof line - 300; i++) {
		char latched[64];
		o += (size_t)snprintf(line + o, sizeof line - o,
		                      "; %c%d in %llu/%lluB out %llu drop %llu+%llu latched %s",
		                      st[i].side == RELAY_SIDE_A ? 'A' : 'B', st[i].mline,
		                      (unsigned long long)st[i].packets_in,
		                      (unsigned long long)st[i].bytes_in,
		                      (unsigned long long)st[i].packets_out,
		                      (unsigned long long)st[i].dropped_foreign,
		                      (unsigned long long)st[i].dropped_no_remote,
		                      addr_str(&st[i].latched_rtp, latched, sizeof latched));
		/* what this party reported about the media it received */
		if (st[i].rtcp_reports && o < sizeof line)
			o += (size_t)snprintf(line + o, sizeof line - o,
			                      " rtcp %llu loss %.1f%% lost %ld jitter %.1f/%.1fms",
			                      (unsigned long long)st[i].rtcp_reports,
			                      st[i].rtcp_fraction_lost * 100.0 / 256,
			                      (long)st[i].rtcp_cum_lost, st[i].rtcp_jitter_last_ms,
			                      st[i].rtcp_jitter_max_ms);
	}
	log_info("%s", line);
}

/* Ends a call: the relay session is closed; the summary follows with the
 * relay's final figures (or at once when the call was not relayed). */
static void call_end(struct media *m, struct call *c, const char *reason)
{
	if (!c->reason[0])
		snprintf(c->reason, sizeof c->reason, "%s", reason);
	call_unlink(m, c);
	sid_unlink(m, c);
	m->completed++;
	if (c->sid && relay_session_close(m->relay, c->sid) == 0) {
		c->next = m->closing;
		m->closing = c;
		return;
	}
	write_record(m, c, NULL, 0);
	log_summary(c, NULL, 0);
	call_free(c);
}

static bool is_sdp(sip_t const *sip)
{
	return sip->sip_payload && sip->sip_payload->pl_len > 0 && sip->sip_content_type &&
	       sip->sip_content_type->c_type &&
	       su_casematch(sip->sip_content_type->c_type, "application/sdp");
}

/* Learns who a side is from the first message it sends us.  Later
 * messages must not overwrite it: when a proxy-PBX sends the call back
 * through us (a spiral: same Call-ID and tags), the second pass comes from
 * the PBX, not from the party itself. */
static void side_learn(struct side *s, const struct media_party *who)
{
	if (!who)
		return;
	/* The callee side of a call to an upstream is first learned from the
	 * INVITE's target, which has no address yet: take it from the first
	 * answer that comes from an upstream, or a media timeout could never
	 * send it its BYE. */
	if (s->known && !s->have_src && s->from_upstream && who->from_upstream && who->src)
		s->known = false;
	/* A device outranks an upstream.  When one device calls another
	 * through the PBX, the call spirals (device -> us -> PBX -> us ->
	 * device) and the callee side is first seen as "the upstream" on the
	 * first leg; its own messages, on the second leg, say where its media
	 * really comes from and whether it is behind NAT.  Without this the
	 * relay would expect the callee's RTP from the PBX and drop all of it
	 * as foreign. */
	if (s->known && s->from_upstream && !who->from_upstream && (who->src || who->flow)) {
		s->known = false;
		s->have_src = false;
		s->have_flow = false;
	}
	if (s->known)
		return;
	s->known = true;
	s->from_upstream = who->from_upstream;
	s->nated = who->nated;
	if (who->src) {
		size_t len = who->src->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                             : sizeof(struct sockaddr_in);
		memcpy(&s->src, who->src, len);
		s->have_src = true;
		if (!s->family)
			s->family = who->src->sa_family;
	}
	if (who->flow) {
		s->flow = *who->flow;
		s->have_flow = true;
	} else if (who->src && who->from_upstream) {
		/* For an upstream, "the flow" is its address over UDP. */
		memset(&s->flow, 0, sizeof s->flow);
		s->flow.transport = CFG_TP_UDP;
		memcpy(&s->flow.remote, &s->src, sizeof s->flow.remote);
		s->have_flow = true;
	}
}

static void set_str(char **slot, const char *v)
{
	if (!v || (*slot && !strcmp(*slot, v)))
		return;
	free(*slot);
	*slot = strdup(v);
}

static void set_url(char **slot, const url_t *u)
{
	char buf[1024];

	if (!u || url_e(buf, sizeof buf, u) >= (isize_t)sizeof buf)
		return;
	buf[sizeof buf - 1] = '\0';
	set_str(slot, buf);
}

/* Whether this call goes through the relay, decided at its first SDP. */
static bool want_relay(struct media *m, const struct call *c)
{
	switch (m->cfg->relay.mode) {
	case CFG_RELAY_ALWAYS:
		return true;
	case CFG_RELAY_NEVER:
		return false;
	case CFG_RELAY_NAT:
		return c->side[0].nated || c->side[1].nated;
	}
	return true;
}

static const char *relay_addr_for(struct media *m, int family)
{
	if (family == AF_INET6 && m->relay6[0])
		return m->relay6;
	if (m->relay4[0])
		return m->relay4;
	return m->relay6[0] ? m->relay6 : NULL;
}

static int to_sockaddr(const char *host, unsigned port, struct sockaddr_storage *ss)
{
	if (port > 65535)
		return -EINVAL;
	return edge_parse_host(host, (uint16_t)port, ss);
}

/* Tells the relay where party x receives, for every stream it described;
 * with rtcp-mux once both parties agreed to it (RFC 5761 §5.1.1). */
static void push_remote(struct media *m, struct call *c, int x)
{
	struct side *s = &c->side[x], *o = &c->side[1 - x];

	for (int i = 0; i < MEDIA_MAX_STREAMS; i++) {
		unsigned flags = 0;
		if (!s->streams[i].known)
			continue;
		if (s->nated && s->have_src)
			flags |= RELAY_NATED;
		if (s->streams[i].rtcp_mux && o->streams[i].known && o->streams[i].rtcp_mux)
			flags |= RELAY_RTCP_MUX;
		int r = relay_stream_remote(m->relay, c->sid, x, i,
		                            (struct sockaddr *)&s->streams[i].rtp,
		                            s->have_src ? (struct sockaddr *)&s->src : NULL, flags);
		if (r < 0 && r != -ENOENT)
			log_warn("call %s: relay remote for side %c m-line %d: %s", c->call_id,
			         x ? 'B' : 'A', i, strerror(-r));
	}
}

/* The SDP of party x is on its way to the other party: anchor it. */
static int anchor_sdp(struct media *m, struct call *c, int x, msg_t *msg, sip_t *sip, bool offer)
{
	struct sdpr_session_info si;
	struct sdpr_stream_info st[MEDIA_MAX_STREAMS];
	struct sdpr_media_target tg[MEDIA_MAX_STREAMS];
	struct sdpr_options opt;
	int y = 1 - x, n, r;
	char *out = NULL;
	size_t out_len = 0;

	if (!c->relay_decided) {
		c->relay = want_relay(m, c) && m->relay;
		c->relay_decided = true;
	}
	if (!c->relay)
		return 0;
	n = sdpr_inspect(sip->sip_payload->pl_data, sip->sip_payload->pl_len, &si, st,
	                 MEDIA_MAX_STREAMS);
	if (n < 0) {
		log_warn("call %s: SDP from side %c not understood (%s); forwarded unchanged",
		         c->call_id, x ? 'B' : 'A', strerror(-n));
		return 0;
	}
	if (si.n_streams > MEDIA_MAX_STREAMS) {
		log_warn("call %s: %zu media lines, more than the %d we relay; forwarded unchanged",
		         c->call_id, si.n_streams, MEDIA_MAX_STREAMS);
		return 0;
	}
	n = (int)si.n_streams;
	/* An SDP that already points at our relay went through us before
	 * (a spiral through a proxy-PBX): it is anchored, leave it alone. */
	bool ours = n > 0;
	for (int i = 0; i < n && i < MEDIA_MAX_STREAMS && ours; i++)
		if (!st[i].disabled && strcmp(st[i].addr, m->relay4) &&
		    strcmp(st[i].addr, m->relay6))
			ours = false;
	if (ours) {
		log_debug("call %s: SDP of side %c already anchored here (spiral); unchanged",
		          c->call_id, x ? 'B' : 'A');
		return 0;
	}
	if (!c->sid) {
		if ((r = relay_session_open(m->relay, &c->sid)) < 0) {
			log_err("call %s: no relay session (%s); media not anchored", c->call_id,
			        strerror(-r));
			c->sid = 0;
			c->relay = false;
			return 0;
		}
		sid_link(m, c);
	}
	if (!c->side[y].family)
		c->side[y].family = si.origin_family ? si.origin_family : AF_INET;
	memset(tg, 0, sizeof tg);
	for (int i = 0; i < n && i < MEDIA_MAX_STREAMS; i++) {
		struct relay_addr ra;
		const char *pub;
		int fam = c->side[y].family;

		/* Streams the relay cannot carry keep their own addresses. */
		if (st[i].disabled || su_casenmatch(st[i].proto, "TCP", 3)) {
			tg[i].passthrough = true;
			continue;
		}
		pub = relay_addr_for(m, fam);
		if (!pub) {
			tg[i].passthrough = true;
			continue;
		}
		fam = strchr(pub, ':') ? AF_INET6 : AF_INET;
		r = relay_stream_alloc(m->relay, c->sid, y, i, fam, false, &ra);
		/* At an offer, the ports the offerer will be told of in the
		 * answer too: the same (side, m-line) later returns the same
		 * ports (relay.h), so the answer cannot find the pool empty. */
		if (r == 0 && offer) {
			struct relay_addr own;
			if (!c->side[x].family)
				c->side[x].family = si.origin_family ? si.origin_family : AF_INET;
			const char *xpub = relay_addr_for(m, c->side[x].family);
			if (xpub)
				r = relay_stream_alloc(m->relay, c->sid, x, i,
				                       strchr(xpub, ':') ? AF_INET6 : AF_INET,
				                       false, &own);
		}
		if (r == -ENOSPC) {
			log_warn("call %s: relay port pool exhausted at m-line %d", c->call_id, i);
			return -ENOSPC;
		}
		if (r < 0) {
			log_warn("call %s: no relay ports for m-line %d (%s); stream not anchored",
			         c->call_id, i, strerror(-r));
			tg[i].passthrough = true;
			continue;
		}
		tg[i].family = fam;
		snprintf(tg[i].addr, sizeof tg[i].addr, "%s", pub);
		tg[i].rtp_port = ntohs(((struct sockaddr_in *)&ra.rtp)->sin_port);
		tg[i].rtcp_port = ntohs(((struct sockaddr_in *)&ra.rtcp)->sin_port);
		if (fam == AF_INET6) {
			tg[i].rtp_port = ntohs(((struct sockaddr_in6 *)&ra.rtp)->sin6_port);
			tg[i].rtcp_port = ntohs(((struct sockaddr_in6 *)&ra.rtcp)->sin6_port);
		}
		tg[i].rtcp_mux = st[i].rtcp_mux;

		/* Where party x wants to receive this stream. */
		struct side_stream *ss = &c->side[x].streams[i];
		ss->rtcp_mux = st[i].rtcp_mux;
		if (st[i].hold_zero_addr || st[i].port == 0 ||
		    to_sockaddr(st[i].addr, st[i].port, &ss->rtp) < 0)
			memset(&ss->rtp, 0, sizeof ss->rtp);
		ss->known = true;
	}
	push_remote(m, c, x);
	/* Once both have spoken, x's answer may enable rtcp-mux for y too. */
	push_remote(m, c, y);

	sdpr_options_init(&opt);
	opt.strip_private_candidates = m->cfg->relay.strip_private_candidates;
	opt.version = &c->side[x].ver;
	r = sdpr_rewrite(sip->sip_payload->pl_data, sip->sip_payload->pl_len, tg,
	                 (size_t)(n < MEDIA_MAX_STREAMS ? n : MEDIA_MAX_STREAMS), &opt, &out,
	                 &out_len);
	if (r < 0) {
		log_warn("call %s: cannot rewrite SDP (%s); forwarded unchanged", c->call_id,
		         strerror(-r));
		return 0;
	}
	sip_payload_t *pl = sip_payload_create(msg_home(msg), out, (isize_t)out_len);
	free(out);
	if (!pl)
		return 0;
	log_debug("call %s: SDP of side %c anchored (%d m-line(s), %zu bytes)", c->call_id,
	          x ? 'B' : 'A', n, out_len);
	msg_header_replace(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_payload,
	                   (msg_header_t *)pl);
	sip_content_length_t *cl = sip_content_length_create(msg_home(msg), (uint32_t)pl->pl_len);
	if (cl) {
		if (sip->sip_content_length)
			msg_header_replace(msg, (msg_pub_t *)sip,
			                   (msg_header_t *)sip->sip_content_length,
			                   (msg_header_t *)cl);
		else
			msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)cl);
	}
	return 0;
}

int media_request(struct media *m, msg_t *msg, sip_t *sip, const struct media_party *sender,
                  const struct media_party *target)
{
	sip_method_t method;
	struct call *c;
	int x;

	if (!m || !sip->sip_request || !sip->sip_call_id || !sip->sip_from)
		return 0;
	method = sip->sip_request->rq_method;
	c = call_find(m, sip->sip_call_id->i_id);

	if (!c) {
		/* Only a dialog-creating INVITE starts a call. */
		if (method != sip_method_invite || (sip->sip_to && sip->sip_to->a_tag))
			return 0;
		c = calloc(1, sizeof *c);
		if (!c)
			return 0;
		c->call_id = strdup(sip->sip_call_id->i_id);
		c->caller_tag = dup_or_null(sip->sip_from->a_tag);
		if (!c->call_id) {
			call_free(c);
			return 0;
		}
		c->started = time(NULL);
		unsigned h = hash_callid(c->call_id);
		c->next = m->bucket[h];
		m->bucket[h] = c;
		m->active++;
		set_url(&c->side[0].uri, sip->sip_from->a_url);
		set_str(&c->side[0].tag, sip->sip_from->a_tag);
		if (sip->sip_to)
			set_url(&c->side[1].uri, sip->sip_to->a_url);
		side_learn(&c->side[1], target);
	}
	x = (c->caller_tag && sip->sip_from->a_tag && !strcmp(c->caller_tag, sip->sip_from->a_tag))
	            ? 0
	            : 1;
	side_learn(&c->side[x], sender);
	if (sip->sip_cseq && sip->sip_cseq->cs_seq > c->side[x].cseq && method != sip_method_ack &&
	    method != sip_method_cancel)
		c->side[x].cseq = sip->sip_cseq->cs_seq;
	if (sip->sip_contact && (method == sip_method_invite || method == sip_method_update))
		set_url(&c->side[x].contact, sip->sip_contact->m_url);

	switch (method) {
	case sip_method_bye:
		snprintf(c->reason, sizeof c->reason, "BYE from %s", x ? "callee" : "caller");
		call_end(m, c, c->reason);
		return 0;
	case sip_method_cancel:
		call_end(m, c, "CANCEL");
		return 0;
	case sip_method_invite:
	case sip_method_update:
	case sip_method_prack:
	case sip_method_ack:
		if (is_sdp(sip)) {
			bool offer = method == sip_method_invite || method == sip_method_update;
			if (m->calllog)
				note_codecs(c, sip->sip_payload->pl_data, sip->sip_payload->pl_len);
			int r = anchor_sdp(m, c, x, msg, sip, offer);
			if (r == -ENOSPC) {
				/* Refused: a new call leaves nothing behind, a
				 * refused re-offer leaves the call as it was. */
				if (method == sip_method_invite && !c->established)
					call_end(m, c, "relay port pool exhausted");
				return r;
			}
		}
		return 0;
	default:
		return 0;
	}
}

void media_response(struct media *m, msg_t *msg, sip_t *sip, sip_t const *request,
                    const struct media_party *responder)
{
	struct call *c;
	int status, x;
	sip_method_t method;

	(void)request;
	if (!m || !sip->sip_status || !sip->sip_call_id || !sip->sip_cseq || !sip->sip_from)
		return;
	c = call_find(m, sip->sip_call_id->i_id);
	if (!c)
		return;
	status = sip->sip_status->st_status;
	method = sip->sip_cseq->cs_method;
	/* The responder is the party the request was sent to; From always
	 * names the request's sender, in requests and responses alike. */
	x = (sip->sip_from->a_tag && c->caller_tag && !strcmp(sip->sip_from->a_tag, c->caller_tag))
	            ? 1
	            : 0;
	side_learn(&c->side[x], responder);
	if (method == sip_method_invite && x == 1 && status > 100 && status < 300) {
		if (sip->sip_to && sip->sip_to->a_tag)
			set_str(&c->side[1].tag, sip->sip_to->a_tag);
		if (sip->sip_contact)
			set_url(&c->side[1].contact, sip->sip_contact->m_url);
		if (status >= 200 && !c->established) {
			c->established = true;
			/* Media is due from the answer on: an answered call that
			 * then sends nothing for the timeout is ended, also when
			 * it rang longer than the timeout (and the relay's report
			 * of that was let pass, see RELAY_EV_TIMEOUT below). */
			if (c->sid)
				(void)relay_session_rearm(m->relay, c->sid);
		}
	}
	if (method == sip_method_invite && status >= 300 && !c->established) {
		char why[32];
		snprintf(why, sizeof why, "INVITE answered %d", status);
		call_end(m, c, why);
		return;
	}
	if (status > 100 && status < 300 && is_sdp(sip) &&
	    (method == sip_method_invite || method == sip_method_update ||
	     method == sip_method_prack)) {
		if (m->calllog)
			note_codecs(c, sip->sip_payload->pl_data, sip->sip_payload->pl_len);
		(void)anchor_sdp(m, c, x, msg, sip, false); /* an answer can only pass unchanged */
	}
}

int media_hangup(struct media *m, const char *call_id, const char *reason)
{
	struct call *c = m ? call_find(m, call_id) : NULL;

	if (!c)
		return -ENOENT;
	if (c->established && m->hooks.send_bye) {
		for (int x = 0; x < 2; x++) {
			struct side *to = &c->side[x], *from = &c->side[1 - x];
			struct media_dialog_side dt = {0}, df = {0};
			if (!to->contact || !to->tag || !from->tag || !to->have_flow)
				continue;
			dt.uri = to->uri;
			dt.tag = to->tag;
			dt.contact = to->contact;
			dt.from_upstream = to->from_upstream;
			dt.have_flow = to->have_flow;
			dt.flow = to->flow;
			df.uri = from->uri;
			df.tag = from->tag;
			df.contact = from->contact;
			/* We speak for `from`: continue its CSeq space. */
			df.cseq = ++from->cseq;
			m->hooks.send_bye(m->hooks_arg, c->call_id, &df, &dt, reason);
		}
	}
	call_end(m, c, reason);
	return 0;
}

/* [sip] A relay event arrives on the SIP thread. */
static void on_event(su_root_magic_t *magic, su_msg_r msg, struct media_event_msg *ev)
{
	struct media *m = ev->bridge->m;

	(void)magic;
	(void)msg;
	if (!m)
		return;
	switch (ev->type) {
	case RELAY_EV_TIMEOUT: {
		struct call *c = sid_find(m, ev->sid);
		/* A call still ringing has no dialog to send BYE in, and phones
		 * ring longer than any media timeout without early media; the
		 * answer re-arms the timeout (relay_session_rearm). */
		if (c && !c->established) {
			log_debug("call %s: no media for %us while ringing; not ended", c->call_id,
			          m->cfg->relay.timeout);
			break;
		}
		if (c) {
			log_warn("call %s: no media for %us; ending it with BYE on both sides",
			         c->call_id, m->cfg->relay.timeout);
			media_hangup(m, c->call_id, "media timeout");
		}
		break;
	}
	case RELAY_EV_LATCHED: {
		char a[64];
		m->latches++;
		addr_str(&ev->addr, a, sizeof a);
		log_debug("relay session %llu: side %c m-line %d %s latched to %s",
		          (unsigned long long)ev->sid, ev->side ? 'B' : 'A', ev->mline,
		          ev->component == 1 ? "RTP" : "RTCP", a);
		break;
	}
	case RELAY_EV_CLOSED:
		for (struct call **pp = &m->closing; *pp; pp = &(*pp)->next)
			if ((*pp)->sid == ev->sid) {
				struct call *c = *pp;
				*pp = c->next;
				write_record(m, c, ev->streams, ev->nstreams);
				for (unsigned i = 0; i < ev->nstreams; i++)
					if (ev->streams[i].rtcp_reports) {
						prom_hist_observe(
						        &m->quality.loss_pct,
						        ev->streams[i].rtcp_fraction_lost * 100.0 /
						                256);
						prom_hist_observe(
						        &m->quality.jitter_ms,
						        ev->streams[i].rtcp_jitter_max_ms);
					}
				log_summary(c, ev->streams, ev->nstreams);
				call_free(c);
				break;
			}
		break;
	case RELAY_EV_STATS: {
		struct call *c = sid_find(m, ev->sid);
		if (!c)
			break;
		if (ev->nstreams > c->nstats || !c->stats) {
			struct relay_stream_stats *v =
			        realloc(c->stats, (ev->nstreams ? ev->nstreams : 1) * sizeof *v);
			if (!v)
				break;
			c->stats = v;
		}
		if (ev->nstreams)
			memcpy(c->stats, ev->streams, ev->nstreams * sizeof *c->stats);
		c->nstats = ev->nstreams;
		c->stats_at = time(NULL);
		break;
	}
	}
}

void media_relay_event(void *arg, const struct relay_event *ev)
{
	struct media_bridge *bridge = arg;
	su_msg_r msg = SU_MSG_R_INIT;
	struct media_event_msg *e;

	unsigned n = ev->streams ? ev->nstreams : 0;

	if (!bridge || !bridge->root)
		return;
	if (n > MEDIA_MAX_STREAMS * 2)
		n = MEDIA_MAX_STREAMS * 2;
	/* Sized for the streams it carries: a stats answer every few seconds
	 * per call must not cost the 12 KB of a full array each time. */
	size_t size = offsetof(struct media_event_msg, streams) + n * sizeof e->streams[0];
	if (su_msg_create(msg, su_root_task(bridge->root), su_task_null, on_event, (isize_t)size) <
	    0)
		return;
	e = su_msg_data(msg);
	memset(e, 0, size);
	e->bridge = bridge;
	e->type = ev->type;
	e->sid = ev->sid;
	e->side = ev->side;
	e->mline = ev->mline;
	e->component = ev->component;
	if (ev->addr) {
		size_t len = ev->addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                             : sizeof(struct sockaddr_in);
		memcpy(&e->addr, ev->addr, len);
	}
	e->nstreams = n;
	if (n)
		memcpy(e->streams, ev->streams, n * sizeof e->streams[0]);
	su_msg_send(msg);
}

static void pick_relay_addresses(struct media *m)
{
	const struct cfg_relay *r = &m->cfg->relay;

	m->relay4[0] = m->relay6[0] = '\0';
	for (size_t i = 0; i < r->n_addr; i++) {
		if (strchr(r->addr[i], ':') && !m->relay6[0])
			snprintf(m->relay6, sizeof m->relay6, "%s", r->addr[i]);
		else if (!strchr(r->addr[i], ':') && !m->relay4[0])
			snprintf(m->relay4, sizeof m->relay4, "%s", r->addr[i]);
	}
}

/* Bucket bounds: loss that a listener starts to hear (1-2 %) and that
 * ruins a call (10 %+); jitter against a typical 20-60 ms jitter buffer. */
static const double loss_bounds[] = {0.5, 1, 2, 5, 10, 20, 50};
static const double jitter_bounds[] = {5, 10, 20, 30, 50, 100, 200};

/* The relay's per-stream figures reach `sipnatctl calls` as a cache,
 * refreshed every MEDIA_STATS_INTERVAL_S and whenever the calls are
 * listed: one mailbox message per relayed call, answered by the loop that
 * owns it, so the packet path never shares a counter with this thread. */
void media_refresh_stats(struct media *m)
{
	if (!m || !m->relay)
		return;
	for (unsigned b = 0; b < CALL_BUCKETS; b++)
		for (struct call *c = m->sbucket[b]; c; c = c->snext)
			(void)relay_session_query(m->relay, c->sid);
}

static void on_stats_timer(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
	(void)magic;
	(void)t;
	media_refresh_stats((struct media *)arg);
}

int media_create(struct media **out, struct media_bridge *bridge, const struct cfg *cfg,
                 struct relay *relay, const struct media_hooks *hooks, void *arg)
{
	struct media *m = calloc(1, sizeof *m);

	if (!m)
		return -ENOMEM;
	m->root = bridge->root;
	m->bridge = bridge;
	m->cfg = cfg;
	m->relay = relay;
	if (hooks)
		m->hooks = *hooks;
	m->hooks_arg = arg;
	pick_relay_addresses(m);
	m->quality.loss_pct.bounds = loss_bounds;
	m->quality.loss_pct.n_bounds = sizeof loss_bounds / sizeof loss_bounds[0];
	m->quality.loss_pct.counts = m->loss_counts;
	m->quality.jitter_ms.bounds = jitter_bounds;
	m->quality.jitter_ms.n_bounds = sizeof jitter_bounds / sizeof jitter_bounds[0];
	m->quality.jitter_ms.counts = m->jitter_counts;
	if (cfg->log.call_log) {
		int r = calllog_open(&m->calllog, cfg->log.call_log);
		if (r < 0) {
			log_err("cannot open the call log %s: %s", cfg->log.call_log, strerror(-r));
			free(m);
			return r;
		}
	}
	if (relay) {
		m->stats_timer =
		        su_timer_create(su_root_task(m->root), MEDIA_STATS_INTERVAL_S * 1000);
		if (m->stats_timer)
			su_timer_set_interval(m->stats_timer, on_stats_timer, m,
			                      MEDIA_STATS_INTERVAL_S * 1000);
	}
	bridge->m = m;
	*out = m;
	return 0;
}

void media_reload(struct media *m, const struct cfg *cfg)
{
	const char *want = cfg->log.call_log;
	int r = 0;

	m->cfg = cfg;
	/* The call log follows the new configuration; the same path is opened
	 * again, so that a rotated file is replaced (logrotate's "create"). */
	if (!want) {
		calllog_close(m->calllog);
		m->calllog = NULL;
	} else if (m->calllog && !strcmp(calllog_path(m->calllog), want)) {
		r = calllog_reopen(m->calllog);
	} else {
		struct calllog *cl;
		if ((r = calllog_open(&cl, want)) == 0) {
			calllog_close(m->calllog);
			m->calllog = cl;
		}
	}
	if (r < 0)
		log_warn("call log %s: %s; %s", want, strerror(-r),
		         m->calllog ? "still writing to the file opened before"
		                    : "no call records");
	/* The relay keeps the addresses it started with; a reload without
	 * [relay] address must not leave us with none. */
	if (cfg->relay.n_addr)
		pick_relay_addresses(m);
}

void media_destroy(struct media *m)
{
	if (!m)
		return;
	m->bridge->m = NULL;
	su_timer_destroy(m->stats_timer);
	calllog_close(m->calllog);
	for (unsigned b = 0; b < CALL_BUCKETS; b++) {
		struct call *c = m->bucket[b], *n;
		for (; c; c = n) {
			n = c->next;
			if (c->sid)
				relay_session_close(m->relay, c->sid);
			call_free(c);
		}
	}
	for (struct call *c = m->closing, *n; c; c = n) {
		n = c->next;
		call_free(c);
	}
	free(m);
}

void media_foreach_call(struct media *m, void (*fn)(void *arg, const struct media_call_info *c),
                        void *arg)
{
	time_t now = time(NULL);

	for (unsigned b = 0; b < CALL_BUCKETS; b++)
		for (struct call *c = m->bucket[b]; c; c = c->next) {
			struct media_call_info i = {
			        .call_id = c->call_id,
			        .caller = c->side[0].uri ? c->side[0].uri : "",
			        .callee = c->side[1].uri ? c->side[1].uri : "",
			        .sid = c->sid,
			        .age = (long)(now - c->started),
			        .established = c->established,
			        .caller_nated = c->side[0].nated,
			        .callee_nated = c->side[1].nated,
			        .streams = c->stats,
			        .nstreams = c->nstats,
			        .stats_age = c->stats ? (long)(now - c->stats_at) : -1,
			};
			fn(arg, &i);
		}
}

const struct media_quality *media_quality(const struct media *m)
{
	return m ? &m->quality : NULL;
}

uint64_t media_latches(const struct media *m)
{
	return m ? m->latches : 0;
}

size_t media_active_calls(const struct media *m)
{
	return m ? m->active : 0;
}

uint64_t media_completed_calls(const struct media *m)
{
	return m ? m->completed : 0;
}
