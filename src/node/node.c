/*
 * node.c - node table, attribute cache, entry cache, FORGET batching.
 * See node.h for the reference rules.
 *
 * Lock: t->mu guards the tables, the LRU and age lists, the FORGET queue
 * and every node's and entry's fields.  It is never held across a request
 * to the server (node_flush_forgets copies the queue out first).
 *
 * Invariants:
 *  1. n->refs == 0 iff n is on the LRU list (the root is never: it holds a
 *     permanent reference).
 *  2. A node is in the hash iff !n->stale; a stale node is freed when its
 *     last reference goes, queuing a FORGET for its nlookup.
 *  3. Every entry holds one reference on its parent node and, if
 *     positive, one on its child; so no node named by a cached entry is
 *     ever forgotten, and a parent's nodeid cannot be reused while entries
 *     are keyed by it.
 *  4. The sum of nlookup over live nodes plus the queued FORGET counts is
 *     exactly what the server has counted for us.
 *  5. Shared attribute records (node_table_share): a node holds at most
 *     one slot, from node_share_slot until it is freed; a record's seq is
 *     even only while it holds the node's current attributes and their
 *     validity (node_share_publish), and every change of either makes it
 *     odd first (node_attr_touch), so a reader in another process never
 *     keeps attributes the node no longer has.  Records are published
 *     when attributes are stored or found valid, not at each local change
 *     (the next ask publishes them again).
 *  6. Shared entry records: a record's seq is even only while it holds
 *     an entry this table has, with that entry's child and validity; the
 *     entry that wrote it clears it when it goes (entry_free), if it still
 *     holds it (a collision may have given it to another entry since).
 */
#include "node/node.h"

#include "util/share.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct entry {
    struct node *parent;     /* referenced */
    struct node *child;      /* referenced, or NULL for a negative entry */
    uint64_t until;          /* monotonic ns */
    uint32_t share_rec;      /* the shared record it wrote + 1, or 0 */
    struct entry *hnext;
    struct entry *age_prev, *age_next;
    size_t len;
    char name[];
};

#define NODE_LRU_MAX 8192
#define ENTRIES_MAX 65536
#define FORGET_BATCH 256

/* ---- hashing ------------------------------------------------------------ */

static unsigned node_hash(struct node_table *t, uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdull;
    id ^= id >> 33;
    return (unsigned)id & t->hash_mask;
}

static unsigned entry_hash(struct node_table *t, uint64_t parent, const char *name,
                           size_t len)
{
    uint64_t h = 1469598103934665603ull ^ parent;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)name[i];
        h *= 1099511628211ull;
    }
    return (unsigned)(h ^ (h >> 32)) & t->ehash_mask;
}

static struct node *node_find(struct node_table *t, uint64_t id)
{
    for (struct node *n = t->hash[node_hash(t, id)]; n; n = n->hnext)
        if (n->nodeid == id)
            return n;
    return NULL;
}

static void node_unhash(struct node_table *t, struct node *n)
{
    for (struct node **p = &t->hash[node_hash(t, n->nodeid)]; *p; p = &(*p)->hnext) {
        if (*p == n) {
            *p = n->hnext;
            t->nnodes--;
            return;
        }
    }
}

/* ---- FORGET queue --------------------------------------------------------- */

static void node_queue_forget(struct node_table *t, uint64_t id, uint64_t nlookup)
{
    if (!nlookup)
        return;
    if (t->nforgets == t->forgets_cap) {
        unsigned cap = t->forgets_cap ? t->forgets_cap * 2 : 64;
        struct fuse_forget_one *f = realloc(t->forgets, cap * sizeof *f);
        if (!f)
            return; /* the server keeps a node a little longer: harmless */
        t->forgets = f;
        t->forgets_cap = cap;
    }
    t->forgets[t->nforgets++] = (struct fuse_forget_one){.nodeid = id, .nlookup = nlookup};
}

