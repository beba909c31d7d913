/*
 * fuzz-session.c - libFuzzer target: a whole session (ufuse_mount_fd to
 * ufuse_unmount) against a server the fuzzer plays.
 *
 * The server owns the other end of the socketpair and runs inside the
 * library's receive (see __wrap_chan_recv).  It keeps the requests it has
 * read and not yet answered ("pending") and, for every reply and
 * notification, takes its next action from the input:
 *
 *   input   = config[5] action*
 *   config  = [0] cache mode (bits 0-1: direct, writethrough, writeback,
 *                 auto), protocol minor (bits 2-3: 38, 23, 12, 8),
 *                 max_write (bits 4-5: 128k, 4k, 16k, 1m), default
 *                 FOPEN flags (bits 6-7: none, KEEP_CACHE, DIRECT_IO,
 *                 KEEP_CACHE|NONSEEKABLE)
 *             [1..3] 24 bits toggling INIT flags (fuzz_flag_bits) in the
 *                 default grant
 *             [4] the script's sections to run (fuzz_script; 0: all;
 *                 bit 7 reads the big file on past the cache's size)
 *   action  = one byte, kind in the low 4 bits (enum fuzz_act), the
 *             request it answers in the high 4 (fuzz_pick), then its
 *             operands (see fuzz_step)
 *
 * Every reply starts as a well-formed answer from a small model of a file
 * system (fuzz_model_reply: names decide types, sizes are tracked), and
 * the action can keep it, replace it by an error, change fields or bytes,
 * break its lengths, split it over two datagrams, send it twice, or hold
 * it back until more requests arrive; other actions send notifications,
 * stray replies, or close the socket.  A request whose reply was not the
 * model's stays pending (the client may have dropped the reply) and is
 * answered again, so every request gets a well-formed answer in the end:
 * when the input runs out, everything pending and everything that comes
 * is answered from the model.  So every call returns; the session's
 * timeout= option (FUZZ_TIMEOUT_S) is only a backstop and its firing is
 * reported as a hang.
 *
 * Meanwhile the main thread runs a fixed script of calls (fuzz_script):
 * path lookups and stat, open/read/write in the cache mode the config
 * chose, sequential reads long enough for readahead and past the cache's
 * size, write-back at fsync and close, O_DIRECT on a cached file (aligned
 * and not: the alignment rule), truncate, readdir(plus), xattrs, namespace
 * calls, unmount.  After each call:
 *  - a failure must be an errno documented for that call (fuzz_errs: the
 *    errors of the corresponding system call, plus ENOTCONN, EIO, ENOMEM)
 *    or one the server answered during the session (passed through, as a
 *    kernel mount passes them; ufuse.h says so);
 *  - data read is the file's (fuzz_check_data), while the server sent no
 *    READ data but the model's;
 *  - the page cache's invariants (cache_obj_sane) hold for every object.
 * A violation aborts with the call named (FUZZ_SESSION_TRACE=1 in the
 * environment prints every call's result); crashes, sanitizer reports and
 * leaks are libFuzzer's.  The server's own bookkeeping trusts nothing the
 * client sends beyond bounds checks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ufuse.h"
#include "vfs/vfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A call blocked this long is a hang (the server answers everything). */
#define FUZZ_TIMEOUT_S "5"
#define FUZZ_MAX_PENDING 64
#define FUZZ_BODY_KEEP 512        /* request body bytes the server keeps */
#define FUZZ_MAX_NAMES 24         /* model nodes besides the root */
#define FUZZ_BIG_SIZE (1280u << 10) /* more than the 1 MiB cache: eviction */
#define FUZZ_SMALL_SIZE (12u << 10)
#define FUZZ_MAX_REPLY (1u << 20) /* the largest READ the model answers */
#define FUZZ_DEFER_WAIT_MS 1      /* a held reply waits this long for more requests */
#define FUZZ_DEFER_WAITS 16       /* at most this many such waits per input */

/* ---- the server ------------------------------------------------------------------ */

enum fuzz_act {
    ACT_ANSWER,      /* the model's reply (kinds 0-4) */
    ACT_ERROR = 5,   /* an error reply: operand errno selector */
    ACT_XOR,         /* the model's reply with bytes flipped: n, then (offset, mask) pairs */
    ACT_FIELD,       /* the model's reply with a 4- or 8-byte field set to a boundary value */
    ACT_LENGTH,      /* the model's reply with a broken length */
    ACT_RAW,         /* a payload from the input: n, then n bytes */
    ACT_DUP,         /* send the last reply again */
    ACT_DEFER,       /* hold the picked request until n more requests came */
    ACT_SPLIT,       /* the next reply goes out in two datagrams */
    ACT_NOTIFY,      /* an unsolicited notification */
    ACT_CLOSE,       /* close the socket (operand < 16), else like ACT_ANSWER */
    ACT_STRAY,       /* a reply to a request not (or no longer) pending */
};

struct fuzz_req {
    struct fuse_in_header h;
    uint32_t bodylen;                 /* kept: min(real, FUZZ_BODY_KEEP) */
    _Alignas(8) unsigned char body[FUZZ_BODY_KEEP + 1];
    unsigned defer;                   /* held until this many more requests arrive */
    int answered;                     /* sent a reply other than the model's */
};

struct fuzz_node {
    char name[32];
    uint32_t mode;
    uint64_t size;
};

struct fuzz_srv {
    int fd;
    const uint8_t *in;
    size_t len, pos;
    /* INIT and FOPEN defaults, from the config bytes */
    uint32_t minor, max_write, fopen_flags;
    uint64_t flags;
    /* requests read and not answered for good, oldest first */
    struct fuzz_req pend[FUZZ_MAX_PENDING];
    int npend;
    uint64_t last_unique;             /* of the last reply sent */
    unsigned char last[8192];         /* its first bytes, for ACT_DUP */
    size_t lastlen;
    unsigned split;                   /* split the next reply at this offset (0: no) */
    unsigned waits;                   /* waits for held requests so far (FUZZ_DEFER_WAITS) */
    int held_expired;                 /* a wait passed without a new request */
    int max_unread;                   /* reply bytes the client may leave unread */
    int eof;                          /* the client closed, or we did */
    struct fuzz_node nodes[FUZZ_MAX_NAMES + 2]; /* by nodeid; 1 is the root */
    int nnodes;
    _Atomic uint64_t sent_errs[8];    /* errnos answered (the harness reads them) */
    atomic_int tainted;               /* READ data sent that is not the model's */
};

static unsigned char fuzz_pattern[FUZZ_MAX_REPLY + 256];
static unsigned char fuzz_reply_buf[FUZZ_MAX_REPLY + 4096];

/* INIT flags the config bytes toggle (bit i of config[1..3]). */
static const uint64_t fuzz_flag_bits[24] = {
    FUSE_ASYNC_READ, FUSE_POSIX_LOCKS, FUSE_FILE_OPS, FUSE_ATOMIC_O_TRUNC,
    FUSE_EXPORT_SUPPORT, FUSE_BIG_WRITES, FUSE_DONT_MASK, FUSE_SPLICE_WRITE,
    FUSE_SPLICE_MOVE, FUSE_SPLICE_READ, FUSE_FLOCK_LOCKS, FUSE_HAS_IOCTL_DIR,
    FUSE_AUTO_INVAL_DATA, FUSE_DO_READDIRPLUS, FUSE_READDIRPLUS_AUTO, FUSE_ASYNC_DIO,
    FUSE_WRITEBACK_CACHE, FUSE_NO_OPEN_SUPPORT, FUSE_PARALLEL_DIROPS, FUSE_HANDLE_KILLPRIV,
    FUSE_POSIX_ACL, FUSE_MAX_PAGES, FUSE_CACHE_SYMLINKS, FUSE_EXPLICIT_INVAL_DATA,
};
static const uint64_t fuzz_default_flags =
    FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS |
    FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES;

