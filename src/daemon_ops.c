/* daemon_ops: sipnatd's control operations and metrics (see daemon_ops.h). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "sipnat/daemon_ops.h"
#include "sipnat/flow.h"
#include "sipnat/log.h"
#include "sipnat/media.h"
#include "sipnat/natd.h"
#include "sipnat/prom.h"
#include "sipnat/proxy.h"
#include "sipnat/reg.h"
#include "sipnat/relay.h"
#include "sipnat/turn.h"

void daemon_ctx_init(struct daemon_ctx *d, struct proxy *proxy, struct cfg *const *cfg,
                     int (*reload)(void *arg, char *err, size_t errlen), void *reload_arg)
{
	memset(d, 0, sizeof *d);
	d->proxy = proxy;
	d->cfg = cfg;
	d->reload = reload;
	d->reload_arg = reload_arg;
	clock_gettime(CLOCK_MONOTONIC, &d->started);
	d->last_reload_ok = time(NULL);
}

void daemon_note_reload(struct daemon_ctx *d, int result)
{
	if (result < 0) {
		d->reloads_refused++;
	} else if (result > 0) {
		d->reloads_partial++;
	} else {
		d->reloads_applied++;
		d->last_reload_ok = time(NULL);
	}
	d->last_reload_failed = result != 0;
}

static long uptime(const struct daemon_ctx *d)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - d->started.tv_sec);
}

/* A JSON string for text that came from the network: jansson refuses
 * invalid UTF-8, so such bytes become '?' rather than losing the field. */
static json_t *jstr(const char *s)
{
	json_t *v;
	char *copy;

	if (!s)
		return json_null();
	v = json_string(s);
	if (v)
		return v;
	copy = strdup(s);
	if (!copy)
		return json_null();
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	v = json_string(copy);
	free(copy);
	return v ? v : json_null();
}

static int set(json_t *o, const char *key, json_t *v)
{
	return json_object_set_new(o, key, v) < 0 ? -ENOMEM : 0;
}

static void count_binding(void *arg, const struct reg_binding *b)
{
	(void)b;
	++*(size_t *)arg;
}

static int op_status(void *arg, json_t *out)
{
	struct daemon_ctx *d = arg;
	const struct cfg *cfg = *d->cfg;
	struct proxy_stats st;
	struct proxy_upstream_info up[CFG_MAX_UPSTREAM];
	size_t n_up;
	json_t *arr, *o, *cnt;
	struct media *m = proxy_media(d->proxy);
	int r = 0;

	proxy_get_stats(d->proxy, &st);
	r |= set(out, "version", json_string(PACKAGE_VERSION));
	r |= set(out, "pid", json_integer(getpid()));
	r |= set(out, "uptime", json_integer(uptime(d)));
	r |= set(out, "config", jstr(cfg->path));
	r |= set(out, "draining", json_boolean(proxy_is_draining(d->proxy)));
	r |= set(out, "log_level", json_string(cfg_log_level_name(log_get_level())));

	arr = json_array();
	for (size_t i = 0; arr && i < cfg->sip.n_listen; i++) {
		o = json_object();
		set(o, "transport", json_string(cfg_transport_name(cfg->sip.listen[i].transport)));
		set(o, "address", jstr(cfg->sip.listen[i].host));
		set(o, "port", json_integer(cfg->sip.listen[i].port));
		json_array_append_new(arr, o);
	}
	r |= set(out, "listeners", arr);

	n_up = proxy_upstreams(d->proxy, up, CFG_MAX_UPSTREAM);
	arr = json_array();
	for (size_t i = 0; arr && i < n_up && i < CFG_MAX_UPSTREAM; i++) {
		o = json_object();
		set(o, "uri", jstr(up[i].uri));
		set(o, "healthy", json_boolean(up[i].healthy));
		set(o, "down_for", json_integer(up[i].down_for));
		json_array_append_new(arr, o);
	}
	r |= set(out, "upstreams", arr);

	cnt = json_object();
	set(cnt, "requests", json_integer((json_int_t)st.requests));
	set(cnt, "forwarded", json_integer((json_int_t)st.forwarded));
	set(cnt, "responses", json_integer((json_int_t)st.responses));
	set(cnt, "refused", json_integer((json_int_t)st.refused));
	set(cnt, "loops", json_integer((json_int_t)st.loops));
	set(cnt, "too_many_hops", json_integer((json_int_t)st.too_many_hops));
	set(cnt, "failovers", json_integer((json_int_t)st.failovers));
	set(cnt, "local_options", json_integer((json_int_t)st.local_options));
	set(cnt, "malformed", json_integer((json_int_t)st.malformed));
	set(cnt, "relay_full", json_integer((json_int_t)st.relay_full));
	set(cnt, "transactions", json_integer((json_int_t)st.transactions));
	r |= set(out, "counters", cnt);

	size_t n_reg = 0;
	proxy_foreach_binding(d->proxy, count_binding, &n_reg);
	r |= set(out, "registrations", json_integer((json_int_t)n_reg));
	r |= set(out, "calls_active", json_integer(m ? (json_int_t)media_active_calls(m) : 0));
	r |= set(out, "calls_completed",
	         json_integer(m ? (json_int_t)media_completed_calls(m) : 0));
	r |= set(out, "media_relay", json_boolean(m != NULL));
	return r ? -ENOMEM : 0;
}