void node_flush_forgets(struct node_table *t)
{
    pthread_mutex_lock(&t->mu);
    struct fuse_forget_one *f = t->forgets;
    unsigned n = t->nforgets;
    t->forgets = NULL;
    t->nforgets = t->forgets_cap = 0;
    pthread_mutex_unlock(&t->mu);
    if (!n) {
        free(f);
        return;
    }
    struct conn *c = t->conn;
    int batch = c->p.minor >= 16 && !conn_enosys(c, FUSE_BATCH_FORGET);
    size_t per = (c->p.max_request - sizeof(struct fuse_in_header) -
                  sizeof(struct fuse_batch_forget_in)) / sizeof *f;
    for (unsigned i = 0; i < n;) {
        if (batch) {
            unsigned k = (unsigned)UFUSE_MIN((size_t)(n - i), per);
            struct fuse_batch_forget_in bi = {.count = k};
            struct iovec iov[2] = {{&bi, sizeof bi}, {&f[i], k * sizeof *f}};
            if (conn_send_noreply(c, FUSE_BATCH_FORGET, 0, 0, iov, 2) != 0)
                break;
            i += k;
        } else {
            struct fuse_forget_in fi = {.nlookup = f[i].nlookup};
            struct iovec iov = {&fi, sizeof fi};
            if (conn_send_noreply(c, FUSE_FORGET, f[i].nodeid, 0, &iov, 1) != 0)
                break;
            i++;
        }
    }
    free(f);
}

/* ---- nodes ------------------------------------------------------------------ */

static void lru_remove(struct node_table *t, struct node *n)
{
    if (n->lru_prev)
        n->lru_prev->lru_next = n->lru_next;
    else
        t->lru_head = n->lru_next;
    if (n->lru_next)
        n->lru_next->lru_prev = n->lru_prev;
    else
        t->lru_tail = n->lru_prev;
    n->lru_prev = n->lru_next = NULL;
    t->nlru--;
}

/* ---- shared attribute records (invariant 5) ------------------------------ */

static struct ufuse_share_attr *node_share_rec(struct node_table *t, struct node *n)
{
    return n->share_slot ? &t->share_attrs[n->share_slot] : NULL;
}

/* Make a shared record's @seq odd (being changed) if it is not; ordered
 * before what the caller writes next. */
static void share_unpublish(_Atomic uint32_t *seq)
{
    uint32_t s = atomic_load_explicit(seq, memory_order_relaxed);
    if (!(s & 1)) {
        atomic_store_explicit(seq, s + 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
    }
}

/* @n's attributes are current and valid (lock held): publish them. */
static void node_share_publish(struct node_table *t, struct node *n, uint64_t now)
{
    struct ufuse_share_attr *r = node_share_rec(t, n);
    if (!r || n->attr_until <= now)
        return;
    uint32_t s = atomic_load_explicit(&r->seq, memory_order_relaxed);
    if (!(s & 1))
        return; /* already current: every change makes it odd */
    atomic_store_explicit(&r->until_ns, n->attr_until, memory_order_relaxed);
    r->attr = n->attr;
    atomic_store_explicit(&r->seq, s + 1, memory_order_release);
}

/* Give @n record @slot (lock held). */
static void node_share_bind(struct node_table *t, struct node *n, uint32_t slot)
{
    n->share_slot = slot;
    struct ufuse_share_attr *r = node_share_rec(t, n);
    share_unpublish(&r->seq);
    atomic_store_explicit(&r->nodeid, n->nodeid, memory_order_relaxed);
    atomic_store_explicit(&r->generation, n->generation, memory_order_relaxed);
    node_share_publish(t, n, ufuse_valid_now_ns());
}

static uint32_t node_share_slot_locked(struct node_table *t, struct node *n)
{
    if (!n->share_slot && t->share_nfree)
        node_share_bind(t, n, t->share_free[--t->share_nfree]);
    return n->share_slot;
}

uint32_t node_share_slot(struct node_table *t, struct node *n)
{
    pthread_mutex_lock(&t->mu);
    uint32_t slot = node_share_slot_locked(t, n);
    pthread_mutex_unlock(&t->mu);
    return slot;
}

static void node_share_release(struct node_table *t, struct node *n)
{
    struct ufuse_share_attr *r = node_share_rec(t, n);
    if (!r || n->share_slot == UFUSE_SHARE_ROOT_SLOT)
        return;
    share_unpublish(&r->seq);
    atomic_store_explicit(&r->nodeid, 0, memory_order_relaxed);
    t->share_free[t->share_nfree++] = n->share_slot;
    n->share_slot = 0;
}

static void node_free(struct node_table *t, struct node *n)
{
    node_share_release(t, n);
    if (!n->stale)
        node_unhash(t, n);
    node_queue_forget(t, n->nodeid, n->nlookup);
    free(n);
}

static void node_ref_locked(struct node_table *t, struct node *n)
{
    if (n->refs++ == 0 && n != t->root)
        lru_remove(t, n);
}

static void node_unref_locked(struct node_table *t, struct node *n)
{
    if (--n->refs > 0)
        return;
    if (n->stale) {
        node_free(t, n);
        return;
    }
    n->lru_prev = t->lru_tail;
    n->lru_next = NULL;
    if (t->lru_tail)
        t->lru_tail->lru_next = n;
    else
        t->lru_head = n;
    t->lru_tail = n;
    t->nlru++;
    while (t->nlru > t->lru_max) {
        struct node *old = t->lru_head;
        lru_remove(t, old);
        node_free(t, old);
    }
}

void node_get(struct node_table *t, struct node *n)
{
    pthread_mutex_lock(&t->mu);
    node_ref_locked(t, n);
    pthread_mutex_unlock(&t->mu);
}

void node_put(struct node_table *t, struct node *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&t->mu);
    node_unref_locked(t, n);
    int flush = t->nforgets >= FORGET_BATCH;
    pthread_mutex_unlock(&t->mu);
    if (flush)
        node_flush_forgets(t);
}

