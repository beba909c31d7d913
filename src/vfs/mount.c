/*
 * mount.c - session life: options, attaching (spawn or fd), INIT,
 * unmount.  Seed counterpart: FreeBSD fuse_vfsops.c (mount/unmount).
 * A mount that fails leaves a message for a person (ufuse_mount_err): the
 * option and what it takes, or how the server failed INIT.
 *
 * Locks: none of its own; a session is set up before it is returned to
 * the caller and torn down after the caller's last call.
 */
#include "vfs/vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Init flags this client honours (what it offers at INIT). */
static const uint64_t vfs_init_flags =
    FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_ATOMIC_O_TRUNC | FUSE_AUTO_INVAL_DATA |
    FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS |
    FUSE_HANDLE_KILLPRIV | FUSE_MAX_PAGES | FUSE_EXPLICIT_INVAL_DATA |
    FUSE_CACHE_SYMLINKS | FUSE_EXPORT_SUPPORT | FUSE_WRITEBACK_CACHE | FUSE_INIT_EXT |
    FUSE_ASYNC_DIO |
    /* Modes go out unmasked (umask 0 in the request) whatever the server
     * asks, so offering DONT_MASK promises nothing new (fuse-overlayfs
     * requires it). */
    FUSE_DONT_MASK;

#define DEFAULT_MAX_READ (128u * 1024)
/*
 * Splicing.  The kernel offers FUSE_SPLICE_WRITE/MOVE/READ and libfuse
 * then writes large READ replies with splice(2), straight from the file
 * it serves: no copy through its own memory.  On our SEQPACKET socket a
 * spliced reply larger than about 60 KiB arrives as several datagrams,
 * and replies spliced by different server threads can interleave, which
 * no reader can untangle.  So READs are capped at 56 KiB while splicing
 * is offered, and a reply always fits one datagram (design.md measured
 * the first piece at 61,424 bytes).  The library offers it when asked
 * (-o splice; -o nosplice undoes it); the ufuse command and `ufuse run`
 * ask by default (tools/ufuse/util.c, cli_mount): a 1 GiB file read cold
 * through passthrough_ll took 1.5 s spliced against 6.4 s copied (the
 * server maps a fresh buffer per READ: page faults), where the kernel
 * client took ~3 s; a server that never splices (ufuse-memfs) pays for
 * the smaller READs, 2.8 s against 2.4 s.  Servers that splice
 * without being offered it are still read correctly when one reply at a
 * time is split (ipc.c reassembles it); interleaved split replies fail
 * with EIO, never with wrong data.  Requests (WRITE) are spliced by the
 * server only when its pipe can hold the largest (libfuse reads them
 * with read(2) otherwise).
 */
#define SPLICE_MAX_READ (56u * 1024)
#define SPLICE_FLAGS ((uint64_t)FUSE_SPLICE_WRITE | FUSE_SPLICE_MOVE | FUSE_SPLICE_READ)
#define DEFAULT_MAX_WRITE (1024u * 1024)
#define DEFAULT_MAX_READAHEAD (4096u * 1024)
/* READs of one direct read in flight at once (io_mount.direct_read_depth). */
#define DIRECT_READ_DEPTH 8
#define DEFAULT_CACHE_SIZE (256ull << 20)
#define MIN_CACHE_SIZE (1ull << 20)
#define DEFAULT_BLOCK_SIZE 4096u
#define DEFAULT_DIRTY_EXPIRE_S 30
/* spin=: how long a thread waiting for a reply polls before it sleeps
 * (ipc.c conn_poll_reply; docs/architecture.md has the measurements). */
#define DEFAULT_SPIN_US 30u
/* -o share: attribute records in the region (120 bytes each, touched as
 * used): nodes beyond it are served, not published. */
#define SHARE_ATTR_RECORDS 65536u
/* ... and entry records (128 bytes each, direct-mapped by hash; the table
 * is faulted in at mount, ~2 ms for these 4 MiB, as records land on pages
 * at random).  4 times as many cut du -s of 5,000 files' stats asked of
 * the broker from 678 to 157 (collisions) but not its time (55-60 ms
 * either way): kept at half the entry cache. */
#define SHARE_ENTRY_RECORDS 32768u
#define UNMOUNT_DRAIN_MS 2000
#define UNMOUNT_REAP_MS 5000

void vfs_free_opts(struct ufuse_opts *o)
{
    free(o->log_path);
    free(o->server_name);
    o->log_path = o->server_name = NULL;
}

