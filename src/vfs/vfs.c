/*
 * vfs.c - path walk and the file-system operations (see vfs.h).
 *
 * Locks: s->handles_mu guards the session's handle lists and its list of
 * RELEASEs in flight.  File positions are guarded by each file's pos_mu.
 * Node and entry state is the node table's (node.c); nothing here holds a
 * lock across a request.
 *
 * Invariants:
 *  1. Every node pointer held by a walk, a handle or a local variable is
 *     referenced and released exactly once (node_put).
 *  2. After an operation that changes a node (its size, mode, links,
 *     times, or a directory's contents), the node's cached attributes are
 *     invalidated or replaced by the server's reply; after one that
 *     changes names, the affected entries are dropped or replaced.
 *  3. A server reply is validated before it changes any cached state.
 *  4. A GETATTR or SETATTR that names no handle is sent only once every
 *     RELEASE of its node sent before it has been answered, or a second has
 *     passed (vfs_release_wait):
 *     servers that look a handle of the node up for such a request
 *     (glusterfs: fd_lookup, then FSTAT) must not find one being released.
 *  5. Under -o default_permissions, no request on the caller's behalf is
 *     sent before the checks the kernel makes with that option have passed
 *     (vfs_may and friends: search on every directory walked, may_open,
 *     may_create, may_delete with the sticky bit, setattr_prepare, access,
 *     user.* and trusted.* xattrs), from attributes valid now (cached, or
 *     fetched) and the caller's ids and groups (ufuse_set_caller, else the
 *     process's own); the cached-stat shortcut, which checks nothing, is
 *     off then.
 */
#include "vfs/vfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#define VFS_MAX_SYMLINKS 40
/* Bytes asked per READDIR(PLUS): one round trip per ~1,500 plain entries. */
#define VFS_READDIR_SIZE 65536
#define VFS_XATTR_SIZE_MAX 65536
#define VFS_COPY_CHUNK ((size_t)128 * 1024)
/* Longest a path GETATTR/SETATTR waits for its node's RELEASEs. */
#define VFS_RELEASE_WAIT_NS 1000000000ull

/* ---- small request helpers ---------------------------------------------------- */

/* One request with up to three body pieces and one reply struct. */
static int vfs_call(ufuse_t *s, uint32_t op, uint64_t nodeid,
                    const void *a, size_t alen, const void *b, size_t blen,
                    const void *c, size_t clen, void *out, size_t outlen, int exact,
                    size_t *got)
{
    struct iovec in[3];
    int n = 0;
    if (alen)
        in[n++] = (struct iovec){(void *)a, alen};
    if (blen)
        in[n++] = (struct iovec){(void *)b, blen};
    if (clen)
        in[n++] = (struct iovec){(void *)c, clen};
    struct iovec ov = {out, outlen};
    struct conn_req r = {.opcode = op, .nodeid = nodeid, .in = in, .incnt = n,
                         .out = &ov, .outcnt = outlen ? 1 : 0, .out_exact = exact};
    int rc = conn_call(&s->conn, &r);
    if (got)
        *got = r.outlen;
    return rc;
}

/* ---- RELEASE ------------------------------------------------------------------------ */

/* A RELEASE in flight: the request's body and its place in s->releasing. */
struct vfs_release {
    ufuse_t *s;
    uint64_t nodeid;
    struct fuse_release_in in;
    struct vfs_release *next;
};

static void vfs_release_unlink(ufuse_t *s, struct vfs_release *r)
{
    pthread_mutex_lock(&s->handles_mu);
    struct vfs_release **pp = &s->releasing;
    while (*pp != r)
        pp = &(*pp)->next;
    *pp = r->next;
    pthread_mutex_unlock(&s->handles_mu);
}

/* conn_done_fn of a RELEASE: whatever the answer, the handle is gone. */
static void vfs_release_done(void *ctx, int error, size_t outlen)
{
    (void)error;
    (void)outlen;
    struct vfs_release *r = ctx;
    vfs_release_unlink(r->s, r);
    free(r);
}

/*
 * RELEASE (RELEASEDIR with @dir) @fh of @nodeid, not waited for: close
 * returns after FLUSH, as Linux's does.  Tracked until answered, for
 * vfs_release_wait (invariant 4).
 */
static void vfs_release_fh(ufuse_t *s, uint64_t nodeid, uint64_t fh, int flags,
                           uint64_t lock_owner, int dir)
{
    uint32_t op = dir ? FUSE_RELEASEDIR : FUSE_RELEASE;
    struct vfs_release *r = calloc(1, sizeof *r);
    if (!r) { /* untracked, but released */
        struct fuse_release_in ri = {.fh = fh, .flags = (uint32_t)flags,
                                     .lock_owner = lock_owner};
        struct iovec iov = {&ri, sizeof ri};
        conn_call_async(&s->conn, op, nodeid, &iov, 1);
        return;
    }
    r->s = s;
    r->nodeid = nodeid;
    r->in = (struct fuse_release_in){.fh = fh, .flags = (uint32_t)flags,
                                     .lock_owner = lock_owner};
    pthread_mutex_lock(&s->handles_mu);
    r->next = s->releasing;
    s->releasing = r;
    pthread_mutex_unlock(&s->handles_mu);
    struct iovec iov = {&r->in, sizeof r->in};
    struct conn_req req = {.opcode = op, .nodeid = nodeid, .in = &iov, .incnt = 1};
    if (conn_submit(&s->conn, &req, &s->releases, vfs_release_done, r) != 0) {
        vfs_release_unlink(s, r);
        free(r);
    }
}

static int vfs_release_pending(ufuse_t *s, uint64_t nodeid)
{
    int found = 0;
    pthread_mutex_lock(&s->handles_mu);
    for (struct vfs_release *r = s->releasing; r && !found; r = r->next)
        found = r->nodeid == nodeid;
    pthread_mutex_unlock(&s->handles_mu);
    return found;
}

/*
 * Invariant 4: wait until no RELEASE of @nodeid is in flight, for at most
 * VFS_RELEASE_WAIT_NS: a server slow to answer RELEASE (or stopped) must
 * not hold a stat longer than that, nor make it deaf to ufuse_interrupt
 * (the RELEASE is another thread's request).  The race the wait closes
 * lasts as long as the server takes to run the RELEASE it has read.
 */
static void vfs_release_wait(ufuse_t *s, uint64_t nodeid)
{
    uint64_t until = 0;
    for (;;) {
        uint64_t seen = conn_group_ended(&s->conn, &s->releases);
        if (!vfs_release_pending(s, nodeid))
            return;
        if (!until)
            until = ufuse_now_ns() + VFS_RELEASE_WAIT_NS;
        if (conn_group_wait_end(&s->conn, &s->releases, seen, until) != 0)
            return;
    }
}

void vfs_releases_free(ufuse_t *s)
{
    while (s->releasing) {
        struct vfs_release *r = s->releasing;
        s->releasing = r->next;
        free(r);
    }
}

static int vfs_getattr_node(ufuse_t *s, struct node *n, struct fuse_attr *a)
{
    if (node_attr_cached(&s->nodes, n, a))
        return 0;
    vfs_release_wait(s, n->nodeid);
    return io_fetch_attr(&s->conn, &s->nodes, n, 0, 0, a);
}

/* ---- permissions (-o default_permissions) ----------------------------------------------- */

/* What a check asks (the mode bits' values). */
#define VFS_MAY_READ 4
#define VFS_MAY_WRITE 2
#define VFS_MAY_EXEC 1

/* Who is asking: the thread's caller (ufuse_set_caller), else this
 * process as the kernel sees it now. */
struct vfs_cred {
    uint32_t uid, gid, ngroups;
    const uint32_t *groups;
    uint32_t own[CONN_CALLER_GROUPS];
};

static void vfs_cred_get(ufuse_t *s, struct vfs_cred *c)
{
    if (conn_get_caller(&s->conn, &c->uid, &c->gid, &c->groups, &c->ngroups))
        return;
    c->uid = (uint32_t)geteuid();
    c->gid = (uint32_t)getegid();
    gid_t g[CONN_CALLER_GROUPS];
    int n = getgroups(CONN_CALLER_GROUPS, g); /* more than fit: none counted */
    c->ngroups = n > 0 ? (uint32_t)n : 0;
    for (uint32_t i = 0; i < c->ngroups; i++)
        c->own[i] = (uint32_t)g[i];
    c->groups = c->own;
}

static int vfs_in_group(const struct vfs_cred *c, uint32_t gid)
{
    if (c->gid == gid)
        return 1;
    for (uint32_t i = 0; i < c->ngroups; i++)
        if (c->groups[i] == gid)
            return 1;
    return 0;
}

/* The kernel's generic_permission: may @c do @mask to a file of @a?
 * Root may do anything but execute a file nobody may execute. */
static int vfs_perm(const struct vfs_cred *c, const struct fuse_attr *a, int mask)
{
    if (c->uid == 0)
        return (mask & VFS_MAY_EXEC) && !S_ISDIR(a->mode) && !(a->mode & 0111) ? -EACCES : 0;
    unsigned bits = c->uid == a->uid ? (a->mode >> 6) & 7
                    : vfs_in_group(c, a->gid) ? (a->mode >> 3) & 7
                                              : a->mode & 7;
    return (bits & (unsigned)mask) == (unsigned)mask ? 0 : -EACCES;
}

/* What a check looks at: @n's attributes valid now (cached, or fetched)
 * and the caller's ids.  0, or the GETATTR's error. */
static int vfs_check_subject(ufuse_t *s, struct node *n, struct fuse_attr *a,
                             struct vfs_cred *c)
{
    int rc = vfs_getattr_node(s, n, a);
    if (rc == 0)
        vfs_cred_get(s, c);
    return rc;
}

