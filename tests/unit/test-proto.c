/* test-proto.c - wire-format sizes, dirent walking, notification checks. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "proto/proto.h"

static void test_sizes_by_minor(void **state)
{
    assert_int_equal(proto_entry_out_size(8), FUSE_COMPAT_ENTRY_OUT_SIZE);
    assert_int_equal(proto_entry_out_size(9), sizeof(struct fuse_entry_out));
    assert_int_equal(proto_attr_out_size(8), FUSE_COMPAT_ATTR_OUT_SIZE);
    assert_int_equal(proto_attr_out_size(38), sizeof(struct fuse_attr_out));
    assert_int_equal(proto_write_in_size(8), FUSE_COMPAT_WRITE_IN_SIZE);
    assert_int_equal(proto_write_in_size(9), sizeof(struct fuse_write_in));
    assert_int_equal(proto_mknod_in_size(11), FUSE_COMPAT_MKNOD_IN_SIZE);
    assert_int_equal(proto_mknod_in_size(12), sizeof(struct fuse_mknod_in));
    assert_string_equal(proto_opname(FUSE_READ), "READ");
    assert_string_equal(proto_opname(9999), "UNKNOWN");
}

/* Append a dirent to @buf at *@len. */
static void put_dirent(char *buf, size_t *len, uint64_t ino, uint64_t off, const char *name,
                       uint32_t namelen)
{
    struct fuse_dirent *d = (void *)(buf + *len);
    d->ino = ino;
    d->off = off;
    d->namelen = namelen;
    d->type = DT_REG;
    memcpy(d->name, name, strlen(name));
    *len += FUSE_DIRENT_SIZE(d);
}

static void test_dirents(void **state)
{
    char buf[512] = {0};
    size_t len = 0, pos = 0;
    put_dirent(buf, &len, 5, 1, "a", 1);
    put_dirent(buf, &len, 6, 2, "hello", 5);
    struct proto_dirent de;
    assert_int_equal(proto_dirent_next(buf, len, &pos, 0, &de), 1);
    assert_int_equal(de.ino, 5);
    assert_int_equal(de.namelen, 1);
    assert_int_equal(proto_dirent_next(buf, len, &pos, 0, &de), 1);
    assert_memory_equal(de.name, "hello", 5);
    assert_int_equal(de.off, 2);
    assert_int_equal(proto_dirent_next(buf, len, &pos, 0, &de), 0);

    /* A name running past the buffer. */
    len = pos = 0;
    put_dirent(buf, &len, 5, 1, "abc", 200);
    assert_int_equal(proto_dirent_next(buf, 64, &pos, 0, &de), -EIO);
    /* A header cut short. */
    pos = 0;
    assert_int_equal(proto_dirent_next(buf, 10, &pos, 0, &de), -EIO);
    /* After a whole entry, one cut off by the end of the reply ends it
     * (libfuse 2's slices): the whole one is returned, then the end. */
    memset(buf, 0, sizeof buf);
    len = pos = 0;
    put_dirent(buf, &len, 5, 1, "first", 5);
    size_t whole = len;
    put_dirent(buf, &len, 6, 2, "second-entry", 12);
    for (size_t cut = whole + 1; cut < whole + FUSE_NAME_OFFSET + 12; cut += 7) {
        pos = 0;
        assert_int_equal(proto_dirent_next(buf, cut, &pos, 0, &de), 1);
        assert_int_equal(de.off, 1);
        assert_int_equal(proto_dirent_next(buf, cut, &pos, 0, &de), 0);
        assert_int_equal(pos, cut);
    }
    /* ... but a name longer than any name may be is still an error. */
    pos = 0;
    ((struct fuse_dirent *)(buf + whole))->namelen = 5000;
    assert_int_equal(proto_dirent_next(buf, len, &pos, 0, &de), 1);
    assert_int_equal(proto_dirent_next(buf, len, &pos, 0, &de), -EIO);
    /* Names with '/' or NUL, empty names. */
    len = pos = 0;
    put_dirent(buf, &len, 5, 1, "a/b", 3);
    assert_int_equal(proto_dirent_next(buf, len, &pos, 0, &de), -EIO);
    len = pos = 0;
    memset(buf, 0, sizeof buf);
    put_dirent(buf, &len, 5, 1, "ab", 3); /* includes the NUL */
    assert_int_equal(proto_dirent_next(buf, len, &pos, 0, &de), -EIO);
    len = pos = 0;
    put_dirent(buf, &len, 5, 1, "", 0);
    assert_int_equal(proto_dirent_next(buf, len, &pos, 0, &de), -EIO);
}

