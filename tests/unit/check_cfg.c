/* Unit tests for cfg: built-in defaults, every key of a good file, and every
 * way a file can be wrong, with the line number the problem is reported at.
 *
 * Most tests feed a string through cfg_load_string() and collect the
 * problems reported through the callback; cfg_load() is exercised on
 * temporary files.  Addresses are RFC 5737 / RFC 3849 documentation ones.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sipnat/cfg.h"
#include "sipnat/natd.h"

#define MAX_PROBLEMS 64

struct problem {
	char file[64];
	unsigned line;
	char reason[512];
};

struct problems {
	struct problem p[MAX_PROBLEMS];
	size_t n;
};

static void collect(void *arg, const char *file, unsigned line, const char *reason)
{
	struct problems *ps = arg;
	struct problem *p;

	ck_assert_ptr_nonnull(reason);
	ck_assert_uint_lt(ps->n, MAX_PROBLEMS);
	p = &ps->p[ps->n++];
	snprintf(p->file, sizeof p->file, "%s", file ? file : "(null)");
	p->line = line;
	snprintf(p->reason, sizeof p->reason, "%s", reason);
}

/* Loads text that must be accepted without a single problem. */
static struct cfg *good(const char *text)
{
	struct problems ps = {.n = 0};
	struct cfg *c = NULL;
	int r = cfg_load_string(text, "good.conf", &c, collect, &ps);

	if (ps.n)
		ck_abort_msg("unexpected problem at line %u: %s", ps.p[0].line, ps.p[0].reason);
	ck_assert_int_eq(r, 0);
	ck_assert_ptr_nonnull(c);
	return c;
}

/* Loads text that must be refused with -EINVAL; the problems land in *ps. */
static void bad(const char *text, struct problems *ps)
{
	struct cfg *c = (struct cfg *)0x1;
	int r;

	ps->n = 0;
	r = cfg_load_string(text, "bad.conf", &c, collect, ps);
	ck_assert_int_eq(r, -EINVAL);
	/* *out is written only on success. */
	ck_assert_ptr_eq(c, (struct cfg *)0x1);
	ck_assert_uint_ge(ps->n, 1);
}

/* A file with exactly one problem, at line, whose reason contains needle. */
static void bad1(const char *text, unsigned line, const char *needle)
{
	struct problems ps;

	bad(text, &ps);
	if (ps.n != 1)
		ck_abort_msg("%zu problems for \"%s\", first at line %u: %s", ps.n, text,
		             ps.p[0].line, ps.p[0].reason);
	ck_assert_str_eq(ps.p[0].file, "bad.conf");
	ck_assert_msg(ps.p[0].line == line, "\"%s\": reported at line %u, expected %u (%s)", text,
	              ps.p[0].line, line, ps.p[0].reason);
	ck_assert_msg(strstr(ps.p[0].reason, needle) != NULL, "\"%s\": reason '%s' lacks '%s'",
	              text, ps.p[0].reason, needle);
}

/* True if some problem is at line and mentions needle. */
static bool has_problem(const struct problems *ps, unsigned line, const char *needle)
{
	for (size_t i = 0; i < ps->n; i++)
		if (ps->p[i].line == line && strstr(ps->p[i].reason, needle))
			return true;
	return false;
}

static void assert_listen(const struct cfg_listen *l, enum cfg_transport t, const char *host,
                          unsigned port)
{
	ck_assert_int_eq(l->transport, t);
	ck_assert_str_eq(l->host, host);
	ck_assert_uint_eq(l->port, port);
}

/* ---- defaults ---- */

static void assert_defaults(const struct cfg *c)
{
	ck_assert_uint_eq(c->sip.n_listen, 2);
	assert_listen(&c->sip.listen[0], CFG_TP_UDP, "0.0.0.0", 5060);
	assert_listen(&c->sip.listen[1], CFG_TP_TCP, "0.0.0.0", 5060);
	ck_assert_uint_eq(c->sip.n_upstream, 0);
	ck_assert_uint_eq(c->sip.n_domain, 0);
	ck_assert_ptr_null(c->sip.advertise);
	ck_assert_ptr_null(c->sip.tls_cert);
	ck_assert_ptr_null(c->sip.tls_key);
	ck_assert_uint_eq(c->sip.failover_timeout, 5);
	ck_assert_uint_eq(c->sip.shutdown_timeout, 10);
	ck_assert_uint_eq(c->sip.transaction_timeout, 32); /* RFC 3261: 64 * T1 */
	ck_assert_uint_eq(c->sip.nat_detect, NATD_DEFAULT);
	ck_assert(c->sip.path);
	ck_assert_int_eq(c->sip.keepalive, CFG_KA_OPTIONS);
	ck_assert_uint_eq(c->sip.keepalive_interval, 20);
	ck_assert_uint_eq(c->sip.keepalive_failures, 3);
	ck_assert_str_eq(c->sip.state_dir, "/var/lib/sipnat");
	ck_assert_ptr_null(c->sip.flow_secret);
	ck_assert_uint_eq(c->relay.n_addr, 0);
	ck_assert_uint_eq(c->relay.port_min, 30000);
	ck_assert_uint_eq(c->relay.port_max, 39999);
	ck_assert_uint_eq(c->relay.threads, 0);
	ck_assert_uint_eq(c->relay.timeout, 60);
	ck_assert(!c->relay.strip_private_candidates);
	ck_assert_int_eq(c->relay.mode, CFG_RELAY_ALWAYS);
	ck_assert_str_eq(c->control.socket, "/run/sipnat/control.sock");
	ck_assert_uint_eq(c->control.socket_mode, 0660);
	ck_assert_uint_eq(c->control.metrics_port, 0);
	ck_assert_int_eq(c->log.level, CFG_LOG_INFO);
	ck_assert_int_eq(c->log.target, CFG_LOG_STDERR);
}

