/*
 * run-designs.c - the prototype behind docs/run.md's choice between the two
 * `ufuse run` designs: what a program pays for a hot 4 KiB pread and for
 * open + close, with a "broker" child serving it over SOCK_SEQPACKET.
 *   design 1: virtual fds: each open gets a pipe read end (identity and
 *             lifetime); reads are broker round trips, or (issue 9) a copy
 *             from a read-only shared mapping validated by a sequence word
 *   design 2: fds on memfds: each open gets a real fd reopened from the
 *             file's memfd; reads are pread(2)
 * Usage: run-designs [pin]   (pin: client and broker on CPU 0)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FSIZE (64u << 20)
#define NPG (FSIZE / 4096)
enum { OP_OPEN1 = 1, OP_OPEN2, OP_READ, OP_FLUSH };
struct req { int op; uint64_t off; uint32_t len; };

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static int memfd;
static char *map;

static void send_fd(int s, const void *b, size_t n, int fd)
{
    char c[CMSG_SPACE(sizeof fd)];
    struct iovec iov = {(void *)b, n};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        m.msg_control = c; m.msg_controllen = sizeof c;
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET; h->cmsg_type = SCM_RIGHTS; h->cmsg_len = CMSG_LEN(sizeof fd);
        memcpy(CMSG_DATA(h), &fd, sizeof fd);
    }
    if (sendmsg(s, &m, 0) < 0) perror("sendmsg");
}
static int recv_fd(int s, void *b, size_t n)
{
    char c[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {b, n};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c, .msg_controllen = sizeof c};
    if (recvmsg(s, &m, MSG_CMSG_CLOEXEC) < 0) return -1;
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    int fd = -1;
    if (h && h->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(h), sizeof fd);
    return fd;
}

static void broker(int s)
{
    static char buf[1 << 20];
    struct req r;
    for (;;) {
        ssize_t n = recv(s, &r, sizeof r, 0);
        if (n <= 0) _exit(0);
        if (r.op == OP_OPEN1) {
            int p[2];
            pipe2(p, O_CLOEXEC | O_NONBLOCK);
            send_fd(s, "o", 1, p[0]);
            close(p[0]);
            close(p[1]); /* a real broker keeps p[1] and polls it for POLLERR */
        } else if (r.op == OP_OPEN2) {
            char path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
            int fd = open(path, O_RDWR | O_CLOEXEC);
            send_fd(s, "o", 1, fd);
            close(fd);
        } else if (r.op == OP_READ) {
            memcpy(buf, map + r.off, r.len);
            send(s, buf, r.len, 0);
        } else if (r.op == OP_FLUSH) {
            send(s, "f", 1, 0);
        }
    }
}

static uint64_t rnd(uint64_t *x) { *x ^= *x << 13; *x ^= *x >> 7; *x ^= *x << 17; return *x; }

int main(int argc, char **argv)
{
    int pin = argc > 1 && strcmp(argv[1], "pin") == 0;
    memfd = memfd_create("f", MFD_CLOEXEC);
    ftruncate(memfd, FSIZE);
    map = mmap(NULL, FSIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    memset(map, 7, FSIZE);
    /* one seq word per page: even = stable; the issue-9 hit validates it around the copy */
    _Atomic uint32_t *seq = mmap(NULL, NPG * 4, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int sv[2];
    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
    if (pin) { cpu_set_t c; CPU_ZERO(&c); CPU_SET(0, &c); sched_setaffinity(0, sizeof c, &c); }
    pid_t pid = fork();
    if (pid == 0) { close(sv[0]); broker(sv[1]); }
    close(sv[1]);
    int s = sv[0];
    char buf[4096], x;
    uint64_t r = 88172645463325252ull;
    int N = 20000;

    /* hot 4 KiB pread */
    double t = now();
    for (int i = 0; i < N; i++) {
        struct req q = {OP_READ, (rnd(&r) % NPG) * 4096, 4096};
        send(s, &q, sizeof q, 0);
        recv(s, buf, sizeof buf, 0);
    }
    printf("d1 hot pread, broker round trip : %8.2f us\n", (now() - t) / N * 1e6);
    char *ro = mmap(NULL, FSIZE, PROT_READ, MAP_SHARED, memfd, 0);
    int M = 2000000;
    t = now();
    for (int i = 0; i < M; i++) {
        uint64_t pg = rnd(&r) % NPG;
        uint32_t s0;
        do {
            s0 = atomic_load_explicit(&seq[pg], memory_order_acquire);
            memcpy(buf, ro + pg * 4096, 4096);
            atomic_thread_fence(memory_order_acquire);
        } while ((s0 & 1) || atomic_load_explicit(&seq[pg], memory_order_relaxed) != s0);
    }
    printf("d1/d2 hot pread, shared map+seq : %8.3f us\n", (now() - t) / M * 1e6);
    struct req q2 = {OP_OPEN2, 0, 0};
    send(s, &q2, sizeof q2, 0);
    int mfd = recv_fd(s, &x, 1);
    t = now();
    for (int i = 0; i < M; i++)
        pread(mfd, buf, 4096, (rnd(&r) % NPG) * 4096);
    printf("d2 hot pread, pread(2) on memfd : %8.3f us\n", (now() - t) / M * 1e6);
    close(mfd);

    /* open + close: open round trip with an fd passed, then a FLUSH round trip at close */
    for (int d = 1; d <= 2; d++) {
        t = now();
        for (int i = 0; i < N; i++) {
            struct req q = {d == 1 ? OP_OPEN1 : OP_OPEN2, 0, 0};
            send(s, &q, sizeof q, 0);
            int fd = recv_fd(s, &x, 1);
            struct req f = {OP_FLUSH, 0, 0};
            send(s, &f, sizeof f, 0);
            recv(s, &x, 1, 0);
            close(fd);
        }
        printf("d%d open+close                   : %8.2f us\n", d, (now() - t) / N * 1e6);
    }
    close(s);
    waitpid(pid, NULL, 0);
    return 0;
}
