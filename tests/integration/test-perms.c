/*
 * test-perms.c - -o default_permissions: the client checks permissions
 * from the cached attributes and the caller's ids and groups, as the
 * kernel does with that option, before the server hears of the call.
 * Against ufuse-memfs -d, whose trace (log=FILE) shows what it was asked:
 * a call refused here leaves no request of its kind behind; the same
 * calls without the option reach the server (the control: the counts can
 * tell the two apart).
 *
 * Files, made by root: /priv 0600, /pub 0644, /grp 0640 group 500, /dir
 * 0700 holding /dir/f, /sticky 01777 holding root's /sticky/rootf.  The
 * caller is then uid 1000, gid 1000 (ufuse_set_caller), with or without
 * group 500.
 *
 * State: MEMFS, TMPD, set in main; each test makes its own session.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "check.h"

#include "ufuse.h"

static char MEMFS[4096], TMPD[64], LOG[4200];

/* Requests of kind @op ("OPEN ", "MKDIR "...) in the server's trace. */
static unsigned asked(const char *op)
{
    FILE *f = fopen(LOG, "r");
    assert_non_null(f);
    char line[1024];
    unsigned n = 0;
    size_t len = strlen(op);
    while (fgets(line, sizeof line, f))
        n += strncmp(line, "memfs: ", 7) == 0 && strncmp(line + 7, op, len) == 0;
    fclose(f);
    return n;
}

static ufuse_t *mount_tree(const char *opts)
{
    snprintf(LOG, sizeof LOG, "%s/log", TMPD);
    unlink(LOG);
    char *argv[] = {MEMFS, "-d", NULL};
    ufuse_t *s = NULL;
    OK(ufuse_mount(&s, argv, fmt("log=%s,%s", LOG, opts)));
    ufuse_file_t *f;
    const char *files[] = {"/priv", "/pub", "/grp", "/dir/f", "/sticky/rootf"};
    const mode_t modes[] = {0600, 0644, 0640, 0644, 0644};
    OK(ufuse_mkdir(s, "/dir", 0700));
    OK(ufuse_mkdir(s, "/sticky", 0777));
    OK(ufuse_chmod(s, "/sticky", 01777));
    for (int i = 0; i < 5; i++) {
        OK(ufuse_open(s, files[i], O_CREAT | O_WRONLY, modes[i], &f));
        OK(ufuse_close(f));
    }
    OK(ufuse_chown(s, "/grp", 0, 500));
    return s;
}

static void as_user(ufuse_t *s, int with_group)
{
    static const gid_t groups[] = {500};
    struct ufuse_caller who = {.uid = 1000, .gid = 1000, .pid = getpid(),
                               .ngroups = with_group, .groups = groups};
    OK(ufuse_set_caller(s, &who));
}

static int try_open(ufuse_t *s, const char *path, int flags)
{
    ufuse_file_t *f;
    int rc = ufuse_open(s, path, flags, 0644, &f);
    if (rc == 0)
        OK(ufuse_close(f));
    return rc;
}

static void t_checked_here(void **state)
{
    ufuse_t *s = mount_tree("timeout=30,default_permissions");
    as_user(s, 0);
    unsigned opens = asked("OPEN "), mkdirs = asked("MKDIR "), unlinks = asked("UNLINK ");
    unsigned setattrs = asked("SETATTR ");
    assert_int_equal(try_open(s, "/priv", O_RDONLY), -EACCES);
    assert_int_equal(try_open(s, "/pub", O_WRONLY), -EACCES);
    assert_int_equal(try_open(s, "/grp", O_RDONLY), -EACCES);
    assert_int_equal(asked("OPEN "), opens);
    /* Search permission: nothing under /dir, /dir itself fine. */
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/dir/f", &st), -EACCES);
    OK(ufuse_stat(s, "/dir", &st));
    /* Write permission on the parent to make a name. */
    assert_int_equal(ufuse_mkdir(s, "/new", 0755), -EACCES);
    assert_int_equal(try_open(s, "/newfile", O_CREAT | O_WRONLY), -EACCES);
    assert_int_equal(asked("MKDIR "), mkdirs);
    /* Sticky directory: others' files stay. */
    assert_int_equal(ufuse_unlink(s, "/sticky/rootf"), -EPERM);
    assert_int_equal(asked("UNLINK "), unlinks);
    /* Owner's changes. */
    assert_int_equal(ufuse_chmod(s, "/pub", 0666), -EPERM);
    assert_int_equal(ufuse_chown(s, "/pub", 1000, 1000), -EPERM);
    struct timespec ts[2] = {{1, 0}, {2, 0}};
    assert_int_equal(ufuse_utimens(s, "/pub", ts), -EPERM);
    assert_int_equal(ufuse_utimens(s, "/pub", NULL), -EACCES);
    assert_int_equal(ufuse_truncate(s, "/pub", 0), -EACCES);
    assert_int_equal(asked("SETATTR "), setattrs);
    /* access(2) answered here. */
    assert_int_equal(ufuse_access(s, "/pub", W_OK), -EACCES);
    OK(ufuse_access(s, "/pub", R_OK));
    /* What is allowed still works: reading /pub, making a file in
     * /sticky, removing one's own, a group's file with the group. */
    OK(try_open(s, "/pub", O_RDONLY));
    OK(try_open(s, "/sticky/mine", O_CREAT | O_WRONLY));
    OK(ufuse_unlink(s, "/sticky/mine"));
    /* With group 500 the client lets the open of /grp through (memfs then
     * judges the groups of the real process, which has no 500). */
    as_user(s, 1);
    opens = asked("OPEN ");
    (void)try_open(s, "/grp", O_RDONLY);
    assert_int_equal(asked("OPEN "), opens + 1);
    /* Root may do what the mode bits deny. */
    OK(ufuse_set_caller(s, NULL));
    OK(try_open(s, "/priv", O_RDWR));
    OK(ufuse_stat(s, "/dir/f", &st));
    ufuse_unmount(s);
}

/* The control: without the option the same calls reach the server. */
static void t_server_decides(void **state)
{
    ufuse_t *s = mount_tree("timeout=30");
    as_user(s, 0);
    unsigned opens = asked("OPEN ");
    (void)try_open(s, "/priv", O_RDONLY);
    assert_int_equal(asked("OPEN "), opens + 1);
    ufuse_unmount(s);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "test-perms: needs root (files owned by root, then another caller)\n");
        return 77;
    }
    const char *dir = getenv("UFUSE_BUILD_DIR");
    snprintf(MEMFS, sizeof MEMFS, "%s/ufuse-memfs", dir ? dir : ".");
    snprintf(TMPD, sizeof TMPD, "/tmp/ufuse-perms-XXXXXX");
    if (access(MEMFS, X_OK) != 0 || !mkdtemp(TMPD))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_checked_here),
        cmocka_unit_test(t_server_decides),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(LOG);
    rmdir(TMPD);
    return rc;
}
