/*
 * fs.c - the object model of ufuse-memfs: inodes and their lifetime, open
 * file handles, directories with stable readdir cookies, xattrs, and the
 * POSIX permission check.
 *
 * Locks (order in memfs.h):
 *   memfs.itable_mu  the inode hash table; every inode's nlookup, nopen,
 *                    refs; writes of nlink
 *   memfs.fh_mu      the handle hash table
 *   memfs.ns_lock    (held by the callers of dir_*) directory contents and
 *                    the dirent hash table
 *   inode->lock      (held by the callers of xattr_* and inode_stat)
 *   inode->amu       atime
 *
 * Invariants:
 *  1. Inode numbers come from a counter and are never reused, so a nodeid
 *     names at most one inode ever; generation is 1 for every inode.
 *  2. An inode stays in the table (and allocated) while nlink > 0, or
 *     nlookup > 0, or nopen > 0, or refs > 0.  The thread that brings all
 *     four to zero unhashes and frees it.  nlink only changes while the
 *     changer holds a ref, so the zero test happens in inode_put().
 *  3. Each directory's slots are sorted by strictly increasing cookie;
 *     cookies are never reused within a directory (next_cookie only grows)
 *     and an entry keeps its cookie until it is removed.  readdir at offset
 *     c returns the live entries with cookie > c, so entries that survive a
 *     concurrent removal are neither skipped nor repeated.
 *  4. A dirent is in memfs.dtab (keyed by directory inode number and name)
 *     iff it is in its directory's slots, at index ->slot.
 *  5. A directory's nlink is 2 + its subdirectory count while linked, 0 once
 *     removed; a non-directory's nlink is its number of dirents.
 *  6. ->xattr_names is the sum of strlen(name) + 1 over ->xattrs.
 *  7. File handles come from a counter, are never reused, and each holds
 *     one nopen of its inode until released.
 */
#include "memfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

struct memfs memfs;

void fs_now(struct timespec *ts)
{
    clock_gettime(CLOCK_REALTIME, ts);
}

static inline size_t hash_u64(uint64_t k, size_t cap)
{
    k ^= k >> 33;
    k *= UINT64_C(0xff51afd7ed558ccd);
    k ^= k >> 33;
    return (size_t)(k & (cap - 1));
}

/* ------------------------------------------------------------------ */
/* Inode table                                                          */
/* ------------------------------------------------------------------ */

static void itab_grow(void)
{
    size_t ncap = memfs.itab_cap ? memfs.itab_cap * 2 : 1024;
    struct inode **nt = calloc(ncap, sizeof(*nt));
    if (!nt)
        return;     /* keep the longer chains */
    for (size_t i = 0; i < memfs.itab_cap; i++) {
        struct inode *ip = memfs.itab[i];
        while (ip) {
            struct inode *next = ip->hnext;
            size_t h = hash_u64(ip->ino, ncap);
            ip->hnext = nt[h];
            nt[h] = ip;
            ip = next;
        }
    }
    free(memfs.itab);
    memfs.itab = nt;
    memfs.itab_cap = ncap;
}

static struct inode *itab_find(uint64_t ino)
{
    if (!memfs.itab_cap)
        return NULL;
    for (struct inode *ip = memfs.itab[hash_u64(ino, memfs.itab_cap)]; ip; ip = ip->hnext)
        if (ip->ino == ino)
            return ip;
    return NULL;
}

static void itab_remove(struct inode *ip)
{
    struct inode **pp = &memfs.itab[hash_u64(ip->ino, memfs.itab_cap)];
    while (*pp != ip)
        pp = &(*pp)->hnext;
    *pp = ip->hnext;
    memfs.itab_n--;
}

void fs_init(void)
{
    pthread_rwlock_init(&memfs.ns_lock, NULL);
    pthread_mutex_init(&memfs.itable_mu, NULL);
    pthread_mutex_init(&memfs.fh_mu, NULL);
    memfs.next_ino = MEMFS_ROOT_INO;
    memfs.next_fh = 1;
    itab_grow();
}

/* A new inode with nlink 0 and one ref (the creator's); the caller sets
 * nlink when it links the inode into a directory. */
