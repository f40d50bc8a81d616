/* sipnatd: process set-up, signals and the SIP thread's main loop.
 *
 * The main thread is the SIP thread: it creates the su_root, the proxy,
 * and runs su_root_run() until a signal asks it to stop.  Signals are
 * blocked and read from a signalfd registered with the su_root, so that
 * every handler runs as an ordinary event on the SIP thread.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

struct app;
#define SU_ROOT_MAGIC_T struct app
#define SU_WAKEUP_ARG_T struct app

#include <sofia-sip/su.h>
#include <sofia-sip/su_wait.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include "sipnat/cfg.h"
#include "sipnat/ctlpath.h"
#include "sipnat/ctl.h"
#include "sipnat/daemon_ops.h"
#include "sipnat/log.h"
#include "sipnat/media.h"
#include "sipnat/proxy.h"
#include "sipnat/relay.h"
#include "sipnat/svc.h"
#include "sipnat/turn.h"

/* A NAT binding that changes port (rebinding) is followed after this much
 * silence from the latched address; never to another IP. */
#define RELATCH_SILENCE_MS 2000

struct app {
	su_root_t *root;
	struct proxy *proxy;
	struct relay *relay;
	struct turn *turn; /* NULL unless [turn] listen is set */
	struct media_bridge bridge;
	struct cfg *cfg;
	const char *config_path; /* NULL: built-in defaults */
	int sigfd;
	su_wait_t sigwait[1];
	int stopping;
	int exit_code;
	struct ctl *ctl;
	struct daemon_ctx dctx;
	struct svc_watchdog *watchdog;
	const char *pid_file; /* NULL: none; absolute once running */
	int pid_file_written;
	int drop; /* --user given: drop to ids after binding */
	struct svc_ids ids;
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: sipnatd [-c FILE] [-f] [--user USER [--group GROUP]] [--pid-file FILE]\n"
	        "               [--check-config] [--version] [-h]\n"
	        "\n"
	        "SIP-aware NAT traversal edge: a stateful SIP proxy in front of a PBX or\n"
	        "trunk for devices behind NAT.\n"
	        "\n"
	        "  -c, --config FILE   read FILE (default " SIPNAT_DEFAULT_CONFIG ", or built-in\n"
	        "                      defaults when that file does not exist)\n"
	        "  -f, --foreground    stay in the foreground (default: detach)\n"
	        "      --user USER     after binding every socket, drop root for USER (a\n"
	        "                      name or number); state_dir must be writable by USER\n"
	        "      --group GROUP   with --user: the group (default: USER's primary group)\n"
	        "      --pid-file FILE write the daemon's PID to FILE, removed at exit;\n"
	        "                      refuse to start while FILE names a running process\n"
	        "      --check-config  validate the configuration, print every problem as\n"
	        "                      file:line: reason, and exit (1 if any)\n"
	        "      --version       print the version and exit\n"
	        "  -h, --help          print this help and exit\n"
	        "\n"
	        "See sipnatd(8) and sipnat.conf(5).\n");
}

static void print_problem(void *arg, const char *file, unsigned line, const char *reason)
{
	(void)arg;
	if (line)
		fprintf(stderr, "%s:%u: %s\n", file ? file : "-", line, reason);
	else
		fprintf(stderr, "%s: %s\n", file ? file : "-", reason);
}

/* Problems of a reload, collected for the control socket's answer. */
struct problems {
	char *buf;
	size_t size, used;
};

static void log_problem(void *arg, const char *file, unsigned line, const char *reason)
{
	struct problems *pr = arg;
	char text[600];

	if (line)
		snprintf(text, sizeof text, "%s:%u: %s", file ? file : "-", line, reason);
	else
		snprintf(text, sizeof text, "%s: %s", file ? file : "-", reason);
	log_err("%s", text);
	if (pr && pr->used + 1 < pr->size) {
		int n = snprintf(pr->buf + pr->used, pr->size - pr->used, "%s%s",
		                 pr->used ? "\n" : "", text);
		pr->used = n < 0 ? pr->used : pr->used + (size_t)n;
		if (pr->used >= pr->size)
			pr->used = pr->size - 1;
	}
}

/* The control socket of a sipnatd run by a user other than root and given
 * no path: a directory of its own (ctlpath.h), /run/sipnat being root's. */
