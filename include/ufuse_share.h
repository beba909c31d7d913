/*
 * ufuse_share.h - the session's cache as other processes may read it.
 *
 * A session mounted with -o share keeps its page cache and its cached
 * attributes in one memory region (a memfd, ufuse_share_fd()) that other
 * processes map and read with no lock and no system call: cache hits and
 * fstat-like lookups are answered in the reader's own address space.
 * The layout is below; the readers' code is the inline functions at the
 * end, which the library's own lock-free hit path uses too.
 *
 * Reading is optimistic (seqlock-style validation, as vmcache and
 * LeanStore validate page reads): a reader loads an even (attribute) or
 * odd (frame) sequence number, copies, and keeps the copy only if the
 * sequence number did not move.  The session bumps it before anything it
 * guards changes.  So a reader never blocks the session and never sees
 * torn data it keeps; a reader that dies mid-copy leaves nothing behind.
 *
 * Ownership: only the session writes the region.  The memfd is sealed
 * (F_SEAL_FUTURE_WRITE, F_SEAL_SHRINK, F_SEAL_GROW): map it read-only; a
 * writable mapping, write(2) or a truncate fails.  The referenced bytes
 * (one per frame, "hit since the clock hand last passed") are a second
 * memfd (ufuse_share_refs_fd) a reader maps read-write and passes to
 * ufuse_share_view_init, so that the pages it uses are not the first
 * evicted; refs_off is 0 then (in a private region they follow the
 * entry records).
 *
 * Identity: a file's pages are keyed by its cache key (a 64-bit number
 * never reused within a session) and its attributes live in one record
 * (attr_slot) while the session knows the node; ufuse_file_share() gives
 * both for an open file.  Keys and slots are only good while that file
 * stays open.
 */
#ifndef UFUSE_SHARE_H
#define UFUSE_SHARE_H

#include <linux/fuse.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#define UFUSE_SHARE_MAGIC 0x3165726168736675ull /* "ufshare1" */
#define UFUSE_SHARE_VERSION 1
#define UFUSE_SHARE_PAGE 4096u
#define UFUSE_SHARE_PROBES 32 /* longest probe of a lookup in the index */

/* At offset 0; the region is size bytes. */
struct ufuse_share_header {
    uint64_t magic;
    uint32_t version;
    uint32_t page_size;          /* UFUSE_SHARE_PAGE */
    uint64_t size;               /* bytes of the whole region */
    uint32_t nframes;            /* page frames */
    uint32_t index_mask;         /* the index has index_mask + 1 slots */
    uint32_t nattrs;             /* attribute records (slot 0 unused, 1 the root's) */
    uint32_t entries_mask;       /* entry records: entries_mask + 1 (0: none) */
    uint64_t frames_off;         /* struct ufuse_share_frame[nframes] */
    uint64_t index_off;          /* uint32_t[index_mask + 1]: frame + 1, or 0 */
    uint64_t attrs_off;          /* struct ufuse_share_attr[nattrs] */
    uint64_t entries_off;        /* struct ufuse_share_entry[entries_mask + 1] */
    uint64_t refs_off;           /* unsigned char[nframes], page aligned; 0 when
                                    shared (its own memfd: ufuse_share_refs_fd) */
    uint64_t data_off;           /* nframes pages, page aligned */
};

/* One page frame's identity.  seq is odd while the frame holds a valid
 * page of (key, index) that readers may copy; it is bumped (to even)
 * before the page's bytes or identity change hands. */
struct ufuse_share_frame {
    _Atomic uint32_t seq;
    uint32_t pad;
    _Atomic uint64_t key;        /* the file's cache key, 0 while free */
    _Atomic uint64_t index;      /* page number in the file */
};

/* A node's attributes.  seq is even while attr is the node's current
 * attributes, good until until_ns (CLOCK_MONOTONIC_COARSE); odd while they
 * change or are not known.  The size is the one reads clip at (under
 * write-back, the client's own while it holds dirty data). */
struct ufuse_share_attr {
    _Atomic uint32_t seq;
    uint32_t pad;
    _Atomic uint64_t nodeid;     /* 0 while the slot is free */
    _Atomic uint64_t generation;
    _Atomic uint64_t until_ns;
    struct fuse_attr attr;
};

