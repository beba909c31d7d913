/*
 * ipc.h - tickets: one FUSE request and its reply, matched by unique id,
 * many in flight from many threads over one channel.
 *
 * Seed counterpart: FreeBSD fuse_ipc.c (fdisp_wait_answ, fticket_*).
 *
 * Receiving is leader/follower: a thread waiting for its reply becomes the
 * receiver ("leader") when nobody else is, and dispatches whatever arrives;
 * at queue depth 1 it receives its own reply straight into its own buffer,
 * so a round trip costs no thread wake-up beyond the socket's.  Other
 * waiters sleep on their ticket's condition variable until the leader
 * hands them their reply or the leadership.  A watcher thread takes the
 * leadership only after the session has been quiet for a while, so that
 * notifications and late replies are handled when nobody is waiting.
 *
 * Background requests (the kernel's writepages WRITEs): conn_submit sends
 * a request whose end runs a callback in whichever thread receives its
 * reply, with no thread sleeping per request; the submitter collects them
 * with conn_group_wait, receiving replies meanwhile.  So N requests in
 * flight cost N sends and N receives, not N threads and a wake-up each.
 */
#ifndef UFUSE_IPC_H
#define UFUSE_IPC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/uio.h>

#include "chan/chan.h"
#include "proto/proto.h"
#include "util/util.h"

/* What INIT granted (and our own caps applied to it). */
struct conn_params {
    uint32_t major, minor;
    uint64_t flags;          /* FUSE_* init flags granted (flags2 << 32 | flags) */
    uint32_t max_write;      /* largest WRITE payload we send */
    uint32_t max_read;       /* largest READ we ask for */
    uint32_t max_readahead;
    uint32_t max_pages;
    uint32_t time_gran;
    uint32_t max_request;    /* largest request datagram the server reads */
};

/* What the session asks for at INIT. */
struct conn_wants {
    uint64_t flags;          /* offered init flags */
    uint32_t max_read;       /* option max_read */
    uint32_t max_write;      /* option max_write */
    uint32_t max_readahead;
    uint64_t timeout_ns;     /* per request; 0 = none */
    uint64_t spin_ns;        /* poll for a reply this long before sleeping; 0 = never */
};

/*
 * Called by the receiving thread for every well-formed notification
 * (unique 0), with no ipc lock held.  Callers of conn_call must not hold a
 * lock across it that this callback takes.  Notifications that arrive
 * before conn_set_notify (during INIT, or while the session above is being
 * set up) or after conn_set_notify(NULL) (its teardown) are dropped, as the
 * kernel ignores those for inodes it does not have.
 */
typedef void (*conn_notify_fn)(void *ctx, int code, const void *body, size_t len);

/* Latency histogram: 4 buckets per power of two of nanoseconds. */
#define CONN_LAT_BUCKETS 160

struct conn_opstat {
    uint64_t count, errors, bytes, total_ns, max_ns;
    uint32_t lat[CONN_LAT_BUCKETS];
};

struct conn;

/* Upper bound (ns) of the bucket holding the @pct-th percentile. */
uint64_t conn_lat_percentile(const struct conn_opstat *s, double pct);

/* The calling thread's last failed request on @c (see ufuse_last_failure). */
struct conn_failure {
    uint32_t opcode;
    int error;
    int server_fault;        /* malformed reply, death or timeout */
};
int conn_last_failure(struct conn *c, struct conn_failure *out);
/* The uid, gid and pid the calling thread's requests on @c carry from now
 * on (@set), or the session's own again (!@set).  Per thread. */
/* Supplementary groups kept per thread caller (more are not checked). */
#define CONN_CALLER_GROUPS 256
void conn_set_caller(struct conn *c, int set, uint32_t uid, uint32_t gid, uint32_t pid,
                     const uint32_t *groups, uint32_t ngroups);
/* The calling thread's caller on @c, if conn_set_caller set one: 1 and
 * its ids (groups valid until the thread's next conn_set_caller), else 0
 * (the process's own). */
