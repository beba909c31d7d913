/*
 * preload_seccomp.c - statically linked programs: the seccomp filter that
 * hands their file system calls to the broker, and the trampoline that
 * keeps this library's own calls out of it.
 *
 * Before a preloaded process execs a statically linked program (which this
 * library cannot reach), pl_supervise installs a seccomp filter that turns
 * the file system calls the broker's supervisor serves
 * (tools/run/supervise.c) into user notifications, and sends the listener
 * to the broker (RUN_SUPERVISE).  The filter stays with the program and
 * every process it starts; docs/run.md says why per exec and not per tree,
 * and what no_new_privs means here.
 *
 * A dynamic program started inside such a subtree has this library again,
 * and its calls on mounts reach the broker over the socket (calls the
 * filter does not list).  What the library passes on to the kernel itself
 * (the next definition of an interposed system call wrapper, REAL) must not
 * trap either: when the process runs under a seccomp filter, pl_real hands
 * out wrappers that make the system call from a trampoline mapped at the
 * fixed address PL_TRAMP_ADDR, whose calls the filter lets through by their
 * instruction pointer.
 *
 * Locks: tramp_once guards the trampoline's set-up; it is read-only after.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "preload.h"

/* The system calls the supervisor serves (supervise.c's handle()). */
static const unsigned short trapped[] = {
    SYS_read, SYS_write, SYS_pread64, SYS_pwrite64, SYS_readv, SYS_writev, SYS_preadv,
    SYS_pwritev, SYS_preadv2, SYS_pwritev2, SYS_lseek, SYS_fstat, SYS_getdents64,
    SYS_ftruncate, SYS_fsync, SYS_fdatasync, SYS_fchmod, SYS_fchown, SYS_fstatfs, SYS_fchdir,
    SYS_fcntl, SYS_flock,
    SYS_open, SYS_creat, SYS_openat, SYS_openat2, SYS_stat, SYS_lstat, SYS_newfstatat,
    SYS_statx, SYS_access, SYS_faccessat, SYS_faccessat2, SYS_readlink, SYS_readlinkat,
    SYS_mkdir, SYS_mkdirat, SYS_rmdir, SYS_unlink, SYS_unlinkat, SYS_rename, SYS_renameat,
    SYS_renameat2, SYS_link, SYS_linkat, SYS_symlink, SYS_symlinkat, SYS_chmod, SYS_fchmodat,
    SYS_chown, SYS_lchown, SYS_fchownat, SYS_utimensat, SYS_truncate, SYS_statfs, SYS_chdir,
    SYS_sendfile, SYS_splice, SYS_copy_file_range,
};

/* ---- the trampoline --------------------------------------------------- */

/*
 * long tramp(long nr, long a1, ..., long a6): the system call nr with its
 * six arguments (the C calling convention's registers moved into the
 * kernel's), -errno on failure.  Copied to PL_TRAMP_ADDR.
 */
__asm__(".pushsection .text.ufuse_tramp,\"ax\",@progbits\n"
        ".type pl_tramp_code, @function\n"
        "pl_tramp_code:\n"
        "    mov %rdi, %rax\n"
        "    mov %rsi, %rdi\n"
        "    mov %rdx, %rsi\n"
        "    mov %rcx, %rdx\n"
        "    mov %r8, %r10\n"
        "    mov %r9, %r8\n"
        "    mov 8(%rsp), %r9\n"
        "    syscall\n"
        "    ret\n"
        "pl_tramp_end:\n"
        ".popsection\n");
extern const char pl_tramp_code[], pl_tramp_end[];

typedef long (*tramp_fn)(long, long, long, long, long, long, long);
static tramp_fn tramp;
static pthread_once_t tramp_once = PTHREAD_ONCE_INIT;

static void tramp_setup(void)
{
    /* Only a process under a seccomp filter needs it (one prctl each).
     * System calls, not libc: this library interposes mmap, whose REAL
     * would come back here. */
    if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2)
        return;
    long p = syscall(SYS_mmap, PL_TRAMP_ADDR, 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p < 0)
        return;
    if ((unsigned long)p != PL_TRAMP_ADDR) {   /* a kernel without NOREPLACE */
        syscall(SYS_munmap, p, 4096);
        return;
    }
    memcpy((void *)p, pl_tramp_code, (size_t)(pl_tramp_end - pl_tramp_code));
    if (syscall(SYS_mprotect, p, 4096, PROT_READ | PROT_EXEC) != 0) {
        syscall(SYS_munmap, p, 4096);
        return;
    }
    tramp = (tramp_fn)p;
}

