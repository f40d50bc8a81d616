/* ctlpath: where the control socket is when the configuration does not say.
 *
 * sipnatd run by root (or by systemd, which starts it as root or gives it
 * /run/sipnat) uses CTLPATH_SYSTEM.  Run by another user, which cannot
 * create /run/sipnat, it uses a directory of its own: ctlpath_user().
 * sipnatctl tries the same two places, so that `sipnatd -f` and
 * `sipnatctl status` work for a user without any configuration.
 *
 * Threads: [any]; reads the environment and the uid, keeps no state.
 * Linked into both sipnatd and sipnatctl.
 */
#ifndef SIPNAT_CTLPATH_H
#define SIPNAT_CTLPATH_H

#include <stddef.h>

#define CTLPATH_SYSTEM "/run/sipnat/control.sock"

/* $XDG_RUNTIME_DIR/sipnat/control.sock when XDG_RUNTIME_DIR is an absolute
 * path (the per-user runtime directory of pam_systemd), else
 * /tmp/sipnat-UID/control.sock.  Returns 0, or -ENAMETOOLONG. */
int ctlpath_user(char *buf, size_t len);

/* Makes the directory of a per-user socket path safe to bind in: creates it
 * 0700 when missing; refuses one that is not a directory of our own closed
 * to group and others (in /tmp anybody could have made it first).  Returns
 * 0 or a negative errno with a static reason in *why. */
int ctlpath_prepare_user_dir(const char *sock_path, const char **why);

#endif
