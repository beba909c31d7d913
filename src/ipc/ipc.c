/*
 * ipc.c - tickets, the in-flight table, leader/follower receiving,
 * timeouts with FUSE_INTERRUPT, server death, and INIT.  See ipc.h.
 *
 * Lock: c->mu guards the table, the follower list, the counters and every
 * ticket's fields except those marked leader-owned.  It is never held
 * across a system call that can block (send, receive, sleep) nor across
 * the notify callback.
 *
 * Ticket life:
 *
 *      conn_call: get ---> in table (WAITING) ---> DONE ---> put (recycled)
 *                              |        ^
 *                              |        +-- reply / death / local error
 *                              +-- timed out after INTERRUPT: ORPHANED,
 *                                  stays in the table until its late reply
 *                                  or teardown, then freed by whoever ends it
 *      conn_call_async: get ---> in table (ASYNC) ---> freed at its reply
 *
 * Invariants:
 *  1. A ticket is in the table iff its state is WAITING (incl. orphaned and
 *     async); a DONE ticket is not, so a late or duplicate reply finds
 *     nothing and is dropped.
 *  2. At most one thread is leader (c->leader); only it calls chan_recv
 *     and chan_recv_spin, and uses c->scratch and the spin state.
 *  6. While c->cont is set, a datagram that is not plausibly the head of
 *     another message (conn_is_head) is the next piece of c->cont; when
 *     two split replies interleave, both fail and c->discard counts the
 *     bytes of theirs still to come, which are dropped; a new head for
 *     c->cont's own request fails it.  So a piece is never stored into a
 *     reply it does not belong to, and t->got never exceeds t->want.
 *  3. A ticket's out buffers are written only under c->mu, or by the
 *     leader when the ticket is its own (direct receive).  An orphaned
 *     ticket has no out buffers.
 *  4. Whenever c->leader drops to 0 while followers sleep, the first
 *     follower is signalled, so a waiter never sleeps with nobody
 *     receiving.
 *  5. Once c->dead is set it stays set, every ticket in the table has been
 *     completed with -ENOTCONN, and nothing more is sent.
 *  7. A background ticket (t->done) that ends leaves the table for
 *     c->done_list (once its submitter's sendmsg has returned: until then
 *     the request's memory is in use); its callback runs once, with no
 *     lock held, run by the thread that ended it (conn_dispatch), its
 *     submitter or a group waiter, and only then does its group's pending
 *     count drop and the ticket return to the free list.  One that times out runs its callback at once and
 *     stays in the table, orphaned, for its late reply.
 */
#include "ipc/ipc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

enum tstate { T_WAITING, T_DONE };

struct ticket {
    uint64_t unique;
    uint32_t opcode;
    int state;
    int async;                /* nobody waits: freed when it ends */
    int orphaned;             /* its caller gave up (timeout) */
    int int_sent;             /* an INTERRUPT was sent for it */
    int int_timeout;          /* ... because its deadline passed */
    pthread_t owner;          /* the calling thread (conn_interrupt) */
    int int_again;            /* the server asked for the INTERRUPT again */
    int32_t error;
    int bad_reply;            /* failed because the reply was malformed */
    int replied;              /* error is the server's reply's (or EIO for it) */
    const struct iovec *out;
    int outcnt;
    size_t outcap;
    int exact;
    size_t got;               /* payload bytes stored so far */
    size_t want;              /* payload expected by a split reply */
    uint64_t sent_ns;
    uint64_t deadline_ns;     /* 0 = none */
    size_t inbytes;           /* for statistics */
    pthread_cond_t cv;
    int following;            /* on the follower list */
    struct conn_group *awaits; /* a follower token: the group it waits on */
    conn_done_fn done;        /* background request: its callback */
    int sending;              /* ... its submitter is still in sendmsg */
    void *done_ctx;
    struct conn_group *group; /* ... and its submitter's group */
    struct ticket *hnext;     /* hash chain / free list */
    struct ticket *fnext, *fprev;
};

/* After a timeout and INTERRUPT, how long a reply may still take. */
#define INTERRUPT_GRACE_NS 1000000000ull
/* The watcher takes over receiving after this much quiet. */
#define WATCH_QUIET_NS 10000000ull
/* Largest reply payload other than READ data (READDIR, xattrs). */
#define CONN_MAX_META_REPLY (128u * 1024)

/* ---- statistics and failures ------------------------------------------------ */

/* Bucket of a latency: 4 per power of two (within 19% of the value). */
static unsigned conn_lat_bucket(uint64_t ns)
{
    if (ns < 4)
        return (unsigned)ns;
    unsigned lg = 63u - (unsigned)__builtin_clzll(ns);
    unsigned b = lg * 4 + (unsigned)((ns >> (lg - 2)) & 3);
    return b < CONN_LAT_BUCKETS ? b : CONN_LAT_BUCKETS - 1;
}

/* The largest latency that falls in bucket @b. */
static uint64_t conn_lat_bound(unsigned b)
{
    if (b < 4)
        return b;
    unsigned lg = b / 4, sub = b % 4;
    return ((uint64_t)(4 + sub + 1) << (lg - 2)) - 1;
}

uint64_t conn_lat_percentile(const struct conn_opstat *s, double pct)
{
    uint64_t n = 0, seen = 0;
    for (unsigned b = 0; b < CONN_LAT_BUCKETS; b++)
        n += s->lat[b];
    if (!n)
        return 0;
    uint64_t want = (uint64_t)((double)n * pct / 100.0 + 0.999999);
    for (unsigned b = 0; b < CONN_LAT_BUCKETS; b++) {
        seen += s->lat[b];
        if (seen >= want)
            return UFUSE_MIN(conn_lat_bound(b), s->max_ns);
    }
    return s->max_ns;
}

/* A reply broke the protocol: fail its call with EIO, the server's fault. */
static void conn_complete(struct conn *c, struct ticket *t, int32_t error);
static void conn_reject(struct conn *c, struct ticket *t)
{
    t->bad_reply = 1;
    t->replied = 1;
    conn_complete(c, t, -EIO);
}

/* Per thread: the last request that failed, and on which connection. */
static __thread struct {
    const struct conn *c;
    struct conn_failure f;
} conn_last;

int conn_last_failure(struct conn *c, struct conn_failure *out)
{
    if (conn_last.c != c)
        return -ENOENT;
    *out = conn_last.f;
    return 0;
}

static void conn_note_failure(struct conn *c, uint32_t opcode, int rc, int bad_reply)
{
    conn_last.c = c;
    conn_last.f = (struct conn_failure){
        .opcode = opcode, .error = rc,
        .server_fault = bad_reply || rc == -ENOTCONN || rc == -ETIMEDOUT};
}