#define SYS6(nr, a, b, c, d, e, f)                                                    \
    pl_ret(tramp(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f)))
#define SYS3(nr, a, b, c) SYS6(nr, a, b, c, 0, 0, 0)

/* The system call wrappers REAL hands out under a filter: libc's
 * prototypes, the system call made from the trampoline. */
static ssize_t t_read(int fd, void *b, size_t n) { return SYS3(SYS_read, fd, b, n); }
static ssize_t t_write(int fd, const void *b, size_t n) { return SYS3(SYS_write, fd, b, n); }
static ssize_t t_pread(int fd, void *b, size_t n, off_t o)
{
    return SYS6(SYS_pread64, fd, b, n, o, 0, 0);
}
static ssize_t t_pwrite(int fd, const void *b, size_t n, off_t o)
{
    return SYS6(SYS_pwrite64, fd, b, n, o, 0, 0);
}
static ssize_t t_readv(int fd, const struct iovec *v, int n) { return SYS3(SYS_readv, fd, v, n); }
static ssize_t t_writev(int fd, const struct iovec *v, int n) { return SYS3(SYS_writev, fd, v, n); }
static ssize_t t_preadv(int fd, const struct iovec *v, int n, off_t o)
{
    return SYS6(SYS_preadv, fd, v, n, o, 0, 0);
}
static ssize_t t_pwritev(int fd, const struct iovec *v, int n, off_t o)
{
    return SYS6(SYS_pwritev, fd, v, n, o, 0, 0);
}
static ssize_t t_preadv2(int fd, const struct iovec *v, int n, off_t o, int fl)
{
    return SYS6(SYS_preadv2, fd, v, n, o, 0, fl);
}
static ssize_t t_pwritev2(int fd, const struct iovec *v, int n, off_t o, int fl)
{
    return SYS6(SYS_pwritev2, fd, v, n, o, 0, fl);
}
static off_t t_lseek(int fd, off_t o, int w) { return SYS3(SYS_lseek, fd, o, w); }
static int t_openat(int dfd, const char *p, int fl, ...)
{
    va_list ap;
    va_start(ap, fl);
    mode_t m = (fl & O_CREAT) || (fl & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
    va_end(ap);
    return (int)SYS6(SYS_openat, dfd, p, fl, m, 0, 0);
}
static int t_fstat(int fd, struct stat *st) { return (int)SYS3(SYS_fstat, fd, st, 0); }
static int t_fxstat(int ver, int fd, struct stat *st)
{
    (void)ver;
    return (int)SYS3(SYS_fstat, fd, st, 0);
}
static int t_fstatat(int dfd, const char *p, struct stat *st, int fl)
{
    return (int)SYS6(SYS_newfstatat, dfd, p, st, fl, 0, 0);
}
static int t_statx(int dfd, const char *p, int fl, unsigned mask, struct statx *sx)
{
    return (int)SYS6(SYS_statx, dfd, p, fl, mask, sx, 0);
}
static ssize_t t_getdents64(int fd, void *b, size_t n) { return SYS3(SYS_getdents64, fd, b, n); }
static ssize_t t_readlinkat(int dfd, const char *p, char *b, size_t n)
{
    return SYS6(SYS_readlinkat, dfd, p, b, n, 0, 0);
}
static int t_mkdirat(int dfd, const char *p, mode_t m) { return (int)SYS3(SYS_mkdirat, dfd, p, m); }
static int t_unlinkat(int dfd, const char *p, int fl) { return (int)SYS3(SYS_unlinkat, dfd, p, fl); }
static int t_renameat(int d1, const char *p1, int d2, const char *p2)
{
    return (int)SYS6(SYS_renameat2, d1, p1, d2, p2, 0, 0);
}
static int t_renameat2(int d1, const char *p1, int d2, const char *p2, unsigned fl)
{
    return (int)SYS6(SYS_renameat2, d1, p1, d2, p2, fl, 0);
}
static int t_linkat(int d1, const char *p1, int d2, const char *p2, int fl)
{
    return (int)SYS6(SYS_linkat, d1, p1, d2, p2, fl, 0);
}
static int t_symlinkat(const char *target, int dfd, const char *p)
{
    return (int)SYS3(SYS_symlinkat, target, dfd, p);
}
static int t_faccessat(int dfd, const char *p, int mode, int fl)
{
    /* faccessat has no flags argument; faccessat2 (Linux 5.8) has. */
    return fl ? (int)SYS6(SYS_faccessat2, dfd, p, mode, fl, 0, 0)
              : (int)SYS3(SYS_faccessat, dfd, p, mode);
}
static int t_utimensat(int dfd, const char *p, const struct timespec ts[2], int fl)
{
    return (int)SYS6(SYS_utimensat, dfd, p, ts, fl, 0, 0);
}
static int t_futimens(int fd, const struct timespec ts[2])
{
    return (int)SYS6(SYS_utimensat, fd, 0, ts, 0, 0, 0);
}
static int t_fchmodat(int dfd, const char *p, mode_t m, int fl)
{
    /* fchmodat's flags need the newer system call or libc's emulation. */
    static int (*libc_fchmodat)(int, const char *, mode_t, int);
    if (!fl)
        return (int)SYS3(SYS_fchmodat, dfd, p, m);
    if (!libc_fchmodat)
        libc_fchmodat = (int (*)(int, const char *, mode_t, int))dlsym(RTLD_NEXT, "fchmodat");
    return libc_fchmodat ? libc_fchmodat(dfd, p, m, fl) : (int)pl_ret(-ENOSYS);
}
static int t_fchmod(int fd, mode_t m) { return (int)SYS3(SYS_fchmod, fd, m, 0); }
static int t_fchownat(int dfd, const char *p, uid_t u, gid_t g, int fl)
{
    return (int)SYS6(SYS_fchownat, dfd, p, u, g, fl, 0);
}
static int t_fchown(int fd, uid_t u, gid_t g) { return (int)SYS3(SYS_fchown, fd, u, g); }
static int t_truncate(const char *p, off_t n) { return (int)SYS3(SYS_truncate, p, n, 0); }
static int t_ftruncate(int fd, off_t n) { return (int)SYS3(SYS_ftruncate, fd, n, 0); }
static int t_fsync(int fd) { return (int)SYS3(SYS_fsync, fd, 0, 0); }
static int t_fdatasync(int fd) { return (int)SYS3(SYS_fdatasync, fd, 0, 0); }
static int t_statfs(const char *p, struct statfs *s) { return (int)SYS3(SYS_statfs, p, s, 0); }
static int t_fstatfs(int fd, struct statfs *s) { return (int)SYS3(SYS_fstatfs, fd, s, 0); }
static int t_fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);    /* whatever the command takes, or junk */
    va_end(ap);
    return (int)SYS3(SYS_fcntl, fd, cmd, arg);
}
static int t_flock(int fd, int op) { return (int)SYS3(SYS_flock, fd, op, 0); }
static int t_chdir(const char *p) { return (int)SYS3(SYS_chdir, p, 0, 0); }
static int t_fchdir(int fd) { return (int)SYS3(SYS_fchdir, fd, 0, 0); }
static ssize_t t_sendfile(int out, int in, off_t *o, size_t n)
{
    return SYS6(SYS_sendfile, out, in, o, n, 0, 0);
}
static ssize_t t_splice(int in, loff_t *oi, int out, loff_t *oo, size_t n, unsigned fl)
{
    return SYS6(SYS_splice, in, oi, out, oo, n, fl);
}
static ssize_t t_copy_file_range(int in, loff_t *oi, int out, loff_t *oo, size_t n, unsigned fl)
{
    return SYS6(SYS_copy_file_range, in, oi, out, oo, n, fl);
}