struct inode *inode_new(mode_t mode, uid_t uid, gid_t gid, dev_t rdev)
{
    struct inode *ip = calloc(1, sizeof(*ip));
    if (!ip)
        return NULL;
    pthread_rwlock_init(&ip->lock, NULL);
    pthread_mutex_init(&ip->amu, NULL);
    ip->generation = 1;
    ip->type = mode & S_IFMT;
    ip->mode = mode;
    ip->uid = uid;
    ip->gid = gid;
    ip->rdev = rdev;
    fs_now(&ip->mtime);
    ip->ctime = ip->mtime;
    ip->atime = ip->mtime;
    ip->dir.next_cookie = 3;
    ip->refs = 1;
    pthread_mutex_lock(&memfs.itable_mu);
    ip->ino = memfs.next_ino++;
    if (memfs.itab_n >= memfs.itab_cap)
        itab_grow();
    size_t h = hash_u64(ip->ino, memfs.itab_cap);
    ip->hnext = memfs.itab[h];
    memfs.itab[h] = ip;
    memfs.itab_n++;
    pthread_mutex_unlock(&memfs.itable_mu);
    return ip;
}

static void inode_free(struct inode *ip)
{
    store_destroy(&ip->data);
    free(ip->target);
    xattr_free_all(ip);
    free(ip->dir.slots);
    pthread_rwlock_destroy(&ip->lock);
    pthread_mutex_destroy(&ip->amu);
    free(ip);
}

/* With itable_mu held: unhash @ip if nothing keeps it; @return true if the
 * caller must free it (after dropping the mutex). */
static bool inode_maybe_unhash(struct inode *ip)
{
    if (ip->refs || ip->nlookup || ip->nopen ||
        atomic_load_explicit(&ip->nlink, memory_order_relaxed))
        return false;
    itab_remove(ip);
    return true;
}

struct inode *inode_get(uint64_t ino)
{
    pthread_mutex_lock(&memfs.itable_mu);
    struct inode *ip = itab_find(ino);
    if (ip)
        ip->refs++;
    pthread_mutex_unlock(&memfs.itable_mu);
    return ip;
}

void inode_hold(struct inode *ip)
{
    pthread_mutex_lock(&memfs.itable_mu);
    ip->refs++;
    pthread_mutex_unlock(&memfs.itable_mu);
}

void inode_put(struct inode *ip)
{
    if (!ip)
        return;
    pthread_mutex_lock(&memfs.itable_mu);
    ip->refs--;
    bool dead = inode_maybe_unhash(ip);
    pthread_mutex_unlock(&memfs.itable_mu);
    if (dead)
        inode_free(ip);
}

void inode_lookup_inc(struct inode *ip)
{
    pthread_mutex_lock(&memfs.itable_mu);
    ip->nlookup++;
    pthread_mutex_unlock(&memfs.itable_mu);
}

static void forget_locked(struct inode *ip, uint64_t n, bool *dead)
{
    if (n > ip->nlookup) {
        memfs_warn("forget of %llu references on inode %llu which has %llu",
                    (unsigned long long)n, (unsigned long long)ip->ino,
                    (unsigned long long)ip->nlookup);
        n = ip->nlookup;
    }
    ip->nlookup -= n;
    *dead = inode_maybe_unhash(ip);
}

void inode_forget(uint64_t ino, uint64_t n)
{
    bool dead = false;
    pthread_mutex_lock(&memfs.itable_mu);
    struct inode *ip = itab_find(ino);
    if (ip)
        forget_locked(ip, n, &dead);
    pthread_mutex_unlock(&memfs.itable_mu);
    if (!ip)
        memfs_warn("forget of unknown inode %llu", (unsigned long long)ino);
    if (dead)
        inode_free(ip);
}

/* Forget through a pointer the caller keeps alive by a ref. */
void inode_forget_ptr(struct inode *ip, uint64_t n)
{
    bool dead = false;
    pthread_mutex_lock(&memfs.itable_mu);
    forget_locked(ip, n, &dead);
    pthread_mutex_unlock(&memfs.itable_mu);
    if (dead)
        inode_free(ip);
}

void inode_nlink_set(struct inode *ip, uint32_t n)
{
    pthread_mutex_lock(&memfs.itable_mu);
    atomic_store_explicit(&ip->nlink, n, memory_order_relaxed);
    pthread_mutex_unlock(&memfs.itable_mu);
}

uint64_t inode_count(void)
{
    pthread_mutex_lock(&memfs.itable_mu);
    uint64_t n = memfs.itab_n;
    pthread_mutex_unlock(&memfs.itable_mu);
    return n;
}

