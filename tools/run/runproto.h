/*
 * runproto.h - the protocol between libufuse-preload.so (in every program
 * of a `ufuse run` tree) and the broker (the `ufuse run` / `ufuse mount`
 * process that owns the FUSE session).  docs/run.md explains the design.
 *
 * Transport: one AF_UNIX SOCK_SEQPACKET connection per (program thread,
 * mount), to the abstract address the broker advertises in UFUSE_RUN.
 * A connection carries one request at a time: the program sends a request
 * datagram, the broker answers with one reply datagram.  A connection's
 * first request is RUN_HELLO.
 *
 * Request:  struct run_req, then op-specific bytes (NUL-terminated paths,
 *           or WRITE data), up to RUN_MAX_MSG in all.
 * Reply:    struct run_rep, then op-specific bytes.  res is a count, 0, or
 *           -errno as the libc call would set it.  RUN_OPEN/RUN_OPENDIR
 *           replies carry the description's identity fd (SCM_RIGHTS);
 *           a RUN_SUPERVISE request carries a seccomp listener fd.
 *
 * Open file descriptions: the broker keeps them (FUSE handle, file
 * position, status flags, path).  A program holds each one as a real fd:
 * the read end of a pipe whose write end only the broker has.  The kernel
 * then does fd numbers, dup, fork and exec inheritance, close-on-exec and
 * the lifetime of the description: when every copy of the read end is
 * closed (also by exit or SIGKILL), the write end reports EPOLLERR and the
 * broker releases the description.  The pipe is O_NONBLOCK and never
 * written, so a call the preload library does not intercept fails
 * (EAGAIN, EBADF, ENODEV) instead of touching another file.  After exec,
 * RUN_HELLO names the pipes the new image inherited (by inode) and the
 * broker says which descriptions they are.
 *
 * Who is asking: the broker takes the caller's effective uid and gid, and
 * pid, from the connection (SO_PEERCRED), never from the request; the
 * preload library reconnects after the process changes its ids (setuid
 * and friends), so the server always sees the ids the process has now.
 *
 * The broker trusts nothing in a request: lengths, strings and description
 * ids are checked.
 *
 * Shared memory (the fast path; docs/run.md): the broker mounts with
 * -o share, so its page cache and cached attributes lie in a memfd
 * (include/ufuse_share.h) that programs map read-only (RUN_SHARE 0; its
 * referenced bytes, RUN_SHARE 2, read-write, so their hits count), and
 * it keeps each file description's position in a table programs map
 * read-write (RUN_SHARE 1): one 64-bit word per slot, the position, with
 * RUN_POS_LOCK set while the broker itself moves it.  A program answers
 * a read of cached pages itself: pread from the region; read(2) at the
 * position by a compare-and-swap of the word from the position it read at
 * to the position after (never while RUN_POS_LOCK is set), so reads and
 * the broker's position changes stay atomic with respect to each other,
 * and a program killed half-way leaves the word as it was.  The broker
 * takes the word as untrusted (a program can write any value there): it
 * masks RUN_POS_LOCK off and uses the rest as the position.
 */
#ifndef UFUSE_RUNPROTO_H
#define UFUSE_RUNPROTO_H

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define RUN_PROTO_VERSION 2
/* Largest datagram either side sends; READ/WRITE/GETDENTS are cut to fit. */
#define RUN_MAX_MSG (160u << 10)
/* Largest READ/WRITE/GETDENTS payload in one message. */
#define RUN_MAX_DATA (128u << 10)
/* Environment: "PATH=ADDR[:PATH=ADDR...]", ADDR an abstract socket name. */
#define RUN_ENV "UFUSE_RUN"
/* Environment: the program's working directory when it is inside a mount. */
#define RUN_ENV_CWD "UFUSE_CWD"

enum run_op {
    RUN_HELLO = 1,   /* a: pid; data: u64 pipe inodes -> struct run_adopt[] */
    RUN_OPEN,        /* flags, mode, path -> struct run_open + fd */
    RUN_OPENDIR,     /* path -> struct run_open + fd */
    RUN_FLUSH,       /* desc: close(2) of one copy -> 0 / -errno */
    RUN_READ,        /* desc, a: offset (-1: the position), b: count -> data */
    RUN_WRITE,       /* desc, a: offset (-1: the position), data -> count */
    RUN_LSEEK,       /* desc, a: offset, flags: whence -> position */
    RUN_FSTAT,       /* desc -> struct stat */
    RUN_FTRUNCATE,   /* desc, a: size */
    RUN_FSYNC,       /* desc, flags: 1 = data only */
    RUN_FALLOCATE,   /* desc, flags: mode, a: offset, b: length */
    RUN_GETFL,       /* desc -> status flags */
    RUN_SETFL,       /* desc, flags */
    RUN_GETDENTS,    /* desc, b: buffer size -> linux_dirent64 records */
    RUN_SEEKDIR,     /* desc, a: entry index (0 = rewind) */
    RUN_FCHMOD,      /* desc, mode */
    RUN_FCHOWN,      /* desc, a: uid, b: gid */
    RUN_FUTIMENS,    /* desc, data: struct timespec[2] (or none = now) */
    RUN_STAT,        /* flags: RUN_NOFOLLOW, path -> struct stat */
    RUN_ACCESS,      /* mode, path */
    RUN_MKDIR,       /* mode, path */
    RUN_MKNOD,       /* mode, a: dev, path */
    RUN_RMDIR,       /* path */
    RUN_UNLINK,      /* path */
    RUN_RENAME,      /* flags, path, path2 */
    RUN_LINK,        /* path (existing), path2 (new) */
    RUN_SYMLINK,     /* path (target, any text), path2 (the link) */
    RUN_READLINK,    /* path -> target bytes */
    RUN_CHMOD,       /* mode, path */
    RUN_CHOWN,       /* flags: RUN_NOFOLLOW, a: uid, b: gid, path */
    RUN_UTIMENS,     /* flags: RUN_NOFOLLOW, path, data: timespec[2] or none */
    RUN_TRUNCATE,    /* a: size, path */
    RUN_STATFS,      /* path -> struct statvfs */
    RUN_GETXATTR,    /* b: size, path, path2 = name -> value or size */
    RUN_SETXATTR,    /* flags, path, path2 = name, data = value */
    RUN_LISTXATTR,   /* b: size, path -> list or size */
    RUN_REMOVEXATTR, /* path, path2 = name */
    RUN_LOCK,        /* desc, flags: RUN_LK_*, data: struct flock (record
                        locks; -> struct flock for the GET kinds), or
                        a: flock(2) operation (RUN_LK_FLOCK) */
    RUN_UMOUNT,      /* `ufuse umount`: end the session */
    RUN_STATS,       /* -> struct run_stats (tests and diagnostics) */
    RUN_SUPERVISE,   /* a seccomp listener fd comes with it (SCM_RIGHTS):
                        the broker answers the trapped calls of the
                        process that installed the filter and of its
                        descendants (tools/run/supervise.c) */
    RUN_SHARE,       /* a: 0 the cache region, 1 the position table, 2 the
                        cache's referenced bytes -> its size, and the memfd
                        (SCM_RIGHTS); -EOPNOTSUPP if the session shares
                        nothing */
    RUN_OP_MAX
};

