/*
 * test-mock-init.c - FUSE_INIT against the mock: what the client offers,
 * how it adapts to what the server grants (old minors and their structure
 * sizes, max_pages, max_write) and which answers fail the mount.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mock/mockutil.h"

/* The flags the spec says the client offers. */
static const uint64_t offered_flags[] = {
    FUSE_ASYNC_READ, FUSE_BIG_WRITES, FUSE_ATOMIC_O_TRUNC,
    FUSE_AUTO_INVAL_DATA, FUSE_DO_READDIRPLUS, FUSE_READDIRPLUS_AUTO,
    FUSE_PARALLEL_DIROPS, FUSE_HANDLE_KILLPRIV, FUSE_MAX_PAGES,
    FUSE_EXPLICIT_INVAL_DATA, FUSE_CACHE_SYMLINKS, FUSE_INIT_EXT,
    FUSE_EXPORT_SUPPORT, FUSE_WRITEBACK_CACHE,
};

static void t_offer(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);

    struct fuse_init_in in;
    size_t len;
    assert_true(mock_init_request(m, &in, &len));
    assert_int_equal(in.major, 7);
    assert_int_equal(in.minor, FUSE_KERNEL_MINOR_VERSION);
    assert_int_equal(in.max_readahead, 4 << 20);
    /* FUSE_INIT_EXT offered: the 7.36+ INIT body, 64 bytes. */
    assert_int_equal(len, sizeof(struct fuse_init_in));
    for (size_t i = 0; i < sizeof(offered_flags) / sizeof(offered_flags[0]); i++) {
        if (!(in.flags & offered_flags[i]))
            fail_msg("INIT does not offer flag %#llx (offered %#x)",
                     (unsigned long long)offered_flags[i], in.flags);
    }
    assert_false(in.flags & FUSE_POSIX_ACL);

    /* Nothing is sent after INIT until the first call. */
    assert_int_equal(mock_log_count(m, 0), 1);

    struct ufuse_conninfo ci;
    assert_int_equal(ufuse_conninfo(s, &ci), 0);
    assert_int_equal(ci.proto_major, 7);
    assert_int_equal(ci.proto_minor, 38);
    assert_int_equal(ci.flags, mock_granted(m));
    assert_int_equal(ci.max_write, 131072);
    assert_int_equal(ci.max_read, 131072);
    assert_int_equal(ci.max_pages, 32);

    /* The first call: stat of the root is a GETATTR of nodeid 1. */
    struct fuse_attr_out ao = mock_attr_out(1, S_IFDIR | 0755, 4096, 0);
    struct mock_exp *g = mock_expect_getattr(m, FUSE_ROOT_ID);
    mu_match_plain_getattr(g);
    mock_reply_attr(g, &ao);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/", &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_ino, 1);
    mu_finish(m, s);
}

/* 7.19: the 24-byte INIT reply; the 7.19 structures are today's sizes. */
static void t_minor_19(void **state)
{
    struct mock_init_cfg cfg;
    mock_init_defaults(&cfg);
    cfg.minor = 19;
    cfg.flags = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_ATOMIC_O_TRUNC;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, &cfg, NULL);

    struct ufuse_conninfo ci;
    assert_int_equal(ufuse_conninfo(s, &ci), 0);
    assert_int_equal(ci.proto_minor, 19);
    assert_int_equal(ci.max_write, 131072);
    assert_int_equal(ci.max_read, 131072);

    mu_expect_entry(m, 1, "a", 2, S_IFREG | 0640, 1234, 3600, 3600);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(st.st_size, 1234);
    assert_int_equal(st.st_mode, S_IFREG | 0640);

    /* CREATE exists since 7.12 with the 16-byte create_in. */
    mock_reply_err(mock_expect_lookup(m, 1, "n"), -ENOENT);
    struct mock_exp *c = mock_expect(m, FUSE_CREATE, 1);
    mock_match_name(c, 0, "n");
    mock_match_bodylen(c, sizeof(struct fuse_create_in) + 2);
    struct fuse_entry_out eo = mock_entry(3, S_IFREG | 0600, 0, 1, 1);
    mock_reply_create(c, &eo, 9, 0);
    ufuse_file_t *f;
    assert_int_equal(ufuse_open(s, "/n", O_CREAT | O_WRONLY, 0600, &f), 0);
    mock_reply_err(mock_expect_flush(m, 3, 9), 0);
    mock_reply_err(mock_expect_release(m, 3, 9), 0);
    assert_int_equal(ufuse_close(f), 0);
    mu_finish(m, s);
}

