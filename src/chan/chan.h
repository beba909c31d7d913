/*
 * chan.h - the transport: one SOCK_SEQPACKET socketpair per session, the
 * server process on the other end (spawned and reaped here), and the
 * datagram send/receive primitives the ticket layer (ipc) builds on.
 *
 * Seed counterpart: FreeBSD fuse_device.c (the /dev/fuse character device),
 * which this replaces with a socket.
 */
#ifndef UFUSE_CHAN_H
#define UFUSE_CHAN_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "util/util.h"

/* Room for the last lines of a server's stderr kept for a failed start. */
#define CHAN_LAST_LINES_MAX 1024
#define CHAN_LAST_LINES 5

enum chan_attach {
    CHAN_ATTACH_AUTO,   /* the rule in chan.c's header */
    CHAN_ATTACH_DEVFD,  /* mountpoint argument /dev/fd/N */
    CHAN_ATTACH_HOOK,   /* preload libufuse-fusehook.so, mountpoint = empty dir */
};

struct chan {
    int fd;             /* our end of the socketpair */
    pid_t pid;          /* the server, or 0 when attached to an fd */
    int pidfd;          /* pidfd of the server, or -1 */
    char *mountdir;     /* hook mode: the empty directory we made, or NULL */
    ino_t srv_ino;      /* inode of the server's end (0 when attached to an fd) */
    size_t max_send;    /* largest datagram we can send (SO_SNDBUF bound) */
    size_t max_recv;    /* largest datagram the server can send us */
    char name[64];      /* basename of the server's argv[0] ("" for an fd) */
    enum chan_attach attach;  /* devfd or hook as spawned; AUTO for an fd */
    int hook_fallback;  /* attach=auto chose devfd for a program the hook can
                           also serve: if it ends before answering INIT (it
                           refused /dev/fd/N), spawn it again with the hook */
    struct chan_relay *relay; /* relays the spawned server's stderr, or NULL */
    int wstatus;        /* after chan_close: the server's wait status, or -1
                           (none, or it had to be terminated) */
    char last_lines[CHAN_LAST_LINES_MAX]; /* after chan_close of a server that
                           never completed INIT: the last lines it wrote to
                           stderr, each "\n"-terminated ("" if none) */
};

struct chan_spawn_opts {
    enum chan_attach attach;
    int log_fd;         /* the server's stderr, or -1 for ours */
};

/*
 * Spawn @argv (NULL or empty: the built-in ufuse-memfs) with the server end
 * of a fresh socketpair.  Its stderr is a pipe that a relay thread copies
 * to our stderr (or o->log_fd) for the server's whole life, keeping the
 * last lines it wrote until chan_started() says INIT completed.
 * 0, or -errno with what could not be started and why in @msg
 * ("cannot start server 'x': not found in PATH"): -ENOENT (not found),
 * -EACCES (not executable), -EISDIR, or the error of the exec.
 */
int chan_spawn(struct chan *c, char *const argv[],
               const struct chan_spawn_opts *o, char *msg, size_t msgsize);
/* The server completed INIT: its stderr is still relayed, no longer kept. */
void chan_started(struct chan *c);
/* Use an already connected SEQPACKET socket (ownership taken, even on error). */
int chan_attach_fd(struct chan *c, int fd);

/*
 * Send one datagram made of @iov.  0, or -ENOTCONN when the server is gone,
 * -EMSGSIZE when it is larger than max_send.
 */
int chan_send(struct chan *c, const struct iovec *iov, int cnt);

/*
 * Receive a datagram as chan_recv does, without sleeping: try again and
 * again for up to @spin_ns.  Its size, or -EAGAIN when none came (the
 * caller then sleeps in chan_recv, which also tells EOF and errors).
 */
ssize_t chan_recv_spin(struct chan *c, struct iovec *iov, int cnt, uint64_t spin_ns,
                       int *truncated);

/*
 * Receive one datagram into @iov.  Returns its size (> 0), 0 at EOF (the
 * server closed its end), -EAGAIN when @timeout_ms (-1 = forever) passed or
 * a wake-up fd became readable, or -ENOTCONN.  *@truncated is set when the
 * datagram was larger than @iov.  @wake_fd (or -1) is an eventfd that also
 * ends the wait.
 */
ssize_t chan_recv(struct chan *c, struct iovec *iov, int cnt, int timeout_ms,
                  int wake_fd, int *truncated);

/*
 * Close our end (the server sees EOF), wait up to @timeout_ms for the server
 * to exit, then SIGTERM, then SIGKILL.  Removes the hook mount directory.
 * @clean: the session ended cleanly, i.e. the server was still connected and
 * no request awaited its reply when the socket closed.  Then the server's
 * exit is normal whatever its status (libfuse exits 1 or 8 at end of file,
 * glusterfs 15).  Otherwise its exit status, if not 0, is logged.  A server
 * killed by a signal, or that has to be terminated, is always logged.
 * Returns 0 for a normal end, -EIO for a logged one.
 * Sets c->wstatus, and c->last_lines unless chan_started() was called.
 */
int chan_close(struct chan *c, int timeout_ms, int clean, struct ulog *lg);

/*
 * End a channel whose session never started (INIT failed or went
 * unanswered): close it, give the server @timeout_ms to exit, then
 * terminate what the attempt left behind -- the server, its process group
 * (children it started before failing) and every process still holding its
 * socket (a daemonized child) -- and reap it.  Reports nothing: the caller
 * reports the failed attach (c->wstatus: how the server ended by itself, or
 * -1; c->last_lines as for chan_close).
 */
void chan_discard(struct chan *c, int timeout_ms, struct ulog *lg);

/*
 * Processes other than us that hold the server's end of our socketpair
 * (the socket whose inode is @ino): a server that daemonized, or children
 * it passed the fd to.  Fills up to @max pids; returns how many.  Only our
 * own processes' fd tables are readable, which are the ones that matter.
 */
int chan_holders(ino_t ino, pid_t *pids, int max);

/*
 * How a server that never completed INIT ended, after chan_close: "exited
 * with status 1", "was killed by signal 11 (Segmentation fault)" or
 * "closed its socket", into @buf.
 */
void chan_describe_end(const struct chan *c, char *buf, size_t n);

/* Find the built-in server / the hook library: next to our executable,
 * then the install directories, then PATH (for the server). Caller frees. */
char *chan_find_helper(const char *name, int is_library);

#endif