/* Per thread: the identity its requests carry instead of the session's,
 * and its supplementary groups (for -o default_permissions). */
static __thread struct {
    const struct conn *c;
    uint32_t uid, gid, pid;
    uint32_t ngroups;
    uint32_t groups[CONN_CALLER_GROUPS];
} conn_caller;

void conn_set_caller(struct conn *c, int set, uint32_t uid, uint32_t gid, uint32_t pid,
                     const uint32_t *groups, uint32_t ngroups)
{
    conn_caller.c = set ? c : NULL;
    conn_caller.uid = uid;
    conn_caller.gid = gid;
    conn_caller.pid = pid;
    conn_caller.ngroups = UFUSE_MIN(ngroups, (uint32_t)CONN_CALLER_GROUPS);
    if (conn_caller.ngroups)
        memcpy(conn_caller.groups, groups, conn_caller.ngroups * sizeof *groups);
}

int conn_get_caller(const struct conn *c, uint32_t *uid, uint32_t *gid, const uint32_t **groups,
                    uint32_t *ngroups)
{
    if (conn_caller.c != c)
        return 0;
    *uid = conn_caller.uid;
    *gid = conn_caller.gid;
    *groups = conn_caller.groups;
    *ngroups = conn_caller.ngroups;
    return 1;
}

/* ---- table ---------------------------------------------------------- */

static struct ticket **conn_slot(struct conn *c, uint64_t unique)
{
    return &c->table[(unique >> 1) & c->table_mask];
}

static struct ticket *conn_find(struct conn *c, uint64_t unique)
{
    for (struct ticket *t = *conn_slot(c, unique); t; t = t->hnext)
        if (t->unique == unique)
            return t;
    return NULL;
}

static void conn_insert(struct conn *c, struct ticket *t)
{
    c->next_unique += 2; /* bit 0 is PROTO_INT_REQ_BIT */
    t->unique = c->next_unique;
    struct ticket **s = conn_slot(c, t->unique);
    t->hnext = *s;
    *s = t;
    c->inflight++;
}

/* Take @t out of the table: 1, or 0 if it was not there (ended). */
static int conn_remove(struct conn *c, struct ticket *t)
{
    for (struct ticket **p = conn_slot(c, t->unique); *p; p = &(*p)->hnext) {
        if (*p == t) {
            *p = t->hnext;
            t->hnext = NULL;
            c->inflight--;
            return 1;
        }
    }
    return 0;
}

static struct ticket *ticket_get(struct conn *c)
{
    struct ticket *t = c->free_tickets;
    if (t) {
        c->free_tickets = t->hnext;
    } else {
        t = calloc(1, sizeof *t);
        if (!t)
            return NULL;
        pthread_condattr_t a;
        pthread_condattr_init(&a);
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        pthread_cond_init(&t->cv, &a);
        pthread_condattr_destroy(&a);
    }
    pthread_cond_t cv = t->cv;
    memset(t, 0, sizeof *t);
    t->cv = cv;
    return t;
}

static void ticket_put(struct conn *c, struct ticket *t)
{
    t->hnext = c->free_tickets;
    c->free_tickets = t;
}

static void conn_follow(struct conn *c, struct ticket *t)
{
    t->following = 1;
    t->fnext = NULL;
    t->fprev = c->followers_tail;
    if (c->followers_tail)
        c->followers_tail->fnext = t;
    else
        c->followers = t;
    c->followers_tail = t;
}

static void conn_unfollow(struct conn *c, struct ticket *t)
{
    if (!t->following)
        return;
    if (t->fprev)
        t->fprev->fnext = t->fnext;
    else
        c->followers = t->fnext;
    if (t->fnext)
        t->fnext->fprev = t->fprev;
    else
        c->followers_tail = t->fprev;
    t->following = 0;
}

/* Nobody is receiving: let the first sleeper take over (invariant 4). */
static void conn_handoff(struct conn *c)
{
    if (!c->leader && c->followers) {
        c->wakeups++;
        pthread_cond_signal(&c->followers->cv);
    }
}

/* End @t with @error (0 = its reply is stored).  Lock held. */
static void conn_complete(struct conn *c, struct ticket *t, int32_t error)
{
    conn_remove(c, t);
    uint64_t now = ufuse_now_ns();
    UFUSE_PROBE5(request_reply, t->unique, error, error ? 0 : t->got, t->opcode,
                 now - t->sent_ns);
    if (t->opcode < PROTO_MAX_OPCODE) {
        struct conn_opstat *s = &c->stats[t->opcode];
        uint64_t dt = now - t->sent_ns;
        if (error)
            s->errors++;
        s->bytes += t->inbytes + (error ? 0 : t->got);
        s->total_ns += dt;
        if (dt > s->max_ns)
            s->max_ns = dt;
        s->lat[conn_lat_bucket(dt)]++;
        if (error == -ENOSYS)
            c->enosys[t->opcode / 64] |= 1ull << (t->opcode % 64);
    }
    if (c->cont == t) {
        /* Ended before its last piece: whatever is still to come is junk. */
        c->discard += t->want - t->got;
        c->cont = NULL;
    }
    if (t->async || t->orphaned) {
        if (t->orphaned)
            c->orphans--;
        ticket_put(c, t);
        return;
    }
    t->error = error;
    t->state = T_DONE;
    if (t->done) {
        if (t->sending)
            return; /* conn_submit queues it once sendmsg has returned */
        t->hnext = c->done_list; /* invariant 7 */
        c->done_list = t;
        return;
    }
    if (t->following) {
        c->wakeups++;
        pthread_cond_signal(&t->cv);
    }
}

static void conn_mark_dead(struct conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    for (unsigned i = 0; i <= c->table_mask; i++)
        while (c->table[i])
            conn_complete(c, c->table[i], -ENOTCONN);
    /* Wake every sleeper: they see c->dead. */
    for (struct ticket *t = c->followers; t; t = t->fnext)
        pthread_cond_signal(&t->cv);
    pthread_cond_broadcast(&c->idle_cv);
}

/* ---- receiving ------------------------------------------------------- */

/*
 * Copy @len bytes starting @soff bytes into the datagram held by @src into
 * @t's out buffers at @t->got.  Lock held.  Returns 0, or -EIO when they do
 * not fit (the reply is larger than the request allows).
 */
