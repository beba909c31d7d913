/*
 * mount.c - session life: options, attaching (spawn or fd), INIT,
 * unmount.  Seed counterpart: FreeBSD fuse_vfsops.c (mount/unmount).
 *
 * Locks: none of its own; a session is set up before it is returned to
 * the caller and torn down after the caller's last call.
 */
#include "vfs/vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Init flags this client honours (what it offers at INIT). */
static const uint64_t vfs_init_flags =
    FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_ATOMIC_O_TRUNC | FUSE_AUTO_INVAL_DATA |
    FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS |
    FUSE_HANDLE_KILLPRIV | FUSE_MAX_PAGES | FUSE_EXPLICIT_INVAL_DATA |
    FUSE_CACHE_SYMLINKS | FUSE_EXPORT_SUPPORT | FUSE_WRITEBACK_CACHE | FUSE_INIT_EXT |
    /* Modes go out unmasked (umask 0 in the request) whatever the server
     * asks, so offering DONT_MASK promises nothing new (fuse-overlayfs
     * requires it). */
    FUSE_DONT_MASK;

#define DEFAULT_MAX_READ (128u * 1024)
/*
 * Splicing.  The kernel offers FUSE_SPLICE_WRITE/MOVE/READ and libfuse
 * then writes large replies with splice(2).  On our SEQPACKET socket a
 * spliced reply larger than about 60 KiB arrives as several datagrams,
 * and replies spliced by different server threads can interleave, which
 * no reader can untangle.  So splicing is not offered unless asked for
 * (-o splice), and then READs are capped at 56 KiB so that a reply always
 * fits one datagram (design.md measured the first piece at 61,424 bytes).
 * Servers that splice without being offered it are still read correctly
 * when one reply at a time is split (ipc.c reassembles it); interleaved
 * split replies fail with EIO, never with wrong data.
 */
#define SPLICE_MAX_READ (56u * 1024)
#define SPLICE_FLAGS ((uint64_t)FUSE_SPLICE_WRITE | FUSE_SPLICE_MOVE | FUSE_SPLICE_READ)
#define DEFAULT_MAX_WRITE (1024u * 1024)
#define DEFAULT_MAX_READAHEAD (4096u * 1024)
#define DEFAULT_CACHE_SIZE (256ull << 20)
#define MIN_CACHE_SIZE (1ull << 20)
#define DEFAULT_BLOCK_SIZE 4096u
#define DEFAULT_DIRTY_EXPIRE_S 30
#define UNMOUNT_DRAIN_MS 2000
#define UNMOUNT_REAP_MS 5000

void vfs_free_opts(struct ufuse_opts *o)
{
    free(o->log_path);
    free(o->server_name);
    o->log_path = o->server_name = NULL;
}

static int vfs_opt_size(const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t x;
    if (ufuse_parse_size(v, &x) != 0 || x < min || x > max)
        return -EINVAL;
    *out = (uint32_t)x;
    return 0;
}

