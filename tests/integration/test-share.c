/*
 * test-share.c - the shared region (-o share, include/ufuse_share.h)
 * against ufuse-memfs, read the way another process reads it: the memfd
 * from ufuse_share_fd mapped read-only, the file's ids from
 * ufuse_file_share, the inline readers of ufuse_share.h.
 *
 *  - not offered: without -o share, under cache=direct, for an O_DIRECT
 *    handle;
 *  - pages read through the session are readable from the region with
 *    the same bytes, and the attribute record gives what ufuse_fstat does;
 *  - coherence, in write-through and write-back: a write through another
 *    handle is seen by a region read at once; a write that extends the
 *    file, and a truncate, take the record down until the session has the
 *    attributes again; a truncate takes the dropped pages away; a key
 *    the session never gave finds nothing.
 *
 * State: MEMFS, set in main; each test makes and ends its own session.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "check.h"

#include "ufuse.h"
#include "ufuse_share.h"

#define KIB 1024u
#define FILE_SIZE (256u * KIB)

static char MEMFS[4096];

static ufuse_t *mount_memfs(const char *opts)
{
    char *argv[] = {MEMFS, NULL};
    ufuse_t *s = NULL;
    OK(ufuse_mount(&s, argv, opts));
    return s;
}

static unsigned char pattern(uint64_t off)
{
    return (unsigned char)((off * 7 + (off >> 12) * 13 + 1) & 0xff);
}

static uint64_t coarse_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The region of @s mapped read-only, and its referenced bytes read-write,
 * as another process would. */
struct mapped {
    void *base, *refs;
    size_t size, refs_size;
    struct ufuse_share_view v;
};