static int conn_store(struct ticket *t, const struct iovec *src, int scnt,
                      size_t soff, size_t len)
{
    if (!t->out) /* orphaned: swallow */
        return 0;
    if (len > t->outcap - t->got)
        return -EIO;
    for (int i = 0; i < scnt && len; i++) {
        if (soff >= src[i].iov_len) {
            soff -= src[i].iov_len;
            continue;
        }
        size_t n = UFUSE_MIN(src[i].iov_len - soff, len);
        iov_copy_in(t->out, t->outcnt, t->got, (char *)src[i].iov_base + soff, n);
        t->got += n;
        len -= n;
        soff = 0;
    }
    return 0;
}

/* A notification arrived: validate, then hand it up to @fn (taken under
 * the lock; NULL until the session is set up) without the lock. */
static void conn_notification(struct conn *c, conn_notify_fn fn, void *ctx,
                              const struct fuse_out_header *oh,
                              const struct iovec *src, int scnt, size_t len)
{
    size_t blen = len - sizeof *oh;
    void *body = malloc(blen ? blen : 1);
    if (!body)
        return;
    iov_copy_out(body, src, scnt, sizeof *oh, blen);
    int rc = proto_notify_check(oh->error, body, blen);
    if (rc == 0 && fn)
        fn(ctx, oh->error, body, blen);
    else if (rc == 0)
        ulog_once(c->log, 9, "notification while the session is not set up ignored");
    else if (rc == -ENOSYS)
        ulog_once(c->log, 10, "ignoring unknown notification code %d", oh->error);
    else
        ulog_once(c->log, 11, "malformed notification (code %d, %zu bytes) ignored",
                  oh->error, blen);
    free(body);
}

/*
 * While a split reply is being reassembled, is this datagram the start of
 * another message (a reply to a request in flight, possibly itself split,
 * or a notification) rather than more of the split reply?  Continuation
 * bytes carry no header, so this is a plausibility test: the length must
 * cover the datagram, the unique must be in flight, the error in range,
 * and the claimed payload must fit what that request allows.
 */
static int conn_is_head(struct conn *c, const struct fuse_out_header *oh, size_t len)
{
    if (len < sizeof *oh || oh->len < len)
        return 0;
    if (oh->unique == 0)
        return oh->len == len && oh->error > 0 && oh->error < FUSE_NOTIFY_CODE_MAX;
    struct ticket *t = conn_find(c, oh->unique & ~PROTO_INT_REQ_BIT);
    if (!t)
        return 0;
    if (oh->unique & PROTO_INT_REQ_BIT)
        return oh->len == sizeof *oh && len == sizeof *oh && oh->error < 0;
    if (oh->len > len) /* the head of another split reply */
        return oh->error == 0 && oh->len - sizeof *oh <= t->outcap;
    return oh->error <= 0 && oh->error > -512;
}

/*
 * Handle one received datagram of @len bytes laid out over @src
 * (src[0] is the 16-byte header slot).  @direct: @me's out buffers were
 * src[1..] and hold the payload if the reply is @me's.  Lock held (dropped
 * around a notification's callback).
 */
static void conn_dispatch_locked(struct conn *c, struct ticket *me, int direct,
                                 const struct iovec *src, int scnt, size_t len,
                                 int truncated)
{
    const struct fuse_out_header *oh = src[0].iov_base;

    /* Leftovers of split replies that could not be reassembled. */
    if (c->discard && !conn_is_head(c, oh, len)) {
        c->discard -= UFUSE_MIN(c->discard, len);
        return;
    }
    /* The rest of a reply that arrived split over several datagrams. */
    if (c->cont && !conn_is_head(c, oh, len)) {
        struct ticket *t = c->cont;
        if (truncated || len > t->want - t->got) {
            ulog_once(c->log, 12, "%s reply continuation overruns its header length",
                      proto_opname(t->opcode));
            conn_reject(c, t);
        } else if (conn_store(t, src, scnt, 0, len) != 0) {
            conn_reject(c, t);
        } else if (t->got == t->want) {
            if (t->exact && t->out && t->got != t->outcap)
                conn_reject(c, t);
            else
                conn_complete(c, t, 0);
        }
        return;
    }
    if (len < sizeof *oh || oh->len < sizeof *oh) {
        ulog_once(c->log, 13, "dropping a %zu-byte datagram shorter than a reply header",
                  len);
        return;
    }
    if (oh->unique == 0) {
        conn_notify_fn fn = c->notify;
        void *ctx = c->notify_ctx;
        c->notifying++;
        pthread_mutex_unlock(&c->mu);
        if (oh->len != len || truncated)
            ulog_once(c->log, 11, "malformed notification (length %u, datagram %zu) ignored",
                      oh->len, len);
        else
            conn_notification(c, fn, ctx, oh, src, scnt, len);
        pthread_mutex_lock(&c->mu);
        if (--c->notifying == 0)
            pthread_cond_broadcast(&c->notify_cv);
        return;
    }
    struct ticket *t = conn_find(c, oh->unique & ~PROTO_INT_REQ_BIT);
    if (!t) {
        ulog_once(c->log, 14, "dropping a reply for unknown request %llu",
                  (unsigned long long)oh->unique);
        return;
    }
    const char *op = proto_opname(t->opcode);
    if (t->orphaned && !(oh->unique & PROTO_INT_REQ_BIT)) {
        /* The late answer to a request its caller gave up on. */
        if (oh->len > len)
            c->discard += oh->len - len;
        conn_complete(c, t, 0);
        return;
    }
    if (oh->unique & PROTO_INT_REQ_BIT) {
        /* Only errors answer an INTERRUPT. */
        if (oh->error == -ENOSYS) {
            c->no_interrupt = 1;
            if (t->int_timeout)
                t->deadline_ns = 1; /* expired: its waiter gives up now */
        } else if (oh->error == -EAGAIN) {
            t->int_again = 1;
        }
        if (t->following)
            pthread_cond_signal(&t->cv);
        return;
    }
    if (t == c->cont) {
        /* A new reply while its split one is being put together: the
         * server started its answer over, so the rest of the first is
         * not coming.  Neither is to be trusted (their pieces would add
         * up to more than either); the new one's rest, if it is split
         * too, is dropped. */
        ulog_once(c->log, 23, "%s reply started over before its split one ended", op);
        c->cont = NULL;
        if (oh->len > len)
            c->discard += oh->len - len;
        conn_reject(c, t);
        return;
    }
    int32_t err;
    int bad = 1; /* cleared where the reply is well-formed */
    size_t plen = len - sizeof *oh;
    if (oh->error > 0 || oh->error < -511) {
        ulog_once(c->log, 15, "%s reply with invalid error %d", op, oh->error);
        err = -EIO;
    } else if (oh->error != 0) {
        err = oh->error;
        bad = 0;
        if (oh->len != sizeof *oh || len != sizeof *oh) {
            bad = 1;
            ulog_once(c->log, 16, "%s error reply carrying a payload", op);
            err = -EIO;
        }
    } else if (truncated) {
        ulog_once(c->log, 17, "%s reply larger than any reply can be", op);
        err = -EIO;
    } else if (oh->len < len) {
        ulog_once(c->log, 18, "%s reply shorter (%u) than its datagram (%zu)", op,
                  oh->len, len);
        err = -EIO;
    } else if (oh->len - sizeof *oh > t->outcap) {
        ulog_once(c->log, 19, "%s reply payload %zu exceeds the %zu asked for", op,
                  (size_t)(oh->len - sizeof *oh), t->outcap);
        err = -EIO;
    } else {
        /* Payload fits.  Direct receive already stored it for me. */
        if (t == me && direct)
            t->got = plen;
        else
            conn_store(t, src, scnt, sizeof *oh, plen);
        if (oh->len > len) {
            /* Split by a splicing server: the rest follows (design.md). */
            t->want = oh->len - sizeof *oh;
            if (c->cont || c->discard) {
                /*
                 * Two split replies interleave (two server threads
                 * splicing at once): their pieces carry no header, so
                 * neither can be put together.  Fail both, and drop the
                 * bytes still to come for them.
                 */
                ulog_once(c->log, 20, "split replies interleaved; failing them with EIO");
                c->discard += t->want - t->got;
                if (c->cont) /* conn_complete counts what it still owed */
                    conn_reject(c, c->cont);
                conn_reject(c, t);
                return;
            }
            c->cont = t;
            c->split_replies++;
            return;
        }
        err = t->exact && t->out && plen != t->outcap ? -EIO : 0;
        bad = err != 0;
        if (err)
            ulog_once(c->log, 21, "%s reply of %zu bytes, expected %zu", op, plen,
                      t->outcap);
    }
    t->bad_reply = bad;
    t->replied = 1;
    conn_complete(c, t, err);
}

