/*
 * ufuse.h - the public C API of ufuse, a user-space FUSE client.
 *
 * ufuse attaches to an unmodified FUSE server (libfuse 3 or 2, go-fuse, ...)
 * over a socket, speaks the FUSE wire protocol to it and offers POSIX-like
 * calls on the server's file system.  No kernel mount is made.
 *
 * Conventions, for every function below:
 *  - Handles are opaque.  A session (ufuse_t) owns its files and directory
 *    streams; close them before ufuse_unmount().
 *  - Return values are 0 on success, a non-negative count where one is
 *    documented, or a negative errno value.  errno is never read or set.
 *  - Every function is thread-safe: any number of threads may call into one
 *    session at once, and many requests are then in flight together.  The
 *    one exception is stated per function (a single ufuse_file_t's file
 *    position, used by ufuse_read/ufuse_write/ufuse_lseek, is updated
 *    atomically but concurrent position-relative calls race as they do on a
 *    POSIX fd; a ufuse_dir_t is a stream and is not to be read from two
 *    threads at once).
 *  - Paths are absolute within the server's file system ("/a/b"); a relative
 *    path is taken relative to the root.  Symbolic links are followed as
 *    POSIX says (not in the last component for lstat, readlink, unlink,
 *    rmdir, rename, symlink, link's new path, and the l* calls), with ELOOP
 *    after 40 links.
 *  - Memory passed in stays owned by the caller; memory returned (handles)
 *    is released by the matching close/unmount call.
 *  - A call that reaches a dead server returns -ENOTCONN; a reply the
 *    server got wrong returns -EIO; a request that timed out (option
 *    timeout=) returns -ETIMEDOUT.  Otherwise a failure is one of the
 *    errors of the corresponding system call, or the error the server
 *    answered, passed through as a kernel FUSE mount passes it (whatever
 *    errno it is), except where a function says otherwise
 *    (ufuse_mount: any failed INIT is -EPROTO).
 */
#ifndef UFUSE_H
#define UFUSE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UFUSE_VERSION_MAJOR 0
#define UFUSE_VERSION_MINOR 1
#define UFUSE_VERSION_STRING "0.1.0"

/** An attached session: one FUSE server and its caches. */
typedef struct ufuse ufuse_t;
/** An open file (the counterpart of an fd on a FUSE mount). */
typedef struct ufuse_file ufuse_file_t;
/** An open directory stream. */
typedef struct ufuse_dir ufuse_dir_t;

/* ---------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------ */

/**
 * Start a FUSE server and attach to it.
 *
 * @param out      receives the session on success (NULL on failure).
 * @param argv     the server's command line, NULL-terminated (argv[0] is
 *                 looked up in PATH).  ufuse supplies the mountpoint
 *                 argument: it replaces a word that is exactly "{}", or is
 *                 appended.  NULL or an empty argv starts the built-in
 *                 server, ufuse-memfs.
 * @param options  comma-separated mount options, or NULL:
 *                 cache=direct|writethrough|writeback|auto (default auto:
 *                 write-back when the server grants FUSE_WRITEBACK_CACHE,
 *                 else write-through; direct: no page cache),
 *                 cache_size=SIZE (the page cache's memory budget for the
 *                 whole session; default 256m, at least 1m),
 *                 block_size=SIZE (the unit a cache miss is read in, a power
 *                 of two from 4k to max_read; default 4k),
 *                 readahead=SIZE (largest sequential readahead window;
 *                 default 4m, capped by the server's max_readahead and by
 *                 an eighth of cache_size; 0 disables readahead),
 *                 dirty_expire=SECONDS (write-back: dirty data older than
 *                 this is written by the flusher; default 30),
 *                 timeout=SECONDS (per request; default 0 = none),
 *                 spin=MICROSECONDS (a thread waiting for a reply polls
 *                 this long before it sleeps; default 30, 0 = never),
 *                 max_read=SIZE (default 128k), max_write=SIZE (default 1m;
 *                 caps on transfer sizes; SIZE takes k/m/g suffixes),
 *                 splice or nosplice (the default: let the server splice its
 *                 READ replies, or not; while it may, READs are capped at 56k
 *                 unless max_read= is given, because larger spliced replies
 *                 arrive in pieces), share (the cache in a memfd other
 *                 processes read: ufuse_share_fd), default_permissions (check
 *                 permissions in the client from cached attributes and the
 *                 caller's ids and groups, as the kernel does with that
 *                 option), outside_links (the file system is part of a
 *                 larger tree: a symbolic link with an absolute target,
 *                 and ".." above the root, lead out of it; a path call
 *                 meeting one fails with -EXDEV and ufuse_outside_path()
 *                 says where the path went), log=FILE (the server's stderr
 *                 and ufuse's own messages go there instead of stderr),
 *                 attach=auto|devfd|hook (how the server gets its socket:
 *                 "devfd" passes /dev/fd/N as the mountpoint (libfuse >= 3.3,
 *                 go-fuse); "hook" preloads ufuse's libfuse-2 hook and passes
 *                 an empty directory; "auto" picks hook for servers linked
 *                 against libfuse.so.2, else devfd, and starts the server
 *                 once more with the hook, saying so in the log, if it ends
 *                 before INIT having refused /dev/fd/N), server_name=NAME
 *                 (used in messages).
 * @return 0, or -errno: -EINVAL for a bad option, -ENOENT if the server
 *         is not found, -EACCES or -EISDIR if it is not an executable file
 *         (or the error of its exec), -EPROTO if it does not complete INIT,
 *         -ENOTCONN if it exits before answering.  ufuse_mount_err() also
 *         says why in words.
 *
 * The server's stderr goes to ours (or to log=FILE) through a pipe that a
 * thread of the session relays for the server's whole life.
 */