/* May the caller do @mask to @n?  0 when the session does not check
 * (the server does). */
static int vfs_may(ufuse_t *s, struct node *n, int mask)
{
    if (!s->opts.default_permissions)
        return 0;
    struct fuse_attr a;
    struct vfs_cred c;
    int rc = vfs_check_subject(s, n, &a, &c);
    return rc ? rc : vfs_perm(&c, &a, mask);
}

/* Removing @victim's name from @dir (unlink, rmdir, rename's both ends):
 * write and search on @dir, and in a sticky directory only the owner of
 * the file or of the directory, or root (the kernel's may_delete). */
static int vfs_may_delete(ufuse_t *s, struct node *dir, struct node *victim)
{
    if (!s->opts.default_permissions)
        return 0;
    struct fuse_attr d, v;
    struct vfs_cred c;
    int rc = vfs_check_subject(s, dir, &d, &c);
    if (rc == 0)
        rc = vfs_perm(&c, &d, VFS_MAY_WRITE | VFS_MAY_EXEC);
    if (rc || !(d.mode & S_ISVTX) || c.uid == 0 || c.uid == d.uid)
        return rc;
    if ((rc = vfs_getattr_node(s, victim, &v)) != 0)
        return rc;
    return c.uid == v.uid ? 0 : -EPERM;
}

/* SETATTR by the caller (the kernel's setattr_prepare): mode and times
 * set explicitly by the owner or root; the owner by root; the group by
 * root, or by the owner to a group it is in; times set to now also by
 * whoever may write; the size by whoever may write. */
static int vfs_may_setattr(ufuse_t *s, struct node *n, const struct fuse_setattr_in *in)
{
    if (!s->opts.default_permissions)
        return 0;
    struct fuse_attr a;
    struct vfs_cred c;
    int rc = vfs_check_subject(s, n, &a, &c);
    if (rc)
        return rc;
    int root = c.uid == 0, owner = c.uid == a.uid;
    if ((in->valid & FATTR_UID) && in->uid != a.uid && !root)
        return -EPERM;
    if ((in->valid & FATTR_GID) && in->gid != a.gid && !root &&
        !(owner && vfs_in_group(&c, in->gid)))
        return -EPERM;
    if ((in->valid & FATTR_MODE) && !owner && !root)
        return -EPERM;
    uint32_t explicit_times = FATTR_ATIME | FATTR_MTIME;
    uint32_t now = FATTR_ATIME_NOW | FATTR_MTIME_NOW;
    if ((in->valid & explicit_times) && !owner && !root) {
        /* Both to now (utimensat(NULL) / UTIME_NOW): write permission will do. */
        if ((in->valid & now) != now)
            return -EPERM;
        return vfs_perm(&c, &a, VFS_MAY_WRITE);
    }
    if ((in->valid & FATTR_SIZE) && !(in->valid & FATTR_FH))
        return vfs_perm(&c, &a, VFS_MAY_WRITE);
    return 0;
}

/*
 * An entry reply (LOOKUP, MKNOD, MKDIR, SYMLINK, LINK, CREATE) for
 * @name in @parent: make the node and cache the entry.  Returns the node
 * referenced, or NULL with *@err set.
 */
static struct node *vfs_entry_reply(ufuse_t *s, struct node *parent, const char *name,
                                    size_t len, const struct fuse_entry_out *e,
                                    uint64_t seq, int *err)
{
    struct node *n = node_from_entry(&s->nodes, e, seq, err);
    if (!n) {
        ulog_once(&s->log, 40, "invalid entry for \"%.*s\" in reply", (int)len, name);
        return NULL;
    }
    entry_store(&s->nodes, parent, name, len, n,
                proto_valid_until(ufuse_valid_now_ns(), e->entry_valid, e->entry_valid_nsec));
    return n;
}

/* LOOKUP @name in @parent (a directory).  @attr (may be NULL) receives the
 * attributes when a LOOKUP was sent (*@fresh = 1). */
static int vfs_lookup(ufuse_t *s, struct node *parent, const char *name, size_t len,
                      struct node **child, struct fuse_attr *attr, int *fresh)
{
    if (fresh)
        *fresh = 0;
    if (parent->type != S_IFDIR)
        return -ENOTDIR;
    int rc = proto_name_check(name, len);
    if (rc)
        return rc;
    switch (entry_lookup(&s->nodes, parent, name, len, child, ufuse_valid_now_ns())) {
    case ENTRY_POSITIVE:
        return 0;
    case ENTRY_NEGATIVE:
        return -ENOENT;
    case ENTRY_MISS:
        break;
    }
    char nm[PROTO_NAME_MAX + 1];
    memcpy(nm, name, len);
    nm[len] = 0;
    struct fuse_entry_out e;
    memset(&e, 0, sizeof e);
    uint64_t seq = node_attr_seq(&s->nodes);
    rc = vfs_call(s, FUSE_LOOKUP, parent->nodeid, nm, len + 1, NULL, 0, NULL, 0, &e,
                  proto_entry_out_size(s->conn.p.minor), 1, NULL);
    if (rc)
        return rc; /* ENOENT as an error is not cached (Linux does the same) */
    if (e.nodeid == 0) {
        /* A negative entry, cached for entry_valid. */
        entry_store(&s->nodes, parent, name, len, NULL,
                    proto_valid_until(ufuse_valid_now_ns(), e.entry_valid, e.entry_valid_nsec));
        return -ENOENT;
    }
    struct node *n = vfs_entry_reply(s, parent, name, len, &e, seq, &rc);
    if (!n)
        return rc;
    *child = n;
    if (attr) /* the node's: local size and times win over the reply's */
        node_attr_get(&s->nodes, n, attr);
    if (fresh)
        *fresh = 1;
    return 0;
}

/* READLINK into a NUL-terminated buffer of PATH_MAX. */
static int vfs_readlink_node(ufuse_t *s, struct node *n, char *buf, size_t *len)
{
    size_t got = 0;
    int rc = vfs_call(s, FUSE_READLINK, n->nodeid, NULL, 0, NULL, 0, NULL, 0, buf,
                      PATH_MAX - 1, 0, &got);
    if (rc)
        return rc;
    if (got == 0 || memchr(buf, 0, got)) {
        ulog_once(&s->log, 41, "READLINK reply empty or holding a NUL");
        return -EIO;
    }
    buf[got] = 0;
    *len = got;
    return 0;
}

/* ---- path walk ------------------------------------------------------------------- */

#define WALK_INLINE 16

struct walk {
    ufuse_t *s;
    struct node **stk;       /* stk[0] is the root; each referenced */
    int n, cap;
    struct node *inline_stk[WALK_INLINE]; /* stk until a walk goes deeper */
    struct fuse_attr attr;   /* attributes of the top from its LOOKUP */
    int have_attr;
};

static int walk_push(struct walk *w, struct node *n)
{
    if (w->n == w->cap) {
        int cap = w->cap * 2;
        struct node **k = malloc((size_t)cap * sizeof(struct node *));
        if (!k) {
            node_put(&w->s->nodes, n);
            return -ENOMEM;
        }
        memcpy(k, w->stk, (size_t)w->n * sizeof(struct node *));
        if (w->stk != w->inline_stk)
            free(w->stk);
        w->stk = k;
        w->cap = cap;
    }
    w->stk[w->n++] = n;
    return 0;
}

static void walk_pop_to(struct walk *w, int depth)
{
    while (w->n > depth)
        node_put(&w->s->nodes, w->stk[--w->n]);
}

static void walk_end(struct walk *w)
{
    walk_pop_to(w, 0);
    if (w->stk != w->inline_stk)
        free(w->stk);
}

/* Where the calling thread's last walk left the file system under
 * outside_links (vfs_outside_path), or "" when it stayed inside. */
static __thread char walk_outside[PATH_MAX];

/* Leave the file system at @head (@hlen bytes) followed by @rest: record
 * where, for vfs_outside_path.  -EXDEV, or -ENAMETOOLONG. */
static int walk_leave(const char *head, size_t hlen, const char *rest)
{
    size_t rlen = strlen(rest);
    if (hlen + 1 + rlen + 1 > sizeof walk_outside)
        return -ENAMETOOLONG;
    memcpy(walk_outside, head, hlen);
    walk_outside[hlen] = rlen ? '/' : 0;
    if (rlen)
        memcpy(walk_outside + hlen + 1, rest, rlen + 1);
    return -EXDEV;
}

ssize_t vfs_outside_path(char *buf, size_t size)
{
    size_t len = strlen(walk_outside);
    if (!len)
        return -ENOENT;
    if (len + 1 > size)
        return -ERANGE;
    memcpy(buf, walk_outside, len + 1);
    return (ssize_t)len;
}

enum walk_mode {
    WALK_FOLLOW,    /* resolve all, following a final symlink */
    WALK_NOFOLLOW,  /* resolve all, a final symlink is the result */
    WALK_PARENT,    /* resolve all but the last component */
};

/*
 * Resolve @path.  On success the result is the top of w->stk (the parent
 * in WALK_PARENT mode, with the last name in @last/@lastlen).  A path
 * with no last name in WALK_PARENT mode ("/", "a/..") returns -EBUSY; a
 * last name "." or ".." returns -EINVAL.  @trailing_dir is set when the
 * path ends with '/'.
 */
