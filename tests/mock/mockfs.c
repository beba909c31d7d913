/*
 * mockfs.c - the scripted FUSE server of the mock-scenario tests.
 *
 * One thread per mock serves the server end of a SEQPACKET socketpair: it
 * receives a request, logs it, answers INIT from the config, and matches
 * every other request against the script (a list of expectations, "exps").
 * The test thread writes the script, sends things on demand (notifications,
 * late replies, death) and reads the log and the verdict.  See mockfs.h for
 * the model.
 *
 * Locks:
 *   m->lock      the script (exp list, counts, last matched request), the
 *                log, the problem text, the allow table, INIT results and
 *                the state flags; m->cond is signalled on every change the
 *                waiters look at (log growth, exp acted, thread end).
 *   m->send_lock serialises datagrams written to the socket, so that the
 *                pieces of a split reply go out back to back.
 *   Order: m->lock is never held while taking m->send_lock or sending.
 *
 * Invariants:
 *   1. An exp's counts satisfy acted <= matched <= times; an exp is
 *      "pending" while matched < times.  Only pending exps match.
 *   2. Candidates for a request are the first pending exp when it is
 *      ordered (set 0), or every pending exp of the first pending exp's
 *      unordered set.  Sets are contiguous in the list.
 *   3. Log entries are never freed or moved before mock_free(): pointers to
 *      them (exp->last, mock_req.body given out) stay valid.
 *   4. The server fd (m->sfd) is closed only by mock_free() after the join;
 *      death is shutdown(2), so the thread and the test can both use it.
 *   5. Actions of an exp are appended only by the test thread, before the
 *      request that matches it can arrive; the mock thread reads the list
 *      after taking m->lock at match time.
 */
#include "mock/mockfs.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define ALLOW_SLOTS 64

enum act_kind {
    ACT_REPLY,     /* header + data, error */
    ACT_ENTRY,     /* data = fuse_entry_out, sized by minor at send time */
    ACT_ATTR,      /* data = fuse_attr_out, sized by minor */
    ACT_CREATE,    /* data = entry_out + open_out */
    ACT_STATFS,    /* data = fuse_statfs_out, sized by minor */
    ACT_RAW,
    ACT_SPLIT,
    ACT_REPLY_TO,
    ACT_DELAY,
    ACT_DIE,
    ACT_NOTIFY,
    ACT_CALL,
    ACT_NOP,
};

struct act {
    enum act_kind kind;
    int error;                 /* REPLY*, SPLIT; NOTIFY: the code */
    unsigned char *data;
    size_t len;
    unsigned fill;             /* RAW */
    size_t *sizes;             /* SPLIT */
    size_t nsizes;
    struct mock_exp *target;   /* REPLY_TO */
    unsigned ms;               /* DELAY */
    mock_action_fn fn;         /* CALL */
    void *arg;
    struct act *next;
};

enum match_kind { M_FIELD, M_NAME, M_DATA, M_BODYLEN, M_INTR, M_CUSTOM };

struct matcher {
    enum match_kind kind;
    size_t off, width;
    uint64_t value;
    int which;
    char *name;
    unsigned char *data;
    size_t len;
    struct mock_exp *target;
    mock_match_fn fn;
    void *arg;
    const char *what;
    struct matcher *next;
};

struct mock_exp {
    struct mock *m;
    size_t id;                 /* position in the script, from 1 */
    uint32_t opcode;
    uint64_t nodeid;
    unsigned set;              /* 0: ordered; else the unordered set */
    unsigned times, matched, acted;
    struct matcher *mhead, **mtail;
    struct act *ahead, **atail;
    const struct mock_req *last;
    struct mock_exp *next;
};

struct mock {
    int sfd, cfd;
    bool cfd_taken;
    pthread_t thr;
    bool running;              /* the thread has not ended */
    bool dead;                 /* the server end was shut down */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_mutex_t send_lock;

    struct mock_init_cfg cfg;
    bool init_done;
    struct fuse_init_in init_in;
    size_t init_len;
    uint32_t minor;
    uint64_t granted;

    struct mock_exp *ehead, **etail;
    size_t nexp;
    unsigned cur_set, next_set;
    int allow[ALLOW_SLOTS];

    struct mock_req **log;
    size_t nlog, caplog;

    char *ptext;
    size_t plen, pcap;
    int nproblems;

    unsigned char *rbuf;
    size_t rbufsz;
};

/* ------------------------------------------------------------------ */
/* small utilities                                                     */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "mockfs: out of memory\n");
        abort();
    }
    return p;
}

static void *xcalloc(size_t n)
{
    void *p = xmalloc(n);
    memset(p, 0, n);
    return p;
}