int ufuse_mount(ufuse_t **out, char *const argv[], const char *options);

/** Room enough for any message of ufuse_mount_err() (longer ones are cut). */
#define UFUSE_MOUNT_ERR_MAX 1024

/**
 * ufuse_mount(), and when it fails a message for a person in @err (@size
 * bytes, NUL-terminated, cut to fit; "" on success; @err may be NULL) that
 * says what went wrong, without a "ufuse: " prefix:
 *   "unknown option 'foo'"
 *   "option cache=bogus: expected auto, writethrough, writeback or direct"
 *   "option cache_size=1k: out of range (1m to 1t)"
 *   "cannot start server 'sshfs': not found in PATH"
 *   "server 'sshfs' exited with status 1 before answering INIT; its last
 *    lines of stderr:\n  read: Connection reset by peer"
 * The last lines (up to 5) of what the server wrote to stderr before it
 * failed, if any, follow on lines of their own, indented by two spaces.
 * @return as ufuse_mount().
 */
int ufuse_mount_err(ufuse_t **out, char *const argv[], const char *options,
                    char *err, size_t size);

/**
 * Attach to a server that is already running on the other end of @fd, a
 * connected AF_UNIX SOCK_SEQPACKET socket.  The session takes ownership of
 * @fd (it is closed by ufuse_unmount(), and on failure).  Options as for
 * ufuse_mount() (attach= and log= apply to spawned servers only).
 */
int ufuse_mount_fd(ufuse_t **out, int fd, const char *options);

/** ufuse_mount_fd() with a message in @err when it fails, as ufuse_mount_err(). */
int ufuse_mount_fd_err(ufuse_t **out, int fd, const char *options, char *err,
                       size_t size);

/**
 * Detach: write back what is cached, send the outstanding FORGETs, DESTROY
 * where the protocol calls for it, close the socket and reap the server
 * (waiting a bounded time, then killing it).  Open files and directories
 * left by the caller are released first.  @s is freed whatever is returned.
 * @return 0, or the first error met: -EIO if the server was killed by a
 * signal, had to be terminated, or exited with a non-zero status while
 * requests were unanswered (after a clean end any exit status is normal).
 * Must not race with other calls on the same session.
 */
int ufuse_unmount(ufuse_t *s);

/** Write back everything cached for this session (all files). */
int ufuse_sync(ufuse_t *s);

/**
 * Interrupt the call(s) @thread is blocked in on @s, as a signal
 * interrupts a system call on a kernel FUSE mount: FUSE_INTERRUPT is sent
 * for each request it waits for.  That call then returns -EINTR if the
 * server abandons the request, or its normal result if the server
 * completes it anyway (servers may ignore interrupts).
 * @return the number of calls interrupted (0 if @thread was not waiting),
 *         -ENOSYS if the server does not support interrupts, -ENOTCONN.
 */
