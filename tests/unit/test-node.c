/*
 * test-node.c - node table: lookup counts and FORGET (batched and
 * single), LRU eviction, generation reuse, attribute cache validity and
 * the attr_version race rule, entry cache (positive, negative, expiry,
 * references).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fakesrv.h"
#include "node/node.h"

static struct fuse_entry_out mkentry(uint64_t id, uint64_t gen, uint32_t mode,
                                     uint64_t attr_valid, uint64_t entry_valid)
{
    struct fuse_entry_out e;
    memset(&e, 0, sizeof e);
    e.nodeid = id;
    e.generation = gen;
    e.attr.ino = id;
    e.attr.mode = mode;
    e.attr_valid = attr_valid;
    e.entry_valid = entry_valid;
    return e;
}

/* Collect the FORGET counts the server received into @ids/@counts. */
static int read_forgets(struct fakesrv *f, uint64_t *ids, uint64_t *counts, int max)
{
    int n = 0;
    char buf[65536];
    while (fakesrv_pending(f, 50)) {
        fakesrv_read(f, buf, sizeof buf);
        struct fuse_in_header *ih = (void *)buf;
        if (ih->opcode == FUSE_FORGET) {
            struct fuse_forget_in *fi = (void *)(ih + 1);
            ids[n] = ih->nodeid;
            counts[n++] = fi->nlookup;
        } else {
            assert_int_equal(ih->opcode, FUSE_BATCH_FORGET);
            struct fuse_batch_forget_in *bi = (void *)(ih + 1);
            struct fuse_forget_one *one = (void *)(bi + 1);
            assert_int_equal(ih->len, sizeof *ih + sizeof *bi + bi->count * sizeof *one);
            for (uint32_t i = 0; i < bi->count && n < max; i++) {
                ids[n] = one[i].nodeid;
                counts[n++] = one[i].nlookup;
            }
        }
    }
    return n;
}

static void test_lookup_counts_and_batch_forget(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 0);
    struct node_table t;
    assert_int_equal(node_table_init(&t, &f.conn), 0);
    int err;
    struct fuse_entry_out e = mkentry(10, 1, S_IFREG | 0644, 1, 1);
    struct node *a = node_from_entry(&t, &e, node_attr_seq(&t), &err);
    struct node *b = node_from_entry(&t, &e, node_attr_seq(&t), &err);
    assert_ptr_equal(a, b);
    assert_int_equal(a->nlookup, 2);
    node_put(&t, a);
    node_put(&t, b);
    /* Cached on the LRU, nothing forgotten yet. */
    assert_false(fakesrv_pending(&f, 20));
    node_table_destroy(&t);
    uint64_t ids[8], counts[8];
    assert_int_equal(read_forgets(&f, ids, counts, 8), 1);
    assert_int_equal(ids[0], 10);
    assert_int_equal(counts[0], 2);
    fakesrv_stop(&f);
}

static void test_single_forget_old_minor_and_lru(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 15, 1 << 20, 0); /* BATCH_FORGET is 7.16 */
    struct node_table t;
    assert_int_equal(node_table_init(&t, &f.conn), 0);
    t.lru_max = 2;
    int err;
    for (uint64_t id = 20; id < 25; id++) {
        struct fuse_entry_out e = mkentry(id, 0, S_IFREG | 0644, 0, 0);
        node_put(&t, node_from_entry(&t, &e, node_attr_seq(&t), &err));
    }
    /* Three oldest evicted: their FORGETs are queued; flush sends them. */
    node_flush_forgets(&t);
    uint64_t ids[8], counts[8];
    assert_int_equal(read_forgets(&f, ids, counts, 8), 3);
    assert_int_equal(ids[0], 20);
    assert_int_equal(ids[2], 22);
    assert_int_equal(counts[1], 1);
    node_table_destroy(&t);
    assert_int_equal(read_forgets(&f, ids, counts, 8), 2);
    fakesrv_stop(&f);
}