/* 7.8: compat entry/attr replies, 24-byte write_in, 8-byte mknod_in, no
 * GETATTR_FH (all checked by the mock's request checks), 24-byte INIT. */
static void t_minor_8(void **state)
{
    struct mock_init_cfg cfg;
    mock_init_defaults(&cfg);
    cfg.minor = 8;
    cfg.flags = FUSE_ASYNC_READ;
    cfg.max_write = 4096;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, &cfg, NULL);
    struct ufuse_conninfo ci;
    assert_int_equal(ufuse_conninfo(s, &ci), 0);
    assert_int_equal(ci.proto_minor, 8);
    assert_int_equal(ci.max_write, 4096);

    /* A 120-byte entry reply is accepted and decoded. */
    mu_expect_entry(m, 1, "f", MU_INO, S_IFREG | 0644, 777, 3600, 0);
    struct mock_exp *o = mock_expect_open(m, MU_INO, O_RDWR);
    mock_reply_open(o, MU_FH, 0);
    ufuse_file_t *f;
    assert_int_equal(ufuse_open(s, "/f", O_RDWR, 0, &f), 0);

    /* WRITE with the 24-byte write_in. */
    const char data[] = "old protocol";
    struct mock_exp *w = mock_expect_write(m, MU_INO, MU_FH, 0, data, 12);
    mock_reply_write(w, 12);
    assert_int_equal(ufuse_pwrite(f, data, 12, 0), 12);

    /* fstat: GETATTR without FUSE_GETATTR_FH, 96-byte attr reply. */
    struct fuse_attr_out ao = mock_attr_out(MU_INO, S_IFREG | 0644, 777, 0);
    mock_reply_attr(mock_expect_getattr(m, MU_INO), &ao);
    struct stat st;
    assert_int_equal(ufuse_fstat(f, &st), 0);
    assert_int_equal(st.st_size, 777);

    mock_reply_err(mock_expect_flush(m, MU_INO, MU_FH), 0);
    mock_reply_err(mock_expect_release(m, MU_INO, MU_FH), 0);
    assert_int_equal(ufuse_close(f), 0);

    /* MKNOD with the 8-byte mknod_in (after the LOOKUP the VFS makes). */
    mock_reply_err(mock_expect_lookup(m, 1, "fifo"), -ENOENT);
    struct mock_exp *mk = mock_expect(m, FUSE_MKNOD, 1);
    mock_match_name(mk, 0, "fifo");
    mock_match_bodylen(mk, FUSE_COMPAT_MKNOD_IN_SIZE + 5);
    MOCK_MATCH(mk, struct fuse_mknod_in, mode, S_IFIFO | 0600);
    struct fuse_entry_out eo = mock_entry(4, S_IFIFO | 0600, 0, 1, 1);
    mock_reply_entry(mk, &eo);
    assert_int_equal(ufuse_mknod(s, "/fifo", S_IFIFO | 0600, 0), 0);
    mu_finish(m, s);
}

/* Without FUSE_MAX_PAGES, READs stay at 32 pages whatever max_read says. */
static void t_no_max_pages(void **state)
{
    struct mock_init_cfg cfg;
    mock_init_defaults(&cfg);
    cfg.flags &= ~(uint64_t)FUSE_MAX_PAGES;
    cfg.max_pages = 256;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, &cfg, "cache=direct,max_read=1m");
    struct ufuse_conninfo ci;
    assert_int_equal(ufuse_conninfo(s, &ci), 0);
    assert_int_equal(ci.max_read, 131072);

    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    struct mock_exp *r1 = mock_expect_read(m, MU_INO, MU_FH, 0, 131072);
    mock_reply_pattern(r1, 0, 131072);
    struct mock_exp *r2 = mock_expect_read(m, MU_INO, MU_FH, 131072, 68928);
    mock_reply_pattern(r2, 131072, 68928);
    unsigned char *buf = malloc(200000), *want = malloc(200000);
    assert_int_equal(ufuse_pread(f, buf, 200000, 0), 200000);
    mock_pattern(want, 200000, 0);
    assert_memory_equal(buf, want, 200000);
    free(buf);
    free(want);
    mu_close(m, f);
    mu_finish(m, s);
}