int ufuse_interrupt(ufuse_t *s, pthread_t thread);

/**
 * Per-opcode statistics of a session.  Counters are monotonic since the
 * session started.
 */
struct ufuse_opstat {
    const char *name;      /* opcode name, e.g. "READ" (static string) */
    uint32_t opcode;       /* FUSE opcode */
    uint64_t count;        /* requests sent (answered or not) */
    uint64_t errors;       /* replies with a non-zero error */
    uint64_t bytes;        /* payload bytes moved (READ/WRITE data, etc.) */
    uint64_t total_ns;     /* sum of round-trip latencies of answered requests */
    uint64_t max_ns;       /* slowest answered request */
    uint64_t p99_ns;       /* 99th percentile latency (from a histogram with
                              4 buckets per power of two: within 25 %) */
};

/**
 * Copy up to @n non-empty per-opcode counters into @out (opcodes never
 * sent are skipped).  @return the number of entries written.
 */
int ufuse_stats(ufuse_t *s, struct ufuse_opstat *out, size_t n);

/**
 * What the server granted at INIT (for diagnostics and the CLI's info).
 */
struct ufuse_conninfo {
    uint32_t proto_major, proto_minor; /* protocol spoken */
    uint64_t flags;                    /* FUSE_* init flags granted */
    uint32_t max_read;                 /* largest READ we send */
    uint32_t max_write;                /* largest WRITE payload we send */
    uint32_t max_readahead;
    uint32_t max_pages;
    uint32_t time_gran;
    uint64_t requests;                 /* requests sent so far */
    uint64_t wakeups;                  /* times a thread woke another to hand it a
                                          reply or the receiving role */
    uint64_t polled;                   /* replies taken by polling, with no sleep
                                          (option spin=) */
    uint64_t poll_misses;              /* polls that found no reply in time */
};
int ufuse_conninfo(ufuse_t *s, struct ufuse_conninfo *out);

/** The page cache's counters (all zero under cache=direct). */
struct ufuse_cacheinfo {
    uint64_t budget;          /* cache_size in bytes */
    uint32_t page_size;       /* bytes per page (4096) */
    uint32_t block_size;      /* block_size option */
    uint64_t pages;           /* pages holding data now */
    uint64_t pages_max;       /* most pages ever held at once */
    uint64_t dirty;           /* dirty pages now */
    uint64_t writeback;       /* pages being written back now */
    uint64_t hits, misses;    /* pages found / not found by reads */
    uint64_t readahead;       /* pages read ahead of the reader */
    uint64_t evictions;       /* clean pages evicted for room */
    uint64_t written_back;    /* pages written back (clustered WRITEs) */
    uint64_t writebacks;      /* write-back WRITE requests */
    uint64_t throttled;       /* writers made to wait on dirty data */
};
/** Copy the cache counters. @return 0 or -EINVAL. Thread-safe. */
int ufuse_cacheinfo(ufuse_t *s, struct ufuse_cacheinfo *out);

/** What the calling thread's last failed request was. */
struct ufuse_failure {
    const char *server;    /* the server's name (argv[0]'s base name, or the
                              server_name= option); valid until unmount */
    const char *request;   /* opcode name, e.g. "READ" (static string) */
    int error;             /* the -errno the request ended with */
    int server_fault;      /* 1 when the server was at fault: a malformed
                              reply (EIO), it died (ENOTCONN), or it did not
                              answer in time (ETIMEDOUT); 0 when it answered
                              a well-formed error (ENOENT, EACCES, ...) */
};

/**
 * Describe the last request of the calling thread on @s that failed, so
 * that a tool can say what failed and who is at fault
 * ("ufuse: sshfs: READ /a.bin: Input/output error").  Per thread, so
 * concurrent callers see their own.  @return 0, or -ENOENT when this
 * thread had no failed request on @s.
 */
int ufuse_last_failure(ufuse_t *s, struct ufuse_failure *out);

/** Who a request is made for (the FUSE request header's uid, gid, pid),
 *  and its supplementary groups (checked under -o default_permissions;
 *  the first 256 count). */