/* Values ACT_FIELD writes (as 4 or 8 bytes). */
static const uint64_t fuzz_boundary[16] = {
    0, 1, 2, 0x7f, 0x1000, 0xfff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff,
    0x100000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull, 0170000, 040000,
};

/* Errors ACT_ERROR answers (selector < 0xe0); the rest are malformed. */
static const int32_t fuzz_errnos[] = {
    ENOENT, EIO, EACCES, EPERM, ENOSPC, ENOSYS, EINTR, EAGAIN, EEXIST, ENOTDIR,
    EISDIR, ERANGE, ENODATA, EOPNOTSUPP, ENOTEMPTY, EXDEV, ESTALE, EFBIG, E2BIG,
    ENAMETOOLONG, EBADF, EINVAL, ETIMEDOUT, ENOTCONN, ENOMEM, EPROTO, EOVERFLOW,
    EDQUOT, EROFS, ELOOP, ENXIO, ESPIPE, EMLINK, ENOBUFS, EBUSY, ETXTBSY, 511,
};
static const int32_t fuzz_bad_errors[] = {1, -512, 0x7fffffff, INT32_MIN, 0};

static int fuzz_byte(struct fuzz_srv *v)
{
    return v->pos < v->len ? v->in[v->pos++] : 0;
}

static void fuzz_note_err(struct fuzz_srv *v, int32_t error)
{
    if (error < 0 && error > -512)
        atomic_fetch_or(&v->sent_errs[-error / 64], 1ull << (-error % 64));
}

static int fuzz_was_sent(struct fuzz_srv *v, int e)
{
    return e > 0 && e < 512 && (atomic_load(&v->sent_errs[e / 64]) & (1ull << (e % 64)));
}

/* Send one datagram; a failure means the client is gone. */
static void fuzz_send(struct fuzz_srv *v, const void *buf, size_t len)
{
    if (v->eof)
        return;
    if (send(v->fd, buf, len, MSG_NOSIGNAL) < 0)
        v->eof = 1;
}

static void fuzz_send_reply(struct fuzz_srv *v, const void *buf, size_t len)
{
    const struct fuse_out_header *oh = buf;
    if (len >= sizeof *oh) {
        fuzz_note_err(v, oh->error);
        v->last_unique = oh->unique;
    }
    v->lastlen = UFUSE_MIN(len, sizeof v->last);
    memcpy(v->last, buf, v->lastlen);
    if (v->split && len > sizeof *oh) {
        /* The header says the whole length; the rest follows alone. */
        size_t at = sizeof *oh + (v->split - 1) % (len - sizeof *oh);
        v->split = 0;
        fuzz_send(v, buf, at);
        fuzz_send(v, (const char *)buf + at, len - at);
        return;
    }
    v->split = 0;
    fuzz_send(v, buf, len);
}

/* ---- the model: a small file system answering like a sane server ---------- */

/* The node of @name, made on first sight: 'd...' directories, 'l...'
 * symlinks, 'b...' big files, others small files.  A leading 'n' (a new
 * name) does not exist until created.  0 when the table is full. */
static uint64_t fuzz_node_of(struct fuzz_srv *v, const char *name, size_t len)
{
    len = strnlen(name, UFUSE_MIN(len, sizeof v->nodes[0].name - 1));
    for (int i = 2; i < v->nnodes; i++)
        if (strlen(v->nodes[i].name) == len && memcmp(v->nodes[i].name, name, len) == 0)
            return (uint64_t)i;
    if (v->nnodes >= FUZZ_MAX_NAMES + 2)
        return 0;
    struct fuzz_node *n = &v->nodes[v->nnodes];
    memcpy(n->name, name, len);
    n->name[len] = 0;
    char t = name[0] == 'n' ? name[1] : name[0];
    n->mode = t == 'd' ? S_IFDIR | 0755 : t == 'l' ? S_IFLNK | 0777 : S_IFREG | 0644;
    n->size = t == 'b' ? FUZZ_BIG_SIZE : t == 'd' ? 4096 : t == 'l' ? 1 : FUZZ_SMALL_SIZE;
    return (uint64_t)v->nnodes++;
}

static struct fuzz_node *fuzz_node(struct fuzz_srv *v, uint64_t nodeid)
{
    return nodeid >= 1 && nodeid < (uint64_t)v->nnodes ? &v->nodes[nodeid] : NULL;
}

static void fuzz_attr(struct fuzz_srv *v, uint64_t nodeid, struct fuse_attr *a)
{
    struct fuzz_node *n = fuzz_node(v, nodeid);
    memset(a, 0, sizeof *a);
    a->ino = nodeid;
    a->size = n ? n->size : 0;
    a->blocks = (a->size + 511) / 512;
    a->mode = n ? n->mode : S_IFREG | 0644;
    a->nlink = 1;
    a->uid = (uint32_t)getuid();
    a->gid = (uint32_t)getgid();
    a->blksize = 4096;
}

static size_t fuzz_entry(struct fuzz_srv *v, uint64_t nodeid, void *p)
{
    struct fuse_entry_out *e = p;
    memset(e, 0, sizeof *e);
    e->nodeid = nodeid;
    e->generation = 1;
    e->entry_valid = 1;
    e->attr_valid = 1;
    fuzz_attr(v, nodeid, &e->attr);
    return v->minor < 9 ? FUSE_COMPAT_ENTRY_OUT_SIZE : sizeof *e;
}

static size_t fuzz_attr_out(struct fuzz_srv *v, uint64_t nodeid, void *p)
{
    struct fuse_attr_out *a = p;
    memset(a, 0, sizeof *a);
    a->attr_valid = 1;
    fuzz_attr(v, nodeid, &a->attr);
    return v->minor < 9 ? FUSE_COMPAT_ATTR_OUT_SIZE : sizeof *a;
}

static size_t fuzz_dirent(struct fuzz_srv *v, char *p, int plus, const char *name,
                          uint64_t off)
{
    size_t n = 0;
    uint64_t nodeid = strcmp(name, ".") == 0 || strcmp(name, "..") == 0
                          ? 1 : fuzz_node_of(v, name, strlen(name));
    if (plus) {
        struct fuse_entry_out e;
        fuzz_entry(v, nodeid, &e);
        if (nodeid == 1)
            e.nodeid = 0; /* "." and "..": no lookup counted */
        memcpy(p, &e, sizeof e);
        n += sizeof e;
    }
    struct fuse_dirent d = {.ino = nodeid, .off = off, .namelen = (uint32_t)strlen(name)};
    struct fuzz_node *fn = fuzz_node(v, nodeid);
    d.type = fn ? (fn->mode & S_IFMT) >> 12 : DT_DIR;
    memcpy(p + n, &d, sizeof d);
    memcpy(p + n + sizeof d, name, d.namelen);
    size_t rec = FUSE_DIRENT_ALIGN(sizeof d + d.namelen);
    memset(p + n + sizeof d + d.namelen, 0, rec - sizeof d - d.namelen);
    return n + rec;
}

/* The name in a request body after @skip bytes (NUL-terminated or not). */
static const char *fuzz_name(const struct fuzz_req *r, size_t skip, size_t *len)
{
    if (skip >= r->bodylen) {
        *len = 0;
        return "";
    }
    *len = strnlen((const char *)r->body + skip, r->bodylen - skip);
    return (const char *)r->body + skip;
}

