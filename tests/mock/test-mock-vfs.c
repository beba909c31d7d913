/*
 * test-mock-vfs.c - open/create/readdir against the mock: the OPEN flags
 * sent, O_TRUNC with and without FUSE_ATOMIC_O_TRUNC, O_CREAT on a cached
 * positive entry and with O_EXCL, CREATE's arguments, READDIR and
 * READDIRPLUS streams and RELEASEDIR, and a stat or chmod of a path
 * waiting for the RELEASE of its file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mock/mockutil.h"

/* O_CREAT/O_EXCL/O_NOCTTY never reach OPEN; other flags do. */
static void t_open_flags(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mu_expect_entry(m, 1, "f", MU_INO, S_IFREG | 0644, 0, 3600, 3600);
    mock_reply_open(mock_expect_open(m, MU_INO, O_RDWR | O_APPEND), MU_FH, 0);
    ufuse_file_t *f;
    assert_int_equal(ufuse_open(s, "/f", O_RDWR | O_APPEND | O_NOCTTY, 0, &f), 0);
    mu_close(m, f);
    /* O_CREAT on a cached positive entry: a plain OPEN. */
    mock_reply_open(mock_expect_open(m, MU_INO, O_WRONLY), MU_FH, 0);
    assert_int_equal(ufuse_open(s, "/f", O_CREAT | O_WRONLY, 0644, &f), 0);
    mu_close(m, f);
    /* ... and with O_EXCL: -EEXIST without a request. */
    size_t before = mock_log_count(m, 0);
    assert_int_equal(ufuse_open(s, "/f", O_CREAT | O_EXCL | O_WRONLY, 0644, &f),
                     -EEXIST);
    assert_int_equal(mock_log_count(m, 0), before);
    mu_finish(m, s);
}

/* FUSE_ATOMIC_O_TRUNC granted (the default): O_TRUNC goes in OPEN. */
static void t_trunc_atomic(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    assert_true(mock_granted(m) & FUSE_ATOMIC_O_TRUNC);
    ufuse_file_t *f = mu_open(m, s, O_WRONLY | O_TRUNC, 500, 3600, 0);
    mu_close(m, f);
    assert_int_equal(mock_log_count(m, FUSE_SETATTR), 0);
    mu_finish(m, s);
}

/* Without it: OPEN without O_TRUNC, then SETATTR(SIZE|FH, 0, fh). */
static void t_trunc_nonatomic(void **state)
{
    struct mock_init_cfg cfg;
    mock_init_defaults(&cfg);
    cfg.flags &= ~(uint64_t)FUSE_ATOMIC_O_TRUNC;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, &cfg, NULL);
    mu_expect_entry(m, 1, "f", MU_INO, S_IFREG | 0644, 500, 3600, 3600);
    mock_reply_open(mock_expect_open(m, MU_INO, O_WRONLY), MU_FH, 0);
    struct mock_exp *e = mock_expect_setattr(m, MU_INO, FATTR_SIZE | FATTR_FH);
    MOCK_MATCH(e, struct fuse_setattr_in, size, 0);
    MOCK_MATCH(e, struct fuse_setattr_in, fh, MU_FH);
    struct fuse_attr_out ao = mock_attr_out(MU_INO, S_IFREG | 0644, 0, 3600);
    mock_reply_attr(e, &ao);
    ufuse_file_t *f;
    assert_int_equal(ufuse_open(s, "/f", O_WRONLY | O_TRUNC, 0, &f), 0);
    mu_close(m, f);
    mu_finish(m, s);
}