static const struct {
    const char *name;
    void *fn;
} wrappers[] = {
    { "read", t_read }, { "write", t_write }, { "pread", t_pread }, { "pread64", t_pread },
    { "pwrite", t_pwrite }, { "pwrite64", t_pwrite }, { "readv", t_readv },
    { "writev", t_writev }, { "preadv", t_preadv }, { "preadv64", t_preadv },
    { "pwritev", t_pwritev }, { "pwritev64", t_pwritev }, { "preadv2", t_preadv2 },
    { "pwritev2", t_pwritev2 }, { "lseek", t_lseek }, { "lseek64", t_lseek },
    { "openat", t_openat }, { "openat64", t_openat }, { "fstat", t_fstat },
    { "fstat64", t_fstat }, { "__fxstat", t_fxstat }, { "__fxstat64", t_fxstat },
    { "fstatat", t_fstatat }, { "fstatat64", t_fstatat }, { "statx", t_statx },
    { "getdents64", t_getdents64 }, { "readlinkat", t_readlinkat }, { "mkdirat", t_mkdirat },
    { "unlinkat", t_unlinkat }, { "renameat", t_renameat }, { "renameat2", t_renameat2 },
    { "linkat", t_linkat }, { "symlinkat", t_symlinkat }, { "faccessat", t_faccessat },
    { "utimensat", t_utimensat }, { "futimens", t_futimens }, { "fchmodat", t_fchmodat },
    { "fchmod", t_fchmod }, { "fchownat", t_fchownat }, { "fchown", t_fchown },
    { "truncate", t_truncate }, { "truncate64", t_truncate }, { "ftruncate", t_ftruncate },
    { "ftruncate64", t_ftruncate }, { "fsync", t_fsync }, { "fdatasync", t_fdatasync },
    { "statfs", t_statfs }, { "statfs64", t_statfs }, { "fstatfs", t_fstatfs },
    { "fstatfs64", t_fstatfs }, { "fcntl", t_fcntl }, { "fcntl64", t_fcntl },
    { "flock", t_flock }, { "chdir", t_chdir }, { "fchdir", t_fchdir },
    { "sendfile", t_sendfile }, { "sendfile64", t_sendfile }, { "splice", t_splice },
    { "copy_file_range", t_copy_file_range },
};