/* The attribute record of the root directory (nodeid FUSE_ROOT_ID). */
#define UFUSE_SHARE_ROOT_SLOT 1u
/* Longest name an entry record holds (longer ones are not shared). */
#define UFUSE_SHARE_NAME_MAX 80u

/* A cached directory entry: (parent, name) -> child, or no such name
 * (child 0), good until until_ns.  Records are direct-mapped by
 * ufuse_share_entry_slot (a collision replaces the older one: a record
 * is a hint, a miss costs a lookup).  seq is even while the record holds
 * an entry the session has, odd while it changes or is empty. */
struct ufuse_share_entry {
    _Atomic uint32_t seq;
    uint16_t namelen;
    uint16_t child_type;         /* the child's S_IFMT bits (fixed for its life) */
    _Atomic uint64_t parent;     /* nodeid; 0 while empty */
    _Atomic uint64_t child;      /* nodeid; 0 for a negative entry */
    _Atomic uint64_t child_generation;
    _Atomic uint64_t until_ns;
    uint32_t child_slot;         /* the child's attribute record */
    uint32_t pad2;
    char name[UFUSE_SHARE_NAME_MAX];
};

/* A reader's view of a mapped region (ufuse_share_view_init). */
struct ufuse_share_view {
    const struct ufuse_share_header *h;
    const struct ufuse_share_frame *frames;
    const _Atomic uint32_t *index;
    const struct ufuse_share_attr *attrs;
    const struct ufuse_share_entry *entries;
    _Atomic unsigned char *refs; /* NULL: hits are not marked */
    const char *data;
};

/* Check a mapped region's header and fill @v.  @base: the region mapped
 * (read-only), @size: bytes mapped; @refs: the referenced bytes mapped
 * read-write (ufuse_share_refs_fd, nframes bytes at least), or NULL (hits
 * then mark nothing).  0, or -1 if the header does not describe a region
 * that fits in @size. */
static inline int ufuse_share_view_init(struct ufuse_share_view *v, const void *base, size_t size,
                                        void *refs)
{
    const struct ufuse_share_header *h = (const struct ufuse_share_header *)base;
    if (size < sizeof *h || h->magic != UFUSE_SHARE_MAGIC || h->version != UFUSE_SHARE_VERSION ||
        h->page_size != UFUSE_SHARE_PAGE || h->size > size || !h->nframes ||
        ((uint64_t)h->index_mask + 1) & h->index_mask)
        return -1;
    uint64_t n = h->nframes;
    if (h->frames_off + n * sizeof(struct ufuse_share_frame) > h->size ||
        h->index_off + ((uint64_t)h->index_mask + 1) * 4 > h->size ||
        h->attrs_off + (uint64_t)h->nattrs * sizeof(struct ufuse_share_attr) > h->size ||
        ((uint64_t)h->entries_mask + 1) & h->entries_mask ||
        (h->entries_mask &&
         h->entries_off + ((uint64_t)h->entries_mask + 1) * sizeof(struct ufuse_share_entry) >
             h->size) ||
        h->refs_off + n > h->size || h->data_off + n * UFUSE_SHARE_PAGE > h->size ||
        h->frames_off % 8 || h->index_off % 4 || h->attrs_off % 8 || h->entries_off % 8 ||
        h->data_off % UFUSE_SHARE_PAGE)
        return -1;
    const char *b = (const char *)base;
    v->h = h;
    v->frames = (const struct ufuse_share_frame *)(b + h->frames_off);
    v->index = (const _Atomic uint32_t *)(b + h->index_off);
    v->attrs = (const struct ufuse_share_attr *)(b + h->attrs_off);
    v->entries = h->entries_mask ? (const struct ufuse_share_entry *)(b + h->entries_off) : NULL;
    v->refs = (_Atomic unsigned char *)refs;
    v->data = b + h->data_off;
    return 0;
}

/* The home slot of page @index of the file keyed @key. */
static inline uint32_t ufuse_share_slot(uint64_t key, uint64_t index, uint32_t mask)
{
    uint64_t x = key * 0xD6E8FEB86659FD93ull ^ (index * 0x9E3779B97F4A7C15ull);
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    return (uint32_t)x & mask;
}

