/*
 * store.c - sparse file contents of ufuse-memfs.
 *
 * A regular file's bytes live in fixed chunks of MEMFS_CHUNK (64 KiB),
 * allocated on first write and indexed by chunk number (offset >> 16) in a
 * radix tree of 512-way nodes whose height grows on demand.  A chunk that
 * is not present is a hole: it reads as zeros, SEEK_HOLE stops in it and
 * SEEK_DATA skips it.  A 1 GiB file costs 16384 chunks and 33 nodes; a
 * small file costs one chunk and no node.
 *
 * Chunks come from 2 MiB slabs in transparent huge pages (chunk_alloc):
 * the kernel copies a reply out of them through the server's page tables,
 * and with 4 KiB pages that copy ran at ~500 MiB/s on these VMs against
 * ~8 GiB/s from huge pages (docs/architecture.md, "Transport").  A freed
 * chunk goes on a free list for the next allocation (cleared then); slabs
 * are never returned, so the server's memory is its peak of data.
 *
 * Locks: slab_mu guards the slab and the free list.  Otherwise none of
 * its own: the owning inode's lock is held by the caller: shared for the
 * read-only functions, exclusive for those that allocate, free or modify
 * (see memfs.h).
 *
 * Invariants:
 *  1. A store of height h indexes chunks [0, 512^h); at height 0, root is
 *     chunk 0 itself (or NULL).
 *  2. Every radix node has used == its number of non-NULL slots, and a node
 *     with used == 0 is freed before the function that emptied it returns
 *     (an empty tree has root == NULL and height 0).
 *  3. nchunks is the number of present chunks of this store;
 *     memfs_chunks_total is their sum over all stores.
 *  4. Kept by fs.c/ops.c, relied on here: every byte of a present chunk that
 *     lies at or past the file size is zero (store_truncate clears the tail
 *     it keeps), so growing a file exposes zeros.
 */
#include "memfs.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define FANOUT_SHIFT 9
#define FANOUT (1u << FANOUT_SHIFT)

struct rnode {
    unsigned used;
    void *slot[FANOUT];
};

_Atomic uint64_t memfs_chunks_total;

/* A shared chunk of zeros for holes in read replies (never written). */
static char zero_chunk[MEMFS_CHUNK];

#define SLAB_SIZE ((size_t)2 << 20)

static pthread_mutex_t slab_mu = PTHREAD_MUTEX_INITIALIZER;
static char *slab_next, *slab_end;   /* the current slab's unused part */
static void *chunk_free_list;        /* freed chunks, linked through their first word */

/* A zeroed chunk, or NULL. */
static void *chunk_alloc(void)
{
    pthread_mutex_lock(&slab_mu);
    void *c = chunk_free_list;
    if (c) {
        chunk_free_list = *(void **)c;
        pthread_mutex_unlock(&slab_mu);
        memset(c, 0, MEMFS_CHUNK);
        return c;
    }
    if (slab_next == slab_end) {
        /* Twice the size, so a 2 MiB-aligned slab lies inside. */
        char *m = mmap(NULL, 2 * SLAB_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            pthread_mutex_unlock(&slab_mu);
            return NULL;
        }
        char *a = (char *)(((uintptr_t)m + SLAB_SIZE - 1) & ~(uintptr_t)(SLAB_SIZE - 1));
        if (a > m)
            munmap(m, (size_t)(a - m));
        munmap(a + SLAB_SIZE, (size_t)(m + 2 * SLAB_SIZE - (a + SLAB_SIZE)));
        (void)madvise(a, SLAB_SIZE, MADV_HUGEPAGE);
        slab_next = a;
        slab_end = a + SLAB_SIZE;
    }
    c = slab_next;
    slab_next += MEMFS_CHUNK;
    pthread_mutex_unlock(&slab_mu);
    return c; /* never used: zero */
}

static void chunk_free(void *c)
{
    pthread_mutex_lock(&slab_mu);
    *(void **)c = chunk_free_list;
    chunk_free_list = c;
    pthread_mutex_unlock(&slab_mu);
}

/* Number of chunk indexes covered by one slot at @level (level 0 = chunk). */
static inline uint64_t span_of(unsigned level)
{
    return (uint64_t)1 << (FANOUT_SHIFT * level);
}

/* Capacity of a tree of @height, or 0 for "unbounded" (never reached). */
static inline uint64_t cap_of(unsigned height)
{
    return FANOUT_SHIFT * height >= 64 ? 0 : span_of(height);
}

