/*
 * test-holes.c - holes without I/O against ufuse-memfs (issue 10), through
 * the public API, counting what the server was asked in its request trace
 * (ufuse-memfs -d, the server's stderr in log=FILE):
 *
 *  - a sparse file (24 MiB, data written at several places, a hole at the
 *    end) read whole, cold, in 1 MiB reads with readahead: the content is
 *    right and the server READs little more than the data (the rest is
 *    zero-filled from what LSEEK told);
 *  - a dense file (its blocks cover its size) is never asked about:
 *    no LSEEK, READs of all of it.
 *
 * State: the paths below, set in main; each test makes and ends its own
 * session and log file.  No threads, no locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "check.h"

#include "ufuse.h"

#define MIB (1024u * 1024u)
#define KIB 1024u

static char MEMFS[4096], TMPD[64];
static int LOGN;

/* What the server's trace says this session asked. */
struct asked {
    unsigned reads, lseeks;
    uint64_t read_bytes;
};

static struct asked count_requests(const char *log)
{
    struct asked a = {0};
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        unsigned long long ino, size;
        long long off;
        if (sscanf(line, "memfs: READ ino=%llu off=%lld size=%llu", &ino, &off, &size) == 3) {
            a.reads++;
            a.read_bytes += size;
        } else if (strncmp(line, "memfs: LSEEK ", 13) == 0) {
            a.lseeks++;
        }
    }
    fclose(f);
    return a;
}

/* Mount ufuse-memfs -d with its stderr in a fresh log, named in @log. */
static ufuse_t *mount_traced(char *log)
{
    snprintf(log, PATH_MAX, "%s/log-%d", TMPD, ++LOGN);
    char *argv[] = {MEMFS, "-d", NULL};
    ufuse_t *s = NULL;
    OK(ufuse_mount(&s, argv, fmt("log=%s", log)));
    return s;
}

/* The bytes of piece @i (of the file's data) at its offset @o. */
static unsigned char piece_byte(unsigned i, uint64_t o)
{
    return (unsigned char)(((o >> 9) * 31 + i * 7 + 1) | 1);
}

/* Where the data is: @n pieces of @len bytes at @at[i]. */
static const uint64_t AT[] = {0, 3 * MIB + 64 * KIB, 9 * MIB, 9 * MIB + 512 * KIB,
                              14 * MIB + 128 * KIB, 23 * MIB};
static const uint32_t LEN[] = {256 * KIB, 1 * MIB, 128 * KIB, 64 * KIB, 2 * MIB, 192 * KIB};
#define NPIECES (sizeof AT / sizeof *AT)
#define SPARSE_SIZE (24 * MIB + 100 * KIB) /* a hole at the end, a partial page */

static unsigned char expected_at(uint64_t o)
{
    for (unsigned i = 0; i < NPIECES; i++)
        if (o >= AT[i] && o < AT[i] + LEN[i])
            return piece_byte(i, o);
    return 0;
}

static void t_sparse_read(void **state)
{
    (void)state;
    char log[PATH_MAX];
    ufuse_t *s = mount_traced(log);
    ufuse_file_t *f;
    static unsigned char buf[MIB];
    uint64_t data = 0;
    OK(ufuse_open(s, "/sparse", O_RDWR | O_CREAT, 0644, &f));
    for (unsigned i = 0; i < NPIECES; i++) {
        for (uint32_t done = 0; done < LEN[i];) {
            uint32_t n = LEN[i] - done < sizeof buf ? LEN[i] - done : (uint32_t)sizeof buf;
            for (uint32_t k = 0; k < n; k++)
                buf[k] = piece_byte(i, AT[i] + done + k);
            assert_int_equal(NN(ufuse_pwrite(f, buf, n, (off_t)(AT[i] + done))), n);
            done += n;
        }
        data += LEN[i];
    }
    OK(ufuse_ftruncate(f, SPARSE_SIZE));
    OK(ufuse_close(f));
    struct asked before = count_requests(log);

    /* memfs opens without keep_cache: the open drops the cached data. */
    OK(ufuse_open(s, "/sparse", O_RDONLY, 0, &f));
    uint64_t pos = 0;
    while (pos < SPARSE_SIZE) {
        ssize_t n = NN(ufuse_pread(f, buf, sizeof buf, (off_t)pos));
        assert_true(n > 0);
        for (ssize_t k = 0; k < n; k++)
            if (buf[k] != expected_at(pos + (uint64_t)k))
                fail_msg("byte %" PRIu64 ": %u, expected %u", pos + (uint64_t)k, buf[k],
                         expected_at(pos + (uint64_t)k));
        pos += (uint64_t)n;
    }
    assert_int_equal(pos, SPARSE_SIZE);
    OK(ufuse_close(f));
    ufuse_unmount(s);

    struct asked a = count_requests(log);
    uint64_t read_bytes = a.read_bytes - before.read_bytes;
    unsigned lseeks = a.lseeks - before.lseeks;
    fprintf(stderr, "sparse read: %" PRIu64 " of %u bytes READ in %u READs, %u LSEEKs "
                    "(data %" PRIu64 ")\n",
            read_bytes, SPARSE_SIZE, a.reads - before.reads, lseeks, data);
    /* The data, and at most a READ's worth per piece beyond it. */
    assert_true(read_bytes >= data);
    assert_true(read_bytes <= data + NPIECES * 128 * KIB);
    assert_true(lseeks > 0);
}

static void t_dense_never_asked(void **state)
{
    (void)state;
    char log[PATH_MAX];
    ufuse_t *s = mount_traced(log);
    ufuse_file_t *f;
    static unsigned char buf[MIB];
    memset(buf, 0x3c, sizeof buf);
    OK(ufuse_open(s, "/dense", O_RDWR | O_CREAT, 0644, &f));
    for (unsigned i = 0; i < 8; i++)
        assert_int_equal(NN(ufuse_pwrite(f, buf, MIB, (off_t)i * MIB)), MIB);
    OK(ufuse_close(f));
    struct asked before = count_requests(log);
    OK(ufuse_open(s, "/dense", O_RDONLY, 0, &f));
    for (unsigned i = 0; i < 8; i++) {
        memset(buf, 0, sizeof buf);
        assert_int_equal(NN(ufuse_pread(f, buf, MIB, (off_t)i * MIB)), MIB);
        for (unsigned k = 0; k < MIB; k++)
            if (buf[k] != 0x3c)
                fail_msg("byte %u of MiB %u: %u", k, i, buf[k]);
    }
    OK(ufuse_close(f));
    ufuse_unmount(s);
    struct asked a = count_requests(log);
    assert_int_equal(a.lseeks, before.lseeks);
    assert_int_equal(a.read_bytes - before.read_bytes, 8 * MIB);
}

int main(void)
{
    const char *dir = getenv("UFUSE_BUILD_DIR");
    snprintf(MEMFS, sizeof MEMFS, "%s/ufuse-memfs", dir ? dir : ".");
    if (access(MEMFS, X_OK) != 0) {
        fprintf(stderr, "%s not built\n", MEMFS);
        return 1;
    }
    snprintf(TMPD, sizeof TMPD, "/tmp/ufuse-holes-XXXXXX");
    if (!mkdtemp(TMPD))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_sparse_read),
        cmocka_unit_test(t_dense_never_asked),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (!getenv("UFUSE_KEEP")) {
        for (int i = 1; i <= LOGN; i++)
            unlink(fmt("%s/log-%d", TMPD, i));
        rmdir(TMPD);
    }
    return rc;
}