static int use_user_socket(struct cfg *cfg)
{
	char path[4096];
	char *dup;

	if (!cfg->control.socket_default || geteuid() == 0)
		return 0;
	if (ctlpath_user(path, sizeof path) < 0 || !(dup = strdup(path)))
		return -ENOMEM;
	free(cfg->control.socket);
	cfg->control.socket = dup;
	return 0;
}

static int load_config(const char *path, struct cfg **out, cfg_error_f *report)
{
	int r = path ? cfg_load(path, out, report, NULL) : cfg_defaults(out);

	return r < 0 ? r : use_user_socket(*out);
}

static void drained(void *arg)
{
	struct app *app = arg;

	log_info("stopped");
	su_root_break(app->root);
}

/* SIGHUP and sipnatctl reload.  A bad file is refused and the running
 * configuration stays (-errno); a good one is applied (0), or applied
 * except some parts, such as a certificate that does not load (1).  The
 * reasons go to the log and, one per line, to err (which may be NULL). */
static int reload(void *arg, char *err, size_t errlen)
{
	struct app *app = arg;
	struct problems pr = {.buf = err, .size = err ? errlen : 0};
	struct cfg *fresh = NULL;
	int r;

	if (pr.size)
		err[0] = '\0';
	log_info("reloading %s", app->config_path ? app->config_path : "built-in defaults");
	r = app->config_path ? cfg_load(app->config_path, &fresh, log_problem, &pr)
	                     : cfg_defaults(&fresh);
	if (r == 0)
		r = use_user_socket(fresh);
	if (r < 0) {
		log_err("reload refused, the running configuration stays: %s",
		        r == -EINVAL ? "the file has errors (listed above)" : strerror(-r));
		if (pr.size && !pr.used)
			snprintf(err, errlen, "%s: %s", app->config_path, strerror(-r));
		return r;
	}
	log_open("sipnatd", fresh->log.target, fresh->log.level);
	log_route_sofia(fresh->log.level >= CFG_LOG_DEBUG ? 5 : 3);
	r = proxy_reload(app->proxy, fresh, err, pr.size);
	/* New TURN TLS certificate; allocations stay. */
	if (app->turn && turn_reload(app->turn, fresh) < 0) {
		size_t used = pr.size ? strlen(err) : 0;
		if (pr.size)
			snprintf(err + used, errlen - used,
			         "%s[turn] tls_cert/tls_key: not "
			         "replaced (the log says why); TURN keeps the certificate it has",
			         used ? "\n" : "");
		r = r < 0 ? r : -EINVAL;
	}
	cfg_free(app->cfg);
	app->cfg = fresh;
	if (r < 0) {
		log_warn("reload: applied, except what is listed above");
		return 1;
	}
	log_info("reloaded");
	return 0;
}

/* reload() as the service manager sees it (sd_notify(3): RELOADING=1, and
 * READY=1 when done, refused or not: the old configuration still runs). */
static int reload_notified(void *arg, char *err, size_t errlen)
{
	int r;

	svc_notify_reloading();
	r = reload(arg, err, errlen);
	daemon_note_reload(&((struct app *)arg)->dctx, r);
	svc_notify_ready();
	return r;
}