/* FUSE_MAX_PAGES granted with 4 pages: READs of 16 KiB. */
static void t_max_pages_small(void **state)
{
    struct mock_init_cfg cfg;
    mock_init_defaults(&cfg);
    cfg.max_pages = 4;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, &cfg, NULL);
    struct ufuse_conninfo ci;
    assert_int_equal(ufuse_conninfo(s, &ci), 0);
    assert_int_equal(ci.max_read, 16384);

    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    mock_reply_pattern(mock_expect_read(m, MU_INO, MU_FH, 0, 16384), 0, 16384);
    mock_reply_pattern(mock_expect_read(m, MU_INO, MU_FH, 16384, 3616), 16384,
                       3616);
    unsigned char buf[20000], want[20000];
    assert_int_equal(ufuse_pread(f, buf, 20000, 0), 20000);
    mock_pattern(want, 20000, 0);
    assert_memory_equal(buf, want, 20000);
    mu_close(m, f);
    mu_finish(m, s);
}

/* max_write = min(server's, option), at least 4096. */
static void t_max_write(void **state)
{
    struct mock_init_cfg cfg;
    struct ufuse_conninfo ci;
    ufuse_t *s;
    struct mock *m;

    mock_init_defaults(&cfg);
    cfg.max_write = 8192;
    m = mu_mount(&s, &cfg, NULL);
    assert_int_equal(ufuse_conninfo(s, &ci), 0);
    assert_int_equal(ci.max_write, 8192);
    mu_finish(m, s);

    mock_init_defaults(&cfg);
    m = mu_mount(&s, &cfg, "cache=direct,max_write=16k");
    assert_int_equal(ufuse_conninfo(s, &ci), 0);
    assert_int_equal(ci.max_write, 16384);
    mu_finish(m, s);

    mock_init_defaults(&cfg);
    cfg.max_write = 1000;
    m = mu_mount(&s, &cfg, NULL);
    assert_int_equal(ufuse_conninfo(s, &ci), 0);
    assert_int_equal(ci.max_write, 4096);
    mu_finish(m, s);
}

/* The mount fails with @want, and ufuse_mount_fd_err() says @msg. */
static void expect_mount_fails_msg(const struct mock_init_cfg *cfg, const char *opts, int want,
                                   const char *msg)
{
    struct mock *m = mock_new(cfg);
    ufuse_t *s = (ufuse_t *)&s; /* must be reset to NULL */
    char err[UFUSE_MOUNT_ERR_MAX];
    int rc = ufuse_mount_fd_err(&s, mock_client_fd(m), opts, err, sizeof err);
    assert_int_equal(rc, want);
    assert_null(s);
    assert_string_equal(err, msg);
    /* Only INIT was sent. */
    assert_int_equal(mock_log_count(m, 0), 1);
    assert_int_equal(mock_log_count(m, FUSE_INIT), 1);
    mock_verify(m);
    mock_free(m);
}

static void expect_mount_fails(const struct mock_init_cfg *cfg, int want)
{
    expect_mount_fails_msg(cfg, NULL, want, want == -ENOTCONN
        ? "the server closed the socket before answering INIT"
        : "the server failed INIT: Protocol error");
}

static void t_bad_major(void **state)
{
    struct mock_init_cfg cfg;
    mock_init_defaults(&cfg);
    cfg.major = 8;
    expect_mount_fails(&cfg, -EPROTO);
    cfg.major = 6;
    expect_mount_fails(&cfg, -EPROTO);
}

static void t_init_error(void **state)
{
    struct mock_init_cfg cfg;
    mock_init_defaults(&cfg);
    cfg.error = -EIO;
    expect_mount_fails(&cfg, -EPROTO);
    cfg.error = -ENOSYS;
    expect_mount_fails(&cfg, -EPROTO);
    /* The server's own ENOTCONN and ETIMEDOUT are answers too, not its
     * death or our timeout (fuzz-session: mount returned ETIMEDOUT). */
    cfg.error = -ETIMEDOUT;
    expect_mount_fails(&cfg, -EPROTO);
    cfg.error = -ENOTCONN;
    expect_mount_fails(&cfg, -EPROTO);
}

/* An INIT reply too short for the minor it claims does not complete INIT. */
static void t_init_short_reply(void **state)
{
    struct mock_init_cfg cfg;
    mock_init_defaults(&cfg);
    cfg.reply_len = 20;
    expect_mount_fails(&cfg, -EPROTO);
}