START_TEST(defaults_builtin)
{
	struct cfg *c = NULL;

	ck_assert_int_eq(cfg_defaults(&c), 0);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_null(c->path);
	assert_defaults(c);
	cfg_free(c);
}
END_TEST

START_TEST(defaults_empty_file)
{
	struct cfg *c;

	/* An empty file, only comments, or empty sections change nothing. */
	c = good("");
	assert_defaults(c);
	ck_assert_str_eq(c->path, "good.conf");
	cfg_free(c);
	c = good("; nothing\n# nothing either\n\n[sip]\n[log]\n");
	assert_defaults(c);
	cfg_free(c);
}
END_TEST

START_TEST(defaults_free_null)
{
	cfg_free(NULL);
}
END_TEST

START_TEST(defaults_names)
{
	ck_assert_str_eq(cfg_transport_name(CFG_TP_UDP), "udp");
	ck_assert_str_eq(cfg_transport_name(CFG_TP_TCP), "tcp");
	ck_assert_str_eq(cfg_transport_name(CFG_TP_TLS), "tls");
	ck_assert_str_eq(cfg_log_level_name(CFG_LOG_ERROR), "error");
	ck_assert_str_eq(cfg_log_level_name(CFG_LOG_WARN), "warn");
	ck_assert_str_eq(cfg_log_level_name(CFG_LOG_INFO), "info");
	ck_assert_str_eq(cfg_log_level_name(CFG_LOG_DEBUG), "debug");
}
END_TEST

/* ---- good files ---- */

START_TEST(good_full)
{
	struct cfg *c =
	        good("; a complete file\n"
	             "[sip]\n"
	             "listen = udp:192.0.2.10:5060 tcp:[2001:db8::10]:5080\n"
	             "listen = tls:0.0.0.0:5061\n"
	             "upstream = sip:pbx.example.com sips:198.51.100.20:5061;transport=tls\n"
	             "upstream = sip:trunk@203.0.113.5:5070\n"
	             "domain = example.com voip.example.com\n"
	             "advertise = 192.0.2.10\n"
	             "tls_cert = /etc/sipnat/cert.pem\n"
	             "tls_key = /etc/sipnat/key.pem\n"
	             "failover_timeout = 300\n"
	             "shutdown_timeout = 0\n"
	             "[log]\n"
	             "level = debug\n"
	             "target = syslog\n");

	ck_assert_uint_eq(c->sip.n_listen, 3);
	assert_listen(&c->sip.listen[0], CFG_TP_UDP, "192.0.2.10", 5060);
	assert_listen(&c->sip.listen[1], CFG_TP_TCP, "2001:db8::10", 5080);
	assert_listen(&c->sip.listen[2], CFG_TP_TLS, "0.0.0.0", 5061);
	ck_assert_uint_eq(c->sip.n_upstream, 3);
	ck_assert_str_eq(c->sip.upstream[0], "sip:pbx.example.com");
	ck_assert_str_eq(c->sip.upstream[1], "sips:198.51.100.20:5061;transport=tls");
	ck_assert_str_eq(c->sip.upstream[2], "sip:trunk@203.0.113.5:5070");
	ck_assert_uint_eq(c->sip.n_domain, 2);
	ck_assert_str_eq(c->sip.domain[0], "example.com");
	ck_assert_str_eq(c->sip.domain[1], "voip.example.com");
	ck_assert_str_eq(c->sip.advertise, "192.0.2.10");
	ck_assert_str_eq(c->sip.tls_cert, "/etc/sipnat/cert.pem");
	ck_assert_str_eq(c->sip.tls_key, "/etc/sipnat/key.pem");
	ck_assert_uint_eq(c->sip.failover_timeout, 300);
	ck_assert_uint_eq(c->sip.shutdown_timeout, 0);
	ck_assert_int_eq(c->log.level, CFG_LOG_DEBUG);
	ck_assert_int_eq(c->log.target, CFG_LOG_SYSLOG);
	cfg_free(c);
}
END_TEST

START_TEST(good_listen_replaces_then_appends)
{
	struct cfg *c;

	/* The first listen in a file replaces the two default listeners. */
	c = good("[sip]\nlisten = udp:[::1]:5060\n");
	ck_assert_uint_eq(c->sip.n_listen, 1);
	assert_listen(&c->sip.listen[0], CFG_TP_UDP, "::1", 5060);
	cfg_free(c);

	/* Separators: blanks, tabs and commas; transports in any case. */
	c = good("[sip]\nlisten = UDP:192.0.2.1:1,\tTcp:192.0.2.1:65535 , udp:[::]:5060\n"
	         "listen = tcp:[2001:db8::1]:5060\n");
	ck_assert_uint_eq(c->sip.n_listen, 4);
	assert_listen(&c->sip.listen[0], CFG_TP_UDP, "192.0.2.1", 1);
	assert_listen(&c->sip.listen[1], CFG_TP_TCP, "192.0.2.1", 65535);
	assert_listen(&c->sip.listen[2], CFG_TP_UDP, "::", 5060);
	assert_listen(&c->sip.listen[3], CFG_TP_TCP, "2001:db8::1", 5060);
	cfg_free(c);
}
END_TEST

START_TEST(good_upstream_appends)
{
	struct cfg *c;

	c = good("[sip]\nupstream = sip:192.0.2.1\n[log]\nlevel = info\n[sip]\n"
	         "upstream = sip:192.0.2.2 sip:192.0.2.3\nupstream = sip:192.0.2.1\n");
	ck_assert_uint_eq(c->sip.n_upstream, 4);
	ck_assert_str_eq(c->sip.upstream[0], "sip:192.0.2.1");
	ck_assert_str_eq(c->sip.upstream[1], "sip:192.0.2.2");
	ck_assert_str_eq(c->sip.upstream[2], "sip:192.0.2.3");
	ck_assert_str_eq(c->sip.upstream[3], "sip:192.0.2.1");
	cfg_free(c);

	/* Exactly the maximum is fine. */
	c = good("[sip]\nupstream = sip:a sip:b sip:c sip:d\nupstream = sip:e sip:f sip:g sip:h\n");
	ck_assert_uint_eq(c->sip.n_upstream, CFG_MAX_UPSTREAM);
	ck_assert_str_eq(c->sip.upstream[7], "sip:h");
	cfg_free(c);

	c = good("[sip]\ndomain = a.example\ndomain = b.example, c.example\n");
	ck_assert_uint_eq(c->sip.n_domain, 3);
	ck_assert_str_eq(c->sip.domain[2], "c.example");
	cfg_free(c);
}
END_TEST

