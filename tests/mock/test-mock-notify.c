/*
 * test-mock-notify.c - notifications from the server (unique 0): INVAL_INODE,
 * INVAL_ENTRY, DELETE, STORE, RETRIEVE (answered with NOTIFY_REPLY) and
 * malformed ones (logged and ignored).
 *
 * To know the client has taken a notification in, the mock sends it just
 * before the reply to a "barrier" call (STATFS): the client reads the
 * socket in order, so the notification is handled before the reply is.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mock/mockutil.h"

/* Script a STATFS that first sends @code/@payload (before its reply). */
static struct mock_exp *script_barrier(struct mock *m, int code,
                                       const void *payload, size_t len)
{
    struct mock_exp *e = mock_expect(m, FUSE_STATFS, MOCK_ANY_NODE);
    if (payload || code)
        mock_act_notify(e, code, payload, len);
    return e;
}

static void run_barrier(struct mock *m, ufuse_t *s, struct mock_exp *e)
{
    struct fuse_kstatfs kst = {.blocks = 100, .bfree = 50, .bavail = 50,
                               .bsize = 4096, .frsize = 4096,
                               .namelen = 255};
    mock_reply_statfs(e, &kst);
    struct statvfs vst;
    assert_int_equal(ufuse_statfs(s, "/", &vst), 0);
    assert_int_equal(vst.f_blocks, 100);
}

static void barrier_with(struct mock *m, ufuse_t *s, int code,
                         const void *payload, size_t len)
{
    run_barrier(m, s, script_barrier(m, code, payload, len));
}

/* "/a" cached for an hour (entry and attributes). */
static void cache_a(struct mock *m, ufuse_t *s)
{
    mu_expect_entry(m, 1, "a", 2, S_IFREG | 0644, 10, 3600, 3600);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(mock_log_count(m, FUSE_LOOKUP), 1);
}

static void t_inval_inode(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    cache_a(m, s);
    struct fuse_notify_inval_inode_out ii = {.ino = 2, .off = 0, .len = -1};
    barrier_with(m, s, FUSE_NOTIFY_INVAL_INODE, &ii, sizeof(ii));
    /* The entry stays; the attributes are asked for. */
    struct mock_exp *g = mock_expect_getattr(m, 2);
    mu_match_plain_getattr(g);
    struct fuse_attr_out ao = mock_attr_out(2, S_IFREG | 0644, 20, 3600);
    mock_reply_attr(g, &ao);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(st.st_size, 20);
    assert_int_equal(mock_log_count(m, FUSE_LOOKUP), 1);
    mu_finish(m, s);
}

static void t_inval_entry(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    cache_a(m, s);
    unsigned char nb[128];
    size_t nl = mock_build_inval_entry(nb, sizeof(nb), 1, "a");
    barrier_with(m, s, FUSE_NOTIFY_INVAL_ENTRY, nb, nl);
    mu_expect_entry(m, 1, "a", 3, S_IFREG | 0644, 30, 3600, 3600);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(st.st_ino, 3);
    assert_int_equal(st.st_size, 30);
    mu_finish(m, s);
}

/* INVAL_ENTRY of another name leaves "a" cached. */
static void t_inval_other_entry(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    cache_a(m, s);
    unsigned char nb[128];
    size_t nl = mock_build_inval_entry(nb, sizeof(nb), 1, "b");
    barrier_with(m, s, FUSE_NOTIFY_INVAL_ENTRY, nb, nl);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(mock_log_count(m, FUSE_LOOKUP), 1);
    mu_finish(m, s);
}

static void t_delete(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    cache_a(m, s);
    unsigned char nb[128];
    size_t nl = mock_build_delete(nb, sizeof(nb), 1, 2, "a");
    barrier_with(m, s, FUSE_NOTIFY_DELETE, nb, nl);
    mock_reply_err(mock_expect_lookup(m, 1, "a"), -ENOENT);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/a", &st), -ENOENT);
    mu_finish(m, s);
}

/* STORE with no data cache: accepted; it may extend the cached size. */
static void t_store(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 100, 3600, 0);
    unsigned char nb[256], data[50];
    memset(data, 's', sizeof(data));
    size_t nl = mock_build_store(nb, sizeof(nb), MU_INO, 200, data, 50);
    barrier_with(m, s, FUSE_NOTIFY_STORE, nb, nl);
    struct stat st;
    assert_int_equal(ufuse_fstat(f, &st), 0);
    assert_true(st.st_size == 100 || st.st_size == 250);
    assert_int_equal(mock_log_count(m, FUSE_GETATTR), 0);
    /* The session goes on: reads still go to the server. */
    mock_reply_pattern(mock_expect_read(m, MU_INO, MU_FH, 0, 10), 0, 10);
    char buf[10];
    assert_int_equal(ufuse_pread(f, buf, sizeof(buf), 0), 10);
    mu_close(m, f);
    mu_finish(m, s);
}

static bool unique_is(const struct mock_req *r, void *arg)
{
    return r->h.unique == (uint64_t)(uintptr_t)arg;
}