/* O_CREAT of a new name: LOOKUP of the parents, then CREATE. */
static void t_create(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mu_expect_entry(m, 1, "d", 10, S_IFDIR | 0755, 0, 3600, 3600);
    /* As Linux's atomic open: LOOKUP first, CREATE when it is not there. */
    mock_reply_err(mock_expect_lookup(m, 10, "new"), -ENOENT);
    struct mock_exp *c = mock_expect(m, FUSE_CREATE, 10);
    mock_match_name(c, 0, "new");
    MOCK_MATCH(c, struct fuse_create_in, umask, 0);
    mock_match_bodylen(c, sizeof(struct fuse_create_in) + 4);
    struct fuse_entry_out eo = mock_entry(20, S_IFREG | 0604, 0, 3600, 3600);
    mock_reply_create(c, &eo, 33, 0);
    ufuse_file_t *f;
    assert_int_equal(ufuse_open(s, "/d/new", O_CREAT | O_EXCL | O_RDWR, 0604, &f),
                     0);
    struct mock_req r;
    assert_true(mock_log_find(m, FUSE_CREATE, 0, &r) != (size_t)-1);
    struct fuse_create_in ci;
    memcpy(&ci, r.body, sizeof(ci));
    assert_int_equal(ci.flags & O_ACCMODE, O_RDWR);
    assert_int_equal(ci.mode & 07777, 0604);
    mock_reply_err(mock_expect_flush(m, 20, 33), 0);
    mock_reply_err(mock_expect_release(m, 20, 33), 0);
    assert_int_equal(ufuse_close(f), 0);

    /* CREATE's error is the open's. */
    mock_reply_err(mock_expect_lookup(m, 10, "dup"), -ENOENT);
    c = mock_expect(m, FUSE_CREATE, 10);
    mock_match_name(c, 0, "dup");
    mock_reply_err(c, -EEXIST);
    assert_int_equal(ufuse_open(s, "/d/dup", O_CREAT | O_EXCL | O_RDWR, 0604, &f),
                     -EEXIST);

    /* O_CREAT through a symlink creates the link's target, resolved here
     * (relative to the link's directory); with O_EXCL it is EEXIST. */
    mu_expect_entry(m, 10, "ln", 21, S_IFLNK | 0777, 6, 3600, 3600);
    struct mock_exp *rl = mock_expect(m, FUSE_READLINK, 21);
    mock_reply(rl, "target", 6);
    mock_reply_err(mock_expect_lookup(m, 10, "target"), -ENOENT);
    c = mock_expect(m, FUSE_CREATE, 10);
    mock_match_name(c, 0, "target");
    eo = mock_entry(22, S_IFREG | 0644, 0, 3600, 3600);
    mock_reply_create(c, &eo, 34, 0);
    assert_int_equal(ufuse_open(s, "/d/ln", O_CREAT | O_WRONLY, 0644, &f), 0);
    mock_reply_err(mock_expect_flush(m, 22, 34), 0);
    mock_reply_err(mock_expect_release(m, 22, 34), 0);
    assert_int_equal(ufuse_close(f), 0);
    assert_int_equal(ufuse_open(s, "/d/ln", O_CREAT | O_EXCL | O_WRONLY, 0644, &f), -EEXIST);
    mu_finish(m, s);
}

static void expect_dirent(ufuse_dir_t *d, uint64_t ino, uint64_t off,
                          unsigned type, const char *name, int has_stat,
                          uint64_t size)
{
    struct ufuse_dirent ent;
    memset(&ent, 0, sizeof(ent));
    assert_int_equal(ufuse_readdir(d, &ent), 1);
    assert_int_equal(ent.ino, ino);
    assert_int_equal(ent.off, off);
    assert_int_equal(ent.type, type);
    assert_string_equal(ent.name, name);
    assert_int_equal(ent.has_stat, has_stat);
    if (has_stat)
        assert_int_equal(ent.st.st_size, size);
}

static struct mock_exp *expect_readdir(struct mock *m, uint32_t op,
                                       uint64_t nodeid, uint64_t fh,
                                       uint64_t off)
{
    struct mock_exp *e = mock_expect(m, op, nodeid);
    MOCK_MATCH(e, struct fuse_read_in, fh, fh);
    MOCK_MATCH(e, struct fuse_read_in, offset, off);
    MOCK_MATCH(e, struct fuse_read_in, size, 65536);
    return e;
}