static int on_signal(struct app *app, su_wait_t *w, struct app *arg)
{
	struct signalfd_siginfo si;

	(void)w;
	(void)arg;
	while (read(app->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
		switch (si.ssi_signo) {
		case SIGHUP:
			reload_notified(app, NULL, 0);
			break;
		case SIGTERM:
		case SIGINT:
			if (app->stopping) {
				log_warn("second stop signal: exiting now");
				su_root_break(app->root);
				break;
			}
			app->stopping = 1;
			svc_notify_stopping();
			log_info("stopping (signal %u)", si.ssi_signo);
			proxy_drain(app->proxy, drained, app);
			break;
		default:
			break;
		}
	}
	return 0;
}

/* The relay's public address when [relay] address is not set: [sip]
 * advertise if it is numeric, else the first non-loopback IPv4 address. */
static void default_relay_address(const struct cfg *cfg, char *out, size_t len)
{
	struct ifaddrs *ifa = NULL;
	unsigned char buf[16];

	out[0] = '\0';
	if (cfg->sip.advertise && inet_pton(AF_INET, cfg->sip.advertise, buf) == 1) {
		snprintf(out, len, "%s", cfg->sip.advertise);
		return;
	}
	if (getifaddrs(&ifa) == 0) {
		for (struct ifaddrs *i = ifa; i && !out[0]; i = i->ifa_next) {
			if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
				continue;
			struct in_addr a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
			if ((ntohl(a.s_addr) >> 24) == 127)
				continue;
			inet_ntop(AF_INET, &a, out, (socklen_t)len);
		}
		freeifaddrs(ifa);
	}
	if (!out[0])
		snprintf(out, len, "127.0.0.1");
}

static int start_relay(struct app *app)
{
	const struct cfg_relay *c = &app->cfg->relay;
	struct relay_config rc;
	int r;

	/* mode = never keeps calls off the relay, not TURN clients: the relay
	 * still runs (for TURN only) when a [turn] listener is configured. */
	if (c->mode == CFG_RELAY_NEVER && !app->cfg->turn.n_listen) {
		log_info("media relay off ([relay] mode = never)");
		return 0;
	}
	if (c->mode == CFG_RELAY_NEVER)
		log_info(
		        "calls are not relayed ([relay] mode = never); the relay serves TURN only");
	memset(&rc, 0, sizeof rc);
	rc.threads = c->threads;
	rc.port_min = c->port_min;
	rc.port_max = c->port_max;
	rc.timeout_sec = c->timeout;
	rc.relatch_silence_ms = RELATCH_SILENCE_MS;
	for (size_t i = 0; i < c->n_addr; i++) {
		if (strchr(c->addr[i], ':') && !rc.addr6[0])
			snprintf(rc.addr6, sizeof rc.addr6, "%s", c->addr[i]);
		else if (!strchr(c->addr[i], ':') && !rc.addr4[0])
			snprintf(rc.addr4, sizeof rc.addr4, "%s", c->addr[i]);
	}
	if (!rc.addr4[0] && !rc.addr6[0]) {
		default_relay_address(app->cfg, rc.addr4, sizeof rc.addr4);
		/* media.c reads the addresses from the config it is given. */
		struct cfg_relay *w = (struct cfg_relay *)c;
		snprintf(w->addr[0], sizeof w->addr[0], "%s", rc.addr4);
		w->n_addr = 1;
	}
	app->bridge.root = app->root;
	r = relay_start(&app->relay, &rc, media_relay_event, &app->bridge);
	if (r < 0) {
		log_err("cannot start the media relay: %s", strerror(-r));
		return r;
	}
	log_info("media relay: %u thread(s), ports %u-%u, address %s%s%s",
	         relay_threads(app->relay), rc.port_min, rc.port_max, rc.addr4,
	         rc.addr4[0] && rc.addr6[0] ? " " : "", rc.addr6);
	return 0;
}

static int daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		return -errno;
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return 0;
}

/* --user: the directories sipnatd writes after dropping root.  A missing
 * state_dir or control socket directory is created for the user; an
 * existing one is the administrator's (we only warn). */
static void prepare_dirs_for_user(struct app *app)
{
	const char *dirs[2] = {app->cfg->sip.state_dir, NULL};
	char sockdir[PATH_MAX];
	const char *sock = app->cfg->control.socket;
	const char *slash = sock ? strrchr(sock, '/') : NULL;

	if (slash && slash != sock && (size_t)(slash - sock) < sizeof sockdir) {
		memcpy(sockdir, sock, (size_t)(slash - sock));
		sockdir[slash - sock] = '\0';
		dirs[1] = sockdir;
	}
	for (size_t i = 0; i < 2; i++) {
		int r = dirs[i] ? svc_dir_prepare(dirs[i], &app->ids) : 0;

		if (r < 0)
			log_warn("cannot create %s for uid %u: %s", dirs[i], (unsigned)app->ids.uid,
			         strerror(-r));
		else if (r > 0)
			log_warn("%s is not writable by uid %u: %s", dirs[i],
			         (unsigned)app->ids.uid,
			         i == 0 ? "registrations will not be saved"
			                : "the control socket will stay behind at exit");
	}
}

/* --user: every socket is bound now; give root up for good.  The control
 * socket goes to the user so that the group may use it (socket_mode). */
