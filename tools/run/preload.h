/*
 * preload.h - shared declarations of libufuse-preload.so, the library
 * `ufuse run` puts in LD_PRELOAD of every program of the tree.
 *
 * Files by concern:
 *   preload.c       the mount table, the fd table, path classification and
 *                   the connection to the broker (runproto.h)
 *   preload_fd.c    calls on file descriptors (read, write, fstat, dup...)
 *   preload_path.c  calls on paths (open, stat, mkdir, rename, chdir...)
 *   preload_dir.c   directory streams (opendir, readdir...) and stdio
 *   preload_exec.c  exec and spawn: keep the library and the mount table in
 *                   the environment, run programs stored on a mount
 *   preload_seccomp.c  statically linked programs: the seccomp filter whose
 *                   calls the broker serves, and the trampoline that keeps
 *                   this library's own calls out of it
 *   preload_fast.c  reads and fstat answered from the broker's shared
 *                   cache, with no round trip
 *
 * Locks: fd_lock (a rwlock) guards the fd table; readers copy what they
 * need out of an entry before unlocking.  Connections are per thread.
 * cwd_lock guards the virtual working directory.
 *
 * Invariants:
 *  1. fds[n] != NULL iff fd n (a real fd: the read end of the broker's
 *     identity pipe) stands for a description on a mount.
 *  2. A path handed to the broker is normalised and relative to the mount
 *     root ("/" or "/a/b").
 *  3. The library's own I/O on mount fds and the broker's socket goes to
 *     the next definition (REAL) or the system call; where it calls an
 *     interposed function (start-up reading /proc) only real paths and
 *     fds are involved, which pass straight through.
 *  4. Under a seccomp filter, REAL of a system call wrapper and pl_syscall
 *     make the call from the trampoline, which the filter lets through.
 */
#ifndef UFUSE_PRELOAD_H
#define UFUSE_PRELOAD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "runproto.h"

#define PL_MAX_MOUNTS 8
#define PL_MAX_HOPS 40     /* times one path may leave a mount (Linux's MAXSYMLINKS) */
#define PL_EXPORT __attribute__((visibility("default")))

struct pl_mount {
    char prefix[PATH_MAX];  /* "/ufuse" */
    size_t len;
    char addr[108];         /* abstract socket name */
};

/* One fd that stands for a description (invariant 1). */
struct pl_fd {
    uint64_t desc;
    int mnt;
    bool is_dir;
    int flags;              /* the description's status flags at open */
    struct run_fast fast;   /* how this process may read it itself (pos_slot 0: not) */
    char *path;             /* relative to the mount root, for *at() and fchdir */
};

extern struct pl_mount pl_mounts[PL_MAX_MOUNTS];
extern int pl_nmounts;

/* Where the trampoline lives in every process of a supervised subtree:
 * a fixed address, since the filter is inherited across exec (ASLR). */
#define PL_TRAMP_ADDR 0x100000000000ul

/* The next definition of an interposed function (looked up once per call
 * site; a benign race stores the same pointer twice). */