static int walk_path(struct walk *w, const char *path, enum walk_mode mode,
                     char *last, size_t *lastlen, int *trailing_dir)
{
    ufuse_t *s = w->s;
    memset(w, 0, sizeof *w);
    w->s = s;
    w->stk = w->inline_stk;
    w->cap = WALK_INLINE;
    int rc = walk_push(w, node_root(&s->nodes));
    if (rc)
        return rc;
    size_t plen = strlen(path);
    if (plen >= PATH_MAX)
        return -ENAMETOOLONG;
    walk_outside[0] = 0;
    if (trailing_dir)
        *trailing_dir = plen > 0 && path[plen - 1] == '/';
    /* The caller's path is walked in place; only a symlink needs a buffer
     * to put the rest of the path behind its target (a hot path: no
     * allocation for a plain walk). */
    char *buf = NULL, *link = NULL;
    int links = 0;
    const char *p = path;
    rc = 0;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p) {
            if (mode == WALK_PARENT)
                rc = -EBUSY;
            break;
        }
        const char *comp = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - comp);
        const char *rest = p;
        while (*rest == '/')
            rest++;
        int is_last = *rest == 0;
        int dot = len == 1 && comp[0] == '.';
        int dotdot = len == 2 && comp[0] == '.' && comp[1] == '.';
        if (is_last && mode == WALK_PARENT) {
            if (dot || dotdot) {
                rc = -EINVAL;
                break;
            }
            if (len > PROTO_NAME_MAX) {
                rc = -ENAMETOOLONG;
                break;
            }
            if (w->stk[w->n - 1]->type != S_IFDIR) {
                rc = -ENOTDIR;
                break;
            }
            memcpy(last, comp, len);
            last[len] = 0;
            *lastlen = len;
            break;
        }
        w->have_attr = 0;
        if (w->stk[w->n - 1]->type == S_IFDIR &&
            (rc = vfs_may(s, w->stk[w->n - 1], VFS_MAY_EXEC)) != 0)
            break; /* search permission on every directory walked */
        if (dot || dotdot) {
            if (w->stk[w->n - 1]->type != S_IFDIR) {
                rc = -ENOTDIR;
                break;
            }
            if (dotdot && w->n == 1 && s->opts.outside_links) {
                rc = walk_leave("..", 2, rest); /* the mount point's parent */
                break;
            }
            if (dotdot)
                walk_pop_to(w, w->n > 1 ? w->n - 1 : 1);
            continue;
        }
        struct node *child;
        int fresh;
        rc = vfs_lookup(s, w->stk[w->n - 1], comp, len, &child, &w->attr, &fresh);
        if (rc)
            break;
        int follow = !is_last || mode != WALK_NOFOLLOW ||
                     (trailing_dir && *trailing_dir);
        if (child->type == S_IFLNK && follow) {
            size_t tlen;
            if (++links > VFS_MAX_SYMLINKS) {
                node_put(&s->nodes, child);
                rc = -ELOOP;
                break;
            }
            if (!buf && (!(buf = malloc(PATH_MAX * 2)) || !(link = malloc(PATH_MAX)))) {
                node_put(&s->nodes, child);
                rc = -ENOMEM;
                break;
            }
            rc = vfs_readlink_node(s, child, link, &tlen);
            node_put(&s->nodes, child);
            if (rc)
                break;
            if (link[0] == '/' && s->opts.outside_links) {
                rc = walk_leave(link, tlen, rest);
                break;
            }
            size_t rlen = strlen(rest);
            if (tlen + 1 + rlen + 1 > PATH_MAX * 2) {
                rc = -ENAMETOOLONG;
                break;
            }
            /* New remaining path: the target, then what was left. */
            memmove(buf + tlen + 1, rest, rlen + 1);
            memcpy(buf, link, tlen);
            buf[tlen] = '/';
            if (rlen == 0)
                buf[tlen] = 0;
            if (link[0] == '/')
                walk_pop_to(w, 1);
            p = buf;
            continue;
        }
        rc = walk_push(w, child);
        if (rc)
            break;
        w->have_attr = fresh;
    }
    free(buf);
    free(link);
    if (rc == 0 && trailing_dir && *trailing_dir && mode != WALK_PARENT &&
        w->stk[w->n - 1]->type != S_IFDIR)
        rc = -ENOTDIR;
    return rc;
}

/* Resolve @path to a referenced node. */
static int vfs_resolve(ufuse_t *s, const char *path, int follow, struct node **out,
                       struct fuse_attr *attr, int *have_attr)
{
    struct walk w = {.s = s};
    int rc = walk_path(&w, path, follow ? WALK_FOLLOW : WALK_NOFOLLOW, NULL, NULL, NULL);
    if (rc == 0) {
        *out = w.stk[--w.n];
        if (attr)
            *attr = w.attr;
        if (have_attr)
            *have_attr = w.have_attr;
    }
    walk_end(&w);
    return rc;
}

/* Resolve all but the last component of @path. */
static int vfs_resolve_parent(ufuse_t *s, const char *path, struct node **parent,
                              char name[PROTO_NAME_MAX + 1], size_t *len)
{
    struct walk w = {.s = s};
    int rc = walk_path(&w, path, WALK_PARENT, name, len, NULL);
    if (rc == 0)
        *parent = w.stk[--w.n];
    walk_end(&w);
    return rc;
}

/* ---- attributes ------------------------------------------------------------------- */

/* Most names a stat answered from the caches alone may have. */
#define VFS_CACHED_NAMES 32

/* A stat answered from the entry and attribute caches alone: 1 and *@st,
 * or 0 when anything is missing or unusual ("." or "..", a trailing
 * slash, a symlink on the way, a long path): the walk decides those. */
static int vfs_getattr_cached(ufuse_t *s, const char *path, int follow, struct stat *st)
{
    struct node_name names[VFS_CACHED_NAMES];
    int n = 0;
    const char *p = path;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *name = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - name);
        if (n == VFS_CACHED_NAMES || len > PROTO_NAME_MAX ||
            (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.'))))
            return 0;
        names[n++] = (struct node_name){name, len};
    }
    if ((size_t)(p - path) >= PATH_MAX || (n && p[-1] == '/') || s->opts.default_permissions)
        return 0; /* (permissions: the walk checks search on each directory) */
    struct fuse_attr a;
    if (!node_walk_cached(&s->nodes, names, n, follow, &a))
        return 0;
    proto_attr_to_stat(&a, st);
    return 1;
}

int vfs_getattr_path(ufuse_t *s, const char *path, int follow, struct stat *st)
{
    if (vfs_getattr_cached(s, path, follow, st))
        return 0;
    struct node *n;
    struct fuse_attr a;
    int have;
    int rc = vfs_resolve(s, path, follow, &n, &a, &have);
    if (rc)
        return rc;
    /* A LOOKUP in this very walk is as fresh as a GETATTR would be. */
    if (!have)
        rc = vfs_getattr_node(s, n, &a);
    if (rc == 0)
        proto_attr_to_stat(&a, st);
    node_put(&s->nodes, n);
    return rc;
}

/* SETATTR @in on @n and store the attributes it answers. */
static int vfs_setattr_node(ufuse_t *s, struct node *n, struct fuse_setattr_in *in)
{
    if (in->valid & FATTR_MODE) /* the whole mode, file type included, as Linux */
        in->mode = (in->mode & 07777) | n->type;
    if (s->conn.p.minor < 9) /* FATTR_*_NOW came with 7.9 */
        in->valid &= ~(uint32_t)(FATTR_ATIME_NOW | FATTR_MTIME_NOW);
    int size_set = !!(in->valid & FATTR_SIZE);
    if (!(in->valid & FATTR_FH))
        vfs_release_wait(s, n->nodeid);
    /* Times set explicitly must survive the write-back of earlier writes
     * (cp -a: write, then utimensat): write back first.  The kernel gets
     * the same by sending its local mtime after write-back. */
    if (in->valid & (FATTR_MTIME | FATTR_ATIME))
        io_writeback_node(&s->io, n);
    /* A size change: writers and write-back wait, the cache follows. */
    struct cache_obj *co = size_set ? io_setsize_begin(&s->io, n) : NULL;
    node_attr_changed(&s->nodes, n);
    uint64_t seq = node_attr_seq(&s->nodes);
    struct fuse_attr_out ao;
    memset(&ao, 0, sizeof ao);
    int rc = vfs_call(s, FUSE_SETATTR, n->nodeid, in, sizeof *in, NULL, 0, NULL, 0, &ao,
                      proto_attr_out_size(s->conn.p.minor), 1, NULL);
    if (rc == 0)
        rc = node_attr_store(&s->nodes, n, &ao.attr, ao.attr_valid, ao.attr_valid_nsec, seq);
    io_setsize_end(&s->io, co, rc, size_set, in->size);
    return rc;
}

int vfs_setattr(ufuse_t *s, const char *path, ufuse_file_t *f, int follow,
                struct fuse_setattr_in *in)
{
    struct node *n;
    if (f) {
        n = f->io.node;
        node_get(&s->nodes, n);
        in->valid |= FATTR_FH;
        in->fh = f->io.fh;
    } else {
        int rc = vfs_resolve(s, path, follow, &n, NULL, NULL);
        if (rc)
            return rc;
    }
    if ((in->valid & FATTR_SIZE) && n->type == S_IFDIR) {
        node_put(&s->nodes, n);
        return -EISDIR;
    }
    if ((in->valid & FATTR_SIZE) && n->type != S_IFREG) {
        node_put(&s->nodes, n);
        return -EINVAL;
    }
    int rc = vfs_may_setattr(s, n, in);
    if (rc == 0)
        rc = vfs_setattr_node(s, n, in);
    node_put(&s->nodes, n);
    return rc;
}