static void test_generation_reuse(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 0);
    struct node_table t;
    assert_int_equal(node_table_init(&t, &f.conn), 0);
    int err;
    struct fuse_entry_out e1 = mkentry(30, 1, S_IFREG | 0644, 10, 10);
    struct node *old = node_from_entry(&t, &e1, node_attr_seq(&t), &err);
    struct fuse_entry_out e2 = mkentry(30, 2, S_IFDIR | 0755, 10, 10);
    struct node *nw = node_from_entry(&t, &e2, node_attr_seq(&t), &err);
    assert_ptr_not_equal(old, nw);
    assert_true(old->stale);
    assert_int_equal(nw->type, S_IFDIR);
    node_put(&t, old); /* freed: its one lookup is forgotten */
    node_flush_forgets(&t);
    uint64_t ids[4], counts[4];
    assert_int_equal(read_forgets(&f, ids, counts, 4), 1);
    assert_int_equal(counts[0], 1);
    node_put(&t, nw);
    node_table_destroy(&t);
    fakesrv_stop(&f);
}

static void test_attr_cache(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 0);
    struct node_table t;
    assert_int_equal(node_table_init(&t, &f.conn), 0);
    int err;
    struct fuse_entry_out e = mkentry(40, 0, S_IFREG | 0644, 0, 0);
    struct node *n = node_from_entry(&t, &e, node_attr_seq(&t), &err);
    struct fuse_attr a;
    assert_false(node_attr_cached(&t, n, &a)); /* attr_valid 0: not cached */
    e.attr.size = 77;
    assert_int_equal(node_attr_store(&t, n, &e.attr, 5, 0, node_attr_seq(&t)), 0);
    assert_true(node_attr_cached(&t, n, &a));
    assert_int_equal(a.size, 77);
    node_attr_invalidate(&t, n);
    assert_false(node_attr_cached(&t, n, &a));
    /* A reply to a request sent before a local change is not applied. */
    uint64_t seq = node_attr_seq(&t);
    node_attr_changed(&t, n);
    e.attr.size = 1;
    assert_int_equal(node_attr_store(&t, n, &e.attr, 5, 0, seq), 0);
    assert_false(node_attr_cached(&t, n, &a));
    assert_int_equal(n->attr.size, 77);
    /* A type change is a protocol error for a live node. */
    e.attr.mode = S_IFDIR | 0755;
    assert_int_equal(node_attr_store(&t, n, &e.attr, 5, 0, node_attr_seq(&t)), -EIO);
    /* Extending writes grow the cached size only upward. */
    e.attr.mode = S_IFREG | 0644;
    e.attr.size = 100;
    assert_int_equal(node_attr_store(&t, n, &e.attr, 5, 0, node_attr_seq(&t)), 0);
    node_size_extend(&t, n, 50);
    assert_int_equal(n->attr.size, 100);
    node_size_extend(&t, n, 150);
    assert_int_equal(n->attr.size, 150);
    node_put(&t, n);
    node_table_destroy(&t);
    fakesrv_stop(&f);
}

static void test_entry_cache(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 0);
    struct node_table t;
    assert_int_equal(node_table_init(&t, &f.conn), 0);
    t.lru_max = 0; /* unreferenced nodes are forgotten at once */
    int err;
    struct node *root = node_root(&t), *c = NULL;
    uint64_t now = ufuse_valid_now_ns();
    struct fuse_entry_out e = mkentry(50, 0, S_IFREG | 0644, 1, 1);
    struct node *n = node_from_entry(&t, &e, node_attr_seq(&t), &err);
    entry_store(&t, root, "f", 1, n, now + 1000000000ull);
    node_put(&t, n); /* the entry keeps it */
    assert_false(fakesrv_pending(&f, 20));
    assert_int_equal(entry_lookup(&t, root, "f", 1, &c, ufuse_valid_now_ns()), ENTRY_POSITIVE);
    assert_ptr_equal(c, n);
    node_put(&t, c);
    assert_int_equal(entry_lookup(&t, root, "g", 1, &c, ufuse_valid_now_ns()), ENTRY_MISS);
    /* Expired: a miss. */
    assert_int_equal(entry_lookup(&t, root, "f", 1, &c, now + 2000000000ull), ENTRY_MISS);
    entry_store(&t, root, "neg", 3, NULL, ufuse_valid_now_ns() + 1000000000ull);
    assert_int_equal(entry_lookup(&t, root, "neg", 3, &c, ufuse_valid_now_ns()), ENTRY_NEGATIVE);
    /* Already expired validity: nothing stored. */
    entry_store(&t, root, "old", 3, NULL, 1);
    assert_int_equal(entry_lookup(&t, root, "old", 3, &c, ufuse_valid_now_ns()), ENTRY_MISS);
    /* Dropping the entry releases the node: FORGET. */
    entry_drop(&t, FUSE_ROOT_ID, "f", 1);
    node_flush_forgets(&t);
    uint64_t ids[4], counts[4];
    assert_int_equal(read_forgets(&f, ids, counts, 4), 1);
    assert_int_equal(ids[0], 50);
    node_put(&t, root);
    node_table_destroy(&t);
    fakesrv_stop(&f);
}