/* Entry reply for the name at @skip (or ENOENT). */
static int32_t fuzz_entry_for(struct fuzz_srv *v, const struct fuzz_req *r, size_t skip,
                              int create, char *p, size_t *plen)
{
    size_t nl;
    const char *name = fuzz_name(r, skip, &nl);
    if (!nl)
        return -EINVAL;
    if (name[0] == 'n' && !create) {
        for (int i = 2; i < v->nnodes; i++)
            if (strlen(v->nodes[i].name) == nl && memcmp(v->nodes[i].name, name, nl) == 0)
                goto found;
        return -ENOENT;
    }
found:;
    uint64_t id = fuzz_node_of(v, name, nl);
    if (!id)
        return -ENOSPC;
    if (create && v->nodes[id].mode == (S_IFREG | 0644) && name[0] == 'n')
        v->nodes[id].size = 0;
    *plen = fuzz_entry(v, id, p);
    return 0;
}

/*
 * The model's answer to @r: payload into @p (*@plen bytes), returns the
 * error (0 or -errno).
 */
static int32_t fuzz_model_reply(struct fuzz_srv *v, const struct fuzz_req *r, char *p,
                                size_t *plen)
{
    const unsigned char *b = r->body;
    struct fuzz_node *n = fuzz_node(v, r->h.nodeid);
    *plen = 0;
    switch (r->h.opcode) {
    case FUSE_INIT: {
        const struct fuse_init_in *ii = (const void *)b;
        struct fuse_init_out *o = (void *)p;
        memset(o, 0, sizeof *o);
        o->major = FUSE_KERNEL_VERSION;
        o->minor = v->minor;
        o->max_readahead = r->bodylen >= 8 ? ii->max_readahead : 65536;
        o->flags = (uint32_t)v->flags;
        o->flags2 = (uint32_t)(v->flags >> 32);
        o->max_background = 12;
        o->congestion_threshold = 9;
        o->max_write = v->max_write;
        o->time_gran = 1;
        o->max_pages = 256;
        *plen = v->minor < 5 ? FUSE_COMPAT_INIT_OUT_SIZE
                : v->minor < 23 ? FUSE_COMPAT_22_INIT_OUT_SIZE : sizeof *o;
        return 0;
    }
    case FUSE_LOOKUP:
        return fuzz_entry_for(v, r, 0, 0, p, plen);
    case FUSE_MKDIR:
        return fuzz_entry_for(v, r, sizeof(struct fuse_mkdir_in), 1, p, plen);
    case FUSE_MKNOD:
        return fuzz_entry_for(v, r, v->minor < 12 ? FUSE_COMPAT_MKNOD_IN_SIZE
                                                  : sizeof(struct fuse_mknod_in), 1, p, plen);
    case FUSE_SYMLINK:
        return fuzz_entry_for(v, r, 0, 1, p, plen);
    case FUSE_LINK: {
        const struct fuse_link_in *li = (const void *)b;
        if (r->bodylen < sizeof *li || !fuzz_node(v, li->oldnodeid))
            return -ENOENT;
        *plen = fuzz_entry(v, li->oldnodeid, p);
        return 0;
    }
    case FUSE_CREATE: {
        int32_t e = fuzz_entry_for(v, r, sizeof(struct fuse_create_in), 1, p, plen);
        if (e)
            return e;
        struct fuse_entry_out *eo = (void *)p;
        struct fuse_open_out oo = {.fh = eo->nodeid * 16 + 1, .open_flags = v->fopen_flags};
        memcpy(p + *plen, &oo, sizeof oo);
        *plen += sizeof oo;
        return 0;
    }
    case FUSE_GETATTR:
        *plen = fuzz_attr_out(v, r->h.nodeid, p);
        return 0;
    case FUSE_SETATTR: {
        const struct fuse_setattr_in *si = (const void *)b;
        if (n && r->bodylen >= sizeof *si && (si->valid & FATTR_SIZE))
            n->size = UFUSE_MIN(si->size, (uint64_t)1 << 40);
        if (n && r->bodylen >= sizeof *si && (si->valid & FATTR_MODE))
            n->mode = (n->mode & S_IFMT) | (si->mode & 07777);
        *plen = fuzz_attr_out(v, r->h.nodeid, p);
        return 0;
    }
    case FUSE_OPEN:
    case FUSE_OPENDIR: {
        struct fuse_open_out oo = {.fh = r->h.nodeid * 16 + 2,
                                   .open_flags = r->h.opcode == FUSE_OPEN ? v->fopen_flags : 0};
        memcpy(p, &oo, sizeof oo);
        *plen = sizeof oo;
        return 0;
    }
    case FUSE_READ: {
        const struct fuse_read_in *ri = (const void *)b;
        uint64_t size = n ? n->size : 0;
        if (r->bodylen < 24)
            return -EINVAL;
        if (ri->offset < size)
            *plen = (size_t)UFUSE_MIN((uint64_t)UFUSE_MIN(ri->size, FUZZ_MAX_REPLY),
                                      size - ri->offset);
        memcpy(p, fuzz_pattern + ri->offset % 251, *plen);
        return 0;
    }
    case FUSE_WRITE: {
        const struct fuse_write_in *wi = (const void *)b;
        if (r->bodylen < 24)
            return -EINVAL;
        if (n && wi->offset + wi->size > n->size)
            n->size = UFUSE_MIN(wi->offset + wi->size, (uint64_t)1 << 40);
        struct fuse_write_out wo = {.size = wi->size};
        memcpy(p, &wo, sizeof wo);
        *plen = sizeof wo;
        return 0;
    }
    case FUSE_STATFS: {
        struct fuse_statfs_out so = {.st = {.blocks = 1000, .bfree = 500, .bavail = 500,
                                            .files = 100, .ffree = 50, .bsize = 4096,
                                            .namelen = 255, .frsize = 4096}};
        memcpy(p, &so, sizeof so);
        *plen = v->minor < 4 ? FUSE_COMPAT_STATFS_SIZE : sizeof so;
        return 0;
    }
    case FUSE_READLINK:
        memcpy(p, "bfile", 5);
        *plen = 5;
        return 0;
    case FUSE_GETXATTR:
    case FUSE_LISTXATTR: {
        static const char list[] = "user.a\0user.b";
        const char *val = r->h.opcode == FUSE_GETXATTR ? "value" : list;
        size_t vlen = r->h.opcode == FUSE_GETXATTR ? 5 : sizeof list;
        const struct fuse_getxattr_in *gi = (const void *)b;
        if (r->bodylen < sizeof *gi)
            return -EINVAL;
        if (gi->size == 0) {
            struct fuse_getxattr_out go = {.size = (uint32_t)vlen};
            memcpy(p, &go, sizeof go);
            *plen = sizeof go;
            return 0;
        }
        if (gi->size < vlen)
            return -ERANGE;
        memcpy(p, val, vlen);
        *plen = vlen;
        return 0;
    }
    case FUSE_READDIR:
    case FUSE_READDIRPLUS: {
        static const char *const names[] = {".", "..", "file", "bbig", "dsub", "link"};
        const struct fuse_read_in *ri = (const void *)b;
        if (r->bodylen < 24)
            return -EINVAL;
        int plus = r->h.opcode == FUSE_READDIRPLUS;
        size_t max = UFUSE_MIN(ri->size, 4096u);
        for (uint64_t i = ri->offset; i < UFUSE_ARRAY_SIZE(names); i++) {
            char ent[sizeof(struct fuse_direntplus) + 64];
            size_t el = fuzz_dirent(v, ent, plus, names[i], i + 1);
            if (*plen + el > max)
                break;
            memcpy(p + *plen, ent, el);
            *plen += el;
        }
        return 0;
    }
    case FUSE_LSEEK: {
        const struct fuse_lseek_in *li = (const void *)b;
        if (r->bodylen < sizeof *li)
            return -EINVAL;
        struct fuse_lseek_out lo = {.offset = li->offset};
        memcpy(p, &lo, sizeof lo);
        *plen = sizeof lo;
        return 0;
    }
    case FUSE_COPY_FILE_RANGE: {
        const struct fuse_copy_file_range_in *ci = (const void *)b;
        if (r->bodylen < sizeof *ci)
            return -EINVAL;
        struct fuse_write_out wo = {.size = (uint32_t)UFUSE_MIN(ci->len, (uint64_t)UINT32_MAX)};
        memcpy(p, &wo, sizeof wo);
        *plen = sizeof wo;
        return 0;
    }
    case FUSE_FLUSH: case FUSE_FSYNC: case FUSE_FSYNCDIR: case FUSE_RELEASE:
    case FUSE_RELEASEDIR: case FUSE_UNLINK: case FUSE_RMDIR: case FUSE_RENAME:
    case FUSE_RENAME2: case FUSE_SETXATTR: case FUSE_REMOVEXATTR: case FUSE_ACCESS:
    case FUSE_FALLOCATE: case FUSE_DESTROY:
        return 0;
    default:
        return -ENOSYS;
    }
}

