/*
 * fusehook.c - libufuse-fusehook.so, preloaded into a libfuse-2 server so
 * that it attaches, unmodified, to a ufuse client instead of the kernel.
 *
 * WHY
 *   libfuse >= 3.3 (and go-fuse) accept the mountpoint "/dev/fd/N" and use
 *   fd N as their FUSE device, so ufuse hands them one end of a
 *   socketpair(AF_UNIX, SOCK_SEQPACKET) that way.  libfuse 2 cannot: its
 *   fuse_mount_sys() does open("/dev/fuse") and then mount(2) (as root), and
 *   when mount(2) fails with EPERM (non-root) it runs the setuid fusermount
 *   with _FUSE_COMMFD and receives a kernel fd from it.  This library sits
 *   in front of libc in such a server and
 *     - turns the open of "/dev/fuse" into the ufuse socket,
 *     - makes mount(2) of the ufuse mountpoint succeed without mounting,
 *       so libfuse never falls back to fusermount (root or not),
 *     - makes umount/umount2 of that mountpoint succeed, so libfuse's
 *       unmount path does not run fusermount -u (non-root) either.
 *   Everything else goes straight to the next definition (dlsym RTLD_NEXT).
 *
 * LD_PRELOAD VERSUS SECCOMP USER NOTIFICATION
 *   The same interception could be done from the client with a seccomp
 *   filter returning SECCOMP_RET_USER_NOTIF for openat/mount/umount2 and
 *   SECCOMP_IOCTL_NOTIF_ADDFD to install the socket in the server.  That
 *   needs Linux >= 5.9 (5.14 for ADDFD_FLAG_SEND), no_new_privs or
 *   CAP_SYS_ADMIN, a supervisor thread in the client reading the paths out
 *   of the server's memory (racy without care), and it breaks when the
 *   server is itself traced or sandboxed.  LD_PRELOAD needs no privilege and
 *   no kernel feature, works the same for root and non-root, and costs one
 *   string compare per open.  Its limit is static binaries, which ignore
 *   LD_PRELOAD: those are go-fuse servers, which take /dev/fd/N anyway.
 *
 * CONTRACT WITH THE CLIENT (src/chan/chan.c spawns the server so)
 *   LD_PRELOAD=/abs/libufuse-fusehook.so[:previous LD_PRELOAD]
 *   UFUSE_FUSE_FD=N        an inherited, non-CLOEXEC fd: the server's end of
 *                          the connected socket
 *   UFUSE_MOUNTPOINT=/dir  an empty directory, also the mountpoint argument
 *   Without UFUSE_FUSE_FD the library is inert: every wrapper passes
 *   through and the environment is not touched.
 *
 * BEHAVIOUR WHEN ACTIVE
 *   B1. The constructor reads UFUSE_FUSE_FD and UFUSE_MOUNTPOINT, then
 *       removes every UFUSE_* variable from the environment and removes this
 *       library from LD_PRELOAD (other entries are kept, in order), so that
 *       the server's own children (sshfs runs ssh, libfuse runs /bin/mount
 *       when /etc/mtab is a file) neither get the hook nor the variables.
 *   B2. open/open64/openat/openat64/__open_2/__open64_2/__openat_2/
 *       __openat64_2 of exactly "/dev/fuse" (any dirfd, the path is
 *       absolute) return the socket:
 *         - the first such open returns fd N itself, with FD_CLOEXEC set or
 *           cleared as O_CLOEXEC asks;
 *         - every later one returns a new descriptor for the same socket
 *           (a dup of N, FD_CLOEXEC as asked).  libfuse 2 opens the device
 *           once; libfuse 3's clone_fd opens it again and tries
 *           FUSE_DEV_IOC_CLONE, which fails with ENOTTY on a socket, and
 *           libfuse then falls back to the first fd: a dup serves both.
 *           If N no longer is the socket seen at load time (the server
 *           closed it, the number may have been reused), the open fails
 *           with ENODEV rather than hand out an unrelated file.
 *         - O_NONBLOCK, if asked, is set on the socket's open file
 *           description, which all these descriptors share (as with dup).
 *   B3. mount(2) whose target is UFUSE_MOUNTPOINT (the same string, or the
 *       same directory by st_dev/st_ino) and whose fstype begins with
 *       "fuse" returns 0 and mounts nothing.  Other mounts pass through.
 *   B4. umount(2)/umount2(2) of UFUSE_MOUNTPOINT return 0; others pass
 *       through.
 *   B5. If UFUSE_FUSE_FD is set but is not an open descriptor, the hook
 *       stays active but an open of "/dev/fuse" fails with EBADF (libfuse
 *       prints "failed to open /dev/fuse") instead of reaching the real
 *       device and fusermount.
 *
 * LIMITS
 *   - "-o auto_unmount" makes libfuse 2 go to fusermount before it opens
 *     the device; that option cannot work under ufuse.
 *   - As root, with /etc/mtab a regular file (not Debian's symlink), libfuse
 *     runs /bin/mount -f and /bin/umount for the mtab; those children run
 *     without the hook and only touch /etc/mtab.
 *   - Only opens through the exported libc symbols are seen; a raw
 *     syscall(SYS_openat) is not.
 *
 * LOCKS
 *   None.  The state below is written by the constructor before any thread
 *   exists, except g_real_* (idempotent lazy dlsym results, stored with
 *   atomic relaxed stores) and g_first_taken (atomic exchange).
 *
 * INVARIANTS
 *   I1. g_active is set once, in the constructor, and never changes; when
 *       it is 0 every wrapper is a plain call of the next definition.
 *   I2. When g_active and g_fd >= 0, g_fd_dev/g_fd_ino identify the socket
 *       at load time; a descriptor is only handed out for "/dev/fuse" while
 *       fstat(g_fd) still matches them.
 *   I3. g_first_taken goes 0 -> 1 exactly once; only the thread that makes
 *       that transition returns g_fd itself, all others get dups.
 *   I4. g_mnt is NULL or a malloc'd absolute path that is never freed;
 *       g_mnt_known says whether g_mnt_dev/g_mnt_ino were obtained.
 *   I5. No wrapper calls another exported wrapper of this file: the real
 *       functions are reached only through g_real_* pointers, so there is
 *       no recursion through the hook.
 */
