/*
 * mockutil.h - shared steps of the mock-scenario tests: attach the client
 * to a mock, script-and-run the usual opening and closing of a file, and
 * run a function in several threads.
 *
 * Every helper asserts (cmocka) on the result it expects.
 */
#ifndef UFUSE_TESTS_MOCKUTIL_H
#define UFUSE_TESTS_MOCKUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mock/mockfs.h"
#include "ufuse.h"

/* A file's nodeid and handle as the scenarios use them. */
#define MU_INO 2
#define MU_FH 7

/** New mock (@cfg NULL: defaults) and a session attached to it (@opts
 *  NULL: "cache=direct"). */
struct mock *mu_mount(ufuse_t **s, const struct mock_init_cfg *cfg,
                      const char *opts);
/** Unmount, then verify and free the mock. */
void mu_finish(struct mock *m, ufuse_t *s);

/** Script LOOKUP(parent, name) -> entry(nodeid, mode, size, valid...). */
struct mock_exp *mu_expect_entry(struct mock *m, uint64_t parent,
                                 const char *name, uint64_t nodeid,
                                 uint32_t mode, uint64_t size,
                                 uint64_t entry_valid, uint64_t attr_valid);
/** Script LOOKUP("/f") -> MU_INO of @size (entry and attrs valid for
 *  @valid s) and OPEN(MU_INO, @flags) -> MU_FH with @open_flags; open it. */
ufuse_file_t *mu_open(struct mock *m, ufuse_t *s, int flags, uint64_t size,
                      uint64_t valid, uint32_t open_flags);
/** Script FLUSH + RELEASE of MU_FH, close, and wait for the RELEASE. */
void mu_close(struct mock *m, ufuse_file_t *f);

/** Run @fn(i, arg) in @n threads and join them. */
void mu_parallel(int n, void *(*fn)(void *), void **args);

/** A GETATTR matcher for "getattr_flags 0" (a stat of a path). */
void mu_match_plain_getattr(struct mock_exp *e);

#endif /* UFUSE_TESTS_MOCKUTIL_H */