static void *xdup(const void *src, size_t n)
{
    void *p = xmalloc(n);
    if (n)
        memcpy(p, src, n);
    return p;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void deadline_after(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Append to the problem text; m->lock held. */
static void problem_locked(struct mock *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void problem_locked(struct mock *m, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "mockfs: %s\n", line);
    size_t need = strlen(line) + 2;
    if (m->plen + need + 1 > m->pcap) {
        size_t cap = m->pcap ? m->pcap * 2 : 1024;
        while (cap < m->plen + need + 1)
            cap *= 2;
        char *p = realloc(m->ptext, cap);
        if (!p)
            abort();
        m->ptext = p;
        m->pcap = cap;
    }
    m->plen += (size_t)sprintf(m->ptext + m->plen, "%s\n", line);
    m->nproblems++;
}

static void problem(struct mock *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void problem(struct mock *m, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&m->lock);
    problem_locked(m, "%s", line);
    pthread_mutex_unlock(&m->lock);
}

const char *mock_opname(uint32_t op)
{
    static const char *const names[] = {
        [FUSE_LOOKUP] = "LOOKUP", [FUSE_FORGET] = "FORGET",
        [FUSE_GETATTR] = "GETATTR", [FUSE_SETATTR] = "SETATTR",
        [FUSE_READLINK] = "READLINK", [FUSE_SYMLINK] = "SYMLINK",
        [FUSE_MKNOD] = "MKNOD", [FUSE_MKDIR] = "MKDIR",
        [FUSE_UNLINK] = "UNLINK", [FUSE_RMDIR] = "RMDIR",
        [FUSE_RENAME] = "RENAME", [FUSE_LINK] = "LINK",
        [FUSE_OPEN] = "OPEN", [FUSE_READ] = "READ", [FUSE_WRITE] = "WRITE",
        [FUSE_STATFS] = "STATFS", [FUSE_RELEASE] = "RELEASE",
        [FUSE_FSYNC] = "FSYNC", [FUSE_SETXATTR] = "SETXATTR",
        [FUSE_GETXATTR] = "GETXATTR", [FUSE_LISTXATTR] = "LISTXATTR",
        [FUSE_REMOVEXATTR] = "REMOVEXATTR", [FUSE_FLUSH] = "FLUSH",
        [FUSE_INIT] = "INIT", [FUSE_OPENDIR] = "OPENDIR",
        [FUSE_READDIR] = "READDIR", [FUSE_RELEASEDIR] = "RELEASEDIR",
        [FUSE_FSYNCDIR] = "FSYNCDIR", [FUSE_GETLK] = "GETLK",
        [FUSE_SETLK] = "SETLK", [FUSE_SETLKW] = "SETLKW",
        [FUSE_ACCESS] = "ACCESS", [FUSE_CREATE] = "CREATE",
        [FUSE_INTERRUPT] = "INTERRUPT", [FUSE_BMAP] = "BMAP",
        [FUSE_DESTROY] = "DESTROY", [FUSE_IOCTL] = "IOCTL",
        [FUSE_POLL] = "POLL", [FUSE_NOTIFY_REPLY] = "NOTIFY_REPLY",
        [FUSE_BATCH_FORGET] = "BATCH_FORGET",
        [FUSE_FALLOCATE] = "FALLOCATE", [FUSE_READDIRPLUS] = "READDIRPLUS",
        [FUSE_RENAME2] = "RENAME2", [FUSE_LSEEK] = "LSEEK",
        [FUSE_COPY_FILE_RANGE] = "COPY_FILE_RANGE",
        [FUSE_SETUPMAPPING] = "SETUPMAPPING",
        [FUSE_REMOVEMAPPING] = "REMOVEMAPPING", [FUSE_SYNCFS] = "SYNCFS",
        [FUSE_TMPFILE] = "TMPFILE",
    };
    if (op < sizeof(names) / sizeof(names[0]) && names[op])
        return names[op];
    return "UNKNOWN";
}

static uint64_t get_le(const unsigned char *p, size_t width)
{
    uint64_t v = 0;
    switch (width) {
    case 1: v = p[0]; break;
    case 2: { uint16_t x; memcpy(&x, p, 2); v = x; break; }
    case 4: { uint32_t x; memcpy(&x, p, 4); v = x; break; }
    case 8: memcpy(&v, p, 8); break;
    default: break;
    }
    return v;
}

/* Read a struct of the body into @out (zero-filled past the body). */
static void body_struct(const struct mock_req *r, void *out, size_t n)
{
    memset(out, 0, n);
    memcpy(out, r->body, r->bodylen < n ? r->bodylen : n);
}

/* ------------------------------------------------------------------ */
/* body layout per opcode and protocol version                         */

static uint32_t minor_of(struct mock *m)
{
    pthread_mutex_lock(&m->lock);
    uint32_t v = m->minor;
    pthread_mutex_unlock(&m->lock);
    return v;
}

static uint64_t granted_of(struct mock *m)
{
    pthread_mutex_lock(&m->lock);
    uint64_t v = m->granted;
    pthread_mutex_unlock(&m->lock);
    return v;
}

/* Offset of the first name in the body, or -1 if the opcode has none. */
static long name_offset(uint32_t minor, uint64_t granted, uint32_t op)
{
    switch (op) {
    case FUSE_LOOKUP: case FUSE_UNLINK: case FUSE_RMDIR:
    case FUSE_REMOVEXATTR: case FUSE_SYMLINK:
        return 0;
    case FUSE_MKNOD:
        return minor < 12 ? FUSE_COMPAT_MKNOD_IN_SIZE
                          : (long)sizeof(struct fuse_mknod_in);
    case FUSE_CREATE:
        return minor < 12 ? (long)sizeof(struct fuse_open_in)
                          : (long)sizeof(struct fuse_create_in);
    case FUSE_TMPFILE:
        return sizeof(struct fuse_create_in);
    case FUSE_MKDIR:
        return sizeof(struct fuse_mkdir_in);
    case FUSE_RENAME:
        return sizeof(struct fuse_rename_in);
    case FUSE_RENAME2:
        return sizeof(struct fuse_rename2_in);
    case FUSE_LINK:
        return sizeof(struct fuse_link_in);
    case FUSE_SETXATTR:
        return (granted & FUSE_SETXATTR_EXT) ? (long)sizeof(struct fuse_setxattr_in)
                                             : FUSE_COMPAT_SETXATTR_IN_SIZE;
    case FUSE_GETXATTR:
        return sizeof(struct fuse_getxattr_in);
    default:
        return -1;
    }
}

static size_t write_in_size(uint32_t minor)
{
    return minor < 9 ? FUSE_COMPAT_WRITE_IN_SIZE : sizeof(struct fuse_write_in);
}

/* The @which-th NUL-terminated string from @off; NULL if absent. */
static const char *name_at(const struct mock_req *r, long off, int which,
                           size_t *end)
{
    if (off < 0)
        return NULL;
    size_t pos = (size_t)off;
    for (int i = 0;; i++) {
        if (pos > r->bodylen)
            return NULL;
        const void *nul = memchr(r->body + pos, 0, r->bodylen - pos);
        if (!nul)
            return NULL;
        size_t next = (size_t)((const unsigned char *)nul - r->body) + 1;
        if (i == which) {
            if (end)
                *end = next;
            return (const char *)r->body + pos;
        }
        pos = next;
    }
}

static const char *req_name(uint32_t minor, uint64_t granted,
                            const struct mock_req *r, int which)
{
    return name_at(r, name_offset(minor, granted, r->h.opcode), which, NULL);
}

const char *mock_req_name(struct mock *m, const struct mock_req *r, int which)
{
    return req_name(minor_of(m), granted_of(m), r, which);
}

/* The data part of WRITE / SETXATTR / NOTIFY_REPLY. */
static bool req_data(uint32_t minor, uint64_t granted,
                     const struct mock_req *r, const unsigned char **data,
                     size_t *len)
{
    size_t off;
    switch (r->h.opcode) {
    case FUSE_WRITE:
        off = write_in_size(minor);
        break;
    case FUSE_NOTIFY_REPLY:
        off = sizeof(struct fuse_notify_retrieve_in);
        break;
    case FUSE_SETXATTR:
        if (!name_at(r, name_offset(minor, granted, FUSE_SETXATTR), 0, &off))
            return false;
        break;
    default:
        return false;
    }
    if (off > r->bodylen)
        return false;
    *data = r->body + off;
    *len = r->bodylen - off;
    return true;
}

/* ------------------------------------------------------------------ */
/* describing requests                                                 */

static void describe(uint32_t minor, uint64_t granted,
                     const struct mock_req *r, char *buf, size_t n)
{
    int k = snprintf(buf, n, "#%zu %s(%u) unique=%llu nodeid=%llu len=%u",
                     r->seq, mock_opname(r->h.opcode), r->h.opcode,
                     (unsigned long long)r->h.unique,
                     (unsigned long long)r->h.nodeid, r->h.len);
    if (k < 0 || (size_t)k >= n)
        return;
    buf += k;
    n -= (size_t)k;
#define ADD(...)                                                          \
    do {                                                                  \
        int k_ = snprintf(buf, n, __VA_ARGS__);                           \
        if (k_ < 0 || (size_t)k_ >= n)                                    \
            return;                                                       \
        buf += k_;                                                        \
        n -= (size_t)k_;                                                  \
    } while (0)
    switch (r->h.opcode) {
    case FUSE_READ: case FUSE_READDIR: case FUSE_READDIRPLUS: {
        struct fuse_read_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": fh=%llu offset=%llu size=%u read_flags=%#x flags=%#o",
            (unsigned long long)a.fh, (unsigned long long)a.offset, a.size,
            a.read_flags, a.flags);
        break;
    }
    case FUSE_WRITE: {
        struct fuse_write_in a;
        body_struct(r, &a, sizeof(a));
        if (minor < 9)
            a.lock_owner = a.flags = 0;
        ADD(": fh=%llu offset=%llu size=%u write_flags=%#x flags=%#o "
            "data=%zu bytes",
            (unsigned long long)a.fh, (unsigned long long)a.offset, a.size,
            a.write_flags, a.flags,
            r->bodylen > write_in_size(minor) ? r->bodylen - write_in_size(minor) : 0);
        break;
    }
    case FUSE_OPEN: case FUSE_OPENDIR: {
        struct fuse_open_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": flags=%#o open_flags=%#x", a.flags, a.open_flags);
        break;
    }
    case FUSE_CREATE: {
        struct fuse_create_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": flags=%#o mode=%#o umask=%#o", a.flags,
            minor < 12 ? 0 : a.mode, minor < 12 ? 0 : a.umask);
        break;
    }
    case FUSE_MKNOD: {
        struct fuse_mknod_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": mode=%#o rdev=%#x", a.mode, a.rdev);
        break;
    }
    case FUSE_MKDIR: {
        struct fuse_mkdir_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": mode=%#o umask=%#o", a.mode, a.umask);
        break;
    }
    case FUSE_GETATTR: {
        struct fuse_getattr_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": getattr_flags=%#x fh=%llu", a.getattr_flags,
            (unsigned long long)a.fh);
        break;
    }
    case FUSE_SETATTR: {
        struct fuse_setattr_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": valid=%#x fh=%llu size=%llu mode=%#o", a.valid,
            (unsigned long long)a.fh, (unsigned long long)a.size, a.mode);
        break;
    }
    case FUSE_FLUSH: {
        struct fuse_flush_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": fh=%llu lock_owner=%#llx", (unsigned long long)a.fh,
            (unsigned long long)a.lock_owner);
        break;
    }
    case FUSE_RELEASE: case FUSE_RELEASEDIR: {
        struct fuse_release_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": fh=%llu flags=%#o release_flags=%#x lock_owner=%#llx",
            (unsigned long long)a.fh, a.flags, a.release_flags,
            (unsigned long long)a.lock_owner);
        break;
    }
    case FUSE_FSYNC: case FUSE_FSYNCDIR: {
        struct fuse_fsync_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": fh=%llu fsync_flags=%#x", (unsigned long long)a.fh,
            a.fsync_flags);
        break;
    }
    case FUSE_INTERRUPT: {
        struct fuse_interrupt_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": interrupts unique=%llu", (unsigned long long)a.unique);
        break;
    }
    case FUSE_FALLOCATE: {
        struct fuse_fallocate_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": fh=%llu offset=%llu length=%llu mode=%#x",
            (unsigned long long)a.fh, (unsigned long long)a.offset,
            (unsigned long long)a.length, a.mode);
        break;
    }
    case FUSE_LSEEK: {
        struct fuse_lseek_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": fh=%llu offset=%llu whence=%u", (unsigned long long)a.fh,
            (unsigned long long)a.offset, a.whence);
        break;
    }
    case FUSE_GETXATTR: case FUSE_LISTXATTR: {
        struct fuse_getxattr_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": size=%u", a.size);
        break;
    }
    case FUSE_ACCESS: {
        struct fuse_access_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": mask=%#o", a.mask);
        break;
    }
    case FUSE_INIT: {
        struct fuse_init_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": %u.%u max_readahead=%u flags=%#x flags2=%#x", a.major,
            a.minor, a.max_readahead, a.flags, a.flags2);
        break;
    }
    case FUSE_FORGET: {
        struct fuse_forget_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": nlookup=%llu", (unsigned long long)a.nlookup);
        break;
    }
    case FUSE_BATCH_FORGET: {
        struct fuse_batch_forget_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": count=%u", a.count);
        break;
    }
    case FUSE_NOTIFY_REPLY: {
        struct fuse_notify_retrieve_in a;
        body_struct(r, &a, sizeof(a));
        ADD(": offset=%llu size=%u", (unsigned long long)a.offset, a.size);
        break;
    }
    default:
        break;
    }
    for (int i = 0; i < 2; i++) {
        const char *nm = req_name(minor, granted, r, i);
        if (!nm)
            break;
        ADD(" name%d=\"%.200s\"", i, nm);
    }