/* The frame holding page @index of @key, published, with its seq in
 * *@seq; -1 if none is (a miss, or a probe longer than the bound). */
static inline int64_t ufuse_share_find(const struct ufuse_share_view *v, uint64_t key,
                                       uint64_t index, uint32_t *seq)
{
    uint32_t mask = v->h->index_mask, nframes = v->h->nframes;
    uint32_t i = ufuse_share_slot(key, index, mask);
    for (int probe = 0; probe < UFUSE_SHARE_PROBES; probe++, i = (i + 1) & mask) {
        uint32_t e = atomic_load_explicit(&v->index[i], memory_order_acquire);
        if (!e)
            return -1;
        if (e > nframes)
            continue;
        const struct ufuse_share_frame *f = &v->frames[e - 1];
        uint32_t s = atomic_load_explicit(&f->seq, memory_order_acquire);
        if ((s & 1) && atomic_load_explicit(&f->key, memory_order_relaxed) == key &&
            atomic_load_explicit(&f->index, memory_order_relaxed) == index) {
            *seq = s;
            return (int64_t)(e - 1);
        }
    }
    return -1;
}

/* After copying out of @frame: 1 if the copy is good (seq unchanged). */
static inline int ufuse_share_still(const struct ufuse_share_view *v, int64_t frame, uint32_t seq)
{
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&v->frames[frame].seq, memory_order_relaxed) == seq;
}

/* The frame's bytes. */
static inline const char *ufuse_share_page(const struct ufuse_share_view *v, int64_t frame)
{
    return v->data + (size_t)frame * UFUSE_SHARE_PAGE;
}

/* A hit on @frame: mark it referenced (only when clear: no cache-line
 * write on a hot page). */
static inline void ufuse_share_touch(const struct ufuse_share_view *v, int64_t frame)
{
    if (v->refs && !atomic_load_explicit(&v->refs[frame], memory_order_relaxed))
        atomic_store_explicit(&v->refs[frame], 1, memory_order_relaxed);
}

/* Copy [@off, @off + @len) of the file keyed @key into @dst from the
 * pages cached, up to the first page that is not (the caller clips @len
 * at the file's size).  The bytes copied. */
static inline size_t ufuse_share_read(const struct ufuse_share_view *v, uint64_t key,
                                      uint64_t off, size_t len, void *dst)
{
    size_t done = 0;
    while (done < len) {
        uint64_t pos = off + done;
        size_t from = (size_t)(pos % UFUSE_SHARE_PAGE);
        size_t take = UFUSE_SHARE_PAGE - from < len - done ? UFUSE_SHARE_PAGE - from : len - done;
        uint32_t seq;
        int64_t frame = ufuse_share_find(v, key, pos / UFUSE_SHARE_PAGE, &seq);
        if (frame < 0)
            break;
        memcpy((char *)dst + done, ufuse_share_page(v, frame) + from, take);
        if (!ufuse_share_still(v, frame, seq))
            break;
        ufuse_share_touch(v, frame);
        done += take;
    }
    return done;
}

/* The attributes in record @slot if it still describes node @nodeid of
 * @generation and they are good at @now_ns (CLOCK_MONOTONIC_COARSE): 1 and
 * *@out, else 0. */
static inline int ufuse_share_attr_get(const struct ufuse_share_view *v, uint32_t slot,
                                       uint64_t nodeid, uint64_t generation, uint64_t now_ns,
                                       struct fuse_attr *out)
{
    if (!slot || slot >= v->h->nattrs)
        return 0;
    const struct ufuse_share_attr *r = &v->attrs[slot];
    uint32_t s = atomic_load_explicit(&r->seq, memory_order_acquire);
    if (s & 1)
        return 0;
    uint64_t id = atomic_load_explicit(&r->nodeid, memory_order_relaxed);
    uint64_t gen = atomic_load_explicit(&r->generation, memory_order_relaxed);
    uint64_t until = atomic_load_explicit(&r->until_ns, memory_order_relaxed);
    memcpy(out, &r->attr, sizeof *out);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&r->seq, memory_order_relaxed) != s)
        return 0;
    return id == nodeid && gen == generation && now_ns < until;
}