struct node *node_root(struct node_table *t)
{
    node_get(t, t->root);
    return t->root;
}

static struct node *node_new(struct node_table *t, uint64_t id, uint64_t gen,
                             uint32_t type)
{
    struct node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->nodeid = id;
    n->generation = gen;
    n->type = type;
    unsigned h = node_hash(t, id);
    n->hnext = t->hash[h];
    t->hash[h] = n;
    t->nnodes++;
    return n;
}

/* Any change of n->attr or its validity (lock held): lock-free readers
 * of a copy (node_attr_gen) know theirs is stale. */
static void node_attr_touch(struct node_table *t, struct node *n)
{
    struct ufuse_share_attr *r = node_share_rec(t, n);
    if (r)
        share_unpublish(&r->seq);
    atomic_fetch_add_explicit(&n->attr_gen, 1, memory_order_release);
}

/* Store attributes; lock held.  0 or -EIO. */
static int node_attr_store_locked(struct node_table *t, struct node *n,
                                  const struct fuse_attr *a, uint64_t until,
                                  uint64_t seq)
{
    if (!proto_attr_valid(a) || (a->mode & S_IFMT) != n->type)
        return -EIO;
    node_attr_touch(t, n);
    if (n->attr_version > seq) {
        /* A local change raced with this reply: ours is newer. */
        n->attr_until = 0;
        return 0;
    }
    if (n->local_attrs) {
        /* Dirty data in the page cache: our size and times are newer. */
        struct fuse_attr keep = n->attr;
        n->attr = *a;
        n->attr.size = keep.size;
        n->attr.mtime = keep.mtime;
        n->attr.mtimensec = keep.mtimensec;
        n->attr.ctime = keep.ctime;
        n->attr.ctimensec = keep.ctimensec;
    } else {
        n->attr = *a;
    }
    n->written = 0;
    n->attr_until = until;
    node_share_publish(t, n, ufuse_valid_now_ns());
    return 0;
}