START_TEST(good_upstream_forms)
{
	static const char *const ok[] = {
	        "sip:pbx.example.com",
	        "SIP:pbx.example.com",
	        "sips:pbx.example.com",
	        "sip:192.0.2.1:5070",
	        "sip:[2001:db8::1]:5060",
	        "sip:trunk@pbx.example.com",
	        "sip:pbx.example.com;transport=tcp",
	        "sips:198.51.100.1:5061;transport=tls;lr",
	};
	char text[256];

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct cfg *c;
		/* TLS to an upstream needs a tls listener (see tls_upstream). */
		snprintf(text, sizeof text,
		         "[sip]\nupstream = %s\nlisten = tls:0.0.0.0:5061\ntls_cert = /c.pem\n"
		         "tls_key = /k.pem\n",
		         ok[i]);
		c = good(text);
		ck_assert_uint_eq(c->sip.n_upstream, 1);
		ck_assert_str_eq(c->sip.upstream[0], ok[i]);
		cfg_free(c);
	}
}
END_TEST

START_TEST(transaction_timeout_range)
{
	struct cfg *c = good("[sip]\ntransaction_timeout = 8\n");

	ck_assert_uint_eq(c->sip.transaction_timeout, 8);
	cfg_free(c);
	bad1("[sip]\ntransaction_timeout = 1\n", 2, "transaction_timeout");
	bad1("[sip]\ntransaction_timeout = 65\n", 2, "transaction_timeout");
}
END_TEST

START_TEST(tls_upstream)
{
	struct cfg *c;

	ck_assert(cfg_uri_is_tls("sips:pbx.example.com"));
	ck_assert(cfg_uri_is_tls("SIPS:198.51.100.1"));
	ck_assert(cfg_uri_is_tls("sip:pbx.example.com;transport=tls"));
	ck_assert(cfg_uri_is_tls("sip:pbx.example.com;lr;transport=TLS"));
	ck_assert(!cfg_uri_is_tls("sip:pbx.example.com"));
	ck_assert(!cfg_uri_is_tls("sip:pbx.example.com;transport=tcp"));
	ck_assert(!cfg_uri_is_tls("sip:pbx.example.com;transport=tlsx"));
	ck_assert(!cfg_uri_is_tls("sip:tls@pbx.example.com"));
	/* Sofia opens TLS connections from a TLS listener's transport. */
	bad1("[sip]\nupstream = sips:pbx.example.com\n", 0,
	     "upstream sips:pbx.example.com is reached over TLS, which needs a tls listener");
	bad1("[sip]\nupstream = sip:192.0.2.1;transport=tls\n", 0, "needs a tls listener");
	bad1("[sip]\ntls_ca = /etc/ssl/certs/ca-certificates.crt\n", 0,
	     "tls_ca verifies upstreams reached over TLS");
	c = good("[sip]\nlisten = tls:0.0.0.0:5061\ntls_cert = /c.pem\ntls_key = /k.pem\n"
	         "tls_ca = /etc/ssl/certs/ca-certificates.crt\nupstream = sips:pbx.example.com\n");
	ck_assert_str_eq(c->sip.tls_ca, "/etc/ssl/certs/ca-certificates.crt");
	cfg_free(c);
	c = good("[sip]\nupstream = sip:pbx.example.com\n");
	ck_assert_ptr_null(c->sip.tls_ca); /* not verified unless asked */
	cfg_free(c);
}
END_TEST

START_TEST(call_log_path)
{
	struct cfg *c = good("[log]\ncall_log = /var/log/sipnat/calls.json\n");

	ck_assert_str_eq(c->log.call_log, "/var/log/sipnat/calls.json");
	cfg_free(c);
	c = good("[log]\ncall_log = /tmp/a.json\ncall_log = /tmp/b.json\n");
	ck_assert_str_eq(c->log.call_log, "/tmp/b.json"); /* the last line wins */
	cfg_free(c);
	c = good("[log]\nlevel = info\n");
	ck_assert_ptr_null(c->log.call_log); /* off by default */
	cfg_free(c);
	/* relative to what?  A daemon's working directory is / */
	bad1("[log]\ncall_log = calls.json\n", 2, "call_log: expected an absolute path");
}
END_TEST

START_TEST(good_scalars_last_wins)
{
	struct cfg *c =
	        good("[sip]\nadvertise = 192.0.2.1\nadvertise = sip.example.com\n"
	             "failover_timeout = 1\nfailover_timeout = 7\n"
	             "shutdown_timeout = 600\n"
	             "[log]\nlevel = error\nlevel = WARN\ntarget = syslog\ntarget = Stderr\n");

	ck_assert_str_eq(c->sip.advertise, "sip.example.com");
	ck_assert_uint_eq(c->sip.failover_timeout, 7);
	ck_assert_uint_eq(c->sip.shutdown_timeout, 600);
	ck_assert_int_eq(c->log.level, CFG_LOG_WARN);
	ck_assert_int_eq(c->log.target, CFG_LOG_STDERR);
	cfg_free(c);
}
END_TEST