#undef ADD
}

void mock_req_describe(struct mock *m, const struct mock_req *r, char *buf,
                       size_t n)
{
    describe(minor_of(m), granted_of(m), r, buf, n);
}

static void describe_exp(const struct mock_exp *e, char *buf, size_t n)
{
    int k = snprintf(buf, n, "exp %zu: %s nodeid=", e->id,
                     mock_opname(e->opcode));
    size_t used = k > 0 ? (size_t)k : 0;
#define ADD(...)                                                          \
    do {                                                                  \
        if (used < n) {                                                   \
            int k_ = snprintf(buf + used, n - used, __VA_ARGS__);         \
            if (k_ > 0)                                                   \
                used += (size_t)k_;                                       \
        }                                                                 \
    } while (0)
    if (e->nodeid == MOCK_ANY_NODE)
        ADD("any");
    else
        ADD("%llu", (unsigned long long)e->nodeid);
    for (const struct matcher *mt = e->mhead; mt; mt = mt->next) {
        switch (mt->kind) {
        case M_FIELD:
            ADD(" %s=%llu", mt->what, (unsigned long long)mt->value);
            break;
        case M_NAME:
            ADD(" name%d=\"%s\"", mt->which, mt->name);
            break;
        case M_DATA:
            ADD(" data=%zu bytes", mt->len);
            break;
        case M_BODYLEN:
            ADD(" bodylen=%zu", mt->len);
            break;
        case M_INTR:
            ADD(" interrupting exp %zu", mt->target->id);
            break;
        case M_CUSTOM:
            ADD(" %s", mt->what ? mt->what : "custom");
            break;
        }
    }
    if (e->set)
        ADD(" (unordered set %u)", e->set);
    ADD(" matched %u of %u", e->matched, e->times);
#undef ADD
}

/* ------------------------------------------------------------------ */
/* sending                                                             */

