/* svc: how sipnatd lives as a service.
 *
 * Three independent parts, all small:
 *
 *  - the service manager's notification protocol (sd_notify(3), through
 *    libsystemd): READY=1 once every listener is up, RELOADING=1 ... READY=1
 *    around a reload, STOPPING=1 on a graceful stop, and WATCHDOG=1 pings
 *    from a timer on the SIP thread, so that a SIP thread that hangs stops
 *    the pings and systemd restarts the service (WatchdogSec=).  Outside
 *    systemd (no NOTIFY_SOCKET) every notification is a no-op;
 *
 *  - a PID file for init systems that want one: refused when it names a
 *    running process, written by the process that runs, removed at exit
 *    only while it still holds our PID;
 *
 *  - dropping root for a named user and group after every socket is bound,
 *    for starts outside systemd (under systemd, User= and
 *    AmbientCapabilities= do this job).
 *
 * Threads: [sip] functions run on the thread that runs the su_root
 * (sipnatd's main thread); [start] functions run before other threads may
 * change credentials or files (startup, or the exit path); [pure] ones
 * touch nothing outside their arguments.  Every function returns 0 or a
 * negative errno unless it says otherwise.
 */
#ifndef SIPNAT_SVC_H
#define SIPNAT_SVC_H

#include <stdint.h>
#include <sys/types.h>

#include <sofia-sip/su_wait.h>

/* [sip] Notifications to the service manager; no-ops (returning 0) when
 * NOTIFY_SOCKET is unset.  The environment is left as it is, so that a
 * notification later in the run still finds the socket. */
int svc_notify_ready(void);
int svc_notify_reloading(void); /* carries MONOTONIC_USEC, see sd_notify(3) */
int svc_notify_stopping(void);

/* [pure] The interval between two WATCHDOG=1 pings for a watchdog timeout
 * of usec microseconds: half of it (sd_watchdog_enabled(3) recommends
 * pinging at least that often), in milliseconds, at least 1.  0 when usec
 * is 0 (no watchdog). */
unsigned svc_watchdog_interval_ms(uint64_t usec);

/* The watchdog pinger: an su_timer on root that sends WATCHDOG=1 every
 * svc_watchdog_interval_ms(WATCHDOG_USEC) while the loop runs.
 * svc_watchdog_start() sets *out to NULL and returns 0 when the service
 * manager asked for no watchdog (WATCHDOG_USEC unset, or WATCHDOG_PID names
 * another process); -ENOMEM, or the error of sd_watchdog_enabled(3) for a
 * malformed variable.  The caller owns *out and releases it with
 * svc_watchdog_stop() (NULL is fine) before root is destroyed. [sip] */
struct svc_watchdog;
int svc_watchdog_start(struct svc_watchdog **out, su_root_t *root);
unsigned svc_watchdog_ms(const struct svc_watchdog *w); /* 0 for NULL */
void svc_watchdog_stop(struct svc_watchdog *w);

/* [start] PID files.
 *
 * svc_pidfile_check(): 0 when path does not exist, is empty or names no
 * running process (a stale file); -EEXIST when it names a process that
 * runs and is not the caller (its PID in *running, which may be NULL);
 * -EINVAL when the file does not hold a PID; other read errors as they
 * come.
 *
 * svc_pidfile_write(): checks as above, then writes the caller's PID and a
 * newline (mode 0644, not following a symlink at path).
 *
 * svc_pidfile_remove(): removes path if it still holds the caller's PID (a
 * newer instance may have taken it over); errors are ignored, because at
 * exit there is nothing left to do about them (a file left behind is
 * stale and the next start overwrites it). */
int svc_pidfile_check(const char *path, pid_t *running);
int svc_pidfile_write(const char *path);
void svc_pidfile_remove(const char *path);

/* Credentials to drop to.  name is the user name (for the supplementary
 * groups) or empty when only a numeric uid was given. */
struct svc_ids {
	uid_t uid;
	gid_t gid;
	char name[64];
};

/* [start] Resolves user (a name or a number) and group (a name, a number,
 * or NULL for the user's primary group) into *out.  -ENOENT for an unknown
 * user or group, -EINVAL for a NULL user or a numeric user without group
 * (there is no primary group to take). */
int svc_ids_resolve(const char *user, const char *group, struct svc_ids *out);

/* [start] Creates directory dir (mode 0750, parents must exist) owned by
 * ids when it does not exist yet, so that the daemon can still write there
 * after dropping root.  An existing directory is left alone (its owner is
 * the administrator's choice): 1 is returned when it exists and is not
 * writable by ids (a warning for the caller to log), else 0. */
int svc_dir_prepare(const char *dir, const struct svc_ids *ids);

/* [start] Drops to ids for good: supplementary groups (initgroups when a
 * name is known, else just gid), then gid, then uid (real, effective and
 * saved), then proves it: -EPERM if any id is not the requested one or if
 * setuid(0)/setgid(0) would still succeed.  glibc applies credential
 * changes to every thread of the process, so relay threads started before
 * this call drop too.  A no-op when the process already runs as ids.uid
 * and ids.gid (a non-root start as the named user). */
int svc_drop_privileges(const struct svc_ids *ids);

#endif