START_TEST(good_log_levels)
{
	static const struct {
		const char *word;
		enum cfg_log_level level;
	} t[] = {
	        {"error", CFG_LOG_ERROR}, {"warn", CFG_LOG_WARN},   {"warning", CFG_LOG_WARN},
	        {"info", CFG_LOG_INFO},   {"debug", CFG_LOG_DEBUG}, {"DEBUG", CFG_LOG_DEBUG},
	};
	char text[128];

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct cfg *c;
		/* Start from a level other than the expected one. */
		snprintf(text, sizeof text, "[log]\nlevel = %s\nlevel = %s\n",
		         t[i].level == CFG_LOG_ERROR ? "debug" : "error", t[i].word);
		c = good(text);
		ck_assert_int_eq(c->log.level, t[i].level);
		cfg_free(c);
	}
}
END_TEST

START_TEST(good_comments)
{
	/* ';' after a blank starts a comment; ';' inside a word does not
	 * (URI parameters).  '#' and ';' start a comment at line start. */
	struct cfg *c = good("# header\n"
	                     "; another\n"
	                     "[sip] ; the SIP side\n"
	                     "upstream = sip:192.0.2.1;transport=tcp ; the PBX\n"
	                     "  ; indented comment\n"
	                     "failover_timeout = 9\t; seconds\n"
	                     "[log]\n"
	                     "level = debug ;;; loud\n");

	ck_assert_uint_eq(c->sip.n_upstream, 1);
	ck_assert_str_eq(c->sip.upstream[0], "sip:192.0.2.1;transport=tcp");
	ck_assert_uint_eq(c->sip.failover_timeout, 9);
	ck_assert_int_eq(c->log.level, CFG_LOG_DEBUG);
	cfg_free(c);
}
END_TEST

START_TEST(good_continuation)
{
	/* inih's continuation lines: an indented line after a key adds to
	 * that key, so a long list can be split over several lines. */
	struct cfg *c = good("[sip]\n"
	                     "upstream = sip:192.0.2.1\n"
	                     "    sip:192.0.2.2\n"
	                     "\tsip:192.0.2.3 sip:192.0.2.4\n"
	                     "[log]\n"
	                     "level = error\n");

	ck_assert_uint_eq(c->sip.n_upstream, 4);
	ck_assert_str_eq(c->sip.upstream[3], "sip:192.0.2.4");
	cfg_free(c);
}
END_TEST

START_TEST(good_line_endings)
{
	/* CRLF files and a last line without a newline. */
	struct cfg *c = good("[sip]\r\nfailover_timeout = 8\r\n[log]\r\nlevel = debug");

	ck_assert_uint_eq(c->sip.failover_timeout, 8);
	ck_assert_int_eq(c->log.level, CFG_LOG_DEBUG);
	cfg_free(c);
}
END_TEST

START_TEST(good_tls)
{
	struct cfg *c;

	c = good("[sip]\nlisten = tls:[::]:5061\ntls_key = k.pem\ntls_cert = c.pem\n");
	assert_listen(&c->sip.listen[0], CFG_TP_TLS, "::", 5061);
	ck_assert_str_eq(c->sip.tls_cert, "c.pem");
	ck_assert_str_eq(c->sip.tls_key, "k.pem");
	cfg_free(c);

	/* A certificate without a tls listener is allowed (kept for later). */
	c = good("[sip]\ntls_cert = c.pem\ntls_key = k.pem\n");
	ck_assert_uint_eq(c->sip.n_listen, 2);
	cfg_free(c);
}
END_TEST

START_TEST(good_nat_keys)
{
	struct cfg *c = good("[sip]\nnat_detect = via_addr, source_private\npath = no\n"
	                     "keepalive = crlf\nkeepalive_interval = 3600\nkeepalive_failures = 1\n"
	                     "state_dir = /tmp/sipnat-state\n"
	                     "flow_secret = 0123456789abcdef\n");

	ck_assert_uint_eq(c->sip.nat_detect, NATD_VIA_ADDR | NATD_SRC_PRIV);
	ck_assert(!c->sip.path);
	ck_assert_int_eq(c->sip.keepalive, CFG_KA_CRLF);
	ck_assert_uint_eq(c->sip.keepalive_interval, 3600);
	ck_assert_uint_eq(c->sip.keepalive_failures, 1);
	ck_assert_str_eq(c->sip.state_dir, "/tmp/sipnat-state");
	ck_assert_str_eq(c->sip.flow_secret, "0123456789abcdef");
	cfg_free(c);

	c = good("[sip]\nnat_detect = none\npath = yes\nkeepalive = off\n");
	ck_assert_uint_eq(c->sip.nat_detect, 0);
	ck_assert(c->sip.path);
	ck_assert_int_eq(c->sip.keepalive, CFG_KA_OFF);
	cfg_free(c);
}
END_TEST

START_TEST(good_relay_control)
{
	struct cfg *c =
	        good("[relay]\naddress = 203.0.113.10 2001:db8::10\naddress = 198.51.100.1\n"
	             "ports = 20000-20003\nthreads = 4\ntimeout = 0\n"
	             "strip_private_candidates = yes\nmode = nat\n"
	             "[control]\nsocket = /tmp/sipnat.sock\nsocket_mode = 0600\n"
	             "metrics = [::1]:9090\n");

	ck_assert_uint_eq(c->relay.n_addr, 3);
	ck_assert_str_eq(c->relay.addr[0], "203.0.113.10");
	ck_assert_str_eq(c->relay.addr[1], "2001:db8::10");
	ck_assert_str_eq(c->relay.addr[2], "198.51.100.1");
	ck_assert_uint_eq(c->relay.port_min, 20000);
	ck_assert_uint_eq(c->relay.port_max, 20003);
	ck_assert_uint_eq(c->relay.threads, 4);
	ck_assert_uint_eq(c->relay.timeout, 0);
	ck_assert(c->relay.strip_private_candidates);
	ck_assert_int_eq(c->relay.mode, CFG_RELAY_NAT);
	ck_assert_str_eq(c->control.socket, "/tmp/sipnat.sock");
	ck_assert_uint_eq(c->control.socket_mode, 0600);
	ck_assert_str_eq(c->control.metrics_host, "::1");
	ck_assert_uint_eq(c->control.metrics_port, 9090);
	cfg_free(c);

	c = good("[relay]\nmode = never\n[control]\nmetrics = 127.0.0.1:9090\nmetrics = off\n");
	ck_assert_int_eq(c->relay.mode, CFG_RELAY_NEVER);
	ck_assert_uint_eq(c->control.metrics_port, 0);
	cfg_free(c);
}
END_TEST

