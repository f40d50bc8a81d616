/* Unit tests for svc: service-manager notifications, the watchdog pinger,
 * PID files and dropping root.
 *
 * The notifications go to a real AF_UNIX datagram socket named by
 * NOTIFY_SOCKET, as systemd's would; the watchdog runs on a real su_root.
 * Dropping privileges is tried in a forked child, so the test process keeps
 * its own credentials.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sofia-sip/su.h>
#include <sofia-sip/su_wait.h>

#include "sipnat/svc.h"

static char tmpdir[64];
static char sockpath[96];
static int listener = -1;

static void tmp_setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/check_svc.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmp_teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A datagram socket standing in for systemd's notify socket. */
static void notify_setup(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 2};

	tmp_setup();
	snprintf(sockpath, sizeof sockpath, "%s/notify", tmpdir);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sockpath);
	listener = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(listener, 0);
	ck_assert_int_eq(bind(listener, (struct sockaddr *)&sa, sizeof sa), 0);
	setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setenv("NOTIFY_SOCKET", sockpath, 1);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void notify_teardown(void)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	close(listener);
	listener = -1;
	tmp_teardown();
}

/* One datagram, or "" when none arrives within the timeout. */
static const char *recv_msg(char *buf, size_t len, int flags)
{
	ssize_t n = recv(listener, buf, len - 1, flags);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

START_TEST(interval_is_half_in_ms)
{
	ck_assert_uint_eq(svc_watchdog_interval_ms(0), 0);
	ck_assert_uint_eq(svc_watchdog_interval_ms(1000000), 500);
	ck_assert_uint_eq(svc_watchdog_interval_ms(30000000), 15000);
	ck_assert_uint_eq(svc_watchdog_interval_ms(3000), 1);
	/* Below one millisecond: still pinging, never a 0 ms timer. */
	ck_assert_uint_eq(svc_watchdog_interval_ms(1), 1);
	ck_assert_uint_eq(svc_watchdog_interval_ms(UINT64_MAX), UINT_MAX);
}
END_TEST

START_TEST(notify_messages)
{
	char buf[512];

	ck_assert_int_eq(svc_notify_ready(), 0);
	ck_assert_ptr_nonnull(strstr(recv_msg(buf, sizeof buf, 0), "READY=1"));
	ck_assert_int_eq(svc_notify_reloading(), 0);
	recv_msg(buf, sizeof buf, 0);
	ck_assert_ptr_nonnull(strstr(buf, "RELOADING=1"));
	ck_assert_ptr_nonnull(strstr(buf, "MONOTONIC_USEC="));
	ck_assert_ptr_null(strstr(buf, "READY=1"));
	ck_assert_int_eq(svc_notify_stopping(), 0);
	ck_assert_ptr_nonnull(strstr(recv_msg(buf, sizeof buf, 0), "STOPPING=1"));
	/* The environment stays: a second READY=1 (after a reload) arrives. */
	ck_assert_int_eq(svc_notify_ready(), 0);
	ck_assert_ptr_nonnull(strstr(recv_msg(buf, sizeof buf, 0), "READY=1"));
}
END_TEST

START_TEST(notify_without_manager_is_silent)
{
	char buf[64];

	unsetenv("NOTIFY_SOCKET");
	ck_assert_int_eq(svc_notify_ready(), 0);
	ck_assert_int_eq(svc_notify_stopping(), 0);
	ck_assert_str_eq(recv_msg(buf, sizeof buf, MSG_DONTWAIT), "");
}
END_TEST

static su_root_t *root_create(void)
{
	su_root_t *root;

	ck_assert_int_eq(su_init(), 0);
	root = su_root_create(NULL);
	ck_assert_ptr_nonnull(root);
	return root;
}

static void root_destroy(su_root_t *root)
{
	su_root_destroy(root);
	su_deinit();
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

START_TEST(watchdog_pings_while_loop_runs)
{
	su_root_t *root = root_create();
	struct svc_watchdog *w = NULL;
	char buf[128];
	int pings = 0;
	long end;

	setenv("WATCHDOG_USEC", "40000", 1); /* pings every 20 ms */
	ck_assert_int_eq(svc_watchdog_start(&w, root), 0);
	ck_assert_ptr_nonnull(w);
	ck_assert_uint_eq(svc_watchdog_ms(w), 20);
	/* Read as we go: an AF_UNIX datagram sender blocks once the
	 * receiver has max_dgram_qlen (10) unread messages. */
	end = now_ms() + 300;
	while (now_ms() < end) {
		su_root_step(root, 10);
		while (strcmp(recv_msg(buf, sizeof buf, MSG_DONTWAIT), "") != 0)
			pings += strcmp(buf, "WATCHDOG=1") == 0;
	}
	/* 300 ms at 20 ms: about 15; a loaded machine still makes 4. */
	ck_assert_int_ge(pings, 4);
	svc_watchdog_stop(w);
	/* Stopped: no more pings even though the loop keeps turning. */
	while (strcmp(recv_msg(buf, sizeof buf, MSG_DONTWAIT), "") != 0)
		continue;
	end = now_ms() + 100;
	while (now_ms() < end)
		su_root_step(root, 10);
	ck_assert_str_eq(recv_msg(buf, sizeof buf, MSG_DONTWAIT), "");
	root_destroy(root);
}
END_TEST

START_TEST(watchdog_off_unless_asked)
{
	su_root_t *root = root_create();
	struct svc_watchdog *w = (struct svc_watchdog *)1;
	char pid[32];

	ck_assert_int_eq(svc_watchdog_start(&w, root), 0);
	ck_assert_ptr_null(w);
	ck_assert_uint_eq(svc_watchdog_ms(w), 0);
	/* WATCHDOG_PID names another process: the watchdog is not ours. */
	setenv("WATCHDOG_USEC", "1000000", 1);
	snprintf(pid, sizeof pid, "%ld", (long)getppid());
	setenv("WATCHDOG_PID", pid, 1);
	ck_assert_int_eq(svc_watchdog_start(&w, root), 0);
	ck_assert_ptr_null(w);
	/* Our own PID: on. */
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	ck_assert_int_eq(svc_watchdog_start(&w, root), 0);
	ck_assert_ptr_nonnull(w);
	ck_assert_uint_eq(svc_watchdog_ms(w), 500);
	svc_watchdog_stop(w);
	/* Garbage is an error, not a silent "off". */
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "soon", 1);
	ck_assert_int_lt(svc_watchdog_start(&w, root), 0);
	ck_assert_ptr_null(w);
	root_destroy(root);
}
END_TEST

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static long read_pid(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -2;
	fclose(f);
	return v;
}

/* The PID of a process that existed and is gone (reaped). */
static pid_t dead_pid(void)
{
	pid_t p = fork();

	ck_assert_int_ge(p, 0);
	if (p == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(p, NULL, 0), p);
	return p;
}

START_TEST(pidfile_check)
{
	char path[PATH_MAX], text[32];
	pid_t running = -1;

	snprintf(path, sizeof path, "%s/sipnatd.pid", tmpdir);
	ck_assert_int_eq(svc_pidfile_check(path, &running), 0); /* missing */
	ck_assert_int_eq(running, 0);
	write_file(path, "");
	ck_assert_int_eq(svc_pidfile_check(path, &running), 0); /* empty */
	write_file(path, "12ab\n");
	ck_assert_int_eq(svc_pidfile_check(path, NULL), -EINVAL);
	write_file(path, "-5\n");
	ck_assert_int_eq(svc_pidfile_check(path, NULL), -EINVAL);
	snprintf(text, sizeof text, "%ld\n", (long)dead_pid());
	write_file(path, text);
	ck_assert_int_eq(svc_pidfile_check(path, &running), 0); /* stale */
	snprintf(text, sizeof text, "%ld\n", (long)getppid());
	write_file(path, text);
	ck_assert_int_eq(svc_pidfile_check(path, &running), -EEXIST);
	ck_assert_int_eq(running, getppid());
	snprintf(text, sizeof text, "%ld\n", (long)getpid());
	write_file(path, text);
	ck_assert_int_eq(svc_pidfile_check(path, NULL), 0); /* ourselves */
}
END_TEST

START_TEST(pidfile_write_and_remove)
{
	char path[PATH_MAX], link[PATH_MAX], text[32];

	snprintf(path, sizeof path, "%s/sipnatd.pid", tmpdir);
	ck_assert_int_eq(svc_pidfile_write(path), 0);
	ck_assert_int_eq(read_pid(path), getpid());
	/* A stale file is taken over. */
	snprintf(text, sizeof text, "%ld\n", (long)dead_pid());
	write_file(path, text);
	ck_assert_int_eq(svc_pidfile_write(path), 0);
	ck_assert_int_eq(read_pid(path), getpid());
	svc_pidfile_remove(path);
	ck_assert_int_ne(access(path, F_OK), 0);
	/* A running process's file is neither overwritten nor removed. */
	snprintf(text, sizeof text, "%ld\n", (long)getppid());
	write_file(path, text);
	ck_assert_int_eq(svc_pidfile_write(path), -EEXIST);
	ck_assert_int_eq(read_pid(path), getppid());
	svc_pidfile_remove(path);
	ck_assert_int_eq(read_pid(path), getppid());
	/* Not through a symlink planted at the path. */
	unlink(path);
	snprintf(link, sizeof link, "%s/target", tmpdir);
	ck_assert_int_eq(symlink(link, path), 0);
	ck_assert_int_lt(svc_pidfile_write(path), 0);
	ck_assert_int_ne(access(link, F_OK), 0);
}
END_TEST

START_TEST(ids_resolve)
{
	struct svc_ids ids;
	struct passwd *pw = getpwnam("nobody");
	struct group *gr = getgrnam("nogroup");

	ck_assert_int_eq(svc_ids_resolve("root", NULL, &ids), 0);
	ck_assert_int_eq(ids.uid, 0);
	ck_assert_int_eq(ids.gid, 0);
	ck_assert_str_eq(ids.name, "root");
	ck_assert_int_eq(svc_ids_resolve("0", NULL, &ids), 0);
	ck_assert_str_eq(ids.name, "root");
	ck_assert_int_eq(svc_ids_resolve("no-such-user-sipnat", NULL, &ids), -ENOENT);
	ck_assert_int_eq(svc_ids_resolve("root", "no-such-group-sipnat", &ids), -ENOENT);
	ck_assert_int_eq(svc_ids_resolve(NULL, NULL, &ids), -EINVAL);
	ck_assert_int_eq(svc_ids_resolve("", NULL, &ids), -EINVAL);
	/* A uid nobody has: no primary group to take, unless one is given. */
	ck_assert_int_eq(svc_ids_resolve("3999999", NULL, &ids), -EINVAL);
	ck_assert_int_eq(svc_ids_resolve("3999999", "3999998", &ids), 0);
	ck_assert_int_eq(ids.uid, 3999999);
	ck_assert_int_eq(ids.gid, 3999998);
	ck_assert_str_eq(ids.name, "");
	if (pw) {
		ck_assert_int_eq(svc_ids_resolve("nobody", NULL, &ids), 0);
		ck_assert_int_eq(ids.uid, pw->pw_uid);
		ck_assert_int_eq(ids.gid, pw->pw_gid);
		ck_assert_str_eq(ids.name, "nobody");
	}
	if (pw && gr) {
		ck_assert_int_eq(svc_ids_resolve("nobody", "nogroup", &ids), 0);
		ck_assert_int_eq(ids.gid, gr->gr_gid);
		ck_assert_int_eq(svc_ids_resolve("nobody", "0", &ids), 0);
		ck_assert_int_eq(ids.gid, 0);
	}
}
END_TEST

/* An unprivileged user to drop to: nobody, or a made-up uid. */
static void unprivileged(struct svc_ids *ids)
{
	if (svc_ids_resolve("nobody", NULL, ids) < 0)
		ck_assert_int_eq(svc_ids_resolve("3999999", "3999999", ids), 0);
}

START_TEST(drop_is_for_good)
{
	struct svc_ids ids;
	int status;
	pid_t p;

	unprivileged(&ids);
	p = fork();
	ck_assert_int_ge(p, 0);
	if (p == 0) {
		uid_t r, e, s;
		gid_t rg, eg, sg;
		gid_t groups[64];
		int n, rc = svc_drop_privileges(&ids);

		if (geteuid() != 0 && getuid() != ids.uid)
			_exit(rc == -EPERM ? 0 : 10); /* not root: refused */
		if (rc != 0)
			_exit(11);
		if (getresuid(&r, &e, &s) < 0 || r != ids.uid || e != ids.uid || s != ids.uid)
			_exit(12);
		if (getresgid(&rg, &eg, &sg) < 0 || rg != ids.gid || eg != ids.gid || sg != ids.gid)
			_exit(13);
		if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
			_exit(14);
		/* Root's supplementary groups are gone. */
		n = getgroups(64, groups);
		for (int i = 0; i < n; i++)
			if (groups[i] == 0)
				_exit(15);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(p, &status, 0), p);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(dir_prepare)
{
	struct svc_ids ids;
	char dir[PATH_MAX], file[PATH_MAX];
	struct stat st;

	unprivileged(&ids);
	snprintf(dir, sizeof dir, "%s/state", tmpdir);
	snprintf(file, sizeof file, "%s/file", tmpdir);
	write_file(file, "x");
	ck_assert_int_eq(svc_dir_prepare(file, &ids), -ENOTDIR);
	if (geteuid() != 0) {
		/* chown to another user is refused; nothing is left behind. */
		ck_assert_int_lt(svc_dir_prepare(dir, &ids), 0);
		ck_assert_int_ne(access(dir, F_OK), 0);
		return;
	}
	ck_assert_int_eq(svc_dir_prepare(dir, &ids), 0);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_uid, ids.uid);
	ck_assert_int_eq(st.st_gid, ids.gid);
	/* Existing: left alone, writable by its owner. */
	ck_assert_int_eq(svc_dir_prepare(dir, &ids), 0);
	/* Root's own 0700 directory is not the user's to write: a warning. */
	ck_assert_int_eq(chown(dir, 0, 0), 0);
	ck_assert_int_eq(chmod(dir, 0700), 0);
	ck_assert_int_eq(svc_dir_prepare(dir, &ids), 1);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_int_eq(st.st_uid, 0);
}
END_TEST

static Suite *svc_suite(void)
{
	Suite *s = suite_create("svc");
	TCase *tc;

	tc = tcase_create("watchdog interval");
	tcase_add_test(tc, interval_is_half_in_ms);
	suite_add_tcase(s, tc);

	tc = tcase_create("notify");
	tcase_add_checked_fixture(tc, notify_setup, notify_teardown);
	tcase_add_test(tc, notify_messages);
	tcase_add_test(tc, notify_without_manager_is_silent);
	suite_add_tcase(s, tc);

	tc = tcase_create("watchdog");
	tcase_add_checked_fixture(tc, notify_setup, notify_teardown);
	tcase_add_test(tc, watchdog_pings_while_loop_runs);
	tcase_add_test(tc, watchdog_off_unless_asked);
	suite_add_tcase(s, tc);

	tc = tcase_create("pid file");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, pidfile_check);
	tcase_add_test(tc, pidfile_write_and_remove);
	suite_add_tcase(s, tc);

	tc = tcase_create("privileges");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, ids_resolve);
	tcase_add_test(tc, drop_is_for_good);
	tcase_add_test(tc, dir_prepare);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(svc_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