static struct mock_exp *expect_notify_reply(struct mock *m, uint64_t unique)
{
    struct mock_exp *e = mock_expect(m, FUSE_NOTIFY_REPLY, MU_INO);
    mock_match_custom(e, unique_is, (void *)(uintptr_t)unique,
                      "unique = notify_unique");
    MOCK_MATCH(e, struct fuse_notify_retrieve_in, offset, 0);
    MOCK_MATCH(e, struct fuse_notify_retrieve_in, size, 0);
    mock_match_bodylen(e, sizeof(struct fuse_notify_retrieve_in));
    return e;
}

/* RETRIEVE: a NOTIFY_REPLY with unique = notify_unique and no data. */
static void t_retrieve(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mock_allow(m, FUSE_NOTIFY_REPLY, MOCK_DISALLOW);
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 100, 3600, 0);
    struct fuse_notify_retrieve_out ro = {.notify_unique = 4242,
                                          .nodeid = MU_INO, .offset = 0,
                                          .size = 4096};
    struct mock_exp *b = script_barrier(m, FUSE_NOTIFY_RETRIEVE, &ro,
                                        sizeof(ro));
    /* Sent by the client when it handles the RETRIEVE: possibly before
     * the barrier's reply is handled, so waited for before going on. */
    struct mock_exp *nr = expect_notify_reply(m, 4242);
    run_barrier(m, s, b);
    assert_true(mock_wait(m, nr, MOCK_WAIT_MS));
    mu_close(m, f);
    mu_finish(m, s);
}

/* A RETRIEVE sent while no call is in progress is answered too (at the
 * latest alongside the next call). */
static void t_retrieve_idle(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mock_allow(m, FUSE_NOTIFY_REPLY, MOCK_DISALLOW);
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 100, 3600, 0);
    struct fuse_notify_retrieve_out ro = {.notify_unique = 99,
                                          .nodeid = MU_INO, .offset = 0,
                                          .size = 10};
    mock_unordered_begin(m);
    struct mock_exp *nr = expect_notify_reply(m, 99);
    struct mock_exp *b = script_barrier(m, 0, NULL, 0);
    mock_unordered_end(m);
    assert_int_equal(mock_notify(m, FUSE_NOTIFY_RETRIEVE, &ro, sizeof(ro)), 0);
    run_barrier(m, s, b);
    assert_true(mock_wait(m, nr, MOCK_WAIT_MS));
    mu_close(m, f);
    mu_finish(m, s);
}

/* Malformed notifications are ignored: "/a" stays cached, no request. */
static void t_malformed(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mock_allow(m, FUSE_NOTIFY_REPLY, MOCK_DISALLOW);
    cache_a(m, s);
    struct mock_exp *b = mock_expect(m, FUSE_STATFS, MOCK_ANY_NODE);
    unsigned char nb[256];
    size_t nl;

    /* An unknown code, and code 0. */
    mock_act_notify(b, 99, "12345678", 8);
    mock_act_notify(b, 0, "12345678", 8);
    /* INVAL_ENTRY shorter than its struct. */
    struct fuse_notify_inval_entry_out ie = {.parent = 1, .namelen = 1};
    mock_act_notify(b, FUSE_NOTIFY_INVAL_ENTRY, &ie, 8);
    /* INVAL_ENTRY of "a" without the terminating NUL. */
    nl = mock_build_inval_entry(nb, sizeof(nb), 1, "a");
    mock_act_notify(b, FUSE_NOTIFY_INVAL_ENTRY, nb, nl - 1);
    /* INVAL_ENTRY whose namelen disagrees with the payload. */
    ie.namelen = 5;
    memcpy(nb, &ie, sizeof(ie));
    mock_act_notify(b, FUSE_NOTIFY_INVAL_ENTRY, nb, nl);
    /* INVAL_ENTRY with a name too long (namelen > 1024, all there). */
    static unsigned char longn[sizeof(ie) + 1500];
    memset(longn, 'a', sizeof(longn));
    ie.namelen = 1499;
    memcpy(longn, &ie, sizeof(ie));
    longn[sizeof(longn) - 1] = 0;
    mock_act_notify(b, FUSE_NOTIFY_INVAL_ENTRY, longn, sizeof(longn));
    /* DELETE and INVAL_INODE cut short. */
    nl = mock_build_delete(nb, sizeof(nb), 1, 2, "a");
    mock_act_notify(b, FUSE_NOTIFY_DELETE, nb, 12);
    struct fuse_notify_inval_inode_out ii = {.ino = 2, .off = 0, .len = -1};
    mock_act_notify(b, FUSE_NOTIFY_INVAL_INODE, &ii, 8);
    /* STORE claiming more data than it carries. */
    nl = mock_build_store(nb, sizeof(nb), 2, 0, "0123456789", 10);
    struct fuse_notify_store_out so;
    memcpy(&so, nb, sizeof(so));
    so.size = 1000;
    memcpy(nb, &so, sizeof(so));
    mock_act_notify(b, FUSE_NOTIFY_STORE, nb, nl);
    /* RETRIEVE cut short: no NOTIFY_REPLY may come of it. */
    struct fuse_notify_retrieve_out ro = {.notify_unique = 5, .nodeid = 2,
                                          .size = 10};
    mock_act_notify(b, FUSE_NOTIFY_RETRIEVE, &ro, 16);
    /* A header len shorter than the datagram. */
    unsigned char raw[16 + sizeof(ie) + 2];
    nl = mock_build_inval_entry(nb, sizeof(nb), 1, "a");
    struct fuse_out_header oh = {.len = 16 + sizeof(ie),
                                 .error = FUSE_NOTIFY_INVAL_ENTRY, .unique = 0};
    memcpy(raw, &oh, 16);
    memcpy(raw + 16, nb, nl);
    mock_reply_raw(b, raw, sizeof(raw), 0);
    run_barrier(m, s, b);

    struct stat st;
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(st.st_size, 10);
    assert_int_equal(mock_log_count(m, FUSE_LOOKUP), 1);
    assert_int_equal(mock_log_count(m, FUSE_GETATTR), 0);

    /* Notifications still work after all that. */
    nl = mock_build_inval_entry(nb, sizeof(nb), 1, "a");
    barrier_with(m, s, FUSE_NOTIFY_INVAL_ENTRY, nb, nl);
    mu_expect_entry(m, 1, "a", 2, S_IFREG | 0644, 11, 3600, 3600);
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(st.st_size, 11);
    assert_int_equal(mock_log_count(m, FUSE_NOTIFY_REPLY), 0);
    mu_finish(m, s);
}