START_TEST(err_relay_control)
{
	bad1("[relay]\naddress = relay.example.com\n", 2, "not a numeric IPv4 or IPv6 address");
	bad1("[relay]\naddress = 192.0.2.1 192.0.2.2 192.0.2.3 192.0.2.4 192.0.2.5\n", 2,
	     "at most 4 addresses");
	bad1("[relay]\nports = 1023-2000\n", 2, "ports:");
	bad1("[relay]\nports = 30000-30002\n", 2, "ports:");
	bad1("[relay]\nports = 40000-30000\n", 2, "ports:");
	bad1("[relay]\nports = 30000-70000\n", 2, "ports:");
	bad1("[relay]\nports = 30000\n", 2, "ports:");
	bad1("[relay]\nports = 30000-39999x\n", 2, "ports:");
	bad1("[relay]\nthreads = 257\n", 2, "expected a whole number");
	bad1("[relay]\ntimeout = 86401\n", 2, "expected a whole number");
	bad1("[relay]\nstrip_private_candidates = perhaps\n", 2, "expected yes or no");
	bad1("[relay]\nmode = sometimes\n", 2, "mode: expected always, nat or never");
	bad1("[relay]\nport = 1\n", 2, "unknown key 'port' in section [relay]");
	bad1("[control]\nsocket_mode = 0999\n", 2, "socket_mode:");
	bad1("[control]\nsocket_mode = 01000\n", 2, "socket_mode:");
	bad1("[control]\nmetrics = 9090\n", 2, "metrics:");
	bad1("[control]\nmetrics = ::1:9090\n", 2, "metrics:");
	bad1("[control]\nmetrics = localhost:9090\n", 2, "metrics:");
	bad1("[control]\nuser = sipnat\n", 2, "unknown key 'user' in section [control]");
}
END_TEST

/* ---- errors, each with its line ---- */

START_TEST(err_structure)
{
	bad1("[sip]\nfailover_timeout = 5\n[media]\nport = 1\n", 4, "unknown section [media]");
	bad1("[sip]\nlisten_on = udp:192.0.2.1:5060\n", 2, "unknown key 'listen_on'");
	bad1("\n[log]\nlevel = info\nfile = /var/log/x\n", 4,
	     "unknown key 'file' in section [log]");
	bad1("level = info\n[log]\n", 1, "outside of any [section]");
	bad1("[sip]\n\nadvertise =\n", 3, "'advertise' has no value");
	bad1("[sip]\nadvertise = ; only a comment\n", 2, "'advertise' has no value");
	/* Keys are case-sensitive. */
	bad1("[sip]\nUpstream = sip:192.0.2.1\n", 2, "unknown key 'Upstream'");
}
END_TEST

START_TEST(err_syntax)
{
	struct problems ps;

	bad1("[sip]\nfailover_timeout = 5\nthis line has no equals sign\n", 3, "syntax error");
	/* A broken section header: the syntax error, and the key after it
	 * belongs to no section. */
	bad("[sip\nfailover_timeout = 5\n", &ps);
	ck_assert_uint_eq(ps.n, 2);
	ck_assert(has_problem(&ps, 1, "syntax error"));
	ck_assert(has_problem(&ps, 2, "outside of any [section]"));
	bad1("[log]\r\nlevel = info\r\n\r\n= debug\r\n", 4, "syntax error");
}
END_TEST

START_TEST(err_listen_items)
{
	static const struct {
		const char *item;
		const char *why;
	} t[] = {
	        {"sctp:192.0.2.1:5060", "transport"},
	        {"ud:192.0.2.1:5060", "transport"},
	        {"udpx:192.0.2.1:5060", "transport"},
	        {":192.0.2.1:5060", "transport"},
	        {"udp", "transport:address:port"},
	        {"udp:192.0.2.1", "missing port"},
	        {"udp:192.0.2.1:", "port"},
	        {"udp:192.0.2.1:0", "port"},
	        {"udp:192.0.2.1:65536", "port"},
	        {"udp:192.0.2.1:99999999999999999999", "port"},
	        {"udp:192.0.2.1:-1", "port"},
	        {"udp:192.0.2.1:-18446744073709551614", "port"},
	        {"udp:192.0.2.1:+5060", "port"},
	        {"udp:192.0.2.1:50x", "port"},
	        {"udp:sip.example.com:5060", "numeric"},
	        {"udp:192.0.2.300:5060", "numeric"},
	        {"udp::5060", "address"},
	        {"udp:[::1]", "[addr]:port"},
	        {"udp:[::1]5060", "[addr]:port"},
	        {"udp:[::1:5060", "[addr]:port"},
	        {"udp:[]:5060", "address"},
	        {"udp:[sip.example.com]:5060", "numeric"},
	        {"udp:::1:5060", "[addr]:port"},
	        {"tcp:2001:db8::1:5060", "[addr]:port"},
	        {"udp:1234567890123456789012345678901234567890123456789012345678901234:5060",
	         "address"},
	};
	char text[256];

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct problems ps;
		snprintf(text, sizeof text, "[sip]\nlisten = udp:192.0.2.1:5060 %s\n", t[i].item);
		bad(text, &ps);
		ck_assert_msg(ps.n == 1, "'%s': %zu problems", t[i].item, ps.n);
		ck_assert_msg(ps.p[0].line == 2, "'%s': line %u", t[i].item, ps.p[0].line);
		ck_assert_msg(strstr(ps.p[0].reason, t[i].item) != NULL, "'%s' not named in '%s'",
		              t[i].item, ps.p[0].reason);
		ck_assert_msg(strstr(ps.p[0].reason, t[i].why) != NULL, "'%s': '%s' lacks '%s'",
		              t[i].item, ps.p[0].reason, t[i].why);
	}
}
END_TEST