static int send_locked(struct mock *m, const void *buf, size_t len)
{
    ssize_t n;
    do {
        n = send(m->sfd, buf, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if ((size_t)n != len)
        return -EMSGSIZE;
    return 0;
}

int mock_send_raw(struct mock *m, const void *bytes, size_t len)
{
    pthread_mutex_lock(&m->send_lock);
    int rc = send_locked(m, bytes, len);
    pthread_mutex_unlock(&m->send_lock);
    return rc;
}

static int send_msg(struct mock *m, uint64_t unique, int error,
                    const void *payload, size_t len)
{
    size_t total = sizeof(struct fuse_out_header) + len;
    unsigned char *buf = xmalloc(total);
    struct fuse_out_header oh = {
        .len = (uint32_t)total, .error = error, .unique = unique};
    memcpy(buf, &oh, sizeof(oh));
    if (len)
        memcpy(buf + sizeof(oh), payload, len);
    int rc = mock_send_raw(m, buf, total);
    free(buf);
    return rc;
}

int mock_notify(struct mock *m, int code, const void *payload, size_t len)
{
    return send_msg(m, 0, code, payload, len);
}

int mock_respond(struct mock *m, struct mock_exp *e, int error,
                 const void *payload, size_t len)
{
    pthread_mutex_lock(&m->lock);
    uint64_t unique = e->last ? e->last->h.unique : 0;
    pthread_mutex_unlock(&m->lock);
    if (!unique) {
        problem(m, "mock_respond: exp %zu has matched no request", e->id);
        return -ENOENT;
    }
    return send_msg(m, unique, error, payload, len);
}

void mock_kill(struct mock *m)
{
    pthread_mutex_lock(&m->lock);
    m->dead = true;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    shutdown(m->sfd, SHUT_RDWR);
}

/* ------------------------------------------------------------------ */
/* actions                                                             */

static size_t entry_size(uint32_t minor)
{
    return minor < 9 ? FUSE_COMPAT_ENTRY_OUT_SIZE : sizeof(struct fuse_entry_out);
}

static size_t attr_size(uint32_t minor)
{
    return minor < 9 ? FUSE_COMPAT_ATTR_OUT_SIZE : sizeof(struct fuse_attr_out);
}

static void report_send(struct mock *m, const struct mock_exp *e, int rc)
{
    /* A client that already closed its end is not the script's problem. */
    if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET && rc != -ENOTCONN)
        problem(m, "exp %zu: sending failed: %s", e->id, strerror(-rc));
}

static void run_actions(struct mock *m, struct mock_exp *e,
                        const struct mock_req *r, struct act *a)
{
    uint32_t minor = minor_of(m);
    for (; a; a = a->next) {
        pthread_mutex_lock(&m->lock);
        bool dead = m->dead;
        pthread_mutex_unlock(&m->lock);
        if (dead)
            return;
        int rc = 0;
        switch (a->kind) {
        case ACT_REPLY:
            rc = send_msg(m, r->h.unique, a->error, a->data, a->len);
            break;
        case ACT_ENTRY:
            rc = send_msg(m, r->h.unique, 0, a->data, entry_size(minor));
            break;
        case ACT_ATTR:
            rc = send_msg(m, r->h.unique, 0, a->data, attr_size(minor));
            break;
        case ACT_CREATE: {
            unsigned char buf[sizeof(struct fuse_entry_out) +
                              sizeof(struct fuse_open_out)];
            size_t es = entry_size(minor);
            memcpy(buf, a->data, es);
            memcpy(buf + es, a->data + sizeof(struct fuse_entry_out),
                   sizeof(struct fuse_open_out));
            rc = send_msg(m, r->h.unique, 0, buf,
                          es + sizeof(struct fuse_open_out));
            break;
        }
        case ACT_STATFS:
            rc = send_msg(m, r->h.unique, 0, a->data,
                          minor < 4 ? FUSE_COMPAT_STATFS_SIZE
                                    : sizeof(struct fuse_statfs_out));
            break;
        case ACT_RAW: {
            unsigned char *buf = xdup(a->data, a->len);
            if ((a->fill & MOCK_RAW_FILL_UNIQUE) && a->len >= 16)
                memcpy(buf + 8, &r->h.unique, 8);
            if ((a->fill & MOCK_RAW_FILL_LEN) && a->len >= 4) {
                uint32_t l = (uint32_t)a->len;
                memcpy(buf, &l, 4);
            }
            rc = mock_send_raw(m, buf, a->len);
            free(buf);
            break;
        }
        case ACT_SPLIT: {
            size_t total = sizeof(struct fuse_out_header) + a->len;
            unsigned char *buf = xmalloc(total);
            struct fuse_out_header oh = {.len = (uint32_t)total,
                                         .error = a->error,
                                         .unique = r->h.unique};
            memcpy(buf, &oh, sizeof(oh));
            memcpy(buf + sizeof(oh), a->data, a->len);
            size_t pos = 0;
            pthread_mutex_lock(&m->send_lock);
            for (size_t i = 0; i < a->nsizes && rc == 0 && pos < total; i++) {
                size_t piece = a->sizes[i];
                if (piece > total - pos)
                    piece = total - pos;
                rc = send_locked(m, buf + pos, piece);
                pos += piece;
            }
            pthread_mutex_unlock(&m->send_lock);
            free(buf);
            break;
        }
        case ACT_REPLY_TO: {
            pthread_mutex_lock(&m->lock);
            uint64_t unique = a->target->last ? a->target->last->h.unique : 0;
            pthread_mutex_unlock(&m->lock);
            if (!unique) {
                problem(m, "exp %zu: reply_to exp %zu which matched nothing",
                        e->id, a->target->id);
                break;
            }
            rc = send_msg(m, unique, a->error, a->data, a->len);
            break;
        }
        case ACT_DELAY:
            sleep_ms(a->ms);
            break;
        case ACT_DIE:
            mock_kill(m);
            return;
        case ACT_NOTIFY:
            rc = send_msg(m, 0, a->error, a->data, a->len);
            break;
        case ACT_CALL:
            a->fn(m, r, a->arg);
            break;
        case ACT_NOP:
            break;
        }
        report_send(m, e, rc);
    }
}

/* ------------------------------------------------------------------ */
/* request checks: the layout the negotiated protocol calls for        */

static void check_names(struct mock *m, const struct mock_req *r,
                        uint32_t minor, uint64_t granted, int count,
                        size_t trailer, char *desc)
{
    size_t end = 0;
    long off = name_offset(minor, granted, r->h.opcode);
    if (off >= 0 && (size_t)off > r->bodylen) {
        problem(m, "%s: body shorter than its fixed part (%ld)", desc, off);
        return;
    }
    for (int i = 0; i < count; i++) {
        if (!name_at(r, off, i, &end)) {
            problem(m, "%s: name %d missing or not NUL-terminated", desc, i);
            return;
        }
    }
    if (end + trailer != r->bodylen)
        problem(m, "%s: %zu bytes after the names (expected %zu)", desc,
                r->bodylen - end, trailer);
}

static void check_request(struct mock *m, const struct mock_req *r)
{
    char desc[512];
    pthread_mutex_lock(&m->lock);
    uint32_t minor = m->minor;
    uint64_t granted = m->granted;
    uint32_t max_write = m->cfg.max_write;
    pthread_mutex_unlock(&m->lock);
    describe(minor, granted, r, desc, sizeof(desc));

    size_t want = SIZE_MAX;    /* exact fixed body size, if any */
    switch (r->h.opcode) {
    case FUSE_LOOKUP: case FUSE_UNLINK: case FUSE_RMDIR:
    case FUSE_REMOVEXATTR: case FUSE_MKDIR: case FUSE_MKNOD:
    case FUSE_CREATE: case FUSE_LINK: case FUSE_GETXATTR: case FUSE_TMPFILE:
        check_names(m, r, minor, granted, 1, 0, desc);
        break;
    case FUSE_RENAME: case FUSE_RENAME2: case FUSE_SYMLINK:
        check_names(m, r, minor, granted, 2, 0, desc);
        break;
    case FUSE_SETXATTR: {
        struct fuse_setxattr_in a;
        body_struct(r, &a, sizeof(a));
        check_names(m, r, minor, granted, 1, a.size, desc);
        break;
    }
    case FUSE_GETATTR: {
        struct fuse_getattr_in a;
        body_struct(r, &a, sizeof(a));
        if (minor < 9) {
            if (r->bodylen != 0 && r->bodylen != sizeof(a))
                problem(m, "%s: GETATTR body of %zu bytes", desc, r->bodylen);
            if (r->bodylen && (a.getattr_flags & FUSE_GETATTR_FH))
                problem(m, "%s: FUSE_GETATTR_FH before protocol 7.9", desc);
        } else {
            want = sizeof(a);
        }
        break;
    }
    case FUSE_SETATTR: want = sizeof(struct fuse_setattr_in); break;
    case FUSE_OPEN: case FUSE_OPENDIR: want = sizeof(struct fuse_open_in); break;
    case FUSE_READ: case FUSE_READDIR: case FUSE_READDIRPLUS: {
        if (minor < 9 && r->bodylen == 24)
            break;
        want = sizeof(struct fuse_read_in);
        break;
    }
    case FUSE_WRITE: {
        size_t hs = write_in_size(minor);
        struct fuse_write_in a;
        body_struct(r, &a, sizeof(a));
        if (r->bodylen < hs)
            problem(m, "%s: WRITE body shorter than %zu", desc, hs);
        else if (a.size != r->bodylen - hs)
            problem(m, "%s: write_in.size %u but %zu data bytes "
                    "(write_in is %zu bytes at 7.%u)", desc, a.size,
                    r->bodylen - hs, hs, minor);
        if (a.size > max_write)
            problem(m, "%s: WRITE of %u bytes exceeds the max_write %u "
                    "granted", desc, a.size, max_write);
        break;
    }
    case FUSE_RELEASE: case FUSE_RELEASEDIR: want = sizeof(struct fuse_release_in); break;
    case FUSE_FLUSH: want = sizeof(struct fuse_flush_in); break;
    case FUSE_FSYNC: case FUSE_FSYNCDIR: want = sizeof(struct fuse_fsync_in); break;
    case FUSE_INTERRUPT: {
        want = sizeof(struct fuse_interrupt_in);
        struct fuse_interrupt_in a;
        body_struct(r, &a, sizeof(a));
        if (r->h.unique != (a.unique | MOCK_INT_REQ_BIT))
            problem(m, "%s: INTERRUPT's unique is not the target's "
                    "| FUSE_INT_REQ_BIT", desc);
        break;
    }
    case FUSE_ACCESS: want = sizeof(struct fuse_access_in); break;
    case FUSE_LISTXATTR: want = sizeof(struct fuse_getxattr_in); break;
    case FUSE_FALLOCATE: want = sizeof(struct fuse_fallocate_in); break;
    case FUSE_LSEEK: want = sizeof(struct fuse_lseek_in); break;
    case FUSE_COPY_FILE_RANGE: want = sizeof(struct fuse_copy_file_range_in); break;
    case FUSE_FORGET: want = sizeof(struct fuse_forget_in); break;
    case FUSE_BATCH_FORGET: {
        struct fuse_batch_forget_in a;
        body_struct(r, &a, sizeof(a));
        want = sizeof(a) + (size_t)a.count * sizeof(struct fuse_forget_one);
        break;
    }
    case FUSE_STATFS: case FUSE_READLINK: case FUSE_DESTROY: want = 0; break;
    case FUSE_NOTIFY_REPLY: {
        struct fuse_notify_retrieve_in a;
        body_struct(r, &a, sizeof(a));
        if (r->bodylen < sizeof(a) || a.size != r->bodylen - sizeof(a))
            problem(m, "%s: NOTIFY_REPLY size %u does not match its %zu "
                    "byte body", desc, a.size, r->bodylen);
        break;
    }
    default:
        break;
    }
    if (want != SIZE_MAX && r->bodylen != want)
        problem(m, "%s: body of %zu bytes, expected %zu", desc, r->bodylen,
                want);
    if (r->h.unique == 0)
        problem(m, "%s: request with unique 0", desc);
}

/* ------------------------------------------------------------------ */
/* matching                                                            */

static bool match_one(struct mock *m, const struct mock_exp *e,
                      const struct mock_req *r)
{
    if (e->opcode != r->h.opcode)
        return false;
    if (e->nodeid != MOCK_ANY_NODE && e->nodeid != r->h.nodeid)
        return false;
    for (const struct matcher *mt = e->mhead; mt; mt = mt->next) {
        switch (mt->kind) {
        case M_FIELD:
            if (mt->off + mt->width > r->bodylen ||
                get_le(r->body + mt->off, mt->width) != mt->value)
                return false;
            break;
        case M_NAME: {
            const char *nm = req_name(m->minor, m->granted, r, mt->which);
            if (!nm || strcmp(nm, mt->name) != 0)
                return false;
            break;
        }
        case M_DATA: {
            const unsigned char *d;
            size_t len;
            if (!req_data(m->minor, m->granted, r, &d, &len) ||
                len != mt->len || memcmp(d, mt->data, len) != 0)
                return false;
            break;
        }
        case M_BODYLEN:
            if (r->bodylen != mt->len)
                return false;
            break;
        case M_INTR: {
            const struct mock_req *t = mt->target->last;
            struct fuse_interrupt_in a;
            if (!t || r->bodylen < sizeof(a))
                return false;
            body_struct(r, &a, sizeof(a));
            if (a.unique != t->h.unique ||
                r->h.unique != (t->h.unique | MOCK_INT_REQ_BIT))
                return false;
            break;
        }
        case M_CUSTOM:
            if (!mt->fn(r, mt->arg))
                return false;
            break;
        }
    }
    return true;
}

/* m->lock held.  Invariant 2. */
static struct mock_exp *find_match(struct mock *m, const struct mock_req *r)
{
    struct mock_exp *e = m->ehead;
    while (e && e->matched >= e->times)
        e = e->next;
    if (!e)
        return NULL;
    unsigned set = e->set;
    if (set == 0)
        return match_one(m, e, r) ? e : NULL;
    for (; e && (e->set == set || e->matched >= e->times); e = e->next) {
        if (e->matched < e->times && match_one(m, e, r))
            return e;
    }
    return NULL;
}

static bool noreply_opcode(uint32_t op)
{
    return op == FUSE_FORGET || op == FUSE_BATCH_FORGET ||
           op == FUSE_NOTIFY_REPLY || op == FUSE_INTERRUPT;
}

/* ------------------------------------------------------------------ */
/* the server thread                                                   */

static void handle_init(struct mock *m, const struct mock_req *r)
{
    struct fuse_init_in in;
    body_struct(r, &in, sizeof(in));
    pthread_mutex_lock(&m->lock);
    if (m->init_done) {
        pthread_mutex_unlock(&m->lock);
        problem(m, "second INIT request");
        send_msg(m, r->h.unique, -EIO, NULL, 0);
        return;
    }
    struct mock_init_cfg cfg = m->cfg;
    m->init_in = in;
    m->init_len = r->bodylen;
    uint64_t offered = in.flags;
    if ((in.flags & FUSE_INIT_EXT) && r->bodylen >= sizeof(in))
        offered |= (uint64_t)in.flags2 << 32;
    uint64_t granted = cfg.raw_flags ? cfg.flags : (cfg.flags & offered);
    m->granted = granted;
    m->minor = in.minor < cfg.minor ? in.minor : cfg.minor;
    m->init_done = true;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);

    if (r->bodylen < 16)
        problem(m, "INIT body of %zu bytes", r->bodylen);
    else if ((in.flags & FUSE_INIT_EXT) && r->bodylen != sizeof(in))
        problem(m, "INIT offers FUSE_INIT_EXT with a %zu byte body",
                r->bodylen);

    switch (cfg.action) {
    case MOCK_INIT_NOREPLY:
        return;
    case MOCK_INIT_DIE:
        mock_kill(m);
        return;
    case MOCK_INIT_REPLY:
        break;
    }
    if (cfg.error) {
        send_msg(m, r->h.unique, cfg.error, NULL, 0);
        return;
    }
    struct fuse_init_out out;
    memset(&out, 0, sizeof(out));
    out.major = cfg.major;
    out.minor = cfg.minor;
    out.max_readahead = cfg.max_readahead ? cfg.max_readahead : in.max_readahead;
    out.flags = (uint32_t)granted;
    out.max_background = cfg.max_background;
    out.congestion_threshold = cfg.congestion_threshold;
    out.max_write = cfg.max_write;
    out.time_gran = cfg.time_gran;
    out.max_pages = cfg.max_pages;
    if (granted & FUSE_INIT_EXT)
        out.flags2 = (uint32_t)(granted >> 32);
    size_t len = cfg.reply_len;
    if (!len)
        len = cfg.minor < 5 ? FUSE_COMPAT_INIT_OUT_SIZE
            : cfg.minor < 23 ? FUSE_COMPAT_22_INIT_OUT_SIZE
            : sizeof(out);
    unsigned char buf[sizeof(out) + 64];
    memset(buf, 0, sizeof(buf));
    memcpy(buf, &out, sizeof(out));
    if (len > sizeof(buf))
        len = sizeof(buf);
    send_msg(m, r->h.unique, 0, buf, len);
}