static const struct {
	unsigned flag;
	const char *name;
} natd_names[] = {
        {NATD_VIA_ADDR, "via_addr"},         {NATD_VIA_PORT, "via_port"},
        {NATD_CONTACT_PRIV, "contact_priv"}, {NATD_VIA_PRIV, "via_priv"},
        {NATD_SDP_PRIV, "sdp_priv"},         {NATD_SRC_PRIV, "src_priv"},
};

struct reg_walk {
	json_t *arr;
	time_t now;
	int err;
};

static void add_binding(void *arg, const struct reg_binding *b)
{
	struct reg_walk *w = arg;
	json_t *o = json_object(), *why = json_array();
	char flow[128];

	if (!o || !why) {
		json_decref(o);
		json_decref(why);
		w->err = -ENOMEM;
		return;
	}
	if (flow_format(&b->flow, flow, sizeof flow) < 0)
		snprintf(flow, sizeof flow, "?");
	for (size_t i = 0; i < sizeof natd_names / sizeof natd_names[0]; i++)
		if (b->natd & natd_names[i].flag)
			json_array_append_new(why, json_string(natd_names[i].name));
	set(o, "aor", jstr(b->aor));
	set(o, "contact", jstr(b->contact));
	if (b->instance[0])
		set(o, "instance", jstr(b->instance));
	if (b->reg_id)
		set(o, "reg_id", json_integer(b->reg_id));
	set(o, "outbound", json_boolean(b->outbound));
	set(o, "flow", jstr(flow));
	set(o, "nat", json_boolean(b->natd != 0));
	set(o, "natd", why);
	set(o, "expires_in", json_integer((json_int_t)(b->expires - w->now)));
	set(o, "keepalive", json_boolean(b->ka_due != 0));
	/* seconds since the last keepalive answer; null: none yet */
	set(o, "last_keepalive_ok",
	    b->last_ka_ok ? json_integer((json_int_t)(w->now - b->last_ka_ok)) : json_null());
	set(o, "keepalive_failures", json_integer(b->ka_failures));
	set(o, "unreachable", json_boolean(b->unreachable));
	if (json_array_append_new(w->arr, o) < 0)
		w->err = -ENOMEM;
}

static int op_registrations(void *arg, json_t *out)
{
	struct daemon_ctx *d = arg;
	struct reg_walk w = {.arr = out, .now = time(NULL)};

	proxy_foreach_binding(d->proxy, add_binding, &w);
	return w.err;
}

struct call_walk {
	json_t *arr;
	int err;
};