START_TEST(err_listen_none_left)
{
	struct problems ps;

	/* The only listen item is bad: the item at its line, and "no
	 * listener" (not tied to a line) at line 0. */
	bad("[sip]\nlisten = udp:192.0.2.1:0\n", &ps);
	ck_assert_uint_eq(ps.n, 2);
	ck_assert(has_problem(&ps, 2, "port"));
	ck_assert(has_problem(&ps, 0, "at least one listener"));

	bad1("[sip]\nlisten = , ,\n", 0, "at least one listener");
}
END_TEST

START_TEST(err_listen_too_many)
{
	char text[1024] = "[sip]\n";

	/* Sixteen on eight lines are fine; the seventeenth is refused at its
	 * own line. */
	for (unsigned i = 0; i < CFG_MAX_LISTEN; i += 2) {
		char line[80];
		snprintf(line, sizeof line, "listen = udp:192.0.2.1:%u tcp:192.0.2.1:%u\n",
		         5000 + i, 5000 + i);
		strcat(text, line);
	}
	struct cfg *c = good(text);
	ck_assert_uint_eq(c->sip.n_listen, CFG_MAX_LISTEN);
	cfg_free(c);
	strcat(text, "listen = udp:192.0.2.2:5060\n");
	bad1(text, 2 + CFG_MAX_LISTEN / 2, "at most 16 listeners");
}
END_TEST

START_TEST(err_upstream)
{
	static const char *const no[] = {
	        "pbx.example.com", "http://pbx.example.com", "sip:",      "sips:",
	        "sip::5060",       "sip:;transport=tcp",     "sip:user@", "sip:<pbx.example.com>",
	        "sip:\"pbx\"",     "tel:+15551234",
	};
	char text[256];

	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
		snprintf(text, sizeof text, "[sip]\n\n\nupstream = sip:192.0.2.1 %s\n", no[i]);
		bad1(text, 4, "not a sip: or sips: URI");
	}
	bad1("[sip]\nupstream = sip:a sip:b sip:c sip:d sip:e\n"
	     "upstream = sip:f sip:g sip:h sip:i\n",
	     3, "at most 8 upstreams");
}
END_TEST

START_TEST(err_domain_too_many)
{
	bad1("[sip]\ndomain = a b c d e f g h\ndomain = i j k l m n o p q\n", 3,
	     "at most 16 domains");
}
END_TEST

START_TEST(err_numbers)
{
	static const struct {
		const char *key, *value;
	} t[] = {
	        {"failover_timeout", "0"},
	        {"failover_timeout", "301"},
	        {"failover_timeout", "five"},
	        {"failover_timeout", "5s"},
	        {"failover_timeout", "-5"},
	        {"failover_timeout", "-18446744073709551614"},
	        {"failover_timeout", "+5"},
	        {"failover_timeout", "4294967301"},
	        {"failover_timeout", "99999999999999999999999"},
	        {"failover_timeout", "5 6"},
	        {"shutdown_timeout", "601"},
	        {"shutdown_timeout", "-0"},
	        {"shutdown_timeout", "1.5"},
	        {"shutdown_timeout", "0x10"},
	};
	char text[256];

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		snprintf(text, sizeof text, "[sip]\n%s = %s\n", t[i].key, t[i].value);
		bad1(text, 2, "expected a whole number");
	}
}
END_TEST

START_TEST(err_log)
{
	bad1("[log]\nlevel = verbose\n", 2, "level: expected error, warn, info or debug");
	bad1("[log]\nlevel = info # loud\n", 2, "level:");
	bad1("[log]\ntarget = file\n", 2, "target: expected stderr or syslog");
	bad1("[log]\ntarget = /var/log/sipnat.log\n", 2, "target:");
}
END_TEST

START_TEST(err_nat_keys)
{
	bad1("[sip]\nnat_detect = via_addr bogus\n", 2, "nat_detect: unknown test 'bogus'");
	bad1("[sip]\npath = maybe\n", 2, "path: expected yes or no");
	bad1("[sip]\nkeepalive = ping\n", 2, "keepalive: expected options, crlf or off");
	bad1("[sip]\nkeepalive_interval = 0\n", 2, "expected a whole number");
	bad1("[sip]\nkeepalive_failures = 101\n", 2, "expected a whole number");
	bad1("[sip]\nflow_secret = short\n", 2, "at least 16 characters");
}
END_TEST

START_TEST(err_tls_pairing)
{
	/* Not tied to a line: reported at line 0. */
	bad1("[sip]\nlisten = tls:192.0.2.1:5061\n", 0, "needs both tls_cert and tls_key");
	bad1("[sip]\ntls_cert = c.pem\n", 0, "tls_cert and tls_key go together");
	bad1("[sip]\ntls_key = k.pem\n", 0, "tls_cert and tls_key go together");
}
END_TEST

START_TEST(err_tls_both_reported)
{
	struct problems ps;

	bad("[sip]\nlisten = tls:192.0.2.1:5061\ntls_key = k.pem\n", &ps);
	ck_assert_uint_eq(ps.n, 2);
	ck_assert(has_problem(&ps, 0, "needs both tls_cert and tls_key"));
	ck_assert(has_problem(&ps, 0, "go together"));
	bad("[sip]\nlisten = tls:192.0.2.1:5061\ntls_cert = c.pem\n", &ps);
	ck_assert_uint_eq(ps.n, 2);
	ck_assert(has_problem(&ps, 0, "needs both tls_cert and tls_key"));
	ck_assert(has_problem(&ps, 0, "go together"));
}
END_TEST