/* The definitions below must have the plain glibc names: no redirection of
 * open to open64 (_FILE_OFFSET_BITS) and no fortify inline wrappers. */
#undef _FILE_OFFSET_BITS
#undef _FORTIFY_SOURCE
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOOK_NAME "ufuse-fusehook"
#define HOOK_LIB "libufuse-fusehook.so"
#define FUSE_DEV "/dev/fuse"

extern char **environ;

/* ---- state (see INVARIANTS) ------------------------------------------ */

static int g_active;            /* I1 */
static int g_fd = -1;           /* the socket, or -1 if UFUSE_FUSE_FD was bad */
static dev_t g_fd_dev;          /* I2 */
static ino_t g_fd_ino;
static int g_first_taken;       /* I3 */
static char *g_mnt;             /* I4 */
static int g_mnt_known;
static dev_t g_mnt_dev;
static ino_t g_mnt_ino;

/* ---- lazily resolved real functions (I5) ------------------------------ */

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*open2_fn)(const char *, int);
typedef int (*openat2_fn)(int, const char *, int);
typedef int (*mount_fn)(const char *, const char *, const char *,
                        unsigned long, const void *);
typedef int (*umount_fn)(const char *);
typedef int (*umount2_fn)(const char *, int);

static void *resolve(void **slot, const char *name)
{
    void *p = __atomic_load_n(slot, __ATOMIC_RELAXED);
    if (!p) {
        p = dlsym(RTLD_NEXT, name);
        __atomic_store_n(slot, p, __ATOMIC_RELAXED);
    }
    return p;
}

