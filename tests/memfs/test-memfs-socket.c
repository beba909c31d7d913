/*
 * test-memfs-socket.c - ufuse-memfs on a socketpair: the way ufuse runs it.
 *
 * Spawns "ufuse-memfs /dev/fd/N" with N one end of an AF_UNIX SOCK_SEQPACKET
 * socketpair and speaks the raw FUSE protocol on the other end (structures
 * from <linux/fuse.h>): INIT, then requests checked field by field,
 * including the nlookup lifetime rules, answers to bogus node ids and file
 * handles, splice_read replies split over several datagrams, die_after,
 * and a clean exit when the client closes the socket.  No kernel mount.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

struct srv {
    int fd;             /* our end */
    pid_t pid;
    uint64_t unique;
    struct fuse_init_out init;
};

/* Spawn the server on a socketpair with @opts (or NULL) and @single (-s). */
static void srv_start(struct srv *s, const char *opts, bool single)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    memset(s, 0, sizeof(*s));
    s->unique = 1;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = dup(sv[1]);    /* without CLOEXEC */
        char dev[32];
        snprintf(dev, sizeof(dev), "/dev/fd/%d", fd);
        const char *argv[8];
        int n = 0;
        argv[n++] = memfs_bin();
        if (single)
            argv[n++] = "-s";
        if (opts) {
            argv[n++] = "-o";
            argv[n++] = opts;
        }
        argv[n++] = dev;
        argv[n] = NULL;
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(sv[1]);
    s->fd = sv[0];
    s->pid = pid;
}

static void send_req(struct srv *s, uint32_t opcode, uint64_t nodeid,
                     const void *a, size_t alen, const void *b, size_t blen)
{
    char buf[8192];
    struct fuse_in_header h = {
        .len = (uint32_t)(sizeof(h) + alen + blen),
        .opcode = opcode,
        .unique = s->unique++,
        .nodeid = nodeid,
        .uid = getuid(),
        .gid = getgid(),
        .pid = (uint32_t)getpid(),
    };
    assert_true(h.len <= sizeof(buf));
    memcpy(buf, &h, sizeof(h));
    if (alen)
        memcpy(buf + sizeof(h), a, alen);
    if (blen)
        memcpy(buf + sizeof(h) + alen, b, blen);
    assert_int_equal(send(s->fd, buf, h.len, MSG_NOSIGNAL), (ssize_t)h.len);
}

/* Receive one reply (reassembling datagrams up to its header's len) into
 * @buf.  @return its total length, 0 on EOF; *ndgrams the datagram count. */
static size_t recv_reply(struct srv *s, void *buf, size_t cap, int *ndgrams)
{
    char *p = buf;
    size_t total = 0, want = 0;
    int n = 0;
    do {
        struct pollfd pfd = { s->fd, POLLIN, 0 };
        int pr = poll(&pfd, 1, 20000);
        if (pr != 1)
            fail_msg("no reply from ufuse-memfs within 20 s");
        ssize_t r = recv(s->fd, p + total, cap - total, 0);
        if (r < 0 && errno == ECONNRESET && total == 0)
            r = 0;      /* the server died with a request unread */
        assert_true(r >= 0);
        if (r == 0)
            break;
        n++;
        total += (size_t)r;
        if (!want) {
            assert_true(total >= sizeof(struct fuse_out_header));
            want = ((struct fuse_out_header *)buf)->len;
            assert_true(want <= cap);
        }
    } while (total < want);
    if (ndgrams)
        *ndgrams = n;
    if (total)
        assert_int_equal(total, want);
    return total;
}