void inode_stat(struct inode *ip, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ip->ino;
    st->st_mode = ip->mode;
    st->st_nlink = atomic_load_explicit(&ip->nlink, memory_order_relaxed);
    st->st_uid = ip->uid;
    st->st_gid = ip->gid;
    st->st_rdev = ip->rdev;
    st->st_size = ip->size;
    st->st_blksize = 4096;
    st->st_blocks = (blkcnt_t)(ip->data.nchunks * (MEMFS_CHUNK / 512));
    st->st_mtim = ip->mtime;
    st->st_ctim = ip->ctime;
    pthread_mutex_lock(&ip->amu);
    st->st_atim = ip->atime;
    pthread_mutex_unlock(&ip->amu);
}

static bool ts_le(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec <= b->tv_nsec);
}

/* relatime: update atime if it is not newer than mtime/ctime, or is more
 * than a day old.  The caller holds ip->lock (shared is enough). */
void inode_touch_atime(struct inode *ip)
{
    struct timespec now;
    fs_now(&now);
    pthread_mutex_lock(&ip->amu);
    if (ts_le(&ip->atime, &ip->mtime) || ts_le(&ip->atime, &ip->ctime) ||
        now.tv_sec - ip->atime.tv_sec >= 24 * 3600)
        ip->atime = now;
    pthread_mutex_unlock(&ip->amu);
}

/* ------------------------------------------------------------------ */
/* File handles                                                         */
/* ------------------------------------------------------------------ */

static void fhtab_grow(void)
{
    size_t ncap = memfs.fhtab_cap ? memfs.fhtab_cap * 2 : 256;
    struct handle **nt = calloc(ncap, sizeof(*nt));
    if (!nt)
        return;
    for (size_t i = 0; i < memfs.fhtab_cap; i++) {
        struct handle *h = memfs.fhtab[i];
        while (h) {
            struct handle *next = h->hnext;
            size_t b = hash_u64(h->fh, ncap);
            h->hnext = nt[b];
            nt[b] = h;
            h = next;
        }
    }
    free(memfs.fhtab);
    memfs.fhtab = nt;
    memfs.fhtab_cap = ncap;
}

/* Open a handle on @ip (the caller holds a ref); 0 on ENOMEM. */
uint64_t handle_new(struct inode *ip, int flags, bool isdir)
{
    struct handle *h = calloc(1, sizeof(*h));
    if (!h)
        return 0;
    h->inode = ip;
    h->flags = flags;
    h->isdir = isdir;
    pthread_mutex_lock(&memfs.itable_mu);
    ip->nopen++;
    pthread_mutex_unlock(&memfs.itable_mu);
    pthread_mutex_lock(&memfs.fh_mu);
    if (memfs.fhtab_n >= memfs.fhtab_cap)
        fhtab_grow();
    uint64_t fh = memfs.next_fh++;
    h->fh = fh;
    size_t b = hash_u64(fh, memfs.fhtab_cap);
    h->hnext = memfs.fhtab[b];
    memfs.fhtab[b] = h;
    memfs.fhtab_n++;
    pthread_mutex_unlock(&memfs.fh_mu);
    /* Once published, @h belongs to the table: a RELEASE may free it as
     * soon as the reply carrying @fh is out, so never touch it again. */
    return fh;
}

struct inode *handle_get(uint64_t fh, uint64_t ino, bool isdir, int *flags)
{
    struct inode *ip = NULL;
    pthread_mutex_lock(&memfs.fh_mu);
    if (memfs.fhtab_cap) {
        for (struct handle *h = memfs.fhtab[hash_u64(fh, memfs.fhtab_cap)]; h; h = h->hnext) {
            if (h->fh != fh)
                continue;
            if (h->inode->ino == ino && h->isdir == isdir) {
                ip = h->inode;
                if (flags)
                    *flags = h->flags;
            }
            break;
        }
    }
    /* The handle's nopen keeps the inode alive while fh_mu is held (a
     * release must take fh_mu first), so taking the ref here is safe. */
    if (ip)
        inode_hold(ip);
    pthread_mutex_unlock(&memfs.fh_mu);
    return ip;
}