/* The record (parent, @name of @len bytes) lives in. */
static inline uint32_t ufuse_share_entry_slot(uint64_t parent, const char *name, size_t len,
                                              uint32_t mask)
{
    uint64_t h = 1469598103934665603ull ^ (parent * 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)name[i];
        h *= 1099511628211ull;
    }
    return (uint32_t)(h ^ (h >> 32)) & mask;
}

/* The entry (@parent, @name) as cached at @now_ns: 1 and the child's
 * nodeid, generation and attribute record; -1 if the name is cached as
 * absent; 0 if nothing is known (ask the session). */
static inline int ufuse_share_entry_get(const struct ufuse_share_view *v, uint64_t parent,
                                        const char *name, size_t len, uint64_t now_ns,
                                        uint64_t *child, uint64_t *generation, uint32_t *slot,
                                        uint32_t *type)
{
    if (!v->entries || len == 0 || len > UFUSE_SHARE_NAME_MAX)
        return 0;
    const struct ufuse_share_entry *e =
        &v->entries[ufuse_share_entry_slot(parent, name, len, v->h->entries_mask)];
    uint32_t s = atomic_load_explicit(&e->seq, memory_order_acquire);
    if (s & 1)
        return 0;
    uint64_t p = atomic_load_explicit(&e->parent, memory_order_relaxed);
    uint64_t c = atomic_load_explicit(&e->child, memory_order_relaxed);
    uint64_t g = atomic_load_explicit(&e->child_generation, memory_order_relaxed);
    uint64_t until = atomic_load_explicit(&e->until_ns, memory_order_relaxed);
    uint32_t cs = e->child_slot, ct = e->child_type;
    int same = e->namelen == len && memcmp(e->name, name, len) == 0;
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->seq, memory_order_relaxed) != s || !same || p != parent ||
        now_ns >= until)
        return 0;
    if (!c)
        return -1;
    *child = c;
    *generation = g;
    *slot = cs;
    *type = ct;
    return 1;
}

/*
 * stat / lstat (@follow 0) of @path from the cached entries and attributes
 * alone: @path is relative to the root, normalized ("/", "/a/b": no ".",
 * "..", empty or trailing names).  1 and *@out; -ENOENT when a name is
 * cached as absent; 0 when the cache cannot tell (a name or attributes
 * not cached or expired, a symbolic link to follow, a name that is not a
 * directory's): ask the session, which decides every error.
 */
static inline int ufuse_share_walk(const struct ufuse_share_view *v, const char *path,
                                   int follow, uint64_t now_ns, struct fuse_attr *out)
{
    uint64_t node = FUSE_ROOT_ID, gen = 0;
    uint32_t slot = UFUSE_SHARE_ROOT_SLOT, type = S_IFDIR;
    const char *p = path;
    while (*p == '/')
        p++;
    while (*p) {
        size_t len = strcspn(p, "/");
        if (type != S_IFDIR)
            return 0;
        int r = ufuse_share_entry_get(v, node, p, len, now_ns, &node, &gen, &slot, &type);
        if (r <= 0)
            return r < 0 ? -ENOENT : 0;
        p += len;
        while (*p == '/')
            p++;
        if (type == S_IFLNK && (*p || follow))
            return 0;
    }
    return ufuse_share_attr_get(v, slot, node, gen, now_ns, out);
}

/* FUSE attributes as stat(2) gives them (the library's own conversion). */
static inline void ufuse_share_attr_stat(const struct fuse_attr *a, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = a->ino;
    st->st_mode = a->mode;
    st->st_nlink = a->nlink;
    st->st_uid = a->uid;
    st->st_gid = a->gid;
    st->st_rdev = a->rdev;
    st->st_size = (off_t)a->size;
    st->st_blocks = (blkcnt_t)a->blocks;
    st->st_blksize = a->blksize ? a->blksize : 4096;
    st->st_atim.tv_sec = (time_t)a->atime;
    st->st_atim.tv_nsec = a->atimensec;
    st->st_mtim.tv_sec = (time_t)a->mtime;
    st->st_mtim.tv_nsec = a->mtimensec;
    st->st_ctim.tv_sec = (time_t)a->ctime;
    st->st_ctim.tv_nsec = a->ctimensec;
}

#endif /* UFUSE_SHARE_H */
