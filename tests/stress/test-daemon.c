/*
 * test-daemon.c - a server that daemonizes (passthrough_ll without -f:
 * the process ufuse spawned exits at once, a grandchild serves) is still
 * ended by ufuse_unmount(): unmount waits for whoever holds the server's
 * end of the socket, and terminates it when it does not let go (here: a
 * daemon stopped with SIGSTOP cannot see the socket close).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ufuse.h"
#include "vfs/vfs.h"

static char exe[4096], src[64];

/* Gone, or a zombie waiting for init: either way no longer running. */
static int gone(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    int n = (int)fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n > 0 ? n : 0] = 0;
    char *r = strrchr(buf, ')');
    return r && r[1] == ' ' && (r[2] == 'Z' || r[2] == 'X');
}

static ufuse_t *mount_daemon(pid_t *daemon)
{
    char opt[128];
    snprintf(opt, sizeof opt, "source=%s", src);
    char *argv[] = {exe, "-o", opt, "{}", NULL};
    ufuse_t *s;
    assert_int_equal(ufuse_mount(&s, argv, NULL), 0);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/", &st), 0);
    /* The process we spawned has gone; a daemon holds the socket. */
    pid_t pids[4];
    int n = chan_holders(s->conn.ch.srv_ino, pids, 4);
    assert_int_equal(n, 1);
    assert_true(pids[0] != s->conn.ch.pid);
    *daemon = pids[0];
    return s;
}

static void test_daemon_ends_at_unmount(void **state)
{
    pid_t d;
    ufuse_t *s = mount_daemon(&d);
    assert_int_equal(ufuse_unmount(s), 0);
    for (int i = 0; i < 200 && !gone(d); i++)
        usleep(10000);
    assert_true(gone(d));
}

static void test_wedged_daemon_is_terminated(void **state)
{
    pid_t d;
    ufuse_t *s = mount_daemon(&d);
    kill(d, SIGSTOP);
    time_t t0 = time(NULL);
    assert_int_equal(ufuse_unmount(s), -EIO);
    assert_true(time(NULL) - t0 < 30); /* bounded: not a timing claim */
    for (int i = 0; i < 200 && !gone(d); i++)
        usleep(10000);
    assert_true(gone(d));
}

int main(void)
{
    const char *dir = getenv("UFUSE_BUILD_DIR");
    snprintf(exe, sizeof exe, "%s/passthrough_ll", dir ? dir : ".");
    if (access(exe, X_OK) != 0) {
        fprintf(stderr, "%s not built (libfuse3-dev examples missing)\n", exe);
        return 77;
    }
    snprintf(src, sizeof src, "/tmp/ufuse-daemon-XXXXXX");
    if (!mkdtemp(src))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_daemon_ends_at_unmount),
        cmocka_unit_test(test_wedged_daemon_is_terminated),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(src);
    return rc;
}