struct ufuse_caller {
    uid_t uid;
    gid_t gid;
    pid_t pid;
    int ngroups;             /**< entries in groups (0: none) */
    const gid_t *groups;     /**< copied by ufuse_set_caller */
};

/**
 * Make the calling thread's later requests on @s carry @who's identity,
 * as the kernel fills each request from the process making the system
 * call; NULL returns to the session's own (the process that mounted, whose
 * ids and groups are then asked of the kernel when permissions are
 * checked).
 * For programs serving other processes (the `ufuse run` broker).  Requests
 * the library makes by itself (readahead, write-back, FORGET) carry the
 * session's identity.  Per thread.
 * @return 0, or -EINVAL when @s is NULL or @who's groups are missing.
 */
int ufuse_set_caller(ufuse_t *s, const struct ufuse_caller *who);

/* ---------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------ */

/**
 * Open (and with O_CREAT, create) a file.  @flags are open(2) flags:
 * O_RDONLY/O_WRONLY/O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_DIRECT,
 * O_NOFOLLOW, O_SYNC/O_DSYNC.  @mode is used with O_CREAT.
 * @out receives the handle, released by ufuse_close().  With O_DIRECT on a
 * cached session, the whole pages of each transfer (for reads: inside
 * EOF) go straight to the server and the unaligned head and tail through
 * the page cache; files the server opens FOPEN_DIRECT_IO, and every file
 * under cache=direct, send each transfer as made.
 */
int ufuse_open(ufuse_t *s, const char *path, int flags, mode_t mode,
               ufuse_file_t **out);

/**
 * Flush (FUSE_FLUSH) and release the file.  Returns the flush's error (as
 * close(2) reports write-back errors); the handle is freed whatever is
 * returned.
 */
int ufuse_close(ufuse_file_t *f);

/**
 * What close(2) of one copy of a descriptor does on a FUSE mount, without
 * closing @f: write back its dirty data and send FUSE_FLUSH (Linux's
 * fuse_flush).  0, or the write-back's or the FLUSH's error (-ENOSYS from
 * the server counts as 0).  For callers that keep one handle for many
 * descriptors, as `ufuse run` does.  Thread-safe.
 */
int ufuse_flush(ufuse_file_t *f);

/**
 * Release @f as the last close of a file does on a FUSE mount when every
 * close(2) before it went through ufuse_flush() (Linux sends FUSE_FLUSH at
 * each close and RELEASE alone when the last copy goes): dirty data is
 * written back, then FUSE_RELEASE is sent, no FUSE_FLUSH.  Returns the
 * write-back's error; the handle is freed whatever is returned, and must
 * not be in use by another thread.
 */
int ufuse_release(ufuse_file_t *f);

/**
 * Under -o outside_links: where the calling thread's last path call left
 * the file system, asked right after it failed with -EXDEV for that
 * reason.  The path
 * is absolute (a symbolic link's absolute target, then the rest of the
 * path: to be resolved from the caller's root) or begins with ".." (the
 * walk went above the root: relative to the directory the file system is
 * grafted on).  It is copied, NUL-terminated, into @buf (@size bytes).
 * Returns its length, -ENOENT when the thread's last walk of a path
 * stayed inside (an -EXDEV then came from elsewhere),
 * -ERANGE when @size is too small, -EINVAL for NULL arguments.  Per
 * thread; takes no lock.
 */
ssize_t ufuse_outside_path(ufuse_t *s, char *buf, size_t size);

/**
 * Read up to @n bytes at @off.  @return bytes read (0 at EOF) or -errno.
 * Bytes of @buf beyond the returned count are unspecified.  Files the
 * server opened FOPEN_NONSEEKABLE give -ESPIPE here and in ufuse_pwrite
 * and ufuse_lseek; ufuse_read/ufuse_write work on them.
 */
ssize_t ufuse_pread(ufuse_file_t *f, void *buf, size_t n, off_t off);
ssize_t ufuse_preadv(ufuse_file_t *f, const struct iovec *iov, int iovcnt,
                     off_t off);

