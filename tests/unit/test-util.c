/* test-util.c - size parsing and iovec copies. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "util/util.h"

static void test_parse_size(void **state)
{
    uint64_t v;
    assert_int_equal(ufuse_parse_size("123", &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(ufuse_parse_size("0x10", &v), 0);
    assert_int_equal(v, 16);
    assert_int_equal(ufuse_parse_size("4k", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(ufuse_parse_size("3M", &v), 0);
    assert_int_equal(v, 3u << 20);
    assert_int_equal(ufuse_parse_size("2g", &v), 0);
    assert_int_equal(v, 2ull << 30);
    assert_int_equal(ufuse_parse_size("", &v), -EINVAL);
    assert_int_equal(ufuse_parse_size("-1", &v), -EINVAL);
    assert_int_equal(ufuse_parse_size("12q", &v), -EINVAL);
    assert_int_equal(ufuse_parse_size("4kk", &v), -EINVAL);
    assert_int_equal(ufuse_parse_size("99999999999999999999", &v), -EINVAL);
    assert_int_equal(ufuse_parse_size("17179869184g", &v), -EINVAL); /* overflows */
}

static void test_iov_copies(void **state)
{
    char a[3], b[5], c[4];
    struct iovec v[3] = {{a, 3}, {b, 5}, {c, 4}};
    assert_int_equal(iov_total(v, 3), 12);
    assert_int_equal(iov_copy_in(v, 3, 2, "0123456789", 10), 10);
    char out[12];
    assert_int_equal(iov_copy_out(out, v, 3, 2, 10), 10);
    assert_memory_equal(out, "0123456789", 10);
    assert_int_equal(a[2], '0');
    assert_int_equal(c[3], '9');
    /* Short destination: copies what fits. */
    assert_int_equal(iov_copy_in(v, 3, 10, "xyz", 3), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_iov_copies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