static void handle(struct mock *m, size_t n)
{
    if (n < sizeof(struct fuse_in_header)) {
        problem(m, "a %zu byte datagram, shorter than fuse_in_header", n);
        return;
    }
    struct mock_req *r = xmalloc(sizeof(*r) + n);
    memcpy(&r->h, m->rbuf, sizeof(r->h));
    unsigned char *body = (unsigned char *)(r + 1);
    r->bodylen = n - sizeof(r->h);
    memcpy(body, m->rbuf + sizeof(r->h), r->bodylen);
    r->body = body;
    r->t_ns = now_ns();

    pthread_mutex_lock(&m->lock);
    if (m->nlog == m->caplog) {
        size_t cap = m->caplog ? m->caplog * 2 : 64;
        struct mock_req **p = realloc(m->log, cap * sizeof(*p));
        if (!p)
            abort();
        m->log = p;
        m->caplog = cap;
    }
    r->seq = m->nlog;
    m->log[m->nlog++] = r;
    bool init_done = m->init_done;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);

    if (r->h.len != n)
        problem(m, "request #%zu %s: header len %u but a %zu byte datagram",
                r->seq, mock_opname(r->h.opcode), r->h.len, n);
    if (r->h.opcode == FUSE_INIT) {
        handle_init(m, r);
        return;
    }
    if (!init_done)
        problem(m, "request #%zu %s before INIT", r->seq,
                mock_opname(r->h.opcode));
    check_request(m, r);

    pthread_mutex_lock(&m->lock);
    struct mock_exp *e = find_match(m, r);
    struct act *acts = NULL;
    int allow = MOCK_DISALLOW;
    if (e) {
        e->matched++;
        e->last = r;
        acts = e->ahead;
        pthread_cond_broadcast(&m->cond);
    } else if (r->h.opcode < ALLOW_SLOTS) {
        allow = m->allow[r->h.opcode];
    }
    pthread_mutex_unlock(&m->lock);

    if (e) {
        run_actions(m, e, r, acts);
        pthread_mutex_lock(&m->lock);
        e->acted++;
        pthread_cond_broadcast(&m->cond);
        pthread_mutex_unlock(&m->lock);
        return;
    }
    if (allow != MOCK_DISALLOW) {
        if (allow != MOCK_NOREPLY && !noreply_opcode(r->h.opcode))
            send_msg(m, r->h.unique, allow, NULL, 0);
        return;
    }
    char desc[512], next[512] = "none";
    describe(minor_of(m), granted_of(m), r, desc, sizeof(desc));
    pthread_mutex_lock(&m->lock);
    for (struct mock_exp *x = m->ehead; x; x = x->next) {
        if (x->matched < x->times) {
            describe_exp(x, next, sizeof(next));
            break;
        }
    }
    problem_locked(m, "unexpected request %s (next expected: %s)", desc, next);
    pthread_mutex_unlock(&m->lock);
    if (!noreply_opcode(r->h.opcode))
        send_msg(m, r->h.unique, -EIO, NULL, 0);
}