static bool fits(const struct store *s, uint64_t idx)
{
    uint64_t cap = cap_of(s->height);
    return cap == 0 || idx < cap;
}

void *store_get(const struct store *s, uint64_t idx)
{
    if (!fits(s, idx))
        return NULL;
    void *p = s->root;
    for (unsigned level = s->height; level > 0 && p; level--) {
        struct rnode *n = p;
        p = n->slot[(idx >> (FANOUT_SHIFT * (level - 1))) & (FANOUT - 1)];
    }
    return p;
}

/* Return chunk @idx, allocating it (zeroed) and any node on the way. */
static void *chunk_get_alloc(struct store *s, uint64_t idx)
{
    while (!fits(s, idx)) {
        if (s->root) {
            struct rnode *n = calloc(1, sizeof(*n));
            if (!n)
                return NULL;
            n->slot[0] = s->root;
            n->used = 1;
            s->root = n;
        }
        s->height++;
    }
    void **slotp = &s->root;
    struct rnode *parent = NULL;
    for (unsigned level = s->height; level > 0; level--) {
        if (!*slotp) {
            struct rnode *n = calloc(1, sizeof(*n));
            if (!n)
                return NULL;
            *slotp = n;
            if (parent)
                parent->used++;
        }
        parent = *slotp;
        slotp = &parent->slot[(idx >> (FANOUT_SHIFT * (level - 1))) & (FANOUT - 1)];
    }
    if (!*slotp) {
        void *c = chunk_alloc();
        if (!c)
            return NULL;
        *slotp = c;
        if (parent)
            parent->used++;
        s->nchunks++;
        atomic_fetch_add_explicit(&memfs_chunks_total, 1, memory_order_relaxed);
    }
    return *slotp;
}

/* Free the chunks with index in [lo, hi) below *slotp, a subtree of @level
 * covering indexes from @base; prune emptied nodes.  @return true if *slotp
 * became NULL. */
static bool free_rec(struct store *s, void **slotp, unsigned level,
                     uint64_t base, uint64_t lo, uint64_t hi)
{
    if (!*slotp)
        return false;
    if (level == 0) {
        chunk_free(*slotp);
        *slotp = NULL;
        s->nchunks--;
        atomic_fetch_sub_explicit(&memfs_chunks_total, 1, memory_order_relaxed);
        return true;
    }
    struct rnode *n = *slotp;
    uint64_t child_span = span_of(level - 1);
    uint64_t first = lo > base ? (lo - base) / child_span : 0;
    for (uint64_t i = first; i < FANOUT; i++) {
        uint64_t cbase = base + i * child_span;
        if (cbase >= hi)
            break;
        if (free_rec(s, &n->slot[i], level - 1, cbase, lo, hi))
            n->used--;
    }
    if (n->used == 0) {
        free(n);
        *slotp = NULL;
        return true;
    }
    return false;
}

/* Free chunks with index in [lo, hi). */
static void free_chunks(struct store *s, uint64_t lo, uint64_t hi)
{
    if (lo >= hi || !s->root)
        return;
    if (s->height == 0) {
        if (lo == 0)
            free_rec(s, &s->root, 0, 0, lo, hi);
    } else {
        free_rec(s, &s->root, s->height, 0, lo, hi);
    }
    if (!s->root)
        s->height = 0;
}

int store_write(struct store *s, off_t off, const void *buf, size_t len)
{
    const char *src = buf;
    while (len > 0) {
        uint64_t idx = (uint64_t)off >> MEMFS_CHUNK_SHIFT;
        size_t in = (size_t)off & (MEMFS_CHUNK - 1);
        size_t n = MEMFS_CHUNK - in;
        if (n > len)
            n = len;
        char *c = chunk_get_alloc(s, idx);
        if (!c)
            return -ENOSPC;
        memcpy(c + in, src, n);
        src += n;
        off += (off_t)n;
        len -= n;
    }
    return 0;
}

int store_alloc(struct store *s, off_t off, off_t len)
{
    if (len <= 0)
        return 0;
    uint64_t first = (uint64_t)off >> MEMFS_CHUNK_SHIFT;
    uint64_t last = (uint64_t)(off + len - 1) >> MEMFS_CHUNK_SHIFT;
    for (uint64_t i = first; i <= last; i++)
        if (!chunk_get_alloc(s, i))
            return -ENOSPC;
    return 0;
}

