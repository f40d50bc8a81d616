/* Unit tests for ctlpath: the per-user control socket path and the checks
 * on its directory. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sipnat/ctlpath.h"

static char base[64];

static void make_base(void)
{
	snprintf(base, sizeof base, "/tmp/check_ctlpath.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base));
}

static void rm_base(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(user_path_xdg)
{
	char p[256];

	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	ck_assert_int_eq(ctlpath_user(p, sizeof p), 0);
	ck_assert_str_eq(p, "/run/user/1000/sipnat/control.sock");
	ck_assert_int_eq(ctlpath_user(p, 10), -ENAMETOOLONG);
}
END_TEST

START_TEST(user_path_without_xdg)
{
	char p[256], want[64];

	snprintf(want, sizeof want, "/tmp/sipnat-%u/control.sock", (unsigned)geteuid());
	unsetenv("XDG_RUNTIME_DIR");
	ck_assert_int_eq(ctlpath_user(p, sizeof p), 0);
	ck_assert_str_eq(p, want);
	/* a relative XDG_RUNTIME_DIR is no runtime directory */
	setenv("XDG_RUNTIME_DIR", "run/user/1000", 1);
	ck_assert_int_eq(ctlpath_user(p, sizeof p), 0);
	ck_assert_str_eq(p, want);
}
END_TEST

START_TEST(dir_created_0700)
{
	char sock[256], dir[128];
	const char *why;
	struct stat st;

	make_base();
	snprintf(dir, sizeof dir, "%s/sipnat", base);
	snprintf(sock, sizeof sock, "%s/control.sock", dir);
	ck_assert_int_eq(ctlpath_prepare_user_dir(sock, &why), 0);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	/* an existing one of our own, 0700: fine */
	ck_assert_int_eq(ctlpath_prepare_user_dir(sock, &why), 0);
	rm_base();
}
END_TEST

START_TEST(dir_refused_when_unsafe)
{
	char sock[256], dir[128], other[128];
	const char *why;

	make_base();
	snprintf(dir, sizeof dir, "%s/sipnat", base);
	snprintf(sock, sizeof sock, "%s/control.sock", dir);
	/* open to others: someone could swap the socket */
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(chmod(dir, 0777), 0);
	ck_assert_int_eq(ctlpath_prepare_user_dir(sock, &why), -EPERM);
	ck_assert_ptr_nonnull(strstr(why, "0700"));
	ck_assert_int_eq(rmdir(dir), 0);
	/* a symbolic link to a directory (ours or not) */
	snprintf(other, sizeof other, "%s/elsewhere", base);
	ck_assert_int_eq(mkdir(other, 0700), 0);
	ck_assert_int_eq(symlink(other, dir), 0);
	ck_assert_int_eq(ctlpath_prepare_user_dir(sock, &why), -ENOTDIR);
	ck_assert_int_eq(unlink(dir), 0);
	/* a file */
	FILE *f = fopen(dir, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(ctlpath_prepare_user_dir(sock, &why), -ENOTDIR);
	ck_assert_int_eq(unlink(dir), 0);
	/* another user's (only root can make one here) */
	if (geteuid() == 0) {
		ck_assert_int_eq(mkdir(dir, 0700), 0);
		ck_assert_int_eq(chown(dir, 65534, 65534), 0);
		ck_assert_int_eq(ctlpath_prepare_user_dir(sock, &why), -EPERM);
		ck_assert_ptr_nonnull(strstr(why, "another user"));
	}
	ck_assert_int_eq(ctlpath_prepare_user_dir("control.sock", &why), -EINVAL);
	rm_base();
}
END_TEST

static Suite *ctlpath_suite(void)
{
	Suite *s = suite_create("ctlpath");
	TCase *tc;

	tc = tcase_create("path");
	tcase_add_test(tc, user_path_xdg);
	tcase_add_test(tc, user_path_without_xdg);
	suite_add_tcase(s, tc);
	tc = tcase_create("dir");
	tcase_add_test(tc, dir_created_0700);
	tcase_add_test(tc, dir_refused_when_unsafe);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ctlpath_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