#define REAL(type, name)                                                     \
    static void *g_real_##name;                                              \
    static type real_##name(void)                                            \
    {                                                                        \
        return (type)resolve(&g_real_##name, #name);                         \
    }

REAL(open_fn, open)
REAL(open_fn, open64)
REAL(openat_fn, openat)
REAL(openat_fn, openat64)
REAL(open2_fn, __open_2)
REAL(open2_fn, __open64_2)
REAL(openat2_fn, __openat_2)
REAL(openat2_fn, __openat64_2)
REAL(mount_fn, mount)
REAL(umount_fn, umount)
REAL(umount2_fn, umount2)

/* ---- the constructor (B1) --------------------------------------------- */

/* Is this LD_PRELOAD entry this very library?  Matched by file name, so
 * that a relative or differently spelled path is removed too. */
static int is_hook_entry(const char *s, size_t n)
{
    size_t len = strlen(HOOK_LIB);
    const char *base = s;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/')
            base = s + i + 1;
    n -= (size_t)(base - s);
    /* "libufuse-fusehook.so" or a versioned "libufuse-fusehook.so.1" */
    return n >= len && memcmp(base, HOOK_LIB, len) == 0 &&
           (n == len || base[len] == '.');
}

static void strip_ld_preload(void)
{
    const char *old = getenv("LD_PRELOAD");
    if (!old)
        return;
    size_t olen = strlen(old);
    char *out = malloc(olen + 1);
    if (!out)
        return;
    size_t o = 0;
    const char *p = old;
    while (*p) {
        /* ld.so separates entries with ':' or white space */
        size_t n = strcspn(p, ": \t");
        if (n > 0 && !is_hook_entry(p, n)) {
            if (o > 0)
                out[o++] = ':';
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
        if (*p)
            p++;
    }
    out[o] = '\0';
    if (o == 0)
        unsetenv("LD_PRELOAD");
    else
        setenv("LD_PRELOAD", out, 1);
    free(out);
}

/* Remove every UFUSE_* variable (after they have been read). */
static void strip_ufuse_env(void)
{
    int again = 1;
    while (again) {
        again = 0;
        for (char **e = environ; e && *e; e++) {
            if (strncmp(*e, "UFUSE_", 6) != 0)
                continue;
            const char *eq = strchr(*e, '=');
            size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
            char name[256];
            if (n >= sizeof(name))
                n = sizeof(name) - 1;
            memcpy(name, *e, n);
            name[n] = '\0';
            unsetenv(name);     /* environ changed: scan again */
            again = 1;
            break;
        }
    }
}

__attribute__((constructor)) static void fusehook_init(void)
{
    const char *fdstr = getenv("UFUSE_FUSE_FD");
    if (!fdstr)
        return;                 /* inert (I1) */
    g_active = 1;

    char *end;
    errno = 0;
    long n = strtol(fdstr, &end, 10);
    struct stat st;
    if (errno == 0 && end != fdstr && *end == '\0' && n >= 0 && n < 1 << 30 &&
        fstat((int)n, &st) == 0) {
        g_fd = (int)n;
        g_fd_dev = st.st_dev;
        g_fd_ino = st.st_ino;
    } else {
        fprintf(stderr, HOOK_NAME ": UFUSE_FUSE_FD=%s is not an open "
                "descriptor; /dev/fuse will not open\n", fdstr);
    }

    const char *mnt = getenv("UFUSE_MOUNTPOINT");
    if (mnt && *mnt) {
        g_mnt = strdup(mnt);
        if (g_mnt && stat(g_mnt, &st) == 0) {
            g_mnt_known = 1;
            g_mnt_dev = st.st_dev;
            g_mnt_ino = st.st_ino;
        }
    }

    strip_ufuse_env();
    strip_ld_preload();
}

/* ---- /dev/fuse (B2, B5) ----------------------------------------------- */

static int is_fuse_dev(const char *path)
{
    return g_active && path && strcmp(path, FUSE_DEV) == 0;
}

/* The descriptor to return for an open of /dev/fuse with @flags, or -1
 * with errno set. */
static int fuse_dev_open(int flags)
{
    struct stat st;
    if (g_fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (fstat(g_fd, &st) != 0 || st.st_dev != g_fd_dev ||
        st.st_ino != g_fd_ino) {
        fprintf(stderr, HOOK_NAME ": /dev/fuse opened after the ufuse "
                "socket (fd %d) was closed\n", g_fd);
        errno = ENODEV;
        return -1;
    }
    if (flags & O_NONBLOCK) {
        int fl = fcntl(g_fd, F_GETFL);
        if (fl == -1 || fcntl(g_fd, F_SETFL, fl | O_NONBLOCK) == -1)
            return -1;
    }
    int fd;
    if (!__atomic_exchange_n(&g_first_taken, 1, __ATOMIC_ACQ_REL)) {
        fd = g_fd;
        if (fcntl(fd, F_SETFD, (flags & O_CLOEXEC) ? FD_CLOEXEC : 0) == -1)
            return -1;
    } else {
        fd = fcntl(g_fd, (flags & O_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
    }
    return fd;
}

/* open(2) and friends take a mode only with O_CREAT or O_TMPFILE. */
static int needs_mode(int flags)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

#define GET_MODE(flags, last, mode)                                          \
    do {                                                                     \
        (mode) = 0;                                                          \
        if (needs_mode(flags)) {                                             \
            va_list ap;                                                      \
            va_start(ap, last);                                              \
            (mode) = va_arg(ap, mode_t);                                     \
            va_end(ap);                                                      \
        }                                                                    \
    } while (0)

int open(const char *path, int flags, ...)
{
    mode_t mode;
    GET_MODE(flags, flags, mode);
    if (is_fuse_dev(path))
        return fuse_dev_open(flags);
    return real_open()(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    mode_t mode;
    GET_MODE(flags, flags, mode);
    if (is_fuse_dev(path))
        return fuse_dev_open(flags);
    return real_open64()(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode;
    GET_MODE(flags, flags, mode);
    if (is_fuse_dev(path))
        return fuse_dev_open(flags);
    return real_openat()(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    mode_t mode;
    GET_MODE(flags, flags, mode);
    if (is_fuse_dev(path))
        return fuse_dev_open(flags);
    return real_openat64()(dirfd, path, flags, mode);
}

/* The _FORTIFY_SOURCE entry points (flags without O_CREAT/O_TMPFILE). */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

int __open_2(const char *path, int flags)
{
    if (is_fuse_dev(path))
        return fuse_dev_open(flags);
    return real___open_2()(path, flags);
}

int __open64_2(const char *path, int flags)
{
    if (is_fuse_dev(path))
        return fuse_dev_open(flags);
    return real___open64_2()(path, flags);
}

int __openat_2(int dirfd, const char *path, int flags)
{
    if (is_fuse_dev(path))
        return fuse_dev_open(flags);
    return real___openat_2()(dirfd, path, flags);
}

int __openat64_2(int dirfd, const char *path, int flags)
{
    if (is_fuse_dev(path))
        return fuse_dev_open(flags);
    return real___openat64_2()(dirfd, path, flags);
}

/* ---- mount and unmount (B3, B4) --------------------------------------- */

static int is_our_mountpoint(const char *target)
{
    struct stat st;
    if (!g_active || !g_mnt || !target)
        return 0;
    if (strcmp(target, g_mnt) == 0)
        return 1;
    return g_mnt_known && stat(target, &st) == 0 && S_ISDIR(st.st_mode) &&
           st.st_dev == g_mnt_dev && st.st_ino == g_mnt_ino;
}

int mount(const char *source, const char *target, const char *fstype,
          unsigned long flags, const void *data)
{
    if (fstype && strncmp(fstype, "fuse", 4) == 0 &&
        is_our_mountpoint(target))
        return 0;
    return real_mount()(source, target, fstype, flags, data);
}

int umount(const char *target)
{
    if (is_our_mountpoint(target))
        return 0;
    return real_umount()(target);
}

int umount2(const char *target, int flags)
{
    if (is_our_mountpoint(target))
        return 0;
    return real_umount2()(target, flags);
}