int conn_get_caller(const struct conn *c, uint32_t *uid, uint32_t *gid, const uint32_t **groups,
                    uint32_t *ngroups);

struct ticket;

/*
 * A submitter's requests in flight (conn_submit), all under c->mu: the
 * count of those whose callback has not returned yet, how many have ended
 * so far, and how many threads wait in conn_group_wait*.  Zeroed by the
 * owner; any number of threads may wait on it at once.
 */
struct conn_group {
    unsigned pending;
    uint64_t ended;
    unsigned waiters;
};

/*
 * A background request ended: @error is 0 (the reply's payload is in the
 * request's out buffers, @outlen bytes), the server's -errno, or -ENOTCONN,
 * -ETIMEDOUT, -EIO as for conn_call.  Runs with no ipc lock held, on any
 * thread receiving for the connection: it must not wait for replies, and
 * must take only locks that no thread holds while waiting in this layer.
 */
typedef void (*conn_done_fn)(void *ctx, int error, size_t outlen);

struct conn {
    struct chan ch;
    struct ulog *log;
    struct conn_params p;
    uint64_t timeout_ns;
    uint32_t uid, gid, pid;       /* credentials put in every request */

    pthread_mutex_t mu;           /* guards everything below */
    struct ticket **table;        /* in-flight tickets, hashed by unique */
    unsigned table_mask;
    uint64_t next_unique;
    unsigned inflight;            /* tickets in the table */
    unsigned waiters;             /* threads inside conn_wait */
    unsigned orphans;             /* tickets whose caller gave up (timeout) */
    int leader;                   /* a thread is receiving */
    int dead;                     /* server gone: everything is ENOTCONN */
    int no_interrupt;             /* INTERRUPT answered ENOSYS */
    int stopping;                 /* watcher must exit */
    uint64_t activity;            /* bumped per request sent */
    struct ticket *followers;     /* waiters sleeping, FIFO (head first) */
    struct ticket *followers_tail;
    struct ticket *free_tickets;  /* recycled tickets */
    struct ticket *done_list;     /* background requests ended, callbacks to run */
    uint64_t enosys[(PROTO_MAX_OPCODE + 63) / 64];
    struct conn_opstat stats[PROTO_MAX_OPCODE];
    uint64_t wakeups;             /* condition signals sent to other threads */
    _Atomic uint64_t polled;      /* replies the leader got by polling (spin_ns) */
    _Atomic uint64_t poll_misses; /* polls that ended with nothing: it slept */
    uint64_t split_replies;       /* replies reassembled from several datagrams */
    pthread_cond_t idle_cv;       /* the watcher sleeps here */

    /* Leader-owned (only the thread holding c->leader touches these). */
    void *scratch;                /* receive buffer for other tickets' replies */
    size_t scratch_cap;
    struct ticket *cont;          /* reply split over datagrams, being reassembled */
    size_t discard;               /* continuation bytes of failed split replies */
    uint64_t spin_ns;             /* conn_wants.spin_ns */
    unsigned spin_misses;         /* polls in a row that got nothing */
    unsigned spin_rest;           /* waits left that do not poll (conn_poll_reply) */

    conn_notify_fn notify;        /* NULL until conn_set_notify */
    void *notify_ctx;
    unsigned notifying;           /* notifications being handled (callback or not) */
    pthread_cond_t notify_cv;     /* notifying dropped to 0 */
    pthread_t watcher;
    int watcher_running;
    int wake_fd;                  /* eventfd kicking the watcher */
};

/* One request, described by its caller. */
struct conn_req {
    uint32_t opcode;
    uint64_t nodeid;
    const struct iovec *in;  /* body after the fuse_in_header */
    int incnt;
    const struct iovec *out; /* where the reply's payload goes */
    int outcnt;
    int out_exact;           /* a successful reply must fill @out exactly */
    size_t outlen;           /* result: payload bytes received */
    int replied;             /* result: the error is the server's answer (or
                                EIO for its malformed reply), not death,
                                timeout or a local failure */
};

/* Set up over an open channel (taken over) and run INIT. 0 or -errno. */
int conn_start(struct conn *c, const struct chan *ch, struct ulog *log,
               const struct conn_wants *w);