/* Send a request and return the reply's error; its payload goes to @out. */
static int call(struct srv *s, uint32_t opcode, uint64_t nodeid, const void *a,
                size_t alen, const void *b, size_t blen, void *out, size_t outcap,
                size_t *outlen)
{
    static char buf[2 << 20];
    uint64_t unique = s->unique;
    send_req(s, opcode, nodeid, a, alen, b, blen);
    size_t n = recv_reply(s, buf, sizeof(buf), NULL);
    assert_true(n >= sizeof(struct fuse_out_header));
    struct fuse_out_header *oh = (void *)buf;
    assert_int_equal(oh->unique, unique);
    size_t plen = n - sizeof(*oh);
    if (out) {
        assert_true(plen <= outcap);
        memcpy(out, buf + sizeof(*oh), plen);
    }
    if (outlen)
        *outlen = plen;
    return oh->error;
}

static void do_init(struct srv *s)
{
    struct fuse_init_in in = {
        .major = FUSE_KERNEL_VERSION,
        .minor = FUSE_KERNEL_MINOR_VERSION,
        .max_readahead = 128 * 1024,
        .flags = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES | FUSE_DO_READDIRPLUS |
                 FUSE_READDIRPLUS_AUTO | FUSE_ATOMIC_O_TRUNC | FUSE_WRITEBACK_CACHE |
                 FUSE_HANDLE_KILLPRIV | FUSE_PARALLEL_DIROPS,
    };
    size_t n;
    assert_int_equal(call(s, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, &s->init,
                          sizeof(s->init), &n), 0);
    assert_int_equal(n, sizeof(s->init));
    assert_int_equal(s->init.major, 7);
    assert_true(s->init.minor >= 31);
}