/*
 * Option parsing.  Every rejected option gets a message naming it and what
 * it takes ("option cache=bogus: expected auto, writethrough, writeback or
 * direct"), written into @msg for ufuse_mount_err().
 */
struct vfs_optarg {
    const char *key, *val;   /* KEY[=VAL]; val NULL without '=' */
    char *msg;
    size_t msgsize;
};

static int vfs_opt_fail(const struct vfs_optarg *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int vfs_opt_fail(const struct vfs_optarg *a, const char *fmt, ...)
{
    int n = a->val ? snprintf(a->msg, a->msgsize, "option %s=%s: ", a->key, a->val)
                   : snprintf(a->msg, a->msgsize, "option %s: ", a->key);
    if (n >= 0 && (size_t)n < a->msgsize) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a->msg + n, a->msgsize - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* A size as the options take it: "4k", "1m", "1t", or bytes. */
static const char *vfs_size_str(uint64_t x, char *buf, size_t n)
{
    static const char unit[] = "kmgt";
    int u = -1;
    while (u < 3 && x >= 1024 && x % 1024 == 0) {
        x /= 1024;
        u++;
    }
    if (u < 0)
        snprintf(buf, n, "%llu", (unsigned long long)x);
    else
        snprintf(buf, n, "%llu%c", (unsigned long long)x, unit[u]);
    return buf;
}

static int vfs_opt_size(const struct vfs_optarg *a, uint64_t min, uint64_t max, uint64_t *out)
{
    char lo[24], hi[24];
    vfs_size_str(min, lo, sizeof lo);
    vfs_size_str(max, hi, sizeof hi);
    uint64_t x;
    if (!a->val || !*a->val)
        return vfs_opt_fail(a, "needs a size from %s to %s", lo, hi);
    if (ufuse_parse_size(a->val, &x) != 0)
        return vfs_opt_fail(a, "not a size (a number with an optional k, m, g or t suffix)");
    if (x < min || x > max)
        return vfs_opt_fail(a, "out of range (%s to %s)", lo, hi);
    *out = x;
    return 0;
}

static int vfs_opt_size32(const struct vfs_optarg *a, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t x;
    int rc = vfs_opt_size(a, min, max, &x);
    if (rc == 0)
        *out = (uint32_t)x;
    return rc;
}

static int vfs_opt_seconds(const struct vfs_optarg *a, uint64_t *out_ns)
{
    char *end = NULL;
    double sec = a->val ? strtod(a->val, &end) : 0;
    if (!a->val || !*a->val || *end || end == a->val || !(sec >= 0) || sec > 86400)
        return vfs_opt_fail(a, "expected seconds from 0 to 86400");
    *out_ns = (uint64_t)(sec * 1e9);
    return 0;
}

/* Whole microseconds from 0 to @max, as nanoseconds. */
static int vfs_opt_micros(const struct vfs_optarg *a, unsigned long max, uint64_t *out_ns)
{
    char *end = NULL;
    unsigned long us = a->val && *a->val >= '0' && *a->val <= '9' ? strtoul(a->val, &end, 10) : 0;
    if (!end || *end || us > max)
        return vfs_opt_fail(a, "expected microseconds from 0 to %lu", max);
    *out_ns = (uint64_t)us * 1000;
    return 0;
}

struct vfs_choice {
    const char *name;
    int value;
};

/* @val among @n choices; the message lists them ("a, b or c"). */
static int vfs_opt_choice(const struct vfs_optarg *a, const struct vfs_choice *c, int n,
                          int *out)
{
    for (int i = 0; a->val && i < n; i++)
        if (strcmp(a->val, c[i].name) == 0) {
            *out = c[i].value;
            return 0;
        }
    char list[128] = "";
    size_t len = 0;
    for (int i = 0; i < n && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                                i == 0 ? "" : i == n - 1 ? " or " : ", ", c[i].name);
    return vfs_opt_fail(a, "expected %s", list);
}

/* An option that takes no value: *@flag = @on. */
static int vfs_opt_flag(const struct vfs_optarg *a, int *flag, int on)
{
    if (a->val)
        return vfs_opt_fail(a, "takes no value");
    *flag = on;
    return 0;
}

static int vfs_opt_string(const struct vfs_optarg *a, const char *what, char **out)
{
    if (!a->val || !*a->val)
        return vfs_opt_fail(a, "needs a value (%s)", what);
    char *dup = strdup(a->val);
    if (!dup)
        return -ENOMEM;
    free(*out);
    *out = dup;
    return 0;
}

static int vfs_opt(struct ufuse_opts *o, const struct vfs_optarg *a)
{
    static const struct vfs_choice caches[] = {
        {"auto", CACHE_AUTO}, {"writethrough", CACHE_WRITETHROUGH},
        {"writeback", CACHE_WRITEBACK}, {"direct", CACHE_DIRECT}};
    static const struct vfs_choice attaches[] = {
        {"auto", CHAN_ATTACH_AUTO}, {"devfd", CHAN_ATTACH_DEVFD}, {"hook", CHAN_ATTACH_HOOK}};
    const char *key = a->key;
    int rc, v;

    if (strcmp(key, "cache") == 0) {
        rc = vfs_opt_choice(a, caches, (int)UFUSE_ARRAY_SIZE(caches), &v);
        if (rc == 0)
            o->cache = (enum ufuse_cache_mode)v;
        return rc;
    }
    if (strcmp(key, "attach") == 0) {
        rc = vfs_opt_choice(a, attaches, (int)UFUSE_ARRAY_SIZE(attaches), &v);
        if (rc == 0)
            o->attach = (enum chan_attach)v;
        return rc;
    }
    if (strcmp(key, "timeout") == 0)
        return vfs_opt_seconds(a, &o->timeout_ns);
    if (strcmp(key, "spin") == 0)
        return vfs_opt_micros(a, 1000, &o->spin_ns);
    if (strcmp(key, "dirty_expire") == 0)
        return vfs_opt_seconds(a, &o->dirty_expire_ns);
    if (strcmp(key, "max_read") == 0) {
        o->max_read_set = 1;
        return vfs_opt_size32(a, 4096, 1u << 20, &o->max_read);
    }
    if (strcmp(key, "max_write") == 0)
        return vfs_opt_size32(a, 4096, 1u << 24, &o->max_write);
    if (strcmp(key, "cache_size") == 0)
        return vfs_opt_size(a, MIN_CACHE_SIZE, 1ull << 40, &o->cache_size);
    if (strcmp(key, "readahead") == 0)
        return vfs_opt_size32(a, 0, 64u << 20, &o->readahead);
    if (strcmp(key, "block_size") == 0) {
        rc = vfs_opt_size32(a, 4096, 1u << 20, &o->block_size);
        if (rc == 0 && (o->block_size & (o->block_size - 1)))
            return vfs_opt_fail(a, "not a power of two (4k to 1m)");
        return rc;
    }
    if (strcmp(key, "splice") == 0 || strcmp(key, "nosplice") == 0)
        return vfs_opt_flag(a, &o->splice, key[0] == 's');
    if (strcmp(key, "share") == 0)
        return vfs_opt_flag(a, &o->share, 1);
    if (strcmp(key, "default_permissions") == 0)
        return vfs_opt_flag(a, &o->default_permissions, 1);
    if (strcmp(key, "outside_links") == 0)
        return vfs_opt_flag(a, &o->outside_links, 1);
    if (strcmp(key, "log") == 0)
        return vfs_opt_string(a, "a file name", &o->log_path);
    if (strcmp(key, "server_name") == 0)
        return vfs_opt_string(a, "a name", &o->server_name);
    snprintf(a->msg, a->msgsize, "unknown option '%s'", key);
    return -EINVAL;
}

int vfs_parse_opts(const char *s, struct ufuse_opts *o, char *msg, size_t msgsize)
{
    memset(o, 0, sizeof *o);
    o->cache = CACHE_AUTO;
    o->max_read = DEFAULT_MAX_READ;
    o->max_write = DEFAULT_MAX_WRITE;
    o->attach = CHAN_ATTACH_AUTO;
    o->cache_size = DEFAULT_CACHE_SIZE;
    o->block_size = DEFAULT_BLOCK_SIZE;
    o->readahead = DEFAULT_MAX_READAHEAD;
    o->dirty_expire_ns = (uint64_t)DEFAULT_DIRTY_EXPIRE_S * 1000000000u;
    o->spin_ns = DEFAULT_SPIN_US * 1000u;
    if (!s || !*s)
        return 0;
    char *copy = strdup(s);
    if (!copy)
        return -ENOMEM;
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && !rc;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = 0;
        struct vfs_optarg a = {.key = tok, .val = eq ? eq + 1 : NULL,
                               .msg = msg, .msgsize = msgsize};
        rc = vfs_opt(o, &a);
    }
    free(copy);
    if (rc)
        vfs_free_opts(o);
    return rc;
}

/* The data path: which cache mode is in effect, and the page cache. */
static int vfs_start_io(ufuse_t *s)
{
    struct io_mount *m = &s->io;
    const struct conn_params *p = &s->conn.p;
    m->conn = &s->conn;
    m->nodes = &s->nodes;
    m->cache_on = s->opts.cache != CACHE_DIRECT;
    m->writeback = s->opts.cache == CACHE_WRITEBACK ||
                   (s->opts.cache == CACHE_AUTO && (p->flags & FUSE_WRITEBACK_CACHE));
    m->size_inval = !(p->flags & FUSE_EXPLICIT_INVAL_DATA);
    m->auto_inval = (p->flags & FUSE_AUTO_INVAL_DATA) && m->size_inval;
    /* Readahead: the option, within INIT's max_readahead and an eighth
     * of the budget (the rest stays for the data being reused). */
    uint64_t ra = UFUSE_MIN((uint64_t)s->opts.readahead, (uint64_t)p->max_readahead);
    m->readahead = (uint32_t)UFUSE_MIN(ra, s->opts.cache_size / 8);
    /* Several READs of one direct read in flight: only when the server
     * takes them (ASYNC_DIO), and, splice offered, only if each reply fits
     * one datagram (else their pieces would interleave; servers do not say
     * whether they splice). */
    int one_datagram = !s->opts.splice || p->max_read <= SPLICE_MAX_READ;
    m->direct_read_depth = (p->flags & FUSE_ASYNC_DIO) && one_datagram ? DIRECT_READ_DEPTH : 1;
    struct cache_params cp = {
        .budget = s->opts.cache_size,
        .block_size = UFUSE_MIN(s->opts.block_size, p->max_read),
        /* Readahead runs READs in parallel: under splice they must each
         * fit one datagram, or their split replies would interleave. */
        .max_read = s->opts.splice ? UFUSE_MIN(p->max_read, SPLICE_MAX_READ) : p->max_read,
        .max_write = p->max_write,
        .dirty_expire_ns = s->opts.dirty_expire_ns,
    };
    if (cp.block_size < CACHE_PAGE_SIZE)
        cp.block_size = CACHE_PAGE_SIZE;
    if (s->opts.share && m->cache_on) {
        /* The cache and the attribute records in one memfd other
         * processes map (include/ufuse_share.h). */
        /* Under default_permissions no entry records: a reader's walk
         * would skip the search permission checks the session makes. */
        int rc = share_region_init(&s->region, (size_t)(cp.budget >> CACHE_PAGE_SHIFT),
                                   SHARE_ATTR_RECORDS,
                                   s->opts.default_permissions ? 0 : SHARE_ENTRY_RECORDS, 1);
        if (rc == 0)
            rc = node_table_share(&s->nodes, &s->region);
        if (rc) {
            share_region_destroy(&s->region);
            return rc;
        }
        cp.region = &s->region;
    }
    int rc = io_mount_init(m, &cp);
    if (rc)
        share_region_destroy(&s->region);
    return rc;
}

/* Why INIT failed, for the caller: how the server ended (it has been
 * reaped) and the last lines it wrote to stderr. */
static void vfs_start_failure(ufuse_t *s, int rc, int init_failed, char *msg, size_t msgsize)
{
    const struct chan *ch = &s->conn.ch;
    char who[96], how[128];
    if (s->log.name[0])
        snprintf(who, sizeof who, "server '%s'", s->log.name);
    else
        snprintf(who, sizeof who, "the server");
    if (rc == -ENOTCONN && ch->name[0]) {       /* a server we spawned */
        chan_describe_end(ch, how, sizeof how);
        strncat(how, " before answering INIT", sizeof how - strlen(how) - 1);
    } else if (rc == -ENOTCONN) {
        snprintf(how, sizeof how, "closed the socket before answering INIT");
    } else if (rc == -ETIMEDOUT) {
        snprintf(how, sizeof how, "did not answer INIT in time (timeout=)");
    } else if (init_failed) {
        snprintf(how, sizeof how, "failed INIT: %s", strerror(-rc));
    } else {
        snprintf(how, sizeof how, "could not be attached: %s", strerror(-rc));
    }
    int n = snprintf(msg, msgsize, "%s %s", who, how);
    if (ch->last_lines[0] && n >= 0 && (size_t)n < msgsize) {
        n += snprintf(msg + n, msgsize - (size_t)n, "; its last lines of stderr:");
        for (const char *p = ch->last_lines; *p && n >= 0 && (size_t)n < msgsize;) {
            int len = (int)strcspn(p, "\n");
            n += snprintf(msg + n, msgsize - (size_t)n, "\n  %.*s", len, p);
            p += len + (p[len] == '\n');
        }
    }
}

int vfs_start(ufuse_t *s, struct chan *ch, char *msg, size_t msgsize)
{
    const char *name = s->opts.server_name ? s->opts.server_name : ch->name;
    ulog_init(&s->log, s->logfp, name);
    pthread_mutex_init(&s->handles_mu, NULL);
    uint32_t max_read = s->opts.max_read;
    if (s->opts.splice && !s->opts.max_read_set)
        max_read = UFUSE_MIN(max_read, SPLICE_MAX_READ);
    struct conn_wants w = {
        .flags = vfs_init_flags | (s->opts.splice ? SPLICE_FLAGS : 0),
        .max_read = max_read,
        .max_write = s->opts.max_write,
        .max_readahead = UFUSE_MAX(s->opts.readahead, DEFAULT_MAX_READAHEAD),
        .timeout_ns = s->opts.timeout_ns,
        .spin_ns = s->opts.spin_ns,
    };
    int rc = conn_start(&s->conn, ch, &s->log, &w);
    int init_failed = rc != 0;
    if (rc == 0) {
        chan_started(&s->conn.ch);
        rc = node_table_init(&s->nodes, &s->conn);
    }
    if (rc == 0) {
        rc = vfs_start_io(s);
        if (rc)
            node_table_destroy(&s->nodes);
    }
    if (rc == 0) /* the tables exist: notifications may act on them */
        conn_set_notify(&s->conn, vfs_notify, s);
    if (rc) {
        /* End what the attempt left running; the caller gets the whole
         * story in @msg (how the server ended, its last lines of stderr). */
        chan_discard(&s->conn.ch, 1000, &s->log);
        if (msg && msgsize)
            vfs_start_failure(s, rc, init_failed, msg, msgsize);
        conn_destroy(&s->conn);
        pthread_mutex_destroy(&s->handles_mu);
        return rc == -ENOTCONN ? -ENOTCONN : rc;
    }
    return 0;
}

int vfs_spawn(ufuse_t *s, char *const argv[], int log_fd, char *msg, size_t msgsize)
{
    struct chan_spawn_opts so = {.attach = s->opts.attach, .log_fd = log_fd};
    struct chan ch;
    int rc = chan_spawn(&ch, argv, &so, msg, msgsize);
    if (rc)
        return rc;
    int fallback = ch.hook_fallback;
    rc = vfs_start(s, &ch, msg, msgsize);
    if (rc != -ENOTCONN || !fallback)
        return rc;
    /* chan.c, A3: it refused /dev/fd/N; vfs_start discarded the attempt. */
    ulog_msg(&s->log, "the server ended before INIT with /dev/fd/N as its mountpoint; "
             "starting it again with attach=hook");
    so.attach = CHAN_ATTACH_HOOK;
    rc = chan_spawn(&ch, argv, &so, msg, msgsize);
    return rc ? rc : vfs_start(s, &ch, msg, msgsize);
}

int vfs_unmount(ufuse_t *s)
{
    /* Release what the caller left open. */
    while (s->files)
        vfs_close(s->files, 1);
    while (s->dirs)
        vfs_closedir(s->dirs);
    /* Whatever is still dirty (nothing, once every file is closed). */
    io_mount_sync(&s->io);
    /* The tables go: notifications (the watcher's, or arriving while the
     * FORGETs and RELEASEs below are answered) may no longer reach them. */
    conn_set_notify(&s->conn, NULL, NULL);
    io_mount_destroy(&s->io);
    /* Outstanding FORGETs (batched).  No DESTROY: the kernel sends it only
     * for fuseblk mounts; every server ends on the socket's EOF. */
    node_table_destroy(&s->nodes);
    share_region_destroy(&s->region);
    conn_drain(&s->conn, UNMOUNT_DRAIN_MS);
    int clean = !conn_dead(&s->conn) && conn_unanswered(&s->conn) == 0;
    int rc = chan_close(&s->conn.ch, UNMOUNT_REAP_MS, clean, &s->log);
    conn_destroy(&s->conn);
    vfs_releases_free(s);
    pthread_mutex_destroy(&s->handles_mu);
    return rc;
}