/* Deliver notifications to @fn from now on (NULL: drop them); returns once
 * no callback to the former one runs on another thread.  Not to be called
 * from the callback. */
void conn_set_notify(struct conn *c, conn_notify_fn fn, void *ctx);
/*
 * Send @r and wait for its reply.  0, the server's -errno, or -ENOTCONN
 * (server gone), -ETIMEDOUT (option timeout), -EIO (malformed reply),
 * -ENOSYS (the opcode was answered ENOSYS before: not sent again),
 * -E2BIG (request larger than the server can read).
 */
int conn_call(struct conn *c, struct conn_req *r);
/*
 * Send @r as a background request of @g: returns 0 (then @done runs exactly
 * once, when it ends; @r's out buffers must live until then) or -errno
 * (then it never runs): -ENOSYS when the opcode was answered so before.
 * @r->outlen and @r->replied are not used.
 */
int conn_submit(struct conn *c, struct conn_req *r, struct conn_group *g, conn_done_fn done,
                void *ctx);
/*
 * Wait until at most @max requests of @g are pending (their callbacks have
 * returned), receiving for the connection meanwhile.  With a timeout
 * option, a request of @g past its deadline is interrupted as conn_call
 * does, then ends with -ETIMEDOUT (its late reply is dropped).
 */
void conn_group_wait(struct conn *c, struct conn_group *g, unsigned max);
/* How many requests of @g have ended so far (for conn_group_wait_end). */
uint64_t conn_group_ended(struct conn *c, struct conn_group *g);
/*
 * Wait, as conn_group_wait does, until a request of @g ends after
 * conn_group_ended returned @seen, or none is pending: 0; or until
 * ufuse_now_ns() reaches @until_ns (0: no limit): -ETIMEDOUT.  With the
 * owner's own record of which requests are still out (updated by their
 * callbacks), "read @seen, look at the record, wait" misses no ending.
 */
int conn_group_wait_end(struct conn *c, struct conn_group *g, uint64_t seen, uint64_t until_ns);
/* Send without waiting; a reply, if any, is dropped (RELEASE). */
int conn_call_async(struct conn *c, uint32_t opcode, uint64_t nodeid,
                    const struct iovec *in, int incnt);
/* Send a request that has no reply (FORGET, BATCH_FORGET, NOTIFY_REPLY with
 * @unique the notification's). @unique 0 draws a fresh one. */
int conn_send_noreply(struct conn *c, uint32_t opcode, uint64_t nodeid,
                      uint64_t unique, const struct iovec *in, int incnt);
/*
 * Interrupt the calls @thread is waiting in, as a signal interrupts a
 * system call on a FUSE mount: FUSE_INTERRUPT is sent for each; a call
 * then ends with the server's answer (-EINTR if it gave up the request).
 * Returns the number of calls interrupted, -ENOSYS when the server does not
 * support INTERRUPT, -ENOTCONN.
 */
int conn_interrupt(struct conn *c, pthread_t thread);
/* Was @opcode answered ENOSYS already? */
int conn_enosys(struct conn *c, uint32_t opcode);
/* Is the server gone? */
int conn_dead(struct conn *c);
/* Requests sent and not answered (yet, or ever: timed out ones count). */
unsigned conn_unanswered(struct conn *c);
/* Wait (bounded) for async and background requests to be answered, run
 * the callbacks of those that ended, stop the watcher.  Callbacks of those
 * still out never run (conn_destroy frees their tickets). */
void conn_drain(struct conn *c, int timeout_ms);
/* Free everything; the channel is closed by the caller (chan_close). */
void conn_destroy(struct conn *c);
/* Counters of the waiting (ufuse_conninfo). */
struct conn_counts {
    uint64_t wakeups, polled, poll_misses;
};
/* Copy the per-opcode statistics (under the lock) and, if @counts, the
 * waiting's counters. */
void conn_get_stats(struct conn *c, struct conn_opstat out[PROTO_MAX_OPCODE],
                    struct conn_counts *counts);

#endif