int handle_release(uint64_t fh, uint64_t ino, bool isdir)
{
    struct handle *found = NULL;
    pthread_mutex_lock(&memfs.fh_mu);
    if (memfs.fhtab_cap) {
        struct handle **pp = &memfs.fhtab[hash_u64(fh, memfs.fhtab_cap)];
        for (; *pp; pp = &(*pp)->hnext) {
            struct handle *h = *pp;
            if (h->fh != fh)
                continue;
            if (h->inode->ino == ino && h->isdir == isdir) {
                *pp = h->hnext;
                memfs.fhtab_n--;
                found = h;
            }
            break;
        }
    }
    pthread_mutex_unlock(&memfs.fh_mu);
    if (!found)
        return -EBADF;
    struct inode *ip = found->inode;
    free(found);
    bool dead;
    pthread_mutex_lock(&memfs.itable_mu);
    ip->nopen--;
    dead = inode_maybe_unhash(ip);
    pthread_mutex_unlock(&memfs.itable_mu);
    if (dead)
        inode_free(ip);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Directories                                                          */
/* ------------------------------------------------------------------ */

static uint32_t name_hash(uint64_t dir, const char *name, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325) ^ dir;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)name[i];
        h *= UINT64_C(0x100000001b3);
    }
    return (uint32_t)(h ^ (h >> 32));
}

static void dtab_grow(void)
{
    size_t ncap = memfs.dtab_cap ? memfs.dtab_cap * 2 : 1024;
    struct dirent_m **nt = calloc(ncap, sizeof(*nt));
    if (!nt)
        return;
    for (size_t i = 0; i < memfs.dtab_cap; i++) {
        struct dirent_m *de = memfs.dtab[i];
        while (de) {
            struct dirent_m *next = de->hnext;
            size_t b = de->hash & (ncap - 1);
            de->hnext = nt[b];
            nt[b] = de;
            de = next;
        }
    }
    free(memfs.dtab);
    memfs.dtab = nt;
    memfs.dtab_cap = ncap;
}

struct dirent_m *dir_find(struct inode *dir, const char *name)
{
    if (!memfs.dtab_cap)
        return NULL;
    size_t len = strlen(name);
    uint32_t h = name_hash(dir->ino, name, len);
    for (struct dirent_m *de = memfs.dtab[h & (memfs.dtab_cap - 1)]; de; de = de->hnext)
        if (de->hash == h && de->dir == dir && de->namelen == len &&
            memcmp(de->name, name, len) == 0)
            return de;
    return NULL;
}

/* Squeeze the tombstones out of @dir's slots (cookies unchanged). */
static void dir_compact(struct inode *dir)
{
    struct dir *d = &dir->dir;
    size_t j = 0;
    for (size_t i = 0; i < d->nslots; i++) {
        if (!d->slots[i].de)
            continue;
        d->slots[j] = d->slots[i];
        d->slots[j].de->slot = j;
        j++;
    }
    d->nslots = j;
}

int dir_add(struct inode *dir, const char *name, struct inode *child)
{
    struct dir *d = &dir->dir;
    size_t len = strlen(name);
    if (d->nslots == d->cap && d->nlive < d->nslots / 2 + 1 && d->nslots > 0)
        dir_compact(dir);
    if (d->nslots == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 8;
        struct dslot *ns = realloc(d->slots, ncap * sizeof(*ns));
        if (!ns)
            return -ENOSPC;
        d->slots = ns;
        d->cap = ncap;
    }
    if (memfs.dtab_n >= memfs.dtab_cap)
        dtab_grow();
    if (!memfs.dtab_cap)
        return -ENOSPC;
    struct dirent_m *de = malloc(sizeof(*de) + len + 1);
    if (!de)
        return -ENOSPC;
    de->dir = dir;
    de->child = child;
    de->cookie = d->next_cookie++;
    de->namelen = len;
    memcpy(de->name, name, len + 1);
    de->hash = name_hash(dir->ino, name, len);
    de->slot = d->nslots;
    d->slots[d->nslots].cookie = de->cookie;
    d->slots[d->nslots].de = de;
    d->nslots++;
    d->nlive++;
    size_t b = de->hash & (memfs.dtab_cap - 1);
    de->hnext = memfs.dtab[b];
    memfs.dtab[b] = de;
    memfs.dtab_n++;
    return 0;
}

void dir_remove(struct dirent_m *de)
{
    struct dir *d = &de->dir->dir;
    struct dirent_m **pp = &memfs.dtab[de->hash & (memfs.dtab_cap - 1)];
    while (*pp != de)
        pp = &(*pp)->hnext;
    *pp = de->hnext;
    memfs.dtab_n--;
    d->slots[de->slot].de = NULL;
    d->nlive--;
    /* Trailing tombstones can go at once; others wait for compaction. */
    while (d->nslots > 0 && !d->slots[d->nslots - 1].de)
        d->nslots--;
    if (d->nslots > 64 && d->nlive < d->nslots / 4)
        dir_compact(de->dir);
    free(de);
}

