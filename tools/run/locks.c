/*
 * locks.c - the broker's lock table (see locks.h for purpose, locks and
 * invariants).  A list per table is enough: programs hold few locks at a
 * time, and every operation is a scan of the locks of one file.
 */
#include "locks.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct lock {
    enum lock_space sp;
    uint64_t file;
    struct lock_owner owner;
    short type;
    uint64_t start, end;
    struct lock *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed;
static struct lock *all;
static unsigned nlocks;

void locks_init(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&changed, &a);
    pthread_condattr_destroy(&a);
}

static bool same_owner(const struct lock_owner *a, const struct lock_owner *b)
{
    return a->is_desc == b->is_desc && a->id == b->id;
}

static bool overlaps(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
    return s1 <= e2 && s2 <= e1;
}

/* A lock of another owner that @r may not coexist with. */
static struct lock *conflict(enum lock_space sp, uint64_t file, const struct lock_owner *who,
                             const struct lock_range *r)
{
    for (struct lock *l = all; l; l = l->next) {
        if (l->sp != sp || l->file != file || same_owner(&l->owner, who))
            continue;
        if (!overlaps(l->start, l->end, r->start, r->end))
            continue;
        if (l->type == F_WRLCK || r->type == F_WRLCK)
            return l;
    }
    return NULL;
}

void lock_test(enum lock_space sp, uint64_t file, const struct lock_owner *who,
               struct lock_range *r)
{
    pthread_mutex_lock(&mu);
    struct lock *l = conflict(sp, file, who, r);
    if (l) {
        r->type = l->type;
        r->start = l->start;
        r->end = l->end;
        r->owner = l->owner;
    } else {
        r->type = F_UNLCK;
    }
    pthread_mutex_unlock(&mu);
}

/*
 * Remove @who's locks on [start, end] of @file, splitting a lock that
 * sticks out on both sides.  Returns -ENOLCK if a split needs memory that
 * is not there (nothing is changed then).
 */
static int punch(enum lock_space sp, uint64_t file, const struct lock_owner *who, uint64_t start,
                 uint64_t end)
{
    struct lock *spare = NULL;
    for (struct lock *l = all; l; l = l->next) {
        if (l->sp == sp && l->file == file && same_owner(&l->owner, who) && l->start < start &&
            l->end > end) {
            spare = malloc(sizeof *spare);
            if (!spare)
                return -ENOLCK;
            break;
        }
    }
    for (struct lock **pp = &all; *pp;) {
        struct lock *l = *pp;
        if (l->sp != sp || l->file != file || !same_owner(&l->owner, who) ||
            !overlaps(l->start, l->end, start, end)) {
            pp = &l->next;
            continue;
        }
        if (l->start >= start && l->end <= end) {        /* inside: drop */
            *pp = l->next;
            free(l);
            nlocks--;
            continue;
        }
        if (l->start < start && l->end > end) {          /* around: split */
            *spare = *l;
            spare->start = end + 1;
            spare->next = l->next;
            l->end = start - 1;
            l->next = spare;
            nlocks++;
            spare = NULL;
            pp = &l->next->next;
            continue;
        }
        if (l->start < start)                            /* sticks out left */
            l->end = start - 1;
        else                                             /* sticks out right */
            l->start = end + 1;
        pp = &l->next;
    }
    free(spare);
    return 0;
}

int lock_set(enum lock_space sp, uint64_t file, const struct lock_owner *who,
             const struct lock_range *r, bool wait, bool (*alive)(void *), void *ctx)
{
    pthread_mutex_lock(&mu);
    int rc = 0;
    if (r->type != F_UNLCK) {
        while (conflict(sp, file, who, r)) {
            if (!wait) {
                rc = -EAGAIN;
                goto out;
            }
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            t.tv_nsec += 100 * 1000 * 1000;
            if (t.tv_nsec >= 1000000000L) {
                t.tv_sec++;
                t.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&changed, &mu, &t);
            if (alive && !alive(ctx)) {
                rc = -EINTR;
                goto out;
            }
        }
    }
    struct lock *n = NULL;
    if (r->type != F_UNLCK && !(n = malloc(sizeof *n))) {
        rc = -ENOLCK;
        goto out;
    }
    rc = punch(sp, file, who, r->start, r->end);
    if (rc) {
        free(n);
        goto out;
    }
    if (n) {
        *n = (struct lock){ .sp = sp, .file = file, .owner = *who, .type = r->type,
                            .start = r->start, .end = r->end, .next = all };
        all = n;
        nlocks++;
    }
    pthread_cond_broadcast(&changed);
out:
    pthread_mutex_unlock(&mu);
    return rc;
}

void lock_release(enum lock_space sp, uint64_t file, const struct lock_owner *who)
{
    pthread_mutex_lock(&mu);
    bool any = false;
    for (struct lock **pp = &all; *pp;) {
        struct lock *l = *pp;
        if (l->sp == sp && (file == 0 || l->file == file) && same_owner(&l->owner, who)) {
            *pp = l->next;
            free(l);
            nlocks--;
            any = true;
        } else {
            pp = &l->next;
        }
    }
    if (any)
        pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&mu);
}

unsigned lock_count(void)
{
    pthread_mutex_lock(&mu);
    unsigned n = nlocks;
    pthread_mutex_unlock(&mu);
    return n;
}