static void t_readdir(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mock_reply_open(mock_expect(m, FUSE_OPENDIR, 1), 3, 0);
    struct mock_dirbuf b = {0};
    mock_dirbuf_add(&b, 1, 1, DT_DIR, ".");
    mock_dirbuf_add(&b, 1, 2, DT_DIR, "..");
    mock_dirbuf_add(&b, 5, 3, DT_REG, "file");
    mock_reply(expect_readdir(m, FUSE_READDIR, 1, 3, 0), b.buf, b.len);
    mock_dirbuf_free(&b);
    mock_dirbuf_add(&b, 6, 7, DT_LNK, "link");
    mock_reply(expect_readdir(m, FUSE_READDIR, 1, 3, 3), b.buf, b.len);
    mock_dirbuf_free(&b);
    mock_reply(expect_readdir(m, FUSE_READDIR, 1, 3, 7), NULL, 0);

    ufuse_dir_t *d;
    assert_int_equal(ufuse_opendir(s, "/", &d), 0);
    expect_dirent(d, 1, 1, DT_DIR, ".", 0, 0);
    expect_dirent(d, 1, 2, DT_DIR, "..", 0, 0);
    expect_dirent(d, 5, 3, DT_REG, "file", 0, 0);
    expect_dirent(d, 6, 7, DT_LNK, "link", 0, 0);
    struct ufuse_dirent ent;
    assert_int_equal(ufuse_readdir(d, &ent), 0);

    /* rewinddir: the next readdir asks from offset 0 again. */
    assert_int_equal(ufuse_rewinddir(d), 0);
    mock_dirbuf_add(&b, 9, 1, DT_REG, "again");
    mock_reply(expect_readdir(m, FUSE_READDIR, 1, 3, 0), b.buf, b.len);
    mock_dirbuf_free(&b);
    expect_dirent(d, 9, 1, DT_REG, "again", 0, 0);

    struct mock_exp *rd = mock_expect(m, FUSE_RELEASEDIR, 1);
    MOCK_MATCH(rd, struct fuse_release_in, fh, 3);
    mock_reply_err(rd, 0);
    assert_int_equal(ufuse_closedir(d), 0);
    assert_true(mock_wait(m, rd, MOCK_WAIT_MS));
    mu_finish(m, s);
}

static void t_readdirplus(void **state)
{
    struct mock_init_cfg cfg;
    mock_init_defaults(&cfg);
    cfg.flags |= FUSE_DO_READDIRPLUS;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, &cfg, NULL);
    mu_expect_entry(m, 1, "d", 10, S_IFDIR | 0755, 0, 3600, 3600);
    mock_reply_open(mock_expect(m, FUSE_OPENDIR, 10), 4, 0);
    struct mock_dirbuf b = {0};
    struct fuse_entry_out e1 = mock_entry(21, S_IFREG | 0644, 100, 3600, 3600);
    struct fuse_entry_out e2 = mock_entry(22, S_IFREG | 0644, 200, 3600, 3600);
    mock_dirbuf_addplus(&b, &e1, 1, DT_REG, "x");
    mock_dirbuf_addplus(&b, &e2, 2, DT_REG, "y");
    mock_reply(expect_readdir(m, FUSE_READDIRPLUS, 10, 4, 0), b.buf, b.len);
    mock_dirbuf_free(&b);
    mock_reply(expect_readdir(m, FUSE_READDIRPLUS, 10, 4, 2), NULL, 0);

    ufuse_dir_t *d;
    assert_int_equal(ufuse_opendir(s, "/d", &d), 0);
    expect_dirent(d, 21, 1, DT_REG, "x", 1, 100);
    expect_dirent(d, 22, 2, DT_REG, "y", 1, 200);
    struct ufuse_dirent ent;
    assert_int_equal(ufuse_readdir(d, &ent), 0);
    struct mock_exp *rd = mock_expect(m, FUSE_RELEASEDIR, 10);
    MOCK_MATCH(rd, struct fuse_release_in, fh, 4);
    mock_reply_err(rd, 0);
    assert_int_equal(ufuse_closedir(d), 0);
    assert_true(mock_wait(m, rd, MOCK_WAIT_MS));
    mu_finish(m, s);
}

/* Unmount sends the lookups still owed: one BATCH_FORGET with each node's
 * count (a name looked up twice, with entry_valid 0, is owed twice); a
 * server before 7.16 gets single FORGETs instead. */