/* "IP:PORT" or "[IPv6]:PORT". */
static const char *sa_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		snprintf(buf, len, "[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		snprintf(buf, len, "%s:%u", host, ntohs(a->sin_port));
	}
	return buf;
}

static void add_call(void *arg, const struct media_call_info *c)
{
	struct call_walk *w = arg;
	json_t *o = json_object();

	if (!o) {
		w->err = -ENOMEM;
		return;
	}
	set(o, "call_id", jstr(c->call_id));
	set(o, "caller", jstr(c->caller));
	set(o, "callee", jstr(c->callee));
	set(o, "age", json_integer(c->age));
	set(o, "established", json_boolean(c->established));
	set(o, "relay_session", json_integer((json_int_t)c->sid));
	set(o, "caller_nat", json_boolean(c->caller_nated));
	set(o, "callee_nat", json_boolean(c->callee_nated));
	set(o, "stats_age", json_integer(c->stats_age));
	json_t *streams = json_array();
	for (unsigned i = 0; streams && i < c->nstreams; i++) {
		const struct relay_stream_stats *st = &c->streams[i];
		json_t *so = json_object();
		char latched[INET6_ADDRSTRLEN + 8];
		if (!so)
			break;
		set(so, "side", json_string(st->side == RELAY_SIDE_A ? "A" : "B"));
		set(so, "mline", json_integer(st->mline));
		set(so, "rtp_port", json_integer(st->rtp_port));
		set(so, "rtcp_port", json_integer(st->rtcp_port));
		set(so, "latched",
		    st->latched_rtp.ss_family
		            ? jstr(sa_str(&st->latched_rtp, latched, sizeof latched))
		            : json_null());
		set(so, "packets_in", json_integer((json_int_t)st->packets_in));
		set(so, "bytes_in", json_integer((json_int_t)st->bytes_in));
		set(so, "packets_out", json_integer((json_int_t)st->packets_out));
		set(so, "bytes_out", json_integer((json_int_t)st->bytes_out));
		set(so, "dropped_foreign", json_integer((json_int_t)st->dropped_foreign));
		set(so, "dropped_no_remote", json_integer((json_int_t)st->dropped_no_remote));
		if (st->rtcp_reports) {
			set(so, "loss_pct", json_real(st->rtcp_fraction_lost * 100.0 / 256));
			set(so, "jitter_ms", json_real(st->rtcp_jitter_last_ms));
		}
		json_array_append_new(streams, so);
	}
	set(o, "streams", streams ? streams : json_null());
	if (json_array_append_new(w->arr, o) < 0)
		w->err = -ENOMEM;
}

static int op_calls(void *arg, json_t *out)
{
	struct daemon_ctx *d = arg;
	struct media *m = proxy_media(d->proxy);
	struct call_walk w = {.arr = out};

	/* Without the media relay no call is tracked: an empty list.  The
	 * figures are the relay's last answer (stats_age); ask for new ones
	 * for the next listing. */
	if (m) {
		media_foreach_call(m, add_call, &w);
		media_refresh_stats(m);
	}
	return w.err;
}

static void add_alloc(void *arg, const struct turn_alloc_info *a)
{
	struct call_walk *w = arg;
	json_t *o = json_object();
	char client[INET6_ADDRSTRLEN + 8], relayed[INET6_ADDRSTRLEN + 8];

	if (!o) {
		w->err = -ENOMEM;
		return;
	}
	set(o, "user", a->anon ? json_null() : jstr(a->user));
	set(o, "transport", json_string(cfg_transport_name(a->transport)));
	set(o, "client",
	    jstr(sa_str((const struct sockaddr_storage *)a->client, client, sizeof client)));
	set(o, "relayed",
	    jstr(sa_str((const struct sockaddr_storage *)a->relayed, relayed, sizeof relayed)));
	set(o, "age", json_integer(a->age));
	set(o, "expires_in", json_integer(a->expires_in));
	set(o, "to_peer_packets", json_integer((json_int_t)a->to_peer_packets));
	set(o, "to_client_packets", json_integer((json_int_t)a->to_client_packets));
	if (json_array_append_new(w->arr, o) < 0)
		w->err = -ENOMEM;
}

