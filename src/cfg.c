/* cfg: INI configuration through inih.
 *
 * inih hands us one key at a time but, as Debian builds it, no line number.
 * We feed it through ini_parse_stream() with our own reader that counts
 * lines, so every problem can be reported as file:line: reason.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sipnat/cfg.h"
#include "sipnat/ctlpath.h"
#include "sipnat/natd.h"

struct parse {
	struct cfg *cfg;
	const char *name;
	unsigned line;
	unsigned problems;
	int oom;
	cfg_error_f *on_error;
	void *arg;
	/* Keys that replace a list the first time they are seen in a file,
	 * then append when repeated. */
	int seen_listen, seen_upstream, seen_domain, seen_relay_addr;
	int seen_turn_listen, seen_turn_denied, seen_turn_allowed;
	/* For ini_parse_string-like input. */
	const char *text;
	size_t pos;
	FILE *fp;
};

static void problem(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct parse *p, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	p->problems++;
	if (p->on_error)
		p->on_error(p->arg, p->name, p->line, reason);
}

const char *cfg_transport_name(enum cfg_transport t)
{
	switch (t) {
	case CFG_TP_UDP:
		return "udp";
	case CFG_TP_TCP:
		return "tcp";
	case CFG_TP_TLS:
		return "tls";
	}
	return "?";
}

const char *cfg_log_level_name(enum cfg_log_level l)
{
	switch (l) {
	case CFG_LOG_ERROR:
		return "error";
	case CFG_LOG_WARN:
		return "warn";
	case CFG_LOG_INFO:
		return "info";
	case CFG_LOG_DEBUG:
		return "debug";
	}
	return "?";
}

int cfg_parse_listen(const char *item, struct cfg_listen *out, const char **why)
{
	struct cfg_listen l;
	const char *colon, *host, *host_end, *port;
	char *end;
	unsigned long v;
	size_t hlen;
	unsigned char buf[sizeof(struct in6_addr)];

	memset(&l, 0, sizeof l);
	colon = strchr(item, ':');
	if (!colon) {
		*why = "expected transport:address:port";
		return -EINVAL;
	}
	if ((size_t)(colon - item) == 3 && strncasecmp(item, "udp", 3) == 0)
		l.transport = CFG_TP_UDP;
	else if ((size_t)(colon - item) == 3 && strncasecmp(item, "tcp", 3) == 0)
		l.transport = CFG_TP_TCP;
	else if ((size_t)(colon - item) == 3 && strncasecmp(item, "tls", 3) == 0)
		l.transport = CFG_TP_TLS;
	else {
		*why = "transport must be udp, tcp or tls";
		return -EINVAL;
	}
	host = colon + 1;
	if (*host == '[') {
		host++;
		host_end = strchr(host, ']');
		if (!host_end || host_end[1] != ':') {
			*why = "IPv6 address must be written [addr]:port";
			return -EINVAL;
		}
		port = host_end + 2;
	} else {
		host_end = strrchr(host, ':');
		if (!host_end) {
			*why = "missing port";
			return -EINVAL;
		}
		/* Without brackets "2001:db8::1:5060" has no single reading. */
		if (memchr(host, ':', (size_t)(host_end - host))) {
			*why = "IPv6 address must be written [addr]:port";
			return -EINVAL;
		}
		port = host_end + 1;
	}
	hlen = (size_t)(host_end - host);
	if (hlen == 0 || hlen >= sizeof l.host) {
		*why = "missing or overlong address";
		return -EINVAL;
	}
	memcpy(l.host, host, hlen);
	l.host[hlen] = '\0';
	if (inet_pton(AF_INET, l.host, buf) != 1 && inet_pton(AF_INET6, l.host, buf) != 1) {
		*why = "address must be a numeric IPv4 or IPv6 address";
		return -EINVAL;
	}
	errno = 0;
	v = strtoul(port, &end, 10);
	if (!isdigit((unsigned char)*port) || errno || *end != '\0' || v == 0 || v > 65535) {
		*why = "port must be 1-65535";
		return -EINVAL;
	}
	l.port = (uint16_t)v;
	*out = l;
	return 0;
}