static void forget_case(uint32_t minor)
{
    struct mock_init_cfg cfg;
    mock_init_defaults(&cfg);
    cfg.minor = minor;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, &cfg, NULL);
    struct stat st;
    mu_expect_entry(m, 1, "a", 10, S_IFREG | 0644, 1, 0, 3600);
    mu_expect_entry(m, 1, "a", 10, S_IFREG | 0644, 1, 0, 3600);
    mu_expect_entry(m, 1, "b", 11, S_IFREG | 0644, 1, 3600, 3600);
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(ufuse_stat(s, "/b", &st), 0);
    assert_int_equal(mock_log_count(m, FUSE_BATCH_FORGET) + mock_log_count(m, FUSE_FORGET), 0);
    assert_int_equal(ufuse_unmount(s), 0);
    /* The mock logs what it reads on its own thread: let it catch up. */
    mock_wait_log(m, minor >= 16 ? FUSE_BATCH_FORGET : FUSE_FORGET, minor >= 16 ? 1 : 2,
                  MOCK_WAIT_MS);
    uint64_t owed[2] = {0, 0};
    struct mock_req r;
    for (size_t i = 0; mock_log_get(m, i, &r); i++) {
        if (r.h.opcode == FUSE_BATCH_FORGET) {
            assert_true(minor >= 16);
            const struct fuse_batch_forget_in *bi = (const void *)r.body;
            const struct fuse_forget_one *one = (const void *)(bi + 1);
            for (uint32_t k = 0; k < bi->count; k++)
                if (one[k].nodeid == 10 || one[k].nodeid == 11)
                    owed[one[k].nodeid - 10] += one[k].nlookup;
        } else if (r.h.opcode == FUSE_FORGET) {
            assert_true(minor < 16);
            const struct fuse_forget_in *fi = (const void *)r.body;
            if (r.h.nodeid == 10 || r.h.nodeid == 11)
                owed[r.h.nodeid - 10] += fi->nlookup;
        }
    }
    assert_int_equal(owed[0], 2);
    assert_int_equal(owed[1], 1);
    mu_finish(m, NULL);
}

static void t_forget_at_unmount(void **state)
{
    forget_case(38);
    forget_case(15);
}

/* Renames the VFS settles itself, as Linux does, without asking the
 * server (libfuse 2's path locking deadlocks on some of them). */
static void t_rename_local_rules(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mu_expect_entry(m, 1, "d", 10, S_IFDIR | 0755, 0, 3600, 3600);
    mu_expect_entry(m, 10, "sub", 11, S_IFDIR | 0755, 0, 3600, 3600);
    mu_expect_entry(m, 1, "f", 12, S_IFREG | 0644, 0, 3600, 3600);
    mu_expect_entry(m, 1, "h", 12, S_IFREG | 0644, 0, 3600, 3600); /* a hard link */
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/d/sub", &st), 0);
    assert_int_equal(ufuse_stat(s, "/f", &st), 0);
    assert_int_equal(ufuse_stat(s, "/h", &st), 0);
    mock_reply_err(mock_expect_lookup(m, 11, "x"), -ENOENT);
    size_t before = mock_log_count(m, 0);
    assert_int_equal(ufuse_rename(s, "/f", "/f", 0), 0);           /* onto itself */
    assert_int_equal(ufuse_rename(s, "/f", "/h", 0), 0);           /* same file */
    assert_int_equal(ufuse_rename(s, "/d", "/d/sub/x", 0), -EINVAL); /* under itself */
    assert_int_equal(ufuse_rename(s, "/d/sub", "/d", 0), -ENOTEMPTY); /* onto an ancestor */
    assert_int_equal(ufuse_rename(s, "/d", "/f", 0), -ENOTDIR);
    assert_int_equal(ufuse_rename(s, "/f", "/d", 0), -EISDIR);
    assert_int_equal(ufuse_rename(s, "/f", "/d/sub", RENAME_NOREPLACE), -EEXIST);
    /* Only the LOOKUP of the missing "x" went out. */
    assert_int_equal(mock_log_count(m, 0), before + 1);
    assert_int_equal(mock_log_count(m, FUSE_RENAME) + mock_log_count(m, FUSE_RENAME2), 0);
    mu_finish(m, s);
}

