/*
 * fdsem.c - file-descriptor semantics of `ufuse run`, checked from inside
 * a program of the tree (tests/run/fdsem.sh runs it on a mount).
 *
 *   fdsem DIR          run every check on files in DIR; exit 0 or 1
 *   fdsem --exec-child FD-SHARED FD-CLOEXEC PATH
 *                      (internal) the half of a check that runs after exec
 *
 * Checks: fork and dup share a file position, two opens do not; a write by
 * one process is read by another at once; close-on-exec is honoured and a
 * plain fd survives exec with its position; a raw read(2) system call on
 * a mount fd fails instead of returning bytes; /proc/self/fd/N reopens the
 * file; stdio on a mount fd (fdopen, and stdout redirected by dup2).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            failures++;                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);    \
            printf(__VA_ARGS__);                           \
            printf(" (errno %d %s)\n", errno, strerror(errno)); \
        }                                                  \
    } while (0)

static char *slurp(const char *path)
{
    static char buf[4096];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n < 0 ? 0 : n] = '\0';
    return buf;
}

static int exec_child(int shared, int cloexec, const char *path)
{
    /* The shared fd arrived with its position (2 bytes written before). */
    CHECK(lseek(shared, 0, SEEK_CUR) == 2, "position survives exec");
    CHECK(write(shared, "XY", 2) == 2, "write after exec");
    CHECK(fcntl(cloexec, F_GETFD) == -1 && errno == EBADF, "O_CLOEXEC fd closed by exec");
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 4, "stat after exec sees the size");
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--exec-child") == 0)
        return exec_child(atoi(argv[2]), atoi(argv[3]), argv[4]);
    if (argc != 2) {
        fprintf(stderr, "usage: fdsem DIR\n");
        return 2;
    }
    char a[4096], b[4096], c[4096];
    snprintf(a, sizeof a, "%s/shared", argv[1]);
    snprintf(b, sizeof b, "%s/exec", argv[1]);
    snprintf(c, sizeof c, "%s/stdio", argv[1]);

    /* fork shares the position */
    int fd = open(a, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0, "open");
    CHECK(write(fd, "ab", 2) == 2, "write ab");
    pid_t p = fork();
    if (p == 0) {
        _exit(write(fd, "cd", 2) == 2 ? 0 : 1);
    }
    int st;
    waitpid(p, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child wrote");
    CHECK(lseek(fd, 0, SEEK_CUR) == 4, "fork shares the position");
    /* dup shares it too; another open does not */
    int d = dup(fd);
    CHECK(write(d, "ef", 2) == 2, "write through dup");
    CHECK(lseek(fd, 0, SEEK_CUR) == 6, "dup shares the position");
    int other = open(a, O_RDONLY);
    char buf[16] = { 0 };
    CHECK(read(other, buf, 3) == 3 && memcmp(buf, "abc", 3) == 0, "second open reads from 0");
    CHECK(lseek(fd, 0, SEEK_CUR) == 6, "second open has its own position");
    /* F_DUPFD_CLOEXEC, F_GETFL */
    int d2 = fcntl(fd, F_DUPFD_CLOEXEC, 100);
    CHECK(d2 >= 100 && (fcntl(d2, F_GETFD) & FD_CLOEXEC), "F_DUPFD_CLOEXEC");
    CHECK((fcntl(d2, F_GETFL) & O_ACCMODE) == O_RDWR, "F_GETFL");
    close(d2);
    close(d);
    close(other);
    /* a write in one process is read by another at once */
    p = fork();
    if (p == 0) {
        int w = open(a, O_WRONLY);
        _exit(pwrite(w, "Z", 1, 0) == 1 ? 0 : 1);
    }
    waitpid(p, &st, 0);
    CHECK(pread(fd, buf, 1, 0) == 1 && buf[0] == 'Z', "another process's write is seen");
    /* a raw system call on a mount fd fails; it never returns bytes */
    long raw = syscall(SYS_read, fd, buf, sizeof buf);
    CHECK(raw < 0, "a raw read(2) on a mount fd fails (got %ld)", raw);
    long rawp = syscall(SYS_pread64, fd, buf, sizeof buf, 0);
    CHECK(rawp < 0, "a raw pread64(2) on a mount fd fails (got %ld)", rawp);
    /* /proc/self/fd/N names the file */
    char alias[64];
    snprintf(alias, sizeof alias, "/proc/self/fd/%d", fd);
    char *s = slurp(alias);
    CHECK(s && strcmp(s, "Zbcdef") == 0, "/proc/self/fd/N reads the file (%s)", s ? s : "-");
    close(fd);

    /* exec: a plain fd is inherited with its position, O_CLOEXEC is not */
    int keep = open(b, O_RDWR | O_CREAT | O_TRUNC, 0644);
    int gone = open(b, O_RDONLY | O_CLOEXEC);
    CHECK(write(keep, "12", 2) == 2, "write before exec");
    p = fork();
    if (p == 0) {
        char k[16], g[16];
        snprintf(k, sizeof k, "%d", keep);
        snprintf(g, sizeof g, "%d", gone);
        execl("/proc/self/exe", "fdsem", "--exec-child", k, g, b, (char *)NULL);
        _exit(127);
    }
    waitpid(p, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the exec'd child's checks (status %d)", st);
    CHECK(lseek(keep, 0, SEEK_CUR) == 4, "the exec'd child moved the shared position");
    s = slurp(b);
    CHECK(s && strcmp(s, "12XY") == 0, "exec'd child's write landed (%s)", s ? s : "-");
    close(keep);
    close(gone);

    /* stdio: fdopen on a mount fd, and stdout redirected onto one */
    FILE *fp = fdopen(open(c, O_WRONLY | O_CREAT | O_TRUNC, 0644), "w");
    CHECK(fp && fileno(fp) >= 0, "fdopen");
    fprintf(fp, "fdopen %d\n", 1);
    CHECK(fclose(fp) == 0, "fclose");
    fflush(stdout);
    int saved = dup(1);
    int out = open(c, O_WRONLY | O_APPEND);
    dup2(out, 1);
    close(out);
    printf("printf %d\n", 2);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    s = slurp(c);
    CHECK(s && strcmp(s, "fdopen 1\nprintf 2\n") == 0, "stdio output (%s)", s ? s : "-");

    /* Readiness: a file is always ready for poll and select (with a pipe
     * beside it that is not), and epoll refuses it, as on a kernel mount. */
    int rw = open(c, O_RDWR), pp[2];
    CHECK(rw >= 0 && pipe(pp) == 0, "a file and a pipe");
    struct pollfd pf[2] = { { .fd = rw, .events = POLLIN | POLLOUT }, { .fd = pp[0], .events = POLLIN } };
    CHECK(poll(pf, 2, 10000) == 1 && pf[0].revents == (POLLIN | POLLOUT) && pf[0].fd == rw &&
              pf[1].revents == 0,
          "poll: the file ready at once, the pipe not (%d %d)", pf[0].revents, pf[1].revents);
    fd_set rs, ws;
    FD_ZERO(&rs);
    FD_ZERO(&ws);
    FD_SET(rw, &rs);
    FD_SET(pp[0], &rs);
    FD_SET(rw, &ws);
    struct timeval tv = { 10, 0 };
    CHECK(select((rw > pp[0] ? rw : pp[0]) + 1, &rs, &ws, NULL, &tv) == 2 && FD_ISSET(rw, &rs) &&
              FD_ISSET(rw, &ws) && !FD_ISSET(pp[0], &rs),
          "select: the file readable and writable at once, the pipe not");
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN };
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, rw, &ev) == -1 && errno == EPERM, "epoll refuses a file");
    close(ep);
    close(pp[0]);
    close(pp[1]);
    close(rw);
    printf("%s\n", failures ? "FAILED" : "fdsem: all checks passed");
    return failures ? 1 : 0;
}
