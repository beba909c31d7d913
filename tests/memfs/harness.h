/*
 * harness.h - helpers of the ufuse-memfs tests: find the binary, mount it
 * through the Linux kernel on a temporary directory, read its request
 * trace, unmount and reap it.
 */
#ifndef UFUSE_TESTS_MEMFS_HARNESS_H
#define UFUSE_TESTS_MEMFS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct mnt {
    char dir[256];      /* the mountpoint */
    char log[256];      /* the server's stderr */
    char tmp[64];       /* the temporary directory holding both */
    pid_t pid;          /* the server, or 0 once reaped */
    int status;         /* its wait status once reaped */
    bool quiet;         /* mnt_stop: no log dump on a non-zero status */
};

/* $UFUSE_BUILD_DIR/ufuse-memfs (or ./ufuse-memfs). */
const char *memfs_bin(void);

/* Exit 77 with a reason unless this process can mount FUSE file systems
 * (/dev/fuse opens and a trial mount succeeds). */
void require_fuse_mount(void);

/* Start ufuse-memfs on a fresh temporary directory with "-o @opts" (may be
 * NULL) and -d when @debug, wait until the kernel shows the mount, then
 * send one STATFS (which waits for INIT to be answered).  @return 0, or -1
 * if the server exited or the mount never appeared (the server's log is
 * copied to stderr). */
int mnt_start(struct mnt *m, const char *opts, bool debug);

/* Unmount, reap the server, remove the directories.  @return the server's
 * exit status (0..255), 128+signal if killed, or -1 if it could not be
 * reaped. */
int mnt_stop(struct mnt *m);

/* Stop every mount not stopped yet (for a teardown after a failed test). */
void mnt_cleanup_all(void);

/* Wait (bounded) for the server to exit on its own; @return as mnt_stop,
 * or -1 if it is still running. */
int mnt_wait_exit(struct mnt *m, int seconds);

/* "<mountpoint>/<rel>" in one of 8 rotating thread-local buffers. */
const char *P(struct mnt *m, const char *rel);

/* Number of lines in the server's log that start with @prefix and trace
 * a request of this process (end with " pid=<getpid()>"). */
int log_count(struct mnt *m, const char *prefix);
/* Largest value of "@key=NUMBER" over lines starting with @prefix, or -1. */
long long log_max(struct mnt *m, const char *prefix, const char *key);
/* Does some line of the log contain @needle? */
bool log_has(struct mnt *m, const char *needle);

/* Fill @buf with the seed pattern of offset @off. */
void pattern_fill(unsigned char *buf, size_t len, uint64_t off);

/* Monotonic milliseconds. */
long long now_ms(void);

#endif
