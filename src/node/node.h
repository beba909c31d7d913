/*
 * node.h - the node table (nodeid -> node with lookup count and cached
 * attributes) and the entry cache ((parent, name) -> nodeid or negative).
 *
 * Seed counterpart: FreeBSD fuse_node.c (vnode data, attr cache) and the
 * name cache the VFS keeps for it; Linux's dentry/inode with entry_valid /
 * attr_valid.
 *
 * References: a node is referenced by every positive entry naming it, by
 * every entry whose parent it is, by open handles and by walks in
 * progress.  Unreferenced nodes stay cached on an LRU list (their lookup
 * count is still owed to the server) until the list is full; then the
 * oldest is dropped and a FORGET for its lookup count is queued.  Queued
 * FORGETs are sent in batches (BATCH_FORGET from protocol 7.16).
 */
#ifndef UFUSE_NODE_H
#define UFUSE_NODE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "ipc/ipc.h"
#include "ufuse_share.h"

struct node {
    uint64_t nodeid;
    uint64_t generation;
    uint64_t nlookup;        /* lookups the server counted: owed FORGET */
    unsigned refs;           /* see the header comment */
    uint32_t type;           /* S_IFMT bits; fixed for the node's life */
    struct fuse_attr attr;   /* last attributes known */
    uint64_t attr_until;     /* monotonic ns; attributes valid before it */
    uint64_t attr_version;   /* table sequence at the last local change */
    int stale;               /* replaced by a new generation: do not reuse */
    _Atomic uint64_t attr_gen; /* bumped by every change of attr / attr_until */
    int local_attrs;         /* the page cache holds dirty data: size, mtime
                                and ctime are ours, not the server's */
    int written;             /* data changed through us since the server's
                                attributes were stored: its times and blocks
                                are stale */
    uint32_t share_slot;     /* its record in t->share_attrs, or 0 */
    struct node *hnext;
    struct node *lru_prev, *lru_next;
};

struct entry;

struct node_table {
    pthread_mutex_t mu;      /* guards everything here, and every node's fields */
    struct conn *conn;
    struct node **hash;
    unsigned hash_mask;
    unsigned nnodes;
    struct node *root;
    struct node *lru_head, *lru_tail; /* unreferenced nodes, oldest at head */
    unsigned nlru, lru_max;
    struct entry **ehash;
    unsigned ehash_mask;
    unsigned nentries, entries_max;
    struct entry *eage_head, *eage_tail; /* entries, oldest at head */
    uint64_t attr_seq;       /* bumped by every local attribute change */
    /* Attribute records other processes read (include/ufuse_share.h),
     * or NULL: slots 1..share_n-1, the free ones stacked in share_free. */
    struct ufuse_share_attr *share_attrs;
    uint32_t share_n, share_nfree;
    uint32_t *share_free;
    struct ufuse_share_entry *share_entries; /* entry records, or NULL */
    uint32_t share_entries_mask;
    struct fuse_forget_one *forgets;  /* queued FORGETs */
    unsigned nforgets, forgets_cap;
};

int node_table_init(struct node_table *t, struct conn *c);
/* Keep the attributes of nodes and the entries in the records of shared
 * region @r for readers in other processes: the root gets attribute
 * record UFUSE_SHARE_ROOT_SLOT, other nodes one while any is free when a
 * file is shared or an entry names them.  Before any other call. */
struct share_region;
int node_table_share(struct node_table *t, struct share_region *r);
/* Drop every node: queue and send all FORGETs.  Then free. */
void node_table_destroy(struct node_table *t);
/* The record of @n's attributes in the shared records (made if needed),
 * or 0 if the table keeps none or all are taken.  Good while @n is
 * referenced. */
uint32_t node_share_slot(struct node_table *t, struct node *n);

/* The root node, referenced (release with node_put). */
struct node *node_root(struct node_table *t);
void node_get(struct node_table *t, struct node *n);
void node_put(struct node_table *t, struct node *n);

/*
 * A LOOKUP-like reply (entry_out with nodeid != 0) came back for a request
 * sent at attribute sequence @seq (node_attr_seq()): find or make the node,
 * count the lookup, store the attributes (unless a local change came
 * after @seq).  A known nodeid with another generation or file type is a
 * reused id: the old node is retired and a new one made (as Linux does).
 * Returns the node referenced, or NULL with *@err = -EIO for invalid
 * attributes, -ENOMEM.
 */