/* ---- pending requests ------------------------------------------------------------ */

static int fuzz_noreply(uint32_t opcode, uint64_t unique)
{
    return opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET ||
           opcode == FUSE_NOTIFY_REPLY || opcode == FUSE_INTERRUPT ||
           (unique & PROTO_INT_REQ_BIT);
}

static void fuzz_drop(struct fuzz_srv *v, int i)
{
    memmove(&v->pend[i], &v->pend[i + 1], sizeof v->pend[0] * (size_t)(v->npend - i - 1));
    v->npend--;
}

/* The model's reply to pending request @i, which then is done. */
static void fuzz_answer_model(struct fuzz_srv *v, int i)
{
    struct fuse_out_header *oh = (void *)fuzz_reply_buf;
    size_t plen;
    int32_t e = fuzz_model_reply(v, &v->pend[i], (char *)(oh + 1), &plen);
    if (e)
        plen = 0;
    *oh = (struct fuse_out_header){.len = (uint32_t)(sizeof *oh + plen), .error = e,
                                   .unique = v->pend[i].h.unique};
    fuzz_send_reply(v, oh, oh->len);
    fuzz_drop(v, i);
}

static int fuzz_recv_one(struct fuzz_srv *v, int flags)
{
    static __thread unsigned char buf[sizeof(struct fuse_in_header) + FUZZ_BODY_KEEP];
    ssize_t n = recv(v->fd, buf, sizeof buf, flags | MSG_TRUNC);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        v->eof = 1;
        return -1;
    }
    if (n < (ssize_t)sizeof(struct fuse_in_header))
        return n < 0 ? 0 : 1;
    struct fuse_in_header h;
    memcpy(&h, buf, sizeof h);
    if (fuzz_noreply(h.opcode, h.unique))
        return 1;
    for (int i = 0; i < v->npend; i++)
        if (v->pend[i].defer)
            v->pend[i].defer--;
    if (v->npend == FUZZ_MAX_PENDING)
        fuzz_answer_model(v, 0);
    struct fuzz_req *r = &v->pend[v->npend++];
    r->h = h;
    r->bodylen = (uint32_t)UFUSE_MIN((size_t)n, sizeof buf) - (uint32_t)sizeof h;
    memcpy(r->body, buf + sizeof h, r->bodylen);
    r->body[r->bodylen] = 0;
    r->defer = 0;
    r->answered = 0;
    return 1;
}

/* Read every request already queued. */
static void fuzz_drain(struct fuzz_srv *v)
{
    while (!v->eof && fuzz_recv_one(v, MSG_DONTWAIT) > 0)
        ;
}

/* The pending request the action's high nibble picks among those neither
 * held nor answered already, -1 if none. */
static int fuzz_pick(struct fuzz_srv *v, int sel)
{
    int live[FUZZ_MAX_PENDING], n = 0;
    for (int i = 0; i < v->npend; i++)
        if (!v->pend[i].defer && !v->pend[i].answered)
            live[n++] = i;
    if (!n)
        return -1;
    if (sel < 10)
        return live[0];
    if (sel < 13)
        return live[n - 1];
    return live[fuzz_byte(v) % n];
}

/*
 * Send @oh (@len bytes with its payload) for pending request @i, instead
 * of the model's reply.  A datagram the client surely takes as the reply
 * (one piece, its length the header's, the error in range) ends the
 * request; after any other the client may still wait, so the request
 * stays pending and gets the model's reply later.
 */
static void fuzz_answer_other(struct fuzz_srv *v, int i, struct fuse_out_header *oh,
                              size_t len)
{
    int whole = !v->split && oh->len == len && oh->error <= 0 && oh->error > -512;
    fuzz_send_reply(v, oh, len);
    if (whole)
        fuzz_drop(v, i);
    else
        v->pend[i].answered = 1;
}

static void fuzz_notify(struct fuzz_srv *v)
{
    union {
        struct fuse_out_header oh;
        char b[sizeof(struct fuse_out_header) + 64 + 8192];
    } m;
    memset(&m, 0, sizeof m);
    char *p = m.b + sizeof m.oh;
    int code = fuzz_byte(v) % (FUSE_NOTIFY_CODE_MAX + 1);
    uint64_t node = (uint64_t)(fuzz_byte(v) % (v->nnodes + 1));
    uint64_t off = (uint64_t)fuzz_byte(v) << 12 | (uint64_t)(fuzz_byte(v) & 0xf) << 8;
    uint64_t len = (uint64_t)fuzz_byte(v) << 9;
    size_t plen = 0;
    const char *name = node >= 2 && node < (uint64_t)v->nnodes ? v->nodes[node].name : "file";
    switch (code) {
    case FUSE_NOTIFY_INVAL_INODE: {
        struct fuse_notify_inval_inode_out o = {.ino = node, .off = (int64_t)off,
                                                .len = len ? (int64_t)len : -1};
        memcpy(p, &o, plen = sizeof o);
        break;
    }
    case FUSE_NOTIFY_INVAL_ENTRY:
    case FUSE_NOTIFY_DELETE: {
        struct fuse_notify_delete_out o = {.parent = 1, .child = node,
                                           .namelen = (uint32_t)strlen(name)};
        size_t fixed = code == FUSE_NOTIFY_DELETE ? sizeof o
                                                  : sizeof(struct fuse_notify_inval_entry_out);
        if (code == FUSE_NOTIFY_INVAL_ENTRY) {
            struct fuse_notify_inval_entry_out e = {.parent = 1, .namelen = o.namelen};
            memcpy(p, &e, sizeof e);
        } else {
            memcpy(p, &o, sizeof o);
        }
        memcpy(p + fixed, name, o.namelen + 1);
        plen = fixed + o.namelen + 1;
        break;
    }
    case FUSE_NOTIFY_STORE: {
        size_t n = (size_t)UFUSE_MIN(len, 8192u);
        struct fuse_notify_store_out o = {.nodeid = node, .offset = off, .size = (uint32_t)n};
        memcpy(p, &o, sizeof o);
        memcpy(p + sizeof o, fuzz_pattern + off % 251, n);
        plen = sizeof o + n;
        break;
    }
    case FUSE_NOTIFY_RETRIEVE: {
        struct fuse_notify_retrieve_out o = {.notify_unique = 0x1000 + v->pos, .nodeid = node,
                                             .offset = off, .size = (uint32_t)len};
        memcpy(p, &o, plen = sizeof o);
        break;
    }
    case FUSE_NOTIFY_POLL: {
        struct fuse_notify_poll_wakeup_out o = {.kh = off};
        memcpy(p, &o, plen = sizeof o);
        break;
    }
    default: /* an unknown code, with a junk body (the rest of a split reply?) */
        plen = fuzz_byte(v) % 64;
        memset(p, fuzz_byte(v), plen);
        atomic_store(&v->tainted, 1);
        break;
    }
    /* Sometimes a length off by a little. */
    int bend = fuzz_byte(v);
    if (bend >= 0xf0 && plen)
        plen = bend & 1 ? plen - 1 : plen + (bend & 0xe);
    m.oh = (struct fuse_out_header){.len = (uint32_t)(sizeof m.oh + plen), .error = code,
                                    .unique = 0};
    fuzz_send(v, &m, sizeof m.oh + plen);
}