/* Without a TURN server: an empty list, like calls without the relay. */
static int op_turn(void *arg, json_t *out)
{
	struct daemon_ctx *d = arg;
	struct call_walk w = {.arr = out};

	turn_foreach_alloc(d->turn, add_alloc, &w);
	return w.err;
}

static int op_reload(void *arg, char *err, size_t errlen)
{
	struct daemon_ctx *d = arg;

	if (!d->reload)
		return -ENOTSUP;
	return d->reload(d->reload_arg, err, errlen);
}

static int op_drain(void *arg)
{
	struct daemon_ctx *d = arg;

	if (!proxy_is_draining(d->proxy))
		log_info("draining requested on the control socket");
	proxy_set_draining(d->proxy, true);
	return 0;
}

struct call_state {
	const char *call_id;
	bool found, established;
};

static void find_call(void *arg, const struct media_call_info *c)
{
	struct call_state *cs = arg;

	if (!cs->found && !strcmp(c->call_id, cs->call_id)) {
		cs->found = true;
		cs->established = c->established;
	}
}

static int op_hangup(void *arg, const char *call_id)
{
	struct daemon_ctx *d = arg;
	struct media *m = proxy_media(d->proxy);
	struct call_state cs = {.call_id = call_id};
	int r;

	if (!m)
		return -ENOENT;
	/* Before the 2xx there is no dialog to send a BYE in (RFC 3261
	 * section 15): media_hangup() would only forget the call, while its
	 * INVITE goes on and the answer then passes without the relay.
	 * Only the caller can end it now, with a CANCEL. */
	media_foreach_call(m, find_call, &cs);
	if (!cs.found)
		return -ENOENT;
	if (!cs.established)
		return -EBUSY;
	r = media_hangup(m, call_id, "hangup from sipnatctl");
	if (r == 0)
		log_info("call %s hung up (control socket)", call_id);
	return r;
}

static int op_loglevel(void *arg, const char *level)
{
	static const struct {
		const char *name;
		enum cfg_log_level level;
	} names[] = {
	        {"error", CFG_LOG_ERROR}, {"warn", CFG_LOG_WARN},   {"warning", CFG_LOG_WARN},
	        {"info", CFG_LOG_INFO},   {"debug", CFG_LOG_DEBUG},
	};

	(void)arg;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcasecmp(level, names[i].name) != 0)
			continue;
		log_set_level(names[i].level);
		/* Sofia's own logs follow, as at start and on reload. */
		log_route_sofia(names[i].level >= CFG_LOG_DEBUG ? 5 : 3);
		log_msg(names[i].level < CFG_LOG_INFO ? names[i].level : CFG_LOG_INFO,
		        "log level set to %s (control socket)", cfg_log_level_name(names[i].level));
		return 0;
	}
	return -EINVAL;
}

struct reg_count {
	/* [transport][nat] */
	unsigned long n[3][2];
	unsigned long unreachable;
};

static void count_reg(void *arg, const struct reg_binding *b)
{
	struct reg_count *c = arg;
	unsigned t = b->flow.transport <= CFG_TP_TLS ? (unsigned)b->flow.transport : 0;

	c->n[t][b->natd != 0]++;
	if (b->unreachable)
		c->unreachable++;
}

