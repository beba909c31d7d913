/*
 * worker.c - load for tests/run/kill.sh, run inside a `ufuse run` tree.
 *
 *   run-worker work DIR ID   loop forever: lock a slot of DIR/records with
 *                            F_SETLKW, write a checksummed 64-byte record,
 *                            read a neighbour's, unlock; flock and rewrite
 *                            DIR/own.ID; list DIR.  Killed from outside.
 *   run-worker check DIR     every slot is zero or a whole valid record,
 *                            and a whole-file write lock is granted at once
 *                            (no lock of a killed worker is left behind).
 *   run-worker stats         print the broker's tables (descs locks procs
 *                            conns), seccomp counts (listeners traps) and
 *                            the requests it served
 */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "runproto.h"

#define SLOTS 64
#define RECLEN 64

struct record {
    uint32_t magic, id;
    uint64_t seq;
    char text[40];
    uint64_t sum;
};

static uint64_t record_sum(const struct record *r)
{
    const unsigned char *p = (const unsigned char *)r;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < offsetof(struct record, sum); i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static int lock_slot(int fd, int slot, short type, int cmd)
{
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET,
                        .l_start = (off_t)slot * RECLEN, .l_len = RECLEN };
    return fcntl(fd, cmd, &fl);
}

static int work(const char *dir, unsigned id)
{
    char path[4096], own[4096];
    snprintf(path, sizeof path, "%s/records", dir);
    snprintf(own, sizeof own, "%s/own.%u", dir, id);
    srandom(id * 7919u + (unsigned)getpid());
    for (uint64_t seq = 1;; seq++) {
        int fd = open(path, O_RDWR | O_CREAT, 0644);
        if (fd < 0) {
            perror("open");
            return 1;
        }
        int slot = (int)(random() % SLOTS);
        if (lock_slot(fd, slot, F_WRLCK, F_SETLKW) != 0) {
            perror("F_SETLKW");
            return 1;
        }
        struct record r = { .magic = 0x52554e21, .id = id, .seq = seq };
        snprintf(r.text, sizeof r.text, "worker %u seq %llu", id, (unsigned long long)seq);
        r.sum = record_sum(&r);
        if (pwrite(fd, &r, sizeof r, (off_t)slot * RECLEN) != sizeof r) {
            perror("pwrite");
            return 1;
        }
        struct record other;
        (void)pread(fd, &other, sizeof other, (off_t)((slot + 1) % SLOTS) * RECLEN);
        lock_slot(fd, slot, F_UNLCK, F_SETLK);
        close(fd);
        int o = open(own, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o >= 0) {
            (void)flock(o, LOCK_EX);
            (void)write(o, r.text, strlen(r.text));
            close(o);
        }
        if (seq % 16 == 0) {
            DIR *d = opendir(dir);
            while (d && readdir(d))
                ;
            if (d)
                closedir(d);
        }
    }
}

static int check(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/records", dir);
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        perror("open records");
        return 1;
    }
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        printf("a lock is left behind: %s\n", strerror(errno));
        return 1;
    }
    int bad = 0, valid = 0;
    for (int s = 0; s < SLOTS; s++) {
        struct record r;
        ssize_t n = pread(fd, &r, sizeof r, (off_t)s * RECLEN);
        static const struct record zero;
        if (n <= 0 || (n == sizeof r && memcmp(&r, &zero, sizeof r) == 0))
            continue;
        if (n != sizeof r || r.magic != 0x52554e21 || r.sum != record_sum(&r)) {
            printf("slot %d is damaged\n", s);
            bad++;
        } else {
            valid++;
        }
    }
    close(fd);
    printf("records: %d valid, %d damaged\n", valid, bad);
    return bad ? 1 : 0;
}

/* Ask the broker of the first mount in $UFUSE_RUN for its tables. */
static int stats(void)
{
    const char *tab = getenv(RUN_ENV);
    const char *eq = tab ? strchr(tab, '=') : NULL;
    if (!eq)
        return 1;
    char addr[108] = "";
    size_t n = strcspn(eq + 1, ":");
    if (n >= sizeof addr)
        return 1;
    memcpy(addr, eq + 1, n);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path + 1, addr, n);
    if (connect(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)))
        return 1;
    struct run_req q = { .op = RUN_HELLO };
    struct { struct run_rep h; struct run_stats s; } rep;
    if (send(fd, &q, sizeof q, 0) != sizeof q || recv(fd, &rep, sizeof rep, 0) < (ssize_t)sizeof rep.h)
        return 1;
    q.op = RUN_STATS;
    if (send(fd, &q, sizeof q, 0) != sizeof q || recv(fd, &rep, sizeof rep, 0) != sizeof rep)
        return 1;
    /* This connection is one of the broker's; report the others. */
    printf("descs %u locks %u procs %u conns %u listeners %u traps %llu requests %llu\n",
           rep.s.descs, rep.s.locks, rep.s.procs, rep.s.conns - 1, rep.s.listeners,
           (unsigned long long)rep.s.traps, (unsigned long long)rep.s.requests);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "work") == 0)
        return work(argv[2], (unsigned)atoi(argv[3]));
    if (argc == 3 && strcmp(argv[1], "check") == 0)
        return check(argv[2]);
    if (argc == 2 && strcmp(argv[1], "stats") == 0)
        return stats();
    fprintf(stderr, "usage: run-worker work DIR ID | check DIR | stats\n");
    return 2;
}
