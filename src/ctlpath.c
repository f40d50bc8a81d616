/* ctlpath: see include/sipnat/ctlpath.h. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sipnat/ctlpath.h"

int ctlpath_user(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(buf, len, "%s/sipnat/control.sock", xdg);
	else
		n = snprintf(buf, len, "/tmp/sipnat-%u/control.sock", (unsigned)geteuid());
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int ctlpath_prepare_user_dir(const char *sock_path, const char **why)
{
	char dir[4096];
	const char *slash = strrchr(sock_path, '/');
	struct stat st;
	size_t n;

	*why = "";
	if (!slash || slash == sock_path || (n = (size_t)(slash - sock_path)) >= sizeof dir) {
		*why = "no directory in the path";
		return -EINVAL;
	}
	memcpy(dir, sock_path, n);
	dir[n] = '\0';
	/* The parent (XDG_RUNTIME_DIR, /tmp) exists; only the last level is ours
	 * to make. */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*why = "cannot create the directory";
		return -errno;
	}
	if (lstat(dir, &st) < 0) {
		*why = "cannot inspect the directory";
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		*why = "it is not a directory (a symbolic link?)";
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		*why = "the directory belongs to another user";
		return -EPERM;
	}
	if (st.st_mode & 077) {
		*why = "the directory is open to group or others (it must be 0700)";
		return -EPERM;
	}
	return 0;
}