static void *serve(void *arg)
{
    struct mock *m = arg;
    for (;;) {
        struct iovec iov = {m->rbuf, m->rbufsz};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n = recvmsg(m->sfd, &msg, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;     /* EOF: the client closed, or we were shut down */
        if (msg.msg_flags & MSG_TRUNC) {
            problem(m, "a request larger than the mock's %zu byte buffer",
                    m->rbufsz);
            continue;
        }
        handle(m, (size_t)n);
        pthread_mutex_lock(&m->lock);
        bool dead = m->dead;
        pthread_mutex_unlock(&m->lock);
        if (dead)
            break;
    }
    pthread_mutex_lock(&m->lock);
    m->running = false;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* life cycle                                                          */

void mock_init_defaults(struct mock_init_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->major = FUSE_KERNEL_VERSION;
    cfg->minor = FUSE_KERNEL_MINOR_VERSION;
    cfg->flags = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_ATOMIC_O_TRUNC |
                 FUSE_MAX_PAGES | FUSE_PARALLEL_DIROPS | FUSE_INIT_EXT;
    cfg->max_write = 131072;
    cfg->max_pages = 32;
    cfg->max_background = 12;
    cfg->congestion_threshold = 9;
    cfg->time_gran = 1;
}

struct mock *mock_new(const struct mock_init_cfg *cfg)
{
    struct mock *m = xcalloc(sizeof(*m));
    if (cfg)
        m->cfg = *cfg;
    else
        mock_init_defaults(&m->cfg);
    m->minor = m->cfg.minor;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("mockfs: socketpair");
        abort();
    }
    m->sfd = sv[0];
    m->cfd = sv[1];
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_init(&m->send_lock, NULL);
    m->etail = &m->ehead;
    for (int i = 0; i < ALLOW_SLOTS; i++)
        m->allow[i] = MOCK_DISALLOW;
    m->allow[FUSE_FORGET] = MOCK_NOREPLY;
    m->allow[FUSE_BATCH_FORGET] = MOCK_NOREPLY;
    m->allow[FUSE_NOTIFY_REPLY] = MOCK_NOREPLY;
    m->allow[FUSE_DESTROY] = 0;
    size_t mw = m->cfg.max_write > 131072 ? m->cfg.max_write : 131072;
    m->rbufsz = mw + 65536;
    m->rbuf = xmalloc(m->rbufsz);
    m->running = true;
    int rc = pthread_create(&m->thr, NULL, serve, m);
    if (rc) {
        fprintf(stderr, "mockfs: pthread_create: %s\n", strerror(rc));
        abort();
    }
    return m;
}

int mock_client_fd(struct mock *m)
{
    pthread_mutex_lock(&m->lock);
    m->cfd_taken = true;
    int fd = m->cfd;
    pthread_mutex_unlock(&m->lock);
    return fd;
}

static void free_exp(struct mock_exp *e)
{
    while (e->mhead) {
        struct matcher *mt = e->mhead;
        e->mhead = mt->next;
        free(mt->name);
        free(mt->data);
        free(mt);
    }
    while (e->ahead) {
        struct act *a = e->ahead;
        e->ahead = a->next;
        free(a->data);
        free(a->sizes);
        free(a);
    }
    free(e);
}

void mock_free(struct mock *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    bool taken = m->cfd_taken;
    bool running = m->running;
    pthread_mutex_unlock(&m->lock);
    if (!taken)
        close(m->cfd);
    if (running)
        shutdown(m->sfd, SHUT_RDWR);
    pthread_join(m->thr, NULL);
    close(m->sfd);
    while (m->ehead) {
        struct mock_exp *e = m->ehead;
        m->ehead = e->next;
        free_exp(e);
    }
    for (size_t i = 0; i < m->nlog; i++)
        free(m->log[i]);
    free(m->log);
    free(m->ptext);
    free(m->rbuf);
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->send_lock);
    pthread_cond_destroy(&m->cond);
    free(m);
}

bool mock_init_request(struct mock *m, struct fuse_init_in *out,
                       size_t *bodylen)
{
    pthread_mutex_lock(&m->lock);
    bool done = m->init_done;
    if (done) {
        if (out)
            *out = m->init_in;
        if (bodylen)
            *bodylen = m->init_len;
    }
    pthread_mutex_unlock(&m->lock);
    return done;
}

uint32_t mock_minor(struct mock *m)
{
    return minor_of(m);
}

uint64_t mock_granted(struct mock *m)
{
    return granted_of(m);
}

/* ------------------------------------------------------------------ */
/* scripting                                                           */

struct mock_exp *mock_expect(struct mock *m, uint32_t opcode, uint64_t nodeid)
{
    struct mock_exp *e = xcalloc(sizeof(*e));
    e->m = m;
    e->opcode = opcode;
    e->nodeid = nodeid;
    e->times = 1;
    e->mtail = &e->mhead;
    e->atail = &e->ahead;
    pthread_mutex_lock(&m->lock);
    e->id = ++m->nexp;
    e->set = m->cur_set;
    *m->etail = e;
    m->etail = &e->next;
    pthread_mutex_unlock(&m->lock);
    return e;
}

void mock_times(struct mock_exp *e, unsigned n)
{
    pthread_mutex_lock(&e->m->lock);
    e->times = n;
    pthread_mutex_unlock(&e->m->lock);
}

static void add_matcher(struct mock_exp *e, struct matcher *mt)
{
    pthread_mutex_lock(&e->m->lock);
    *e->mtail = mt;
    e->mtail = &mt->next;
    pthread_mutex_unlock(&e->m->lock);
}

void mock_match_field(struct mock_exp *e, size_t off, size_t width,
                      uint64_t value, const char *what)
{
    struct matcher *mt = xcalloc(sizeof(*mt));
    mt->kind = M_FIELD;
    mt->off = off;
    mt->width = width;
    mt->value = value;
    mt->what = what;
    add_matcher(e, mt);
}

void mock_match_name(struct mock_exp *e, int which, const char *name)
{
    struct matcher *mt = xcalloc(sizeof(*mt));
    mt->kind = M_NAME;
    mt->which = which;
    mt->name = xdup(name, strlen(name) + 1);
    add_matcher(e, mt);
}

void mock_match_data(struct mock_exp *e, const void *data, size_t len)
{
    struct matcher *mt = xcalloc(sizeof(*mt));
    mt->kind = M_DATA;
    mt->data = xdup(data, len);
    mt->len = len;
    add_matcher(e, mt);
}

void mock_match_bodylen(struct mock_exp *e, size_t len)
{
    struct matcher *mt = xcalloc(sizeof(*mt));
    mt->kind = M_BODYLEN;
    mt->len = len;
    add_matcher(e, mt);
}

void mock_match_interrupt_of(struct mock_exp *e, struct mock_exp *target)
{
    struct matcher *mt = xcalloc(sizeof(*mt));
    mt->kind = M_INTR;
    mt->target = target;
    add_matcher(e, mt);
}

void mock_match_custom(struct mock_exp *e, mock_match_fn fn, void *arg,
                       const char *what)
{
    struct matcher *mt = xcalloc(sizeof(*mt));
    mt->kind = M_CUSTOM;
    mt->fn = fn;
    mt->arg = arg;
    mt->what = what;
    add_matcher(e, mt);
}

void mock_unordered_begin(struct mock *m)
{
    pthread_mutex_lock(&m->lock);
    m->cur_set = ++m->next_set;
    pthread_mutex_unlock(&m->lock);
}

void mock_unordered_end(struct mock *m)
{
    pthread_mutex_lock(&m->lock);
    m->cur_set = 0;
    pthread_mutex_unlock(&m->lock);
}

void mock_allow(struct mock *m, uint32_t opcode, int error)
{
    if (opcode >= ALLOW_SLOTS)
        return;
    pthread_mutex_lock(&m->lock);
    m->allow[opcode] = error;
    pthread_mutex_unlock(&m->lock);
}

struct mock_exp *mock_expect_lookup(struct mock *m, uint64_t parent,
                                    const char *name)
{
    struct mock_exp *e = mock_expect(m, FUSE_LOOKUP, parent);
    mock_match_name(e, 0, name);
    return e;
}

struct mock_exp *mock_expect_getattr(struct mock *m, uint64_t nodeid)
{
    return mock_expect(m, FUSE_GETATTR, nodeid);
}

struct mock_exp *mock_expect_open(struct mock *m, uint64_t nodeid,
                                  uint32_t flags)
{
    struct mock_exp *e = mock_expect(m, FUSE_OPEN, nodeid);
    MOCK_MATCH(e, struct fuse_open_in, flags, flags);
    return e;
}

struct mock_exp *mock_expect_create(struct mock *m, uint64_t parent,
                                    const char *name, uint32_t flags,
                                    uint32_t mode)
{
    struct mock_exp *e = mock_expect(m, FUSE_CREATE, parent);
    mock_match_name(e, 0, name);
    MOCK_MATCH(e, struct fuse_create_in, flags, flags);
    MOCK_MATCH(e, struct fuse_create_in, mode, mode);
    return e;
}

struct mock_exp *mock_expect_read(struct mock *m, uint64_t nodeid,
                                  uint64_t fh, uint64_t off, uint32_t size)
{
    struct mock_exp *e = mock_expect(m, FUSE_READ, nodeid);
    MOCK_MATCH(e, struct fuse_read_in, fh, fh);
    MOCK_MATCH(e, struct fuse_read_in, offset, off);
    MOCK_MATCH(e, struct fuse_read_in, size, size);
    return e;
}

struct mock_exp *mock_expect_write(struct mock *m, uint64_t nodeid,
                                   uint64_t fh, uint64_t off,
                                   const void *data, uint32_t len)
{
    struct mock_exp *e = mock_expect(m, FUSE_WRITE, nodeid);
    MOCK_MATCH(e, struct fuse_write_in, fh, fh);
    MOCK_MATCH(e, struct fuse_write_in, offset, off);
    MOCK_MATCH(e, struct fuse_write_in, size, len);
    if (data)
        mock_match_data(e, data, len);
    return e;
}

