/*
 * bench.h - shared types of the benchmark harness (bench/).
 *
 * The harness runs one workload through interchangeable drivers: the ufuse
 * C API, or plain POSIX calls under a directory (a Linux kernel FUSE mount
 * of the same server, or the tmpfs directory itself for the ceiling).  A
 * workload only ever calls through struct driver, so both sides execute the
 * same code and differ only in the I/O calls.
 *
 * A "side" is one driver bound to one attached file system (a ufuse
 * session, a kernel mountpoint, or a plain directory).  Sides are created,
 * remounted (cold runs) and destroyed by drivers.c.
 *
 * Locks: none.  A side is used by one thread, except the open file handle
 * shared by the multi-threaded workload, whose calls (pread) are
 * thread-safe on both drivers.
 */
#ifndef UFUSE_BENCH_H
#define UFUSE_BENCH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "ufuse.h"

struct side;

/* The I/O calls a workload may make.  Paths are absolute within the file
 * system ("/big").  Every call returns >= 0 or -errno. */
struct driver {
    const char *name;
    int (*open)(struct side *sd, const char *path, int flags, mode_t mode, void **fh);
    int (*close)(struct side *sd, void *fh);
    ssize_t (*pread)(void *fh, void *buf, size_t n, off_t off);
    ssize_t (*pwrite)(void *fh, const void *buf, size_t n, off_t off);
    int (*fsync)(void *fh);
    int (*stat)(struct side *sd, const char *path, struct stat *st);
    int (*mkdir)(struct side *sd, const char *path, mode_t mode);
    int (*unlink)(struct side *sd, const char *path);
    int (*rmdir)(struct side *sd, const char *path);
    /* opendir + readdir to the end + closedir: the number of entries */
    long (*listdir)(struct side *sd, const char *path);
};

extern const struct driver posix_driver;
extern const struct driver ufuse_driver;

enum side_kind { SIDE_KERNEL, SIDE_UFUSE, SIDE_TMPFS };

/* How to start a server: its argv (with "{}" for the mountpoint). */
struct server_cmd {
    char *argv[16];
    char store[16][PATH_MAX];
    int argc;
};

struct side {
    enum side_kind kind;
    const struct driver *drv;
    const char *label;              /* "kernel", "ufuse", "tmpfs" */
    struct server_cmd cmd;          /* kernel and ufuse sides */
    char ufuse_opts[1024];          /* ufuse side */
    char root[PATH_MAX];            /* posix sides: the directory */
    char log[512];                  /* server's stderr */
    ufuse_t *s;                     /* ufuse side, while attached */
    pid_t pid;                      /* kernel side: the server, while mounted */
    bool up;
};

/* drivers.c */
int side_attach(struct side *sd);        /* start (mount) */
int side_detach(struct side *sd);        /* stop (unmount), idempotent */
int side_remount(struct side *sd);       /* detach, drop caches, attach */
void drop_caches(void);
/* Can this process make kernel FUSE mounts?  NULL if so, else why not. */
const char *kernel_unavailable(void);
/* side path: root + path into @buf */
const char *side_path(const struct side *sd, const char *path, char *buf, size_t size);

#endif /* UFUSE_BENCH_H */