int vfs_access(ufuse_t *s, const char *path, int mode)
{
    struct node *n;
    int rc = vfs_resolve(s, path, 1, &n, NULL, NULL);
    if (rc)
        return rc;
    if (mode != F_OK && s->opts.default_permissions) {
        rc = vfs_may(s, n, mode & (R_OK | W_OK | X_OK));
    } else if (mode != F_OK) {
        struct fuse_access_in ai = {.mask = (uint32_t)mode};
        rc = vfs_call(s, FUSE_ACCESS, n->nodeid, &ai, sizeof ai, NULL, 0, NULL, 0, NULL, 0,
                      0, NULL);
        if (rc == -ENOSYS)
            rc = 0; /* the server leaves checks to its own calls */
    }
    node_put(&s->nodes, n);
    return rc;
}

/* ---- namespace ---------------------------------------------------------------------- */

/* Finish a request that made @name in @parent (entry reply @e). */
static int vfs_made(ufuse_t *s, struct node *parent, const char *name, size_t len,
                    const struct fuse_entry_out *e, uint64_t seq, uint32_t want_type)
{
    int rc = 0;
    node_attr_changed(&s->nodes, parent);
    if (e->nodeid == 0 || (e->attr.mode & S_IFMT) != want_type) {
        ulog_once(&s->log, 42, "entry reply of the wrong type for \"%s\"", name);
        entry_drop(&s->nodes, parent->nodeid, name, len);
        return -EIO;
    }
    struct node *n = vfs_entry_reply(s, parent, name, len, e, seq, &rc);
    node_put(&s->nodes, n);
    return rc;
}

/* Map the walker's "no last name" results for calls that create. */
static int vfs_create_errno(int rc)
{
    return rc == -EINVAL || rc == -EBUSY ? -EEXIST : rc;
}

/*
 * Make the last component of @path with @op, whose body is @pre, the name,
 * then @post (MKNOD, MKDIR, SYMLINK, LINK), expecting a node of @type.
 */
static int vfs_make(ufuse_t *s, const char *path, uint32_t op, uint32_t type,
                    const void *pre, size_t prelen, const void *post, size_t postlen)
{
    struct node *parent;
    char name[PROTO_NAME_MAX + 1];
    size_t len;
    int rc = vfs_resolve_parent(s, path, &parent, name, &len);
    if (rc)
        return vfs_create_errno(rc);
    /* As the Linux VFS: the name is looked up first (the entry cache may
     * answer), and an existing one is EEXIST without asking the server. */
    struct node *old = NULL;
    rc = vfs_lookup(s, parent, name, len, &old, NULL, NULL);
    if (rc == 0) {
        node_put(&s->nodes, old);
        rc = -EEXIST;
    } else if (rc == -ENOENT &&
               (rc = vfs_may(s, parent, VFS_MAY_WRITE | VFS_MAY_EXEC)) == 0) {
        struct fuse_entry_out e;
        memset(&e, 0, sizeof e);
        uint64_t seq = node_attr_seq(&s->nodes);
        rc = vfs_call(s, op, parent->nodeid, pre, prelen, name, len + 1, post, postlen, &e,
                      proto_entry_out_size(s->conn.p.minor), 1, NULL);
        if (rc == 0)
            rc = vfs_made(s, parent, name, len, &e, seq, type);
    }
    node_put(&s->nodes, parent);
    return rc;
}

int vfs_mknod(ufuse_t *s, const char *path, mode_t mode, dev_t dev)
{
    if (!proto_mode_valid(mode) || S_ISDIR(mode) || S_ISLNK(mode))
        return -EINVAL;
    struct fuse_mknod_in mi = {.mode = mode, .rdev = (uint32_t)dev, .umask = 0};
    return vfs_make(s, path, FUSE_MKNOD, mode & S_IFMT, &mi,
                    proto_mknod_in_size(s->conn.p.minor), NULL, 0);
}

int vfs_mkdir(ufuse_t *s, const char *path, mode_t mode)
{
    struct fuse_mkdir_in mi = {.mode = mode & 07777, .umask = 0};
    return vfs_make(s, path, FUSE_MKDIR, S_IFDIR, &mi, sizeof mi, NULL, 0);
}

int vfs_symlink(ufuse_t *s, const char *target, const char *linkpath)
{
    size_t tlen = strlen(target);
    if (tlen == 0)
        return -ENOENT;
    if (tlen >= PATH_MAX)
        return -ENAMETOOLONG;
    return vfs_make(s, linkpath, FUSE_SYMLINK, S_IFLNK, NULL, 0, target, tlen + 1);
}

int vfs_link(ufuse_t *s, const char *existing, const char *newpath)
{
    struct node *old;
    int rc = vfs_resolve(s, existing, 0, &old, NULL, NULL);
    if (rc)
        return rc;
    if (old->type == S_IFDIR) {
        node_put(&s->nodes, old);
        return -EPERM;
    }
    struct fuse_link_in li = {.oldnodeid = old->nodeid};
    node_attr_changed(&s->nodes, old); /* its link count changes */
    rc = vfs_make(s, newpath, FUSE_LINK, old->type, &li, sizeof li, NULL, 0);
    node_put(&s->nodes, old);
    return rc == -ENOSYS ? -EPERM : rc; /* no hard links here (POSIX: EPERM) */
}

/* Forget what we know of @name in @parent and of the node it named. */
static void vfs_name_gone(ufuse_t *s, struct node *parent, const char *name, size_t len)
{
    struct node *child;
    if (entry_lookup(&s->nodes, parent, name, len, &child, 0) == ENTRY_POSITIVE) {
        node_attr_changed(&s->nodes, child); /* nlink and ctime changed */
        /* Cached data of a file nobody has open must not keep its node
         * (and the server's inode) alive once the name is gone. */
        io_drop_unused(&s->io, child);
        node_put(&s->nodes, child);
    }
    entry_drop(&s->nodes, parent->nodeid, name, len);
    node_attr_changed(&s->nodes, parent);
}

int vfs_remove(ufuse_t *s, const char *path, int dir)
{
    struct node *parent;
    char name[PROTO_NAME_MAX + 1];
    size_t len;
    int rc = vfs_resolve_parent(s, path, &parent, name, &len);
    if (rc)
        return rc;
    /* Looked up first, as the Linux VFS does (some servers rely on it),
     * with the type checks it makes: unlink of a directory is EISDIR,
     * rmdir of anything else ENOTDIR. */
    struct node *victim;
    rc = vfs_lookup(s, parent, name, len, &victim, NULL, NULL);
    if (rc == 0) {
        if (dir && victim->type != S_IFDIR)
            rc = -ENOTDIR;
        else if (!dir && victim->type == S_IFDIR)
            rc = -EISDIR;
        else
            rc = vfs_may_delete(s, parent, victim);
        node_put(&s->nodes, victim);
    }
    if (rc == 0)
        rc = vfs_call(s, dir ? FUSE_RMDIR : FUSE_UNLINK, parent->nodeid, name, len + 1, NULL,
                      0, NULL, 0, NULL, 0, 0, NULL);
    if (rc == 0)
        vfs_name_gone(s, parent, name, len);
    node_put(&s->nodes, parent);
    return rc;
}

/* Is @n on the walk's stack, i.e. @n or one of its ancestors is the top? */
static int walk_contains(const struct walk *w, const struct node *n)
{
    for (int i = 0; i < w->n; i++)
        if (w->stk[i] == n)
            return 1;
    return 0;
}

/*
 * rename(2) and renameat2(2).  As the Linux VFS does before the file
 * system hears of it: a name renamed onto itself, or onto another link to
 * the same file, succeeds doing nothing (POSIX); a directory moved under
 * itself is EINVAL, onto one of its own ancestors ENOTEMPTY; a directory
 * onto a non-directory ENOTDIR and the reverse EISDIR; NOREPLACE onto an
 * existing name EEXIST.  Some servers (libfuse 2's path locking) would
 * deadlock on the degenerate cases.
 */
int vfs_rename(ufuse_t *s, const char *from, const char *to, unsigned flags)
{
    char n1[PROTO_NAME_MAX + 1], n2[PROTO_NAME_MAX + 1];
    size_t l1, l2;
    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT))
        return -EINVAL;
    if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
        return -EINVAL;
    struct walk w1 = {.s = s}, w2 = {.s = s};
    struct node *src = NULL, *dst = NULL;
    int rc = walk_path(&w1, from, WALK_PARENT, n1, &l1, NULL);
    if (rc == 0)
        rc = walk_path(&w2, to, WALK_PARENT, n2, &l2, NULL);
    if (rc)
        goto out;
    struct node *p1 = w1.stk[w1.n - 1], *p2 = w2.stk[w2.n - 1];
    rc = vfs_lookup(s, p1, n1, l1, &src, NULL, NULL);
    if (rc)
        goto out;
    rc = vfs_lookup(s, p2, n2, l2, &dst, NULL, NULL);
    if (rc == -ENOENT && !(flags & RENAME_EXCHANGE)) {
        dst = NULL;
        rc = 0;
    }
    if (rc)
        goto out;
    int sdir = src->type == S_IFDIR;
    if (src == dst)
        goto out; /* the same file: nothing to do */
    if (dst && (flags & RENAME_NOREPLACE)) {
        rc = -EEXIST;
    } else if (sdir && walk_contains(&w2, src)) {
        rc = -EINVAL;
    } else if (dst && dst->type == S_IFDIR && walk_contains(&w1, dst)) {
        rc = (flags & RENAME_EXCHANGE) ? -EINVAL : -ENOTEMPTY;
    } else if (dst && !(flags & RENAME_EXCHANGE) && sdir != (dst->type == S_IFDIR)) {
        rc = sdir ? -ENOTDIR : -EISDIR;
    }
    /* Permissions, as the kernel's vfs_rename: the source's name may go,
     * the target's name may go or be made, and a directory that changes
     * parent must be writable (its ".." changes). */
    if (rc == 0)
        rc = vfs_may_delete(s, p1, src);
    if (rc == 0)
        rc = dst ? vfs_may_delete(s, p2, dst) : vfs_may(s, p2, VFS_MAY_WRITE | VFS_MAY_EXEC);
    if (rc == 0 && sdir && p1 != p2)
        rc = vfs_may(s, src, VFS_MAY_WRITE);
    if (rc)
        goto out;
    if (flags) {
        struct fuse_rename2_in ri = {.newdir = p2->nodeid, .flags = flags};
        rc = vfs_call(s, FUSE_RENAME2, p1->nodeid, &ri, sizeof ri, n1, l1 + 1, n2, l2 + 1,
                      NULL, 0, 0, NULL);
        if (rc == -ENOSYS)
            rc = -EINVAL; /* as Linux: flags the file system cannot honour */
    } else {
        struct fuse_rename_in ri = {.newdir = p2->nodeid};
        rc = vfs_call(s, FUSE_RENAME, p1->nodeid, &ri, sizeof ri, n1, l1 + 1, n2, l2 + 1,
                      NULL, 0, 0, NULL);
    }
    if (rc == 0) {
        vfs_name_gone(s, p1, n1, l1);
        vfs_name_gone(s, p2, n2, l2);
    }