/* node_walk_cached: a stat from the caches under one lock, or 0 for the
 * slow walk whenever anything is missing, expired or a symlink. */
static void test_walk_cached(void **state)
{
    (void)state;
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 0);
    struct node_table t;
    assert_int_equal(node_table_init(&t, &f.conn), 0);
    int err;
    struct node *root = node_root(&t);
    uint64_t later = ufuse_valid_now_ns() + 10000000000ull;
    struct fuse_entry_out ed = mkentry(60, 0, S_IFDIR | 0755, 10, 10);
    struct fuse_entry_out ef = mkentry(61, 0, S_IFREG | 0644, 10, 10);
    struct fuse_entry_out el = mkentry(62, 0, S_IFLNK | 0777, 10, 10);
    struct fuse_entry_out ex = mkentry(63, 0, S_IFREG | 0644, 0, 10);
    struct node *d = node_from_entry(&t, &ed, node_attr_seq(&t), &err);
    struct node *fi = node_from_entry(&t, &ef, node_attr_seq(&t), &err);
    struct node *l = node_from_entry(&t, &el, node_attr_seq(&t), &err);
    struct node *x = node_from_entry(&t, &ex, node_attr_seq(&t), &err);
    entry_store(&t, root, "d", 1, d, later);
    entry_store(&t, d, "f", 1, fi, later);
    entry_store(&t, d, "l", 1, l, later);
    entry_store(&t, d, "x", 1, x, later);
    entry_store(&t, d, "neg", 3, NULL, later);
    struct node_name df[] = {{"d", 1}, {"f", 1}}, dl[] = {{"d", 1}, {"l", 1}},
                     dlf[] = {{"d", 1}, {"l", 1}, {"f", 1}}, dfg[] = {{"d", 1}, {"f", 1}, {"g", 1}},
                     dneg[] = {{"d", 1}, {"neg", 3}}, dx[] = {{"d", 1}, {"x", 1}},
                     dz[] = {{"d", 1}, {"zz", 2}};
    struct fuse_attr a;
    assert_int_equal(node_walk_cached(&t, df, 2, 1, &a), 1);
    assert_int_equal(a.ino, 61);
    assert_int_equal(node_walk_cached(&t, dl, 2, 1, &a), 0);  /* follow a symlink: slow */
    assert_int_equal(node_walk_cached(&t, dl, 2, 0, &a), 1);  /* lstat */
    assert_int_equal(a.ino, 62);
    assert_int_equal(node_walk_cached(&t, dlf, 3, 0, &a), 0); /* symlink on the way */
    assert_int_equal(node_walk_cached(&t, dfg, 3, 1, &a), 0); /* not a directory */
    assert_int_equal(node_walk_cached(&t, dneg, 2, 1, &a), 0); /* negative: the walk says */
    assert_int_equal(node_walk_cached(&t, dx, 2, 1, &a), 0);  /* attributes expired */
    assert_int_equal(node_walk_cached(&t, dz, 2, 1, &a), 0);  /* not cached */
    /* An expired entry on the way. */
    entry_store(&t, root, "d", 1, d, ufuse_valid_now_ns() + 20000000ull);
    usleep(60000);
    assert_int_equal(node_walk_cached(&t, df, 2, 1, &a), 0);
    assert_false(fakesrv_pending(&f, 20)); /* nothing asked of the server */
    node_put(&t, d);
    node_put(&t, fi);
    node_put(&t, l);
    node_put(&t, x);
    node_put(&t, root);
    node_table_destroy(&t);
    fakesrv_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_counts_and_batch_forget),
        cmocka_unit_test(test_single_forget_old_minor_and_lru),
        cmocka_unit_test(test_generation_reuse),
        cmocka_unit_test(test_attr_cache),
        cmocka_unit_test(test_entry_cache),
        cmocka_unit_test(test_walk_cached),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