void *pl_tramp_wrapper(const char *name)
{
    pthread_once(&tramp_once, tramp_setup);
    if (!tramp)
        return NULL;
    for (size_t i = 0; i < sizeof wrappers / sizeof wrappers[0]; i++)
        if (strcmp(wrappers[i].name, name) == 0)
            return wrappers[i].fn;
    return NULL;
}

bool pl_syscall_traps(void)
{
    pthread_once(&tramp_once, tramp_setup);
    return !tramp && prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2;
}

long pl_syscall(long nr, long a, long b, long c)
{
    pthread_once(&tramp_once, tramp_setup);
    if (tramp)
        return tramp(nr, a, b, c, 0, 0, 0);
    long r = syscall(nr, a, b, c);
    return r < 0 ? -errno : r;
}

/* ---- the filter ------------------------------------------------------- */

#define NTRAPPED (sizeof trapped / sizeof trapped[0])

int pl_supervise(const char *path)
{
    if (pl_nmounts == 0)
        return -ENOENT;
    /* arch check, trampoline check, one test per trapped call, two returns */
    struct sock_filter f[8 + NTRAPPED + 2];
    size_t n = 0;
    const size_t tail = 8 + NTRAPPED;       /* index of the ALLOW return */
#define AT(i) ((unsigned char)((i) - n - 1)) /* jump offset from insn n to i */
    f[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    n++;
    f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, AT(tail));
    n++;
    f[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                         offsetof(struct seccomp_data, instruction_pointer) + 4);
    n++;
    f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(PL_TRAMP_ADDR >> 32), 0, AT(7));
    n++;
    f[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                         offsetof(struct seccomp_data, instruction_pointer));
    n++;
    f[n] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xfffff000u);
    n++;
    f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)PL_TRAMP_ADDR, AT(tail), 0);
    n++;
    f[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    n++;
    for (size_t i = 0; i < NTRAPPED; i++, n++)
        f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, trapped[i], AT(tail + 1), 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
#undef AT
    struct sock_fprog prog = { .len = (unsigned short)n, .filter = f };
    /* The target waits killable only once the broker has its call, so a
     * signal does not make a served call run twice (Linux >= 5.19). */
    unsigned flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    int lfd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    if (lfd < 0 && errno == EACCES) {
        /* Without CAP_SYS_ADMIN a filter needs no_new_privs: set-user-ID
         * programs in the subtree then run without their privileges. */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
            return -errno;
        lfd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    }
    if (lfd < 0)
        return -errno;
    /* From here on the filter is ours for good: the broker must take the
     * listener, or the program's file calls fail (ENOSYS) once it closes. */
    struct pl_call c = { .q = { .op = RUN_SUPERVISE } };
    int64_t r = pl_call_passing(0, &c, lfd);
    syscall(SYS_close, lfd);
    if (r < 0) {
        char msg[PATH_MAX + 200];
        int m = snprintf(msg, sizeof msg,
                         "ufuse: %s: the broker did not take the seccomp listener (%s): "
                         "its file system calls will fail\n", path, strerror((int)-r));
        if (m > 0)
            (void)!write(2, msg, (size_t)(m < (int)sizeof msg ? m : (int)sizeof msg - 1));
    }
    return 0;
}