int daemon_metrics(struct daemon_ctx *d, char **text, size_t *len)
{
	struct prom p;
	struct proxy_stats st;
	struct proxy_upstream_info up[CFG_MAX_UPSTREAM];
	struct reg_count rc;
	struct media *m = proxy_media(d->proxy);
	size_t n_up;

	proxy_get_stats(d->proxy, &st);
	memset(&rc, 0, sizeof rc);
	proxy_foreach_binding(d->proxy, count_reg, &rc);
	n_up = proxy_upstreams(d->proxy, up, CFG_MAX_UPSTREAM);

	prom_init(&p);
	prom_family(&p, "sipnat_build_info", PROM_GAUGE, "Version of sipnatd; always 1.");
	prom_sample(&p, "sipnat_build_info",
	            (const struct prom_label[]){{"version", PACKAGE_VERSION}}, 1, 1);
	prom_gauge(&p, "sipnat_uptime_seconds", "Seconds since sipnatd started.",
	           (double)uptime(d));
	prom_counter(&p, "sipnat_sip_requests_total", "SIP requests received (all methods).",
	             st.requests);
	prom_family(&p, "sipnat_sip_requests_by_method_total", PROM_COUNTER,
	            "SIP requests received, by method.");
	for (int i = 0; i < PROXY_N_METHODS; i++)
		prom_sample(&p, "sipnat_sip_requests_by_method_total",
		            (const struct prom_label[]){{"method", proxy_method_name(i)}}, 1,
		            (double)st.by_method[i]);
	prom_family(&p, "sipnat_sip_responses_by_class_total", PROM_COUNTER,
	            "SIP responses relayed back, by class (1xx..6xx).");
	for (int i = 1; i <= 6; i++) {
		char cls[4] = {(char)('0' + i), 'x', 'x', '\0'};
		prom_sample(&p, "sipnat_sip_responses_by_class_total",
		            (const struct prom_label[]){{"class", cls}}, 1, (double)st.by_class[i]);
	}
	/* Every code seen at least once: a series appears with its first
	 * response and never goes away, as Prometheus expects of a counter. */
	prom_family(&p, "sipnat_sip_responses_by_code_total", PROM_COUNTER,
	            "SIP responses relayed back, by status code.");
	for (int i = 0; i < 600; i++) {
		char code[8];
		if (!st.by_code[i])
			continue;
		snprintf(code, sizeof code, "%d", i + 100);
		prom_sample(&p, "sipnat_sip_responses_by_code_total",
		            (const struct prom_label[]){{"code", code}}, 1, (double)st.by_code[i]);
	}
	prom_counter(&p, "sipnat_sip_forwarded_total", "SIP requests forwarded.", st.forwarded);
	prom_counter(&p, "sipnat_sip_responses_total", "SIP responses relayed back.", st.responses);
	prom_counter(&p, "sipnat_sip_refused_total",
	             "Requests refused with 403 because they were not for an upstream.",
	             st.refused);
	prom_counter(&p, "sipnat_sip_loops_total", "Requests refused with 482 (loop detected).",
	             st.loops);
	prom_counter(&p, "sipnat_sip_too_many_hops_total", "Requests refused with 483.",
	             st.too_many_hops);
	prom_counter(&p, "sipnat_sip_failovers_total",
	             "Times a request went to the next upstream after a timeout or 503.",
	             st.failovers);
	prom_counter(&p, "sipnat_sip_malformed_total", "Malformed SIP messages received.",
	             st.malformed);
	prom_counter(&p, "sipnat_sip_bad_flow_tokens_total",
	             "Requests refused with 403 because their flow token did not verify.",
	             st.bad_tokens);
	prom_counter(&p, "sipnat_sip_flow_failed_total",
	             "Requests refused with 430 because the device's flow is gone.",
	             st.flow_failed);
	prom_counter(&p, "sipnat_sip_relay_full_total",
	             "Offers refused with 503 because the media relay had no ports left.",
	             st.relay_full);
	prom_gauge(&p, "sipnat_sip_transactions", "Open server transactions.",
	           (double)st.transactions);
	prom_gauge(&p, "sipnat_draining", "1 while new dialogs are refused with 503.",
	           proxy_is_draining(d->proxy) ? 1 : 0);
	/* What a certificate renewal needs alerting on (as Prometheus'
	 * own prometheus_config_last_reload_successful). */
	prom_family(&p, "sipnat_config_reloads_total", PROM_COUNTER,
	            "Reloads (SIGHUP, sipnatctl reload) by outcome: applied, partial (applied "
	            "except some parts), refused (the running configuration stayed).");
	prom_sample(&p, "sipnat_config_reloads_total",
	            (const struct prom_label[]){{"result", "applied"}}, 1,
	            (double)d->reloads_applied);
	prom_sample(&p, "sipnat_config_reloads_total",
	            (const struct prom_label[]){{"result", "partial"}}, 1,
	            (double)d->reloads_partial);
	prom_sample(&p, "sipnat_config_reloads_total",
	            (const struct prom_label[]){{"result", "refused"}}, 1,
	            (double)d->reloads_refused);
	prom_gauge(&p, "sipnat_config_last_reload_successful",
	           "0 when the last reload was refused or applied only in part.",
	           d->last_reload_failed ? 0 : 1);
	prom_gauge(&p, "sipnat_config_last_reload_success_timestamp_seconds",
	           "Unix time of the start or of the last reload applied in full.",
	           (double)d->last_reload_ok);

	prom_family(&p, "sipnat_registrations", PROM_GAUGE,
	            "Device bindings kept, by transport and NAT verdict.");
	for (int t = CFG_TP_UDP; t <= CFG_TP_TLS; t++) {
		for (int nat = 0; nat <= 1; nat++) {
			const struct prom_label l[] = {
			        {"nat", nat ? "yes" : "no"},
			        {"transport", cfg_transport_name((enum cfg_transport)t)},
			};
			prom_sample(&p, "sipnat_registrations", l, 2, (double)rc.n[t][nat]);
		}
	}
	prom_gauge(&p, "sipnat_keepalive_failures",
	           "Devices that stopped answering keepalives (unreachable).",
	           (double)rc.unreachable);

	prom_family(&p, "sipnat_upstream_up", PROM_GAUGE,
	            "1 when the upstream is in use, 0 while held down after a timeout or 503.");
	for (size_t i = 0; i < n_up && i < CFG_MAX_UPSTREAM; i++)
		prom_sample(&p, "sipnat_upstream_up",
		            (const struct prom_label[]){{"uri", up[i].uri ? up[i].uri : ""}}, 1,
		            up[i].healthy ? 1 : 0);

	prom_gauge(&p, "sipnat_calls_active", "Calls whose media goes through the relay.",
	           m ? (double)media_active_calls(m) : 0);
	prom_counter(&p, "sipnat_calls_completed_total", "Relayed calls that have ended.",
	             m ? media_completed_calls(m) : 0);
	if (m) {
		const struct media_quality *q = media_quality(m);
		prom_counter(&p, "sipnat_relay_latches_total",
		             "Relay sockets latched or re-latched to a party's address.",
		             media_latches(m));
		prom_family(&p, "sipnat_rtcp_loss_percent", PROM_HISTOGRAM,
		            "Last RTCP fraction lost per stream of finished calls, as reported "
		            "by the receiving party.");
		prom_histogram(&p, "sipnat_rtcp_loss_percent", NULL, 0, &q->loss_pct);
		prom_family(&p, "sipnat_rtcp_jitter_ms", PROM_HISTOGRAM,
		            "Largest RTCP interarrival jitter per stream of finished calls, ms.");
		prom_histogram(&p, "sipnat_rtcp_jitter_ms", NULL, 0, &q->jitter_ms);
	}

	if (d->relay) {
		struct relay_counters rc2;
		relay_get_counters(d->relay, &rc2);
		prom_counter(&p, "sipnat_relay_received_packets_total",
		             "Datagrams read by the media relay.", rc2.rx_packets);
		prom_counter(&p, "sipnat_relay_received_bytes_total",
		             "Bytes read by the media relay.", rc2.rx_bytes);
		prom_counter(&p, "sipnat_relay_forwarded_packets_total",
		             "Datagrams the media relay forwarded.", rc2.fwd_packets);
		prom_counter(&p, "sipnat_relay_forwarded_bytes_total",
		             "Bytes the media relay forwarded.", rc2.fwd_bytes);
		prom_family(&p, "sipnat_relay_dropped_packets_total", PROM_COUNTER,
		            "Datagrams the media relay dropped, by reason.");
		const struct {
			const char *reason;
			uint64_t v;
		} drops[] = {
		        {"foreign_source", rc2.dropped_foreign},
		        {"no_session", rc2.dropped_no_remote},
		        {"send_failed", rc2.dropped_send},
		        {"read_error", rc2.dropped_error},
		};
		for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++)
			prom_sample(&p, "sipnat_relay_dropped_packets_total",
			            (const struct prom_label[]){{"reason", drops[i].reason}}, 1,
			            (double)drops[i].v);
		prom_counter(&p, "sipnat_relay_pool_exhausted_total",
		             "Port pair requests refused because the pool was empty.",
		             rc2.pool_exhausted);
		prom_gauge(&p, "sipnat_relay_sessions", "Open relay sessions.",
		           (double)rc2.sessions);
		prom_gauge(&p, "sipnat_relay_port_pairs_used",
		           "Port pairs in use (calls and TURN).", (double)rc2.port_pairs_used);
		prom_gauge(&p, "sipnat_relay_port_pairs", "Port pairs in the pool.",
		           (double)rc2.port_pairs_total);
		prom_gauge(&p, "sipnat_relay_loop_lag_seconds",
		           "How late the most loaded relay loop ran its last 0.5 s timer tick.",
		           (double)rc2.loop_lag_max_ns / 1e9);
	}
	if (d->turn) {
		struct turn_counters tc;
		turn_get_counters(d->turn, &tc);
		prom_gauge(&p, "sipnat_turn_allocations", "Open TURN allocations.",
		           (double)tc.allocations);
		prom_counter(&p, "sipnat_turn_allocations_total",
		             "Successful TURN Allocate requests.", tc.alloc_ok);
		prom_counter(&p, "sipnat_stun_bindings_total", "STUN Binding requests answered.",
		             tc.binding);
		prom_family(&p, "sipnat_turn_errors_total", PROM_COUNTER,
		            "TURN requests refused, by error code (401: authentication).");
		const struct {
			const char *code;
			uint64_t v;
		} errs[] = {
		        {"400", tc.err_400}, {"401", tc.err_401}, {"403", tc.err_403},
		        {"420", tc.err_420}, {"437", tc.err_437}, {"438", tc.err_438},
		        {"440", tc.err_440}, {"441", tc.err_441}, {"442", tc.err_442},
		        {"486", tc.err_486}, {"508", tc.err_508},
		};
		for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++)
			prom_sample(&p, "sipnat_turn_errors_total",
			            (const struct prom_label[]){{"code", errs[i].code}}, 1,
			            (double)errs[i].v);
		prom_counter(&p, "sipnat_turn_ratelimited_total",
		             "Unauthenticated requests dropped by the per-source rate limit.",
		             tc.ratelimited);
		prom_counter(
		        &p, "sipnat_turn_peer_denied_total",
		        "Permissions and packets refused because the peer is in a denied range.",
		        tc.peer_denied);
		prom_counter(&p, "sipnat_turn_relayed_packets_total",
		             "Packets relayed to peers and back to clients.",
		             tc.to_peer_packets + tc.to_client_packets);
		prom_counter(&p, "sipnat_tls_handshakes_total", "TLS handshakes completed (TURN).",
		             tc.tls_handshakes);
		prom_counter(&p, "sipnat_tls_handshake_failures_total",
		             "TLS handshakes that failed (TURN).", tc.tls_failures);
	}
	return prom_finish(&p, text, len);
}

static int op_metrics(void *arg, char **text, size_t *len)
{
	return daemon_metrics(arg, text, len);
}

const struct ctl_ops daemon_ctl_ops = {
        .status = op_status,
        .registrations = op_registrations,
        .calls = op_calls,
        .turn = op_turn,
        .reload = op_reload,
        .drain = op_drain,
        .hangup = op_hangup,
        .loglevel = op_loglevel,
        .metrics = op_metrics,
};