struct node *node_from_entry(struct node_table *t, const struct fuse_entry_out *e,
                             uint64_t seq, int *err)
{
    if (!e->nodeid || !proto_attr_valid(&e->attr)) {
        *err = -EIO;
        return NULL;
    }
    uint32_t type = e->attr.mode & S_IFMT;
    uint64_t now = ufuse_valid_now_ns();
    pthread_mutex_lock(&t->mu);
    struct node *n = node_find(t, e->nodeid);
    if (n && n != t->root && (n->generation != e->generation || n->type != type)) {
        /* The server reused the id: retire the old node (invariant 2). */
        node_unhash(t, n);
        n->stale = 1;
        if (n->refs == 0) {
            lru_remove(t, n);
            node_free(t, n);
        }
        n = NULL;
    }
    if (!n) {
        n = node_new(t, e->nodeid, e->generation, type);
        if (!n) {
            pthread_mutex_unlock(&t->mu);
            /* We cannot keep it: give the server its count back. */
            struct fuse_forget_in fi = {.nlookup = 1};
            struct iovec iov = {&fi, sizeof fi};
            conn_send_noreply(t->conn, FUSE_FORGET, e->nodeid, 0, &iov, 1);
            *err = -ENOMEM;
            return NULL;
        }
        n->refs = 1;
    } else {
        node_ref_locked(t, n);
    }
    n->nlookup++;
    node_attr_store_locked(t, n, &e->attr,
                           proto_valid_until(now, e->attr_valid, e->attr_valid_nsec), seq);
    pthread_mutex_unlock(&t->mu);
    return n;
}

int node_attr_cached(struct node_table *t, struct node *n, struct fuse_attr *a)
{
    uint64_t now = ufuse_valid_now_ns();
    pthread_mutex_lock(&t->mu);
    int ok = n->attr_until > now;
    if (ok) {
        *a = n->attr;
        node_share_publish(t, n, now);
    }
    pthread_mutex_unlock(&t->mu);
    return ok;
}

uint64_t node_attr_seq(struct node_table *t)
{
    pthread_mutex_lock(&t->mu);
    uint64_t s = t->attr_seq;
    pthread_mutex_unlock(&t->mu);
    return s;
}

int node_attr_store(struct node_table *t, struct node *n, const struct fuse_attr *a,
                    uint64_t valid_sec, uint32_t valid_nsec, uint64_t seq)
{
    uint64_t until = proto_valid_until(ufuse_valid_now_ns(), valid_sec, valid_nsec);
    pthread_mutex_lock(&t->mu);
    int rc = node_attr_store_locked(t, n, a, until, seq);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

void node_attr_invalidate(struct node_table *t, struct node *n)
{
    pthread_mutex_lock(&t->mu);
    node_attr_touch(t, n);
    n->attr_until = 0;
    pthread_mutex_unlock(&t->mu);
}

void node_attr_invalidate_written(struct node_table *t, struct node *n)
{
    pthread_mutex_lock(&t->mu);
    if (n->written) {
        node_attr_touch(t, n);
        n->attr_until = 0;
    }
    pthread_mutex_unlock(&t->mu);
}

void node_attr_changed(struct node_table *t, struct node *n)
{
    pthread_mutex_lock(&t->mu);
    n->attr_version = ++t->attr_seq;
    node_attr_touch(t, n);
    n->attr_until = 0;
    pthread_mutex_unlock(&t->mu);
}

static void node_size_extend_locked(struct node_table *t, struct node *n, uint64_t size)
{
    n->attr_version = ++t->attr_seq;
    node_attr_touch(t, n);
    n->written = 1;
    if (size > n->attr.size)
        n->attr.size = size;
}

void node_size_extend(struct node_table *t, struct node *n, uint64_t size)
{
    pthread_mutex_lock(&t->mu);
    node_size_extend_locked(t, n, size);
    pthread_mutex_unlock(&t->mu);
}

int node_attr_cached_gen(struct node_table *t, struct node *n, struct fuse_attr *a,
                         uint64_t *gen, uint64_t *until)
{
    uint64_t now = ufuse_valid_now_ns();
    pthread_mutex_lock(&t->mu);
    *gen = atomic_load_explicit(&n->attr_gen, memory_order_relaxed);
    *until = n->attr_until;
    *a = n->attr;
    int ok = n->attr_until > now;
    if (ok)
        node_share_publish(t, n, now);
    pthread_mutex_unlock(&t->mu);
    return ok;
}

void node_attr_get(struct node_table *t, struct node *n, struct fuse_attr *a)
{
    pthread_mutex_lock(&t->mu);
    *a = n->attr;
    pthread_mutex_unlock(&t->mu);
}

uint64_t node_size(struct node_table *t, struct node *n)
{
    pthread_mutex_lock(&t->mu);
    uint64_t size = n->attr.size;
    pthread_mutex_unlock(&t->mu);
    return size;
}

void node_size_set(struct node_table *t, struct node *n, uint64_t size)
{
    pthread_mutex_lock(&t->mu);
    n->attr_version = ++t->attr_seq;
    node_attr_touch(t, n);
    n->attr.size = size;
    pthread_mutex_unlock(&t->mu);
}

void node_local_write(struct node_table *t, struct node *n, uint64_t end)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&t->mu);
    node_size_extend_locked(t, n, end);
    n->local_attrs = 1;
    n->attr.mtime = n->attr.ctime = (uint64_t)ts.tv_sec;
    n->attr.mtimensec = n->attr.ctimensec = (uint32_t)ts.tv_nsec;
    pthread_mutex_unlock(&t->mu);
}