/* UTIME_NOW sends the current time and FATTR_*_NOW, as Linux does. */
static bool now_times(const struct mock_req *r, void *arg)
{
    const struct fuse_setattr_in *si = (const void *)r->body;
    time_t t0 = *(time_t *)arg;
    return (si->valid & FATTR_ATIME_NOW) && (si->valid & FATTR_MTIME_NOW) &&
           si->atime >= (uint64_t)t0 && si->mtime >= (uint64_t)t0;
}

static void t_utime_now(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mu_expect_entry(m, 1, "f", 12, S_IFREG | 0644, 0, 3600, 3600);
    time_t t0 = time(NULL);
    struct mock_exp *e = mock_expect(m, FUSE_SETATTR, 12);
    mock_match_custom(e, now_times, &t0, "ATIME|MTIME with NOW and the current time");
    struct fuse_attr_out ao;
    memset(&ao, 0, sizeof ao);
    ao.attr.ino = 12;
    ao.attr.mode = S_IFREG | 0644;
    mock_reply_attr(e, &ao);
    assert_int_equal(ufuse_utimens(s, "/f", NULL), 0);
    mu_finish(m, s);
}

struct path_op {
    ufuse_t *s;
    int chmod; /* else stat */
    int rc;
};

static void *path_op_run(void *arg)
{
    struct path_op *p = arg;
    struct stat st;
    p->rc = p->chmod ? ufuse_chmod(p->s, "/f", 0600) : ufuse_stat(p->s, "/f", &st);
    return NULL;
}

/* Open "/f" and script its close: FLUSH answered, RELEASE held (returned). */
static struct mock_exp *open_release_held(struct mock *m, ufuse_t *s, ufuse_file_t **f)
{
    mock_reply_open(mock_expect_open(m, MU_INO, O_RDONLY), MU_FH, 0);
    assert_int_equal(ufuse_open(s, "/f", O_RDONLY, 0, f), 0);
    mock_reply_err(mock_expect_flush(m, MU_INO, MU_FH), 0);
    struct mock_exp *rel = mock_expect_release(m, MU_INO, MU_FH);
    mock_no_reply(rel);
    return rel;
}

/*
 * vfs.c invariant 4: after close, a GETATTR or SETATTR naming no handle
 * waits for the file's RELEASE to be answered (glusterfs answers such a
 * GETATTR with an FSTAT of a handle it still finds, which fails EBADFD if
 * the RELEASE is under way).  The mock holds the RELEASE; for half a
 * second no GETATTR/SETATTR may come; once it is answered, one does.  A
 * RELEASE never answered delays a stat (by a second), never blocks it.
 */
static void t_attr_after_release(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mu_expect_entry(m, 1, "f", MU_INO, S_IFREG | 0644, 0, 3600, 0);
    struct fuse_attr_out ao;
    memset(&ao, 0, sizeof ao);
    ao.attr.ino = MU_INO;
    ao.attr.mode = S_IFREG | 0600;
    for (int chmod = 0; chmod < 2; chmod++) {
        ufuse_file_t *f;
        struct mock_exp *rel = open_release_held(m, s, &f);
        struct mock_exp *e = chmod ? mock_expect(m, FUSE_SETATTR, MU_INO)
                                   : mock_expect_getattr(m, MU_INO);
        mock_reply_attr(e, &ao);
        uint32_t op = chmod ? FUSE_SETATTR : FUSE_GETATTR;
        size_t before = mock_log_count(m, op);
        assert_int_equal(ufuse_close(f), 0);
        assert_true(mock_wait(m, rel, MOCK_WAIT_MS));
        struct path_op p = {.s = s, .chmod = chmod};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, path_op_run, &p), 0);
        assert_false(mock_wait_log(m, op, before + 1, 500));
        assert_int_equal(mock_respond(m, rel, 0, NULL, 0), 0);
        assert_true(mock_wait(m, e, MOCK_WAIT_MS));
        pthread_join(t, NULL);
        assert_int_equal(p.rc, 0);
    }
    /* A RELEASE the server never answers holds a stat a second at most. */
    ufuse_file_t *f;
    struct mock_exp *rel = open_release_held(m, s, &f);
    mock_reply_attr(mock_expect_getattr(m, MU_INO), &ao);
    assert_int_equal(ufuse_close(f), 0);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/f", &st), 0);
    assert_int_equal(mock_respond(m, rel, 0, NULL, 0), 0);
    mu_finish(m, s);
}