/* A request of @g ended (its callback returned): count it, wake @g's
 * waiters.  Lock held. */
static void conn_group_end_one(struct conn *c, struct conn_group *g)
{
    g->pending--;
    g->ended++;
    if (!g->waiters)
        return;
    for (struct ticket *w = c->followers; w; w = w->fnext)
        if (w->awaits == g) {
            c->wakeups++;
            pthread_cond_signal(&w->cv);
        }
}

/* Run the callbacks of the background requests that ended (invariant 7).
 * Lock held; dropped while they run. */
static void conn_run_done(struct conn *c)
{
    while (c->done_list) {
        struct ticket *list = c->done_list;
        c->done_list = NULL;
        pthread_mutex_unlock(&c->mu);
        for (struct ticket *t = list; t; t = t->hnext)
            t->done(t->done_ctx, t->error, t->got);
        pthread_mutex_lock(&c->mu);
        while (list) {
            struct ticket *t = list;
            list = t->hnext;
            conn_group_end_one(c, t->group);
            ticket_put(c, t);
        }
    }
}

/* conn_dispatch_locked, then the callbacks it made due.  Lock NOT held. */
static void conn_dispatch(struct conn *c, struct ticket *me, int direct,
                          const struct iovec *src, int scnt, size_t len, int truncated)
{
    pthread_mutex_lock(&c->mu);
    conn_dispatch_locked(c, me, direct, src, scnt, len, truncated);
    conn_run_done(c);
    pthread_mutex_unlock(&c->mu);
}

/*
 * Adaptive polling (leader only, lock not held): while requests are in
 * flight, poll the socket for up to spin_ns before sleeping in chan_recv.
 * On these 2-vCPU VMs waking a sleeping thread costs 47-120 us, more than
 * a small request's whole round trip: a reply polled for is taken without
 * that wake-up (docs/architecture.md has the figures).  A server slower
 * than the window makes every poll miss: CONN_SPIN_MISSES misses in a row
 * stop the polling for the next CONN_SPIN_REST waits, so such a server
 * costs at most that many windows per that many waits, and an idle
 * session never polls (no request in flight).
 */
#define CONN_SPIN_MISSES 8
#define CONN_SPIN_REST 64
static ssize_t conn_poll_reply(struct conn *c, struct iovec *iov, int n, int *truncated)
{
    if (!c->spin_ns)
        return -EAGAIN;
    if (c->spin_rest) {
        c->spin_rest--;
        return -EAGAIN;
    }
    ssize_t len = chan_recv_spin(&c->ch, iov, n, c->spin_ns, truncated);
    if (len > 0) {
        c->spin_misses = 0;
        atomic_fetch_add_explicit(&c->polled, 1, memory_order_relaxed);
        return len;
    }
    atomic_fetch_add_explicit(&c->poll_misses, 1, memory_order_relaxed);
    if (++c->spin_misses >= CONN_SPIN_MISSES) {
        c->spin_misses = 0;
        c->spin_rest = CONN_SPIN_REST;
    }
    return -EAGAIN;
}

/*
 * As leader: receive one datagram and dispatch it.  @me is the caller's
 * ticket (NULL for the watcher).  Returns 0, -EAGAIN (timeout or kicked),
 * or -ENOTCONN (the server is gone; the caller marks the conn dead).
 */
static int conn_receive_one(struct conn *c, struct ticket *me, int timeout_ms,
                            int wake_fd)
{
    struct fuse_out_header oh;
    struct iovec iov[2 + 8];
    int n = 0;
    iov[n++] = (struct iovec){&oh, sizeof oh};
    /* Receive my own reply in place when nothing else is half-received. */
    pthread_mutex_lock(&c->mu);
    int direct = me && !c->cont && !c->discard && me->out && me->outcnt <= 8 &&
                 me->got == 0;
    int answers_due = c->inflight > c->orphans;
    pthread_mutex_unlock(&c->mu);
    if (direct)
        for (int i = 0; i < me->outcnt; i++)
            iov[n++] = me->out[i];
    iov[n++] = (struct iovec){c->scratch, c->scratch_cap};
    int truncated;
    ssize_t len = -EAGAIN;
    if (answers_due && timeout_ms != 0)
        len = conn_poll_reply(c, iov, n, &truncated);
    if (len == -EAGAIN)
        len = chan_recv(&c->ch, iov, n, timeout_ms, wake_fd, &truncated);
    if (len == 0)
        return -ENOTCONN;
    if (len < 0)
        return len == -EAGAIN ? -EAGAIN : -ENOTCONN;
    conn_dispatch(c, me, direct, iov, n, (size_t)len, truncated);
    return 0;
}

/* ---- waiting ---------------------------------------------------------- */