out:
    node_put(&s->nodes, src);
    node_put(&s->nodes, dst);
    walk_end(&w1);
    walk_end(&w2);
    return rc;
}

ssize_t vfs_readlink(ufuse_t *s, const char *path, char *buf, size_t size)
{
    struct node *n;
    int rc = vfs_resolve(s, path, 0, &n, NULL, NULL);
    if (rc)
        return rc;
    if (n->type != S_IFLNK) {
        node_put(&s->nodes, n);
        return -EINVAL;
    }
    char *t = malloc(PATH_MAX);
    size_t len = 0;
    rc = t ? vfs_readlink_node(s, n, t, &len) : -ENOMEM;
    node_put(&s->nodes, n);
    if (rc == 0)
        memcpy(buf, t, UFUSE_MIN(len, size));
    free(t);
    return rc ? rc : (ssize_t)len;
}

int vfs_statfs(ufuse_t *s, const char *path, struct statvfs *st)
{
    struct node *n;
    int rc = vfs_resolve(s, path, 1, &n, NULL, NULL);
    if (rc)
        return rc;
    struct fuse_statfs_out so;
    memset(&so, 0, sizeof so);
    rc = vfs_call(s, FUSE_STATFS, n->nodeid, NULL, 0, NULL, 0, NULL, 0, &so,
                  proto_statfs_out_size(s->conn.p.minor), 1, NULL);
    if (rc == 0)
        proto_statfs_to_statvfs(&so.st, st);
    node_put(&s->nodes, n);
    return rc;
}

/* ---- extended attributes -------------------------------------------------------------- */

static int vfs_xattr_name(const char *name, size_t *len)
{
    *len = strlen(name);
    if (*len == 0 || *len > 255)
        return -ERANGE;
    return 0;
}

/* The kernel's xattr_permission under default_permissions: user.* names
 * need read (or @write: write) permission, and exist only on regular
 * files and directories; trusted.* is root's.  Others go to the server. */
static int vfs_may_xattr(ufuse_t *s, struct node *n, const char *name, int write)
{
    if (!s->opts.default_permissions || !name)
        return 0;
    if (strncmp(name, "trusted.", 8) == 0) {
        struct vfs_cred c;
        vfs_cred_get(s, &c);
        return c.uid == 0 ? 0 : -EPERM;
    }
    if (strncmp(name, "user.", 5) != 0)
        return 0;
    if (n->type != S_IFREG && n->type != S_IFDIR)
        return write ? -EPERM : -ENODATA;
    return vfs_may(s, n, write ? VFS_MAY_WRITE : VFS_MAY_READ);
}

/* GETXATTR / LISTXATTR: @size 0 asks the size only. */
static ssize_t vfs_xattr_get(ufuse_t *s, const char *path, uint32_t op, const char *name,
                             size_t namelen, void *value, size_t size)
{
    struct node *n;
    int rc = vfs_resolve(s, path, 1, &n, NULL, NULL);
    if (rc)
        return rc;
    if ((rc = vfs_may_xattr(s, n, name, 0)) != 0) {
        node_put(&s->nodes, n);
        return rc;
    }
    size = UFUSE_MIN(size, (size_t)VFS_XATTR_SIZE_MAX);
    struct fuse_getxattr_in gi = {.size = (uint32_t)size};
    struct fuse_getxattr_out go = {0};
    size_t got = 0;
    if (size == 0)
        rc = vfs_call(s, op, n->nodeid, &gi, sizeof gi, name, name ? namelen + 1 : 0, NULL,
                      0, &go, sizeof go, 1, NULL);
    else
        rc = vfs_call(s, op, n->nodeid, &gi, sizeof gi, name, name ? namelen + 1 : 0, NULL,
                      0, value, size, 0, &got);
    node_put(&s->nodes, n);
    if (rc == -ENOSYS)
        return -EOPNOTSUPP;
    if (rc)
        return rc;
    if (size == 0) {
        if (go.size > VFS_XATTR_SIZE_MAX)
            return -E2BIG;
        return (ssize_t)go.size;
    }
    if (op == FUSE_LISTXATTR && got && ((char *)value)[got - 1] != 0) {
        ulog_once(&s->log, 43, "LISTXATTR reply not NUL-terminated");
        return -EIO;
    }
    return (ssize_t)got;
}

ssize_t vfs_getxattr(ufuse_t *s, const char *path, const char *name, void *value,
                     size_t size)
{
    size_t len;
    int rc = vfs_xattr_name(name, &len);
    if (rc)
        return rc;
    return vfs_xattr_get(s, path, FUSE_GETXATTR, name, len, value, size);
}

ssize_t vfs_listxattr(ufuse_t *s, const char *path, char *list, size_t size)
{
    return vfs_xattr_get(s, path, FUSE_LISTXATTR, NULL, 0, list, size);
}

int vfs_setxattr(ufuse_t *s, const char *path, const char *name, const void *value,
                 size_t size, int flags)
{
    size_t len;
    int rc = vfs_xattr_name(name, &len);
    if (rc)
        return rc;
    if (size > VFS_XATTR_SIZE_MAX)
        return -E2BIG;
    if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
        return -EINVAL;
    struct node *n;
    rc = vfs_resolve(s, path, 1, &n, NULL, NULL);
    if (rc)
        return rc;
    if ((rc = vfs_may_xattr(s, n, name, 1)) != 0) {
        node_put(&s->nodes, n);
        return rc;
    }
    /* FUSE_SETXATTR_EXT is not offered: the 8-byte form. */
    struct fuse_setxattr_in si = {.size = (uint32_t)size, .flags = (uint32_t)flags};
    rc = vfs_call(s, FUSE_SETXATTR, n->nodeid, &si, FUSE_COMPAT_SETXATTR_IN_SIZE, name,
                  len + 1, value, size, NULL, 0, 0, NULL);
    if (rc == 0)
        node_attr_changed(&s->nodes, n); /* ctime */
    node_put(&s->nodes, n);
    return rc == -ENOSYS ? -EOPNOTSUPP : rc;
}

int vfs_removexattr(ufuse_t *s, const char *path, const char *name)
{
    size_t len;
    int rc = vfs_xattr_name(name, &len);
    if (rc)
        return rc;
    struct node *n;
    rc = vfs_resolve(s, path, 1, &n, NULL, NULL);
    if (rc)
        return rc;
    rc = vfs_may_xattr(s, n, name, 1);
    if (rc == 0)
        rc = vfs_call(s, FUSE_REMOVEXATTR, n->nodeid, name, len + 1, NULL, 0, NULL, 0, NULL, 0,
                      0, NULL);
    if (rc == 0)
        node_attr_changed(&s->nodes, n);
    node_put(&s->nodes, n);
    return rc == -ENOSYS ? -EOPNOTSUPP : rc;
}

/* ---- files ------------------------------------------------------------------------------ */

static void vfs_link_file(ufuse_t *s, ufuse_file_t *f)
{
    pthread_mutex_lock(&s->handles_mu);
    f->io.lock_owner = ++s->next_owner;
    f->prev = NULL;
    f->next = s->files;
    if (s->files)
        s->files->prev = f;
    s->files = f;
    pthread_mutex_unlock(&s->handles_mu);
}

static void vfs_unlink_file(ufuse_t *s, ufuse_file_t *f)
{
    pthread_mutex_lock(&s->handles_mu);
    if (f->prev)
        f->prev->next = f->next;
    else
        s->files = f->next;
    if (f->next)
        f->next->prev = f->prev;
    pthread_mutex_unlock(&s->handles_mu);
}

/* Make the handle object for an opened node (reference taken over). */
static ufuse_file_t *vfs_new_file(ufuse_t *s, struct node *n, const struct fuse_open_out *oo,
                                  int flags)
{
    ufuse_file_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->s = s;
    f->io.conn = &s->conn;
    f->io.nodes = &s->nodes;
    f->io.node = n;
    f->io.fh = oo->fh;
    f->io.fopen_flags = oo->open_flags;
    f->io.oflags = flags;
    f->io.m = &s->io;
    pthread_mutex_init(&f->pos_mu, NULL);
    vfs_link_file(s, f);
    if (io_file_open(&f->io) != 0) {
        io_file_close(&f->io);
        vfs_unlink_file(s, f);
        pthread_mutex_destroy(&f->pos_mu);
        free(f);
        return NULL;
    }
    return f;
}