/* A reply nobody waits for: a duplicate or a guess at a unique. */
static void fuzz_stray(struct fuzz_srv *v)
{
    int k = fuzz_byte(v);
    struct fuse_out_header oh = {.len = sizeof oh, .error = -EIO,
                                 .unique = (k & 0x80) ? v->last_unique + (uint64_t)(k & 0x7f)
                                                      : (uint64_t)k};
    fuzz_send(v, &oh, sizeof oh);
}

/* Run the next action; 0 when it needs a request and none is pending. */
static int fuzz_step(struct fuzz_srv *v)
{
    size_t at = v->pos;
    int a = fuzz_byte(v), kind = a & 15, sel = a >> 4;
    switch (kind) {
    case ACT_DUP:
        if (v->lastlen)
            fuzz_send(v, v->last, v->lastlen);
        atomic_store(&v->tainted, 1); /* perhaps READ data, perhaps cut */
        return 1;
    case ACT_SPLIT:
        v->split = (unsigned)fuzz_byte(v) * 97 + 1;
        return 1;
    case ACT_NOTIFY:
        fuzz_notify(v);
        return 1;
    case ACT_STRAY: /* could be taken for the rest of a split reply */
        fuzz_stray(v);
        atomic_store(&v->tainted, 1);
        return 1;
    case ACT_CLOSE:
        if (fuzz_byte(v) < 16) {
            shutdown(v->fd, SHUT_RDWR);
            v->eof = 1;
            return 1;
        }
        break;
    }
    int i = fuzz_pick(v, sel);
    if (i < 0) {
        v->pos = at; /* retry once a request is there */
        return 0;
    }
    if (kind <= ACT_ANSWER + 4 || kind == ACT_CLOSE) {
        fuzz_answer_model(v, i);
        return 1;
    }
    if (kind == ACT_DEFER) {
        v->pend[i].defer = (unsigned)fuzz_byte(v) % 4 + 1;
        return 1;
    }
    /* Data not the model's.  (Broken lengths send the model's bytes: a
     * client that takes them apart right never shows other data.) */
    if (v->pend[i].h.opcode == FUSE_READ && (kind == ACT_XOR || kind == ACT_FIELD ||
                                             kind == ACT_RAW))
        atomic_store(&v->tainted, 1);
    struct fuse_out_header *oh = (void *)fuzz_reply_buf;
    char *p = (char *)(oh + 1);
    size_t plen = 0;
    int32_t e = kind == ACT_RAW ? 0 : fuzz_model_reply(v, &v->pend[i], p, &plen);
    if (e)
        plen = 0;
    switch (kind) {
    case ACT_ERROR: {
        int s = fuzz_byte(v);
        e = s < 0xe0 ? -fuzz_errnos[s % UFUSE_ARRAY_SIZE(fuzz_errnos)]
                     : fuzz_bad_errors[s % UFUSE_ARRAY_SIZE(fuzz_bad_errors)];
        plen = 0;
        break;
    }
    case ACT_XOR:
        for (int k = fuzz_byte(v) % 4 + 1; k > 0 && plen; k--) {
            size_t off = (size_t)fuzz_byte(v) % plen;
            p[off] ^= (char)fuzz_byte(v);
        }
        break;
    case ACT_FIELD: {
        int f = fuzz_byte(v), val = fuzz_byte(v);
        uint64_t x = fuzz_boundary[val & 15];
        size_t w = (f & 1) ? 8 : 4, off = (size_t)(f >> 1) * 4;
        if (val & 0x10)
            x = ~x + 1; /* negated */
        if (plen >= w && off <= plen - w)
            memcpy(p + off, &x, w); /* little-endian: the low bytes first */
        break;
    }
    case ACT_RAW: {
        plen = (size_t)fuzz_byte(v);
        for (size_t k = 0; k < plen; k++)
            p[k] = (char)fuzz_byte(v);
        break;
    }
    }
    *oh = (struct fuse_out_header){.len = (uint32_t)(sizeof *oh + plen), .error = e,
                                   .unique = v->pend[i].h.unique};
    size_t dlen = sizeof *oh + plen;
    if (kind == ACT_LENGTH) {
        int m = fuzz_byte(v), d = fuzz_byte(v);
        switch (m & 3) {
        case 0: oh->len += (uint32_t)(int8_t)d; break;            /* header off by a little */
        case 1: dlen = sizeof *oh + (plen ? (size_t)d % plen : 0); break; /* short datagram */
        case 2: memset(p + plen, d, (size_t)(m >> 2) + 1);          /* trailing junk */
                dlen += (size_t)(m >> 2) + 1; break;
        case 3: oh->len += (uint32_t)d << 4; break;                /* claims a split */
        }
        if (dlen < sizeof *oh) /* never shorter than a header (m == 1 keeps it) */
            dlen = sizeof *oh;
    }
    fuzz_answer_other(v, i, oh, dlen);
    return 1;
}

/*
 * Run the server as far as it can go without waiting.  Returns -1 when it
 * waits for requests (or for the client to read, or is done), else the
 * milliseconds to wait for more requests before it answers a held one
 * (v->held_expired set by the caller when they passed without one).
 */
static int fuzz_serve_some(struct fuzz_srv *v)
{
    while (!v->eof) {
        fuzz_drain(v);
        /* It runs on the client's receiving thread: it must never block
         * in send, so it stops at half its send buffer unread. */
        int unread = 0;
        if (v->eof || (ioctl(v->fd, SIOCOUTQ, &unread) == 0 && unread > v->max_unread))
            break;
        if (v->pos >= v->len) {
            /* The input is spent: the model answers everything. */
            if (!v->npend)
                break;
            fuzz_answer_model(v, 0);
            continue;
        }
        if (fuzz_step(v))
            continue;
        /* The action needs a request and none is fresh.  The client may
         * be waiting for one whose reply was broken, or held. */
        int stale = -1, held = -1;
        for (int i = 0; i < v->npend; i++) {
            if (v->pend[i].answered && stale < 0)
                stale = i;
            if (v->pend[i].defer && held < 0)
                held = i;
        }
        if (stale >= 0) {
            fuzz_answer_model(v, stale);
            continue;
        }
        if (held < 0)
            break;
        /* Give the client a moment to send more, then answer the oldest
         * held request. */
        if (v->held_expired || v->waits >= FUZZ_DEFER_WAITS) {
            v->held_expired = 0;
            fuzz_answer_model(v, held);
            continue;
        }
        v->waits++;
        return FUZZ_DEFER_WAIT_MS;
    }
    return -1;
}

/*
 * The server runs on whichever client thread receives: the harness is
 * linked with --wrap=chan_recv (tests/fuzz/CMakeLists.txt), so the
 * library's receive (only ever called by the one thread that is the
 * receiver, ipc.c invariant 2) first serves the requests waiting on the
 * server's end, then receives.  No thread of the harness's own and no
 * hand-off between threads per request: a session is one thread's work
 * where the library makes it so (a server thread of its own meant two
 * wake-ups per request, 3x the context switches of an input).
 * fuzz_mu orders the server's state between successive receivers.
 */
static struct fuzz_srv fuzz_v;
static pthread_mutex_t fuzz_mu = PTHREAD_MUTEX_INITIALIZER;
static int fuzz_client_fd = -1;   /* the session's end, while it runs */

ssize_t __real_chan_recv(struct chan *c, struct iovec *iov, int cnt, int timeout_ms,
                         int wake_fd, int *truncated);
ssize_t __wrap_chan_recv(struct chan *c, struct iovec *iov, int cnt, int timeout_ms,
                         int wake_fd, int *truncated);