static int conn_ms_until(uint64_t deadline)
{
    uint64_t now = ufuse_now_ns();
    if (deadline <= now)
        return 0;
    uint64_t ms = (deadline - now + 999999) / 1000000;
    return ms > 60000 ? 60000 : (int)ms;
}

/* Send FUSE_INTERRUPT for request @unique (its unique with bit 0 set, as
 * the kernel does).  Lock NOT held. */
static int conn_send_interrupt_for(struct conn *c, uint64_t unique)
{
    struct fuse_in_header ih = {
        .len = sizeof ih + sizeof(struct fuse_interrupt_in),
        .opcode = FUSE_INTERRUPT,
        .unique = unique | PROTO_INT_REQ_BIT,
    };
    struct fuse_interrupt_in ii = {.unique = unique};
    struct iovec iov[2] = {{&ih, sizeof ih}, {&ii, sizeof ii}};
    return chan_send(&c->ch, iov, 2);
}

/* Lock held (dropped around the send). */
static void conn_send_interrupt(struct conn *c, struct ticket *t)
{
    uint64_t unique = t->unique;
    pthread_mutex_unlock(&c->mu);
    int rc = conn_send_interrupt_for(c, unique);
    pthread_mutex_lock(&c->mu);
    if (rc == -ENOTCONN)
        conn_mark_dead(c);
}

/*
 * @t's deadline passed.  First time: send an INTERRUPT and allow a grace
 * period.  After that: give up, leaving the ticket orphaned in the table.
 * Returns 1 when the caller must stop waiting (*@res set).  Lock held.
 */
static int conn_expire(struct conn *c, struct ticket *t, int *res)
{
    if (!t->int_sent && !c->no_interrupt) {
        t->int_sent = 1;
        t->int_timeout = 1;
        t->deadline_ns = ufuse_now_ns() + INTERRUPT_GRACE_NS;
        conn_send_interrupt(c, t);
        return 0;
    }
    ulog_once(c->log, 22, "%s timed out; the server did not answer",
              proto_opname(t->opcode));
    t->orphaned = 1;
    c->orphans++;
    t->out = NULL;
    t->outcnt = 0;
    t->outcap = 0;
    *res = -ETIMEDOUT;
    return 1;
}

/*
 * One step of a wait (lock held, dropped inside): receive one datagram as
 * the leader if nobody is (@mine: a ticket whose reply may land in place,
 * or NULL), else sleep as a follower on @tok's condition until signalled
 * or @deadline_ns (0: none).  The caller then looks at its condition.
 */
static void conn_lead_or_follow(struct conn *c, struct ticket *tok, struct ticket *mine,
                                uint64_t deadline_ns)
{
    if (!c->leader) {
        c->leader = 1;
        pthread_mutex_unlock(&c->mu);
        int rc = conn_receive_one(c, mine, deadline_ns ? conn_ms_until(deadline_ns) : -1, -1);
        pthread_mutex_lock(&c->mu);
        c->leader = 0;
        if (rc == -ENOTCONN)
            conn_mark_dead(c);
        return;
    }
    conn_follow(c, tok);
    if (deadline_ns) {
        struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000u),
                              .tv_nsec = (long)(deadline_ns % 1000000000u)};
        pthread_cond_timedwait(&tok->cv, &c->mu, &ts);
    } else {
        pthread_cond_wait(&tok->cv, &c->mu);
    }
    conn_unfollow(c, tok);
}

/* Wait until @t is answered, taking the receiver role when free.  Lock
 * held.  Returns the result; @t is then the caller's to recycle unless it
 * was orphaned (then the table owns it). */
static int conn_wait(struct conn *c, struct ticket *t)
{
    int res = 0;
    c->waiters++;
    for (;;) {
        if (t->state == T_DONE) {
            res = t->error;
            if (res == -EINTR && t->int_timeout) {
                res = -ETIMEDOUT; /* our timeout, which the server took */
                t->replied = 0;
            }
            break;
        }
        if (c->dead) { /* cannot happen with t still waiting, but be safe */
            conn_complete(c, t, -ENOTCONN);
            continue;
        }
        if (t->int_again) {
            t->int_again = 0;
            pthread_mutex_unlock(&c->mu);
            usleep(1000);
            pthread_mutex_lock(&c->mu);
            if (t->state != T_DONE && !c->dead)
                conn_send_interrupt(c, t);
            continue;
        }
        if (t->deadline_ns && ufuse_now_ns() >= t->deadline_ns) {
            if (conn_expire(c, t, &res))
                break;
            continue;
        }
        conn_lead_or_follow(c, t, t, t->deadline_ns);
    }
    c->waiters--;
    conn_handoff(c);
    return res;
}

/* ---- sending ----------------------------------------------------------- */

static void conn_fill_header(struct conn *c, struct fuse_in_header *ih,
                             uint32_t opcode, uint64_t nodeid, uint64_t unique,
                             size_t inlen)
{
    memset(ih, 0, sizeof *ih);
    ih->len = (uint32_t)(sizeof *ih + inlen);
    ih->opcode = opcode;
    ih->unique = unique;
    ih->nodeid = nodeid;
    if (conn_caller.c == c) {
        ih->uid = conn_caller.uid;
        ih->gid = conn_caller.gid;
        ih->pid = conn_caller.pid;
    } else {
        ih->uid = c->uid;
        ih->gid = c->gid;
        ih->pid = c->pid;
    }
}

/*
 * Send one request.  With @t: @t goes in the table first (its reply may
 * come back before sendmsg returns) and takes the next unique; without:
 * a request that has no reply, with @unique or a fresh one.  Lock NOT
 * held.  0 (also when the server died meanwhile: @t was ended with
 * -ENOTCONN like every ticket in the table), or -errno (then @t is out of
 * the table again and the caller still owns it).
 */