/* Flags as the server is to see them in OPEN. */
static uint32_t vfs_open_flags(ufuse_t *s, int flags)
{
    flags &= ~(O_CREAT | O_EXCL | O_NOCTTY);
    if (!(s->conn.p.flags & FUSE_ATOMIC_O_TRUNC))
        flags &= ~O_TRUNC;
    return (uint32_t)io_open_flags(&s->io, flags);
}

static int vfs_open_node(ufuse_t *s, struct node *n, int flags, ufuse_file_t **out)
{
    if (n->type == S_IFDIR)
        return -EISDIR;
    if (n->type == S_IFLNK)
        return -ELOOP;
    if ((flags & O_DIRECTORY))
        return -ENOTDIR;
    struct fuse_open_in oi = {.flags = vfs_open_flags(s, flags)};
    struct fuse_open_out oo;
    memset(&oo, 0, sizeof oo);
    int rc = vfs_call(s, FUSE_OPEN, n->nodeid, &oi, sizeof oi, NULL, 0, NULL, 0, &oo,
                      sizeof oo, 1, NULL);
    if (rc)
        return rc;
    if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
        if (s->conn.p.flags & FUSE_ATOMIC_O_TRUNC) {
            /* The server truncated it: so does the cache. */
            struct cache_obj *co = io_setsize_begin(&s->io, n);
            node_attr_changed(&s->nodes, n);
            io_setsize_end(&s->io, co, 0, 1, 0);
        } else {
            struct fuse_setattr_in si = {.valid = FATTR_SIZE | FATTR_FH, .fh = oo.fh,
                                         .size = 0};
            rc = vfs_setattr_node(s, n, &si);
            if (rc) {
                vfs_release_fh(s, n->nodeid, oo.fh, flags, 0, 0);
                return rc;
            }
        }
    }
    node_get(&s->nodes, n);
    ufuse_file_t *f = vfs_new_file(s, n, &oo, flags);
    if (!f) {
        vfs_release_fh(s, n->nodeid, oo.fh, flags, 0, 0);
        node_put(&s->nodes, n);
        return -ENOMEM;
    }
    *out = f;
    return 0;
}

/* Open an existing file for the caller: the kernel's may_open first (read
 * and write as the access mode asks, write for O_TRUNC).  A file the same
 * call created is opened without it, as Linux does. */
static int vfs_open_existing(ufuse_t *s, struct node *n, int flags, ufuse_file_t **out)
{
    int acc = flags & O_ACCMODE;
    if (n->type == S_IFREG) {
        int rc = vfs_may(s, n, (acc != O_WRONLY ? VFS_MAY_READ : 0) |
                                   (acc != O_RDONLY || (flags & O_TRUNC) ? VFS_MAY_WRITE : 0));
        if (rc)
            return rc;
    }
    return vfs_open_node(s, n, flags, out);
}

/* CREATE @name in @parent, or MKNOD + OPEN for servers without CREATE. */
static int vfs_create_new(ufuse_t *s, struct node *parent, const char *name, size_t len,
                          int flags, mode_t mode, ufuse_file_t **out)
{
    uint32_t minor = s->conn.p.minor;
    struct fuse_entry_out e;
    memset(&e, 0, sizeof e);
    struct node *n = NULL;
    uint64_t seq = node_attr_seq(&s->nodes);
    int rc;
    if (!conn_enosys(&s->conn, FUSE_CREATE)) {
        struct fuse_create_in ci = {.flags = (uint32_t)io_open_flags(&s->io, flags & ~O_NOCTTY),
                                    .mode = S_IFREG | (mode & 07777), .umask = 0};
        struct {
            struct fuse_entry_out e;
            struct fuse_open_out o;
        } rep;
        memset(&rep, 0, sizeof rep);
        struct iovec in[2] = {{&ci, minor < 12 ? sizeof(struct fuse_open_in) : sizeof ci},
                              {(void *)name, len + 1}};
        struct iovec ov[2] = {{&rep.e, proto_entry_out_size(minor)}, {&rep.o, sizeof rep.o}};
        struct conn_req r = {.opcode = FUSE_CREATE, .nodeid = parent->nodeid, .in = in,
                             .incnt = 2, .out = ov, .outcnt = 2, .out_exact = 1};
        rc = conn_call(&s->conn, &r);
        if (rc != -ENOSYS) {
            if (rc)
                return rc;
            node_attr_changed(&s->nodes, parent);
            if (rep.e.nodeid == 0 || !S_ISREG(rep.e.attr.mode)) {
                ulog_once(&s->log, 44, "CREATE answered with a non-regular entry");
                vfs_release_fh(s, rep.e.nodeid, rep.o.fh, flags, 0, 0);
                return -EIO;
            }
            n = vfs_entry_reply(s, parent, name, len, &rep.e, seq, &rc);
            if (!n)
                return rc;
            ufuse_file_t *f = vfs_new_file(s, n, &rep.o, flags);
            if (!f) {
                vfs_release_fh(s, n->nodeid, rep.o.fh, flags, 0, 0);
                node_put(&s->nodes, n);
                return -ENOMEM;
            }
            *out = f;
            return 0;
        }
    }
    /* No CREATE: MKNOD then OPEN (not atomic, as in Linux's fallback). */
    struct fuse_mknod_in mi = {.mode = S_IFREG | (mode & 07777), .umask = 0};
    rc = vfs_call(s, FUSE_MKNOD, parent->nodeid, &mi, proto_mknod_in_size(minor), name,
                  len + 1, NULL, 0, &e, proto_entry_out_size(minor), 1, NULL);
    if (rc == 0) {
        node_attr_changed(&s->nodes, parent);
        n = e.nodeid && S_ISREG(e.attr.mode)
                ? vfs_entry_reply(s, parent, name, len, &e, seq, &rc)
                : NULL;
        if (!n && rc == 0)
            rc = -EIO;
    } else if (rc == -EEXIST && !(flags & O_EXCL)) {
        rc = vfs_lookup(s, parent, name, len, &n, NULL, NULL);
        if (rc == 0) { /* someone else's file after all: checked, truncated */
            rc = vfs_open_existing(s, n, flags, out);
            node_put(&s->nodes, n);
            return rc;
        }
    }
    if (rc)
        return rc;
    rc = vfs_open_node(s, n, flags & ~O_TRUNC, out);
    node_put(&s->nodes, n);
    return rc;
}

/*
 * O_CREAT, as Linux's fuse_atomic_open: look the name up first (the
 * entry cache may answer), create only when it does not exist, and follow
 * a symbolic link in the last component here, in our own namespace, so
 * that open("link", O_CREAT) creates the link's target (POSIX) and the
 * server never resolves a link for us.
 */
static int vfs_create(ufuse_t *s, const char *path, int flags, mode_t mode,
                      ufuse_file_t **out, int links)
{
    struct node *parent, *n = NULL;
    char name[PROTO_NAME_MAX + 1];
    size_t len;
    int rc = vfs_resolve_parent(s, path, &parent, name, &len);
    if (rc == -EINVAL || rc == -EBUSY) {
        /* "/", "a/." and the like name an existing directory. */
        return (flags & O_EXCL) ? -EEXIST : -EISDIR;
    }
    if (rc)
        return rc;
    rc = vfs_lookup(s, parent, name, len, &n, NULL, NULL);
    if (rc == -ENOENT) {
        rc = vfs_may(s, parent, VFS_MAY_WRITE | VFS_MAY_EXEC);
        if (rc == 0)
            rc = vfs_create_new(s, parent, name, len, flags, mode, out);
    } else if (rc == 0 && (flags & O_EXCL)) {
        rc = -EEXIST;
    } else if (rc == 0 && n->type == S_IFLNK && !(flags & O_NOFOLLOW)) {
        char *target = malloc(PATH_MAX), *next = malloc(PATH_MAX * 2);
        size_t tlen;
        rc = !target || !next ? -ENOMEM
             : links >= VFS_MAX_SYMLINKS ? -ELOOP
                                         : vfs_readlink_node(s, n, target, &tlen);
        if (rc == 0 && target[0] == '/' && s->opts.outside_links) {
            rc = walk_leave(target, tlen, "");
        } else if (rc == 0) {
            /* The target, relative to the link's directory. */
            const char *slash = strrchr(path, '/');
            int dlen = target[0] == '/' || !slash ? 0 : (int)(slash - path);
            snprintf(next, PATH_MAX * 2, "%.*s%s%s", dlen, path, dlen ? "/" : "", target);
            rc = strlen(next) >= PATH_MAX ? -ENAMETOOLONG
                                          : vfs_create(s, next, flags, mode, out, links + 1);
        }
        free(target);
        free(next);
    } else if (rc == 0) {
        rc = vfs_open_existing(s, n, flags, out);
    }
    node_put(&s->nodes, n);
    node_put(&s->nodes, parent);
    return rc;
}

int vfs_open(ufuse_t *s, const char *path, int flags, mode_t mode, ufuse_file_t **out)
{
    if (flags & O_CREAT)
        return vfs_create(s, path, flags, mode, out, 0);
    struct node *n;
    int rc = vfs_resolve(s, path, !(flags & O_NOFOLLOW), &n, NULL, NULL);
    if (rc)
        return rc;
    rc = vfs_open_existing(s, n, flags, out);
    node_put(&s->nodes, n);
    return rc;
}