/* RUN_STAT / RUN_CHOWN / RUN_UTIMENS flags */
#define RUN_NOFOLLOW 1u

/* RUN_LOCK kinds */
enum run_lock_kind {
    RUN_LK_GET = 1, RUN_LK_SET, RUN_LK_SETW,              /* process owned */
    RUN_LK_OFD_GET, RUN_LK_OFD_SET, RUN_LK_OFD_SETW,      /* description owned */
    RUN_LK_FLOCK,
};

struct run_req {
    uint32_t op;        /* enum run_op */
    uint32_t flags;
    uint64_t desc;      /* description id, 0 for path calls */
    int64_t a, b;       /* op arguments (see enum run_op) */
    uint32_t mode;
    uint32_t umask;     /* the caller's umask, applied by the broker */
    uint16_t path_len;  /* bytes of path incl. its NUL (0: none) */
    uint16_t path2_len; /* bytes of path2 incl. its NUL (0: none) */
    uint32_t pad;
    /* then path, path2, data */
};

struct run_rep {
    int64_t res;        /* count / value, or -errno */
    uint32_t len;       /* bytes that follow */
    uint32_t flags;     /* RUN_REP_* */
};

/* RUN_GETDENTS: the directory stream ended after these entries (a reader
 * that asks again gets none, so it need not ask). */
#define RUN_REP_END 1u

/* A path call's answer when the walk left the mount (a symbolic link to
 * an absolute path, ".." above the root): the reply data is the absolute
 * path to resolve instead, on another mount or the real file system.  Not
 * an errno (those are above -4096). */
#define RUN_LEFT_MOUNT (-4096)

/* An identity pipe's size (F_SETPIPE_SZ; ordinary pipes have 64 KiB): a
 * new image asks the broker about inherited pipes of this size only, so
 * one that inherited none makes no request at start-up. */
#define RUN_ID_PIPE_SIZE 4096

/* The bit of a position word set while the broker moves the position. */
#define RUN_POS_LOCK (1ull << 63)

/* How a program may serve a description's reads itself: pos_slot 0 means
 * it may not (a directory, a file read around the cache, no slot free). */
struct run_fast {
    uint64_t key;       /* struct ufuse_share_ids */
    uint64_t nodeid;
    uint64_t generation;
    uint32_t attr_slot;
    uint32_t pos_slot;  /* its word in the position table */
};

/* RUN_OPEN / RUN_OPENDIR reply body; the identity fd comes with it. */
struct run_open {
    uint64_t desc;
    uint32_t flags;     /* status flags the description has */
    uint32_t is_dir;
    struct run_fast fast;
};

/* RUN_STATS reply body: the broker's tables. */
struct run_stats {
    uint32_t descs;     /* open file descriptions */
    uint32_t locks;     /* record and flock locks held */
    uint32_t procs;     /* processes watched for their locks */
    uint32_t conns;     /* connections open */
    uint32_t listeners; /* seccomp listeners served */
    uint64_t traps;     /* system calls trapped by seccomp so far */
    uint64_t requests;  /* requests served so far (every op, this one too) */
};

/* RUN_HELLO reply body: one per presented inode the broker knows. */
struct run_adopt {
    uint64_t ino;       /* the pipe inode presented */
    uint64_t desc;
    uint32_t is_dir;
    uint32_t path_len;  /* the description's path follows, NUL incl. */
    uint32_t flags;     /* status flags the description has */
    uint32_t pad;
    struct run_fast fast;
};

/* Attach @fd to @m as SCM_RIGHTS, in @buf of RUN_FD_SPACE bytes (both
 * sides pass at most one descriptor a message). */
#define RUN_FD_SPACE CMSG_SPACE(sizeof(int))
static inline void run_msg_pass_fd(struct msghdr *m, void *buf, int fd)
{
    memset(buf, 0, RUN_FD_SPACE);
    m->msg_control = buf;
    m->msg_controllen = RUN_FD_SPACE;
    struct cmsghdr *h = CMSG_FIRSTHDR(m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &fd, sizeof(int));
}

#endif /* UFUSE_RUNPROTO_H */