ssize_t __wrap_chan_recv(struct chan *c, struct iovec *iov, int cnt, int timeout_ms,
                         int wake_fd, int *truncated)
{
    struct fuzz_srv *v = &fuzz_v;
    uint64_t deadline = timeout_ms >= 0 ? ufuse_now_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    while (c->fd == fuzz_client_fd) {
        pthread_mutex_lock(&fuzz_mu);
        int wait_ms = fuzz_serve_some(v);
        int srv_fd = v->eof ? -1 : v->fd;
        pthread_mutex_unlock(&fuzz_mu);
        if (deadline) {
            uint64_t now = ufuse_now_ns();
            int left = now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
            wait_ms = wait_ms < 0 || left < wait_ms ? left : wait_ms;
        }
        /* A reply, a kick, a request, or the held request's moment. */
        struct pollfd pf[3] = {{.fd = c->fd, .events = POLLIN},
                               {.fd = wake_fd, .events = POLLIN},
                               {.fd = srv_fd, .events = POLLIN}};
        int n = poll(pf, 3, wait_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || pf[0].revents || pf[1].revents || (deadline && ufuse_now_ns() >= deadline))
            break;
        if (n == 0 && !pf[2].revents) {
            pthread_mutex_lock(&fuzz_mu);
            v->held_expired = 1;
            pthread_mutex_unlock(&fuzz_mu);
        }
    }
    /* What is there now, or the library's own wait when not our session. */
    if (c->fd == fuzz_client_fd)
        timeout_ms = 0;
    return __real_chan_recv(c, iov, cnt, timeout_ms, wake_fd, truncated);
}

/* ---- the script ------------------------------------------------------------------ */

/* The errors each call may return besides the server's own (passed
 * through) and ENOTCONN/EIO/ENOMEM: its system call's (Linux man pages). */
enum fuzz_call {
    C_MOUNT, C_STAT, C_OPEN, C_CLOSE, C_READ, C_WRITE, C_FSYNC, C_TRUNC, C_SEEK,
    C_FALLOC, C_COPY, C_OPENDIR, C_READDIR, C_XATTR, C_RENAME, C_UNLINK, C_MKDIR,
    C_RMDIR, C_SYMLINK, C_READLINK, C_LINK, C_CHMOD, C_UTIMENS, C_ACCESS, C_STATFS,
    C_SYNC, C_UNMOUNT, C_NCALLS
};

static const int fuzz_errs[C_NCALLS][24] = {
    [C_MOUNT] = {EPROTO, EINVAL, EAGAIN},
    [C_STAT] = {EACCES, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR, EOVERFLOW},
    [C_OPEN] = {EACCES, EBUSY, EDQUOT, EEXIST, EFBIG, EINTR, EINVAL, EISDIR, ELOOP,
                ENAMETOOLONG, ENODEV, ENOENT, ENOSPC, ENOTDIR, ENXIO, EOPNOTSUPP,
                EOVERFLOW, EPERM, EROFS, ETXTBSY, EWOULDBLOCK},
    /* EINVAL: a write-back WRITE acknowledged beyond what it sent (ufuse.h,
     * ufuse_pwrite), reported at close, sync and unmount too. */
    [C_CLOSE] = {EINTR, ENOSPC, EDQUOT, EINVAL},
    [C_READ] = {EAGAIN, EINTR, EINVAL, EISDIR, ESPIPE, EOVERFLOW, ENXIO, EBADF},
    [C_WRITE] = {EAGAIN, EDQUOT, EFBIG, EINTR, EINVAL, ENOSPC, EPERM, EPIPE, ESPIPE,
                 EOVERFLOW, ENXIO, EBADF},
    [C_FSYNC] = {EINVAL, ENOSPC, EROFS, EDQUOT, EINTR},
    [C_TRUNC] = {EACCES, EFBIG, EINTR, EINVAL, EISDIR, ELOOP, ENAMETOOLONG, ENOENT,
                 ENOTDIR, EPERM, EROFS, ETXTBSY, EBADF},
    [C_SEEK] = {EINVAL, ENXIO, EOVERFLOW, ESPIPE},
    [C_FALLOC] = {EBADF, EFBIG, EINTR, EINVAL, ENODEV, ENOSPC, ENOSYS, EOPNOTSUPP, EPERM,
                  ESPIPE, ETXTBSY},
    [C_COPY] = {EBADF, EFBIG, EINVAL, EISDIR, ENOSPC, EOPNOTSUPP, EOVERFLOW, EPERM,
                ETXTBSY, EXDEV},
    [C_OPENDIR] = {EACCES, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR},
    [C_READDIR] = {EINVAL, ENOENT, ENOTDIR},
    [C_XATTR] = {E2BIG, ENODATA, EOPNOTSUPP, ERANGE, EDQUOT, EEXIST, ENOSPC, EPERM,
                 EACCES, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR},
    [C_RENAME] = {EACCES, EBUSY, EDQUOT, EINVAL, EISDIR, ELOOP, EMLINK, ENAMETOOLONG,
                  ENOENT, ENOSPC, ENOTDIR, ENOTEMPTY, EEXIST, EPERM, EROFS, EXDEV},
    [C_UNLINK] = {EACCES, EBUSY, EISDIR, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR, EPERM,
                  EROFS},
    [C_MKDIR] = {EACCES, EDQUOT, EEXIST, EINVAL, ELOOP, EMLINK, ENAMETOOLONG, ENOENT,
                 ENOSPC, ENOTDIR, EPERM, EROFS},
    [C_RMDIR] = {EACCES, EBUSY, EINVAL, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR, ENOTEMPTY,
                 EPERM, EROFS},
    [C_SYMLINK] = {EACCES, EDQUOT, EEXIST, ELOOP, ENAMETOOLONG, ENOENT, ENOSPC, ENOTDIR,
                   EPERM, EROFS},
    [C_READLINK] = {EACCES, EINVAL, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR},
    [C_LINK] = {EACCES, EDQUOT, EEXIST, ELOOP, EMLINK, ENAMETOOLONG, ENOENT, ENOSPC,
                ENOTDIR, EPERM, EROFS, EXDEV},
    [C_CHMOD] = {EACCES, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR, EPERM, EROFS},
    [C_UTIMENS] = {EACCES, EINVAL, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR, EPERM, EROFS},
    [C_ACCESS] = {EACCES, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR, EROFS, EINVAL, ETXTBSY},
    [C_STATFS] = {EACCES, EINTR, ELOOP, ENAMETOOLONG, ENOENT, ENOSYS, ENOTDIR, EOVERFLOW},
    [C_SYNC] = {ENOSPC, EDQUOT, EINVAL},
    [C_UNMOUNT] = {ENOSPC, EDQUOT, EINVAL},
};

static const char *const fuzz_call_names[C_NCALLS] = {
    "mount", "stat", "open", "close", "read", "write", "fsync", "truncate", "lseek",
    "fallocate", "copy_file_range", "opendir", "readdir", "xattr", "rename", "unlink",
    "mkdir", "rmdir", "symlink", "readlink", "link", "chmod", "utimens", "access",
    "statfs", "sync", "unmount",
};

/* FUZZ_SESSION_TRACE=1 in the environment: print every call's result. */
static int fuzz_trace;

static char fuzz_wbuf[64 << 10];
static char fuzz_rbuf[256 << 10];
_Static_assert(sizeof fuzz_pattern >= sizeof fuzz_rbuf + 251, "a read is checked in one memcmp");

struct fuzz_run {
    struct fuzz_srv *v;
    ufuse_t *s;
    int step;
};