static void map_region(ufuse_t *s, struct mapped *m)
{
    int fd = ufuse_share_fd(s);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    m->size = (size_t)st.st_size;
    m->base = mmap(NULL, m->size, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(m->base != MAP_FAILED);
    /* Sealed: no reader can write the session's cache. */
    assert_true(mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
    assert_int_equal(pwrite(fd, "x", 1, 0), -1);
    assert_int_equal(ftruncate(fd, 0), -1);
    close(fd);
    fd = ufuse_share_refs_fd(s);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    m->refs_size = (size_t)st.st_size;
    m->refs = mmap(NULL, m->refs_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(m->refs != MAP_FAILED);
    close(fd);
    assert_int_equal(ufuse_share_view_init(&m->v, m->base, m->size, m->refs), 0);
    assert_true(m->refs_size >= m->v.h->nframes);
    /* A header that claims more than is mapped is refused. */
    struct ufuse_share_view bad;
    assert_int_equal(ufuse_share_view_init(&bad, m->base, 4096, NULL), -1);
}

static void make_file(ufuse_t *s, const char *path)
{
    static unsigned char buf[FILE_SIZE];
    for (uint64_t i = 0; i < FILE_SIZE; i++)
        buf[i] = pattern(i);
    ufuse_file_t *f;
    OK(ufuse_open(s, path, O_CREAT | O_TRUNC | O_WRONLY, 0644, &f));
    assert_int_equal(ufuse_pwrite(f, buf, FILE_SIZE, 0), FILE_SIZE);
    OK(ufuse_close(f));
}

static void t_not_offered(void **state)
{
    ufuse_t *s = mount_memfs("timeout=30");
    assert_int_equal(ufuse_share_fd(s), -EOPNOTSUPP);
    assert_int_equal(ufuse_share_refs_fd(s), -EOPNOTSUPP);
    make_file(s, "/f");
    ufuse_file_t *f;
    OK(ufuse_open(s, "/f", O_RDONLY, 0, &f));
    struct ufuse_share_ids ids;
    assert_int_equal(ufuse_file_share(f, &ids), -EOPNOTSUPP);
    OK(ufuse_close(f));
    ufuse_unmount(s);

    s = mount_memfs("timeout=30,share,cache=direct");
    assert_int_equal(ufuse_share_fd(s), -EOPNOTSUPP);
    ufuse_unmount(s);

    s = mount_memfs("timeout=30,share");
    make_file(s, "/f");
    OK(ufuse_open(s, "/f", O_RDONLY | O_DIRECT, 0, &f));
    assert_int_equal(ufuse_file_share(f, &ids), -EOPNOTSUPP);
    OK(ufuse_close(f));
    ufuse_unmount(s);
}

/* The record of @ids, or fail. */
static struct fuse_attr record(const struct mapped *m, const struct ufuse_share_ids *ids)
{
    struct fuse_attr a;
    assert_true(ufuse_share_attr_get(&m->v, ids->attr_slot, ids->nodeid, ids->generation,
                                     coarse_now(), &a));
    return a;
}

static void coherence(const char *opts)
{
    ufuse_t *s = mount_memfs(opts);
    struct mapped m;
    map_region(s, &m);
    make_file(s, "/f");
    ufuse_file_t *r, *w;
    OK(ufuse_open(s, "/f", O_RDONLY, 0, &r));
    struct ufuse_share_ids ids;
    OK(ufuse_file_share(r, &ids));
    assert_int_not_equal(ids.attr_slot, 0);

    /* Read through the session: the region has the same pages. */
    static unsigned char buf[FILE_SIZE], got[FILE_SIZE];
    assert_int_equal(ufuse_pread(r, buf, FILE_SIZE, 0), FILE_SIZE);
    memset(got, 0, sizeof got);
    assert_int_equal(ufuse_share_read(&m.v, ids.key, 0, FILE_SIZE, got), FILE_SIZE);
    assert_memory_equal(got, buf, FILE_SIZE);
    assert_int_equal(ufuse_share_read(&m.v, ids.key, 100, 5000, got), 5000);
    assert_memory_equal(got, buf + 100, 5000);
    assert_int_equal(ufuse_share_read(&m.v, ids.key + 1000, 0, 4096, got), 0);
    /* A reader's hit marks its page referenced, where the session's
     * clock hand looks. */
    uint32_t seq;
    int64_t frame = ufuse_share_find(&m.v, ids.key, 3, &seq);
    assert_true(frame >= 0);
    atomic_store(&m.v.refs[frame], 0);
    assert_int_equal(ufuse_share_read(&m.v, ids.key, 3 * 4096, 10, got), 10);
    assert_int_equal(atomic_load(&m.v.refs[frame]), 1);

    /* The record is what fstat says. */
    struct stat st, st2;
    OK(ufuse_fstat(r, &st));
    struct fuse_attr a = record(&m, &ids);
    ufuse_share_attr_stat(&a, &st2);
    assert_memory_equal(&st, &st2, sizeof st);
    assert_int_equal(a.size, FILE_SIZE);

    /* A write through another handle is in the region when it returns
     * (write-back keeps the page, dirty; write-through may drop a page it
     * wrote part of: then a reader misses, never sees the old bytes). */
    OK(ufuse_open(s, "/f", O_RDWR, 0, &w));
    const char msg[] = "written by another handle";
    assert_int_equal(ufuse_pwrite(w, msg, sizeof msg, 4096 + 10), sizeof msg);
    size_t n = ufuse_share_read(&m.v, ids.key, 4096, 4096, got);
    if (strstr(opts, "writeback"))
        assert_int_equal(n, 4096);
    if (n) {
        assert_int_equal(n, 4096);
        assert_memory_equal(got + 10, msg, sizeof msg);
    }

    /* Extending takes the record down; the session's next look brings
     * it back with the new size. */
    assert_int_equal(ufuse_pwrite(w, "x", 1, FILE_SIZE + 100), 1);
    struct fuse_attr b;
    assert_false(ufuse_share_attr_get(&m.v, ids.attr_slot, ids.nodeid, ids.generation,
                                      coarse_now(), &b));
    OK(ufuse_fstat(r, &st));
    assert_int_equal(record(&m, &ids).size, FILE_SIZE + 101);

    /* A truncate: record down, the pages past the new end gone. */
    OK(ufuse_ftruncate(w, 8 * KIB));
    assert_false(ufuse_share_attr_get(&m.v, ids.attr_slot, ids.nodeid, ids.generation,
                                      coarse_now(), &b));
    assert_int_equal(ufuse_share_read(&m.v, ids.key, 16 * KIB, 4096, got), 0);
    OK(ufuse_fstat(r, &st));
    assert_int_equal(record(&m, &ids).size, 8 * KIB);
    /* A record names its node: another file's ids do not match it. */
    assert_false(ufuse_share_attr_get(&m.v, ids.attr_slot, ids.nodeid + 1, ids.generation,
                                      coarse_now(), &b));

    OK(ufuse_close(w));
    OK(ufuse_close(r));
    ufuse_unmount(s);
    /* A reader that outlives the session reads nothing from it. */
    assert_int_equal(ufuse_share_read(&m.v, ids.key, 0, 4096, got), 0);
    assert_false(ufuse_share_attr_get(&m.v, ids.attr_slot, ids.nodeid, ids.generation,
                                      coarse_now(), &b));
    munmap(m.base, m.size);
    munmap(m.refs, m.refs_size);
}

/* Path walks from the entry records: what ufuse_stat would say, and
 * nothing once a name is gone or moved. */
static void t_walk(void **state)
{
    ufuse_t *s = mount_memfs("timeout=30,share");
    struct mapped m;
    map_region(s, &m);
    OK(ufuse_mkdir(s, "/d", 0755));
    make_file(s, "/d/f");
    OK(ufuse_symlink(s, "f", "/d/l"));
    struct stat st, st2;
    OK(ufuse_stat(s, "/d/f", &st));
    struct fuse_attr a;
    assert_int_equal(ufuse_share_walk(&m.v, "/d/f", 1, coarse_now(), &a), 1);
    ufuse_share_attr_stat(&a, &st2);
    assert_memory_equal(&st, &st2, sizeof st);
    OK(ufuse_stat(s, "/", &st));
    assert_int_equal(ufuse_share_walk(&m.v, "/", 1, coarse_now(), &a), 1);
    ufuse_share_attr_stat(&a, &st2);
    assert_memory_equal(&st, &st2, sizeof st);
    /* A symbolic link: lstat from the records, stat asks the session. */
    OK(ufuse_lstat(s, "/d/l", &st));
    assert_int_equal(ufuse_share_walk(&m.v, "/d/l", 0, coarse_now(), &a), 1);
    assert_true(S_ISLNK(a.mode));
    assert_int_equal(ufuse_share_walk(&m.v, "/d/l", 1, coarse_now(), &a), 0);
    /* A name not looked up is not known; a file is no directory. */
    assert_int_equal(ufuse_share_walk(&m.v, "/d/g", 1, coarse_now(), &a), 0);
    assert_int_equal(ufuse_share_walk(&m.v, "/d/f/x", 1, coarse_now(), &a), 0);
    /* Renamed and unlinked names are gone from the records. */
    OK(ufuse_rename(s, "/d/f", "/d/g", 0));
    assert_true(ufuse_share_walk(&m.v, "/d/f", 1, coarse_now(), &a) <= 0);
    OK(ufuse_stat(s, "/d/g", &st));
    assert_int_equal(ufuse_share_walk(&m.v, "/d/g", 1, coarse_now(), &a), 1);
    OK(ufuse_unlink(s, "/d/g"));
    assert_true(ufuse_share_walk(&m.v, "/d/g", 1, coarse_now(), &a) <= 0);
    /* A chmod takes the attributes down until the session has them. */
    OK(ufuse_stat(s, "/d", &st));
    assert_int_equal(ufuse_share_walk(&m.v, "/d", 1, coarse_now(), &a), 1);
    OK(ufuse_chmod(s, "/d", 0700));
    if (ufuse_share_walk(&m.v, "/d", 1, coarse_now(), &a) == 1)
        assert_int_equal(a.mode & 07777, 0700);
    /* A reader that outlives the session finds nothing published. */
    OK(ufuse_stat(s, "/d", &st));
    ufuse_unmount(s);
    assert_int_equal(ufuse_share_walk(&m.v, "/", 1, coarse_now(), &a), 0);
    assert_int_equal(ufuse_share_walk(&m.v, "/d", 1, coarse_now(), &a), 0);
    munmap(m.base, m.size);
    munmap(m.refs, m.refs_size);
}

static void t_writethrough(void **state)
{
    coherence("timeout=30,share,cache=writethrough");
}

static void t_writeback(void **state)
{
    coherence("timeout=30,share,cache=writeback");
}

int main(void)
{
    const char *dir = getenv("UFUSE_BUILD_DIR");
    snprintf(MEMFS, sizeof MEMFS, "%s/ufuse-memfs", dir ? dir : ".");
    if (access(MEMFS, X_OK) != 0) {
        fprintf(stderr, "%s not built\n", MEMFS);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_not_offered),
        cmocka_unit_test(t_writethrough),
        cmocka_unit_test(t_writeback),
        cmocka_unit_test(t_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
