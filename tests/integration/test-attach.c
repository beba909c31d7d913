/*
 * test-attach.c - how a spawned server is attached and how its end is
 * judged (src/chan/chan.c: the attach=auto rule A1-A3, chan_close).
 *
 *  - The choice attach=auto makes from the executable, read from struct chan
 *    after chan_spawn: a libfuse 2 program (bindfs) gets the hook; a libfuse
 *    3 program (ufuse-memfs), an ordinary dynamic program and a script get
 *    /dev/fd/N with the hook as their fallback; a Go program (gocryptfs) and
 *    a static one get /dev/fd/N without it (the hook cannot reach them).
 *  - ufuse-memfs -o dir_mountpoint refuses /dev/fd/N before INIT, as
 *    mfsmount does: attach=auto mounts it anyway (the retry with the hook
 *    is in the log, and the file system works), attach=devfd fails with
 *    -ENOTCONN, and a server that takes /dev/fd/N is not retried.
 *  - ufuse-memfs -o exit_status=15 exits 15 when the socket closes, as
 *    glusterfs does: after a clean end the unmount is 0 and nothing is
 *    logged; when a request was left unanswered (it timed out) the same
 *    exit is reported (-EIO and the status in the log), as is a server that
 *    died on its own (die_after).
 *
 * State: the paths below, set in main; each test makes and ends its own
 * session and log file.  No threads, no locks.
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

#include "chan/chan.h"
#include "ufuse.h"

static char MEMFS[4096], STATIC_PROBE[4096], TMPD[64];
static int LOGN;

/* A fresh log file name. */
static const char *new_log(void)
{
    return fmt("%s/log-%d", TMPD, ++LOGN);
}

/* Does the file @path contain @needle? */
static int log_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void dump_log(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024];
    fprintf(stderr, "---- %s ----\n", path);
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

/* ---- the choice (A1-A3) ------------------------------------------------- */