static int vfs_opt(struct ufuse_opts *o, const char *key, const char *val)
{
    if (strcmp(key, "cache") == 0 && val) {
        static const char *const modes[] = {"auto", "direct", "writethrough", "writeback"};
        for (int i = 0; i < 4; i++)
            if (strcmp(val, modes[i]) == 0) {
                o->cache = (enum ufuse_cache_mode)i;
                return 0;
            }
        return -EINVAL;
    }
    if (strcmp(key, "timeout") == 0 && val) {
        char *end;
        double sec = strtod(val, &end);
        if (*end || end == val || !(sec >= 0) || sec > 86400)
            return -EINVAL;
        o->timeout_ns = (uint64_t)(sec * 1e9);
        return 0;
    }
    if (strcmp(key, "max_read") == 0 && val) {
        o->max_read_set = 1;
        return vfs_opt_size(val, 4096, 1u << 20, &o->max_read);
    }
    if (strcmp(key, "splice") == 0 && !val) {
        o->splice = 1;
        return 0;
    }
    if (strcmp(key, "cache_size") == 0 && val) {
        uint64_t x;
        if (ufuse_parse_size(val, &x) != 0 || x < MIN_CACHE_SIZE || x > (1ull << 40))
            return -EINVAL;
        o->cache_size = x;
        return 0;
    }
    if (strcmp(key, "block_size") == 0 && val) {
        int rc = vfs_opt_size(val, 4096, 1u << 20, &o->block_size);
        return rc ? rc : (o->block_size & (o->block_size - 1)) ? -EINVAL : 0;
    }
    if (strcmp(key, "readahead") == 0 && val) {
        uint64_t x;
        if (ufuse_parse_size(val, &x) != 0 || x > (64u << 20))
            return -EINVAL;
        o->readahead = (uint32_t)x;
        return 0;
    }
    if (strcmp(key, "dirty_expire") == 0 && val) {
        char *end;
        double sec = strtod(val, &end);
        if (*end || end == val || !(sec >= 0) || sec > 86400)
            return -EINVAL;
        o->dirty_expire_ns = (uint64_t)(sec * 1e9);
        return 0;
    }
    if (strcmp(key, "max_write") == 0 && val)
        return vfs_opt_size(val, 4096, 1u << 24, &o->max_write);
    if (strcmp(key, "log") == 0 && val && *val) {
        free(o->log_path);
        o->log_path = strdup(val);
        return o->log_path ? 0 : -ENOMEM;
    }
    if (strcmp(key, "server_name") == 0 && val && *val) {
        free(o->server_name);
        o->server_name = strdup(val);
        return o->server_name ? 0 : -ENOMEM;
    }
    if (strcmp(key, "attach") == 0 && val) {
        if (strcmp(val, "auto") == 0)
            o->attach = CHAN_ATTACH_AUTO;
        else if (strcmp(val, "devfd") == 0)
            o->attach = CHAN_ATTACH_DEVFD;
        else if (strcmp(val, "hook") == 0)
            o->attach = CHAN_ATTACH_HOOK;
        else
            return -EINVAL;
        return 0;
    }
    return -EINVAL;
}

int vfs_parse_opts(const char *s, struct ufuse_opts *o)
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
        rc = vfs_opt(o, tok, eq ? eq + 1 : NULL);
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
    return io_mount_init(m, &cp);
}

int vfs_start(ufuse_t *s, struct chan *ch)
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
    };
    int rc = conn_start(&s->conn, ch, &s->log, &w);
    if (rc == 0)
        rc = node_table_init(&s->nodes, &s->conn);
    if (rc == 0) {
        rc = vfs_start_io(s);
        if (rc)
            node_table_destroy(&s->nodes);
    }
    if (rc == 0) /* the tables exist: notifications may act on them */
        conn_set_notify(&s->conn, vfs_notify, s);
    if (rc) {
        chan_discard(&s->conn.ch, 1000, &s->log);
        conn_destroy(&s->conn);
        pthread_mutex_destroy(&s->handles_mu);
        return rc == -ENOTCONN ? -ENOTCONN : rc;
    }
    return 0;
}

int vfs_spawn(ufuse_t *s, char *const argv[], int log_fd)
{
    struct chan_spawn_opts so = {.attach = s->opts.attach, .log_fd = log_fd};
    struct chan ch;
    int rc = chan_spawn(&ch, argv, &so);
    if (rc)
        return rc;
    int fallback = ch.hook_fallback;
    rc = vfs_start(s, &ch);
    if (rc != -ENOTCONN || !fallback)
        return rc;
    /* chan.c, A3: it refused /dev/fd/N; vfs_start discarded the attempt. */
    ulog_msg(&s->log, "the server ended before INIT with /dev/fd/N as its mountpoint; "
             "starting it again with attach=hook");
    so.attach = CHAN_ATTACH_HOOK;
    rc = chan_spawn(&ch, argv, &so);
    return rc ? rc : vfs_start(s, &ch);
}

int vfs_unmount(ufuse_t *s)
{
    /* Release what the caller left open. */
    while (s->files)
        vfs_close(s->files);
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
    conn_drain(&s->conn, UNMOUNT_DRAIN_MS);
    int clean = !conn_dead(&s->conn) && conn_unanswered(&s->conn) == 0;
    int rc = chan_close(&s->conn.ch, UNMOUNT_REAP_MS, clean, &s->log);
    conn_destroy(&s->conn);
    pthread_mutex_destroy(&s->handles_mu);
    return rc;
}
