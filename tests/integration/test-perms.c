/*
 * test-perms.c - -o default_permissions: the client checks permissions
 * from the cached attributes and the caller's ids and groups, as the
 * kernel does with that option, before the server hears of the call.
 * Against ufuse-memfs -d, whose trace (log=FILE, read after each session)
 * shows what it was asked: a session making 13 refused calls asks the
 * server exactly what one making none does; the same calls without the
 * option reach the server (the control: the counts can tell the two
 * apart); what is allowed still works and is asked.
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

/* What the server was asked, by kind, from its trace (read after the
 * session ended: its stderr reaches the log through a relay). */
enum { Q_OPEN, Q_CREATE, Q_MKDIR, Q_UNLINK, Q_SETATTR, Q_ACCESS, Q_KINDS };
static const char *const KIND[Q_KINDS] = {"OPEN ", "CREATE ", "MKDIR ", "UNLINK ", "SETATTR ",
                                          "ACCESS "};

static void count_asked(unsigned n[Q_KINDS])
{
    FILE *f = fopen(LOG, "r");
    assert_non_null(f);
    char line[1024];
    memset(n, 0, Q_KINDS * sizeof *n);
    while (fgets(line, sizeof line, f))
        for (int k = 0; k < Q_KINDS; k++)
            n[k] += strncmp(line, "memfs: ", 7) == 0 &&
                    strncmp(line + 7, KIND[k], strlen(KIND[k])) == 0;
    fclose(f);
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

/* Calls uid 1000 may not make (@checked: refused here, with the errno
 * the kernel gives; else the server answers, whatever it says). */
static void refused_calls(ufuse_t *s, int checked)
{
    as_user(s, 0);
    struct stat st;
    struct timespec ts[2] = {{1, 0}, {2, 0}};
    int rc[] = {
        try_open(s, "/priv", O_RDONLY),              /* may_open */
        try_open(s, "/pub", O_WRONLY),
        try_open(s, "/grp", O_RDONLY),
        ufuse_stat(s, "/dir/f", &st),                 /* search on /dir */
        ufuse_mkdir(s, "/new", 0755),                 /* may_create */
        try_open(s, "/newfile", O_CREAT | O_WRONLY),
        ufuse_unlink(s, "/sticky/rootf"),             /* sticky */
        ufuse_chmod(s, "/pub", 0666),                 /* setattr_prepare */
        ufuse_chown(s, "/pub", 1000, 1000),
        ufuse_utimens(s, "/pub", ts),
        ufuse_utimens(s, "/pub", NULL),
        ufuse_truncate(s, "/pub", 0),
        ufuse_access(s, "/pub", W_OK),
    };
    static const int want[] = {-EACCES, -EACCES, -EACCES, -EACCES, -EACCES, -EACCES, -EPERM,
                               -EPERM,  -EPERM,  -EPERM,  -EACCES, -EACCES, -EACCES};
    for (size_t i = 0; checked && i < sizeof rc / sizeof rc[0]; i++)
        if (rc[i] != want[i])
            fail_msg("call %zu: %d, expected %d", i, rc[i], want[i]);
    OK(ufuse_set_caller(s, NULL));
}

/* Mount ufuse-memfs -d with @opts, make the tree as root, run @calls,
 * unmount; *@n: what the server was asked. */
static void session(const char *opts, void (*calls)(ufuse_t *, int), int arg,
                    unsigned n[Q_KINDS])
{
    snprintf(LOG, sizeof LOG, "%s/log", TMPD);
    unlink(LOG);
    char *argv[] = {MEMFS, "-d", NULL};
    ufuse_t *s = NULL;
    OK(ufuse_mount(&s, argv, fmt("log=%s,timeout=30%s", LOG, opts)));
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
    if (calls)
        calls(s, arg);
    ufuse_unmount(s);
    count_asked(n);
}

/* What is allowed still works and reaches the server. */
static void allowed_calls(ufuse_t *s, int unused)
{
    as_user(s, 0);
    struct stat st;
    OK(ufuse_stat(s, "/dir", &st));
    OK(ufuse_access(s, "/pub", R_OK));
    OK(try_open(s, "/pub", O_RDONLY));                     /* OPEN 1 */
    OK(try_open(s, "/sticky/mine", O_CREAT | O_WRONLY));   /* CREATE */
    OK(ufuse_unlink(s, "/sticky/mine"));                   /* UNLINK */
    /* With group 500 the open of /grp goes out (memfs then judges the
     * groups of the real process). */
    as_user(s, 1);
    (void)try_open(s, "/grp", O_RDONLY);                   /* OPEN 2 */
    /* Root may do what the mode bits deny. */
    OK(ufuse_set_caller(s, NULL));
    OK(try_open(s, "/priv", O_RDWR));                      /* OPEN 3 */
    OK(ufuse_stat(s, "/dir/f", &st));
}

static void t_checked_here(void **state)
{
    unsigned setup[Q_KINDS], refused[Q_KINDS], control[Q_KINDS], allowed[Q_KINDS];
    session(",default_permissions", NULL, 0, setup);
    session(",default_permissions", refused_calls, 1, refused);
    for (int k = 0; k < Q_KINDS; k++)
        if (refused[k] != setup[k])
            fail_msg("%s: %u requests with the calls refused, %u without them", KIND[k],
                     refused[k], setup[k]);
    /* The control: without the option the same calls reach the server. */
    session("", refused_calls, 0, control);
    assert_true(control[Q_OPEN] >= setup[Q_OPEN] + 3);
    assert_true(control[Q_MKDIR] == setup[Q_MKDIR] + 1);
    assert_true(control[Q_SETATTR] >= setup[Q_SETATTR] + 4);
    session(",default_permissions", allowed_calls, 0, allowed);
    assert_int_equal(allowed[Q_OPEN], setup[Q_OPEN] + 3);
    assert_int_equal(allowed[Q_CREATE], setup[Q_CREATE] + 1);
    assert_int_equal(allowed[Q_UNLINK], setup[Q_UNLINK] + 1);
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
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(LOG);
    rmdir(TMPD);
    return rc;
}