int store_zero(struct store *s, off_t off, off_t len, bool punch)
{
    while (len > 0) {
        uint64_t idx = (uint64_t)off >> MEMFS_CHUNK_SHIFT;
        size_t in = (size_t)off & (MEMFS_CHUNK - 1);
        off_t n = (off_t)(MEMFS_CHUNK - in);
        if (n > len)
            n = len;
        if (punch && in == 0 && (size_t)n == MEMFS_CHUNK) {
            /* Whole chunks: free the run at once. */
            uint64_t count = (uint64_t)len >> MEMFS_CHUNK_SHIFT;
            free_chunks(s, idx, idx + count);
            n = (off_t)(count << MEMFS_CHUNK_SHIFT);
        } else {
            char *c = punch ? store_get(s, idx) : chunk_get_alloc(s, idx);
            if (!punch && !c)
                return -ENOSPC;
            if (c)
                memset(c + in, 0, (size_t)n);
        }
        off += n;
        len -= n;
    }
    return 0;
}

void store_truncate(struct store *s, off_t newsize)
{
    uint64_t keep = ((uint64_t)newsize + MEMFS_CHUNK - 1) >> MEMFS_CHUNK_SHIFT;
    free_chunks(s, keep, UINT64_MAX);
    size_t in = (size_t)newsize & (MEMFS_CHUNK - 1);
    if (in) {
        char *c = store_get(s, (uint64_t)newsize >> MEMFS_CHUNK_SHIFT);
        if (c)
            memset(c + in, 0, MEMFS_CHUNK - in);
    }
}

void store_destroy(struct store *s)
{
    free_chunks(s, 0, UINT64_MAX);
}

int store_read_iov(const struct store *s, off_t off, size_t len,
                   struct iovec *iov, int max)
{
    int n = 0;
    while (len > 0) {
        if (n == max)
            return -1;
        uint64_t idx = (uint64_t)off >> MEMFS_CHUNK_SHIFT;
        size_t in = (size_t)off & (MEMFS_CHUNK - 1);
        size_t piece = MEMFS_CHUNK - in;
        if (piece > len)
            piece = len;
        char *c = store_get(s, idx);
        char *base = c ? c + in : zero_chunk;
        /* Merge consecutive hole pieces cannot exceed the zero chunk, so
         * each piece gets its own entry. */
        iov[n].iov_base = base;
        iov[n].iov_len = piece;
        n++;
        off += (off_t)piece;
        len -= piece;
    }
    return n;
}

void store_copy_out(const struct store *s, off_t off, size_t len, void *buf)
{
    char *dst = buf;
    while (len > 0) {
        uint64_t idx = (uint64_t)off >> MEMFS_CHUNK_SHIFT;
        size_t in = (size_t)off & (MEMFS_CHUNK - 1);
        size_t piece = MEMFS_CHUNK - in;
        if (piece > len)
            piece = len;
        const char *c = store_get(s, idx);
        if (c)
            memcpy(dst, c + in, piece);
        else
            memset(dst, 0, piece);
        dst += piece;
        off += (off_t)piece;
        len -= piece;
    }
}

/* Smallest present index >= @from below @node (a subtree of @level from
 * @base), or UINT64_MAX. */
static uint64_t next_rec(const void *node, unsigned level, uint64_t base,
                         uint64_t from)
{
    if (!node)
        return UINT64_MAX;
    if (level == 0)
        return base >= from ? base : UINT64_MAX;
    const struct rnode *n = node;
    uint64_t child_span = span_of(level - 1);
    uint64_t first = from > base ? (from - base) / child_span : 0;
    for (uint64_t i = first; i < FANOUT; i++) {
        uint64_t r = next_rec(n->slot[i], level - 1, base + i * child_span, from);
        if (r != UINT64_MAX)
            return r;
    }
    return UINT64_MAX;
}

off_t store_next_data(const struct store *s, off_t off)
{
    uint64_t from = (uint64_t)off >> MEMFS_CHUNK_SHIFT;
    if (!fits(s, from))
        return -1;
    uint64_t idx = next_rec(s->root, s->height, 0, from);
    if (idx == UINT64_MAX)
        return -1;
    off_t start = (off_t)(idx << MEMFS_CHUNK_SHIFT);
    return start > off ? start : off;
}

off_t store_next_hole(const struct store *s, off_t off)
{
    uint64_t idx = (uint64_t)off >> MEMFS_CHUNK_SHIFT;
    while (store_get(s, idx))
        idx++;
    off_t start = (off_t)(idx << MEMFS_CHUNK_SHIFT);
    return start > off ? start : off;
}