/* ufuse_flush is close(2) of one copy: FLUSH (its error returned), no
 * FSYNC, and the file stays open until ufuse_close (FLUSH, RELEASE). */
static void t_flush_keeps_open(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mu_expect_entry(m, 1, "f", MU_INO, S_IFREG | 0644, 0, 3600, 0);
    mock_reply_open(mock_expect_open(m, MU_INO, O_RDWR), MU_FH, 0);
    ufuse_file_t *f;
    assert_int_equal(ufuse_open(s, "/f", O_RDWR, 0, &f), 0);
    struct mock_exp *e = mock_expect_flush(m, MU_INO, MU_FH);
    mock_reply_err(e, 0);
    assert_int_equal(ufuse_flush(f), 0);
    assert_true(mock_wait(m, e, MOCK_WAIT_MS));
    mock_reply_err(mock_expect_flush(m, MU_INO, MU_FH), -EIO);
    assert_int_equal(ufuse_flush(f), -EIO);
    assert_int_equal(mock_log_count(m, FUSE_FSYNC), 0);
    assert_int_equal(mock_log_count(m, FUSE_RELEASE), 0);
    mock_reply_err(mock_expect_flush(m, MU_INO, MU_FH), 0);
    e = mock_expect_release(m, MU_INO, MU_FH);
    mock_reply_err(e, 0);
    assert_int_equal(ufuse_close(f), 0);
    assert_true(mock_wait(m, e, MOCK_WAIT_MS));
    mu_finish(m, s);
}

/* ufuse_release, the last close after every close was a ufuse_flush:
 * RELEASE alone, no FLUSH; under write-back the dirty data still goes out
 * first and its error is the answer. */
static void t_release_without_flush(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, "cache=writeback");
    mu_expect_entry(m, 1, "f", MU_INO, S_IFREG | 0644, 0, 3600, 3600);
    mock_reply_open(mock_expect_open(m, MU_INO, O_RDWR), MU_FH, 0);
    ufuse_file_t *f;
    assert_int_equal(ufuse_open(s, "/f", O_RDWR, 0, &f), 0);
    assert_int_equal(ufuse_pwrite(f, "abc", 3, 0), 3);
    struct mock_exp *w = mock_expect_write(m, MU_INO, MU_FH, 0, "abc", 3);
    mock_reply_err(w, -EIO);
    struct mock_exp *e = mock_expect_release(m, MU_INO, MU_FH);
    mock_reply_err(e, 0);
    assert_int_equal(ufuse_release(f), -EIO);
    assert_true(mock_wait(m, e, MOCK_WAIT_MS));
    assert_int_equal(mock_log_count(m, FUSE_FLUSH), 0);
    assert_int_equal(ufuse_release(NULL), -EBADF);
    mu_finish(m, s);
}

/* -o outside_links: a link to an absolute path and ".." above the root
 * leave the file system: the call fails with EXDEV, and
 * ufuse_outside_path says where the rest of the path goes (the target
 * then what followed the link; "../" from the mount point); the link
 * itself (lstat, O_NOFOLLOW) is still the file system's.  Without the
 * option an absolute target is taken from the root. */
