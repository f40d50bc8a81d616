/* svc: service-manager notifications, the watchdog pinger, the PID file and
 * dropping root.  See include/sipnat/svc.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

struct svc_watchdog;
#define SU_TIMER_ARG_T struct svc_watchdog

#include <sofia-sip/su_wait.h>

#include "sipnat/svc.h"

struct svc_watchdog {
	su_timer_t *timer;
	unsigned ms;
};

/* sd_notify() returns 0 when NOTIFY_SOCKET is unset, >0 when sent. */
static int notify(const char *state)
{
	int r = sd_notify(0, state);

	return r < 0 ? r : 0;
}

int svc_notify_ready(void)
{
	return notify("READY=1\nSTATUS=running");
}

int svc_notify_reloading(void)
{
	struct timespec ts;
	char buf[96];

	/* systemd 253's Type=notify-reload wants the time of the request
	 * with RELOADING=1 (sd_notify(3)); older managers ignore it. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(buf, sizeof buf, "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ULL +
	                 (unsigned long long)ts.tv_nsec / 1000ULL);
	return notify(buf);
}

int svc_notify_stopping(void)
{
	return notify("STOPPING=1\nSTATUS=stopping");
}

unsigned svc_watchdog_interval_ms(uint64_t usec)
{
	uint64_t ms;

	if (usec == 0)
		return 0;
	ms = usec / 2000;
	if (ms == 0)
		return 1;
	return ms > UINT_MAX ? UINT_MAX : (unsigned)ms;
}

/* Called on the SIP thread every w->ms: the ping proves that the loop still
 * turns, which is what a hang would stop. */
static void watchdog_ping(su_root_magic_t *magic, su_timer_t *t, struct svc_watchdog *w)
{
	(void)magic;
	(void)t;
	(void)w;
	notify("WATCHDOG=1");
}

int svc_watchdog_start(struct svc_watchdog **out, su_root_t *root)
{
	struct svc_watchdog *w;
	uint64_t usec = 0;
	int r;

	*out = NULL;
	/* 0 unless WATCHDOG_USEC is set and WATCHDOG_PID is unset or ours. */
	r = sd_watchdog_enabled(0, &usec);
	if (r <= 0)
		return r;
	w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->ms = svc_watchdog_interval_ms(usec);
	w->timer = su_timer_create(su_root_task(root), w->ms);
	if (!w->timer || su_timer_set_for_ever(w->timer, watchdog_ping, w) < 0) {
		if (w->timer)
			su_timer_destroy(w->timer);
		free(w);
		return -ENOMEM;
	}
	/* The first ping at once: the manager counts from READY=1 or from
	 * the start, whichever came first. */
	notify("WATCHDOG=1");
	*out = w;
	return 0;
}

unsigned svc_watchdog_ms(const struct svc_watchdog *w)
{
	return w ? w->ms : 0;
}

void svc_watchdog_stop(struct svc_watchdog *w)
{
	if (!w)
		return;
	su_timer_destroy(w->timer);
	free(w);
}

/* Reads the PID in path: 0 and *pid = 0 for a missing or empty file. */
static int pidfile_read(const char *path, pid_t *pid)
{
	char buf[32];
	char *end;
	ssize_t n;
	long v;
	int fd;

	*pid = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (n == 0 || strspn(buf, " \t\r\n") == (size_t)n)
		return 0;
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || end == buf || v <= 0 || v > INT_MAX || strspn(end, " \t\r\n") != strlen(end))
		return -EINVAL;
	*pid = (pid_t)v;
	return 0;
}

int svc_pidfile_check(const char *path, pid_t *running)
{
	pid_t pid;
	int r;

	if (running)
		*running = 0;
	r = pidfile_read(path, &pid);
	if (r < 0 || pid == 0 || pid == getpid())
		return r;
	/* EPERM: it runs, under another user. */
	if (kill(pid, 0) == 0 || errno == EPERM) {
		if (running)
			*running = pid;
		return -EEXIST;
	}
	return 0;
}