static int srv_wait(struct srv *s)
{
    long long deadline = now_ms() + 20000;
    int st;
    for (;;) {
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid)
            break;
        if (now_ms() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            return -1;
        }
        usleep(2000);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Close our end: the server must take it as the end and exit 0. */
static void srv_close(struct srv *s)
{
    close(s->fd);
    assert_int_equal(srv_wait(s), 0);
}

static uint64_t lookup(struct srv *s, uint64_t dir, const char *name, struct fuse_entry_out *e)
{
    struct fuse_entry_out tmp;
    if (!e)
        e = &tmp;
    assert_int_equal(call(s, FUSE_LOOKUP, dir, name, strlen(name) + 1, NULL, 0, e,
                          sizeof(*e), NULL), 0);
    return e->nodeid;
}

static uint64_t open_file(struct srv *s, uint64_t ino, uint32_t flags)
{
    struct fuse_open_in in = { .flags = flags };
    struct fuse_open_out out;
    assert_int_equal(call(s, FUSE_OPEN, ino, &in, sizeof(in), NULL, 0, &out, sizeof(out),
                          NULL), 0);
    return out.fh;
}

static int getattr(struct srv *s, uint64_t ino, struct fuse_attr_out *out)
{
    struct fuse_getattr_in in = { 0 };
    struct fuse_attr_out tmp;
    return call(s, FUSE_GETATTR, ino, &in, sizeof(in), NULL, 0, out ? out : &tmp,
                sizeof(tmp), NULL);
}

static void forget(struct srv *s, uint64_t ino, uint64_t n)
{
    struct fuse_forget_in in = { .nlookup = n };
    send_req(s, FUSE_FORGET, ino, &in, sizeof(in), NULL, 0);
}

/* ------------------------------------------------------------------ */

static void test_init_and_ops(void **state)
{
    (void)state;
    struct srv s;
    srv_start(&s, "seed_file=f:300k,max_write=65536", false);
    do_init(&s);
    assert_int_equal(s.init.max_write, 65536);
    assert_int_equal(s.init.max_background, 64);
    assert_false(s.init.flags & FUSE_ATOMIC_O_TRUNC);
    assert_false(s.init.flags & FUSE_WRITEBACK_CACHE);
    assert_true(s.init.flags & FUSE_DO_READDIRPLUS);

    struct fuse_attr_out ao;
    assert_int_equal(getattr(&s, FUSE_ROOT_ID, &ao), 0);
    assert_true(S_ISDIR(ao.attr.mode));
    assert_int_equal(ao.attr.ino, FUSE_ROOT_ID);

    struct fuse_entry_out e;
    uint64_t ino = lookup(&s, FUSE_ROOT_ID, "f", &e);
    assert_true(ino > FUSE_ROOT_ID);
    assert_int_equal(e.attr.size, 300 * 1024);
    assert_true(S_ISREG(e.attr.mode));
    assert_int_equal(call(&s, FUSE_LOOKUP, FUSE_ROOT_ID, "nope", 5, NULL, 0, NULL, 0, NULL),
                     -ENOENT);

    uint64_t fh = open_file(&s, ino, O_RDONLY);
    static unsigned char data[256 * 1024], want[256 * 1024];
    struct fuse_read_in rd = { .fh = fh, .offset = 4096, .size = 128 * 1024 };
    size_t n;
    assert_int_equal(call(&s, FUSE_READ, ino, &rd, sizeof(rd), NULL, 0, data, sizeof(data), &n), 0);
    assert_int_equal(n, 128 * 1024);
    pattern_fill(want, n, 4096);
    assert_memory_equal(data, want, n);
    rd.offset = 300 * 1024 - 10;
    assert_int_equal(call(&s, FUSE_READ, ino, &rd, sizeof(rd), NULL, 0, data, sizeof(data), &n), 0);
    assert_int_equal(n, 10);
    rd.offset = 400 * 1024;
    assert_int_equal(call(&s, FUSE_READ, ino, &rd, sizeof(rd), NULL, 0, data, sizeof(data), &n), 0);
    assert_int_equal(n, 0);

    /* A server that cannot be crashed by a confused client. */
    assert_int_equal(getattr(&s, 999999, NULL), -ESTALE);
    rd.fh = 424242;
    assert_int_equal(call(&s, FUSE_READ, ino, &rd, sizeof(rd), NULL, 0, data, sizeof(data), &n),
                     -EBADF);
    struct fuse_write_in wr = { .fh = fh, .offset = 0, .size = 3 };
    assert_int_equal(call(&s, FUSE_WRITE, ino, &wr, sizeof(wr), "abc", 3, NULL, 0, NULL), -EBADF);

    /* A write through a writable handle. */
    uint64_t wfh = open_file(&s, ino, O_RDWR);
    wr.fh = wfh;
    struct fuse_write_out wo;
    assert_int_equal(call(&s, FUSE_WRITE, ino, &wr, sizeof(wr), "abc", 3, &wo, sizeof(wo), NULL), 0);
    assert_int_equal(wo.size, 3);
    rd.fh = wfh;
    rd.offset = 0;
    rd.size = 5;
    assert_int_equal(call(&s, FUSE_READ, ino, &rd, sizeof(rd), NULL, 0, data, sizeof(data), &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(data, "abc", 3);
    pattern_fill(want, 5, 0);
    assert_memory_equal(data + 3, want + 3, 2);

    struct fuse_statfs_out so;
    assert_int_equal(call(&s, FUSE_STATFS, FUSE_ROOT_ID, NULL, 0, NULL, 0, &so, sizeof(so), NULL), 0);
    assert_int_equal(so.st.namelen, 255);
    assert_true(so.st.blocks > 0);

    struct fuse_release_in rel = { .fh = fh };
    assert_int_equal(call(&s, FUSE_RELEASE, ino, &rel, sizeof(rel), NULL, 0, NULL, 0, NULL), 0);
    assert_int_equal(call(&s, FUSE_RELEASE, ino, &rel, sizeof(rel), NULL, 0, NULL, 0, NULL), -EBADF);
    srv_close(&s);
}

static void test_lifetime(void **state)
{
    (void)state;
    struct srv s;
    /* single-threaded: FORGET (no reply) is done before the next request */
    srv_start(&s, "seed_file=f:1k,seed_file=g:1k", true);
    do_init(&s);

    /* Two lookups need two forgets; unlinking does not end the inode. */
    uint64_t ino = lookup(&s, FUSE_ROOT_ID, "f", NULL);
    assert_int_equal(lookup(&s, FUSE_ROOT_ID, "f", NULL), ino);
    assert_int_equal(call(&s, FUSE_UNLINK, FUSE_ROOT_ID, "f", 2, NULL, 0, NULL, 0, NULL), 0);
    assert_int_equal(getattr(&s, ino, NULL), 0);
    forget(&s, ino, 1);
    struct fuse_attr_out ao;
    assert_int_equal(getattr(&s, ino, &ao), 0);
    assert_int_equal(ao.attr.nlink, 0);
    forget(&s, ino, 1);
    assert_int_equal(getattr(&s, ino, NULL), -ESTALE);

    /* An open handle keeps it too; readdirplus entries count as lookups. */
    struct fuse_open_in oi = { .flags = O_RDONLY };
    struct fuse_open_out oo;
    assert_int_equal(call(&s, FUSE_OPENDIR, FUSE_ROOT_ID, &oi, sizeof(oi), NULL, 0, &oo,
                          sizeof(oo), NULL), 0);
    static char dbuf[8192];
    struct fuse_read_in rd = { .fh = oo.fh, .offset = 0, .size = sizeof(dbuf) };
    size_t n;
    assert_int_equal(call(&s, FUSE_READDIRPLUS, FUSE_ROOT_ID, &rd, sizeof(rd), NULL, 0, dbuf,
                          sizeof(dbuf), &n), 0);
    uint64_t g = 0;
    int names = 0;
    for (size_t pos = 0; pos < n;) {
        struct fuse_direntplus *dp = (void *)(dbuf + pos);
        names++;
        if (dp->dirent.namelen == 1 && dp->dirent.name[0] == 'g') {
            g = dp->entry_out.nodeid;
            assert_int_equal(dp->entry_out.attr.size, 1024);
        }
        if (dp->dirent.name[0] == '.')
            assert_int_equal(dp->entry_out.nodeid, 0);
        pos += FUSE_DIRENTPLUS_SIZE(dp);
    }
    assert_int_equal(names, 3);     /* ".", "..", "g" */
    assert_true(g != 0);
    struct fuse_release_in rel = { .fh = oo.fh };
    assert_int_equal(call(&s, FUSE_RELEASEDIR, FUSE_ROOT_ID, &rel, sizeof(rel), NULL, 0, NULL,
                          0, NULL), 0);
    uint64_t fh = open_file(&s, g, O_RDONLY);
    assert_int_equal(call(&s, FUSE_UNLINK, FUSE_ROOT_ID, "g", 2, NULL, 0, NULL, 0, NULL), 0);
    forget(&s, g, 1);               /* the readdirplus reference */
    assert_int_equal(getattr(&s, g, NULL), 0);
    rel.fh = fh;
    assert_int_equal(call(&s, FUSE_RELEASE, g, &rel, sizeof(rel), NULL, 0, NULL, 0, NULL), 0);
    assert_int_equal(getattr(&s, g, NULL), -ESTALE);

    /* Inode numbers are never reused. */
    struct fuse_create_in ci = { .flags = O_RDWR, .mode = S_IFREG | 0644 };
    struct {
        struct fuse_entry_out e;
        struct fuse_open_out o;
    } co;
    assert_int_equal(call(&s, FUSE_CREATE, FUSE_ROOT_ID, &ci, sizeof(ci), "h", 2, &co,
                          sizeof(co), NULL), 0);
    assert_true(co.e.nodeid > g && co.e.nodeid > ino);
    srv_close(&s);
}

static void test_splice_split(void **state)
{
    (void)state;
    struct srv s;
    srv_start(&s, "splice_read,seed_file=f:1m", false);
    do_init(&s);
    uint64_t ino = lookup(&s, FUSE_ROOT_ID, "f", NULL);
    uint64_t fh = open_file(&s, ino, O_RDONLY);
    static unsigned char buf[1 << 20], want[1 << 20];
    struct fuse_read_in rd = { .fh = fh, .offset = 12345, .size = 128 * 1024 };
    uint64_t unique = s.unique;
    send_req(&s, FUSE_READ, ino, &rd, sizeof(rd), NULL, 0);
    int nd = 0;
    size_t n = recv_reply(&s, buf, sizeof(buf), &nd);
    struct fuse_out_header *oh = (void *)buf;
    assert_int_equal(oh->unique, unique);
    assert_int_equal(oh->error, 0);
    assert_int_equal(n, sizeof(*oh) + 128 * 1024);
    pattern_fill(want, 128 * 1024, 12345);
    assert_memory_equal(buf + sizeof(*oh), want, 128 * 1024);
    /* libfuse spliced the reply: a SEQPACKET socket cuts it up. */
    assert_true(nd >= 2);
    fprintf(stderr, "splice_read: a %zu-byte reply came in %d datagrams\n", n, nd);
    srv_close(&s);
}

static void test_faults(void **state)
{
    (void)state;
    struct srv s;
    srv_start(&s, "enosys=getxattr:lseek,seed_file=f:1k,short_read=100,short_write=7", false);
    do_init(&s);
    struct fuse_getxattr_in gi = { .size = 0 };
    assert_int_equal(call(&s, FUSE_GETXATTR, FUSE_ROOT_ID, &gi, sizeof(gi), "user.x", 7, NULL, 0,
                          NULL), -ENOSYS);
    uint64_t ino = lookup(&s, FUSE_ROOT_ID, "f", NULL);
    uint64_t fh = open_file(&s, ino, O_RDWR);
    struct fuse_lseek_in li = { .fh = fh, .offset = 0, .whence = SEEK_DATA };
    assert_int_equal(call(&s, FUSE_LSEEK, ino, &li, sizeof(li), NULL, 0, NULL, 0, NULL), -ENOSYS);
    static unsigned char buf[4096];
    struct fuse_read_in rd = { .fh = fh, .offset = 0, .size = 1000 };
    size_t n;
    assert_int_equal(call(&s, FUSE_READ, ino, &rd, sizeof(rd), NULL, 0, buf, sizeof(buf), &n), 0);
    assert_int_equal(n, 100);
    struct fuse_write_in wr = { .fh = fh, .offset = 0, .size = 20 };
    struct fuse_write_out wo;
    assert_int_equal(call(&s, FUSE_WRITE, ino, &wr, sizeof(wr), "abcdefghijklmnopqrst", 20,
                          &wo, sizeof(wo), NULL), 0);
    assert_int_equal(wo.size, 7);
    srv_close(&s);

    /* die_after=3: INIT, GETATTR, GETATTR are answered, then exit 3. */
    srv_start(&s, "die_after=3", false);
    do_init(&s);
    assert_int_equal(getattr(&s, FUSE_ROOT_ID, NULL), 0);
    assert_int_equal(getattr(&s, FUSE_ROOT_ID, NULL), 0);
    static char rbuf[4096];
    assert_int_equal(recv_reply(&s, rbuf, sizeof(rbuf), NULL), 0);     /* EOF */
    assert_int_equal(srv_wait(&s), 3);
    close(s.fd);

    /* eio_at over the socket */
    srv_start(&s, "eio_at=500,seed_file=f:1k", false);
    do_init(&s);
    ino = lookup(&s, FUSE_ROOT_ID, "f", NULL);
    fh = open_file(&s, ino, O_RDONLY);
    rd = (struct fuse_read_in){ .fh = fh, .offset = 0, .size = 500 };
    assert_int_equal(call(&s, FUSE_READ, ino, &rd, sizeof(rd), NULL, 0, buf, sizeof(buf), &n), 0);
    rd.size = 501;
    assert_int_equal(call(&s, FUSE_READ, ino, &rd, sizeof(rd), NULL, 0, buf, sizeof(buf), &n), -EIO);
    srv_close(&s);
}

int main(void)
{
    if (access(memfs_bin(), X_OK) != 0) {
        fprintf(stderr, "FAIL: %s is not there (set UFUSE_BUILD_DIR)\n", memfs_bin());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_and_ops),
        cmocka_unit_test(test_lifetime),
        cmocka_unit_test(test_splice_split),
        cmocka_unit_test(test_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