static _Noreturn void fuzz_fail(struct fuzz_run *r, enum fuzz_call c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz-session: step %d (%s): ", r->step, fuzz_call_names[c]);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* Check a call's result and the cache; returns @rc. */
static long long fuzz_check(struct fuzz_run *r, enum fuzz_call c, long long rc)
{
    r->step++;
    if (fuzz_trace)
        fprintf(stderr, "fuzz-session: %8.3f ms: step %d %s = %lld\n",
                (double)ufuse_now_ns() / 1e6, r->step, fuzz_call_names[c], rc);
    if (rc < 0) {
        int e = (int)-rc, ok = e == ENOTCONN || e == EIO || e == ENOMEM;
        for (int i = 0; !ok && i < 24 && fuzz_errs[c][i]; i++)
            ok = fuzz_errs[c][i] == e;
        /* The server's errors pass through, except INIT's (EPROTO). */
        if (!ok && c != C_MOUNT)
            ok = fuzz_was_sent(r->v, e);
        if (e == ETIMEDOUT && !fuzz_was_sent(r->v, e))
            fuzz_fail(r, c, "timed out: a call hung although every request is answered");
        if (!ok)
            fuzz_fail(r, c, "undocumented error %lld (%s)", rc, strerror(e));
    }
    if (r->s && r->s->io.cache_on && !cache_sane_all(&r->s->io.cache))
        fuzz_fail(r, c, "page cache invariant broken (cache_obj_sane)");
    return rc;
}

#define CHECK(call, expr) fuzz_check(r, (call), (long long)(expr))

/*
 * Data read from the file at @off: while the server sent only the model's
 * READ data (the pattern, by file offset; STORE sends it too), every byte
 * is the pattern's, the script's own 'w', or a zero (a hole, or past a
 * truncation): a reply taken apart or put together wrong shows here.
 */
static void fuzz_check_data(struct fuzz_run *r, long long n, off_t off)
{
    if (n <= 0 || atomic_load(&r->v->tainted))
        return;
    /* Most reads are the pattern alone: one memcmp (fuzz_pattern repeats
     * every 251 bytes and is longer than fuzz_rbuf + 251). */
    unsigned k = (unsigned)((uint64_t)off % 251);
    if (memcmp(fuzz_rbuf, fuzz_pattern + k, (size_t)n) == 0)
        return;
    for (long long i = 0; i < n; i++, k = k == 250 ? 0 : k + 1) {
        unsigned char b = (unsigned char)fuzz_rbuf[i];
        if (b != fuzz_pattern[k] && b != 'w' && b != 0)
            fuzz_fail(r, C_READ, "byte %lld of a read at %lld is %#x: not the file's",
                      i, (long long)off, b);
    }
}

#define READ_CHECKED(f, n, off) \
    fuzz_check_data(r, CHECK(C_READ, ufuse_pread((f), fuzz_rbuf, (n), (off))), (off))


/* A file: reads (sequential: readahead), writes, write-back, truncate. */
static void fuzz_file_ops(struct fuzz_run *r, const char *path, int flags, int past_cache)
{
    ufuse_t *s = r->s;
    ufuse_file_t *f, *g;
    struct stat st;
    if (CHECK(C_OPEN, ufuse_open(s, path, flags, 0644, &f)) < 0)
        return;
    for (int i = 0; i < 4; i++) /* sequential: the readahead window opens */
        READ_CHECKED(f, 32 << 10, (off_t)i * (32 << 10));
    READ_CHECKED(f, 5000, 300000);
    if (past_cache) /* on past the cache's size: eviction */
        for (off_t off = 512 << 10; off < (off_t)FUZZ_BIG_SIZE; off += sizeof fuzz_rbuf / 2)
            READ_CHECKED(f, sizeof fuzz_rbuf / 2, off);
    if ((flags & O_ACCMODE) != O_RDONLY) {
        CHECK(C_WRITE, ufuse_pwrite(f, fuzz_wbuf, 5000, 100));
        CHECK(C_WRITE, ufuse_pwrite(f, fuzz_wbuf, 20000, 16384));
        READ_CHECKED(f, 16384, 0);
        CHECK(C_FSYNC, ufuse_fsync(f));
        CHECK(C_WRITE, ufuse_write(f, fuzz_wbuf, 3000));
        CHECK(C_TRUNC, ufuse_ftruncate(f, 7000));
        CHECK(C_WRITE, ufuse_pwrite(f, fuzz_wbuf, 4096, 6000));
        CHECK(C_STAT, ufuse_fstat(f, &st));
        CHECK(C_FSYNC, ufuse_fdatasync(f));
        CHECK(C_FALLOC, ufuse_fallocate(f, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, 4096));
        CHECK(C_SEEK, ufuse_lseek(f, 0, SEEK_DATA));
        if (CHECK(C_OPEN, ufuse_open(s, "/d/bbig", O_RDWR | O_DIRECT, 0, &g)) == 0) {
            off_t a = 0, b = 8192;
            CHECK(C_COPY, ufuse_copy_file_range(f, &a, g, &b, 8192, 0));
            CHECK(C_WRITE, ufuse_pwrite(g, fuzz_wbuf, 8192, 4096));
            READ_CHECKED(g, 12288, 0);
            /* Unaligned: the middle direct, head and tail through the cache. */
            CHECK(C_WRITE, ufuse_pwrite(g, fuzz_wbuf, 9000, 100));
            READ_CHECKED(g, 9000, 50);
            CHECK(C_CLOSE, ufuse_close(g));
        }
        CHECK(C_WRITE, ufuse_pwrite(f, fuzz_wbuf, 9000, 1000));
    }
    CHECK(C_STAT, ufuse_fstat(f, &st));
    CHECK(C_CLOSE, ufuse_close(f));
}

static void fuzz_dir_ops(struct fuzz_run *r, const char *path)
{
    ufuse_dir_t *d;
    struct ufuse_dirent ent;
    if (CHECK(C_OPENDIR, ufuse_opendir(r->s, path, &d)) < 0)
        return;
    /* A server can list forever: bounded. */
    for (int i = 0; i < 32 && CHECK(C_READDIR, ufuse_readdir(d, &ent)) == 1; i++)
        ;
    CHECK(C_READDIR, ufuse_rewinddir(d));
    CHECK(C_READDIR, ufuse_readdir(d, &ent));
    CHECK(C_FSYNC, ufuse_fsyncdir(d, 0));
    CHECK(C_CLOSE, ufuse_closedir(d));
}

/* The script: sections picked by @sections (config[4]; 0: all), in a
 * fixed order. */
static void fuzz_script(struct fuzz_run *r, unsigned sections)
{
    ufuse_t *s = r->s;
    struct stat st;
    struct statvfs sv;
    char buf[256];
    if (!sections)
        sections = 0xff;
    CHECK(C_STAT, ufuse_stat(s, "/d", &st));
    CHECK(C_STAT, ufuse_lstat(s, "/d/link", &st));
    CHECK(C_STAT, ufuse_stat(s, "/d/link", &st));
    if (sections & 1)
        fuzz_file_ops(r, "/d/bbig", O_RDONLY, sections & 128);
    if (sections & 2)
        fuzz_file_ops(r, "/d/file", O_RDWR, 0);
    if (sections & 4)
        fuzz_file_ops(r, "/d/nfile", O_RDWR | O_CREAT | O_EXCL, 0);
    if (sections & 8)
        fuzz_file_ops(r, "/d/file", O_WRONLY | O_TRUNC | O_APPEND, 0);
    if (sections & 16)
        fuzz_dir_ops(r, "/d");
    if (sections & 32) {
        CHECK(C_XATTR, ufuse_getxattr(s, "/d/file", "user.a", NULL, 0));
        CHECK(C_XATTR, ufuse_getxattr(s, "/d/file", "user.a", buf, sizeof buf));
        CHECK(C_XATTR, ufuse_listxattr(s, "/d/file", buf, sizeof buf));
        CHECK(C_XATTR, ufuse_setxattr(s, "/d/file", "user.b", "v", 1, 0));
        CHECK(C_XATTR, ufuse_removexattr(s, "/d/file", "user.b"));
    }
    if (!(sections & 64)) {
        CHECK(C_SYNC, ufuse_sync(s));
        return;
    }
    CHECK(C_TRUNC, ufuse_truncate(s, "/d/file", 10000));
    CHECK(C_RENAME, ufuse_rename(s, "/d/file", "/d/file2", 0));
    CHECK(C_RENAME, ufuse_rename(s, "/d/file2", "/d/nfile3", RENAME_NOREPLACE));
    CHECK(C_LINK, ufuse_link(s, "/d/bbig", "/d/nlink2"));
    CHECK(C_UNLINK, ufuse_unlink(s, "/d/nfile3"));
    CHECK(C_MKDIR, ufuse_mkdir(s, "/d/ndir", 0755));
    CHECK(C_RMDIR, ufuse_rmdir(s, "/d/ndir"));
    CHECK(C_SYMLINK, ufuse_symlink(s, "bbig", "/d/nlnk"));
    CHECK(C_READLINK, ufuse_readlink(s, "/d/link", buf, sizeof buf));
    CHECK(C_CHMOD, ufuse_chmod(s, "/d/bbig", 0600));
    CHECK(C_UTIMENS, ufuse_utimens(s, "/d/bbig", NULL));
    CHECK(C_ACCESS, ufuse_access(s, "/d/bbig", R_OK));
    CHECK(C_STATFS, ufuse_statfs(s, "/", &sv));
    CHECK(C_SYNC, ufuse_sync(s));
}

/* ---- the target ------------------------------------------------------------------ */

/*
 * One session serves up to fuzz_session_inputs inputs in a row
 * (FUZZ_SESSION_INPUTS in the environment, default 1: each input a whole
 * session, mount to unmount).  More than one is `make fuzz`'s mode: the
 * mount and unmount (threads started and ended, the cache mapped and
 * unmapped) cost several times a short input's calls, so a session is kept
 * while inputs have its config bytes [0..3] and it is alive; the next input
 * with other config bytes, or after the server closed, unmounts it (that
 * unmount is checked and counted as that input's) and mounts anew, its
 * INIT answered from its own actions.  The model and the errors and data
 * the server sent carry over with the session, so the checks stay those
 * of one session; a crash may then need the inputs before it, which is
 * why the default stays 1 for replaying one input.
 */
static struct {
    ufuse_t *s;              /* NULL: no session between inputs */
    int srv_fd;              /* the server's end */
    uint8_t config[4];
    unsigned inputs;         /* served so far */
} fuzz_live = {.srv_fd = -1};
static unsigned fuzz_session_inputs = 1;

static void fuzz_session_end(struct fuzz_run *r)
{
    r->s = NULL;
    fuzz_check(r, C_UNMOUNT, ufuse_unmount(fuzz_live.s));
    fuzz_live.s = NULL;
    fuzz_client_fd = -1; /* closed by unmount */
    close(fuzz_live.srv_fd);
    fuzz_live.srv_fd = -1;
}

/* The server's model and state for a new session of config @data[0..3]. */
static void fuzz_srv_reset(struct fuzz_srv *v, const uint8_t *data)
{
    static const uint32_t minors[] = {38, 23, 12, 8};
    static const uint32_t max_writes[] = {128 << 10, 4096, 16 << 10, 1 << 20};
    static const uint32_t fopen[] = {0, FOPEN_KEEP_CACHE, FOPEN_DIRECT_IO,
                                     FOPEN_KEEP_CACHE | FOPEN_NONSEEKABLE};
    memset(v, 0, offsetof(struct fuzz_srv, nodes));
    v->minor = minors[(data[0] >> 2) & 3];
    v->max_write = max_writes[(data[0] >> 4) & 3];
    v->fopen_flags = fopen[data[0] >> 6];
    v->flags = fuzz_default_flags;
    for (int i = 0; i < 24; i++)
        if (data[1 + i / 8] & (1 << (i % 8)))
            v->flags ^= fuzz_flag_bits[i];
    v->nnodes = 2; /* 0 unused, 1 the root */
    v->nodes[1] = (struct fuzz_node){.name = "/", .mode = S_IFDIR | 0755, .size = 4096};
    for (int i = 0; i < 8; i++)
        atomic_init(&v->sent_errs[i], 0);
    atomic_init(&v->tainted, 0);
}

/* Mount a session of config @data[0..3] whose server takes its actions
 * from @v->in (INIT's reply first); 0 or the mount's error. */
static int fuzz_session_start(struct fuzz_run *r, const uint8_t *data)
{
    static const char *const modes[] = {"direct", "writethrough", "writeback", "auto"};
    struct fuzz_srv *v = r->v;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
        abort();
    int big = 4 << 20;
    socklen_t bl = sizeof big;
    if (setsockopt(sv[1], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) != 0)
        (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    if (getsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, &bl) != 0)
        abort();
    v->max_unread = big / 2; /* the largest reply (a 32 KiB READ) fits in the rest */
    v->fd = sv[1];
    fuzz_client_fd = sv[0];

    /* spin=0: the server runs inside the wrapped chan_recv, so polling
     * (chan_recv_spin) would only wait for a reply nobody makes. */
    char opts[160];
    snprintf(opts, sizeof opts,
             "cache=%s,cache_size=1m,readahead=64k,max_read=32k,spin=0,timeout=" FUZZ_TIMEOUT_S,
             modes[data[0] & 3]);
    ufuse_t *s;
    int rc = (int)fuzz_check(r, C_MOUNT, ufuse_mount_fd(&s, sv[0], opts));
    if (rc < 0) {
        fuzz_client_fd = -1; /* closed by the failed mount */
        close(sv[1]);
        return rc;
    }
    fuzz_live.s = r->s = s;
    fuzz_live.srv_fd = sv[1];
    memcpy(fuzz_live.config, data, sizeof fuzz_live.config);
    fuzz_live.inputs = 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return -1; /* not a valid input: keep it out of the corpus */
    struct fuzz_srv *v = &fuzz_v;
    if (!fuzz_pattern[1]) {
        fuzz_trace = getenv("FUZZ_SESSION_TRACE") != NULL;
        const char *n = getenv("FUZZ_SESSION_INPUTS");
        if (n && atoi(n) > 1)
            fuzz_session_inputs = (unsigned)atoi(n);
        for (size_t i = 0; i < sizeof fuzz_pattern; i++)
            fuzz_pattern[i] = (unsigned char)(i % 251);
        memset(fuzz_wbuf, 'w', sizeof fuzz_wbuf);
    }
    struct fuzz_run r = {.v = v, .s = fuzz_live.s};
    pthread_mutex_lock(&fuzz_mu);
    int dead = v->eof;
    pthread_mutex_unlock(&fuzz_mu);
    if (fuzz_live.s && (dead || memcmp(fuzz_live.config, data, sizeof fuzz_live.config)))
        fuzz_session_end(&r);

    /* The server's actions come from this input until it returns. */
    pthread_mutex_lock(&fuzz_mu);
    if (!fuzz_live.s)
        fuzz_srv_reset(v, data);
    v->in = data + 5;
    v->len = size - 5;
    v->pos = 0;
    v->waits = 0;
    pthread_mutex_unlock(&fuzz_mu);

    if (fuzz_live.s || fuzz_session_start(&r, data) == 0) {
        fuzz_script(&r, data[4]);
        if (++fuzz_live.inputs >= fuzz_session_inputs)
            fuzz_session_end(&r);
    }
    /* libFuzzer frees @data: what the server does next is the model's. */
    pthread_mutex_lock(&fuzz_mu);
    v->in = NULL;
    v->len = v->pos = 0;
    pthread_mutex_unlock(&fuzz_mu);
    return 0;
}