void *pl_real(const char *name);
#define REAL(fn)                                                          \
    ({                                                                    \
        static __typeof__(&fn) real_;                                     \
        __typeof__(&fn) r_ = __atomic_load_n(&real_, __ATOMIC_RELAXED);   \
        if (!r_) {                                                        \
            r_ = (__typeof__(&fn))pl_real(#fn);                           \
            __atomic_store_n(&real_, r_, __ATOMIC_RELAXED);               \
        }                                                                 \
        r_;                                                               \
    })

/* Set errno from a -errno result and return -1, or return the result. */
static inline long pl_ret(long r)
{
    extern int *__errno_location(void);
    if (r == RUN_LEFT_MOUNT)
        r = -EXDEV; /* a call that does not follow a path off its mount */
    if (r < 0) {
        *__errno_location() = (int)-r;
        return -1;
    }
    return r;
}

/* Set errno from -errno @r and return NULL: for functions returning a
 * pointer (pl_ret's -1 is not a null pointer). */
static inline void *pl_fail(long r)
{
    pl_ret(r);
    return NULL;
}

/* ---- fd table ---- */
/* Copy fd's entry into @out (path not copied unless @path is given, a
 * PATH_MAX buffer).  false if @fd is not a mount fd. */
bool pl_fd_get(int fd, struct pl_fd *out, char *path);
/* Install @e (its path field ignored) with @path as fd's entry. */
void pl_fd_set(int fd, const struct pl_fd *e, const char *path);
void pl_fd_clear(int fd);
bool pl_is_mount_fd(int fd);

/* ---- paths ---- */
/*
 * Classify @path as seen from @dirfd (AT_FDCWD or an fd): 1 if it lies on
 * a mount (then *mnt is the mount and @out holds the path relative to its
 * root, PATH_MAX bytes), 0 if it is a real path, or -errno.
 */
int pl_classify(int dirfd, const char *path, int *mnt, char *out);
/* The absolute path a program sees for @rel on mount @mnt. */
void pl_abs_path(int mnt, const char *rel, char *out);

/* ---- the broker ---- */
struct pl_call {
    struct run_req q;
    const char *path, *path2;
    const void *data;
    size_t data_len;
    void *out;              /* reply payload buffer */
    size_t out_cap;
    size_t out_len;         /* set: payload bytes received */
    int fd;                 /* set: fd received, or -1 */
    uint32_t rep_flags;     /* set: the reply's RUN_REP_* */
};
/* Send @c to mount @mnt's broker and wait for the reply.  The result
 * (count or -errno); caller credentials and umask are filled in. */
int64_t pl_call(int mnt, struct pl_call *c);
/* A desc call on a mount fd: shorthand filling desc/op. */
int64_t pl_fd_call(const struct pl_fd *f, uint32_t op, struct pl_call *c);

/* Open @rel on mount @mnt and install the fd (O_CLOEXEC honoured).
 * Returns the fd or -errno. */
int pl_open_at_mount(int mnt, const char *rel, int flags, mode_t mode, bool dir);
/* close(2) of a mount fd: FLUSH, then close the real fd. */
int pl_close_mount_fd(int fd);
/* Whether closing a copy of @f must tell the broker (RUN_FLUSH): a
 * writable file (write-back and its error), or any file while this
 * process may hold record locks (a close drops them); not a read-only
 * file or a directory of a process that never locked (the broker would
 * answer 0 and do nothing). */
bool pl_flush_needed(const struct pl_fd *f);
/* This process asked for a record lock (or may hold one from before exec). */
void pl_note_record_locks(void);

/* ---- the fast path (preload_fast.c) ---- */
/* A read of @n bytes at @off (-1: at the position, moving it) served from
 * the shared cache: the bytes read (0 at EOF), or -1 if it cannot be
 * served here (then ask the broker).  A pread (@off >= 0) may come back
 * short of @n before EOF where the cache stops (the caller asks the broker
 * for the rest); a read at the position is served whole or not at all. */
ssize_t pl_fast_read(const struct pl_fd *f, void *buf, size_t n, off_t off);
/* lseek (SEEK_SET, SEEK_CUR, SEEK_END) of a description this process may
 * read itself, by a compare-and-swap of its position word: the new
 * position, or -1 (ask the broker, which also decides every error). */
off_t pl_fast_lseek(const struct pl_fd *f, off_t off, int whence);
/* fstat from the shared attribute record: true if served. */
bool pl_fast_fstat(const struct pl_fd *f, struct stat *st);
/* stat (lstat if @nofollow) of @rel on mount @mnt from the shared entry and
 * attribute records: 0 with *@st, -ENOENT when the name is cached as
 * absent, 1 when the cache cannot tell (ask the broker). */
int pl_fast_stat(int mnt, const char *rel, bool nofollow, struct stat *st);

/* ---- shared by the call families ---- */
struct statvfs;
struct statfs;
int pl_fstat_mount(const struct pl_fd *f, struct stat *st);
int pl_statvfs_mount(int mnt, const char *rel, struct statvfs *v);
int pl_statfs_mount(int mnt, const char *rel, struct statfs *s);
/* getdents64 records of a directory fd into @buf: bytes, 0 at the end;
 * *@end (if given) set when the stream ended after them. */
ssize_t pl_getdents(const struct pl_fd *f, void *buf, size_t n, bool *end);

/* ---- working directory ---- */
/* The virtual cwd when it is on a mount (copied to @out): its mount, or -1. */
int pl_cwd(char *out);
void pl_set_cwd(int mnt, const char *rel);

/* ---- stdio ---- */
/* Point stdin/stdout/stderr at a stream that reaches us when fd 0/1/2
 * became a mount fd, and back when it stopped being one. */
void pl_std_sync(int fd);

/* ---- statically linked programs (preload_seccomp.c) ---- */
/* Under a seccomp filter: a trampoline-calling stand-in for libc's system
 * call wrapper @name, or NULL (then libc's). */
void *pl_tramp_wrapper(const char *name);
/* System call @nr from the trampoline when there is one: result or -errno. */
long pl_syscall(long nr, long a, long b, long c);
/* May pl_syscall make a call a seccomp filter traps?  True only between
 * installing a static program's filter and its exec (no trampoline yet,
 * and nobody to answer before the broker has the listener). */
bool pl_syscall_traps(void);
/* Put this process, about to exec statically linked @path, under the
 * filter whose calls the first mount's broker serves.  0 or -errno (then
 * nothing changed). */
int pl_supervise(const char *path);
/* pl_call, passing @fd with the request (SCM_RIGHTS). */
int64_t pl_call_passing(int mnt, struct pl_call *c, int fd);
/* After a call answered RUN_LEFT_MOUNT: the absolute path it named (this
 * thread's; valid until its next call). */
const char *pl_left_mount_path(void);

/* ---- exec ---- */
/* Remember what exec must carry (the preload entry, the mount table). */
void pl_exec_init(void);

#endif /* UFUSE_PRELOAD_H */