int vfs_flush(ufuse_file_t *f)
{
    /* Dirty data goes out before FLUSH (Linux's fuse_flush). */
    int wb = io_file_sync(&f->io);
    struct fuse_flush_in fi = {.fh = f->io.fh, .lock_owner = f->io.lock_owner};
    int rc = vfs_call(f->s, FUSE_FLUSH, f->io.node->nodeid, &fi, sizeof fi, NULL, 0, NULL, 0,
                      NULL, 0, 0, NULL);
    if (rc == -ENOSYS)
        rc = 0;
    return wb ? wb : rc;
}

int vfs_close(ufuse_file_t *f, int flush)
{
    ufuse_t *s = f->s;
    struct node *n = f->io.node;
    /* Without FLUSH, dirty data is still written back before RELEASE. */
    int rc = flush ? vfs_flush(f) : io_file_sync(&f->io);
    io_file_close(&f->io);
    vfs_release_fh(s, n->nodeid, f->io.fh, f->io.oflags, f->io.lock_owner, 0);
    vfs_unlink_file(s, f);
    node_put(&s->nodes, n);
    pthread_mutex_destroy(&f->pos_mu);
    free(f);
    return rc;
}

int vfs_fsync(ufuse_file_t *f, int datasync)
{
    /* A failed write-back is the answer; no FSYNC then (Linux's fuse_fsync
     * returns when file_write_and_wait_range fails). */
    int rc = io_file_sync(&f->io);
    if (rc)
        return rc;
    struct fuse_fsync_in fi = {.fh = f->io.fh, .fsync_flags = datasync ? 1 : 0};
    rc = vfs_call(f->s, FUSE_FSYNC, f->io.node->nodeid, &fi, sizeof fi, NULL, 0, NULL, 0, NULL,
                  0, 0, NULL);
    return rc == -ENOSYS ? 0 : rc;
}

int vfs_fstat(ufuse_file_t *f, struct stat *st)
{
    struct fuse_attr a;
    int rc = io_getattr(&f->io, &a);
    if (rc == 0)
        proto_attr_to_stat(&a, st);
    return rc;
}