static int conn_transmit(struct conn *c, struct ticket *t, uint32_t opcode, uint64_t nodeid,
                         uint64_t unique, const struct iovec *in, int incnt)
{
    struct fuse_in_header ih;
    struct iovec iov[1 + 8];
    if (incnt > 8)
        return -EINVAL;
    size_t inlen = iov_total(in, incnt);
    if (sizeof ih + inlen > c->p.max_request)
        return -E2BIG;
    pthread_mutex_lock(&c->mu);
    if (c->dead) {
        pthread_mutex_unlock(&c->mu);
        return -ENOTCONN;
    }
    if (t) {
        conn_insert(c, t);
        unique = t->unique;
        c->activity++;
        t->sent_ns = ufuse_now_ns();
        if (c->timeout_ns)
            t->deadline_ns = t->sent_ns + c->timeout_ns;
        t->inbytes = inlen;
    } else {
        if (!unique) {
            c->next_unique += 2;
            unique = c->next_unique;
        }
        if (opcode < PROTO_MAX_OPCODE)
            c->stats[opcode].bytes += inlen;
    }
    if (opcode < PROTO_MAX_OPCODE)
        c->stats[opcode].count++;
    conn_fill_header(c, &ih, opcode, nodeid, unique, inlen);
    pthread_mutex_unlock(&c->mu);
    UFUSE_PROBE4(request_send, unique, opcode, nodeid, inlen);

    iov[0] = (struct iovec){&ih, sizeof ih};
    memcpy(iov + 1, in, sizeof *in * (size_t)incnt);
    int rc = chan_send(&c->ch, iov, 1 + incnt);
    if (rc != 0) {
        pthread_mutex_lock(&c->mu);
        if (rc == -ENOTCONN)
            conn_mark_dead(c);
        /* Ended with the rest when the server died (an async one is
         * freed already): its end reports it. */
        if (t && !conn_remove(c, t))
            rc = 0;
        pthread_mutex_unlock(&c->mu);
    }
    return rc;
}

int conn_enosys(struct conn *c, uint32_t opcode)
{
    if (opcode >= PROTO_MAX_OPCODE)
        return 0;
    pthread_mutex_lock(&c->mu);
    int r = !!(c->enosys[opcode / 64] & (1ull << (opcode % 64)));
    pthread_mutex_unlock(&c->mu);
    return r;
}

int conn_dead(struct conn *c)
{
    pthread_mutex_lock(&c->mu);
    int d = c->dead;
    pthread_mutex_unlock(&c->mu);
    return d;
}

