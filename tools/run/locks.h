/*
 * locks.h - record locks and flock(2) locks kept by the broker, for the
 * programs of a `ufuse run` tree, as the Linux kernel keeps them for a
 * FUSE server that did not grant FUSE_POSIX_LOCKS / FUSE_FLOCK_LOCKS.
 *
 * Two lock spaces, as on Linux: POSIX record locks (owners: processes for
 * F_SETLK, open file descriptions for F_OFD_SETLK; they conflict with each
 * other) and flock locks (owners: open file descriptions), which never
 * conflict with record locks.  Files are told apart by inode number.
 *
 * Locks: one mutex for the whole table; waiters sleep on one condition
 * variable and re-check after every change.
 *
 * Invariants:
 *  1. An owner holds at most one lock on any byte of a file in a space,
 *     and its ranges on one file do not overlap.
 *  2. Two locks of different owners overlap only if both are read locks.
 */
#ifndef UFUSE_RUN_LOCKS_H
#define UFUSE_RUN_LOCKS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum lock_space { LOCK_POSIX, LOCK_FLOCK };

/* A lock's owner: a process (pid) or an open file description (desc). */
struct lock_owner {
    bool is_desc;
    uint64_t id;            /* pid or description id */
};

struct lock_range {
    short type;             /* F_RDLCK, F_WRLCK, F_UNLCK */
    uint64_t start, end;    /* inclusive; end UINT64_MAX: to the end of file */
    struct lock_owner owner; /* out of lock_test: the conflicting owner */
};

void locks_init(void);

/*
 * F_GETLK: the first lock conflicting with @r (r->type F_RDLCK/F_WRLCK) is
 * stored into @r; r->type becomes F_UNLCK when there is none.
 */
void lock_test(enum lock_space sp, uint64_t file, const struct lock_owner *who,
               struct lock_range *r);

/*
 * F_SETLK / F_SETLKW / flock: set, change or (F_UNLCK) remove @who's lock
 * on @r.  With @wait, sleep until no conflict is left, giving up with
 * -EINTR when @alive(@ctx) turns false (the caller's connection closed).
 * Returns 0, -EAGAIN (conflict, not waiting) or -EINTR, -ENOLCK.
 */
int lock_set(enum lock_space sp, uint64_t file, const struct lock_owner *who,
             const struct lock_range *r, bool wait, bool (*alive)(void *), void *ctx);

/* Drop every lock of @who (on @file only, unless @file is 0). */
void lock_release(enum lock_space sp, uint64_t file, const struct lock_owner *who);

/* Number of locks held, for the tests and --stats. */
unsigned lock_count(void);

#endif /* UFUSE_RUN_LOCKS_H */