START_TEST(err_all_reported)
{
	struct problems ps;

	bad("[sip]\n"                                                           /* 1 */
	    "listen = udp:192.0.2.1:5060 sctp:192.0.2.1:5060 udp:192.0.2.1:0\n" /* 2 */
	    "upstream = pbx.example.com\n"                                      /* 3 */
	    "failover_timeout = 0\n"                                            /* 4 */
	    "colour = blue\n"                                                   /* 5 */
	    "this is not ini\n"                                                 /* 6 */
	    "tls_cert = c.pem\n"                                                /* 7 */
	    "[log]\n"                                                           /* 8 */
	    "level = loud\n"                                                    /* 9 */
	    "target = printer\n"                                                /* 10 */
	    "[extra]\n"                                                         /* 11 */
	    "a = 1\n",                                                          /* 12 */
	    &ps);
	ck_assert(has_problem(&ps, 2, "sctp:192.0.2.1:5060"));
	ck_assert(has_problem(&ps, 2, "udp:192.0.2.1:0"));
	ck_assert(has_problem(&ps, 3, "upstream"));
	ck_assert(has_problem(&ps, 4, "failover_timeout"));
	ck_assert(has_problem(&ps, 5, "colour"));
	ck_assert(has_problem(&ps, 6, "syntax error"));
	ck_assert(has_problem(&ps, 9, "level"));
	ck_assert(has_problem(&ps, 10, "target"));
	ck_assert(has_problem(&ps, 12, "[extra]"));
	ck_assert(has_problem(&ps, 0, "go together"));
	ck_assert_uint_eq(ps.n, 10);
}
END_TEST

START_TEST(err_long_lines)
{
	char text[2048], pad[400];
	struct cfg *c;

	memset(pad, 'x', 300);
	pad[300] = '\0';

	/* A long comment is no problem, and later line numbers stay right. */
	snprintf(text, sizeof text, "; %s\n[sip]\nfailover_timeout = 6\n[nope]\nk = v\n", pad);
	bad1(text, 5, "unknown section [nope]");
	snprintf(text, sizeof text, "[sip]\n# %s\nfailover_timeout = 6\n", pad);
	c = good(text);
	ck_assert_uint_eq(c->sip.failover_timeout, 6);
	cfg_free(c);

	/* 199 characters fit (inih's buffer), with LF or CRLF; 200 do not. */
	memset(pad, 'x', sizeof pad);
	pad[199 - strlen("advertise = ")] = '\0';
	snprintf(text, sizeof text, "[sip]\nadvertise = %s\r\nfailover_timeout = 6\n", pad);
	c = good(text);
	ck_assert_uint_eq(strlen(c->sip.advertise), 199 - strlen("advertise = "));
	ck_assert_uint_eq(c->sip.failover_timeout, 6);
	cfg_free(c);
	strcat(pad, "y");
	snprintf(text, sizeof text, "[sip]\nadvertise = %s", pad);
	bad1(text, 2, "line too long (at most 199 characters)");
	memset(pad, 'x', 300);
	pad[300] = '\0';

	/* A long key line is refused at its own line, not cut in two. */
	snprintf(text, sizeof text, "[sip]\nadvertise = %s\nfailover_timeout = 0\n", pad);
	{
		struct problems ps;
		bad(text, &ps);
		ck_assert(has_problem(&ps, 2, "too long"));
		ck_assert(has_problem(&ps, 3, "failover_timeout"));
		for (size_t i = 0; i < ps.n; i++)
			ck_assert_msg(ps.p[i].line == 2 || ps.p[i].line == 3,
			              "problem at line %u: %s", ps.p[i].line, ps.p[i].reason);
	}
}
END_TEST

START_TEST(err_name_in_messages)
{
	struct problems ps = {.n = 0};
	struct cfg *c = NULL;

	ck_assert_int_eq(
	        cfg_load_string("[x]\na = 1\n", "/etc/sipnat/other.conf", &c, collect, &ps),
	        -EINVAL);
	ck_assert_uint_eq(ps.n, 1);
	ck_assert_str_eq(ps.p[0].file, "/etc/sipnat/other.conf");
	ck_assert_ptr_null(c);

	/* No callback: still refused, nothing crashes. */
	ck_assert_int_eq(cfg_load_string("[x]\na = 1\n", "n", &c, NULL, NULL), -EINVAL);
	ck_assert_ptr_null(c);
	/* A NULL name is allowed: path stays NULL. */
	ck_assert_int_eq(cfg_load_string("[sip]\n", NULL, &c, NULL, NULL), 0);
	ck_assert_ptr_null(c->path);
	cfg_free(c);
}
END_TEST

/* ---- cfg_load on files ---- */

static char tmpdir[64];