int svc_pidfile_write(const char *path)
{
	char buf[32];
	int fd, n, r;

	r = svc_pidfile_check(path, NULL);
	if (r < 0)
		return r;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	r = write(fd, buf, (size_t)n) == n ? 0 : (errno ? -errno : -EIO);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		unlink(path);
	return r;
}

void svc_pidfile_remove(const char *path)
{
	pid_t pid;

	if (!path)
		return;
	if (pidfile_read(path, &pid) == 0 && pid == getpid())
		unlink(path);
}

/* A decimal id, or -1. */
static long parse_id(const char *s)
{
	char *end;
	long v;

	if (!s || !*s || strspn(s, "0123456789") != strlen(s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v >= (long)INT_MAX)
		return -1;
	return v;
}

int svc_ids_resolve(const char *user, const char *group, struct svc_ids *out)
{
	struct passwd *pw;
	long id;
	int have_gid = 0;

	if (!user || !*user)
		return -EINVAL;
	memset(out, 0, sizeof *out);
	pw = getpwnam(user);
	id = parse_id(user);
	if (!pw && id >= 0)
		pw = getpwuid((uid_t)id);
	if (pw) {
		out->uid = pw->pw_uid;
		out->gid = pw->pw_gid;
		have_gid = 1;
		if (strlen(pw->pw_name) < sizeof out->name)
			memcpy(out->name, pw->pw_name, strlen(pw->pw_name) + 1);
	} else if (id >= 0) {
		out->uid = (uid_t)id;
	} else {
		return -ENOENT;
	}
	if (group && *group) {
		struct group *gr = getgrnam(group);

		id = parse_id(group);
		if (gr)
			out->gid = gr->gr_gid;
		else if (id >= 0)
			out->gid = (gid_t)id;
		else
			return -ENOENT;
		have_gid = 1;
	}
	return have_gid ? 0 : -EINVAL;
}

/* Whether ids may write into the directory st describes (by the mode bits;
 * ACLs are not looked at). */
static int writable_by(const struct stat *st, const struct svc_ids *ids)
{
	if (ids->uid == 0)
		return 1;
	if (st->st_uid == ids->uid)
		return (st->st_mode & S_IWUSR) && (st->st_mode & S_IXUSR);
	if (st->st_gid == ids->gid)
		return (st->st_mode & S_IWGRP) && (st->st_mode & S_IXGRP);
	return (st->st_mode & S_IWOTH) && (st->st_mode & S_IXOTH);
}

int svc_dir_prepare(const char *dir, const struct svc_ids *ids)
{
	struct stat st;

	if (!dir || !*dir)
		return 0;
	if (mkdir(dir, 0750) == 0) {
		if (chown(dir, ids->uid, ids->gid) < 0) {
			int r = -errno;

			rmdir(dir);
			return r;
		}
		return 0;
	}
	if (errno != EEXIST)
		return -errno;
	if (stat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	return writable_by(&st, ids) ? 0 : 1;
}

int svc_drop_privileges(const struct svc_ids *ids)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (getuid() == ids->uid && geteuid() == ids->uid && getgid() == ids->gid &&
	    getegid() == ids->gid)
		return 0;
	/* Groups first: once the uid is gone, nothing else may be changed. */
	if (ids->name[0] ? initgroups(ids->name, ids->gid) < 0 : setgroups(1, &ids->gid) < 0)
		return -errno;
	if (setresgid(ids->gid, ids->gid, ids->gid) < 0)
		return -errno;
	if (setresuid(ids->uid, ids->uid, ids->uid) < 0)
		return -errno;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return -errno;
	if (ru != ids->uid || eu != ids->uid || su != ids->uid || rg != ids->gid ||
	    eg != ids->gid || sg != ids->gid)
		return -EPERM;
	/* The proof that there is no way back (no saved root id, no
	 * capability left): for an unprivileged target these must fail. */
	if (ids->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		return -EPERM;
	if (ids->uid != 0 && ids->gid != 0 && (setgid(0) == 0 || setegid(0) == 0))
		return -EPERM;
	return 0;
}
