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

#include "sipnat/cfg.h"
#include "sipnat/log.h"
#include "sipnat/proxy.h"

struct app {
	su_root_t *root;
	struct proxy *proxy;
	struct cfg *cfg;
	const char *config_path; /* NULL: built-in defaults */
	int sigfd;
	su_wait_t sigwait[1];
	int stopping;
	int exit_code;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sipnatd [-c FILE] [-f] [--check-config] [--version] [-h]\n"
		"\n"
		"SIP-aware NAT traversal edge: a stateful SIP proxy in front of a PBX or\n"
		"trunk for devices behind NAT.\n"
		"\n"
		"  -c, --config FILE   read FILE (default " SIPNAT_DEFAULT_CONFIG
		", or built-in\n"
		"                      defaults when that file does not exist)\n"
		"  -f, --foreground    stay in the foreground (default: detach)\n"
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

static void log_problem(void *arg, const char *file, unsigned line, const char *reason)
{
	(void)arg;
	if (line)
		log_err("%s:%u: %s", file ? file : "-", line, reason);
	else
		log_err("%s: %s", file ? file : "-", reason);
}

static int load_config(const char *path, struct cfg **out, cfg_error_f *report)
{
	if (!path)
		return cfg_defaults(out);
	return cfg_load(path, out, report, NULL);
}

static void drained(void *arg)
{
	struct app *app = arg;

	log_info("stopped");
	su_root_break(app->root);
}

static void reload(struct app *app)
{
	struct cfg *fresh = NULL;
	int r;

	log_info("reloading %s", app->config_path ? app->config_path : "built-in defaults");
	r = load_config(app->config_path, &fresh, log_problem);
	if (r < 0) {
		log_err("reload refused, the running configuration stays: %s",
			r == -EINVAL ? "the file has errors (listed above)" : strerror(-r));
		return;
	}
	log_open("sipnatd", fresh->log.target, fresh->log.level);
	log_route_sofia(fresh->log.level >= CFG_LOG_DEBUG ? 5 : 3);
	r = proxy_reload(app->proxy, fresh);
	cfg_free(app->cfg);
	app->cfg = fresh;
	if (r < 0)
		log_warn("reload: some settings could not be applied: %s", strerror(-r));
	else
		log_info("reloaded");
}

static int on_signal(struct app *app, su_wait_t *w, struct app *arg)
{
	struct signalfd_siginfo si;

	(void)w;
	(void)arg;
	while (read(app->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
		switch (si.ssi_signo) {
		case SIGHUP:
			reload(app);
			break;
		case SIGTERM:
		case SIGINT:
			if (app->stopping) {
				log_warn("second stop signal: exiting now");
				su_root_break(app->root);
				break;
			}
			app->stopping = 1;
			log_info("stopping (signal %u)", si.ssi_signo);
			proxy_drain(app->proxy, drained, app);
			break;
		default:
			break;
		}
	}
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

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"foreground", no_argument, NULL, 'f'},
		{"check-config", no_argument, NULL, 'C'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct app app = {.sigfd = -1, .exit_code = 0};
	int foreground = 0, check_only = 0, c, r;
	sigset_t mask;
	struct stat st;

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
	if (!app.config_path && stat(SIPNAT_DEFAULT_CONFIG, &st) == 0)
		app.config_path = SIPNAT_DEFAULT_CONFIG;

	r = load_config(app.config_path, &app.cfg, print_problem);
	if (check_only) {
		if (r < 0) {
			if (r != -EINVAL && app.config_path == NULL)
				fprintf(stderr, "sipnatd: %s\n", strerror(-r));
			return 1;
		}
		printf("%s: configuration OK\n", app.config_path ? app.config_path : "built-in defaults");
		cfg_free(app.cfg);
		return 0;
	}
	if (r < 0) {
		fprintf(stderr, "sipnatd: cannot start: %s\n",
			r == -EINVAL ? "configuration has errors (listed above)" : strerror(-r));
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

	r = proxy_create(&app.proxy, app.root, app.cfg);
	if (r < 0) {
		log_err("cannot start the SIP proxy: %s", strerror(-r));
		app.exit_code = 1;
		goto out;
	}
	log_info("sipnatd %s started (%s)", PACKAGE_VERSION,
		 app.config_path ? app.config_path : "built-in defaults");

	su_root_run(app.root);

out:
	proxy_destroy(app.proxy);
	su_root_unregister(app.root, app.sigwait, on_signal, &app);
	su_root_destroy(app.root);
	su_deinit();
	close(app.sigfd);
	cfg_free(app.cfg);
	log_close();
	return app.exit_code;
}