/* Spawn @exe with attach=auto; check the mode chosen and the fallback. */
static void expect_choice(const char *exe, enum chan_attach want, int fallback)
{
    char *argv[] = {(char *)exe, "--version", NULL};
    struct chan ch;
    int logfd = open(new_log(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    SYS(logfd);
    struct chan_spawn_opts so = {.attach = CHAN_ATTACH_AUTO, .log_fd = logfd};
    int rc = chan_spawn(&ch, argv, &so, NULL, 0);
    close(logfd);
    if (rc)
        fail_msg("chan_spawn %s: %s", exe, errstr(rc));
    enum chan_attach got = ch.attach;
    int got_fallback = ch.hook_fallback;
    chan_discard(&ch, 2000, NULL);
    if (got != want || got_fallback != fallback)
        fail_msg("%s: attach %d fallback %d, expected attach %d fallback %d", exe, got,
                 got_fallback, want, fallback);
}

static void t_choice(void **state)
{
    (void)state;
    expect_choice("bindfs", CHAN_ATTACH_HOOK, 0);          /* libfuse 2 */
    expect_choice(MEMFS, CHAN_ATTACH_DEVFD, 1);            /* libfuse 3 */
    expect_choice("/bin/true", CHAN_ATTACH_DEVFD, 1);      /* no libfuse */
    expect_choice("gocryptfs", CHAN_ATTACH_DEVFD, 0);      /* Go */
    expect_choice(STATIC_PROBE, CHAN_ATTACH_DEVFD, 0);     /* static */
    const char *script = fmt("%s/server.sh", TMPD);
    FILE *f = fopen(script, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\nexit 0\n", f);
    fclose(f);
    SYS(chmod(script, 0755));
    expect_choice(script, CHAN_ATTACH_DEVFD, 1);           /* not ELF */
}

/* ---- the retry (A3) ------------------------------------------------------- */

static ufuse_t *mount_memfs(const char *memfs_opts, const char *opts, int *rc)
{
    char *argv[] = {MEMFS, "-o", (char *)memfs_opts, NULL};
    ufuse_t *s = NULL;
    *rc = ufuse_mount(&s, argv, opts);
    return s;
}

static void roundtrip(ufuse_t *s)
{
    ufuse_file_t *f;
    OK(ufuse_open(s, "/f", O_RDWR | O_CREAT, 0644, &f));
    assert_int_equal(NN(ufuse_pwrite(f, "hello", 5, 0)), 5);
    char buf[8] = {0};
    assert_int_equal(NN(ufuse_pread(f, buf, sizeof buf, 0)), 5);
    assert_memory_equal(buf, "hello", 5);
    OK(ufuse_close(f));
}

static void t_auto_retries_refused_devfd(void **state)
{
    (void)state;
    const char *log = new_log();
    int rc;
    ufuse_t *s = mount_memfs("dir_mountpoint", fmt("log=%s", log), &rc);
    if (rc) {
        dump_log(log);
        fail_msg("ufuse_mount: %s", errstr(rc));
    }
    roundtrip(s);
    OK(ufuse_unmount(s));
    /* the first attempt refused /dev/fd/N; the second, hooked, served */
    assert_true(log_has(log, "mountpoint '/dev/fd/"));
    assert_true(log_has(log, "starting it again with attach=hook"));
}

static void t_devfd_refused(void **state)
{
    (void)state;
    const char *log = new_log();
    int rc;
    ufuse_t *s = mount_memfs("dir_mountpoint", fmt("attach=devfd,log=%s", log), &rc);
    assert_null(s);
    ERR(rc, ENOTCONN);
    assert_true(log_has(log, "is not a directory"));
    assert_false(log_has(log, "attach=hook"));
}

static void t_auto_takes_devfd(void **state)
{
    (void)state;
    const char *log = new_log();
    int rc;
    ufuse_t *s = mount_memfs("attr_timeout=1", fmt("log=%s", log), &rc);
    OK(rc);
    roundtrip(s);
    OK(ufuse_unmount(s));
    assert_false(log_has(log, "attach=hook"));
}

/* ---- the end ---------------------------------------------------------------- */

static void t_exit_status_after_clean_end(void **state)
{
    (void)state;
    const char *log = new_log();
    int rc;
    ufuse_t *s = mount_memfs("exit_status=15", fmt("log=%s", log), &rc);
    OK(rc);
    roundtrip(s);
    rc = ufuse_unmount(s);
    if (rc)
        dump_log(log);
    OK(rc);
    assert_false(log_has(log, "status"));
}

static void t_exit_status_with_request_unanswered(void **state)
{
    (void)state;
    const char *log = new_log();
    int rc;
    /* every answer takes 3 s (INIT aside), interrupted or not; ours gives
     * up after 0.3 s + the interrupt's grace */
    ufuse_t *s = mount_memfs("exit_status=15,delay_ms=3000,ignore_interrupts",
                             fmt("timeout=0.3,log=%s", log), &rc);
    OK(rc);
    struct stat st;
    ERR(ufuse_stat(s, "/nonexistent", &st), ETIMEDOUT);
    ERR(ufuse_unmount(s), EIO);
    assert_true(log_has(log, "exited with status 15 while requests were unanswered"));
}

static void t_server_died(void **state)
{
    (void)state;
    const char *log = new_log();
    int rc;
    /* exits 3 right after answering INIT */
    ufuse_t *s = mount_memfs("die_after=1", fmt("log=%s", log), &rc);
    OK(rc);
    struct stat st;
    ERR(ufuse_stat(s, "/nonexistent", &st), ENOTCONN);
    ERR(ufuse_unmount(s), EIO);
    assert_true(log_has(log, "exited with status 3"));
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("UFUSE_BUILD_DIR");
    snprintf(MEMFS, sizeof MEMFS, "%s/ufuse-memfs", dir ? dir : ".");
    snprintf(STATIC_PROBE, sizeof STATIC_PROBE, "%s/static-probe", dir ? dir : ".");
    if (access(MEMFS, X_OK) != 0 || access(STATIC_PROBE, X_OK) != 0) {
        fprintf(stderr, "%s or %s not built\n", MEMFS, STATIC_PROBE);
        return 1;
    }
    snprintf(TMPD, sizeof TMPD, "/tmp/ufuse-attach-XXXXXX");
    if (!mkdtemp(TMPD))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_choice),
        cmocka_unit_test(t_auto_retries_refused_devfd),
        cmocka_unit_test(t_devfd_refused),
        cmocka_unit_test(t_auto_takes_devfd),
        cmocka_unit_test(t_exit_status_after_clean_end),
        cmocka_unit_test(t_exit_status_with_request_unanswered),
        cmocka_unit_test(t_server_died),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (!getenv("UFUSE_KEEP")) {
        for (int i = 1; i <= LOGN; i++)
            unlink(fmt("%s/log-%d", TMPD, i));
        unlink(fmt("%s/server.sh", TMPD));
        rmdir(TMPD);
    }
    return rc;
}