struct mock_exp *mock_expect_flush(struct mock *m, uint64_t nodeid,
                                   uint64_t fh)
{
    struct mock_exp *e = mock_expect(m, FUSE_FLUSH, nodeid);
    MOCK_MATCH(e, struct fuse_flush_in, fh, fh);
    return e;
}

struct mock_exp *mock_expect_release(struct mock *m, uint64_t nodeid,
                                     uint64_t fh)
{
    struct mock_exp *e = mock_expect(m, FUSE_RELEASE, nodeid);
    MOCK_MATCH(e, struct fuse_release_in, fh, fh);
    return e;
}

struct mock_exp *mock_expect_fsync(struct mock *m, uint64_t nodeid,
                                   uint64_t fh, uint32_t fsync_flags)
{
    struct mock_exp *e = mock_expect(m, FUSE_FSYNC, nodeid);
    MOCK_MATCH(e, struct fuse_fsync_in, fh, fh);
    MOCK_MATCH(e, struct fuse_fsync_in, fsync_flags, fsync_flags);
    return e;
}

struct mock_exp *mock_expect_setattr(struct mock *m, uint64_t nodeid,
                                     uint32_t valid)
{
    struct mock_exp *e = mock_expect(m, FUSE_SETATTR, nodeid);
    MOCK_MATCH(e, struct fuse_setattr_in, valid, valid);
    return e;
}

/* ------------------------------------------------------------------ */
/* actions (scripting side)                                            */

/* The fields are set before the action is linked in (invariant 5). */
static struct act *new_act(enum act_kind kind, const void *data, size_t len)
{
    struct act *a = xcalloc(sizeof(*a));
    a->kind = kind;
    a->data = data ? xdup(data, len) : NULL;
    a->len = data ? len : 0;
    return a;
}

static void link_act(struct mock_exp *e, struct act *a)
{
    pthread_mutex_lock(&e->m->lock);
    *e->atail = a;
    e->atail = &a->next;
    pthread_mutex_unlock(&e->m->lock);
}

static void add_act(struct mock_exp *e, enum act_kind kind, const void *data,
                    size_t len)
{
    link_act(e, new_act(kind, data, len));
}

void mock_reply(struct mock_exp *e, const void *payload, size_t len)
{
    add_act(e, ACT_REPLY, payload, len);
}

void mock_reply_err(struct mock_exp *e, int err)
{
    struct act *a = new_act(ACT_REPLY, NULL, 0);
    a->error = err;
    link_act(e, a);
}

void mock_reply_entry(struct mock_exp *e, const struct fuse_entry_out *eo)
{
    add_act(e, ACT_ENTRY, eo, sizeof(*eo));
}

void mock_reply_attr(struct mock_exp *e, const struct fuse_attr_out *ao)
{
    add_act(e, ACT_ATTR, ao, sizeof(*ao));
}

void mock_reply_open(struct mock_exp *e, uint64_t fh, uint32_t open_flags)
{
    struct fuse_open_out oo = {.fh = fh, .open_flags = open_flags};
    add_act(e, ACT_REPLY, &oo, sizeof(oo));
}

void mock_reply_create(struct mock_exp *e, const struct fuse_entry_out *eo,
                       uint64_t fh, uint32_t open_flags)
{
    unsigned char buf[sizeof(*eo) + sizeof(struct fuse_open_out)];
    struct fuse_open_out oo = {.fh = fh, .open_flags = open_flags};
    memcpy(buf, eo, sizeof(*eo));
    memcpy(buf + sizeof(*eo), &oo, sizeof(oo));
    add_act(e, ACT_CREATE, buf, sizeof(buf));
}

void mock_reply_write(struct mock_exp *e, uint32_t size)
{
    struct fuse_write_out wo = {.size = size};
    add_act(e, ACT_REPLY, &wo, sizeof(wo));
}

void mock_reply_statfs(struct mock_exp *e, const struct fuse_kstatfs *st)
{
    struct fuse_statfs_out so = {.st = *st};
    add_act(e, ACT_STATFS, &so, sizeof(so));
}

void mock_reply_xattr_size(struct mock_exp *e, uint32_t size)
{
    struct fuse_getxattr_out go = {.size = size};
    add_act(e, ACT_REPLY, &go, sizeof(go));
}

void mock_reply_pattern(struct mock_exp *e, uint64_t off, size_t len)
{
    unsigned char *buf = xmalloc(len);
    mock_pattern(buf, len, off);
    add_act(e, ACT_REPLY, buf, len);
    free(buf);
}

void mock_reply_raw(struct mock_exp *e, const void *bytes, size_t len,
                    unsigned fill)
{
    struct act *a = new_act(ACT_RAW, bytes, len);
    a->fill = fill;
    link_act(e, a);
}

void mock_reply_split(struct mock_exp *e, int error, const void *payload,
                      size_t len, const size_t *sizes, size_t nsizes)
{
    struct act *a = new_act(ACT_SPLIT, payload, len);
    a->error = error;
    a->sizes = xdup(sizes, nsizes * sizeof(*sizes));
    a->nsizes = nsizes;
    size_t sum = 0;
    for (size_t i = 0; i < nsizes; i++)
        sum += sizes[i];
    if (sum != sizeof(struct fuse_out_header) + len)
        problem(e->m, "mock_reply_split: pieces add up to %zu, not %zu",
                sum, sizeof(struct fuse_out_header) + len);
    link_act(e, a);
}

void mock_act_reply_to(struct mock_exp *e, struct mock_exp *target,
                       int error, const void *payload, size_t len)
{
    struct act *a = new_act(ACT_REPLY_TO, payload, len);
    a->error = error;
    a->target = target;
    link_act(e, a);
}

void mock_act_delay(struct mock_exp *e, unsigned ms)
{
    struct act *a = new_act(ACT_DELAY, NULL, 0);
    a->ms = ms;
    link_act(e, a);
}

void mock_act_die(struct mock_exp *e)
{
    link_act(e, new_act(ACT_DIE, NULL, 0));
}

void mock_act_notify(struct mock_exp *e, int code, const void *payload,
                     size_t len)
{
    struct act *a = new_act(ACT_NOTIFY, payload, len);
    a->error = code;
    link_act(e, a);
}

void mock_act_call(struct mock_exp *e, mock_action_fn fn, void *arg)
{
    struct act *a = new_act(ACT_CALL, NULL, 0);
    a->fn = fn;
    a->arg = arg;
    link_act(e, a);
}

void mock_no_reply(struct mock_exp *e)
{
    link_act(e, new_act(ACT_NOP, NULL, 0));
}

/* ------------------------------------------------------------------ */
/* waiting, log, verdict                                               */

bool mock_wait(struct mock *m, struct mock_exp *e, unsigned ms)
{
    struct timespec dl;
    deadline_after(&dl, ms);
    pthread_mutex_lock(&m->lock);
    int rc = 0;
    while (e->acted < e->times && rc != ETIMEDOUT &&
           (m->running || e->acted < e->matched))
        rc = pthread_cond_timedwait(&m->cond, &m->lock, &dl);
    bool ok = e->acted >= e->times;
    pthread_mutex_unlock(&m->lock);
    return ok;
}

static size_t count_locked(struct mock *m, uint32_t opcode)
{
    size_t c = 0;
    for (size_t i = 0; i < m->nlog; i++)
        if (opcode == 0 || m->log[i]->h.opcode == opcode)
            c++;
    return c;
}

bool mock_wait_log(struct mock *m, uint32_t opcode, size_t n, unsigned ms)
{
    struct timespec dl;
    deadline_after(&dl, ms);
    pthread_mutex_lock(&m->lock);
    int rc = 0;
    while (count_locked(m, opcode) < n && rc != ETIMEDOUT && m->running)
        rc = pthread_cond_timedwait(&m->cond, &m->lock, &dl);
    bool ok = count_locked(m, opcode) >= n;
    pthread_mutex_unlock(&m->lock);
    return ok;
}

uint64_t mock_exp_unique(struct mock *m, struct mock_exp *e)
{
    pthread_mutex_lock(&m->lock);
    uint64_t u = e->last ? e->last->h.unique : 0;
    pthread_mutex_unlock(&m->lock);
    return u;
}