unsigned conn_unanswered(struct conn *c)
{
    pthread_mutex_lock(&c->mu);
    unsigned n = c->inflight;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/*
 * A ticket for @r, its out buffers set, counted in @g when given: 0 and
 * *@out, or -EINVAL, -ENOSYS (answered so before: not sent again),
 * -ENOMEM.
 */
static int conn_prepare(struct conn *c, const struct conn_req *r, struct conn_group *g,
                        struct ticket **out)
{
    size_t outcap = iov_total(r->out, r->outcnt);
    if (r->outcnt > 8 || outcap > c->scratch_cap)
        return -EINVAL;
    pthread_mutex_lock(&c->mu);
    int enosys = r->opcode < PROTO_MAX_OPCODE &&
                 (c->enosys[r->opcode / 64] & (1ull << (r->opcode % 64)));
    struct ticket *t = enosys ? NULL : ticket_get(c);
    if (t && g)
        g->pending++;
    pthread_mutex_unlock(&c->mu);
    if (enosys)
        return -ENOSYS;
    if (!t)
        return -ENOMEM;
    /* A ticket with no out buffers still needs a non-NULL marker so that
     * an empty reply is "stored". */
    static const struct iovec none = {NULL, 0};
    t->opcode = r->opcode;
    t->owner = pthread_self();
    t->out = r->outcnt ? r->out : &none;
    t->outcnt = r->outcnt ? r->outcnt : 1;
    t->outcap = outcap;
    t->exact = r->out_exact;
    t->group = g;
    *out = t;
    return 0;
}

int conn_call(struct conn *c, struct conn_req *r)
{
    r->outlen = 0;
    r->replied = 0;
    struct ticket *t;
    int rc = conn_prepare(c, r, NULL, &t);
    if (rc)
        return rc;
    rc = conn_transmit(c, t, t->opcode, r->nodeid, 0, r->in, r->incnt);
    int bad = 0;
    pthread_mutex_lock(&c->mu);
    if (rc == 0) {
        rc = conn_wait(c, t);
        if (!t->orphaned) {
            r->outlen = t->got;
            bad = t->bad_reply;
            r->replied = t->replied;
            ticket_put(c, t);
        }
    } else {
        ticket_put(c, t);
    }
    pthread_mutex_unlock(&c->mu);
    if (rc)
        conn_note_failure(c, r->opcode, rc, bad);
    return rc;
}

int conn_call_async(struct conn *c, uint32_t opcode, uint64_t nodeid,
                    const struct iovec *in, int incnt)
{
    pthread_mutex_lock(&c->mu);
    struct ticket *t = ticket_get(c);
    pthread_mutex_unlock(&c->mu);
    if (!t)
        return -ENOMEM;
    t->opcode = opcode;
    t->async = 1;
    int rc = conn_transmit(c, t, opcode, nodeid, 0, in, incnt);
    if (rc != 0) {
        pthread_mutex_lock(&c->mu);
        ticket_put(c, t);
        pthread_mutex_unlock(&c->mu);
    }
    return rc;
}

int conn_submit(struct conn *c, struct conn_req *r, struct conn_group *g, conn_done_fn done,
                void *ctx)
{
    struct ticket *t;
    int rc = conn_prepare(c, r, g, &t);
    if (rc)
        return rc;
    t->done = done;
    t->done_ctx = ctx;
    t->sending = 1;
    rc = conn_transmit(c, t, t->opcode, r->nodeid, 0, r->in, r->incnt);
    pthread_mutex_lock(&c->mu);
    t->sending = 0;
    if (rc != 0) {
        /* Never sent, never ended: still ours. */
        g->pending--;
        ticket_put(c, t);
    } else if (t->state == T_DONE) {
        /* It ended before sendmsg returned: its callback runs only now,
         * so the request's bytes stay the sender's until then. */
        t->hnext = c->done_list;
        c->done_list = t;
        conn_run_done(c);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/*
 * Time the requests of @g out that are past their deadline (lock held,
 * dropped around sends and callbacks): an INTERRUPT first, then, after
 * the grace period, the callback with -ETIMEDOUT; the ticket stays in the
 * table, orphaned, for its late reply.  Returns the nearest deadline
 * still ahead (0: none).
 */
static uint64_t conn_group_expire(struct conn *c, struct conn_group *g)
{
    for (;;) {
        uint64_t now = ufuse_now_ns(), next = 0;
        struct ticket *due = NULL;
        for (unsigned i = 0; i <= c->table_mask && !due; i++)
            for (struct ticket *t = c->table[i]; t && !due; t = t->hnext) {
                if (t->group != g || !t->deadline_ns || t->orphaned)
                    continue;
                if (now >= t->deadline_ns)
                    due = t;
                else if (!next || t->deadline_ns < next)
                    next = t->deadline_ns;
            }
        if (!due)
            return next;
        if (!due->int_sent && !c->no_interrupt) {
            due->int_sent = 1;
            due->int_timeout = 1;
            due->deadline_ns = now + INTERRUPT_GRACE_NS;
            conn_send_interrupt(c, due);
            continue;
        }
        ulog_once(c->log, 22, "%s timed out; the server did not answer",
                  proto_opname(due->opcode));
        conn_done_fn done = due->done;
        void *ctx = due->done_ctx;
        due->orphaned = 1;
        c->orphans++;
        due->done = NULL;
        due->group = NULL;
        due->out = NULL;
        due->outcnt = 0;
        due->outcap = 0;
        pthread_mutex_unlock(&c->mu);
        done(ctx, -ETIMEDOUT, 0);
        pthread_mutex_lock(&c->mu);
        conn_group_end_one(c, g);
    }
}

/* conn_group_wait and conn_group_wait_end: until @g has at most @max
 * pending, or (@end_seen) one ended after @seen, or (@until_ns) that time
 * has come.  Returns 0, or -ETIMEDOUT for the last. */
static int conn_group_await(struct conn *c, struct conn_group *g, unsigned max,
                            int end_seen, uint64_t seen, uint64_t until_ns)
{
    int res = 0;
    pthread_mutex_lock(&c->mu);
    struct ticket *me = ticket_get(c);
    while (!me) { /* a follower token; memory will come back */
        pthread_mutex_unlock(&c->mu);
        usleep(1000);
        pthread_mutex_lock(&c->mu);
        me = ticket_get(c);
    }
    me->awaits = g;
    g->waiters++;
    c->waiters++;
    for (;;) {
        uint64_t next = c->timeout_ns ? conn_group_expire(c, g) : 0;
        conn_run_done(c);
        if (g->pending <= max || (end_seen && g->ended != seen))
            break;
        if (until_ns && ufuse_now_ns() >= until_ns) {
            res = -ETIMEDOUT;
            break;
        }
        if (until_ns && (!next || until_ns < next))
            next = until_ns;
        conn_lead_or_follow(c, me, NULL, next);
    }
    me->awaits = NULL;
    g->waiters--;
    c->waiters--;
    ticket_put(c, me);
    conn_handoff(c);
    pthread_mutex_unlock(&c->mu);
    return res;
}

void conn_group_wait(struct conn *c, struct conn_group *g, unsigned max)
{
    conn_group_await(c, g, max, 0, 0, 0);
}

uint64_t conn_group_ended(struct conn *c, struct conn_group *g)
{
    pthread_mutex_lock(&c->mu);
    uint64_t n = g->ended;
    pthread_mutex_unlock(&c->mu);
    return n;
}

int conn_group_wait_end(struct conn *c, struct conn_group *g, uint64_t seen, uint64_t until_ns)
{
    return conn_group_await(c, g, 0, 1, seen, until_ns);
}

int conn_send_noreply(struct conn *c, uint32_t opcode, uint64_t nodeid,
                      uint64_t unique, const struct iovec *in, int incnt)
{
    return conn_transmit(c, NULL, opcode, nodeid, unique, in, incnt);
}

int conn_interrupt(struct conn *c, pthread_t thread)
{
    uint64_t uniq[16];
    int n = 0;
    pthread_mutex_lock(&c->mu);
    if (c->no_interrupt || c->dead) {
        int rc = c->dead ? -ENOTCONN : -ENOSYS;
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    for (unsigned i = 0; i <= c->table_mask && n < 16; i++)
        for (struct ticket *t = c->table[i]; t && n < 16; t = t->hnext)
            if (!t->async && !t->done && !t->orphaned && !t->int_sent &&
                pthread_equal(t->owner, thread)) {
                t->int_sent = 1;
                uniq[n++] = t->unique;
            }
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < n; i++) {
        if (conn_send_interrupt_for(c, uniq[i]) == -ENOTCONN) {
            pthread_mutex_lock(&c->mu);
            conn_mark_dead(c);
            pthread_mutex_unlock(&c->mu);
            return -ENOTCONN;
        }
    }
    return n;
}

/* ---- the watcher ------------------------------------------------------- */

static void *conn_watcher(void *arg)
{
    struct conn *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping && !c->dead) {
        uint64_t seen = c->activity;
        uint64_t until = ufuse_now_ns() + WATCH_QUIET_NS;
        struct timespec ts = {.tv_sec = (time_t)(until / 1000000000u),
                              .tv_nsec = (long)(until % 1000000000u)};
        pthread_cond_timedwait(&c->idle_cv, &c->mu, &ts);
        if (c->stopping || c->dead)
            break;
        if (seen != c->activity || c->leader || c->waiters)
            continue;
        /* Quiet: receive on behalf of nobody, until something arrives
         * or we are kicked. */
        c->leader = 1;
        pthread_mutex_unlock(&c->mu);
        int rc = conn_receive_one(c, NULL, -1, c->wake_fd);
        pthread_mutex_lock(&c->mu);
        c->leader = 0;
        if (rc == -ENOTCONN)
            conn_mark_dead(c);
        conn_handoff(c);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void conn_stop_watcher(struct conn *c)
{
    if (!c->watcher_running)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_broadcast(&c->idle_cv);
    pthread_mutex_unlock(&c->mu);
    uint64_t one = 1;
    ssize_t w = write(c->wake_fd, &one, sizeof one);
    (void)w;
    pthread_join(c->watcher, NULL);
    c->watcher_running = 0;
}

/* ---- INIT ------------------------------------------------------------- */

static int conn_init_handshake(struct conn *c, const struct conn_wants *w)
{
    struct fuse_init_in in = {
        .major = PROTO_MAJOR,
        .minor = PROTO_MINOR,
        .max_readahead = w->max_readahead,
        .flags = (uint32_t)w->flags,
        .flags2 = (uint32_t)(w->flags >> 32),
    };
    struct fuse_init_out out;
    memset(&out, 0, sizeof out);
    struct iovec iv = {&in, sizeof in}, ov = {&out, sizeof out};
    struct conn_req r = {.opcode = FUSE_INIT, .nodeid = 0, .in = &iv, .incnt = 1,
                         .out = &ov, .outcnt = 1};
    int rc = conn_call(c, &r);
    /* Death and our timeout are said as such; any answer but a good one
     * (a server's own ENOTCONN or ETIMEDOUT too) is a failed INIT. */
    if (!r.replied && (rc == -ENOTCONN || rc == -ETIMEDOUT))
        return rc;
    if (rc != 0) {
        ulog_msg(c->log, "INIT failed: %s", strerror(-rc));
        return -EPROTO;
    }
    /* The reply's size follows the minor the server claims (libfuse's rule). */
    size_t want = out.minor < 5    ? FUSE_COMPAT_INIT_OUT_SIZE
                  : out.minor < 23 ? FUSE_COMPAT_22_INIT_OUT_SIZE
                                   : sizeof out;
    if (out.major != PROTO_MAJOR || out.minor < PROTO_MIN_MINOR || r.outlen != want) {
        ulog_msg(c->log, "INIT: server answered protocol %u.%u in %zu bytes; need 7.%u+ "
                 "in the size that minor defines", out.major, out.minor, r.outlen,
                 PROTO_MIN_MINOR);
        return -EPROTO;
    }
    struct conn_params *p = &c->p;
    p->major = out.major;
    p->minor = UFUSE_MIN(out.minor, (uint32_t)PROTO_MINOR);
    uint64_t granted = out.flags;
    if (granted & FUSE_INIT_EXT)
        granted |= (uint64_t)out.flags2 << 32;
    p->flags = granted & w->flags;
    p->max_readahead = UFUSE_MIN(out.max_readahead, w->max_readahead);
    p->max_pages = (p->flags & FUSE_MAX_PAGES) && out.max_pages
                       ? UFUSE_MIN(out.max_pages, (uint32_t)PROTO_MAX_PAGES)
                       : PROTO_DEFAULT_MAX_PAGES;
    uint32_t page_cap = p->max_pages * 4096u;
    uint32_t mw = p->minor < 5 ? 4096 : UFUSE_MAX(out.max_write, 4096u);
    p->max_write = UFUSE_MIN(UFUSE_MIN(mw, w->max_write), page_cap);
    /* libfuse reads requests into a buffer of max_write + 4096 after INIT. */
    p->max_request = (uint32_t)UFUSE_MIN((size_t)mw + 4096, c->ch.max_send);
    if (p->max_write + 4096u > p->max_request)
        p->max_write = UFUSE_MAX(p->max_request - 4096u, 4096u);
    uint32_t mr = UFUSE_MIN(w->max_read, page_cap);
    if (c->ch.max_recv < (size_t)mr + 4096)
        mr = (uint32_t)(c->ch.max_recv - 4096);
    p->max_read = UFUSE_MAX(mr & ~4095u, 4096u);
    p->time_gran = p->minor >= 23 && out.time_gran ? out.time_gran : 1;
    return 0;
}

int conn_start(struct conn *c, const struct chan *ch, struct ulog *log,
               const struct conn_wants *w)
{
    memset(c, 0, sizeof *c);
    c->ch = *ch;
    c->log = log;
    c->timeout_ns = w->timeout_ns;
    c->spin_ns = w->spin_ns;
    c->uid = (uint32_t)geteuid();
    c->gid = (uint32_t)getegid();
    c->pid = (uint32_t)getpid();
    c->wake_fd = -1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&c->idle_cv, &a);
    pthread_condattr_destroy(&a);
    pthread_cond_init(&c->notify_cv, NULL);
    c->table_mask = 255;
    c->table = calloc(c->table_mask + 1, sizeof(struct ticket *));
    /* Before INIT we know no limits: allow the largest READ we may ask. */
    c->scratch_cap = UFUSE_MAX((size_t)w->max_read, (size_t)CONN_MAX_META_REPLY) + 4096;
    c->scratch = malloc(c->scratch_cap);
    c->p.max_request = (uint32_t)c->ch.max_send;
    c->p.minor = PROTO_MINOR;
    c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!c->table || !c->scratch || c->wake_fd < 0)
        return -ENOMEM;
    int rc = conn_init_handshake(c, w);
    if (rc != 0)
        return rc;
    if (pthread_create(&c->watcher, NULL, conn_watcher, c) == 0)
        c->watcher_running = 1;
    return 0;
}

void conn_set_notify(struct conn *c, conn_notify_fn fn, void *ctx)
{
    pthread_mutex_lock(&c->mu);
    c->notify = fn;
    c->notify_ctx = ctx;
    /* Callbacks already under way on other threads end first (they never
     * wait for a reply, so this wait is short). */
    while (c->notifying)
        pthread_cond_wait(&c->notify_cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

void conn_drain(struct conn *c, int timeout_ms)
{
    conn_stop_watcher(c);
    uint64_t deadline = ufuse_now_ns() + (uint64_t)timeout_ms * 1000000u;
    pthread_mutex_lock(&c->mu);
    /* Wait for async requests (RELEASE) only: a request orphaned by a
     * timeout may never be answered. */
    while (c->inflight > c->orphans && !c->dead && ufuse_now_ns() < deadline) {
        if (c->leader) {
            pthread_mutex_unlock(&c->mu);
            usleep(1000);
            pthread_mutex_lock(&c->mu);
            continue;
        }
        c->leader = 1;
        pthread_mutex_unlock(&c->mu);
        int rc = conn_receive_one(c, NULL, conn_ms_until(deadline), -1);
        pthread_mutex_lock(&c->mu);
        c->leader = 0;
        if (rc == -ENOTCONN)
            conn_mark_dead(c);
    }
    conn_run_done(c); /* those that ended with the server's death */
    pthread_mutex_unlock(&c->mu);
}

void conn_destroy(struct conn *c)
{
    conn_stop_watcher(c);
    pthread_mutex_lock(&c->mu);
    if (c->table) {
        for (unsigned i = 0; i <= c->table_mask; i++) {
            while (c->table[i]) {
                struct ticket *t = c->table[i];
                conn_remove(c, t);
                /* Only async or orphaned tickets can be left at teardown. */
                pthread_cond_destroy(&t->cv);
                free(t);
            }
        }
    }
    while (c->done_list) { /* ended, callbacks never to run */
        struct ticket *t = c->done_list;
        c->done_list = t->hnext;
        pthread_cond_destroy(&t->cv);
        free(t);
    }
    while (c->free_tickets) {
        struct ticket *t = c->free_tickets;
        c->free_tickets = t->hnext;
        pthread_cond_destroy(&t->cv);
        free(t);
    }
    pthread_mutex_unlock(&c->mu);
    free(c->table);
    free(c->scratch);
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    pthread_cond_destroy(&c->idle_cv);
    pthread_cond_destroy(&c->notify_cv);
    pthread_mutex_destroy(&c->mu);
}

void conn_get_stats(struct conn *c, struct conn_opstat out[PROTO_MAX_OPCODE],
                    struct conn_counts *counts)
{
    pthread_mutex_lock(&c->mu);
    memcpy(out, c->stats, sizeof c->stats);
    if (counts)
        *counts = (struct conn_counts){
            .wakeups = c->wakeups,
            .polled = atomic_load_explicit(&c->polled, memory_order_relaxed),
            .poll_misses = atomic_load_explicit(&c->poll_misses, memory_order_relaxed)};
    pthread_mutex_unlock(&c->mu);
}