void node_attr_local(struct node_table *t, struct node *n, int on)
{
    pthread_mutex_lock(&t->mu);
    if (n->local_attrs && !on) {
        /* The server has caught up with our data; a reply to a request
         * sent before (a GETATTR, LOOKUP or READDIRPLUS the server answered
         * before the last write-back WRITE) may still carry the old size:
         * it must not be stored, as for any local change. */
        n->attr_version = ++t->attr_seq;
        node_attr_touch(t, n);
    }
    n->local_attrs = on;
    pthread_mutex_unlock(&t->mu);
}

void node_size_extend_id(struct node_table *t, uint64_t nodeid, uint64_t size)
{
    pthread_mutex_lock(&t->mu);
    struct node *n = node_find(t, nodeid);
    if (n)
        node_size_extend_locked(t, n, size);
    pthread_mutex_unlock(&t->mu);
}

void node_invalidate_id(struct node_table *t, uint64_t nodeid)
{
    pthread_mutex_lock(&t->mu);
    struct node *n = node_find(t, nodeid);
    if (n) {
        n->attr_version = ++t->attr_seq;
        node_attr_touch(t, n);
        n->attr_until = 0;
    }
    pthread_mutex_unlock(&t->mu);
}

/* ---- entries ------------------------------------------------------------------ */

static struct entry *entry_find(struct node_table *t, uint64_t parent,
                                const char *name, size_t len, struct entry ***slot)
{
    struct entry **p = &t->ehash[entry_hash(t, parent, name, len)];
    for (; *p; p = &(*p)->hnext) {
        struct entry *e = *p;
        if (e->parent->nodeid == parent && e->len == len && memcmp(e->name, name, len) == 0) {
            if (slot)
                *slot = p;
            return e;
        }
    }
    return NULL;
}

/* The shared record @e wrote, if it still holds @e (lock held). */
static struct ufuse_share_entry *entry_share_rec(struct node_table *t, const struct entry *e)
{
    if (!e->share_rec)
        return NULL;
    struct ufuse_share_entry *r = &t->share_entries[e->share_rec - 1];
    if (atomic_load_explicit(&r->parent, memory_order_relaxed) != e->parent->nodeid ||
        r->namelen != e->len || memcmp(r->name, e->name, e->len) != 0)
        return NULL;
    return r;
}

/* Write @e into its shared record (lock held), replacing whatever the
 * record held: a positive entry whose child has an attribute record, or a
 * negative one. */