unsigned mock_exp_count(struct mock *m, struct mock_exp *e)
{
    pthread_mutex_lock(&m->lock);
    unsigned c = e->matched;
    pthread_mutex_unlock(&m->lock);
    return c;
}

size_t mock_log_count(struct mock *m, uint32_t opcode)
{
    pthread_mutex_lock(&m->lock);
    size_t c = count_locked(m, opcode);
    pthread_mutex_unlock(&m->lock);
    return c;
}

bool mock_log_get(struct mock *m, size_t i, struct mock_req *out)
{
    pthread_mutex_lock(&m->lock);
    bool ok = i < m->nlog;
    if (ok && out)
        *out = *m->log[i];
    pthread_mutex_unlock(&m->lock);
    return ok;
}

size_t mock_log_find(struct mock *m, uint32_t opcode, size_t from,
                     struct mock_req *out)
{
    size_t found = (size_t)-1;
    pthread_mutex_lock(&m->lock);
    for (size_t i = from; i < m->nlog; i++) {
        if (m->log[i]->h.opcode == opcode) {
            found = i;
            if (out)
                *out = *m->log[i];
            break;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return found;
}

void mock_log_dump(struct mock *m, FILE *fp)
{
    pthread_mutex_lock(&m->lock);
    uint32_t minor = m->minor;
    uint64_t granted = m->granted;
    size_t n = m->nlog;
    uint64_t t0 = n ? m->log[0]->t_ns : 0;
    for (size_t i = 0; i < n; i++) {
        char d[512];
        describe(minor, granted, m->log[i], d, sizeof(d));
        fprintf(fp, "  +%8.3f ms %s\n",
                (double)(m->log[i]->t_ns - t0) / 1e6, d);
    }
    pthread_mutex_unlock(&m->lock);
}

static bool all_met_locked(struct mock *m)
{
    for (struct mock_exp *e = m->ehead; e; e = e->next)
        if (e->acted < e->times)
            return false;
    return true;
}

int mock_check(struct mock *m, char *buf, size_t n)
{
    struct timespec dl;
    deadline_after(&dl, MOCK_WAIT_MS);
    pthread_mutex_lock(&m->lock);
    int rc = 0;
    while (!all_met_locked(m) && m->running && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&m->cond, &m->lock, &dl);
    int np = m->nproblems;
    size_t used = 0;
    if (buf && n) {
        buf[0] = 0;
        int k = snprintf(buf, n, "%s", m->ptext ? m->ptext : "");
        used = k > 0 ? ((size_t)k < n ? (size_t)k : n - 1) : 0;
    }
    for (struct mock_exp *e = m->ehead; e; e = e->next) {
        if (e->acted >= e->times)
            continue;
        np++;
        char d[512];
        describe_exp(e, d, sizeof(d));
        fprintf(stderr, "mockfs: unmet expectation: %s\n", d);
        if (buf && used + 1 < n) {
            int k = snprintf(buf + used, n - used, "unmet expectation: %s\n", d);
            if (k > 0)
                used += (size_t)k < n - used ? (size_t)k : n - used - 1;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return np;
}

void mock_verify(struct mock *m)
{
    char buf[8192];
    int np = mock_check(m, buf, sizeof(buf));
    if (np) {
        fprintf(stderr, "mockfs: request log:\n");
        mock_log_dump(m, stderr);
        fail_msg("mockfs: %d problem(s):\n%s", np, buf);
    }
}

void mock_clear_problems(struct mock *m)
{
    pthread_mutex_lock(&m->lock);
    m->nproblems = 0;
    m->plen = 0;
    if (m->ptext)
        m->ptext[0] = 0;
    pthread_mutex_unlock(&m->lock);
}

/* ------------------------------------------------------------------ */
/* helpers                                                             */

struct fuse_attr mock_attr(uint64_t ino, uint32_t mode, uint64_t size)
{
    struct fuse_attr a;
    memset(&a, 0, sizeof(a));
    a.ino = ino;
    a.mode = mode;
    a.size = size;
    a.blocks = (size + 511) / 512;
    a.nlink = (mode & S_IFMT) == S_IFDIR ? 2 : 1;
    a.blksize = 4096;
    a.atime = a.mtime = a.ctime = 1700000000;
    return a;
}

struct fuse_entry_out mock_entry(uint64_t nodeid, uint32_t mode,
                                 uint64_t size, uint64_t entry_valid,
                                 uint64_t attr_valid)
{
    struct fuse_entry_out eo;
    memset(&eo, 0, sizeof(eo));
    eo.nodeid = nodeid;
    eo.generation = 1;
    eo.entry_valid = entry_valid;
    eo.attr_valid = attr_valid;
    eo.attr = mock_attr(nodeid, mode, size);
    return eo;
}

struct fuse_attr_out mock_attr_out(uint64_t ino, uint32_t mode,
                                   uint64_t size, uint64_t attr_valid)
{
    struct fuse_attr_out ao;
    memset(&ao, 0, sizeof(ao));
    ao.attr_valid = attr_valid;
    ao.attr = mock_attr(ino, mode, size);
    return ao;
}

void mock_pattern(void *buf, size_t len, uint64_t off)
{
    unsigned char *p = buf;
    for (size_t i = 0; i < len; i++) {
        uint64_t x = off + i;
        x ^= x >> 9;
        x *= 0x9E3779B97F4A7C15ULL;
        p[i] = (unsigned char)(x >> 56);
    }
}

static void dirbuf_reserve(struct mock_dirbuf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap < b->len + more)
        cap *= 2;
    unsigned char *p = realloc(b->buf, cap);
    if (!p)
        abort();
    b->buf = p;
    b->cap = cap;
}

void mock_dirbuf_add(struct mock_dirbuf *b, uint64_t ino, uint64_t off,
                     uint32_t type, const char *name)
{
    size_t nl = strlen(name);
    size_t rec = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + nl);
    dirbuf_reserve(b, rec);
    unsigned char *p = b->buf + b->len;
    memset(p, 0, rec);
    struct fuse_dirent d = {.ino = ino, .off = off, .namelen = (uint32_t)nl,
                            .type = type};
    memcpy(p, &d, FUSE_NAME_OFFSET);
    memcpy(p + FUSE_NAME_OFFSET, name, nl);
    b->len += rec;
}

void mock_dirbuf_addplus(struct mock_dirbuf *b,
                         const struct fuse_entry_out *eo, uint64_t off,
                         uint32_t type, const char *name)
{
    size_t nl = strlen(name);
    size_t rec = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + nl);
    dirbuf_reserve(b, rec);
    unsigned char *p = b->buf + b->len;
    memset(p, 0, rec);
    memcpy(p, eo, sizeof(*eo));
    struct fuse_dirent d = {.ino = eo->attr.ino, .off = off,
                            .namelen = (uint32_t)nl, .type = type};
    memcpy(p + sizeof(*eo), &d, FUSE_NAME_OFFSET);
    memcpy(p + FUSE_NAME_OFFSET_DIRENTPLUS, name, nl);
    b->len += rec;
}

void mock_dirbuf_free(struct mock_dirbuf *b)
{
    free(b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
}

size_t mock_build_inval_entry(void *buf, size_t cap, uint64_t parent,
                              const char *name)
{
    size_t nl = strlen(name);
    struct fuse_notify_inval_entry_out o = {.parent = parent,
                                            .namelen = (uint32_t)nl};
    size_t len = sizeof(o) + nl + 1;
    if (len > cap)
        return 0;
    memcpy(buf, &o, sizeof(o));
    memcpy((char *)buf + sizeof(o), name, nl + 1);
    return len;
}

size_t mock_build_delete(void *buf, size_t cap, uint64_t parent,
                         uint64_t child, const char *name)
{
    size_t nl = strlen(name);
    struct fuse_notify_delete_out o = {.parent = parent, .child = child,
                                       .namelen = (uint32_t)nl};
    size_t len = sizeof(o) + nl + 1;
    if (len > cap)
        return 0;
    memcpy(buf, &o, sizeof(o));
    memcpy((char *)buf + sizeof(o), name, nl + 1);
    return len;
}

size_t mock_build_store(void *buf, size_t cap, uint64_t nodeid,
                        uint64_t off, const void *data, uint32_t len)
{
    struct fuse_notify_store_out o = {.nodeid = nodeid, .offset = off,
                                      .size = len};
    size_t total = sizeof(o) + len;
    if (total > cap)
        return 0;
    memcpy(buf, &o, sizeof(o));
    if (len)
        memcpy((char *)buf + sizeof(o), data, len);
    return total;
}