static int drop_privileges(struct app *app)
{
	const char *sock = app->cfg->control.socket;
	int r;

	if (sock && *sock && chown(sock, app->ids.uid, app->ids.gid) < 0)
		log_warn("control socket %s: chown: %s", sock, strerror(errno));
	r = svc_drop_privileges(&app->ids);
	if (r < 0) {
		log_err("cannot drop privileges to uid %u gid %u: %s", (unsigned)app->ids.uid,
		        (unsigned)app->ids.gid, strerror(-r));
		return r;
	}
	log_info("running as uid %u gid %u", (unsigned)app->ids.uid, (unsigned)app->ids.gid);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"foreground", no_argument, NULL, 'f'},
	        {"check-config", no_argument, NULL, 'C'},
	        {"user", required_argument, NULL, 'U'},
	        {"group", required_argument, NULL, 'G'},
	        {"pid-file", required_argument, NULL, 'P'},
	        {"version", no_argument, NULL, 'V'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct app app = {.sigfd = -1, .exit_code = 0};
	int foreground = 0, check_only = 0, c, r;
	sigset_t mask;
	struct stat st;
	static char abs_config[PATH_MAX], abs_pid[PATH_MAX];
	const char *user = NULL, *group = NULL;
	pid_t other;

	while ((c = getopt_long(argc, argv, "c:fh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			app.config_path = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'C':
			check_only = 1;
			break;
		case 'U':
			user = optarg;
			break;
		case 'G':
			group = optarg;
			break;
		case 'P':
			app.pid_file = optarg;
			break;
		case 'V':
			printf("sipnatd %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sipnatd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (group && !user) {
		fprintf(stderr, "sipnatd: --group needs --user\n");
		usage(stderr);
		return 2;
	}
	if (user && (r = svc_ids_resolve(user, group, &app.ids)) < 0) {
		fprintf(stderr, "sipnatd: --user %s%s%s: %s\n", user, group ? " --group " : "",
		        group ? group : "",
		        r == -ENOENT ? "no such user or group"
		                     : "a numeric user without a passwd entry needs --group");
		return 1;
	}
	app.drop = user != NULL;
	/* Detaching changes directory to /: keep the PID file where it was
	 * meant to be. */
	if (app.pid_file && app.pid_file[0] != '/') {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof cwd) || snprintf(abs_pid, sizeof abs_pid, "%s/%s", cwd,
		                                         app.pid_file) >= (int)sizeof abs_pid) {
			fprintf(stderr, "sipnatd: --pid-file %s: path too long\n", app.pid_file);
			return 1;
		}
		app.pid_file = abs_pid;
	}
	if (!app.config_path && stat(SIPNAT_DEFAULT_CONFIG, &st) == 0)
		app.config_path = SIPNAT_DEFAULT_CONFIG;
	/* Detaching changes directory to /: keep the path valid for reloads. */
	if (app.config_path && app.config_path[0] != '/' &&
	    realpath(app.config_path, abs_config) != NULL)
		app.config_path = abs_config;

	r = load_config(app.config_path, &app.cfg, print_problem);
	if (check_only) {
		if (r < 0) {
			if (r != -EINVAL && app.config_path == NULL)
				fprintf(stderr, "sipnatd: %s\n", strerror(-r));
			return 1;
		}
		printf("%s: configuration OK\n",
		       app.config_path ? app.config_path : "built-in defaults");
		cfg_free(app.cfg);
		return 0;
	}
	if (r < 0) {
		fprintf(stderr, "sipnatd: cannot start: %s\n",
		        r == -EINVAL ? "configuration has errors (listed above)" : strerror(-r));
		return 1;
	}

	if (app.pid_file && (r = svc_pidfile_check(app.pid_file, &other)) < 0) {
		if (r == -EEXIST)
			fprintf(stderr,
			        "sipnatd: %s names process %ld, which is running: not started\n",
			        app.pid_file, (long)other);
		else
			fprintf(stderr, "sipnatd: --pid-file %s: %s\n", app.pid_file,
			        r == -EINVAL ? "the file exists and does not hold a PID"
			                     : strerror(-r));
		cfg_free(app.cfg);
		return 1;
	}

	log_open("sipnatd", app.cfg->log.target, app.cfg->log.level);
	if (!foreground && (r = daemonize()) < 0) {
		log_err("cannot detach: %s", strerror(-r));
		return 1;
	}

	/* Block the signals we handle in every thread created from now on;
	 * they are read from the signalfd on the SIP thread. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	app.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (app.sigfd < 0) {
		log_err("signalfd: %s", strerror(errno));
		return 1;
	}

	if (su_init() != 0) {
		log_err("cannot initialise Sofia-SIP");
		return 1;
	}
	log_route_sofia(app.cfg->log.level >= CFG_LOG_DEBUG ? 5 : 3);
	app.root = su_root_create(&app);
	if (!app.root) {
		log_err("cannot create the SIP event loop");
		su_deinit();
		return 1;
	}
	if (su_wait_create(app.sigwait, app.sigfd, SU_WAIT_IN) < 0 ||
	    su_root_register(app.root, app.sigwait, on_signal, &app, su_pri_normal) < 0) {
		log_err("cannot watch signals");
		app.exit_code = 1;
		goto out;
	}

	if (app.pid_file) {
		r = svc_pidfile_write(app.pid_file);
		if (r < 0) {
			log_err("cannot write the PID file %s: %s", app.pid_file,
			        r == -EEXIST ? "it names a running process" : strerror(-r));
			app.exit_code = 1;
			goto out;
		}
		app.pid_file_written = 1;
	}
	if (app.drop)
		prepare_dirs_for_user(&app);

	if (start_relay(&app) < 0) {
		app.exit_code = 1;
		goto out;
	}
	/* TURN runs on the relay's loops and takes its ports from its pool. */
	if (app.cfg->turn.n_listen &&
	    (r = app.relay ? turn_start(&app.turn, app.cfg, app.relay) : -EINVAL) < 0) {
		log_err("cannot start the TURN server: %s",
		        app.relay ? strerror(-r) : "the media relay did not start");
		app.exit_code = 1;
		goto out;
	}
	r = proxy_create(&app.proxy, app.root, app.cfg, app.relay, &app.bridge);
	if (r < 0) {
		log_err("cannot start the SIP proxy: %s", strerror(-r));
		app.exit_code = 1;
		goto out;
	}
	daemon_ctx_init(&app.dctx, app.proxy, &app.cfg, reload_notified, &app);
	app.dctx.relay = app.relay;
	app.dctx.turn = app.turn;
	if (app.cfg->control.socket_default && geteuid() != 0) {
		const char *why;
		r = ctlpath_prepare_user_dir(app.cfg->control.socket, &why);
		if (r < 0) {
			log_err("control socket %s: %s: %s (name one with [control] socket, or "
			        "socket = off)",
			        app.cfg->control.socket, why, strerror(-r));
			app.exit_code = 1;
			goto out;
		}
	}
	r = ctl_start(&app.ctl, app.root, &app.cfg->control, &daemon_ctl_ops, &app.dctx);
	if (r < 0) {
		log_err("cannot open the control socket or metrics endpoint: %s", strerror(-r));
		app.exit_code = 1;
		goto out;
	}
	if (app.drop && drop_privileges(&app) < 0) {
		app.exit_code = 1;
		goto out;
	}
	r = svc_watchdog_start(&app.watchdog, app.root);
	if (r < 0)
		log_warn("no watchdog pings: %s", strerror(-r));
	else if (app.watchdog)
		log_info("watchdog: pinging every %u ms", svc_watchdog_ms(app.watchdog));
	svc_notify_ready();
	log_info("sipnatd %s started (%s)", PACKAGE_VERSION,
	         app.config_path ? app.config_path : "built-in defaults");

	su_root_run(app.root);

out:
	svc_watchdog_stop(app.watchdog);
	ctl_stop(app.ctl);
	proxy_destroy(app.proxy);
	/* After the media module is gone, so that late relay events find the
	 * bridge empty; then let the su_root drop what is still queued. */
	turn_stop(app.turn); /* its handles live on the relay's loops */
	relay_stop(app.relay);
	if (app.root)
		su_root_step(app.root, 0);
	su_root_unregister(app.root, app.sigwait, on_signal, &app);
	su_root_destroy(app.root);
	su_deinit();
	close(app.sigfd);
	cfg_free(app.cfg);
	if (app.pid_file_written)
		svc_pidfile_remove(app.pid_file);
	log_close();
	return app.exit_code;
}