struct node *node_from_entry(struct node_table *t, const struct fuse_entry_out *e,
                             uint64_t seq, int *err);

/* Cached attributes if still valid: 1 and *@a filled, else 0. */
int node_attr_cached(struct node_table *t, struct node *n, struct fuse_attr *a);
/* The attribute sequence now: take it before sending a request whose reply
 * carries attributes (GETATTR, LOOKUP, SETATTR...). */
uint64_t node_attr_seq(struct node_table *t);
/*
 * Store attributes (valid for @valid_sec/@valid_nsec from now) from a reply
 * to a request sent at sequence @seq.  If the node changed locally after
 * @seq, the reply is older than what we know and is not applied (Linux's
 * attr_version rule).  -EIO for invalid attributes or a type change.
 */
int node_attr_store(struct node_table *t, struct node *n, const struct fuse_attr *a,
                    uint64_t valid_sec, uint32_t valid_nsec, uint64_t seq);
/* Forget the cached attributes (they changed, or the server said so). */
void node_attr_invalidate(struct node_table *t, struct node *n);
/* Forget them if data was written through us since they were stored
 * (close-to-open for the file's own writes); otherwise they stay until
 * they expire, as Linux keeps them at open. */
void node_attr_invalidate_written(struct node_table *t, struct node *n);
/* A local operation changed the file: bump the version, drop validity. */
void node_attr_changed(struct node_table *t, struct node *n);
/* An extending write made the file @size bytes long (if larger). */
void node_size_extend(struct node_table *t, struct node *n, uint64_t size);
/* Valid cached attributes: 1 with *@a, the generation and the validity
 * end (for a copy checked later with node_attr_gen), else 0. */
int node_attr_cached_gen(struct node_table *t, struct node *n, struct fuse_attr *a,
                         uint64_t *gen, uint64_t *until);
static inline uint64_t node_attr_gen(struct node *n)
{
    return atomic_load_explicit(&n->attr_gen, memory_order_acquire);
}
/* The attributes last known, valid or not. */
void node_attr_get(struct node_table *t, struct node *n, struct fuse_attr *a);
/* The size last known (ours while local_attrs). */
uint64_t node_size(struct node_table *t, struct node *n);
/* Set the size (truncate): bumps the version, keeps the validity. */
void node_size_set(struct node_table *t, struct node *n, uint64_t size);
/* A write-back write ended at @end: size, mtime and ctime become local
 * (kept over the server's) until node_attr_local(t, n, 0). */
void node_local_write(struct node_table *t, struct node *n, uint64_t end);
void node_attr_local(struct node_table *t, struct node *n, int on);
/* node_size_extend by nodeid, if the node is known (notification). */
void node_size_extend_id(struct node_table *t, uint64_t nodeid, uint64_t size);
/* Drop the attributes of nodeid (notification). */
void node_invalidate_id(struct node_table *t, uint64_t nodeid);

/* Entry cache. */
enum entry_result { ENTRY_MISS, ENTRY_POSITIVE, ENTRY_NEGATIVE };
/* Look (parent, name) up: ENTRY_POSITIVE with *@child referenced. */
enum entry_result entry_lookup(struct node_table *t, struct node *parent,
                               const char *name, size_t len, struct node **child,
                               uint64_t now);
/* Record (parent, name) -> child (NULL: negative) valid until @until. */
void entry_store(struct node_table *t, struct node *parent, const char *name,
                 size_t len, struct node *child, uint64_t until);
/* One name of a path (not "." or ".."), for node_walk_cached. */
struct node_name {
    const char *name;
    size_t len;
};
/*
 * A stat from the caches alone, under one acquisition of the table's lock
 * and taking no reference: 1 and the attributes of the node that @n
 * @names lead to from the root, when each name is a positive, unexpired
 * entry of a directory, none but the last is a symlink (nor the last with
 * @follow) and the last node's attributes are valid; 0 otherwise (walk
 * the slow way: it decides every error).
 */
int node_walk_cached(struct node_table *t, const struct node_name *names, int n, int follow,
                     struct fuse_attr *a);
/* Drop (parent, name). */
void entry_drop(struct node_table *t, uint64_t parent, const char *name, size_t len);
/* Drop every entry naming @child (its names changed, e.g. unlinked). */
void entry_drop_child(struct node_table *t, uint64_t child);

/* Send the queued FORGETs now. */
void node_flush_forgets(struct node_table *t);

#endif