size_t dir_seek(const struct inode *dir, uint64_t cookie)
{
    const struct dir *d = &dir->dir;
    size_t lo = 0, hi = d->nslots;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->slots[mid].cookie <= cookie)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void dir_free(struct inode *dir)
{
    free(dir->dir.slots);
    dir->dir.slots = NULL;
    dir->dir.nslots = dir->dir.cap = 0;
}

/* ------------------------------------------------------------------ */
/* Extended attributes                                                  */
/* ------------------------------------------------------------------ */

struct xattr *xattr_find(struct inode *ip, const char *name)
{
    for (struct xattr *x = ip->xattrs; x; x = x->next)
        if (strcmp(x->name, name) == 0)
            return x;
    return NULL;
}

int xattr_set(struct inode *ip, const char *name, const void *value,
              size_t size, int flags)
{
    struct xattr *x = xattr_find(ip, name);
    if (x && (flags & XATTR_CREATE))
        return -EEXIST;
    if (!x && (flags & XATTR_REPLACE))
        return -ENODATA;
    void *v = malloc(size ? size : 1);
    if (!v)
        return -ENOSPC;
    memcpy(v, value, size);
    if (x) {
        free(x->value);
        x->value = v;
        x->size = size;
        return 0;
    }
    size_t nlen = strlen(name) + 1;
    if (ip->xattr_names + nlen > MEMFS_XATTR_LIST_MAX) {
        free(v);
        return -ENOSPC;
    }
    x = calloc(1, sizeof(*x));
    char *n = strdup(name);
    if (!x || !n) {
        free(x);
        free(n);
        free(v);
        return -ENOSPC;
    }
    x->name = n;
    x->value = v;
    x->size = size;
    x->next = ip->xattrs;
    ip->xattrs = x;
    ip->xattr_names += nlen;
    return 0;
}

int xattr_remove(struct inode *ip, const char *name)
{
    for (struct xattr **pp = &ip->xattrs; *pp; pp = &(*pp)->next) {
        struct xattr *x = *pp;
        if (strcmp(x->name, name) != 0)
            continue;
        *pp = x->next;
        ip->xattr_names -= strlen(x->name) + 1;
        free(x->name);
        free(x->value);
        free(x);
        return 0;
    }
    return -ENODATA;
}

void xattr_free_all(struct inode *ip)
{
    while (ip->xattrs) {
        struct xattr *x = ip->xattrs;
        ip->xattrs = x->next;
        free(x->name);
        free(x->value);
        free(x);
    }
    ip->xattr_names = 0;
}

/* ------------------------------------------------------------------ */
/* Permissions                                                          */
/* ------------------------------------------------------------------ */

bool caller_in_group(fuse_req_t req, gid_t gid)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    if (ctx->gid == gid)
        return true;
    gid_t groups[64];
    int n = fuse_req_getgroups(req, 64, groups);
    if (n > 64) {
        gid_t *big = malloc((size_t)n * sizeof(gid_t));
        if (!big)
            return false;
        int m = fuse_req_getgroups(req, n, big);
        bool found = false;
        for (int i = 0; i < m && i < n; i++)
            if (big[i] == gid)
                found = true;
        free(big);
        return found;
    }
    for (int i = 0; i < n; i++)
        if (groups[i] == gid)
            return true;
    return false;
}

int perm_check(fuse_req_t req, mode_t mode, uid_t uid, gid_t gid, int mask)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    mask &= R_OK | W_OK | X_OK;
    if (ctx->uid == 0) {
        /* root: everything but executing a file nobody may execute */
        if ((mask & X_OK) && !S_ISDIR(mode) && !(mode & (S_IXUSR | S_IXGRP | S_IXOTH)))
            return -EACCES;
        return 0;
    }
    unsigned bits;
    if (ctx->uid == uid)
        bits = (mode >> 6) & 7;
    else if (((mode >> 3) & 7) != (mode & 7) && caller_in_group(req, gid))
        bits = (mode >> 3) & 7;
    else if (ctx->gid == gid)
        bits = (mode >> 3) & 7;
    else
        bits = mode & 7;
    /* R_OK, W_OK, X_OK are 4, 2, 1 like the mode bits. */
    return ((bits & (unsigned)mask) == (unsigned)mask) ? 0 : -EACCES;
}