static void test_direntplus(void **state)
{
    char buf[1024] = {0};
    struct fuse_direntplus *dp = (void *)buf;
    dp->entry_out.nodeid = 9;
    dp->entry_out.attr.mode = S_IFREG | 0644;
    dp->dirent.ino = 9;
    dp->dirent.off = 1;
    dp->dirent.namelen = 3;
    memcpy(dp->dirent.name, "xyz", 3);
    size_t len = FUSE_DIRENTPLUS_SIZE(dp), pos = 0;
    struct proto_dirent de;
    assert_int_equal(proto_dirent_next(buf, len, &pos, 1, &de), 1);
    assert_non_null(de.entry);
    assert_int_equal(de.entry->nodeid, 9);
    /* Invalid attributes in a positive entry. */
    dp->entry_out.attr.mode = 0170000;
    pos = 0;
    assert_int_equal(proto_dirent_next(buf, len, &pos, 1, &de), -EIO);
}

static void test_notify_checks(void **state)
{
    char buf[512];
    struct fuse_notify_inval_entry_out *e = (void *)buf;
    e->parent = 1;
    e->namelen = 3;
    memcpy(e + 1, "abc", 4);
    assert_int_equal(proto_notify_check(FUSE_NOTIFY_INVAL_ENTRY, buf, sizeof *e + 4), 0);
    assert_int_equal(proto_notify_check(FUSE_NOTIFY_INVAL_ENTRY, buf, sizeof *e + 3), -EIO);
    ((char *)(e + 1))[3] = 'x'; /* no NUL */
    assert_int_equal(proto_notify_check(FUSE_NOTIFY_INVAL_ENTRY, buf, sizeof *e + 4), -EIO);
    e->namelen = 5000;
    assert_int_equal(proto_notify_check(FUSE_NOTIFY_INVAL_ENTRY, buf, sizeof *e + 4), -EIO);

    struct fuse_notify_store_out *s = (void *)buf;
    s->nodeid = 2;
    s->offset = 0;
    s->size = 10;
    assert_int_equal(proto_notify_check(FUSE_NOTIFY_STORE, buf, sizeof *s + 10), 0);
    assert_int_equal(proto_notify_check(FUSE_NOTIFY_STORE, buf, sizeof *s + 9), -EIO);
    assert_int_equal(proto_notify_check(FUSE_NOTIFY_INVAL_INODE, buf,
                                        sizeof(struct fuse_notify_inval_inode_out)), 0);
    assert_int_equal(proto_notify_check(FUSE_NOTIFY_INVAL_INODE, buf, 3), -EIO);
    assert_int_equal(proto_notify_check(77, buf, 3), -ENOSYS);
}

static void test_attrs(void **state)
{
    struct fuse_attr a = {.ino = 3, .mode = S_IFDIR | 0755, .size = 10, .mtime = 5,
                          .mtimensec = 7, .nlink = 2};
    assert_true(proto_attr_valid(&a));
    struct stat st;
    proto_attr_to_stat(&a, &st);
    assert_int_equal(st.st_ino, 3);
    assert_int_equal(st.st_mtim.tv_nsec, 7);
    a.mtimensec = 1000000000u;
    assert_false(proto_attr_valid(&a));
    a.mtimensec = 0;
    a.size = (uint64_t)1 << 63;
    assert_false(proto_attr_valid(&a));
    assert_int_equal(proto_name_check("ok", 2), 0);
    assert_int_equal(proto_name_check("a/b", 3), -EINVAL);
    char longname[300];
    memset(longname, 'x', sizeof longname);
    assert_int_equal(proto_name_check(longname, 256), -ENAMETOOLONG);
    /* Absurd validities are clamped, not overflowed. */
    assert_true(proto_valid_until(1000, UINT64_MAX, 0) > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_by_minor),
        cmocka_unit_test(test_dirents),
        cmocka_unit_test(test_direntplus),
        cmocka_unit_test(test_notify_checks),
        cmocka_unit_test(test_attrs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
