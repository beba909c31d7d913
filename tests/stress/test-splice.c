/*
 * test-splice.c - a server that splices its READ replies (ufuse-memfs -o
 * splice_read, with the client offering splice: -o splice):
 *  - with the default cap (56 KiB READs) no reply is ever split;
 * *  - with max_read=512k, 512 KiB replies arrive split over several SEQPACKET
 *    datagrams (design.md, transport facts) and one reader gets every byte
 *    right through reassembly; with 4 readers split replies interleave,
 *    and then a read may fail with EIO, but never returns wrong data.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ufuse.h"
#include "vfs/vfs.h"

#define FILE_SIZE (16u << 20)
#define CHUNK (1u << 20)

static ufuse_t *S;
static ufuse_file_t *F;

/* ufuse-memfs's seed_file pattern. */
static unsigned char pattern(uint64_t o)
{
    return (unsigned char)((o * 2654435761u) >> 13);
}

/*
 * 0 when the chunk at @off reads right; 1 when it fails with EIO or comes
 * back short (a later piece failed), allowed only if @eio_ok; 2 for wrong
 * bytes or any other failure.  Every byte returned is checked.
 */
static int check_chunk(uint64_t off, int eio_ok)
{
    unsigned char *b = malloc(CHUNK);
    ssize_t n = ufuse_pread(F, b, CHUNK, (off_t)off);
    int res = 0;
    if (n == -EIO || (n > 0 && n < (ssize_t)CHUNK))
        res = eio_ok ? 1 : 2;
    else if (n != (ssize_t)CHUNK)
        res = 2;
    for (ssize_t i = 0; i < n; i++)
        if (b[i] != pattern(off + (uint64_t)i))
            res = 2;
    free(b);
    return res;
}

static void *reader(void *arg)
{
    uintptr_t id = (uintptr_t)arg, bad = 0;
    for (int round = 0; round < 3; round++)
        for (uint64_t off = id * CHUNK; off < FILE_SIZE; off += 4 * CHUNK)
            bad += check_chunk(off, 1) == 2;
    return (void *)bad;
}

static uint64_t split_count(void)
{
    pthread_mutex_lock(&S->conn.mu);
    uint64_t split = S->conn.split_replies;
    pthread_mutex_unlock(&S->conn.mu);
    return split;
}

static void mount_memfs(const char *opts)
{
    const char *dir = getenv("UFUSE_BUILD_DIR");
    char exe[4096];
    snprintf(exe, sizeof exe, "%s/ufuse-memfs", dir ? dir : ".");
    char *argv[] = {exe, "-o", "splice_read,seed_file=/big:16m", NULL};
    int rc = ufuse_mount(&S, argv, opts);
    if (rc == -ENOENT) {
        fprintf(stderr, "%s not built\n", exe);
        exit(77);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(ufuse_open(S, "/big", O_RDONLY, 0, &F), 0);
}

static void test_capped_reads_never_split(void **state)
{
    mount_memfs("splice");
    struct ufuse_conninfo ci;
    assert_int_equal(ufuse_conninfo(S, &ci), 0);
    assert_int_equal(ci.max_read, 56 * 1024);
    for (uint64_t off = 0; off < FILE_SIZE; off += CHUNK)
        assert_int_equal(check_chunk(off, 0), 0);
    assert_int_equal(split_count(), 0);
    assert_int_equal(ufuse_close(F), 0);
    assert_int_equal(ufuse_unmount(S), 0);
}

static void test_split_replies_reassembled(void **state)
{
    /* 1 MiB replies do not fit a pipe (pipe-max-size), so libfuse copies
     * them; 512 KiB ones are spliced.  Uncached: one READ at a time from
     * one reader (the page cache caps its own READs, see mount.c). */
    mount_memfs("splice,max_read=512k,cache=direct");
    for (uint64_t off = 0; off < FILE_SIZE; off += CHUNK)
        assert_int_equal(check_chunk(off, 0), 0);
    /* The case this test exists for did happen. */
    assert_true(split_count() > 0);
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, reader, (void *)i);
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        assert_int_equal((uintptr_t)bad, 0);
    }
    assert_int_equal(ufuse_close(F), 0);
    assert_int_equal(ufuse_unmount(S), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capped_reads_never_split),
        cmocka_unit_test(test_split_replies_reassembled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