/* The server closes the socket instead of answering INIT; server_name=
 * names it in the message. */
static void t_init_death(void **state)
{
    struct mock_init_cfg cfg;
    mock_init_defaults(&cfg);
    cfg.action = MOCK_INIT_DIE;
    expect_mount_fails(&cfg, -ENOTCONN);
    expect_mount_fails_msg(&cfg, "server_name=mockfs", -ENOTCONN,
                           "server 'mockfs' closed the socket before answering INIT");
}

/* Every kind of bad option: -EINVAL before anything is sent, the fd is
 * closed, and the message names the option and what it takes. */
static void t_bad_options(void **state)
{
    static const struct { const char *opts, *msg; } cases[] = {
        {"foo", "unknown option 'foo'"},
        {"cache=direct,foo=1", "unknown option 'foo'"},
        {"cache=bogus", "option cache=bogus: expected auto, writethrough, writeback or direct"},
        {"cache", "option cache: expected auto, writethrough, writeback or direct"},
        {"attach=x", "option attach=x: expected auto, devfd or hook"},
        {"cache_size=1k", "option cache_size=1k: out of range (1m to 1t)"},
        {"cache_size=12q", "option cache_size=12q: not a size (a number with an optional "
                           "k, m, g or t suffix)"},
        {"cache_size", "option cache_size: needs a size from 1m to 1t"},
        {"max_read=2m", "option max_read=2m: out of range (4k to 1m)"},
        {"max_write=1000", "option max_write=1000: out of range (4k to 16m)"},
        {"readahead=65m", "option readahead=65m: out of range (0 to 64m)"},
        {"block_size=12k", "option block_size=12k: not a power of two (4k to 1m)"},
        {"timeout=x", "option timeout=x: expected seconds from 0 to 86400"},
        {"dirty_expire=-1", "option dirty_expire=-1: expected seconds from 0 to 86400"},
        {"timeout", "option timeout: expected seconds from 0 to 86400"},
        {"splice=1", "option splice=1: takes no value"},
        {"log=", "option log=: needs a value (a file name)"},
        {"server_name", "option server_name: needs a value (a name)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
        ufuse_t *s = (ufuse_t *)&s;
        char err[UFUSE_MOUNT_ERR_MAX] = "unset";
        int rc = ufuse_mount_fd_err(&s, sv[0], cases[i].opts, err, sizeof err);
        if (rc != -EINVAL || strcmp(err, cases[i].msg) != 0)
            fail_msg("-o %s: %d '%s', want -EINVAL '%s'", cases[i].opts, rc, err, cases[i].msg);
        assert_null(s);
        assert_int_equal(fcntl(sv[0], F_GETFD), -1); /* the session took the fd */
        char b;
        assert_int_equal(recv(sv[1], &b, 1, MSG_DONTWAIT), 0); /* EOF: nothing sent */
        close(sv[1]);
    }
    /* A message longer than the buffer is cut; NULL means no message. */
    char small[8];
    for (int i = 0; i < 2; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
        ufuse_t *s;
        assert_int_equal(ufuse_mount_fd_err(&s, sv[0], "foo", i ? NULL : small,
                                            i ? 0 : sizeof small), -EINVAL);
        close(sv[1]);
    }
    assert_string_equal(small, "unknown");
}

/* A mount that works leaves "" in the message. */
static void t_mount_err_ok(void **state)
{
    struct mock *m = mock_new(NULL);
    ufuse_t *s;
    char err[64] = "unset";
    assert_int_equal(ufuse_mount_fd_err(&s, mock_client_fd(m), "cache=direct", err, sizeof err),
                     0);
    assert_string_equal(err, "");
    mu_finish(m, s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_offer),
        cmocka_unit_test(t_minor_19),
        cmocka_unit_test(t_minor_8),
        cmocka_unit_test(t_no_max_pages),
        cmocka_unit_test(t_max_pages_small),
        cmocka_unit_test(t_max_write),
        cmocka_unit_test(t_bad_major),
        cmocka_unit_test(t_init_error),
        cmocka_unit_test(t_init_short_reply),
        cmocka_unit_test(t_init_death),
        cmocka_unit_test(t_bad_options),
        cmocka_unit_test(t_mount_err_ok),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