static void t_outside_links(void **state)
{
    ufuse_t *s;
    char where[64];
    struct stat st;
    ufuse_file_t *f;
    struct mock *m = mu_mount(&s, NULL, "outside_links");
    mu_expect_entry(m, 1, "l", 13, S_IFLNK | 0777, 6, 3600, 3600);
    mock_reply(mock_expect(m, FUSE_READLINK, 13), "/etc/x", 6);
    assert_int_equal(ufuse_outside_path(s, where, sizeof where), -ENOENT);
    assert_int_equal(ufuse_stat(s, "/l/y", &st), -EXDEV);
    assert_int_equal(ufuse_outside_path(s, where, sizeof where), 8);
    assert_string_equal(where, "/etc/x/y");
    assert_int_equal(ufuse_outside_path(s, where, 8), -ERANGE);
    assert_int_equal(ufuse_lstat(s, "/l", &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    /* O_CREAT through it: the target is created outside, not here. */
    mock_reply(mock_expect(m, FUSE_READLINK, 13), "/etc/x", 6);
    assert_int_equal(ufuse_open(s, "/l", O_CREAT | O_WRONLY, 0644, &f), -EXDEV);
    assert_int_equal(ufuse_outside_path(s, where, sizeof where), 6);
    assert_string_equal(where, "/etc/x");
    assert_int_equal(ufuse_stat(s, "/../z/w", &st), -EXDEV);
    assert_int_equal(ufuse_outside_path(s, where, sizeof where), 6);
    assert_string_equal(where, "../z/w");
    assert_int_equal(ufuse_outside_path(NULL, where, sizeof where), -EINVAL);
    mu_finish(m, s);

    m = mu_mount(&s, NULL, NULL);
    mu_expect_entry(m, 1, "l", 13, S_IFLNK | 0777, 2, 3600, 3600);
    mock_reply(mock_expect(m, FUSE_READLINK, 13), "/t", 2);
    mu_expect_entry(m, 1, "t", 14, S_IFREG | 0644, 5, 3600, 3600);
    assert_int_equal(ufuse_stat(s, "/l", &st), 0);
    assert_int_equal(st.st_size, 5);
    struct fuse_attr_out root = mock_attr_out(1, S_IFDIR | 0755, 0, 3600);
    mock_reply_attr(mock_expect_getattr(m, 1), &root);
    assert_int_equal(ufuse_stat(s, "/..", &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    mu_finish(m, s);
}

/* lchown and lutimens change the link itself: SETATTR goes to the link's
 * node, not to its target (which is never looked up); chown follows. */
static void t_setattr_nofollow(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mu_expect_entry(m, 1, "l", 13, S_IFLNK | 0777, 0, 3600, 3600);
    struct fuse_attr_out ao;
    memset(&ao, 0, sizeof ao);
    ao.attr.ino = 13;
    ao.attr.mode = S_IFLNK | 0777;
    struct mock_exp *e = mock_expect(m, FUSE_SETATTR, 13);
    mock_reply_attr(e, &ao);
    assert_int_equal(ufuse_lchown(s, "/l", 7, (gid_t)-1), 0);
    e = mock_expect(m, FUSE_SETATTR, 13);
    mock_reply_attr(e, &ao);
    struct timespec ts[2] = { { 1, 0 }, { 2, 0 } };
    assert_int_equal(ufuse_lutimens(s, "/l", ts), 0);
    assert_int_equal(mock_log_count(m, FUSE_READLINK), 0);
    /* chown follows the link: READLINK, then the (missing) target. */
    mock_reply(mock_expect(m, FUSE_READLINK, 13), "gone", 4);
    mock_reply_err(mock_expect_lookup(m, 1, "gone"), -ENOENT);
    assert_int_equal(ufuse_chown(s, "/l", 7, (gid_t)-1), -ENOENT);
    mu_finish(m, s);
}

/* MKDIR/UNLINK/RMDIR look the name up first, as the Linux VFS does: an
 * existing name is EEXIST without MKDIR; the type checks are local; chmod
 * sends the whole mode, type bits included; LINK's ENOSYS is EPERM. */
static void t_lookup_before_namespace_ops(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mu_expect_entry(m, 1, "d", 10, S_IFDIR | 0755, 0, 3600, 3600);
    assert_int_equal(ufuse_mkdir(s, "/d", 0755), -EEXIST);
    assert_int_equal(mock_log_count(m, FUSE_MKDIR), 0);
    assert_int_equal(ufuse_unlink(s, "/d"), -EISDIR);
    mu_expect_entry(m, 1, "f", 12, S_IFREG | 0644, 0, 3600, 3600);
    assert_int_equal(ufuse_rmdir(s, "/f"), -ENOTDIR);
    assert_int_equal(mock_log_count(m, FUSE_UNLINK) + mock_log_count(m, FUSE_RMDIR), 0);
    struct mock_exp *u = mock_expect(m, FUSE_UNLINK, 1);
    mock_match_name(u, 0, "f");
    mock_reply_err(u, 0);
    assert_int_equal(ufuse_unlink(s, "/f"), 0);
    struct mock_exp *c = mock_expect_setattr(m, 10, FATTR_MODE);
    MOCK_MATCH(c, struct fuse_setattr_in, mode, S_IFDIR | 0700);
    struct fuse_attr_out ao;
    memset(&ao, 0, sizeof ao);
    ao.attr.ino = 10;
    ao.attr.mode = S_IFDIR | 0700;
    mock_reply_attr(c, &ao);
    assert_int_equal(ufuse_chmod(s, "/d", 0700), 0);
    mu_expect_entry(m, 1, "g", 13, S_IFREG | 0644, 0, 3600, 3600);
    mock_reply_err(mock_expect_lookup(m, 1, "h"), -ENOENT);
    mock_reply_err(mock_expect(m, FUSE_LINK, 1), -ENOSYS);
    assert_int_equal(ufuse_link(s, "/g", "/h"), -EPERM);
    mu_finish(m, s);
}

/* READDIRPLUS_AUTO (as Linux for a listing nobody stats): attributes with
 * the first batch only; the rest of the stream is plain READDIR, and a
 * rewind starts with READDIRPLUS again. */
static void t_readdirplus_auto(void **state)
{
    struct mock_init_cfg cfg;
    mock_init_defaults(&cfg);
    cfg.flags |= FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, &cfg, NULL);
    mock_reply_open(mock_expect(m, FUSE_OPENDIR, 1), 4, 0);
    struct mock_dirbuf b = {0};
    struct fuse_entry_out e1 = mock_entry(21, S_IFREG | 0644, 100, 3600, 3600);
    mock_dirbuf_addplus(&b, &e1, 1, DT_REG, "x");
    mock_reply(expect_readdir(m, FUSE_READDIRPLUS, 1, 4, 0), b.buf, b.len);
    mock_dirbuf_free(&b);
    struct mock_dirbuf p = {0};
    mock_dirbuf_add(&p, 22, 2, DT_REG, "y");
    mock_reply(expect_readdir(m, FUSE_READDIR, 1, 4, 1), p.buf, p.len);
    mock_dirbuf_free(&p);
    mock_reply(expect_readdir(m, FUSE_READDIR, 1, 4, 2), NULL, 0);
    ufuse_dir_t *d;
    assert_int_equal(ufuse_opendir(s, "/", &d), 0);
    expect_dirent(d, 21, 1, DT_REG, "x", 1, 100);
    expect_dirent(d, 22, 2, DT_REG, "y", 0, 0);
    struct ufuse_dirent ent;
    assert_int_equal(ufuse_readdir(d, &ent), 0);
    assert_int_equal(ufuse_rewinddir(d), 0);
    mock_reply(expect_readdir(m, FUSE_READDIRPLUS, 1, 4, 0), NULL, 0);
    assert_int_equal(ufuse_readdir(d, &ent), 0);
    mock_reply_err(mock_expect(m, FUSE_RELEASEDIR, 1), 0);
    assert_int_equal(ufuse_closedir(d), 0);
    mu_finish(m, s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_open_flags),
        cmocka_unit_test(t_trunc_atomic),
        cmocka_unit_test(t_trunc_nonatomic),
        cmocka_unit_test(t_create),
        cmocka_unit_test(t_readdir),
        cmocka_unit_test(t_readdirplus),
        cmocka_unit_test(t_readdirplus_auto),
        cmocka_unit_test(t_forget_at_unmount),
        cmocka_unit_test(t_rename_local_rules),
        cmocka_unit_test(t_utime_now),
        cmocka_unit_test(t_setattr_nofollow),
        cmocka_unit_test(t_attr_after_release),
        cmocka_unit_test(t_flush_keeps_open),
        cmocka_unit_test(t_release_without_flush),
        cmocka_unit_test(t_outside_links),
        cmocka_unit_test(t_lookup_before_namespace_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