/**
 * Write @n bytes at @off (at the end of the file for O_APPEND handles, as
 * Linux does).  @return bytes written or -errno.  A server that writes less
 * is asked again for the rest, except for direct_io files, where the short
 * count is returned.  A server that acknowledges more than it was sent
 * fails the write with -EINVAL (FreeBSD's rule); when that WRITE was a
 * write-back, ufuse_fsync, ufuse_close, ufuse_sync or ufuse_unmount
 * reports the -EINVAL.
 */
ssize_t ufuse_pwrite(ufuse_file_t *f, const void *buf, size_t n, off_t off);
ssize_t ufuse_pwritev(ufuse_file_t *f, const struct iovec *iov, int iovcnt,
                      off_t off);

/** read(2)/write(2) at the handle's own file position. */
ssize_t ufuse_read(ufuse_file_t *f, void *buf, size_t n);
ssize_t ufuse_write(ufuse_file_t *f, const void *buf, size_t n);

/**
 * Move the file position: SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA,
 * SEEK_HOLE (asked of the server with FUSE_LSEEK; a server without it gets
 * the POSIX fallback: data everywhere, one hole at EOF).
 * @return the new position or -errno.
 */
off_t ufuse_lseek(ufuse_file_t *f, off_t off, int whence);

int ufuse_fsync(ufuse_file_t *f);
int ufuse_fdatasync(ufuse_file_t *f);
int ufuse_ftruncate(ufuse_file_t *f, off_t size);
int ufuse_fstat(ufuse_file_t *f, struct stat *st);
int ufuse_fchmod(ufuse_file_t *f, mode_t mode);

/**
 * The session's page cache and attribute records for other processes
 * (include/ufuse_share.h): a new descriptor (close-on-exec, the caller's
 * to close) of the memfd holding them, which a reader maps read-only
 * (its size from fstat).  -EOPNOTSUPP unless the session was mounted with
 * -o share and has a page cache (not cache=direct); -errno from dup.
 * Thread-safe, takes no lock.
 */
int ufuse_share_fd(ufuse_t *s);

/**
 * The shared region's referenced bytes (one per frame, include/ufuse_share.h):
 * a new descriptor (close-on-exec, the caller's to close) of the memfd a
 * reader maps read-write and passes to ufuse_share_view_init, so that its
 * hits keep their pages from being the first evicted.  A reader can change
 * nothing through it but that.  -EOPNOTSUPP as ufuse_share_fd.
 */
int ufuse_share_refs_fd(ufuse_t *s);

/** What a reader of the shared region needs to serve an open file. */
struct ufuse_share_ids {
    uint64_t key;          /**< its pages' key in the frame index */
    uint64_t nodeid;       /**< what its attribute record must name ... */
    uint64_t generation;   /**< ... and of which generation */
    uint32_t attr_slot;    /**< its attribute record */
    uint32_t pad;
};

/**
 * @f's identity in the shared region, good while @f stays open: a reader
 * may then answer reads of @f from the cached pages, clipped at the size
 * its attribute record holds while that record is valid, and fstat from
 * the record.  -EOPNOTSUPP when the session does not share its cache, when
 * @f's reads do not go through the cache (FOPEN_DIRECT_IO, O_DIRECT, not a
 * regular file), when it has no position to seek (FOPEN_NONSEEKABLE,
 * FOPEN_STREAM) or when no attribute record is free.  Takes the node
 * table's lock.
 */
int ufuse_file_share(ufuse_file_t *f, struct ufuse_share_ids *ids);

/**
 * fallocate(2): @mode 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE (with
 * KEEP_SIZE), FALLOC_FL_ZERO_RANGE.  -EOPNOTSUPP when the server has no
 * FUSE_FALLOCATE.
 */
int ufuse_fallocate(ufuse_file_t *f, int mode, off_t off, off_t len);

/**
 * copy_file_range(2) between two files of the same session.  NULL offsets
 * use (and advance) the handles' positions.  Uses FUSE_COPY_FILE_RANGE,
 * or a read/write loop when the server lacks it.  @return bytes copied.
 */
ssize_t ufuse_copy_file_range(ufuse_file_t *in, off_t *off_in,
                              ufuse_file_t *out, off_t *off_out, size_t len,
                              unsigned flags);

/* ---------------------------------------------------------------------
 * Paths
 * ------------------------------------------------------------------ */