static void files_setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/check_cfg.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void files_teardown(void)
{
	char path[128];

	snprintf(path, sizeof path, "%s/sipnat.conf", tmpdir);
	unlink(path);
	rmdir(tmpdir);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(file_good)
{
	char path[128];
	struct problems ps = {.n = 0};
	struct cfg *c = NULL;

	snprintf(path, sizeof path, "%s/sipnat.conf", tmpdir);
	write_file(path, "[sip]\nupstream = sip:192.0.2.5\n[log]\ntarget = syslog\n");
	ck_assert_int_eq(cfg_load(path, &c, collect, &ps), 0);
	ck_assert_uint_eq(ps.n, 0);
	ck_assert_str_eq(c->path, path);
	ck_assert_uint_eq(c->sip.n_upstream, 1);
	ck_assert_str_eq(c->sip.upstream[0], "sip:192.0.2.5");
	ck_assert_int_eq(c->log.target, CFG_LOG_SYSLOG);
	ck_assert_uint_eq(c->sip.n_listen, 2);
	cfg_free(c);
}
END_TEST

START_TEST(file_bad_lines)
{
	char path[128];
	struct problems ps = {.n = 0};
	struct cfg *c = NULL;

	char text[1024], pad[512];

	/* Line 2 is a comment longer than inih's line buffer. */
	memset(pad, '-', 500);
	pad[500] = '\0';
	snprintf(text, sizeof text,
	         "[sip]\n; %s\nlisten = udp:192.0.2.1:5060\n\nupstream = x\n"
	         "[log]\nlevel = loud\n",
	         pad);
	snprintf(path, sizeof path, "%s/sipnat.conf", tmpdir);
	write_file(path, text);
	ck_assert_int_eq(cfg_load(path, &c, collect, &ps), -EINVAL);
	ck_assert_ptr_null(c);
	ck_assert_uint_eq(ps.n, 2);
	ck_assert_str_eq(ps.p[0].file, path);
	ck_assert_uint_eq(ps.p[0].line, 5);
	ck_assert_uint_eq(ps.p[1].line, 7);
}
END_TEST

START_TEST(file_missing)
{
	char path[128];
	struct problems ps = {.n = 0};
	struct cfg *c = NULL;

	snprintf(path, sizeof path, "%s/absent.conf", tmpdir);
	ck_assert_int_eq(cfg_load(path, &c, collect, &ps), -ENOENT);
	ck_assert_ptr_null(c);
	ck_assert_uint_eq(ps.n, 1);
	ck_assert_str_eq(ps.p[0].file, path);
	ck_assert_uint_eq(ps.p[0].line, 0);
	ck_assert_ptr_nonnull(strstr(ps.p[0].reason, "cannot open"));
	/* Without a callback too. */
	ck_assert_int_eq(cfg_load(path, &c, NULL, NULL), -ENOENT);
}
END_TEST

START_TEST(file_directory)
{
	struct problems ps = {.n = 0};
	struct cfg *c = NULL;
	int r;

	/* fopen() accepts a directory; reading it fails.  That must not pass
	 * for an empty file, i.e. silently for the defaults. */
	r = cfg_load(tmpdir, &c, collect, &ps);
	ck_assert_int_eq(r, -EISDIR);
	ck_assert_ptr_null(c);
	ck_assert_uint_eq(ps.n, 1);
	ck_assert_uint_eq(ps.p[0].line, 0);
}
END_TEST

/* ---- cfg_parse_listen directly ---- */

START_TEST(listen_direct)
{
	struct cfg_listen l;
	const char *why = NULL;

	ck_assert_int_eq(cfg_parse_listen("tls:[2001:db8::5]:5061", &l, &why), 0);
	assert_listen(&l, CFG_TP_TLS, "2001:db8::5", 5061);
	ck_assert_int_eq(cfg_parse_listen("udp:203.0.113.9:5060", &l, &why), 0);
	assert_listen(&l, CFG_TP_UDP, "203.0.113.9", 5060);
	ck_assert_int_eq(cfg_parse_listen("tcp:[::ffff:192.0.2.1]:7", &l, &why), 0);
	assert_listen(&l, CFG_TP_TCP, "::ffff:192.0.2.1", 7);

	/* On error *out is untouched and *why is set. */
	why = NULL;
	ck_assert_int_eq(cfg_parse_listen("udp:203.0.113.9:0", &l, &why), -EINVAL);
	ck_assert_ptr_nonnull(why);
	assert_listen(&l, CFG_TP_TCP, "::ffff:192.0.2.1", 7);
	why = NULL;
	ck_assert_int_eq(cfg_parse_listen("", &l, &why), -EINVAL);
	ck_assert_ptr_nonnull(why);
	why = NULL;
	ck_assert_int_eq(cfg_parse_listen("udp:[2001:db8::1]:5060:1", &l, &why), -EINVAL);
	ck_assert_ptr_nonnull(why);
}
END_TEST

static Suite *cfg_suite(void)
{
	Suite *s = suite_create("cfg");
	TCase *tc;

#define TC(name) (tc = tcase_create(name), suite_add_tcase(s, tc))
	TC("defaults");
	tcase_add_test(tc, defaults_builtin);
	tcase_add_test(tc, defaults_empty_file);
	tcase_add_test(tc, defaults_free_null);
	tcase_add_test(tc, defaults_names);
	TC("good_files");
	tcase_add_test(tc, good_full);
	tcase_add_test(tc, good_listen_replaces_then_appends);
	tcase_add_test(tc, good_upstream_appends);
	tcase_add_test(tc, good_upstream_forms);
	tcase_add_test(tc, tls_upstream);
	tcase_add_test(tc, transaction_timeout_range);
	tcase_add_test(tc, good_scalars_last_wins);
	tcase_add_test(tc, call_log_path);
	tcase_add_test(tc, good_log_levels);
	tcase_add_test(tc, good_tls);
	tcase_add_test(tc, good_nat_keys);
	TC("relay_control");
	tcase_add_test(tc, good_relay_control);
	tcase_add_test(tc, err_relay_control);
	TC("syntax");
	tcase_add_test(tc, good_comments);
	tcase_add_test(tc, good_line_endings);
	tcase_add_test(tc, good_continuation);
	tcase_add_test(tc, err_syntax);
	tcase_add_test(tc, err_long_lines);
	TC("errors_structure");
	tcase_add_test(tc, err_structure);
	tcase_add_test(tc, err_name_in_messages);
	TC("errors_listen");
	tcase_add_test(tc, err_listen_items);
	tcase_add_test(tc, err_listen_none_left);
	tcase_add_test(tc, err_listen_too_many);
	TC("errors_upstream_domain");
	tcase_add_test(tc, err_upstream);
	tcase_add_test(tc, err_domain_too_many);
	TC("errors_values");
	tcase_add_test(tc, err_numbers);
	tcase_add_test(tc, err_log);
	tcase_add_test(tc, err_nat_keys);
	TC("errors_tls");
	tcase_add_test(tc, err_tls_pairing);
	tcase_add_test(tc, err_tls_both_reported);
	TC("errors_all_reported");
	tcase_add_test(tc, err_all_reported);
	TC("files");
	tcase_add_checked_fixture(tc, files_setup, files_teardown);
	tcase_add_test(tc, file_good);
	tcase_add_test(tc, file_bad_lines);
	tcase_add_test(tc, file_missing);
	tcase_add_test(tc, file_directory);
	TC("parse_listen");
	tcase_add_test(tc, listen_direct);
#undef TC
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cfg_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