/*
 * Notifications that arrive before INIT's reply (queued ahead of it) find
 * no session to act on yet: they are ignored, as the kernel ignores those
 * for inodes it does not have (fuzz-session found they were delivered to
 * the node table before it existed, a NULL dereference).
 */
static void t_before_init(void **state)
{
    struct mock *m = mock_new(NULL);
    unsigned char nb[128];
    size_t nl = mock_build_inval_entry(nb, sizeof(nb), 1, "a");
    assert_int_equal(mock_notify(m, FUSE_NOTIFY_INVAL_ENTRY, nb, nl), 0);
    nl = mock_build_delete(nb, sizeof(nb), 1, 2, "a");
    assert_int_equal(mock_notify(m, FUSE_NOTIFY_DELETE, nb, nl), 0);
    struct fuse_notify_inval_inode_out ii = {.ino = 1, .off = 0, .len = -1};
    assert_int_equal(mock_notify(m, FUSE_NOTIFY_INVAL_INODE, &ii, sizeof(ii)), 0);
    nl = mock_build_store(nb, sizeof(nb), 1, 0, "0123456789", 10);
    assert_int_equal(mock_notify(m, FUSE_NOTIFY_STORE, nb, nl), 0);
    struct fuse_notify_retrieve_out ro = {.notify_unique = 5, .nodeid = 1, .size = 10};
    assert_int_equal(mock_notify(m, FUSE_NOTIFY_RETRIEVE, &ro, sizeof(ro)), 0);
    ufuse_t *s;
    assert_int_equal(ufuse_mount_fd(&s, mock_client_fd(m), "cache=writeback"), 0);
    cache_a(m, s);
    assert_int_equal(mock_log_count(m, FUSE_NOTIFY_REPLY), 0);
    mu_finish(m, s);
}

/*
 * Notifications that arrive while the session is being torn down (here:
 * after the FORGETs of unmount, before the RELEASE of the file it closed
 * is answered) find its tables gone: they are ignored (fuzz-session found
 * them delivered to the freed node table).
 */
static void t_during_unmount(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, "cache=writeback");
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 100, 3600, 0);
    (void)f; /* unmount closes it */
    mock_reply_err(mock_expect_flush(m, MU_INO, MU_FH), 0);
    struct mock_exp *rel = mock_expect_release(m, MU_INO, MU_FH); /* answered below */
    struct mock_exp *fg = mock_expect(m, FUSE_BATCH_FORGET, MOCK_ANY_NODE);
    unsigned char nb[128];
    size_t nl = mock_build_inval_entry(nb, sizeof(nb), 1, "f");
    mock_act_notify(fg, FUSE_NOTIFY_INVAL_ENTRY, nb, nl);
    struct fuse_notify_inval_inode_out ii = {.ino = MU_INO, .off = 0, .len = -1};
    mock_act_notify(fg, FUSE_NOTIFY_INVAL_INODE, &ii, sizeof(ii));
    nl = mock_build_store(nb, sizeof(nb), MU_INO, 0, "0123456789", 10);
    mock_act_notify(fg, FUSE_NOTIFY_STORE, nb, nl);
    mock_act_reply_to(fg, rel, 0, NULL, 0);
    assert_int_equal(ufuse_unmount(s), 0);
    mock_verify(m);
    mock_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_inval_inode),
        cmocka_unit_test(t_inval_entry),
        cmocka_unit_test(t_inval_other_entry),
        cmocka_unit_test(t_delete),
        cmocka_unit_test(t_store),
        cmocka_unit_test(t_retrieve),
        cmocka_unit_test(t_retrieve_idle),
        cmocka_unit_test(t_malformed),
        cmocka_unit_test(t_before_init),
        cmocka_unit_test(t_during_unmount),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