static void entry_share_publish(struct node_table *t, struct entry *e)
{
    if (!t->share_entries || e->len > UFUSE_SHARE_NAME_MAX ||
        (e->child && !node_share_slot_locked(t, e->child)))
        return;
    uint32_t i = ufuse_share_entry_slot(e->parent->nodeid, e->name, e->len,
                                        t->share_entries_mask);
    struct ufuse_share_entry *r = &t->share_entries[i];
    share_unpublish(&r->seq);
    atomic_store_explicit(&r->parent, e->parent->nodeid, memory_order_relaxed);
    atomic_store_explicit(&r->child, e->child ? e->child->nodeid : 0, memory_order_relaxed);
    atomic_store_explicit(&r->child_generation, e->child ? e->child->generation : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&r->until_ns, e->until, memory_order_relaxed);
    r->child_slot = e->child ? e->child->share_slot : 0;
    r->child_type = (uint16_t)(e->child ? e->child->type : 0);
    r->namelen = (uint16_t)e->len;
    memcpy(r->name, e->name, e->len);
    atomic_store_explicit(&r->seq, atomic_load_explicit(&r->seq, memory_order_relaxed) + 1,
                          memory_order_release);
    e->share_rec = i + 1;
}

static void entry_free(struct node_table *t, struct entry **slot)
{
    struct entry *e = *slot;
    struct ufuse_share_entry *r = entry_share_rec(t, e);
    if (r) {
        share_unpublish(&r->seq);
        atomic_store_explicit(&r->parent, 0, memory_order_relaxed);
    }
    *slot = e->hnext;
    if (e->age_prev)
        e->age_prev->age_next = e->age_next;
    else
        t->eage_head = e->age_next;
    if (e->age_next)
        e->age_next->age_prev = e->age_prev;
    else
        t->eage_tail = e->age_prev;
    t->nentries--;
    if (e->child)
        node_unref_locked(t, e->child);
    node_unref_locked(t, e->parent);
    free(e);
}

enum entry_result entry_lookup(struct node_table *t, struct node *parent,
                               const char *name, size_t len, struct node **child,
                               uint64_t now)
{
    pthread_mutex_lock(&t->mu);
    struct entry *e = entry_find(t, parent->nodeid, name, len, NULL);
    enum entry_result r = ENTRY_MISS;
    if (e && e->parent == parent && e->until > now) {
        if (e->child) {
            node_ref_locked(t, e->child);
            *child = e->child;
            r = ENTRY_POSITIVE;
        } else {
            r = ENTRY_NEGATIVE;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return r;
}

int node_walk_cached(struct node_table *t, const struct node_name *names, int n, int follow,
                     struct fuse_attr *a)
{
    uint64_t now = ufuse_valid_now_ns();
    pthread_mutex_lock(&t->mu);
    struct node *cur = t->root;
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        struct entry *e = cur->type == S_IFDIR
                              ? entry_find(t, cur->nodeid, names[i].name, names[i].len, NULL)
                              : NULL;
        ok = e && e->parent == cur && e->until > now && e->child &&
             (e->child->type != S_IFLNK || (i == n - 1 && !follow));
        if (ok)
            cur = e->child;
    }
    ok = ok && cur->attr_until > now;
    if (ok) {
        *a = cur->attr;
        node_share_publish(t, cur, now);
    }
    pthread_mutex_unlock(&t->mu);
    return ok;
}

void entry_store(struct node_table *t, struct node *parent, const char *name,
                 size_t len, struct node *child, uint64_t until)
{
    pthread_mutex_lock(&t->mu);
    struct entry **slot;
    if (entry_find(t, parent->nodeid, name, len, &slot))
        entry_free(t, slot);
    if (until <= ufuse_valid_now_ns() || parent->stale || (child && child->stale)) {
        pthread_mutex_unlock(&t->mu);
        return;
    }
    struct entry *e = malloc(sizeof *e + len + 1);
    if (!e) {
        pthread_mutex_unlock(&t->mu);
        return;
    }
    e->parent = parent;
    e->child = child;
    e->until = until;
    e->share_rec = 0;
    e->len = len;
    memcpy(e->name, name, len);
    e->name[len] = 0;
    node_ref_locked(t, parent);
    if (child)
        node_ref_locked(t, child);
    unsigned h = entry_hash(t, parent->nodeid, name, len);
    e->hnext = t->ehash[h];
    t->ehash[h] = e;
    e->age_next = NULL;
    e->age_prev = t->eage_tail;
    if (t->eage_tail)
        t->eage_tail->age_next = e;
    else
        t->eage_head = e;
    t->eage_tail = e;
    t->nentries++;
    entry_share_publish(t, e);
    while (t->nentries > t->entries_max) {
        struct entry *old = t->eage_head;
        struct entry **s;
        entry_find(t, old->parent->nodeid, old->name, old->len, &s);
        entry_free(t, s);
    }
    pthread_mutex_unlock(&t->mu);
}

void entry_drop(struct node_table *t, uint64_t parent, const char *name, size_t len)
{
    pthread_mutex_lock(&t->mu);
    struct entry **slot;
    if (entry_find(t, parent, name, len, &slot))
        entry_free(t, slot);
    pthread_mutex_unlock(&t->mu);
}

void entry_drop_child(struct node_table *t, uint64_t child)
{
    pthread_mutex_lock(&t->mu);
    for (unsigned i = 0; i <= t->ehash_mask; i++) {
        struct entry **p = &t->ehash[i];
        while (*p) {
            if ((*p)->child && (*p)->child->nodeid == child)
                entry_free(t, p);
            else
                p = &(*p)->hnext;
        }
    }
    pthread_mutex_unlock(&t->mu);
}

/* ---- table --------------------------------------------------------------------- */

int node_table_init(struct node_table *t, struct conn *c)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    t->conn = c;
    t->hash_mask = 4095;
    t->ehash_mask = 4095;
    t->lru_max = NODE_LRU_MAX;
    t->entries_max = ENTRIES_MAX;
    t->hash = calloc(t->hash_mask + 1, sizeof(struct node *));
    t->ehash = calloc(t->ehash_mask + 1, sizeof(struct entry *));
    if (!t->hash || !t->ehash)
        return -ENOMEM;
    t->root = node_new(t, FUSE_ROOT_ID, 0, S_IFDIR);
    if (!t->root)
        return -ENOMEM;
    t->root->refs = 1; /* permanent */
    /* The root is never looked up, so the server counts nothing for it. */
    return 0;
}