static int set_str(struct parse *p, char **slot, const char *value)
{
	char *dup = strdup(value);

	if (!dup) {
		p->oom = 1;
		return -ENOMEM;
	}
	free(*slot);
	*slot = dup;
	return 0;
}

static int parse_uint(struct parse *p, const char *key, const char *value, unsigned min,
                      unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	/* strtoul() would take blanks, a sign and wrap negative numbers. */
	errno = 0;
	v = strtoul(value, &end, 10);
	if (!isdigit((unsigned char)*value) || errno || *end != '\0' || v < min || v > max) {
		problem(p, "%s: expected a whole number from %u to %u, got '%s'", key, min, max,
		        value);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

static int parse_yesno(struct parse *p, const char *key, const char *value, bool *out)
{
	if (!strcasecmp(value, "yes") || !strcasecmp(value, "true") || !strcmp(value, "1") ||
	    !strcasecmp(value, "on")) {
		*out = true;
		return 0;
	}
	if (!strcasecmp(value, "no") || !strcasecmp(value, "false") || !strcmp(value, "0") ||
	    !strcasecmp(value, "off")) {
		*out = false;
		return 0;
	}
	problem(p, "%s: expected yes or no, got '%s'", key, value);
	return -EINVAL;
}

/* A SIP URI as accepted for upstream: sip: or sips:, a host, an optional
 * port and parameters.  Sofia parses it again later; this catches typos at
 * load time so --check-config can name the line. */
static int valid_sip_uri(const char *v)
{
	const char *h;

	if (!strncasecmp(v, "sip:", 4))
		h = v + 4;
	else if (!strncasecmp(v, "sips:", 5))
		h = v + 5;
	else
		return 0;
	if (strchr(h, '@'))
		h = strchr(h, '@') + 1;
	if (*h == '\0' || *h == ':' || *h == ';')
		return 0;
	for (const char *c = h; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == '<' || *c == '>' || *c == '"')
			return 0;
	return 1;
}

bool cfg_uri_is_tls(const char *uri)
{
	const char *t;

	if (!strncasecmp(uri, "sips:", 5))
		return true;
	for (t = strchr(uri, ';'); t; t = strchr(t + 1, ';'))
		if (!strncasecmp(t, ";transport=tls", 14) && (t[14] == '\0' || t[14] == ';'))
			return true;
	return false;
}

/* Split a space-separated list; calls fn for each word. */
static void each_word(struct parse *p, const char *value,
                      void (*fn)(struct parse *p, const char *word))
{
	char word[512];
	const char *s = value;

	while (*s) {
		size_t n;
		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		if (!*s)
			break;
		n = strcspn(s, " \t,");
		if (n >= sizeof word) {
			problem(p, "list item too long");
		} else {
			memcpy(word, s, n);
			word[n] = '\0';
			fn(p, word);
		}
		s += n;
	}
}

static void add_listen(struct parse *p, const char *word)
{
	struct cfg_sip *sip = &p->cfg->sip;
	const char *why = NULL;

	if (sip->n_listen >= CFG_MAX_LISTEN) {
		problem(p, "listen: at most %d listeners", CFG_MAX_LISTEN);
		return;
	}
	if (cfg_parse_listen(word, &sip->listen[sip->n_listen], &why) < 0) {
		problem(p, "listen: '%s': %s", word, why);
		return;
	}
	sip->n_listen++;
}

static void add_upstream(struct parse *p, const char *word)
{
	struct cfg_sip *sip = &p->cfg->sip;

	if (!valid_sip_uri(word)) {
		problem(p, "upstream: '%s' is not a sip: or sips: URI", word);
		return;
	}
	if (sip->n_upstream >= CFG_MAX_UPSTREAM) {
		problem(p, "upstream: at most %d upstreams", CFG_MAX_UPSTREAM);
		return;
	}
	sip->upstream[sip->n_upstream] = strdup(word);
	if (!sip->upstream[sip->n_upstream])
		p->oom = 1;
	else
		sip->n_upstream++;
}

static void add_domain(struct parse *p, const char *word)
{
	struct cfg_sip *sip = &p->cfg->sip;

	if (sip->n_domain >= CFG_MAX_DOMAIN) {
		problem(p, "domain: at most %d domains", CFG_MAX_DOMAIN);
		return;
	}
	sip->domain[sip->n_domain] = strdup(word);
	if (!sip->domain[sip->n_domain])
		p->oom = 1;
	else
		sip->n_domain++;
}

static void clear_list(char **v, size_t *n)
{
	for (size_t i = 0; i < *n; i++) {
		free(v[i]);
		v[i] = NULL;
	}
	*n = 0;
}

static void sip_key(struct parse *p, const char *name, const char *value)
{
	struct cfg_sip *sip = &p->cfg->sip;

	if (!strcmp(name, "listen")) {
		if (!p->seen_listen++)
			sip->n_listen = 0;
		each_word(p, value, add_listen);
	} else if (!strcmp(name, "upstream")) {
		if (!p->seen_upstream++)
			clear_list(sip->upstream, &sip->n_upstream);
		each_word(p, value, add_upstream);
	} else if (!strcmp(name, "domain")) {
		if (!p->seen_domain++)
			clear_list(sip->domain, &sip->n_domain);
		each_word(p, value, add_domain);
	} else if (!strcmp(name, "advertise")) {
		set_str(p, &sip->advertise, value);
	} else if (!strcmp(name, "tls_cert")) {
		set_str(p, &sip->tls_cert, value);
	} else if (!strcmp(name, "tls_key")) {
		set_str(p, &sip->tls_key, value);
	} else if (!strcmp(name, "tls_ca")) {
		set_str(p, &sip->tls_ca, value);
	} else if (!strcmp(name, "transaction_timeout")) {
		parse_uint(p, name, value, 2, 64, &sip->transaction_timeout);
	} else if (!strcmp(name, "failover_timeout")) {
		parse_uint(p, name, value, 1, 300, &sip->failover_timeout);
	} else if (!strcmp(name, "shutdown_timeout")) {
		parse_uint(p, name, value, 0, 600, &sip->shutdown_timeout);
	} else if (!strcmp(name, "nat_detect")) {
		const char *bad = NULL;
		if (natd_parse_list(value, &sip->nat_detect, &bad) < 0)
			problem(p,
			        "nat_detect: unknown test '%.*s' (use via_addr, via_port, "
			        "contact_private, via_private, sdp_private, source_private, all, "
			        "default or none)",
			        (int)(bad ? strcspn(bad, " \t,") : 0), bad ? bad : "");
	} else if (!strcmp(name, "path")) {
		parse_yesno(p, name, value, &sip->path);
	} else if (!strcmp(name, "keepalive")) {
		if (!strcasecmp(value, "options"))
			sip->keepalive = CFG_KA_OPTIONS;
		else if (!strcasecmp(value, "crlf"))
			sip->keepalive = CFG_KA_CRLF;
		else if (!strcasecmp(value, "off"))
			sip->keepalive = CFG_KA_OFF;
		else
			problem(p, "keepalive: expected options, crlf or off, got '%s'", value);
	} else if (!strcmp(name, "keepalive_interval")) {
		parse_uint(p, name, value, 1, 3600, &sip->keepalive_interval);
	} else if (!strcmp(name, "keepalive_failures")) {
		parse_uint(p, name, value, 1, 100, &sip->keepalive_failures);
	} else if (!strcmp(name, "state_dir")) {
		set_str(p, &sip->state_dir, value);
	} else if (!strcmp(name, "flow_secret")) {
		if (strlen(value) < 16)
			problem(p, "flow_secret: use at least 16 characters");
		else
			set_str(p, &sip->flow_secret, value);
	} else {
		problem(p, "unknown key '%s' in section [sip]", name);
	}
}

static void add_relay_addr(struct parse *p, const char *word)
{
	struct cfg_relay *r = &p->cfg->relay;
	unsigned char buf[16];

	if (inet_pton(AF_INET, word, buf) != 1 && inet_pton(AF_INET6, word, buf) != 1) {
		problem(p, "address: '%s' is not a numeric IPv4 or IPv6 address", word);
		return;
	}
	if (r->n_addr >= CFG_MAX_RELAY_ADDR) {
		problem(p, "address: at most %d addresses", CFG_MAX_RELAY_ADDR);
		return;
	}
	if (strlen(word) >= CFG_HOST_MAX) {
		problem(p, "address: '%s' is too long", word);
		return;
	}
	strcpy(r->addr[r->n_addr++], word);
}

static void relay_key(struct parse *p, const char *name, const char *value)
{
	struct cfg_relay *r = &p->cfg->relay;

	if (!strcmp(name, "address")) {
		if (!p->seen_relay_addr++)
			r->n_addr = 0;
		each_word(p, value, add_relay_addr);
	} else if (!strcmp(name, "ports")) {
		unsigned lo, hi;
		char tail;
		if (sscanf(value, "%u-%u%c", &lo, &hi, &tail) != 2 || lo < 1024 || hi > 65535 ||
		    lo >= hi || hi - lo < 3)
			problem(p,
			        "ports: expected LOW-HIGH within 1024-65535 with at least 4 "
			        "ports, got '%s'",
			        value);
		else {
			r->port_min = (uint16_t)lo;
			r->port_max = (uint16_t)hi;
		}
	} else if (!strcmp(name, "threads")) {
		parse_uint(p, name, value, 0, 256, &r->threads);
	} else if (!strcmp(name, "timeout")) {
		parse_uint(p, name, value, 0, 86400, &r->timeout);
	} else if (!strcmp(name, "strip_private_candidates")) {
		parse_yesno(p, name, value, &r->strip_private_candidates);
	} else if (!strcmp(name, "mode")) {
		if (!strcasecmp(value, "always"))
			r->mode = CFG_RELAY_ALWAYS;
		else if (!strcasecmp(value, "nat"))
			r->mode = CFG_RELAY_NAT;
		else if (!strcasecmp(value, "never"))
			r->mode = CFG_RELAY_NEVER;
		else
			problem(p, "mode: expected always, nat or never, got '%s'", value);
	} else {
		problem(p, "unknown key '%s' in section [relay]", name);
	}
}

static void control_key(struct parse *p, const char *name, const char *value)
{
	struct cfg_control *c = &p->cfg->control;

	if (!strcmp(name, "socket")) {
		c->socket_default = false;
		if (!strcasecmp(value, "off") || !strcasecmp(value, "none")) {
			free(c->socket);
			c->socket = NULL;
		} else if (value[0] != '/') {
			problem(p, "socket: expected an absolute path or off, got '%s'", value);
		} else {
			set_str(p, &c->socket, value);
		}
	} else if (!strcmp(name, "socket_mode")) {
		char *end;
		unsigned long v = strtoul(value, &end, 8);
		if (end == value || *end || v > 0777)
			problem(p, "socket_mode: expected an octal mode such as 0660, got '%s'",
			        value);
		else
			c->socket_mode = (unsigned)v;
	} else if (!strcmp(name, "metrics")) {
		struct cfg_listen l;
		char item[CFG_HOST_MAX + 16];
		const char *why;
		snprintf(item, sizeof item, "tcp:%s", value);
		if (!strcasecmp(value, "off") || !strcasecmp(value, "none")) {
			c->metrics_port = 0;
			c->metrics_host[0] = '\0';
		} else if (cfg_parse_listen(item, &l, &why) < 0) {
			problem(p, "metrics: '%s': %s (expected address:port or off)", value, why);
		} else {
			snprintf(c->metrics_host, sizeof c->metrics_host, "%s", l.host);
			c->metrics_port = l.port;
		}
	} else {
		problem(p, "unknown key '%s' in section [control]", name);
	}
}

static void log_key(struct parse *p, const char *name, const char *value)
{
	struct cfg_log *lg = &p->cfg->log;

	if (!strcmp(name, "level")) {
		if (!strcasecmp(value, "error"))
			lg->level = CFG_LOG_ERROR;
		else if (!strcasecmp(value, "warn") || !strcasecmp(value, "warning"))
			lg->level = CFG_LOG_WARN;
		else if (!strcasecmp(value, "info"))
			lg->level = CFG_LOG_INFO;
		else if (!strcasecmp(value, "debug"))
			lg->level = CFG_LOG_DEBUG;
		else
			problem(p, "level: expected error, warn, info or debug, got '%s'", value);
	} else if (!strcmp(name, "target")) {
		if (!strcasecmp(value, "stderr"))
			lg->target = CFG_LOG_STDERR;
		else if (!strcasecmp(value, "syslog"))
			lg->target = CFG_LOG_SYSLOG;
		else
			problem(p, "target: expected stderr or syslog, got '%s'", value);
	} else if (!strcmp(name, "call_log")) {
		if (value[0] != '/')
			problem(p, "call_log: expected an absolute path, got '%s'", value);
		else
			set_str(p, &lg->call_log, value);
	} else {
		problem(p, "unknown key '%s' in section [log]", name);
	}
}

/* ---- [turn] ---- */

/* RFC 8656 §21.3 and the list: loopback, "this network", RFC 1918,
 * RFC 6598 shared space, link-local, multicast and reserved IPv4; IPv6
 * unspecified, loopback, ULA, link-local and multicast. */
const char cfg_turn_default_denied[] =
        "0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 "
        "192.168.0.0/16 224.0.0.0/4 240.0.0.0/4 ::/128 ::1/128 fc00::/7 fe80::/10 ff00::/8";

static void add_turn_listen(struct parse *p, const char *word)
{
	struct cfg_turn *t = &p->cfg->turn;
	const char *why = NULL;

	if (t->n_listen >= CFG_MAX_LISTEN) {
		problem(p, "listen: at most %d listeners", CFG_MAX_LISTEN);
		return;
	}
	if (cfg_parse_listen(word, &t->listen[t->n_listen], &why) < 0) {
		problem(p, "listen: '%s': %s", word, why);
		return;
	}
	t->n_listen++;
}

static void add_cidr(struct parse *p, const char *key, const char *word, struct natd_cidr *v,
                     size_t *n)
{
	if (*n >= CFG_MAX_TURN_CIDR) {
		problem(p, "%s: at most %d prefixes", key, CFG_MAX_TURN_CIDR);
		return;
	}
	if (natd_cidr_parse(word, &v[*n]) < 0) {
		problem(p, "%s: '%s' is not an address or address/prefix", key, word);
		return;
	}
	(*n)++;
}

static void add_turn_denied(struct parse *p, const char *word)
{
	add_cidr(p, "denied_peers", word, p->cfg->turn.denied, &p->cfg->turn.n_denied);
}

static void add_turn_allowed(struct parse *p, const char *word)
{
	add_cidr(p, "allowed_peers", word, p->cfg->turn.allowed, &p->cfg->turn.n_allowed);
}

static void add_turn_user(struct parse *p, const char *value)
{
	struct cfg_turn *t = &p->cfg->turn;
	const char *colon = strchr(value, ':');
	struct cfg_turn_user *v;

	if (!colon || colon == value || !colon[1]) {
		problem(p, "user: expected name:password, got '%s'", value);
		return;
	}
	/* USERNAME is at most 513 bytes on the wire (RFC 8489 §14.3). */
	if ((size_t)(colon - value) > 500) {
		problem(p, "user: name too long");
		return;
	}
	for (size_t i = 0; i < t->n_users; i++)
		if (strlen(t->users[i].name) == (size_t)(colon - value) &&
		    !strncmp(t->users[i].name, value, (size_t)(colon - value))) {
			problem(p, "user: '%.*s' is defined twice", (int)(colon - value), value);
			return;
		}
	v = realloc(t->users, (t->n_users + 1) * sizeof *v);
	if (!v) {
		p->oom = 1;
		return;
	}
	t->users = v;
	v[t->n_users].name = strndup(value, (size_t)(colon - value));
	v[t->n_users].password = strdup(colon + 1);
	if (!v[t->n_users].name || !v[t->n_users].password) {
		free(v[t->n_users].name);
		free(v[t->n_users].password);
		p->oom = 1;
		return;
	}
	t->n_users++;
}

static void turn_key(struct parse *p, const char *name, const char *value)
{
	struct cfg_turn *t = &p->cfg->turn;

	if (!strcmp(name, "listen")) {
		if (!p->seen_turn_listen++)
			t->n_listen = 0;
		if (strcasecmp(value, "none") && strcasecmp(value, "off"))
			each_word(p, value, add_turn_listen);
	} else if (!strcmp(name, "realm")) {
		if (strlen(value) > 500)
			problem(p, "realm: at most 500 characters");
		else
			set_str(p, &t->realm, value);
	} else if (!strcmp(name, "user")) {
		add_turn_user(p, value);
	} else if (!strcmp(name, "secret")) {
		if (strlen(value) < 8)
			problem(p, "secret: use at least 8 characters");
		else
			set_str(p, &t->secret, value);
	} else if (!strcmp(name, "tls_cert")) {
		set_str(p, &t->tls_cert, value);
	} else if (!strcmp(name, "tls_key")) {
		set_str(p, &t->tls_key, value);
	} else if (!strcmp(name, "tls_priorities")) {
		set_str(p, &t->tls_priorities, value);
	} else if (!strcmp(name, "denied_peers")) {
		if (!p->seen_turn_denied++)
			t->n_denied = 0;
		if (strcasecmp(value, "none"))
			each_word(p, value, add_turn_denied);
	} else if (!strcmp(name, "allowed_peers")) {
		if (!p->seen_turn_allowed++)
			t->n_allowed = 0;
		if (strcasecmp(value, "none"))
			each_word(p, value, add_turn_allowed);
	} else if (!strcmp(name, "quota_per_user")) {
		parse_uint(p, name, value, 0, 1000000, &t->quota_per_user);
	} else if (!strcmp(name, "max_allocations")) {
		parse_uint(p, name, value, 0, 10000000, &t->max_allocations);
	} else if (!strcmp(name, "bandwidth")) {
		parse_uint(p, name, value, 0, 1000000000, &t->bandwidth);
	} else if (!strcmp(name, "allow_anonymous")) {
		parse_yesno(p, name, value, &t->allow_anonymous);
	} else if (!strcmp(name, "nonce_lifetime")) {
		parse_uint(p, name, value, 10, 86400, &t->nonce_lifetime);
	} else {
		problem(p, "unknown key '%s' in section [turn]", name);
	}
}

/* [turn] combinations, from check_whole(). */
static void turn_check(struct parse *p)
{
	struct cfg_turn *t = &p->cfg->turn;
	bool want_tls = false;

	for (size_t i = 0; i < t->n_listen; i++)
		if (t->listen[i].transport == CFG_TP_TLS)
			want_tls = true;
	if (want_tls && (!t->tls_cert || !t->tls_key))
		problem(p, "[turn] a tls listener needs both tls_cert and tls_key");
	if ((t->tls_cert == NULL) != (t->tls_key == NULL))
		problem(p, "[turn] tls_cert and tls_key go together");
	if (t->n_listen && !t->n_users && !t->secret && !t->allow_anonymous)
		problem(p, "[turn] listen needs user, secret or allow_anonymous = yes");
}

static void turn_defaults(struct cfg_turn *t)
{
	char word[64];
	const char *s = cfg_turn_default_denied;

	t->nonce_lifetime = 600;
	t->realm = strdup("sipnat");
	while (*s && t->n_denied < CFG_MAX_TURN_CIDR) {
		size_t n = strcspn(s, " ");

		if (n && n < sizeof word) {
			memcpy(word, s, n);
			word[n] = '\0';
			if (natd_cidr_parse(word, &t->denied[t->n_denied]) == 0)
				t->n_denied++;
		}
		s += n;
		s += strspn(s, " ");
	}
}

static void turn_free(struct cfg_turn *t)
{
	for (size_t i = 0; i < t->n_users; i++) {
		free(t->users[i].name);
		free(t->users[i].password);
	}
	free(t->users);
	free(t->realm);
	free(t->secret);
	free(t->tls_cert);
	free(t->tls_key);
	free(t->tls_priorities);
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;

	if (!name) /* a bare [section] line: sections are checked with keys */
		return 1;
	if (!*name) { /* inih passes "= value" on as a key named "" */
		problem(p, "syntax error: no key name before '='");
		return 1;
	}
	if (!value || !*value) {
		problem(p, "key '%s' has no value", name);
		return 1;
	}
	if (!strcmp(section, "sip"))
		sip_key(p, name, value);
	else if (!strcmp(section, "log"))
		log_key(p, name, value);
	else if (!strcmp(section, "relay"))
		relay_key(p, name, value);
	else if (!strcmp(section, "control"))
		control_key(p, name, value);
	else if (!strcmp(section, "turn"))
		turn_key(p, name, value);
	else if (!*section)
		problem(p, "key '%s' outside of any [section]", name);
	else
		problem(p, "unknown section [%s]", section);
	/* Never stop inih: we want every problem, not the first. */
	return 1;
}

/* Next character of the input, or EOF. */
static int next_char(struct parse *p)
{
	if (p->fp)
		return getc(p->fp);
	if (p->text[p->pos] == '\0')
		return EOF;
	return (unsigned char)p->text[p->pos++];
}

/* inih reads into a fixed buffer of num bytes and would take the rest of a
 * longer line for a line of its own: a long comment would turn into a
 * syntax error and every later line number would be off.  So one call
 * returns one whole line: the part that fits, the rest dropped. */
static char *reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	size_t n = 0, dropped = 0;
	int c = EOF;

	while ((int)n < num - 1) {
		c = next_char(p);
		if (c == EOF)
			break;
		str[n++] = (char)c;
		if (c == '\n')
			break;
	}
	str[n] = '\0';
	if (n == 0)
		return NULL;
	p->line++;
	if (c != '\n' && c != EOF) {
		while ((c = next_char(p)) != EOF && c != '\n')
			if (c != '\r')
				dropped++;
		if (dropped && str[strspn(str, " \t")] != ';' && str[strspn(str, " \t")] != '#')
			problem(p, "line too long (at most %d characters)", num - 1);
	}
	return str;
}

/* Combinations that no single line can be blamed for. */
static void check_whole(struct parse *p)
{
	struct cfg_sip *sip = &p->cfg->sip;
	bool want_tls = false;

	p->line = 0;
	if (sip->n_listen == 0)
		problem(p, "[sip] listen: at least one listener is needed");
	for (size_t i = 0; i < sip->n_listen; i++)
		if (sip->listen[i].transport == CFG_TP_TLS)
			want_tls = true;
	if (want_tls && (!sip->tls_cert || !sip->tls_key))
		problem(p, "[sip] a tls listener needs both tls_cert and tls_key");
	if ((sip->tls_cert == NULL) != (sip->tls_key == NULL))
		problem(p, "[sip] tls_cert and tls_key go together");
	/* Sofia-SIP opens TLS connections from a TLS listener's transport: no
	 * listener, no TLS to anyone (it would be a 503 at the first call). */
	for (size_t i = 0; i < sip->n_upstream && !want_tls; i++)
		if (cfg_uri_is_tls(sip->upstream[i]))
			problem(p,
			        "[sip] upstream %s is reached over TLS, which needs a tls listener",
			        sip->upstream[i]);
	if (sip->tls_ca && !want_tls)
		problem(p, "[sip] tls_ca verifies upstreams reached over TLS, which needs a tls "
		           "listener");
	turn_check(p);
}

int cfg_defaults(struct cfg **out)
{
	struct cfg *c = calloc(1, sizeof *c);
	const char *why;

	if (!c)
		return -ENOMEM;
	cfg_parse_listen("udp:0.0.0.0:5060", &c->sip.listen[0], &why);
	cfg_parse_listen("tcp:0.0.0.0:5060", &c->sip.listen[1], &why);
	c->sip.n_listen = 2;
	c->sip.failover_timeout = 5;
	c->sip.transaction_timeout = 32;
	c->sip.shutdown_timeout = 10;
	c->sip.nat_detect = NATD_DEFAULT;
	c->sip.path = true;
	c->sip.keepalive = CFG_KA_OPTIONS;
	c->sip.keepalive_interval = 20;
	c->sip.keepalive_failures = 3;
	c->sip.state_dir = strdup("/var/lib/sipnat");
	if (!c->sip.state_dir) {
		free(c);
		return -ENOMEM;
	}
	c->relay.port_min = 30000;
	c->relay.port_max = 39999;
	c->relay.threads = 0;
	c->relay.timeout = 60;
	c->relay.mode = CFG_RELAY_ALWAYS;
	c->control.socket = strdup(CTLPATH_SYSTEM);
	c->control.socket_default = true;
	c->control.socket_mode = 0660;
	if (!c->control.socket) {
		cfg_free(c);
		return -ENOMEM;
	}
	c->log.level = CFG_LOG_INFO;
	c->log.target = CFG_LOG_STDERR;
	turn_defaults(&c->turn);
	if (!c->turn.realm) {
		cfg_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

static int load(struct parse *p, struct cfg **out)
{
	int r, err = 0;

	r = cfg_defaults(&p->cfg);
	if (r < 0)
		return r;
	if (p->name) {
		p->cfg->path = strdup(p->name);
		if (!p->cfg->path)
			p->oom = 1;
	}
	r = ini_parse_stream(reader, p, handler, p);
	if (p->fp && ferror(p->fp)) {
		/* e.g. a directory: fopen() accepts it, reading fails. */
		err = errno ? -errno : -EIO;
		p->line = 0;
		problem(p, "cannot read: %s", strerror(-err));
	} else if (r > 0) {
		/* inih reports the first line it could not read as INI. */
		p->line = (unsigned)r;
		problem(p, "syntax error: expected [section] or key = value");
	} else if (r < 0) {
		err = -ENOMEM;
	}
	if (!err)
		check_whole(p);
	if (p->oom)
		err = -ENOMEM;
	else if (!err && p->problems)
		err = -EINVAL;
	if (err) {
		cfg_free(p->cfg);
		return err;
	}
	*out = p->cfg;
	return 0;
}

int cfg_load(const char *path, struct cfg **out, cfg_error_f *on_error, void *arg)
{
	struct parse p = {.name = path, .on_error = on_error, .arg = arg};
	int r;

	p.fp = fopen(path, "r");
	if (!p.fp) {
		r = -errno;
		problem(&p, "cannot open: %s", strerror(-r));
		return r;
	}
	r = load(&p, out);
	fclose(p.fp);
	return r;
}

int cfg_load_string(const char *text, const char *name, struct cfg **out, cfg_error_f *on_error,
                    void *arg)
{
	struct parse p = {.name = name, .on_error = on_error, .arg = arg, .text = text};

	return load(&p, out);
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	free(c->path);
	clear_list(c->sip.upstream, &c->sip.n_upstream);
	clear_list(c->sip.domain, &c->sip.n_domain);
	free(c->sip.advertise);
	free(c->sip.tls_cert);
	free(c->sip.tls_key);
	free(c->sip.tls_ca);
	free(c->sip.state_dir);
	free(c->log.call_log);
	free(c->sip.flow_secret);
	free(c->control.socket);
	turn_free(&c->turn);
	free(c);
}