int ufuse_stat(ufuse_t *s, const char *path, struct stat *st);
int ufuse_lstat(ufuse_t *s, const char *path, struct stat *st);
int ufuse_access(ufuse_t *s, const char *path, int mode);
int ufuse_mkdir(ufuse_t *s, const char *path, mode_t mode);
int ufuse_mknod(ufuse_t *s, const char *path, mode_t mode, dev_t dev);
int ufuse_rmdir(ufuse_t *s, const char *path);
int ufuse_unlink(ufuse_t *s, const char *path);
/** rename(2), or renameat2(2) with @flags RENAME_NOREPLACE/RENAME_EXCHANGE. */
int ufuse_rename(ufuse_t *s, const char *from, const char *to,
                 unsigned flags);
int ufuse_link(ufuse_t *s, const char *existing, const char *newpath);
int ufuse_symlink(ufuse_t *s, const char *target, const char *linkpath);
/**
 * Read a symbolic link's target into @buf (not NUL-terminated, like
 * readlink(2)).  @return the target's length, which is larger than @size
 * when @buf was too small (then @size bytes were stored).
 */
ssize_t ufuse_readlink(ufuse_t *s, const char *path, char *buf, size_t size);
int ufuse_chmod(ufuse_t *s, const char *path, mode_t mode);
/** (uid_t)-1 / (gid_t)-1 leave that id unchanged. */
int ufuse_chown(ufuse_t *s, const char *path, uid_t uid, gid_t gid);
/** ufuse_chown on a symbolic link itself (lchown(2)): the last component
 *  is not followed.  Whether a link's owner can change is the server's
 *  choice (it may answer EPERM or EOPNOTSUPP). */
int ufuse_lchown(ufuse_t *s, const char *path, uid_t uid, gid_t gid);
/** utimensat(2) semantics: UTIME_NOW and UTIME_OMIT; @ts NULL = both now. */
int ufuse_utimens(ufuse_t *s, const char *path, const struct timespec ts[2]);
/** ufuse_utimens with AT_SYMLINK_NOFOLLOW: a symbolic link's own times. */
int ufuse_lutimens(ufuse_t *s, const char *path, const struct timespec ts[2]);
int ufuse_truncate(ufuse_t *s, const char *path, off_t size);
int ufuse_statfs(ufuse_t *s, const char *path, struct statvfs *st);

/* Extended attributes: semantics of getxattr(2) and friends.  The size
 * calls return the value's (list's) length; @size 0 asks for it only. */
ssize_t ufuse_getxattr(ufuse_t *s, const char *path, const char *name,
                       void *value, size_t size);
int ufuse_setxattr(ufuse_t *s, const char *path, const char *name,
                   const void *value, size_t size, int flags);
ssize_t ufuse_listxattr(ufuse_t *s, const char *path, char *list,
                        size_t size);
int ufuse_removexattr(ufuse_t *s, const char *path, const char *name);

/* ---------------------------------------------------------------------
 * Directories
 * ------------------------------------------------------------------ */

/** One directory entry, as ufuse_readdir() returns it. */
struct ufuse_dirent {
    uint64_t ino;          /* the server's inode number */
    uint64_t off;          /* cookie of the next entry */
    unsigned type;         /* DT_REG, DT_DIR, ... (DT_UNKNOWN if unknown) */
    int has_stat;          /* 1 if @st is filled (READDIRPLUS) */
    struct stat st;
    char name[256];        /* NUL-terminated */
};

int ufuse_opendir(ufuse_t *s, const char *path, ufuse_dir_t **out);
/**
 * Read the next entry into @ent ("." and ".." included, as the server
 * lists them).  @return 1 with an entry, 0 at the end, or -errno.
 */
int ufuse_readdir(ufuse_dir_t *d, struct ufuse_dirent *ent);
/** Start the stream over (the next readdir asks from offset 0). */
int ufuse_rewinddir(ufuse_dir_t *d);
int ufuse_fsyncdir(ufuse_dir_t *d, int datasync);
/** Release the directory handle; freed whatever is returned. */
int ufuse_closedir(ufuse_dir_t *d);

#ifdef __cplusplus
}
#endif
#endif /* UFUSE_H */