int node_table_share(struct node_table *t, struct share_region *r)
{
    uint32_t n = r->nattrs;
    if (n <= UFUSE_SHARE_ROOT_SLOT)
        return 0;
    t->share_free = malloc((size_t)n * sizeof *t->share_free);
    if (!t->share_free)
        return -ENOMEM;
    /* Low slots first: the records are touched as they are used. */
    for (uint32_t i = n - 1; i > UFUSE_SHARE_ROOT_SLOT; i--)
        t->share_free[t->share_nfree++] = i;
    t->share_attrs = r->attrs;
    t->share_n = n;
    t->share_entries = r->entries;
    t->share_entries_mask = r->entries_mask;
    pthread_mutex_lock(&t->mu);
    node_share_bind(t, t->root, UFUSE_SHARE_ROOT_SLOT);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

void node_table_destroy(struct node_table *t)
{
    pthread_mutex_lock(&t->mu);
    /* Readers elsewhere may outlive the session: nothing stays published
     * (the entries and other nodes unpublish as they go below). */
    if (t->share_attrs)
        share_unpublish(&t->share_attrs[UFUSE_SHARE_ROOT_SLOT].seq);
    if (t->ehash)
        for (unsigned i = 0; i <= t->ehash_mask; i++)
            while (t->ehash[i])
                entry_free(t, &t->ehash[i]);
    /* Whatever is left (open handles the caller leaked, the root) goes too. */
    if (t->hash) {
        for (unsigned i = 0; i <= t->hash_mask; i++) {
            while (t->hash[i]) {
                struct node *n = t->hash[i];
                if (n->refs == 0)
                    lru_remove(t, n);
                node_free(t, n);
            }
        }
    }
    pthread_mutex_unlock(&t->mu);
    node_flush_forgets(t);
    free(t->hash);
    free(t->ehash);
    free(t->share_free);
    pthread_mutex_destroy(&t->mu);
}