/* A new close-on-exec descriptor of the shared region's memfd @which. */
static int vfs_share_dup(ufuse_t *s, int which)
{
    if (!s->region.base || s->region.fd < 0)
        return -EOPNOTSUPP;
    int fd = fcntl(which, F_DUPFD_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

int vfs_share_fd(ufuse_t *s)
{
    return vfs_share_dup(s, s->region.fd);
}

int vfs_share_refs_fd(ufuse_t *s)
{
    return vfs_share_dup(s, s->region.refs_fd);
}

int vfs_file_share(ufuse_file_t *f, struct ufuse_share_ids *ids)
{
    struct io_file *io = &f->io;
    if (!f->s->region.base || !io->buffered || !io->obj || (io->oflags & O_DIRECT) ||
        (io->fopen_flags & (FOPEN_NONSEEKABLE | FOPEN_STREAM)))
        return -EOPNOTSUPP;
    uint32_t slot = node_share_slot(&f->s->nodes, io->node);
    if (!slot)
        return -EOPNOTSUPP;
    *ids = (struct ufuse_share_ids){.key = io->obj->key, .nodeid = io->node->nodeid,
                                    .generation = io->node->generation, .attr_slot = slot};
    return 0;
}

int vfs_fallocate(ufuse_file_t *f, int mode, off_t off, off_t len)
{
    if (off < 0 || len <= 0)
        return -EINVAL;
    if ((uint64_t)off + (uint64_t)len > (uint64_t)INT64_MAX)
        return -EFBIG;
    if ((f->io.oflags & O_ACCMODE) == O_RDONLY)
        return -EBADF;
    struct fuse_fallocate_in fi = {.fh = f->io.fh, .offset = (uint64_t)off,
                                   .length = (uint64_t)len, .mode = (uint32_t)mode};
    /* The range changes on the server: write back and drop our copy. */
    int rc = io_range_changed(&f->s->io, f->io.node, (uint64_t)off, (uint64_t)len, 1);
    if (rc)
        return rc;
    node_attr_changed(&f->s->nodes, f->io.node);
    rc = vfs_call(f->s, FUSE_FALLOCATE, f->io.node->nodeid, &fi, sizeof fi, NULL, 0, NULL, 0,
                  NULL, 0, 0, NULL);
    io_range_changed(&f->s->io, f->io.node, (uint64_t)off, (uint64_t)len, 1);
    if (rc == 0 && !(mode & FALLOC_FL_KEEP_SIZE)) /* our size may be the local one */
        node_size_extend(&f->s->nodes, f->io.node, (uint64_t)off + (uint64_t)len);
    return rc == -ENOSYS ? -EOPNOTSUPP : rc;
}

off_t vfs_lseek(ufuse_file_t *f, off_t off, int whence)
{
    struct fuse_attr a;
    off_t res;
    int rc;
    pthread_mutex_lock(&f->pos_mu);
    switch (whence) {
    case SEEK_SET:
        res = off;
        break;
    case SEEK_CUR:
        res = f->pos + off;
        break;
    case SEEK_END:
        rc = io_getattr(&f->io, &a);
        if (rc) {
            res = rc;
            goto out;
        }
        res = (off_t)a.size + off;
        break;
    case SEEK_DATA:
    case SEEK_HOLE: {
        if (off < 0) {
            res = -ENXIO;
            goto out;
        }
        /* The server knows only what was written back. */
        rc = io_range_changed(&f->s->io, f->io.node, 0, 0, 0);
        if (rc) {
            res = rc;
            goto out;
        }
        struct fuse_lseek_in li = {.fh = f->io.fh, .offset = (uint64_t)off,
                                   .whence = (uint32_t)whence};
        struct fuse_lseek_out lo = {0};
        rc = vfs_call(f->s, FUSE_LSEEK, f->io.node->nodeid, &li, sizeof li, NULL, 0, NULL, 0,
                      &lo, sizeof lo, 1, NULL);
        if (rc == 0) {
            if (lo.offset > (uint64_t)INT64_MAX) {
                ulog_once(&f->s->log, 45, "LSEEK answered an offset out of range");
                res = -EIO;
                goto out;
            }
            res = (off_t)lo.offset;
            break;
        }
        if (rc != -ENOSYS) {
            res = rc;
            goto out;
        }
        /* POSIX fallback: all data, one hole at the end. */
        rc = io_getattr(&f->io, &a);
        if (rc) {
            res = rc;
            goto out;
        }
        if ((uint64_t)off >= a.size) {
            res = -ENXIO;
            goto out;
        }
        res = whence == SEEK_DATA ? off : (off_t)a.size;
        break;
    }
    default:
        res = -EINVAL;
        goto out;
    }
    if (res < 0) {
        res = -EINVAL;
        goto out;
    }
    f->pos = res;
out:
    pthread_mutex_unlock(&f->pos_mu);
    return res;
}

/* copy_file_range by reading and writing through the data path. */
static ssize_t vfs_copy_by_rw(ufuse_file_t *in, off_t off_in, ufuse_file_t *out,
                              off_t off_out, size_t len)
{
    char *buf = malloc(VFS_COPY_CHUNK);
    if (!buf)
        return -ENOMEM;
    size_t done = 0;
    ssize_t rc = 0;
    while (done < len) {
        struct iovec v = {buf, UFUSE_MIN(len - done, (size_t)VFS_COPY_CHUNK)};
        rc = io_dispatch_read(&in->io, &v, 1, off_in + (off_t)done);
        if (rc <= 0)
            break;
        v.iov_len = (size_t)rc;
        off_t where;
        rc = io_dispatch_write(&out->io, &v, 1, off_out + (off_t)done, &where);
        if (rc <= 0)
            break;
        done += (size_t)rc;
        if ((size_t)rc < v.iov_len)
            break;
    }
    free(buf);
    return done ? (ssize_t)done : rc;
}

ssize_t vfs_copy_file_range(ufuse_file_t *in, off_t off_in, ufuse_file_t *out,
                            off_t off_out, size_t len, unsigned flags)
{
    if (flags)
        return -EINVAL;
    if (off_in < 0 || off_out < 0)
        return -EINVAL;
    if ((in->io.oflags & O_ACCMODE) == O_WRONLY || (out->io.oflags & O_ACCMODE) == O_RDONLY)
        return -EBADF;
    if (out->io.oflags & O_APPEND)
        return -EBADF;
    if (len == 0)
        return 0;
    struct fuse_copy_file_range_in ci = {
        .fh_in = in->io.fh, .off_in = (uint64_t)off_in, .nodeid_out = out->io.node->nodeid,
        .fh_out = out->io.fh, .off_out = (uint64_t)off_out, .len = len, .flags = 0};
    /* The server copies what it has: write back the source range, and
     * the destination's cached pages go (before and after). */
    int rc = io_range_changed(&in->s->io, in->io.node, (uint64_t)off_in, len, 0);
    if (rc == 0)
        rc = io_range_changed(&out->s->io, out->io.node, (uint64_t)off_out, len, 1);
    if (rc)
        return rc;
    struct fuse_write_out wo = {0};
    rc = vfs_call(in->s, FUSE_COPY_FILE_RANGE, in->io.node->nodeid, &ci, sizeof ci, NULL,
                      0, NULL, 0, &wo, sizeof wo, 1, NULL);
    if (rc == -ENOSYS)
        return vfs_copy_by_rw(in, off_in, out, off_out, len);
    io_range_changed(&out->s->io, out->io.node, (uint64_t)off_out, len, 1);
    if (rc)
        return rc;
    if (wo.size > len) {
        ulog_once(&in->s->log, 46, "COPY_FILE_RANGE claims more than asked");
        node_attr_changed(&in->s->nodes, out->io.node);
        return -EIO;
    }
    if (wo.size)
        node_size_extend(&in->s->nodes, out->io.node, (uint64_t)off_out + wo.size);
    return (ssize_t)wo.size;
}

/* ---- directories ---------------------------------------------------------------------- */

int vfs_opendir(ufuse_t *s, const char *path, ufuse_dir_t **out)
{
    struct node *n;
    int rc = vfs_resolve(s, path, 1, &n, NULL, NULL);
    if (rc)
        return rc;
    if (n->type != S_IFDIR) {
        node_put(&s->nodes, n);
        return -ENOTDIR;
    }
    if ((rc = vfs_may(s, n, VFS_MAY_READ)) != 0) {
        node_put(&s->nodes, n);
        return rc;
    }
    struct fuse_open_in oi = {.flags = O_RDONLY | O_DIRECTORY};
    struct fuse_open_out oo;
    memset(&oo, 0, sizeof oo);
    rc = vfs_call(s, FUSE_OPENDIR, n->nodeid, &oi, sizeof oi, NULL, 0, NULL, 0, &oo,
                  sizeof oo, 1, NULL);
    if (rc) {
        node_put(&s->nodes, n);
        return rc;
    }
    ufuse_dir_t *d = calloc(1, sizeof *d);
    if (d)
        d->buf = malloc(VFS_READDIR_SIZE);
    if (!d || !d->buf) {
        free(d);
        vfs_release_fh(s, n->nodeid, oo.fh, O_RDONLY, 0, 1);
        node_put(&s->nodes, n);
        return -ENOMEM;
    }
    d->s = s;
    d->node = n;
    d->fh = oo.fh;
    d->plus = (s->conn.p.flags & FUSE_DO_READDIRPLUS) && !conn_enosys(&s->conn, FUSE_READDIRPLUS);
    d->plus_first_only = d->plus && (s->conn.p.flags & FUSE_READDIRPLUS_AUTO);
    pthread_mutex_lock(&s->handles_mu);
    d->next = s->dirs;
    if (s->dirs)
        s->dirs->prev = d;
    s->dirs = d;
    pthread_mutex_unlock(&s->handles_mu);
    *out = d;
    return 0;
}

/* Fetch the next batch of entries. */
static int vfs_readdir_fill(ufuse_dir_t *d)
{
    ufuse_t *s = d->s;
    for (;;) {
        struct fuse_read_in ri = {.fh = d->fh, .offset = d->next_off,
                                  .size = VFS_READDIR_SIZE, .flags = O_RDONLY};
        size_t got = 0;
        /* The entries' attributes are as old as the request, however late
         * they are parsed (a local change in between wins). */
        d->seq = node_attr_seq(&s->nodes);
        int rc = vfs_call(s, d->plus ? FUSE_READDIRPLUS : FUSE_READDIR, d->node->nodeid, &ri,
                          sizeof ri, NULL, 0, NULL, 0, d->buf, VFS_READDIR_SIZE, 0, &got);
        if (rc == -ENOSYS && d->plus) {
            d->plus = 0; /* server without READDIRPLUS after all */
            continue;
        }
        if (rc)
            return rc;
        /* READDIRPLUS_AUTO: attributes with the first batch only, as Linux
         * does for a listing nobody stats: the rest is plain READDIR (for
         * some servers, passthrough_ll among them, a lookup per entry is
         * costly).  The batch just read is parsed as what it was. */
        d->parse_plus = d->plus;
        if (d->plus_first_only)
            d->plus = 0;
        d->len = got;
        d->pos = 0;
        if (got == 0)
            d->eof = 1;
        return 0;
    }
}

int vfs_readdir(ufuse_dir_t *d, struct ufuse_dirent *ent)
{
    ufuse_t *s = d->s;
    for (;;) {
        if (d->eof)
            return 0;
        if (d->pos >= d->len) {
            int rc = vfs_readdir_fill(d);
            if (rc)
                return rc;
            continue;
        }
        struct proto_dirent de;
        int rc = proto_dirent_next(d->buf, d->len, &d->pos, d->parse_plus, &de);
        if (rc < 0) {
            ulog_once(&s->log, 47, "malformed directory entry in %s reply",
                      d->parse_plus ? "READDIRPLUS" : "READDIR");
            d->pos = d->len;
            return -EIO;
        }
        if (rc == 0)
            continue;
        memset(ent, 0, sizeof *ent);
        ent->ino = de.ino;
        ent->off = de.off;
        ent->type = de.type;
        memcpy(ent->name, de.name, de.namelen);
        ent->name[de.namelen] = 0;
        d->next_off = de.off;
        if (de.entry && de.entry->nodeid) {
            /* The server counted a lookup: take the node and its entry. */
            int err = 0;
            struct node *n = vfs_entry_reply(s, d->node, ent->name, de.namelen, de.entry,
                                             d->seq, &err);
            if (n) {
                proto_attr_to_stat(&de.entry->attr, &ent->st);
                ent->has_stat = 1;
                node_put(&s->nodes, n);
            }
        }
        return 1;
    }
}

int vfs_rewinddir(ufuse_dir_t *d)
{
    if (d->plus_first_only)
        d->plus = 1;
    d->next_off = 0;
    d->len = d->pos = 0;
    d->eof = 0;
    return 0;
}

int vfs_fsyncdir(ufuse_dir_t *d, int datasync)
{
    struct fuse_fsync_in fi = {.fh = d->fh, .fsync_flags = datasync ? 1 : 0};
    int rc = vfs_call(d->s, FUSE_FSYNCDIR, d->node->nodeid, &fi, sizeof fi, NULL, 0, NULL, 0,
                      NULL, 0, 0, NULL);
    return rc == -ENOSYS ? 0 : rc;
}

int vfs_closedir(ufuse_dir_t *d)
{
    ufuse_t *s = d->s;
    vfs_release_fh(s, d->node->nodeid, d->fh, O_RDONLY, 0, 1);
    pthread_mutex_lock(&s->handles_mu);
    if (d->prev)
        d->prev->next = d->next;
    else
        s->dirs = d->next;
    if (d->next)
        d->next->prev = d->prev;
    pthread_mutex_unlock(&s->handles_mu);
    node_put(&s->nodes, d->node);
    free(d->buf);
    free(d);
    return 0;
}

/* ---- notifications ------------------------------------------------------------------------ */

void vfs_notify(void *ctx, int code, const void *body, size_t len)
{
    ufuse_t *s = ctx;
    (void)len; /* proto_notify_check verified the length */
    switch (code) {
    case FUSE_NOTIFY_INVAL_INODE: {
        const struct fuse_notify_inval_inode_out *o = body;
        node_invalidate_id(&s->nodes, o->ino);
        struct cache_obj *co = s->io.cache_on ? cache_obj_find(&s->io.cache, o->ino) : NULL;
        if (co && o->off >= 0) {
            /* Clean data goes now; dirty data is written back first, by a
             * worker (this thread receives the replies that needs). */
            uint64_t off = (uint64_t)o->off, dlen = o->len > 0 ? (uint64_t)o->len : 0;
            cache_drop_clean(co, off, dlen);
            if (cache_obj_dirty(co))
                cache_invalidate_async(co, off, dlen);
            cache_attr_forget(co);
        }
        if (co)
            cache_obj_put(co);
        break;
    }
    case FUSE_NOTIFY_INVAL_ENTRY: {
        const struct fuse_notify_inval_entry_out *o = body;
        entry_drop(&s->nodes, o->parent, (const char *)(o + 1), o->namelen);
        node_invalidate_id(&s->nodes, o->parent);
        break;
    }
    case FUSE_NOTIFY_DELETE: {
        const struct fuse_notify_delete_out *o = body;
        entry_drop(&s->nodes, o->parent, (const char *)(o + 1), o->namelen);
        node_invalidate_id(&s->nodes, o->parent);
        node_invalidate_id(&s->nodes, o->child);
        break;
    }
    case FUSE_NOTIFY_STORE: {
        /* The data goes into the cache; the size can grow (as Linux's). */
        const struct fuse_notify_store_out *o = body;
        node_size_extend_id(&s->nodes, o->nodeid, o->offset + o->size);
        struct cache_obj *co = s->io.cache_on ? cache_obj_find(&s->io.cache, o->nodeid) : NULL;
        if (co) {
            cache_store(co, o->offset, o + 1, o->size, node_size(&s->nodes, co->node));
            cache_obj_put(co);
        }
        break;
    }
    case FUSE_NOTIFY_RETRIEVE: {
        /* The cached pages from offset up to the first missing one. */
        const struct fuse_notify_retrieve_out *o = body;
        struct fuse_notify_retrieve_in ri = {.offset = o->offset, .size = 0};
        struct cache_obj *co = s->io.cache_on ? cache_obj_find(&s->io.cache, o->nodeid) : NULL;
        size_t max = UFUSE_MIN((size_t)o->size, (size_t)s->conn.p.max_write);
        char *data = co && max ? malloc(max) : NULL;
        if (data)
            ri.size = (uint32_t)cache_retrieve(co, o->offset, max,
                                               node_size(&s->nodes, co->node), data);
        if (co)
            cache_obj_put(co);
        struct iovec iov[2] = {{&ri, sizeof ri}, {data, ri.size}};
        conn_send_noreply(&s->conn, FUSE_NOTIFY_REPLY, o->nodeid, o->notify_unique, iov,
                          ri.size ? 2 : 1);
        free(data);
        break;
    }
    case FUSE_NOTIFY_POLL:
    default:
        break;
    }
}
